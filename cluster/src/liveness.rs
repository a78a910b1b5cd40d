//! Heartbeat liveness: which peers went silent.
//!
//! The [`crate::node::ClusterNode`] calls every peer agent once a second (its heartbeat)
//! and tells [`Liveness`] when a peer answered. A peer not heard from for longer than
//! `[cluster] peer_timeout_ms` is silent: frozen, partitioned, or too loaded to answer.
//! Its TCP session may well still be open (a stopped process keeps its sockets), so
//! waiting for the session to close would never notice it. A silent peer is treated as
//! gone: it is left out of the members, its streams count as live nowhere (see
//! [`SilentPeers`], which placement and routing read) and `node.left` is emitted with
//! reason `heartbeat_timeout`. When it answers again it is back (`node.joined`).
//!
//! Time is passed in, so the rules are tested without waiting. A node that was itself
//! paused (its own ticks came late) cannot tell whether its peers were silent, so a late
//! tick gives every peer a fresh grace period instead of blaming them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::ActorCell;

/// The peers currently silent, by the node id of their session; shared (cheaply cloned)
/// between the cluster node, which writes it, and placement and routing, which must
/// answer at once inside the stream supervisor's and the API's handlers.
#[derive(Debug, Clone, Default)]
pub struct SilentPeers(Arc<RwLock<HashSet<u64>>>);

impl SilentPeers {
    /// Whether the peer with this session node id is silent.
    pub fn contains(&self, node_id: u64) -> bool {
        // A poisoned lock only means a writer panicked mid-insert; the set is still usable.
        let set = self.0.read().unwrap_or_else(|e| e.into_inner());
        set.contains(&node_id)
    }

    /// Whether `cell` is local or on a peer that is not silent.
    pub fn reachable(&self, cell: &ActorCell) -> bool {
        let id = cell.get_id();
        id.is_local() || !self.contains(id.node())
    }

    fn set(&self, node_id: u64, silent: bool) {
        let mut set = self.0.write().unwrap_or_else(|e| e.into_inner());
        if silent {
            set.insert(node_id);
        } else {
            set.remove(&node_id);
        }
    }
}

/// One peer's clock.
#[derive(Debug, Clone, Copy)]
struct Peer {
    last_heard: Instant,
    silent: bool,
}

/// When each peer was last heard from, and which are silent.
#[derive(Debug)]
pub struct Liveness {
    timeout: Duration,
    last_tick: Option<Instant>,
    peers: HashMap<u64, Peer>,
    silent: SilentPeers,
}

impl Liveness {
    /// Peers silent for longer than `timeout` are reported; `silent` is kept in step.
    pub fn new(timeout: Duration, silent: SilentPeers) -> Self {
        Liveness {
            timeout,
            last_tick: None,
            peers: HashMap::new(),
            silent,
        }
    }

    /// A session with this peer authenticated at `now`: it has `timeout` to answer.
    pub fn watch(&mut self, node_id: u64, now: Instant) {
        self.peers.entry(node_id).or_insert(Peer {
            last_heard: now,
            silent: false,
        });
    }

    /// The peer answered at `now`; true when it was silent until then (it is back).
    pub fn heard(&mut self, node_id: u64, now: Instant) -> bool {
        let peer = self.peers.entry(node_id).or_insert(Peer {
            last_heard: now,
            silent: false,
        });
        peer.last_heard = now;
        let back = std::mem::replace(&mut peer.silent, false);
        if back {
            self.silent.set(node_id, false);
        }
        back
    }

    /// The peer's session closed: forget it.
    pub fn forget(&mut self, node_id: u64) {
        if self.peers.remove(&node_id).is_some_and(|p| p.silent) {
            self.silent.set(node_id, false);
        }
    }

    /// Whether the peer is silent now.
    pub fn is_silent(&self, node_id: u64) -> bool {
        self.peers.get(&node_id).is_some_and(|p| p.silent)
    }

    /// A tick at `now`: the peers that just went silent. If this tick itself comes more
    /// than half the timeout after the previous one, this node was paused or starved and
    /// its peers' answers may be waiting unread: each gets a fresh grace period instead.
    pub fn tick(&mut self, now: Instant) -> Vec<u64> {
        let late = self
            .last_tick
            .is_some_and(|last| now.saturating_duration_since(last) > self.timeout / 2);
        self.last_tick = Some(now);
        if late {
            for peer in self.peers.values_mut() {
                peer.last_heard = now;
            }
            return Vec::new();
        }
        let mut gone = Vec::new();
        for (node_id, peer) in &mut self.peers {
            if !peer.silent && now.saturating_duration_since(peer.last_heard) > self.timeout {
                peer.silent = true;
                self.silent.set(*node_id, true);
                gone.push(*node_id);
            }
        }
        gone.sort_unstable();
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(3);
    const TICK: Duration = Duration::from_millis(500);

    /// Ticks every 500 ms from `from` for `span`, collecting what went silent.
    fn run(l: &mut Liveness, from: Instant, span: Duration) -> (Instant, Vec<u64>) {
        let mut now = from;
        let mut gone = Vec::new();
        while now < from + span {
            now += TICK;
            gone.extend(l.tick(now));
        }
        (now, gone)
    }

    #[test]
    fn a_peer_silent_past_the_timeout_is_reported_once_and_is_back_when_heard() {
        let silent = SilentPeers::default();
        let mut l = Liveness::new(TIMEOUT, silent.clone());
        let t0 = Instant::now();
        l.tick(t0);
        l.watch(7, t0);
        l.watch(8, t0);
        // 8 answers every tick; 7 never does.
        let mut now = t0;
        let mut gone = Vec::new();
        for _ in 0..8 {
            now += TICK;
            l.heard(8, now);
            gone.extend(l.tick(now));
        }
        assert_eq!(gone, [7], "silent after 3 s, once");
        assert!(silent.contains(7) && !silent.contains(8));
        assert!(l.is_silent(7));
        let (now, again) = run(&mut l, now, Duration::from_secs(5));
        assert_eq!(
            again,
            [8],
            "7 is not reported twice; 8 stopped answering too"
        );
        assert!(l.heard(7, now), "7 is back");
        assert!(!silent.contains(7));
        assert!(!l.heard(7, now), "only once");
        l.forget(8);
        assert!(!silent.contains(8), "a closed session is no longer silent");
    }

    #[test]
    fn a_node_that_was_paused_itself_gives_its_peers_a_fresh_grace_period() {
        let silent = SilentPeers::default();
        let mut l = Liveness::new(TIMEOUT, silent.clone());
        let t0 = Instant::now();
        l.tick(t0);
        l.watch(7, t0);
        // Paused for 10 s: the next tick is late, and the peer gets a fresh 3 s.
        let resumed = t0 + Duration::from_secs(10);
        assert!(l.tick(resumed).is_empty());
        let (now, gone) = run(&mut l, resumed, Duration::from_secs(2));
        assert!(gone.is_empty(), "{gone:?}");
        l.heard(7, now);
        let (_, gone) = run(&mut l, now, Duration::from_secs(4));
        assert_eq!(gone, [7], "silent for real afterwards");
    }
}
