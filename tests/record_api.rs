//! End to end: the recording API (`/api/record/{stream}`, `/api/streams`) of the built
//! `recnode` binary starts and stops recordings of a live RTMP publish, answers every
//! error with its status and code, honours live777's `base_dir`, and is guarded by the
//! admin token; the recordings it makes decode.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// How long a publish of the 8 s source may take, connection set-up included.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a recording may take to be finished in storage after the publish ends.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `GET /api/streams` lists `stream` with both of its codecs.
fn wait_until_listed(node: &Node, stream: &str) -> Value {
    wait_for(
        &format!("GET /api/streams to list {stream} with h264 and aac"),
        Duration::from_secs(20),
        || {
            let r = node.api("GET", "/api/streams", None);
            assert_eq!(r.status, 200, "{r:?}");
            let body = r.json();
            let entry = body["streams"]
                .as_array()
                .expect("streams is an array")
                .iter()
                .find(|s| s["stream"] == stream)?
                .clone();
            let codecs = entry["codecs"].as_array()?;
            (codecs.iter().any(|c| c == "h264") && codecs.iter().any(|c| c == "aac"))
                .then_some(entry)
        },
    )
}

/// Waits until the running recording of `stream` holds more than `seconds` of media.
fn wait_until_recorded(node: &Node, stream: &str, seconds: f64) {
    wait_for(
        &format!("the recording of {stream} to hold {seconds} s"),
        Duration::from_secs(20),
        || {
            let status = node.recording_status(stream);
            assert_eq!(status["recording"], true, "{status}");
            (status["duration_seconds"].as_f64()? > seconds).then_some(())
        },
    )
}

/// Asserts an error answer's status and code.
fn assert_error(r: &HttpResponse, status: u16, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (status, Some(code)),
        "{what}: {r:?}"
    );
}

#[test]
fn the_record_api_starts_and_stops_recordings_of_a_live_stream_and_reports_every_error() {
    let node = Node::start();
    let src = av_source(node.cwd.path(), "src.flv", 8);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    let listed = wait_until_listed(&node, "cam1");
    assert_eq!(listed["app"], "live", "{listed}");
    assert_eq!(listed["protocol"], "rtmp", "{listed}");
    assert_eq!(listed["recording"], false, "no auto_streams: {listed}");
    assert!(listed["started_at_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000);

    // Start: live777's answer shape.
    let r = node.api("POST", "/api/record/cam1", None);
    assert_eq!(r.status, 200, "{r:?}");
    let started = r.json();
    let record_id = started["record_id"]
        .as_str()
        .expect("record_id")
        .to_string();
    assert!(
        record_id.len() == 10 && record_id.bytes().all(|b| b.is_ascii_digit()),
        "{started}"
    );
    assert_eq!(started["id"], "cam1");
    assert_eq!(started["record_dir"], format!("cam1/{record_id}"));
    assert_eq!(
        started["mpd_path"],
        format!("cam1/{record_id}/manifest.mpd")
    );

    let again = node.api("POST", "/api/record/cam1", None);
    assert_error(&again, 409, "already_recording", "second POST");

    let status = node.recording_status("cam1");
    assert_eq!(status["recording"], true, "{status}");
    assert_eq!(status["record_dir"], started["record_dir"], "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert!(status["duration_seconds"].is_number(), "{status}");
    let r = node.api("GET", "/api/streams", None);
    assert!(
        r.json()["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stream"] == "cam1" && s["recording"] == true),
        "{r:?}"
    );
    wait_until_recorded(&node, "cam1", 1.0);

    let stopped = node.api("DELETE", "/api/record/cam1", None);
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(stopped.json()["record_dir"], started["record_dir"]);
    assert_eq!(node.recording_status("cam1")["recording"], false);
    let r = node.api("DELETE", "/api/record/cam1", None);
    assert_error(&r, 404, "not_recording", "second DELETE");

    // Errors that need no recording.
    for method in ["GET", "POST", "DELETE"] {
        let r = node.api(method, "/api/record/ghost", None);
        assert_error(&r, 404, "stream_not_found", &format!("{method} ghost"));
    }
    let r = node.api("POST", "/api/record/bad$name", None);
    assert_error(&r, 400, "invalid_stream_name", "bad stream name");
    for base_dir in ["../x", "/abs", "shows/../../x"] {
        let body = format!("{{\"base_dir\":\"{base_dir}\"}}");
        let r = node.api("POST", "/api/record/cam1", Some(&body));
        assert_error(&r, 400, "invalid_base_dir", base_dir);
    }
    let r = node.api("POST", "/api/record/cam1", Some("{not json"));
    assert_error(&r, 400, "invalid_body", "malformed body");
    assert_eq!(node.recording_status("cam1")["recording"], false);

    // live777's base_dir: used exactly; a trailing 10-digit name is the record_id.
    let r = node.api(
        "POST",
        "/api/record/cam1",
        Some("{\"base_dir\":\"shows/ep1/1700000000\"}"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let with_id = r.json();
    assert_eq!(with_id["record_dir"], "shows/ep1/1700000000", "{with_id}");
    assert_eq!(with_id["record_id"], "1700000000", "{with_id}");
    assert_eq!(with_id["mpd_path"], "shows/ep1/1700000000/manifest.mpd");
    wait_until_recorded(&node, "cam1", 0.5);
    assert_eq!(node.api("DELETE", "/api/record/cam1", None).status, 200);

    let r = node.api(
        "POST",
        "/api/record/cam1",
        Some("{\"base_dir\":\"shows/ep1/final\"}"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let without_id = r.json();
    assert_eq!(without_id["record_dir"], "shows/ep1/final", "{without_id}");
    assert_eq!(without_id["record_id"], "", "{without_id}");
    // This one runs until the publisher ends, which closes it.

    publisher.wait_success(PUBLISH_TIMEOUT);
    let root = node.recordings();
    let dirs = [
        root.join("cam1").join(&record_id),
        root.join("shows/ep1/1700000000"),
        root.join("shows/ep1/final"),
    ];
    wait_for(
        "the three recordings to be finished in storage",
        FINISH_TIMEOUT,
        || {
            (dirs.iter().all(|d| is_finished(d)) && files_under(&node.spool()).is_empty())
                .then_some(())
        },
    );
    for dir in &dirs {
        assert_eq!(
            session_outcome(dir).as_deref(),
            Some("completed"),
            "{}",
            dir.display()
        );
        let manifest = dir.join("manifest.mpd");
        assert_eq!(media::decode_errors(&manifest), "", "{}", dir.display());
        assert!(
            media::count_frames(&manifest).video >= 12,
            "{} holds at least 0.5 s of video",
            dir.display()
        );
    }
    assert_eq!(
        record_dirs(&root, "cam1").len(),
        1,
        "nothing else was recorded"
    );
}

#[test]
fn with_an_admin_token_the_record_api_needs_it_but_health_checks_do_not() {
    let token = "s3cret-token";
    let node = Node::start_with(&[("RECNODE_AUTH__ADMIN_TOKEN", token)]);
    let src = media::lavfi_source(
        node.cwd.path(),
        "src.flv",
        Some(44_100),
        "-c:v libx264 -bf 2 -g 25 -pix_fmt yuv420p -c:a aac -b:a 96k",
    );
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    assert_eq!(http_get(node.http, "/healthz").map(|r| r.status), Some(200));
    let r = node.api("GET", "/api/streams", None);
    assert_error(&r, 401, "unauthorized", "GET /api/streams without a token");
    let r = node.api_with_token("GET", "/api/streams", None, Some("wrong"));
    assert_error(
        &r,
        401,
        "unauthorized",
        "GET /api/streams with a wrong token",
    );
    wait_for(
        "GET /api/streams (with the token) to list cam1",
        Duration::from_secs(20),
        || {
            let r = node.api_with_token("GET", "/api/streams", None, Some(token));
            assert_eq!(r.status, 200, "{r:?}");
            r.json()["streams"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["stream"] == "cam1")
                .then_some(())
        },
    );

    let r = node.api("POST", "/api/record/cam1", None);
    assert_error(&r, 401, "unauthorized", "POST without a token");
    let r = node.api_with_token("GET", "/api/record/cam1", None, Some(token));
    assert_eq!(
        r.json()["recording"],
        false,
        "a refused call records nothing: {r:?}"
    );
    let r = node.api_with_token("POST", "/api/record/cam1", None, Some(token));
    assert_eq!(r.status, 200, "{r:?}");
    let r = node.api_with_token("GET", "/api/record/cam1", None, Some(token));
    assert_eq!(r.json()["recording"], true, "{r:?}");

    publisher.wait_success(PUBLISH_TIMEOUT);
    let dirs = wait_for_finished_recordings(&node, "cam1", FINISH_TIMEOUT);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(media::decode_errors(&dirs[0].join("manifest.mpd")), "");
}
