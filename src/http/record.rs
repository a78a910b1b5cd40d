//! The recording API, live777-compatible: `POST/GET/DELETE /api/record/{stream}` and
//! `GET /api/streams`. Handlers hold only the stream supervisor's `ActorRef` and ask it
//! with a timeout; every failure answers in [`ApiError`]'s JSON shape.
//!
//! In a cluster (`[cluster] enabled`), a call for a stream live on another node is
//! forwarded to that node's agent and answered with the owner's status and body; every
//! successful answer then names the owner in `"node"`, and `GET /api/streams` lists the
//! streams of every node, each with its `"node"`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use recnode_actors::stream::{
    validate_stream_name, IngestProtocol, RecordError, RecordingInfo, StreamCounts, StreamInfo,
    StreamSupervisorMsg,
};
use recnode_cluster::Owner;
use recnode_proto::cluster::v1::{RecordOp, RecordRequest};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::ApiState;

/// How long an API call waits for the stream supervisor before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body the recording API reads.
const MAX_BODY: usize = 16 * 1024;

/// Registers the recording routes (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(start_recording)
        .service(recording_status)
        .service(stop_recording)
        .service(list_streams);
}

/// The optional body of `POST /api/record/{stream}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// live777's `base_dir`: the record_dir to use exactly.
    base_dir: Option<String>,
}

/// Asks the stream supervisor and maps transport failures to 503.
async fn ask<T: Send + 'static>(
    streams: &ActorRef<StreamSupervisorMsg>,
    msg: impl FnOnce(RpcReplyPort<T>) -> StreamSupervisorMsg,
) -> Result<T, ApiError> {
    let unavailable = |what: &str| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "unavailable",
        message: format!("the stream supervisor {what}"),
    };
    match streams.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(unavailable("did not answer in time")),
        Ok(CallResult::SenderError) | Err(_) => Err(unavailable("is not running")),
    }
}

/// Checks a stream name taken from the path.
pub(crate) fn stream_name(raw: &str) -> Result<String, ApiError> {
    validate_stream_name(raw).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_stream_name",
        message: e.to_string(),
    })?;
    Ok(raw.to_string())
}

/// Maps a recording error onto its HTTP status and code.
fn record_error(e: RecordError) -> ApiError {
    let (status, code) = match &e {
        RecordError::NotFound { .. } => (StatusCode::NOT_FOUND, "stream_not_found"),
        RecordError::NotRecording { .. } => (StatusCode::NOT_FOUND, "not_recording"),
        RecordError::AlreadyRecording { .. } => (StatusCode::CONFLICT, "already_recording"),
        RecordError::InvalidBaseDir { .. } => (StatusCode::BAD_REQUEST, "invalid_base_dir"),
        RecordError::Failed { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "record_failed"),
        RecordError::InsufficientStorage { .. } => {
            (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
        }
    };
    ApiError {
        status,
        code,
        message: e.to_string(),
    }
}

/// live777's answer shape for a recording.
fn info_json(info: &RecordingInfo) -> serde_json::Value {
    json!({
        "id": info.id,
        "record_id": info.record_id,
        "record_dir": info.record_dir,
        "mpd_path": info.mpd_path,
    })
}

/// `POST /api/record/{stream}` with an optional `{"base_dir": "..."}`: starts a recording.
#[post("/record/{stream}")]
async fn start_recording(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let stream = stream_name(&path)?;
    if body.len() > MAX_BODY {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: format!("the body may be at most {MAX_BODY} bytes"),
        });
    }
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_body",
            message: format!("expected {{\"base_dir\"?: string}}: {e}"),
        })?
    };
    dispatch(&state, RecordOp::Start, stream, body.base_dir).await
}

/// `GET /api/record/{stream}`: `{"recording": bool, ...}`.
#[get("/record/{stream}")]
async fn recording_status(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream_name(&path)?;
    dispatch(&state, RecordOp::Status, stream, None).await
}

/// `DELETE /api/record/{stream}`: stops the recording; it closes cleanly.
#[delete("/record/{stream}")]
async fn stop_recording(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream_name(&path)?;
    dispatch(&state, RecordOp::Stop, stream, None).await
}

/// Answers a recording call here, or forwards it to the node where the stream is live.
async fn dispatch(
    state: &ApiState,
    op: RecordOp,
    stream: String,
    base_dir: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(cluster) = &state.cluster else {
        let body = local_record(&state.streams, op, stream, base_dir).await?;
        return Ok(HttpResponse::Ok().json(body));
    };
    let agent = match cluster.owner(&stream) {
        Owner::Remote(agent) => agent,
        Owner::Local | Owner::Nobody => {
            let mut body = local_record(&state.streams, op, stream, base_dir).await?;
            if let Some(map) = body.as_object_mut() {
                map.insert("node".into(), json!(cluster.name()));
            }
            return Ok(HttpResponse::Ok().json(body));
        }
    };
    let request = RecordRequest {
        op: op.into(),
        stream,
        base_dir,
    };
    let reply = cluster
        .forward_record(&agent, request)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "owner_unreachable",
            message: e.to_string(),
        })?;
    let status = u16::try_from(reply.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "owner_malformed",
            message: format!("node {} answered status {}", reply.node, reply.status),
        })?;
    let mut body: serde_json::Value =
        serde_json::from_str(&reply.body_json).map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "owner_malformed",
            message: format!("node {} answered a body that is not JSON: {e}", reply.node),
        })?;
    if let Some(map) = body.as_object_mut() {
        map.insert("node".into(), json!(reply.node));
    }
    Ok(HttpResponse::build(status).json(body))
}

/// Answers a recording call from this node's stream supervisor: the JSON body, or the error.
pub(crate) async fn local_record(
    streams: &ActorRef<StreamSupervisorMsg>,
    op: RecordOp,
    stream: String,
    base_dir: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    match op {
        RecordOp::Start => {
            let info = ask(streams, |reply| StreamSupervisorMsg::StartRecording {
                stream,
                base_dir,
                reply,
            })
            .await?
            .map_err(record_error)?;
            Ok(info_json(&info))
        }
        RecordOp::Status => {
            let status = ask(streams, |reply| StreamSupervisorMsg::RecordingStatus {
                stream,
                reply,
            })
            .await?
            .map_err(record_error)?;
            let mut body = json!({
                "recording": status.recording,
                "duration_seconds": status.duration_seconds,
                "restarts": status.restarts,
                // Why the stream's last recording failed for good, or null.
                "failed": status.failed,
            });
            if let (Some(current), Some(map)) = (&status.current, body.as_object_mut()) {
                if let serde_json::Value::Object(info) = info_json(current) {
                    map.extend(info);
                }
            }
            Ok(body)
        }
        RecordOp::Stop => {
            let info = ask(streams, |reply| StreamSupervisorMsg::StopRecording {
                stream,
                reply,
            })
            .await?
            .map_err(record_error)?;
            Ok(info_json(&info))
        }
        RecordOp::Unspecified => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_forward",
            message: "the forwarded call names no operation".to_string(),
        }),
    }
}

/// This node's live streams.
pub(crate) async fn local_streams(
    streams: &ActorRef<StreamSupervisorMsg>,
) -> Result<Vec<StreamInfo>, ApiError> {
    ask(streams, StreamSupervisorMsg::ListStreams).await
}

/// This node's stream counts, from the stream supervisor's counters (no stream is asked).
pub(crate) async fn local_counts(
    streams: &ActorRef<StreamSupervisorMsg>,
) -> Result<StreamCounts, ApiError> {
    ask(streams, StreamSupervisorMsg::Counts).await
}

/// `GET /api/streams`: every live stream with its codecs (in a cluster: of every node).
#[get("/streams")]
async fn list_streams(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let streams = local_streams(&state.streams).await?;
    let mut items: Vec<_> = streams
        .iter()
        .map(|s| {
            let mut item = json!({
                "stream": s.stream,
                "app": s.app,
                "protocol": match s.protocol {
                    IngestProtocol::Rtmp => "rtmp",
                    IngestProtocol::Whip => "whip",
                },
                "codecs": s.codecs,
                "recording": s.recording,
                "started_at_ms": s.started_at_ms,
            });
            if let (Some(cluster), Some(map)) = (&state.cluster, item.as_object_mut()) {
                map.insert("node".into(), json!(cluster.name()));
            }
            item
        })
        .collect();
    if let Some(cluster) = &state.cluster {
        for node in cluster.remote_infos(true).await {
            items.extend(node.streams.iter().map(|s| {
                json!({
                    "stream": s.stream,
                    "app": s.app,
                    "protocol": s.protocol,
                    "codecs": s.codecs,
                    "recording": s.recording,
                    "started_at_ms": s.started_at_ms,
                    "node": node.name,
                })
            }));
        }
        items.sort_by(|a, b| a["stream"].as_str().cmp(&b["stream"].as_str()));
    }
    Ok(HttpResponse::Ok().json(json!({ "streams": items })))
}
