//! The cluster API (under `/api`, behind the admin token), and this node's side of the
//! calls other nodes make.
//!
//! - `GET /api/cluster`: this node and every member it sees: `name`, `alias`, `address`,
//!   the `streams` live there and which of them are `recording`, its load
//!   (`live_streams`, `recordings`), `connected_at_ms` and `last_seen_ms` (unix ms of its
//!   last heartbeat answer). Without `[cluster] enabled` it answers 404 `cluster_disabled`.
//! - [`NodeApi`]: the [`recnode_cluster::LocalApi`] the node's agent answers other nodes
//!   with: forwarded recording calls go through [`super::record::local_record`], exactly
//!   like local ones.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse, ResponseError};
use ractor::rpc::CallResult;
use ractor::ActorRef;
use recnode_actors::hooks::{ConnectorError, ConnectorMsg, EndpointSpec, HookFormat, Hooks};
use recnode_actors::stream::StreamSupervisorMsg;
use recnode_cluster::{BoxFuture, LocalApi};
use recnode_proto::cluster::v1 as pb;
use serde_json::json;

use super::error::ApiError;
use super::ApiState;

/// How long applying a replicated setting waits for the connector.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers the cluster routes (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(cluster_members);
}

/// `GET /api/cluster`: the members, this node first.
#[get("/cluster")]
async fn cluster_members(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "cluster_disabled",
            message: "this node runs without [cluster] enabled".to_string(),
        });
    };
    let local = super::record::local_streams(&state.streams).await?;
    let (members, infos) = tokio::join!(cluster.members(), cluster.remote_infos(true));
    let now = recnode_cluster_now_ms();
    let mut out = vec![json!({
        "name": cluster.name(),
        "alias": cluster.alias(),
        "address": cluster.address(),
        "self": true,
        "streams": local.iter().map(|s| &s.stream).collect::<Vec<_>>(),
        "recording": local.iter().filter(|s| s.recording).map(|s| &s.stream).collect::<Vec<_>>(),
        "live_streams": local.len(),
        "recordings": local.iter().filter(|s| s.recording).count(),
        "last_seen_ms": now,
    })];
    for member in members {
        let info = infos.iter().find(|i| i.name == member.name);
        let streams: Vec<&str> = info
            .map(|i| i.streams.iter().map(|s| s.stream.as_str()).collect())
            .unwrap_or_default();
        let recording: Vec<&str> = info
            .map(|i| {
                (i.streams.iter())
                    .filter(|s| s.recording)
                    .map(|s| s.stream.as_str())
                    .collect()
            })
            .unwrap_or_default();
        out.push(json!({
            "name": member.name,
            "alias": member.alias,
            "address": member.address,
            "self": false,
            "streams": streams,
            "recording": recording,
            "live_streams": info.map_or(member.live_streams, |i| i.live_streams),
            "recordings": info.map_or(member.recordings, |i| i.recordings),
            "connected_at_ms": member.connected_at_ms,
            "last_seen_ms": member.last_seen_ms,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "node": cluster.name(), "members": out })))
}

fn recnode_cluster_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// This node's API as other nodes' calls reach it through the agent.
pub struct NodeApi {
    /// The stream supervisor.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// The node alias of its hook events.
    pub node_alias: String,
    /// The hook connector, where replicated endpoints are applied.
    pub hooks: Option<Hooks>,
}

impl NodeApi {
    /// Wraps the node's handles for the cluster layer.
    pub fn new(
        streams: ActorRef<StreamSupervisorMsg>,
        node_alias: String,
        hooks: Option<Hooks>,
    ) -> Arc<Self> {
        Arc::new(NodeApi {
            streams,
            node_alias,
            hooks,
        })
    }
}

/// Applies a replicated endpoint change to the connector: remove, then (unless deleted)
/// register again with the new settings.
async fn apply_endpoint(hooks: &Hooks, update: pb::HookEndpointUpdate) {
    let id = update.id.clone();
    let removed = hooks
        .connector
        .call(|r| ConnectorMsg::Delete(id.clone(), r), Some(CALL_TIMEOUT))
        .await;
    match removed {
        Ok(CallResult::Success(Ok(()) | Err(ConnectorError::NotFound(_)))) => {}
        other => {
            let error = connector_failure(other);
            tracing::error!(endpoint = %id, %error, "cannot replace a replicated hook endpoint");
            return;
        }
    }
    if update.deleted {
        return;
    }
    let spec = EndpointSpec {
        id: Some(update.id),
        url: Some(update.url),
        secret: Some(update.secret),
        format: HookFormat::parse(&update.format).unwrap_or_default(),
        events: (!update.events.is_empty()).then_some(update.events),
    };
    match hooks
        .connector
        .call(|r| ConnectorMsg::Create(spec, r), Some(CALL_TIMEOUT))
        .await
    {
        Ok(CallResult::Success(Ok(_))) => {}
        other => {
            let error = connector_failure(other);
            tracing::error!(endpoint = %id, %error, "replicated hook endpoint refused");
        }
    }
}

/// Says why a call to the connector did not succeed.
fn connector_failure<T, E>(answer: Result<CallResult<Result<T, ConnectorError>>, E>) -> String {
    match answer {
        Ok(CallResult::Success(Ok(_))) => "no error".to_string(),
        Ok(CallResult::Success(Err(e))) => e.to_string(),
        Ok(CallResult::Timeout) => "the connector did not answer in time".to_string(),
        Ok(CallResult::SenderError) | Err(_) => "the connector is not running".to_string(),
    }
}

impl LocalApi for NodeApi {
    fn record(&self, request: pb::RecordRequest) -> BoxFuture<pb::ApiReply> {
        let streams = self.streams.clone();
        Box::pin(async move {
            let op = request.op();
            let answer = match super::record::stream_name(&request.stream) {
                Ok(stream) => {
                    super::record::local_record(&streams, op, stream, request.base_dir).await
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(body) => pb::ApiReply {
                    status: 200,
                    body_json: body.to_string(),
                    node: String::new(),
                },
                Err(e) => {
                    let response = e.error_response();
                    pb::ApiReply {
                        status: u32::from(response.status().as_u16()),
                        body_json: json!({ "error": { "code": e.code, "message": e.message } })
                            .to_string(),
                        node: String::new(),
                    }
                }
            }
        })
    }

    fn info(&self, with_streams: bool) -> BoxFuture<pb::NodeInfo> {
        let streams = self.streams.clone();
        let alias = self.node_alias.clone();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Box::pin(async move {
            if !with_streams {
                // The heartbeat: the supervisor's counters, one answer whatever the
                // number of streams.
                let counts = super::record::local_counts(&streams)
                    .await
                    .unwrap_or_default();
                return pb::NodeInfo {
                    alias,
                    live_streams: count(counts.live_streams),
                    recordings: count(counts.recordings),
                    ..Default::default()
                };
            }
            let local = super::record::local_streams(&streams)
                .await
                .unwrap_or_default();
            pb::NodeInfo {
                alias,
                live_streams: count(local.len()),
                recordings: count(local.iter().filter(|s| s.recording).count()),
                streams: (local.into_iter())
                    .map(|s| pb::StreamEntry {
                        stream: s.stream,
                        app: s.app,
                        protocol: s.protocol.as_str().to_string(),
                        codecs: s.codecs,
                        recording: s.recording,
                        started_at_ms: s.started_at_ms,
                    })
                    .collect(),
                ..Default::default()
            }
        })
    }

    fn apply_hook_endpoint(&self, update: pb::HookEndpointUpdate) -> BoxFuture<()> {
        let hooks = self.hooks.clone();
        Box::pin(async move {
            match hooks {
                Some(hooks) => apply_endpoint(&hooks, update).await,
                None => tracing::warn!(endpoint = %update.id,
                    "replicated hook endpoint ignored: this node runs without hooks"),
            }
        })
    }
}
