//! End to end: the disk guard of the built `recnode` binary. With free space under
//! `[data] min_free_bytes` a new recording is refused (507, JSON error) and auto-record
//! skips the stream with a log line; under the hard floor the open recording closes
//! cleanly, the publisher stays connected, and what was recorded decodes.
//!
//! The free-space measurement is overridden through the test-only debug API
//! (`POST /api/debug/disk_free/{bytes}`), so the test needs no small file system.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::time::Duration;

const MIN_FREE: u64 = 1_000_000_000;
const HARD_MIN_FREE: u64 = 100_000_000;

fn set_free(node: &Node, bytes: &str) {
    let r = node.api("POST", &format!("/api/debug/disk_free/{bytes}"), None);
    assert_eq!(r.status, 204, "override free space: {r:?}");
}

fn wait_until_live(node: &Node, stream: &str) {
    wait_for(
        &format!("{stream} to be live"),
        Duration::from_secs(20),
        || {
            let r = node.api("GET", "/api/streams", None);
            r.json()["streams"]
                .as_array()?
                .iter()
                .any(|s| {
                    s["stream"] == stream && s["codecs"].as_array().is_some_and(|c| c.len() == 2)
                })
                .then_some(())
        },
    )
}

/// Waits until `GET /metrics` has `line` (the counts follow the streams' reports).
fn wait_for_metric(node: &Node, line: &str) {
    wait_for(
        &format!("{line:?} in /metrics"),
        Duration::from_secs(10),
        || {
            let metrics = http_get(node.http, "/metrics")?;
            metrics.body.lines().any(|l| l == line).then_some(())
        },
    );
}

#[test]
fn low_disk_refuses_new_recordings_and_critical_disk_closes_open_ones_cleanly() {
    let env = [
        ("RECNODE_DATA__MIN_FREE_BYTES", MIN_FREE.to_string()),
        (
            "RECNODE_DATA__HARD_MIN_FREE_BYTES",
            HARD_MIN_FREE.to_string(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node = Node::start_logged(&env);
    let src = av_source(node.cwd.path(), "src.flv", 14);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam"), node.cwd.path());
    wait_until_live(&node, "cam");

    // Low: refused with 507 and a JSON error; nothing is recorded.
    set_free(&node, &(MIN_FREE / 2).to_string());
    let r = node.api("POST", "/api/record/cam", None);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (507, Some("insufficient_storage")),
        "{r:?}"
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cam")),
        "{r:?}"
    );
    assert_eq!(node.recording_status("cam")["recording"], false);
    // The level and the upload queue are metrics too.
    let metrics = http_get(node.http, "/metrics").expect("GET /metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    for line in [
        "recnode_disk_level 1",
        "recnode_streams_live 1",
        "recnode_recordings_active 0",
        "recnode_storage_reachable 1",
        "recnode_upload_queue_length ",
    ] {
        assert!(
            metrics.body.contains(line),
            "{line:?} in:\n{}",
            metrics.body
        );
    }

    // Space back: recording starts.
    set_free(&node, "measure");
    let r = node.api("POST", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    wait_for("2 s recorded", Duration::from_secs(20), || {
        let s = node.recording_status("cam");
        (s["duration_seconds"].as_f64()? > 2.0).then_some(())
    });
    wait_for_metric(&node, "recnode_recordings_active 1");

    // Low while recording: the open recording goes on.
    set_free(&node, &(MIN_FREE / 2).to_string());
    let before = node.recording_status("cam")["duration_seconds"]
        .as_f64()
        .unwrap();
    wait_for(
        "the recording to go on while low",
        Duration::from_secs(20),
        || {
            let s = node.recording_status("cam");
            assert_eq!(s["recording"], true, "{s}");
            (s["duration_seconds"].as_f64()? > before + 1.0).then_some(())
        },
    );

    // Critical: the recording closes cleanly; the stream stays live.
    set_free(&node, &(HARD_MIN_FREE / 2).to_string());
    wait_for("the recording to stop", Duration::from_secs(20), || {
        (node.recording_status("cam")["recording"] == false).then_some(())
    });
    wait_for_metric(&node, "recnode_recordings_active 0");
    wait_for_metric(&node, "recnode_streams_live 1");
    let dirs = wait_for_finished_recordings(&node, "cam", Duration::from_secs(30));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let manifest = dirs[0].join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "", "DASH decodes");
    assert!(
        media::count_frames(&manifest).video > 50,
        "some video recorded"
    );
    assert_eq!(media::decode_errors(&flv_of(&dirs[0])), "", "FLV decodes");
    assert!(publisher.is_running(), "the publisher is still connected");
    let disk_low = hook_event_types(&node)
        .into_iter()
        .filter(|e| e == "upload.disk_low")
        .count();
    assert_eq!(
        disk_low, 3,
        "an upload.disk_low hook event each time the level worsens: low, low again, critical"
    );
    let log = node.log();
    assert!(log.contains("disk space low"), "log:\n{log}");
    assert!(log.contains("disk space critical"), "log:\n{log}");
    publisher.wait_success(Duration::from_secs(40));
}

#[test]
fn auto_record_skips_a_stream_published_while_disk_space_is_low() {
    let env = [
        ("RECNODE_DATA__MIN_FREE_BYTES", MIN_FREE.to_string()),
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node = Node::start_logged(&env);
    set_free(&node, &(MIN_FREE / 2).to_string());
    let src = av_source(node.cwd.path(), "src.flv", 3);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("auto1"), node.cwd.path());
    wait_until_live(&node, "auto1");
    assert_eq!(node.recording_status("auto1")["recording"], false);
    publisher.wait_success(Duration::from_secs(30));
    assert!(record_dirs(&node.recordings(), "auto1").is_empty());
    let log = node.log();
    assert!(
        log.lines()
            .any(|l| l.contains("auto-record skipped") && l.contains("auto1")),
        "log:\n{log}"
    );
}
