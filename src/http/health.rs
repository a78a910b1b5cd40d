//! Liveness and readiness: `GET /healthz` and `GET /readyz`.
//!
//! `/healthz` answers 200 while the process serves HTTP. `/readyz` also needs storage:
//! it answers 503 while the start-up probe or the latest upload failed (the node still
//! records into its spool), so a load balancer can send publishers elsewhere.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{get, web, HttpResponse};
use recnode_actors::uploader::StorageStatus;
use serde_json::json;

use super::ApiState;

/// Registers the health routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

/// Liveness: 200 `{"status":"ok"}` while the process serves HTTP.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: 200 `{"ready":true,"storage":{"reachable":true,...}}` while storage
/// accepts writes, else 503 `{"ready":false,"storage":{"reachable":false,"error":...}}`.
#[get("/readyz")]
async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    readiness(&state.storage.status())
}

/// The `/readyz` answer for a storage status.
pub fn readiness(status: &StorageStatus) -> HttpResponse {
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut storage = json!({ "reachable": status.reachable });
    if let Some(error) = &status.error {
        storage["error"] = json!(error);
    }
    if let Some(since) = status.since {
        // Unreachable: when failures began. Reachable: the last confirmed write.
        storage["since"] = json!(unix(since));
    }
    let body = json!({ "ready": status.reachable, "storage": storage });
    if status.reachable {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{http::StatusCode, test, App};
    use std::time::Duration;

    async fn body_of(response: HttpResponse) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[actix_web::test]
    async fn healthz_answers_ok_as_json() {
        let app = test::init_service(App::new().service(healthz)).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(test::read_body(response).await, r#"{"status":"ok"}"#);
    }

    #[actix_web::test]
    async fn readyz_is_ready_while_storage_works() {
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (status, body) = body_of(readiness(&StorageStatus {
            reachable: true,
            error: None,
            since: Some(since),
        }))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"ready": true, "storage": {"reachable": true, "since": 1_700_000_000}})
        );
    }

    #[actix_web::test]
    async fn readyz_answers_503_with_the_storage_error() {
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_001);
        let (status, body) = body_of(readiness(&StorageStatus {
            reachable: false,
            error: Some("connection refused".into()),
            since: Some(since),
        }))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["ready"], false);
        assert_eq!(body["storage"]["reachable"], false);
        assert_eq!(body["storage"]["error"], "connection refused");
        assert_eq!(body["storage"]["since"], 1_700_000_001);
    }
}
