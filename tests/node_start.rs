//! A node started with built-in defaults serves its health checks, creates its local
//! directories and stops cleanly on SIGTERM.

mod common;

use std::time::Duration;

use common::{http_get, Node};

#[test]
fn node_with_defaults_answers_healthz_and_stops_on_sigterm() {
    let mut node = Node::start();

    let health = http_get(node.http, "/healthz").expect("GET /healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, r#"{"status":"ok"}"#);
    assert!(
        health
            .headers
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{health:?}"
    );

    let ready = http_get(node.http, "/readyz").expect("GET /readyz");
    assert_eq!(ready.status, 200);

    assert!(
        node.cwd.path().join("recordings").is_dir(),
        "./recordings created"
    );
    assert!(node.cwd.path().join("data").is_dir(), "./data created");

    let status = node.terminate(Duration::from_secs(30));
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
}
