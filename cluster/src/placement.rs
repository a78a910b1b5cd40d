//! Placement: which node owns a stream.
//!
//! A stream belongs to the node where it is live. That node's [`crate::agent::NodeAgent`]
//! is the member of the process group `stream/{name}` (ractor's `pg`, which
//! ractor_cluster keeps in sync across the sessions: one update per stream that goes
//! live or ends). [`ClusterPlacement`] is the stream supervisor's
//! [`StreamPlacement`]: it refuses a name that has a member on another node, and joins or
//! leaves the group for this node. Both calls only touch the local copy of the groups.
//!
//! Two nodes that accept the same name within the time it takes a group update to cross
//! the cluster (a few milliseconds) both keep it; the API then answers for the first
//! member it finds. A node that leaves drops out of every group with its session. A node
//! that went silent (no heartbeat answer within `[cluster] peer_timeout_ms`, see
//! [`crate::liveness`]) keeps its groups, since its session is still open, but its
//! members are skipped: its streams count as live nowhere, so their publishers may go
//! live on another node. If it comes back with the stream still live, both keep it, as
//! above.
//!
//! [`GroupChanges`] counts this node's joins and leaves (each is one process group
//! update sent to every peer), for `/metrics` and the cluster benchmark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ractor::{ActorCell, ActorRef};
use recnode_actors::stream::StreamPlacement;

use crate::agent::NodeAgentMsg;
use crate::liveness::SilentPeers;
use crate::Owner;

/// The process group of stream `name`.
pub fn stream_group(name: &str) -> String {
    format!("stream/{name}")
}

/// Who owns `stream` right now: this node first, then the agent of another node that is
/// not silent.
pub fn owner(stream: &str, silent: &SilentPeers) -> Owner {
    let members = ractor::pg::get_members(&stream_group(stream));
    if members.iter().any(|cell| cell.get_id().is_local()) {
        return Owner::Local;
    }
    match members.into_iter().find(|cell| silent.reachable(cell)) {
        Some(cell) => Owner::Remote(ActorRef::<NodeAgentMsg>::from(cell)),
        None => Owner::Nobody,
    }
}

/// How many times this node joined and left `stream/*` groups since it started; cheap
/// to clone (shared counters).
#[derive(Debug, Clone, Default)]
pub struct GroupChanges(Arc<[AtomicU64; 2]>);

impl GroupChanges {
    /// Joins so far (one per stream that went live here, and per restart of one).
    pub fn joins(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Leaves so far (one per stream that ended here).
    pub fn leaves(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }
}

/// The stream supervisor's placement in a cluster: claims join `stream/{name}` with this
/// node's agent.
pub struct ClusterPlacement {
    agent: ActorCell,
    silent: SilentPeers,
    changes: GroupChanges,
}

impl ClusterPlacement {
    /// A placement that claims streams for `agent` (this node's agent), ignoring the
    /// claims of `silent` peers and counting its joins and leaves in `changes`.
    pub fn new(agent: ActorCell, silent: SilentPeers, changes: GroupChanges) -> Self {
        ClusterPlacement {
            agent,
            silent,
            changes,
        }
    }
}

impl StreamPlacement for ClusterPlacement {
    fn claim(&self, stream: &str) -> Result<(), String> {
        let group = stream_group(stream);
        let elsewhere = ractor::pg::get_members(&group)
            .into_iter()
            .find(|cell| !cell.get_id().is_local() && self.silent.reachable(cell));
        if let Some(cell) = elsewhere {
            return Err(format!("node session {}", cell.get_id().node()));
        }
        ractor::pg::join(group, vec![self.agent.clone()]);
        self.changes.0[0].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, stream: &str) {
        ractor::pg::leave(stream_group(stream), vec![self.agent.clone()]);
        self.changes.0[1].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};

    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_claimed_stream_is_owned_here_until_it_is_released() {
        let (actor, handle) = Actor::spawn(None, Idle, ()).await.expect("spawn");
        let silent = SilentPeers::default();
        let changes = GroupChanges::default();
        let placement = ClusterPlacement::new(actor.get_cell(), silent.clone(), changes.clone());
        assert!(matches!(owner("placement-test", &silent), Owner::Nobody));
        placement.claim("placement-test").expect("free name");
        assert!(matches!(owner("placement-test", &silent), Owner::Local));
        // A second local claim (a restart of the same stream) is fine.
        placement.claim("placement-test").expect("own name");
        placement.release("placement-test");
        assert!(matches!(owner("placement-test", &silent), Owner::Nobody));
        assert_eq!((changes.joins(), changes.leaves()), (2, 1));
        actor.stop(None);
        handle.await.expect("stopped");
    }
}
