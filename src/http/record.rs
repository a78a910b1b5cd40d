//! The recording API, live777-compatible: `POST/GET/DELETE /api/record/{stream}` and
//! `GET /api/streams`. Handlers hold only the stream supervisor's `ActorRef` and ask it
//! with a timeout; every failure answers in [`ApiError`]'s JSON shape.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use recnode_actors::stream::{
    validate_stream_name, IngestProtocol, RecordError, RecordingInfo, StreamSupervisorMsg,
};
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
fn stream_name(raw: &str) -> Result<String, ApiError> {
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
    let base_dir = body.base_dir;
    let info = ask(&state.streams, |reply| {
        StreamSupervisorMsg::StartRecording {
            stream,
            base_dir,
            reply,
        }
    })
    .await?
    .map_err(record_error)?;
    Ok(HttpResponse::Ok().json(info_json(&info)))
}

/// `GET /api/record/{stream}`: `{"recording": bool, ...}`.
#[get("/record/{stream}")]
async fn recording_status(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream_name(&path)?;
    let status = ask(&state.streams, |reply| {
        StreamSupervisorMsg::RecordingStatus { stream, reply }
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
    Ok(HttpResponse::Ok().json(body))
}

/// `DELETE /api/record/{stream}`: stops the recording; it closes cleanly.
#[delete("/record/{stream}")]
async fn stop_recording(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream_name(&path)?;
    let info = ask(&state.streams, |reply| StreamSupervisorMsg::StopRecording {
        stream,
        reply,
    })
    .await?
    .map_err(record_error)?;
    Ok(HttpResponse::Ok().json(info_json(&info)))
}

/// `GET /api/streams`: every live stream with its codecs.
#[get("/streams")]
async fn list_streams(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let streams = ask(&state.streams, StreamSupervisorMsg::ListStreams).await?;
    let items: Vec<_> = streams
        .iter()
        .map(|s| {
            json!({
                "stream": s.stream,
                "app": s.app,
                "protocol": match s.protocol {
                    IngestProtocol::Rtmp => "rtmp",
                    IngestProtocol::Whip => "whip",
                },
                "codecs": s.codecs,
                "recording": s.recording,
                "started_at_ms": s.started_at_ms,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "streams": items })))
}
