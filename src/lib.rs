//! The recnode node: configuration, HTTP API and start-up wiring.
//!
//! `main.rs` only parses the command line, sets up logging, loads [`config::Config`]
//! and hands it to [`node::run`]. Everything here returns typed errors (`thiserror`);
//! `anyhow` is used in `main.rs` alone.
//!
//! Runtime model: the node runs on actix-web's tokio runtime (`#[actix_web::main]`).
//! actix-web's server handles SIGINT/SIGTERM: it stops accepting, drains open
//! requests, and [`node::run`] returns.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod http;
pub mod node;
pub mod storage;
