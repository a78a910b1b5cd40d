//! The HTTP API (actix-web), one file per API area.
//!
//! Handlers hold only actor references, never locks around shared state. So far the
//! API has the health checks ([`health`]).

use std::net::SocketAddr;

use actix_web::{dev::Server, web, App, HttpServer};

pub mod health;

/// Registers every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
}

/// Binds `addr` and returns the running server; await it to serve until a signal.
pub fn server(addr: SocketAddr) -> std::io::Result<Server> {
    Ok(HttpServer::new(|| App::new().configure(routes))
        .bind(addr)?
        .run())
}
