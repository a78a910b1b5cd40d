//! The hook endpoint API (under `/api`, behind the admin token):
//! - `GET /api/hooks`: every endpoint, with its progress (`acked_seq`, `pending`) and
//!   dead-letter count; secrets are never shown;
//! - `POST /api/hooks` `{id?, url, secret, format?, events?}`: registers an endpoint
//!   (201); it receives the events emitted from then on. A bad field answers 400
//!   `invalid_endpoint` naming it; an existing id 409 `endpoint_exists`;
//! - `DELETE /api/hooks/{id}`: removes an endpoint and its dead letters (204);
//! - in a cluster, endpoints created or removed through the API of any node reach every
//!   node (see [`recnode_cluster::settings`]), so each node delivers its own events to them;
//! - `GET /api/hooks/{id}/dead?after=SEQ&limit=N`: its dead letters, oldest first, each
//!   with the event as canonical proto3 JSON;
//! - `POST /api/hooks/{id}/replay`: sends its dead letters again, in seq order, before
//!   new events (`{"replayed": N}`).
//!
//! With the `fault-injection` feature (test builds) also
//! `POST /api/debug/hooks/emit {"count": N, "stream": S}`, which emits N synthetic
//! `record.segment` events and answers once they are committed.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};
use ractor::rpc::CallResult;
use ractor::RpcReplyPort;
use recnode_actors::hooks::{ConnectorError, ConnectorMsg, EndpointSpec, Hooks};
use serde::Deserialize;

use super::error::ApiError;
use super::ApiState;

/// How long a call waits for the connector before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read.
const MAX_BODY: usize = 16 * 1024;
/// The most dead letters one call lists.
const MAX_LIST: usize = 1000;

/// Registers the hook routes (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_endpoints)
        .service(create_endpoint)
        .service(delete_endpoint)
        .service(dead_letters)
        .service(replay);
    #[cfg(feature = "fault-injection")]
    cfg.service(debug_emit);
}

/// The node's hooks, or 503 when the node runs without them.
pub(crate) fn hooks(state: &ApiState) -> Result<&Hooks, ApiError> {
    state.hooks.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "hooks_unavailable",
        message: "this node runs without the hook connector".to_string(),
    })
}

fn connector_error(e: ConnectorError) -> ApiError {
    let (status, code) = match &e {
        ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "endpoint_not_found"),
        ConnectorError::Exists(_) => (StatusCode::CONFLICT, "endpoint_exists"),
        ConnectorError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_endpoint"),
        ConnectorError::Outbox(_) | ConnectorError::Actor(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "hooks_failed")
        }
    };
    let message = match e {
        ConnectorError::Invalid(e) => format!("field `{}`: {}", e.field, e.message),
        other => other.to_string(),
    };
    ApiError {
        status,
        code,
        message,
    }
}

/// Asks the connector and waits (bounded) for its answer.
async fn ask<T: Send + 'static>(
    hooks: &Hooks,
    msg: impl FnOnce(RpcReplyPort<Result<T, ConnectorError>>) -> ConnectorMsg,
) -> Result<T, ApiError> {
    match hooks.connector.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(result)) => result.map_err(connector_error),
        _ => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "hooks_unavailable",
            message: "the hook connector did not answer".to_string(),
        }),
    }
}

fn invalid_body(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_body",
        message,
    }
}

/// `GET /api/hooks`.
#[get("/hooks")]
async fn list_endpoints(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let list = ask(hooks(&state)?, ConnectorMsg::List).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "endpoints": list })))
}

/// `POST /api/hooks`.
#[post("/hooks")]
async fn create_endpoint(
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let hooks = hooks(&state)?;
    if body.len() > MAX_BODY {
        return Err(invalid_body(format!("the body is over {MAX_BODY} bytes")));
    }
    let spec: EndpointSpec = serde_json::from_slice(&body).map_err(|e| {
        invalid_body(format!(
            "expected {{url, secret, format?, events?, id?}}: {e}"
        ))
    })?;
    let secret = spec.secret.clone().unwrap_or_default();
    let created = ask(hooks, |reply| ConnectorMsg::Create(spec, reply)).await?;
    if let Some(cluster) = &state.cluster {
        // Every node delivers its own events to every endpoint.
        cluster
            .publish_hook_endpoint(recnode_proto::cluster::v1::HookEndpointUpdate {
                id: created.id.clone(),
                url: created.url.clone(),
                secret,
                format: created.format.clone(),
                events: created.events.clone(),
                ..Default::default()
            })
            .await;
    }
    Ok(HttpResponse::Created().json(created))
}

/// `DELETE /api/hooks/{id}`.
#[delete("/hooks/{id}")]
async fn delete_endpoint(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let deleted = id.clone();
    ask(hooks(&state)?, |reply| ConnectorMsg::Delete(id, reply)).await?;
    if let Some(cluster) = &state.cluster {
        cluster
            .publish_hook_endpoint(recnode_proto::cluster::v1::HookEndpointUpdate {
                id: deleted,
                deleted: true,
                ..Default::default()
            })
            .await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Query of `GET /api/hooks/{id}/dead`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadQuery {
    /// Only seqs above this.
    #[serde(default)]
    after: u64,
    /// At most this many (default and maximum 1000).
    limit: Option<usize>,
}

/// `GET /api/hooks/{id}/dead`.
#[get("/hooks/{id}/dead")]
async fn dead_letters(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    query: web::Query<DeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let limit = query.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    let after = query.after;
    let letters = ask(hooks(&state)?, |reply| ConnectorMsg::DeadLetters {
        id,
        after,
        limit,
        reply,
    })
    .await?;
    let shown: Vec<serde_json::Value> = letters
        .into_iter()
        .map(|d| {
            let event = d
                .event
                .decode()
                .ok()
                .and_then(|e| serde_json::to_value(e).ok())
                .unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "seq": d.event.seq,
                "id": d.event.id,
                "type": d.event.kind,
                "ts": d.event.ts_ms,
                "attempts": d.attempts,
                "error": d.error,
                "dead_at_ms": d.dead_at_ms,
                "replaying": d.replay_at_ms.is_some(),
                "event": event,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "dead_letters": shown })))
}

/// `POST /api/hooks/{id}/replay`.
#[post("/hooks/{id}/replay")]
async fn replay(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let replayed = ask(hooks(&state)?, |reply| ConnectorMsg::Replay(id, reply)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "replayed": replayed })))
}

/// Body of `POST /api/debug/hooks/emit`.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    /// How many events.
    count: u32,
    /// The stream they name.
    #[serde(default = "default_debug_stream")]
    stream: String,
}

#[cfg(feature = "fault-injection")]
fn default_debug_stream() -> String {
    "debug".to_string()
}

/// `POST /api/debug/hooks/emit`: emits `count` synthetic `record.segment` events of
/// `stream` and answers `{"first_seq", "last_seq"}` once all are committed.
#[cfg(feature = "fault-injection")]
#[post("/debug/hooks/emit")]
async fn debug_emit(
    state: web::Data<ApiState>,
    body: web::Json<EmitBody>,
) -> Result<HttpResponse, ApiError> {
    use recnode_actors::hooks::events::RecordRef;
    let hooks = hooks(&state)?;
    let record = RecordRef {
        stream: body.stream.clone(),
        app: "live".into(),
        record_id: "1700000000".into(),
        record_dir: format!("{}/1700000000", body.stream),
        format: "dash".into(),
    };
    let pending: Vec<_> = (1..=body.count)
        .map(|n| {
            let key = format!("{}/v_seg_{n:04}.m4s", record.record_dir);
            hooks.emitter.emit(record.segment(
                &key,
                recnode_actors::media::TrackKind::Video,
                n,
                u64::from(n - 1) * 2000,
                2000,
                1000,
            ))
        })
        .collect();
    let mut seqs = Vec::with_capacity(pending.len());
    for p in pending {
        let emitted = p.await.map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "hooks_failed",
            message: e.to_string(),
        })?;
        seqs.push(emitted.seq);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "first_seq": seqs.first(),
        "last_seq": seqs.last(),
    })))
}
