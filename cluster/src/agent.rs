//! [`NodeAgent`]: this node's representative in the cluster, and the only actor other
//! nodes can reach.
//!
//! It answers other nodes' calls (forwarded recording API calls, node info, settings)
//! through the binary's [`LocalApi`], and stands for this node in the process groups:
//! `recnode/agents` (every agent) and `stream/{name}` (the streams live here, see
//! [`crate::placement`]).
//!
//! Every variant carries a prost message from `proto/schema/cluster.proto` encoded as
//! bytes. ractor's generated code would unwrap a prost decode, so the agent decodes
//! each payload itself: a malformed one is logged and refused (an RPC gets an error
//! answer, a cast is dropped); it never panics the actor. Each call is answered from its
//! own task, so a slow local API never holds up the agent's loop.
//!
//! Started by [`crate::start`], unsupervised: if it fails, the node drops out of the
//! process groups and other nodes see its streams as live nowhere until the node restarts.
//!
//! Mailbox: unbounded (ractor's). It receives API calls made by operators on other nodes,
//! one heartbeat per peer per second and rare settings changes (hook endpoints,
//! auto-record rules), never media.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::NodeServerMessage;
use ractor_cluster_derive::RactorClusterMessage;
use recnode_proto::cluster::v1 as pb;
use recnode_proto::Message;

use crate::LocalApi;

/// The per-node agent actor.
pub struct NodeAgent;

/// Messages to a node agent, possibly from another node. Each `Vec<u8>` is an encoded
/// prost message, decoded by the agent with error handling.
#[derive(RactorClusterMessage)]
pub enum NodeAgentMsg {
    /// A [`pb::RecordRequest`]; answers a [`pb::ApiReply`].
    #[rpc]
    Record(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// A [`pb::NodeInfoRequest`]; answers a [`pb::NodeInfo`] (empty bytes on a bad request).
    #[rpc]
    Info(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// A [`pb::HookEndpointUpdate`] to apply here.
    HookEndpoint(Vec<u8>),
    /// A [`pb::SettingsRequest`]; answers a [`pb::SettingsSnapshot`].
    #[rpc]
    Settings(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// A [`pb::AutoRecordRuleUpdate`] to apply here.
    AutoRecordRule(Vec<u8>),
}

/// What the agent starts from.
pub struct NodeAgentArgs {
    /// This node's name.
    pub name: String,
    /// This node's cluster address.
    pub address: String,
    /// This node's API.
    pub api: Arc<dyn LocalApi>,
    /// The cluster-wide settings.
    pub settings: ActorRef<crate::settings::SettingsMsg>,
    /// The node server, whose sessions name this node's peers (`with_peers`).
    pub server: ActorRef<NodeServerMessage>,
}

/// The agent's state: its identity and the local API.
pub struct NodeAgentState {
    name: String,
    address: String,
    api: Arc<dyn LocalApi>,
    settings: ActorRef<crate::settings::SettingsMsg>,
    server: ActorRef<NodeServerMessage>,
    started_at_ms: u64,
}

/// A refusal in the shape of the HTTP API's errors.
fn bad_request(node: &str, message: String) -> pb::ApiReply {
    pb::ApiReply {
        status: 400,
        body_json: serde_error("invalid_forward", &message),
        node: node.to_string(),
    }
}

/// `{"error": {"code": ..., "message": ...}}`, the HTTP API's error shape.
fn serde_error(code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
}

impl Actor for NodeAgent {
    type Msg = NodeAgentMsg;
    type State = NodeAgentState;
    type Arguments = NodeAgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeAgentArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join(crate::AGENTS_GROUP.to_string(), vec![myself.get_cell()]);
        Ok(NodeAgentState {
            name: args.name,
            address: args.address,
            api: args.api,
            settings: args.settings,
            server: args.server,
            started_at_ms: crate::now_ms(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let node = state.name.clone();
        match msg {
            NodeAgentMsg::Record(payload, reply) => {
                let request = pb::RecordRequest::decode(payload.as_slice());
                let api = state.api.clone();
                tokio::spawn(async move {
                    let answer = match request {
                        Ok(request) => {
                            let mut answer = api.record(request).await;
                            answer.node = node;
                            answer
                        }
                        Err(e) => {
                            tracing::warn!(%node, "malformed record request refused: {e}");
                            bad_request(&node, format!("malformed record request: {e}"))
                        }
                    };
                    let _ = reply.send(answer.encode_to_vec());
                });
            }
            NodeAgentMsg::Info(payload, reply) => {
                match pb::NodeInfoRequest::decode(payload.as_slice()) {
                    Ok(request) => {
                        let api = state.api.clone();
                        let (address, started_at_ms) = (state.address.clone(), state.started_at_ms);
                        let server = state.server.clone();
                        tokio::spawn(async move {
                            let mut info = api.info(request.with_streams).await;
                            info.name = node;
                            info.address = address;
                            info.started_at_ms = started_at_ms;
                            if request.with_peers {
                                info.peers = crate::node::peer_addresses(&server).await;
                            }
                            let _ = reply.send(info.encode_to_vec());
                        });
                    }
                    Err(e) => {
                        tracing::warn!(%node, "malformed node info request refused: {e}");
                        let _ = reply.send(Vec::new());
                    }
                }
            }
            NodeAgentMsg::HookEndpoint(payload) => {
                match pb::HookEndpointUpdate::decode(payload.as_slice()) {
                    Ok(update) => {
                        let (api, settings) = (state.api.clone(), state.settings.clone());
                        tokio::spawn(async move {
                            crate::accept_update(&settings, &api, update).await;
                        });
                    }
                    Err(e) => tracing::warn!(%node, "malformed hook endpoint update refused: {e}"),
                }
            }
            NodeAgentMsg::AutoRecordRule(payload) => {
                match pb::AutoRecordRuleUpdate::decode(payload.as_slice()) {
                    Ok(update) => {
                        let settings = state.settings.clone();
                        tokio::spawn(async move {
                            crate::accept_rule(&settings, update).await;
                        });
                    }
                    Err(e) => tracing::warn!(%node, "malformed auto-record rule refused: {e}"),
                }
            }
            NodeAgentMsg::Settings(payload, reply) => {
                match pb::SettingsRequest::decode(payload.as_slice()) {
                    Ok(request) => {
                        tracing::debug!(%node, peer = %request.node, "settings asked for");
                        let settings = state.settings.clone();
                        tokio::spawn(async move {
                            let snapshot = ractor::call_t!(
                                settings,
                                crate::settings::SettingsMsg::Snapshot,
                                5_000
                            )
                            .unwrap_or_default();
                            let _ = reply.send(snapshot.encode_to_vec());
                        });
                    }
                    Err(e) => {
                        tracing::warn!(%node, "malformed settings request refused: {e}");
                        let _ = reply.send(Vec::new());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::Message as _;

    #[test]
    fn agent_messages_are_remotable_and_refuse_truncated_frames() {
        assert!(NodeAgentMsg::serializable());
        let msg = NodeAgentMsg::HookEndpoint(vec![1, 2, 3]);
        let serialized = msg.serialize().expect("serializes");
        let ractor::message::SerializedMessage::Cast {
            variant,
            mut args,
            metadata,
        } = serialized
        else {
            panic!("a cast serializes as a cast");
        };
        args.truncate(5);
        let truncated = ractor::message::SerializedMessage::Cast {
            variant,
            args,
            metadata,
        };
        assert!(NodeAgentMsg::deserialize(truncated).is_err());
    }

    #[test]
    fn error_bodies_are_json() {
        let body: serde_json::Value =
            serde_json::from_str(&serde_error("x", "a \"b\"\n")).expect("json");
        assert_eq!(body["error"]["message"], "a \"b\"\n");
    }
}
