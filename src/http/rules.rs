//! The auto-record rules API (under `/api`, behind the admin token):
//! - `GET /api/rules`: the rules made through the API (`id`, `pattern`, `version`,
//!   `writer`), sorted by id, and the configured `[recorder] auto_streams`, which the
//!   rules add to (`config_auto_streams`, read-only);
//! - `PUT /api/rules/{id}` `{"pattern": "web-*"}`: creates (201) or replaces (200) a
//!   rule; streams published from then on whose name matches are recorded;
//! - `DELETE /api/rules/{id}`: removes a rule (204); 404 `rule_not_found` if there is none.
//!
//! A pattern is 1–128 characters of a stream name's `[A-Za-z0-9._-]` plus `*` (any run of
//! characters); an id is a stream name. Either one bad answers 400 `invalid_rule`; a body
//! that is not `{"pattern": string}` answers 400 `invalid_body`.
//!
//! Rules are kept by the node's [`recnode_cluster::settings::SettingsStore`] (persisted in
//! `data/cluster_settings.json`), which tells the stream supervisor; in a cluster a change
//! made on any node reaches every node, so a stream is recorded by the rule wherever it
//! is published.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{delete, get, put, web, HttpResponse};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use recnode_actors::stream::{validate_stream_name, validate_stream_pattern};
use recnode_cluster::settings::{RuleWrite, RuleWriteError, RuleWritten, SettingsMsg};
use recnode_proto::cluster::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::ApiState;

/// How long a call waits for the settings store before answering 503.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read.
const MAX_BODY: usize = 4 * 1024;

/// What the rules API needs: the node's settings store and who writes.
#[derive(Debug, Clone)]
pub struct RulesApi {
    /// The node's settings store.
    pub store: ActorRef<SettingsMsg>,
    /// This node's name, recorded as the writer of its changes.
    pub writer: String,
    /// `[recorder] auto_streams`, shown next to the rules.
    pub config_auto_streams: Vec<String>,
}

/// Registers the rules routes (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_rules)
        .service(put_rule)
        .service(delete_rule);
}

/// The body of `PUT /api/rules/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    /// The stream name pattern.
    pattern: String,
}

/// The node's rules API, or 503 when the node runs without a settings store.
fn rules(state: &ApiState) -> Result<&RulesApi, ApiError> {
    state.rules.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "rules_unavailable",
        message: "this node runs without a settings store".to_string(),
    })
}

/// Asks the settings store and maps transport failures to 503.
async fn ask<T: Send + 'static>(
    store: &ActorRef<SettingsMsg>,
    msg: impl FnOnce(RpcReplyPort<T>) -> SettingsMsg,
) -> Result<T, ApiError> {
    match store.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(value)) => Ok(value),
        _ => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "rules_unavailable",
            message: "the settings store did not answer".to_string(),
        }),
    }
}

fn invalid_rule(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_rule",
        message,
    }
}

/// Checks a rule id taken from the path.
fn rule_id(raw: &str) -> Result<String, ApiError> {
    validate_stream_name(raw)
        .map_err(|e| invalid_rule(format!("rule id {:?}: {}", e.name, e.reason)))?;
    Ok(raw.to_string())
}

/// A rule as the API shows it.
fn rule_json(rule: &pb::AutoRecordRuleUpdate) -> serde_json::Value {
    json!({
        "id": rule.id,
        "pattern": rule.pattern,
        "version": rule.version,
        "writer": rule.writer,
    })
}

/// Stores a change here and sends it to the other nodes.
async fn write(
    state: &ApiState,
    id: String,
    pattern: Option<String>,
) -> Result<RuleWritten, ApiError> {
    let api = rules(state)?;
    let change = RuleWrite {
        id,
        pattern,
        writer: api.writer.clone(),
    };
    let written = ask(&api.store, |reply| SettingsMsg::WriteRule(change, reply))
        .await?
        .map_err(|e| match e {
            RuleWriteError::NotFound { .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                code: "rule_not_found",
                message: e.to_string(),
            },
        })?;
    if let Some(cluster) = &state.cluster {
        cluster.publish_rule(&written.update);
    }
    tracing::info!(rule = %written.update.id, pattern = %written.update.pattern,
        deleted = written.update.deleted, version = written.update.version,
        "auto-record rule changed through the API");
    Ok(written)
}

/// `GET /api/rules`.
#[get("/rules")]
async fn list_rules(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let api = rules(&state)?;
    let list = ask(&api.store, SettingsMsg::Rules).await?;
    Ok(HttpResponse::Ok().json(json!({
        "rules": list.iter().map(rule_json).collect::<Vec<_>>(),
        "config_auto_streams": api.config_auto_streams,
    })))
}

/// `PUT /api/rules/{id}` `{"pattern": "..."}`.
#[put("/rules/{id}")]
async fn put_rule(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = rule_id(&id)?;
    let invalid_body = |message: String| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_body",
        message,
    };
    if body.len() > MAX_BODY {
        return Err(invalid_body(format!("the body is over {MAX_BODY} bytes")));
    }
    let body: RuleBody = serde_json::from_slice(&body)
        .map_err(|e| invalid_body(format!("expected {{\"pattern\": string}}: {e}")))?;
    validate_stream_pattern(&body.pattern).map_err(|e| invalid_rule(e.to_string()))?;
    let written = write(&state, id, Some(body.pattern)).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(rule_json(&written.update)))
}

/// `DELETE /api/rules/{id}`.
#[delete("/rules/{id}")]
async fn delete_rule(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = rule_id(&id)?;
    write(&state, id, None).await?;
    Ok(HttpResponse::NoContent().finish())
}
