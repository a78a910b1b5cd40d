//! Test hooks over HTTP, compiled only with the `fault-injection` feature (the test build
//! of the binary has it; a plain `cargo build` does not):
//! `POST /api/debug/fault/{stream}/{fault}` with `fault` one of
//! - `fail-recorder`: the stream's running recorder session fails at once, as on a write
//!   error, so its supervisor restarts it;
//! - `fire-rotation`: every rotation timer of the stream fires now.
//!
//! Answers 204 once the stream actor has the fault, 404 `stream_not_found` when the
//! stream is not live, 404 `unknown_fault` for any other fault name.
//!
//! `POST /api/debug/disk_free/{bytes}` makes the disk guard see `bytes` free bytes under
//! the spool (`measure` returns to real measurements); 204 once the level is in effect.
//!
//! Both sit in the `/api` scope, behind the admin token like the rest of the API.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use ractor::rpc::CallResult;
use recnode_actors::stream::{validate_stream_name, RecordError, StreamFault, StreamSupervisorMsg};

use super::error::ApiError;
use super::ApiState;

/// How long the call waits for the stream supervisor before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Registers the debug routes (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(inject_fault).service(override_disk_free);
}

/// The fault a path segment names, if any.
fn parse_fault(name: &str) -> Option<StreamFault> {
    match name {
        "fail-recorder" => Some(StreamFault::FailRecorder),
        "fire-rotation" => Some(StreamFault::FireRotationTimers),
        _ => None,
    }
}

/// `POST /api/debug/fault/{stream}/{fault}`: injects `fault` into the live stream.
#[post("/debug/fault/{stream}/{fault}")]
async fn inject_fault(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (stream, fault_name) = path.into_inner();
    validate_stream_name(&stream).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_stream_name",
        message: e.to_string(),
    })?;
    let fault = parse_fault(&fault_name).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "unknown_fault",
        message: format!("unknown fault {fault_name:?}; expected fail-recorder or fire-rotation"),
    })?;
    let unavailable = |what: &str| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "unavailable",
        message: format!("the stream supervisor {what}"),
    };
    let answer = state
        .streams
        .call(
            |reply| StreamSupervisorMsg::InjectFault {
                stream,
                fault,
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(Ok(()))) => Ok(HttpResponse::NoContent().finish()),
        Ok(CallResult::Success(Err(e @ RecordError::NotFound { .. }))) => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "stream_not_found",
            message: e.to_string(),
        }),
        Ok(CallResult::Success(Err(e))) => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "fault_failed",
            message: e.to_string(),
        }),
        Ok(CallResult::Timeout) => Err(unavailable("did not answer in time")),
        Ok(CallResult::SenderError) | Err(_) => Err(unavailable("is not running")),
    }
}

/// `POST /api/debug/disk_free/{bytes}`: overrides the disk guard's measurement.
#[post("/debug/disk_free/{bytes}")]
async fn override_disk_free(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    let free = match raw.as_str() {
        "measure" => None,
        n => Some(n.parse::<u64>().map_err(|_| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_bytes",
            message: format!("{raw:?} is neither a byte count nor `measure`"),
        })?),
    };
    match state
        .streams
        .call(
            |reply| StreamSupervisorMsg::OverrideDiskFree(free, reply),
            Some(CALL_TIMEOUT),
        )
        .await
    {
        Ok(CallResult::Success(())) => Ok(HttpResponse::NoContent().finish()),
        _ => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: "the disk guard did not answer".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fault;
    use recnode_actors::stream::StreamFault;

    #[test]
    fn fault_names_map_to_stream_faults() {
        assert_eq!(
            parse_fault("fail-recorder"),
            Some(StreamFault::FailRecorder)
        );
        assert_eq!(
            parse_fault("fire-rotation"),
            Some(StreamFault::FireRotationTimers)
        );
        assert_eq!(parse_fault("reboot"), None);
    }
}
