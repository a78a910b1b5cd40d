//! Liveness and readiness: `GET /healthz` and `GET /readyz`.

use actix_web::{get, web, HttpResponse};

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

/// Readiness: 200 `{"status":"ready"}` once the node has started (its directories
/// exist and the HTTP server is bound).
#[get("/readyz")]
async fn readyz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ready"}"#)
}

#[cfg(test)]
mod tests {
    use actix_web::{http::StatusCode, test, App};

    async fn get(path: &str) -> (StatusCode, String, String) {
        let app = test::init_service(App::new().configure(super::routes)).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = test::read_body(response).await;
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[actix_web::test]
    async fn healthz_answers_ok_as_json() {
        let (status, content_type, body) = get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        assert_eq!(body, r#"{"status":"ok"}"#);
    }

    #[actix_web::test]
    async fn readyz_answers_ok() {
        let (status, _, body) = get("/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"status":"ready"}"#);
    }
}
