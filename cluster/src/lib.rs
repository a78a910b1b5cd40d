//! recnode's cluster layer.
//!
//! Owns everything that crosses nodes:
//! - [`node`]: the `ractor_cluster` `NodeServer` (started with the cookie and
//!   `NodeConnectionMode::Transitive`, set explicitly) and the [`node::ClusterNode`] actor,
//!   which keeps connecting to the seeds with backoff (ractor_cluster does not
//!   reconnect), tracks the members, logs refused peers and emits `node.joined` /
//!   `node.left` hook events for peers that come and go;
//! - [`agent`]: the per-node [`agent::NodeAgent`], the only remotable actor. Its messages
//!   derive `RactorClusterMessage` and carry prost types from [`recnode_proto::cluster::v1`]
//!   encoded as bytes, which the agent decodes itself: a malformed payload is refused
//!   and logged, never unwrapped;
//! - [`placement`]: which node owns stream `{name}`: the NodeAgent of the node where it is
//!   live is the member of the process group `stream/{name}`;
//! - [`liveness`]: which peers went silent (no heartbeat answer within
//!   `peer_timeout`): they count as gone although their session is open;
//! - [`settings`]: the cluster-wide settings (hook endpoints, auto-record rules), last
//!   writer wins, persisted on each node; the store also runs on a node without a cluster;
//! - [`tls`]: optional mutual TLS between nodes (`[cluster.tls]`), checked against the
//!   cluster's CA; the cookie challenge still runs inside it.
//!
//! Media never crosses the cluster: streams, recorders and uploaders keep local-only
//! messages (`RactorMessage`), so ractor_cluster never advertises them. The control
//! traffic between idle nodes is ractor_cluster's own (session set-up, one process group
//! update per stream that goes live or ends) plus one small heartbeat call per peer per
//! second (with TLS its answer also lists the peer's peers, for discovery); nothing per
//! packet or per recorder. A peer that answers no heartbeat for
//! `peer_timeout` is reported gone although its session is open (a frozen or
//! partitioned process keeps its sockets), until it answers again.
//!
//! The binary plugs the node's own API into the agent through [`LocalApi`], so a
//! forwarded call is answered by exactly the code that answers a local one.
#![deny(missing_docs)]

pub mod agent;
pub mod liveness;
pub mod node;
pub mod placement;
pub mod settings;
pub mod tls;

pub use recnode_actors as actors;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message as _};
use recnode_actors::hooks::HookEmitter;
use recnode_proto::cluster::v1 as pb;
use recnode_proto::Message;

use agent::{NodeAgent, NodeAgentArgs, NodeAgentMsg};
use node::{ClusterNode, ClusterNodeArgs, ClusterNodeMsg, Member};

/// The process group every NodeAgent joins, to find the cluster's agents.
pub const AGENTS_GROUP: &str = "recnode/agents";

/// How long a call to another node's agent may take.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

/// A boxed future, as [`LocalApi`] returns them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// This node's own API, which the agent calls to answer other nodes.
pub trait LocalApi: Send + Sync + 'static {
    /// Answers a recording API call for a stream live on this node (the agent fills `node`).
    fn record(&self, request: pb::RecordRequest) -> BoxFuture<pb::ApiReply>;
    /// Describes this node's streams and load (the agent fills name and address).
    fn info(&self, with_streams: bool) -> BoxFuture<pb::NodeInfo>;
    /// Applies a hook endpoint change from another node (already found newer than what
    /// this node had, and stored).
    fn apply_hook_endpoint(&self, update: pb::HookEndpointUpdate) -> BoxFuture<()>;
}

/// What the cluster layer starts from (`[cluster]` in the binary's config).
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's name, unique in the cluster.
    pub node_name: String,
    /// The node alias of this node's hook events.
    pub node_alias: String,
    /// Where the node server listens for peers.
    pub listen: SocketAddr,
    /// The shared secret.
    pub cookie: String,
    /// Peers to keep connected to (`host:port`).
    pub seeds: Vec<String>,
    /// A peer that answers no heartbeat for this long is reported gone until it answers.
    pub peer_timeout: Duration,
    /// Mutual TLS between nodes (loaded by [`tls::load`]); `None`: plain TCP.
    pub tls: Option<tls::ClusterTls>,
}

/// Why the cluster layer could not start or a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An actor (node server, agent, cluster node) did not start.
    #[error("cannot start the cluster's {what}: {message}")]
    Spawn {
        /// Which actor.
        what: &'static str,
        /// ractor's error.
        message: String,
    },
    /// The other node did not answer in time or its session closed.
    #[error("node {node} did not answer: {reason}")]
    Unreachable {
        /// The node (its agent's actor id when the name is unknown).
        node: String,
        /// What happened.
        reason: String,
    },
    /// The other node answered with bytes that do not decode.
    #[error("node {node} sent a malformed answer: {source}")]
    Malformed {
        /// The node.
        node: String,
        /// prost's error.
        #[source]
        source: recnode_proto::prost::DecodeError,
    },
}

/// Who owns a stream, from the process group `stream/{name}`.
#[derive(Debug, Clone)]
pub enum Owner {
    /// The stream is live on this node.
    Local,
    /// The stream is live on another node; this is its agent.
    Remote(ActorRef<NodeAgentMsg>),
    /// The stream is live nowhere in the cluster.
    Nobody,
}

/// A handle on this node's cluster layer; cheap to clone (actor references only).
#[derive(Clone)]
pub struct Cluster {
    name: String,
    alias: String,
    address: String,
    agent: ActorRef<NodeAgentMsg>,
    node: ActorRef<ClusterNodeMsg>,
    settings: ActorRef<settings::SettingsMsg>,
    silent: liveness::SilentPeers,
    group_changes: placement::GroupChanges,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.name).finish()
    }
}

/// Starts the node server, this node's agent and the cluster node (membership, seeds).
///
/// `hooks` emits `node.joined`/`node.left` for peers; `api` answers other nodes' calls;
/// `store` is this node's [`settings::SettingsStore`] (started by the binary, which also
/// runs it without a cluster), which the cluster keeps in step with the other nodes'.
pub async fn start(
    settings: ClusterSettings,
    api: Arc<dyn LocalApi>,
    hooks: HookEmitter,
    store: ActorRef<settings::SettingsMsg>,
) -> Result<Cluster, ClusterError> {
    let spawn_err = |what: &'static str| {
        move |e: ractor::SpawnErr| ClusterError::Spawn {
            what,
            message: e.to_string(),
        }
    };
    let server = node::start_server(&settings)
        .await
        .map_err(spawn_err("node server"))?;
    let (agent, _) = ractor::Actor::spawn(
        None,
        NodeAgent,
        NodeAgentArgs {
            name: settings.node_name.clone(),
            address: settings.listen.to_string(),
            api: api.clone(),
            settings: store.clone(),
            server: server.clone(),
        },
    )
    .await
    .map_err(spawn_err("node agent"))?;
    let silent = liveness::SilentPeers::default();
    let (node, _) = ractor::Actor::spawn(
        None,
        ClusterNode,
        ClusterNodeArgs {
            settings: settings.clone(),
            server,
            hooks,
            api,
            store: store.clone(),
            silent: silent.clone(),
        },
    )
    .await
    .map_err(spawn_err("cluster node"))?;
    Ok(Cluster {
        name: settings.node_name,
        alias: settings.node_alias,
        address: settings.listen.to_string(),
        agent,
        node,
        settings: store,
        silent,
        group_changes: placement::GroupChanges::default(),
    })
}

impl Cluster {
    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This node's hook alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// This node's cluster address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The placement the stream supervisor claims stream names through.
    pub fn placement(&self) -> Arc<dyn recnode_actors::stream::StreamPlacement> {
        Arc::new(placement::ClusterPlacement::new(
            self.agent.get_cell(),
            self.silent.clone(),
            self.group_changes.clone(),
        ))
    }

    /// How many times this node joined and left `stream/*` process groups since start.
    pub fn stream_group_changes(&self) -> &placement::GroupChanges {
        &self.group_changes
    }

    /// Who owns `stream` right now (silent peers own nothing).
    pub fn owner(&self, stream: &str) -> Owner {
        placement::owner(stream, &self.silent)
    }

    /// Forwards a recording API call to the owner's agent and returns its answer.
    pub async fn forward_record(
        &self,
        owner: &ActorRef<NodeAgentMsg>,
        request: pb::RecordRequest,
    ) -> Result<pb::ApiReply, ClusterError> {
        let payload = request.encode_to_vec();
        let bytes = call_agent(owner, |reply| NodeAgentMsg::Record(payload, reply)).await?;
        pb::ApiReply::decode(bytes.as_slice()).map_err(|source| ClusterError::Malformed {
            node: owner.get_id().to_string(),
            source,
        })
    }

    /// Every other node's description (those that answer in time), sorted by name.
    /// Silent peers are not asked: they are gone until they answer a heartbeat again.
    pub async fn remote_infos(&self, with_streams: bool) -> Vec<pb::NodeInfo> {
        let agents = remote_agents().into_iter();
        let agents = agents.filter(|agent| self.silent.reachable(&agent.get_cell()));
        let calls = agents.map(|agent| async move {
            let payload = pb::NodeInfoRequest {
                with_streams,
                with_peers: false,
            }
            .encode_to_vec();
            let answer = call_agent(&agent, |reply| NodeAgentMsg::Info(payload, reply)).await;
            match answer.map(|bytes| pb::NodeInfo::decode(bytes.as_slice())) {
                Ok(Ok(info)) if !info.name.is_empty() => Some(info),
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    tracing::warn!(agent = %agent.get_id(), "malformed node info refused: {e}");
                    None
                }
                Err(e) => {
                    tracing::debug!("{e}");
                    None
                }
            }
        });
        let mut infos: Vec<pb::NodeInfo> = join_all(calls).await.into_iter().flatten().collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// The members this node sees (itself excluded), sorted by name.
    pub async fn members(&self) -> Vec<Member> {
        match ractor::call_t!(self.node, ClusterNodeMsg::Members, 5_000) {
            Ok(members) => members,
            Err(e) => {
                tracing::error!("cluster node did not answer: {e}");
                Vec::new()
            }
        }
    }

    /// Records a hook endpoint change made through this node's API (already applied
    /// here) and sends it to every other node. `version` and `writer` are set here. A node
    /// that misses it catches up from a peer when it (re)joins.
    pub async fn publish_hook_endpoint(&self, mut update: pb::HookEndpointUpdate) {
        update.version = now_ms();
        update.writer = self.name.clone();
        match ractor::call_t!(
            self.settings,
            settings::SettingsMsg::Offer,
            5_000,
            update.clone()
        ) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(endpoint = %update.id, "an equal or newer change is stored")
            }
            Err(e) => tracing::error!(endpoint = %update.id, "settings store did not answer: {e}"),
        }
        let payload = update.encode_to_vec();
        for agent in remote_agents() {
            if let Err(e) = agent.cast(NodeAgentMsg::HookEndpoint(payload.clone())) {
                tracing::warn!(agent = %agent.get_id(), "hook endpoint not sent: {e}");
            }
        }
    }

    /// Sends an auto-record rule change made through this node's API (already stored
    /// here, versioned by the store) to every other node. A node that misses it catches
    /// up from a peer when it (re)joins.
    pub fn publish_rule(&self, update: &pb::AutoRecordRuleUpdate) {
        let payload = update.encode_to_vec();
        for agent in remote_agents() {
            if let Err(e) = agent.cast(NodeAgentMsg::AutoRecordRule(payload.clone())) {
                tracing::warn!(agent = %agent.get_id(), rule = %update.id,
                    "auto-record rule not sent: {e}");
            }
        }
    }

    /// Stops the cluster layer's actors (the node server's sessions close with them). The
    /// settings store is the binary's to stop.
    pub fn stop(&self) {
        self.node.stop(None);
        self.agent.stop(None);
    }
}

/// The other nodes' agents, from the process group every agent joins.
pub(crate) fn remote_agents() -> Vec<ActorRef<NodeAgentMsg>> {
    ractor::pg::get_members(&AGENTS_GROUP.to_string())
        .into_iter()
        .filter(|cell| !cell.get_id().is_local())
        .map(ActorRef::from)
        .collect()
}

/// Calls an agent with [`REMOTE_TIMEOUT`].
pub(crate) async fn call_agent(
    agent: &ActorRef<NodeAgentMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<Vec<u8>>) -> NodeAgentMsg,
) -> Result<Vec<u8>, ClusterError> {
    // Keeps the derive's contract visible: the message is remotable.
    debug_assert!(NodeAgentMsg::serializable());
    let unreachable = |reason: String| ClusterError::Unreachable {
        node: agent.get_id().to_string(),
        reason,
    };
    match agent.call(msg, Some(REMOTE_TIMEOUT)).await {
        Ok(CallResult::Success(bytes)) => Ok(bytes),
        Ok(CallResult::Timeout) => Err(unreachable("timed out".into())),
        Ok(CallResult::SenderError) => Err(unreachable("session closed".into())),
        Err(e) => Err(unreachable(e.to_string())),
    }
}

/// Runs futures concurrently and collects their outputs in order (no extra dependency).
pub(crate) async fn join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}

/// Offers a change from a peer to the store and applies it here when it is newer.
pub(crate) async fn accept_update(
    settings: &ActorRef<settings::SettingsMsg>,
    api: &Arc<dyn LocalApi>,
    update: pb::HookEndpointUpdate,
) {
    match ractor::call_t!(
        settings,
        settings::SettingsMsg::Offer,
        5_000,
        update.clone()
    ) {
        Ok(true) => {
            tracing::info!(endpoint = %update.id, writer = %update.writer,
                deleted = update.deleted, "applying a cluster hook endpoint change");
            api.apply_hook_endpoint(update).await;
        }
        Ok(false) => tracing::debug!(endpoint = %update.id, "older hook endpoint change ignored"),
        Err(e) => tracing::error!(endpoint = %update.id, "settings store did not answer: {e}"),
    }
}

/// Offers an auto-record rule change from a peer to the store, which applies it (tells the
/// stream supervisor) when it is newer.
pub(crate) async fn accept_rule(
    settings: &ActorRef<settings::SettingsMsg>,
    update: pb::AutoRecordRuleUpdate,
) {
    let (id, writer, deleted) = (update.id.clone(), update.writer.clone(), update.deleted);
    match ractor::call_t!(settings, settings::SettingsMsg::OfferRule, 5_000, update) {
        Ok(true) => {
            tracing::info!(rule = %id, %writer, deleted, "applied a cluster auto-record rule change")
        }
        Ok(false) => {
            tracing::debug!(rule = %id, "older or invalid auto-record rule change ignored")
        }
        Err(e) => tracing::error!(rule = %id, "settings store did not answer: {e}"),
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
