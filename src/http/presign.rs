//! The presign service: `POST /api/storage/presign` hands out a presigned PUT URL for
//! one object key, so a node without storage credentials (`[recorder.upload] enabled`)
//! can upload through this one.
//!
//! The body is a [`PresignRequest`]; the answer a [`PresignedRequest`]. The key is
//! relative to this node's storage root and checked with [`validate_key`]; the URL
//! opendal signs already includes the root. Only `PUT` is served, and the validity is
//! clamped to 1 s ..= 7 days. A backend that cannot presign (`fs`) answers 501
//! `presign_unsupported`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use opendal::ErrorKind;
use recnode_actors::uploader::{validate_key, PresignRequest, PresignedRequest};

use super::error::ApiError;
use super::ApiState;
use crate::config::MAX_PRESIGN_TTL_SECONDS;

/// The largest request body read.
const MAX_BODY: usize = 16 * 1024;

/// Registers `POST /storage/presign` (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(presign);
}

fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code,
        message,
    }
}

/// `POST /api/storage/presign` with `{"key","method":"PUT","ttl_seconds"}`.
#[post("/storage/presign")]
async fn presign(state: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: format!("the body may be at most {MAX_BODY} bytes"),
        });
    }
    let request: PresignRequest = serde_json::from_slice(&body).map_err(|e| {
        bad_request(
            "invalid_body",
            format!(
                "expected {{\"key\": string, \"method\": \"PUT\", \"ttl_seconds\": number}}: {e}"
            ),
        )
    })?;
    validate_key(&request.key).map_err(|e| bad_request("invalid_key", e.to_string()))?;
    if request.method != "PUT" {
        return Err(bad_request(
            "unsupported_method",
            format!("only PUT URLs are handed out, not {:?}", request.method),
        ));
    }
    let ttl = request.ttl_seconds.clamp(1, MAX_PRESIGN_TTL_SECONDS);
    let signed = state
        .operator
        .presign_write(&request.key, Duration::from_secs(ttl))
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::Unsupported {
                ApiError {
                    status: StatusCode::NOT_IMPLEMENTED,
                    code: "presign_unsupported",
                    message: format!(
                        "this node's storage ({}) cannot presign URLs",
                        state.operator.info().scheme()
                    ),
                }
            } else {
                tracing::warn!(key = %request.key, error = %e, "presigning failed");
                ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    code: "storage_error",
                    message: format!("presigning {} failed: {e}", request.key),
                }
            }
        })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let headers = signed
        .header()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    tracing::debug!(key = %request.key, ttl, "presigned a PUT URL");
    Ok(HttpResponse::Ok().json(PresignedRequest {
        method: signed.method().as_str().to_string(),
        url: signed.uri().to_string(),
        headers,
        expires_at: now + ttl,
    }))
}
