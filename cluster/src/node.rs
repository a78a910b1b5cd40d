//! The node server and [`ClusterNode`], which keeps this node in the cluster.
//!
//! [`start_server`] starts ractor_cluster's `NodeServer` with the cookie and
//! `NodeConnectionMode::Transitive` set explicitly (ractor_cluster's `None` means
//! Isolated): a node that connects to one member learns of the others and connects to
//! them too. Its name is `{node_name}@{ip}` and its connection string the `listen`
//! address, so `listen` must be an address the peers can reach (not `0.0.0.0`).
//!
//! With `[cluster.tls]` the server accepts TLS only ([`crate::tls`]) and runs Isolated:
//! ractor_cluster dials its transitive connections in plain TCP, which a TLS server
//! refuses. [`ClusterNode`] does the discovery itself instead: its heartbeats ask each
//! peer for its peers' addresses (`with_peers`), and it dials, over TLS, every address it
//! has no session to, as it does its seeds. A learned address that no peer lists any
//! more and that has no session is dropped.
//!
//! [`ClusterNode`] subscribes to the server's session events and owns the membership:
//! - it connects to every seed (and, with TLS, learned peer) that has no session and
//!   retries with exponential backoff (200 ms doubling to 5 s), since ractor_cluster
//!   never reconnects by itself; an attempt that takes over 10 s is abandoned;
//! - a session that closes before it authenticated, without another session to the same
//!   node, is a refused peer (wrong cookie, or with TLS its certificate refused): it is
//!   logged as such on both sides; so is a TLS handshake that fails;
//! - every second it calls each peer agent's `Info` (a few dozen bytes each way), which
//!   the peer answers from its stream supervisor's counters (one reply, however many
//!   streams it has), and records when it last answered and its load;
//! - the first answer of a peer makes it joined: `node.joined` is emitted and the peer's
//!   cluster-wide settings are pulled; the close of its last authenticated session
//!   emits `node.left` at once (a killed process closes its sockets);
//! - a peer that answers no heartbeat for `peer_timeout` (a frozen or partitioned
//!   process keeps its sockets open, so its session never closes) is gone too: it is
//!   left out of the members, its streams count as live nowhere ([`crate::liveness`]) and
//!   `node.left` is emitted with reason `heartbeat_timeout`; its next answer makes it
//!   joined again (`node.joined`, settings pulled).
//!
//! Started by [`crate::start`], unsupervised; it only logs and emits, so a failure loses
//! reconnects and membership events but never a recording.
//!
//! Mailbox: unbounded (ractor's). It gets session events (a handful per peer), one tick
//! every 500 ms, one heartbeat answer per peer per second and the API's member listings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{
    ClientConnectErr, IncomingEncryptionMode, NodeEventSubscription, NodeServer, NodeServerMessage,
};
use ractor_cluster_derive::RactorMessage;
use recnode_actors::hooks::{events, node_id_from_alias, HookEmitter};
use recnode_proto::cluster::v1 as pb;
use recnode_proto::Message;

use crate::agent::NodeAgentMsg;
use crate::liveness::{Liveness, SilentPeers};
use crate::tls::ClusterTls;
use crate::{ClusterSettings, LocalApi};

/// How often seeds are checked and reconnected.
const TICK: Duration = Duration::from_millis(500);
/// Heartbeats go out every this many ticks (1 s).
const HEARTBEAT_TICKS: u64 = 2;
/// The first reconnect delay; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one connect attempt (TCP, then TLS when on) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the node server on `settings.listen` with the cluster's cookie: Transitive
/// mode over plain TCP, or TLS only and Isolated mode with `[cluster.tls]`.
pub async fn start_server(
    settings: &ClusterSettings,
) -> Result<ActorRef<NodeServerMessage>, SpawnErr> {
    let (encryption, mode) = match &settings.tls {
        None => (IncomingEncryptionMode::Raw, NodeConnectionMode::Transitive),
        Some(tls) => (
            IncomingEncryptionMode::Tls(tls.acceptor()),
            NodeConnectionMode::Isolated,
        ),
    };
    let server = NodeServer::new(
        settings.listen.port(),
        settings.cookie.clone(),
        settings.node_name.clone(),
        settings.listen.ip().to_string(),
        Some(encryption),
        Some(mode),
    )
    .with_listen_addr(settings.listen.ip());
    let (actor, _) = Actor::spawn(None, server, ()).await?;
    Ok(actor)
}

/// The cluster addresses of this node's peers that are up (their agent is in the
/// agents' group, so their session authenticated), sorted; empty if the server does
/// not answer.
pub(crate) async fn peer_addresses(server: &ActorRef<NodeServerMessage>) -> Vec<String> {
    let up: std::collections::HashSet<u64> = (crate::remote_agents().iter())
        .map(|agent| agent.get_id().node())
        .collect();
    let sessions = match ractor::call_t!(server, NodeServerMessage::GetSessions, 2_000) {
        Ok(sessions) => sessions,
        Err(e) => {
            tracing::warn!("node server did not list its sessions: {e}");
            return Vec::new();
        }
    };
    let mut peers: Vec<String> = (sessions.into_iter())
        .filter(|(id, _)| up.contains(id))
        .filter_map(|(_, ses)| ses.peer_name.map(|name| name.connection_string))
        .filter(|addr| !addr.is_empty())
        .collect();
    peers.sort();
    peers.dedup();
    peers
}

/// A member of the cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its cluster node name.
    pub name: String,
    /// Its hook alias (empty until it first answered).
    pub alias: String,
    /// Its cluster address.
    pub address: String,
    /// When its session authenticated, in unix milliseconds.
    pub connected_at_ms: u64,
    /// When it last answered a heartbeat, in unix milliseconds.
    pub last_seen_ms: Option<u64>,
    /// Its live streams at the last heartbeat.
    pub live_streams: u32,
    /// Its recordings at the last heartbeat.
    pub recordings: u32,
}

/// The membership actor (one per node).
pub struct ClusterNode;

/// Messages to the cluster node; local only.
#[derive(RactorMessage)]
pub enum ClusterNodeMsg {
    /// A session opened (inbound or outbound).
    SessionOpened(NodeServerSessionInformation),
    /// A session passed the cookie challenge.
    SessionAuthenticated(NodeServerSessionInformation),
    /// A session closed.
    SessionClosed(NodeServerSessionInformation),
    /// Time to reconnect seeds and send heartbeats.
    Tick,
    /// A connect attempt to a seed finished.
    Connected {
        /// The seed.
        seed: String,
        /// Whether the connection (TCP, then TLS when on) opened.
        result: Result<(), ConnectFailure>,
    },
    /// A peer agent answered a heartbeat.
    Seen {
        /// The session's node id (from the agent's actor id).
        node_id: u64,
        /// What it said.
        info: pb::NodeInfo,
    },
    /// `GET /api/cluster`: the members.
    Members(RpcReplyPort<Vec<Member>>),
}

/// What the cluster node starts from.
pub struct ClusterNodeArgs {
    /// The cluster settings (seeds, own name).
    pub settings: ClusterSettings,
    /// The node server.
    pub server: ActorRef<NodeServerMessage>,
    /// Where `node.joined`/`node.left` go.
    pub hooks: HookEmitter,
    /// This node's API, to apply settings pulled from a new peer.
    pub api: Arc<dyn LocalApi>,
    /// The cluster-wide settings.
    pub store: ActorRef<crate::settings::SettingsMsg>,
    /// The silent peers, kept up to date here for placement and routing.
    pub silent: SilentPeers,
}

/// Why a connect attempt failed.
#[derive(Debug)]
pub struct ConnectFailure {
    /// Whether the TLS handshake failed (the TCP connection had opened).
    pub tls: bool,
    /// The error.
    pub message: String,
}

/// One seed's (or learned peer's) reconnect state.
struct Seed {
    addr: String,
    backoff: Duration,
    next_attempt: Instant,
    connecting: bool,
    /// Learned from a peer (TLS discovery), not configured; dropped when no peer lists
    /// it and it has no session.
    learned: bool,
}

impl Seed {
    fn new(addr: String, learned: bool) -> Self {
        Seed {
            addr,
            backoff: MIN_BACKOFF,
            next_attempt: Instant::now(),
            connecting: false,
            learned,
        }
    }
}

/// One session with a peer.
struct Session {
    actor: ActorId,
    name: Option<String>,
    address: String,
    authenticated: bool,
    connected_at_ms: u64,
    last_seen_ms: Option<u64>,
    info: Option<pb::NodeInfo>,
    /// Whether `node.joined` was emitted for it.
    joined: bool,
}

/// The membership state.
pub struct ClusterNodeState {
    name: String,
    /// This node's cluster address (`listen`), never dialled.
    own: std::net::SocketAddr,
    server: ActorRef<NodeServerMessage>,
    /// `[cluster.tls]`: dial with it, and discover peers through the heartbeats.
    tls: Option<ClusterTls>,
    hooks: HookEmitter,
    api: Arc<dyn LocalApi>,
    settings: ActorRef<crate::settings::SettingsMsg>,
    seeds: Vec<Seed>,
    /// By the server's node id of the session.
    sessions: HashMap<u64, Session>,
    /// When each authenticated peer last answered, and which are silent.
    liveness: Liveness,
    ticks: u64,
    timer: Option<JoinHandle<()>>,
}

/// Forwards the node server's session events to the cluster node.
struct Events(ActorRef<ClusterNodeMsg>);

impl NodeEventSubscription for Events {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(ClusterNodeMsg::SessionOpened(ses));
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(ClusterNodeMsg::SessionClosed(ses));
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(ClusterNodeMsg::SessionAuthenticated(ses));
    }
}

/// `name@host` → `name`.
fn short_name(ses: &NodeServerSessionInformation) -> Option<String> {
    let full = &ses.peer_name.as_ref()?.name;
    Some(
        full.split_once('@')
            .map_or(full.as_str(), |(n, _)| n)
            .to_string(),
    )
}

/// The peer's cluster address if known (its connection string), else the socket's.
fn address(ses: &NodeServerSessionInformation) -> String {
    match &ses.peer_name {
        Some(name) if !name.connection_string.is_empty() => name.connection_string.clone(),
        _ => ses.peer_addr.clone(),
    }
}

impl ClusterNodeState {
    /// Whether a session (authenticating or up) reaches `seed`.
    fn has_session_to(&self, seed: &str) -> bool {
        self.sessions.values().any(|s| s.address == seed)
    }

    /// Whether another authenticated session than `except` reaches node `name`.
    fn other_session_to(&self, name: &str, except: u64) -> bool {
        self.sessions
            .iter()
            .any(|(id, s)| *id != except && s.authenticated && s.name.as_deref() == Some(name))
    }

    /// Adds the peer addresses a member listed that this node does not dial yet.
    fn learn(&mut self, peers: &[String]) {
        for addr in peers {
            // ractor_cluster's connection strings are `{ip}:{port}`, unbracketed for IPv6.
            let own = format!("{}:{}", self.own.ip(), self.own.port());
            if *addr == own
                || *addr == self.own.to_string()
                || self.seeds.iter().any(|s| s.addr == *addr)
            {
                continue;
            }
            tracing::info!(node = %self.name, peer_address = %addr,
                "cluster peer learned from a member; connecting");
            self.seeds.push(Seed::new(addr.clone(), true));
        }
    }

    /// Drops learned addresses that no member lists any more and that have no session.
    fn forget_unlisted(&mut self) {
        let listed: std::collections::HashSet<&str> = (self.sessions.values())
            .filter_map(|s| s.info.as_ref())
            .flat_map(|info| info.peers.iter().map(String::as_str))
            .collect();
        let unlisted: std::collections::HashSet<String> = (self.seeds.iter())
            .filter(|s| s.learned && !s.connecting && !listed.contains(s.addr.as_str()))
            .filter(|s| !self.has_session_to(&s.addr))
            .map(|s| s.addr.clone())
            .collect();
        for addr in &unlisted {
            tracing::debug!(node = %self.name, peer_address = %addr,
                "learned cluster peer no longer listed; not dialled any more");
        }
        self.seeds.retain(|s| !unlisted.contains(&s.addr));
    }

    fn connect_seeds(&mut self, myself: &ActorRef<ClusterNodeMsg>) {
        let now = Instant::now();
        let connected: Vec<bool> = (self.seeds.iter())
            .map(|seed| self.has_session_to(&seed.addr))
            .collect();
        for (seed, connected) in self.seeds.iter_mut().zip(connected) {
            if connected {
                continue;
            }
            if seed.connecting || now < seed.next_attempt {
                continue;
            }
            seed.connecting = true;
            let (server, addr, me) = (self.server.clone(), seed.addr.clone(), myself.clone());
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let attempt = connect(&server, &addr, tls.as_ref());
                let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                    Ok(result) => result,
                    Err(_) => Err(ConnectFailure {
                        tls: false,
                        message: format!("no connection within {CONNECT_TIMEOUT:?}"),
                    }),
                };
                let _ = me.cast(ClusterNodeMsg::Connected { seed: addr, result });
            });
        }
    }

    fn send_heartbeats(&self, myself: &ActorRef<ClusterNodeMsg>) {
        let payload = pb::NodeInfoRequest {
            with_streams: false,
            // With TLS, ractor_cluster's transitive connections are off: discover here.
            with_peers: self.tls.is_some(),
        }
        .encode_to_vec();
        for agent in crate::remote_agents() {
            let (me, payload) = (myself.clone(), payload.clone());
            tokio::spawn(async move {
                let node_id = agent.get_id().node();
                let bytes =
                    match crate::call_agent(&agent, |r| NodeAgentMsg::Info(payload, r)).await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            tracing::debug!("heartbeat: {e}");
                            return;
                        }
                    };
                match pb::NodeInfo::decode(bytes.as_slice()) {
                    Ok(info) if !info.name.is_empty() => {
                        let _ = me.cast(ClusterNodeMsg::Seen { node_id, info });
                    }
                    Ok(_) => tracing::warn!(node_id, "heartbeat answer without a name refused"),
                    Err(e) => tracing::warn!(node_id, "malformed heartbeat answer refused: {e}"),
                }
            });
        }
    }

    /// Marks the peers that answered no heartbeat within the timeout as gone.
    fn find_silent(&mut self) {
        for node_id in self.liveness.tick(Instant::now()) {
            let Some(session) = self.sessions.get_mut(&node_id) else {
                continue;
            };
            let name = session.name.clone().unwrap_or_default();
            let alias = (session.info.as_ref())
                .map(|i| i.alias.clone())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| name.clone());
            tracing::warn!(node = %self.name, peer = %name, address = %session.address,
                last_seen_ms = ?session.last_seen_ms,
                "cluster node left: no heartbeat answer within the peer timeout");
            // It joins again (node.joined, settings pulled) when it answers.
            if std::mem::take(&mut session.joined) {
                self.hooks.emit_nowait(events::node_left(
                    node_id_from_alias(&alias),
                    &alias,
                    "heartbeat_timeout",
                ));
            }
        }
    }

    /// Pulls a new peer's settings through its agent and applies them here.
    fn pull_settings(&self, node_id: u64, peer: String) {
        let agent = crate::remote_agents()
            .into_iter()
            .find(|a| a.get_id().node() == node_id);
        let Some(agent) = agent else { return };
        let (api, me, settings) = (self.api.clone(), self.name.clone(), self.settings.clone());
        tokio::spawn(async move {
            let payload = pb::SettingsRequest { node: me }.encode_to_vec();
            let bytes =
                match crate::call_agent(&agent, |r| NodeAgentMsg::Settings(payload, r)).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        tracing::warn!(%peer, "cannot pull settings: {e}");
                        return;
                    }
                };
            match pb::SettingsSnapshot::decode(bytes.as_slice()) {
                Ok(snapshot) => {
                    tracing::info!(%peer, hook_endpoints = snapshot.hook_endpoints.len(),
                        auto_record_rules = snapshot.auto_record_rules.len(),
                        "settings pulled from peer");
                    for update in snapshot.hook_endpoints {
                        crate::accept_update(&settings, &api, update).await;
                    }
                    for update in snapshot.auto_record_rules {
                        crate::accept_rule(&settings, update).await;
                    }
                }
                Err(e) => tracing::warn!(%peer, "malformed settings snapshot refused: {e}"),
            }
        });
    }
}

impl Actor for ClusterNode {
    type Msg = ClusterNodeMsg;
    type State = ClusterNodeState;
    type Arguments = ClusterNodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ClusterNodeArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.server.cast(NodeServerMessage::SubscribeToEvents {
            id: "recnode-cluster-node".to_string(),
            subscription: Box::new(Events(myself.clone())),
        })?;
        let own = args.settings.listen.to_string();
        let seeds = (args.settings.seeds.iter())
            .filter(|s| **s != own)
            .map(|addr| Seed::new(addr.clone(), false))
            .collect();
        let timer = myself.send_interval(TICK, || ClusterNodeMsg::Tick);
        let _ = myself.cast(ClusterNodeMsg::Tick);
        let tls = args.settings.tls.clone();
        let ca = tls.as_ref().map(|t| t.ca().display().to_string());
        tracing::info!(node = %args.settings.node_name, listen = %args.settings.listen,
            seeds = ?args.settings.seeds, tls_ca = ?ca, "cluster node server started");
        Ok(ClusterNodeState {
            name: args.settings.node_name,
            own: args.settings.listen,
            server: args.server,
            tls,
            hooks: args.hooks,
            api: args.api,
            settings: args.store,
            seeds,
            sessions: HashMap::new(),
            liveness: Liveness::new(args.settings.peer_timeout, args.silent),
            ticks: 0,
            timer: Some(timer),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        state.server.stop(None);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let node = state.name.clone();
        match msg {
            ClusterNodeMsg::SessionOpened(ses) => {
                tracing::debug!(%node, peer_addr = %ses.peer_addr, inbound = ses.is_server,
                    "cluster session opened");
                state.sessions.insert(
                    ses.node_id,
                    Session {
                        actor: ses.actor.get_id(),
                        name: short_name(&ses),
                        address: address(&ses),
                        authenticated: false,
                        connected_at_ms: crate::now_ms(),
                        last_seen_ms: None,
                        info: None,
                        joined: false,
                    },
                );
            }
            ClusterNodeMsg::SessionAuthenticated(ses) => {
                let name = short_name(&ses);
                tracing::info!(%node, peer = ?name, address = %address(&ses),
                    "cluster peer authenticated");
                let session = state.sessions.entry(ses.node_id).or_insert(Session {
                    actor: ses.actor.get_id(),
                    name: None,
                    address: String::new(),
                    authenticated: false,
                    connected_at_ms: crate::now_ms(),
                    last_seen_ms: None,
                    info: None,
                    joined: false,
                });
                session.name = name;
                session.address = address(&ses);
                session.authenticated = true;
                session.connected_at_ms = crate::now_ms();
                state.liveness.watch(ses.node_id, Instant::now());
                let addr = session.address.clone();
                if let Some(seed) = state.seeds.iter_mut().find(|s| s.addr == addr) {
                    seed.backoff = MIN_BACKOFF;
                }
            }
            ClusterNodeMsg::SessionClosed(ses) => {
                if (state.sessions.get(&ses.node_id)).is_none_or(|s| s.actor != ses.actor.get_id())
                {
                    return Ok(());
                }
                let Some(session) = state.sessions.remove(&ses.node_id) else {
                    return Ok(());
                };
                state.liveness.forget(ses.node_id);
                let name = session.name.clone().or_else(|| short_name(&ses));
                let address = address(&ses);
                if !session.authenticated {
                    let duplicate = name
                        .as_deref()
                        .is_some_and(|n| state.other_session_to(n, ses.node_id));
                    if duplicate {
                        tracing::debug!(%node, peer = ?name, %address,
                            "duplicate cluster session closed");
                    } else if state.tls.is_some() {
                        tracing::warn!(%node, peer = ?name, %address,
                            "cluster peer refused: authentication failed (wrong cookie, or the peer refused this node's TLS certificate?)");
                    } else {
                        tracing::warn!(%node, peer = ?name, %address,
                            "cluster peer refused: authentication failed (wrong cookie, or TLS on the peer only?)");
                    }
                    return Ok(());
                }
                let Some(name) = name else { return Ok(()) };
                if state.other_session_to(&name, ses.node_id) {
                    return Ok(());
                }
                let alias = session
                    .info
                    .as_ref()
                    .map(|i| i.alias.clone())
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| name.clone());
                tracing::warn!(%node, peer = %name, %address, "cluster node left");
                if session.joined {
                    state.hooks.emit_nowait(events::node_left(
                        node_id_from_alias(&alias),
                        &alias,
                        "disconnected",
                    ));
                }
                // Reconnect a seed at once rather than after its backoff.
                if let Some(seed) = state.seeds.iter_mut().find(|s| s.addr == address) {
                    seed.backoff = MIN_BACKOFF;
                    seed.next_attempt = Instant::now();
                }
            }
            ClusterNodeMsg::Tick => {
                state.ticks += 1;
                state.find_silent();
                state.forget_unlisted();
                state.connect_seeds(&myself);
                if state.ticks % HEARTBEAT_TICKS == 0 {
                    state.send_heartbeats(&myself);
                }
            }
            ClusterNodeMsg::Connected { seed, result } => {
                if let Some(s) = state.seeds.iter_mut().find(|s| s.addr == seed) {
                    s.connecting = false;
                    s.next_attempt = Instant::now() + s.backoff;
                    s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
                    match result {
                        Ok(()) => {}
                        Err(e) if e.tls => {
                            tracing::warn!(%node, %seed, retry_in = ?s.backoff,
                                "cluster peer refused: TLS handshake failed (is its certificate signed by the cluster CA, for the name dialled?): {}", e.message);
                        }
                        Err(e) => tracing::debug!(%node, %seed, retry_in = ?s.backoff,
                            "cannot reach cluster seed: {}", e.message),
                    }
                }
            }
            ClusterNodeMsg::Seen { node_id, info } => {
                let Some(session) = state.sessions.get_mut(&node_id) else {
                    return Ok(());
                };
                let back = state.liveness.heard(node_id, Instant::now());
                session.last_seen_ms = Some(crate::now_ms());
                let first = !session.joined;
                session.joined = true;
                let alias = match info.alias.as_str() {
                    "" => info.name.clone(),
                    a => a.to_string(),
                };
                let peer = info.name.clone();
                let listed = info.peers.clone();
                session.info = Some(info);
                if first {
                    if back {
                        tracing::info!(%node, %peer,
                            "cluster node answers again after its heartbeat timeout; rejoined");
                    } else {
                        tracing::info!(%node, %peer, "cluster node joined");
                    }
                    state
                        .hooks
                        .emit_nowait(events::node_joined(node_id_from_alias(&alias), &alias));
                    state.pull_settings(node_id, peer);
                }
                // Only TLS heartbeats ask for peers (`with_peers`); plain TCP discovery
                // is ractor_cluster's.
                if state.tls.is_some() {
                    state.learn(&listed);
                }
            }
            ClusterNodeMsg::Members(reply) => {
                let liveness = &state.liveness;
                let mut members: Vec<Member> = (state.sessions.iter())
                    .filter(|(id, s)| s.authenticated && !liveness.is_silent(**id))
                    .map(|(_, s)| s)
                    .filter_map(|s| {
                        Some(Member {
                            name: s.name.clone()?,
                            alias: s.info.as_ref().map(|i| i.alias.clone()).unwrap_or_default(),
                            address: s.address.clone(),
                            connected_at_ms: s.connected_at_ms,
                            last_seen_ms: s.last_seen_ms,
                            live_streams: s.info.as_ref().map_or(0, |i| i.live_streams),
                            recordings: s.info.as_ref().map_or(0, |i| i.recordings),
                        })
                    })
                    .collect();
                members.sort_by(|a, b| a.name.cmp(&b.name));
                members.dedup_by(|a, b| a.name == b.name);
                let _ = reply.send(members);
            }
        }
        Ok(())
    }
}

/// Opens a session to `addr`: plain TCP, or TLS with the cluster's connector.
async fn connect(
    server: &ActorRef<NodeServerMessage>,
    addr: &str,
    tls: Option<&ClusterTls>,
) -> Result<(), ConnectFailure> {
    let plain = |message: String| ConnectFailure {
        tls: false,
        message,
    };
    let Some(tls) = tls else {
        return ractor_cluster::client_connect(server, addr)
            .await
            .map_err(|e| plain(e.to_string()));
    };
    let name = tls
        .server_name_for(addr)
        .map_err(|message| ConnectFailure { tls: true, message })?;
    match ractor_cluster::client_connect_enc(server, addr, tls.connector(), name).await {
        Ok(()) => Ok(()),
        Err(ClientConnectErr::Encryption(e)) => Err(ConnectFailure {
            tls: true,
            message: e.to_string(),
        }),
        Err(e) => Err(plain(e.to_string())),
    }
}
