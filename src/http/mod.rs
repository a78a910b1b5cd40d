//! The HTTP API (actix-web), one file per API area.
//!
//! Handlers hold only actor references, never locks around shared state. So far the
//! API has the health checks ([`health`]); every error answers in the JSON shape of
//! [`error::ApiError`], unknown routes included.

use std::net::SocketAddr;

use actix_web::{dev::Server, web, App, HttpServer};

pub mod error;
pub mod health;

/// Registers every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
}

/// The application: every route, and a JSON 404 for anything else.
pub fn app() -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .configure(routes)
        .default_service(web::to(error::unknown_route))
}

/// Binds `addr` and returns the running server; await it to serve until a signal.
pub fn server(addr: SocketAddr) -> std::io::Result<Server> {
    Ok(HttpServer::new(app).bind(addr)?.run())
}

#[cfg(test)]
mod tests {
    use actix_web::{http::StatusCode, test};

    #[actix_web::test]
    async fn an_unknown_route_gets_a_json_404() {
        let app = test::init_service(super::app()).await;
        let req = test::TestRequest::get().uri("/api/nope").to_request();
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "no route for GET /api/nope");
    }
}
