//! Hook delivery end to end: the built binary POSTs signed events to a real receiver that
//! verifies every signature (Standard Webhooks) and decodes both protobuf and JSON bodies;
//! endpoints come from config and the API, and bad ones are refused naming the field.

mod common;
mod hooks_support;

use std::time::Duration;

use common::{recnode_command, run_to_exit, Node};
use hooks_support::receiver::{Received, Receiver};
use hooks_support::{emit, endpoint, hook_env, start_node, SECRET};

const WAIT: Duration = Duration::from_secs(20);

fn types(got: &[Received]) -> Vec<&'static str> {
    got.iter().map(|r| r.event.event_type()).collect()
}

fn seqs(got: &[Received]) -> Vec<u64> {
    got.iter().map(|r| r.event.seq).collect()
}

#[test]
fn a_real_receiver_gets_signed_events_in_order_as_protobuf_and_json() {
    let receiver = Receiver::start(SECRET);
    let env = hook_env(
        &[
            endpoint("pb", &receiver.url("/pb"), "protobuf", &["*"]),
            endpoint(
                "js",
                &receiver.url("/json"),
                "json",
                &["record.*", "node.joined"],
            ),
        ],
        &[("RECNODE_RECORDER__NODE_ALIAS", "edge-a")],
    );
    let mut node = start_node(&env);

    let joined = receiver.wait_for("/pb", 1, WAIT);
    assert_eq!(types(&joined), ["node.joined"]);
    assert_eq!(joined[0].event.node_alias, "edge-a");
    let (first, last) = emit(&node, "cam1", 5);
    assert_eq!(last - first, 4);

    let pb = receiver.wait_for("/pb", 6, WAIT);
    let json = receiver.wait_for("/json", 6, WAIT);
    assert!(receiver.invalid().is_empty(), "{:?}", receiver.invalid());
    assert_eq!(
        types(&pb),
        [
            "node.joined",
            "record.segment",
            "record.segment",
            "record.segment",
            "record.segment",
            "record.segment"
        ]
    );
    assert_eq!(types(&json), types(&pb));
    assert!(pb.iter().all(|r| r.format == "protobuf"));
    assert!(json.iter().all(|r| r.format == "json"));
    let order = seqs(&pb);
    assert!(
        order.windows(2).all(|w| w[0] + 1 == w[1]),
        "gapless, in order: {order:?}"
    );
    assert_eq!(seqs(&json), order);
    for (p, j) in pb.iter().zip(&json) {
        assert_eq!(p.event, j.event, "the same event in either format");
        assert_eq!(p.id, p.event.id, "webhook-id is the event id");
    }

    // A clean stop says so (to the endpoint whose filter takes it).
    let status = node.terminate(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let pb = receiver.wait_for("/pb", 7, WAIT);
    assert_eq!(pb[6].event.event_type(), "node.left");
    assert_eq!(receiver.received_at("/json").len(), 6);
}

#[test]
fn endpoints_are_managed_through_the_api_persisted_and_bad_ones_named() {
    let receiver = Receiver::start(SECRET);
    let node = Node::start_logged(&[("RECNODE_HOOKS__MIN_BACKOFF_SECONDS", "0.05")]);
    let url = receiver.url("/api-added");
    let cases = [
        (
            format!(r#"{{"url":"ftp://x/y","secret":"{SECRET}"}}"#),
            "`url`",
        ),
        (format!(r#"{{"secret":"{SECRET}"}}"#), "`url`"),
        (
            format!(r#"{{"url":"{url}","secret":"whsec_c2hvcnQ="}}"#),
            "`secret`",
        ),
        (format!(r#"{{"url":"{url}"}}"#), "`secret`"),
        (
            format!(r#"{{"url":"{url}","secret":"{SECRET}","events":["record.nope"]}}"#),
            "`events`",
        ),
        (
            format!(r#"{{"url":"{url}","secret":"{SECRET}","id":"a/b"}}"#),
            "`id`",
        ),
    ];
    for (body, field) in &cases {
        let r = node.api("POST", "/api/hooks", Some(body));
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert_eq!(r.error_code().as_deref(), Some("invalid_endpoint"), "{r:?}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{r:?}"
        );
    }
    let r = node.api(
        "POST",
        "/api/hooks",
        Some(&format!(
            r#"{{"url":"{url}","secret":"{SECRET}","colour":"red"}}"#
        )),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("invalid_body"));
    assert!(r.body.contains("colour"), "{r:?}");
    let r = node.api(
        "POST",
        "/api/hooks",
        Some(&format!(
            r#"{{"url":"{url}","secret":"{SECRET}","format":"xml"}}"#
        )),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("xml"), "{r:?}");

    let body = format!(
        r#"{{"id":"backend","url":"{url}","secret":"{SECRET}","format":"json","events":["record.*"]}}"#
    );
    let r = node.api("POST", "/api/hooks", Some(&body));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["id"], "backend");
    assert_eq!(node.api("POST", "/api/hooks", Some(&body)).status, 409);
    let listed = node.api("GET", "/api/hooks", None);
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.contains(SECRET),
        "secrets are never shown: {listed:?}"
    );
    assert_eq!(listed.json()["endpoints"][0]["format"], "json");

    emit(&node, "cam1", 2);
    assert_eq!(receiver.wait_for("/api-added", 2, WAIT).len(), 2);

    // Persisted: still registered after kill -9, and still delivering.
    let node = node.kill_9_and_restart();
    let listed = node.api("GET", "/api/hooks", None).json();
    assert_eq!(listed["endpoints"][0]["id"], "backend", "{listed}");
    emit(&node, "cam1", 1);
    assert_eq!(receiver.wait_for("/api-added", 3, WAIT).len(), 3);

    assert_eq!(node.api("DELETE", "/api/hooks/backend", None).status, 204);
    assert_eq!(node.api("DELETE", "/api/hooks/backend", None).status, 404);
    assert_eq!(
        node.api("GET", "/api/hooks", None).json()["endpoints"],
        serde_json::json!([])
    );
    assert_eq!(node.api("GET", "/api/hooks/backend/dead", None).status, 404);
}

#[test]
fn a_bad_configured_endpoint_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!(
        "[{{ url = \"http://127.0.0.1:9/h\", secret = \"{SECRET}\" }}, {{ url = \"http://127.0.0.1:9/h2\", secret = \"nope\" }}]"
    );
    let mut command = recnode_command(dir.path());
    command.env("RECNODE_HOOKS__ENDPOINTS", bad);
    let out = run_to_exit(command, Duration::from_secs(30));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hooks.endpoints[1].secret"), "{stderr}");
}

/// An RTMP publish is reported in order: the stream starts, its recording starts, its
/// segments are stored, the recording stops and then the stream stops.
#[test]
fn an_rtmp_publish_is_reported_as_stream_record_and_segment_events() {
    let receiver = Receiver::start(SECRET);
    let env = hook_env(
        &[endpoint(
            "rec",
            &receiver.url("/rec"),
            "json",
            &["stream.*", "record.*"],
        )],
        &[
            ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
            ("RECNODE_RECORDER__FORMATS", "[\"dash\"]"),
            ("RECNODE_DATA__MIN_FREE_BYTES", "0"),
        ],
    );
    let node = start_node(&env);
    let src = common::av_source(node.cwd.path(), "src.flv", 5);
    let mut publisher = common::Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());
    publisher.wait_success(Duration::from_secs(60));
    common::wait_for_finished_recordings(&node, "cam1", Duration::from_secs(60));
    let got = common::wait_for("stream.stopped", WAIT, || {
        let got = receiver.received_at("/rec");
        got.iter()
            .any(|r| r.event.event_type() == "stream.stopped")
            .then_some(got)
    });
    let kinds = types(&got);
    assert_eq!(kinds.first(), Some(&"stream.started"), "{kinds:?}");
    assert_eq!(kinds.get(1), Some(&"record.started"), "{kinds:?}");
    let segments = kinds.iter().filter(|k| **k == "record.segment").count();
    assert!(segments >= 2, "{kinds:?}");
    let stopped = kinds
        .iter()
        .position(|k| *k == "record.stopped")
        .expect("record.stopped");
    assert!(
        stopped > 1 && kinds[stopped..].contains(&"stream.stopped"),
        "{kinds:?}"
    );
    let order = seqs(&got);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let recnode_proto::hook::v1::hook_event::Event::Record(started) =
        got[1].event.event.clone().expect("event")
    else {
        panic!("record.started is a record event");
    };
    assert_eq!(
        (started.room.as_str(), started.app.as_str()),
        ("cam1", "live")
    );
    let recnode_proto::hook::v1::record_event::Event::Started(s) = started.event.expect("started")
    else {
        panic!("started");
    };
    assert!(
        s.mpd_path.ends_with("manifest.mpd") && s.record_dir.starts_with("cam1/"),
        "{s:?}"
    );
}
