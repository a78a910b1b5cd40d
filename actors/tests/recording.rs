//! Recording a published stream: files that play and hold every frame, the recording API,
//! base_dir, rotation, and segments reaching storage before manifests that list them.

mod common_rec;

use common_rec::*;
use recnode_actors::media::MediaEvent;
use recnode_actors::stream::{RecordError, StreamFault, StreamMsg, StreamSupervisorMsg};

fn source_counts() -> (u64, u64) {
    count_frames(source())
}

async fn stop(
    node: &Node,
    stream: &str,
) -> Result<recnode_actors::stream::RecordingInfo, RecordError> {
    let stream = stream.to_string();
    node.streams
        .call(
            |reply| StreamSupervisorMsg::StopRecording { stream, reply },
            Some(TIMEOUT),
        )
        .await
        .unwrap()
        .unwrap()
}

/// Asserts a stored record_dir's manifest and FLV decode cleanly; returns their frame counts.
fn check_playable(node: &Node, record_dir: &str) -> ((u64, u64), (u64, u64)) {
    let mpd = node.storage.join(record_dir).join("manifest.mpd");
    let text = std::fs::read_to_string(&mpd).unwrap();
    assert!(
        text.contains("type=\"static\""),
        "{record_dir}: final manifest is static"
    );
    assert_eq!(
        decode_errors(&mpd),
        "",
        "{record_dir}: DASH decodes cleanly"
    );
    let flv = node.flv(record_dir);
    assert_eq!(decode_errors(&flv), "", "{record_dir}: FLV decodes cleanly");
    (count_frames(&mpd), count_frames(&flv))
}

#[tokio::test]
async fn an_auto_recorded_stream_plays_and_holds_every_frame() {
    let dir = test_dir("auto");
    let node = Node::start(&dir, settings(&dir, &["cam-*"])).await;
    let events = source_events();
    let stream = node.publish("cam-1").await;
    feed(&stream, &events, |_| {}).await;
    node.unpublish_and_wait(&stream, "cam-1").await;

    let dirs = node.record_dirs("cam-1");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let record_id = dirs[0].rsplit('/').next().unwrap();
    assert_eq!(record_id.len(), 10, "record_id is 10-digit unix seconds");
    let (dash, flv) = check_playable(&node, &dirs[0]);
    let want = source_counts();
    assert_eq!(dash, want, "DASH holds exactly the source's frames");
    assert_eq!(flv, want, "FLV holds exactly the source's frames");

    let session = node.session_json(&dirs[0]);
    assert_eq!(session["outcome"], "completed");
    assert_eq!(session["stream"], "cam-1");
    assert_eq!(session["node_alias"], "test-node");
    assert_eq!(session["codecs"], serde_json::json!(["h264", "aac"]));
    assert!(session["end_unix_ms"].as_u64() >= session["start_unix_ms"].as_u64());
    assert!(session["segments"]["video"].as_u64().unwrap() >= 2);
    node.assert_segments_before_manifests();
    // Nothing is left in the spool but files the uploader keeps (none after close).
    let leftover: Vec<_> = walk(&node.spool)
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(leftover.is_empty(), "spool still holds {leftover:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn the_recording_api_starts_stops_reports_and_uses_base_dir_exactly() {
    let dir = test_dir("api");
    let node = Node::start(&dir, settings(&dir, &[])).await;
    let events = source_events();

    assert_eq!(
        node.status("show").await,
        Err(RecordError::NotFound {
            stream: "show".into()
        })
    );
    assert_eq!(
        node.start_recording("show", None).await,
        Err(RecordError::NotFound {
            stream: "show".into()
        })
    );
    assert_eq!(
        stop(&node, "show").await,
        Err(RecordError::NotFound {
            stream: "show".into()
        })
    );

    let stream = node.publish("show").await;
    let listed = node.list().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].stream.as_str(), listed[0].recording),
        ("show", false)
    );
    assert!(!node.status("show").await.unwrap().recording);
    assert_eq!(
        stop(&node, "show").await,
        Err(RecordError::NotRecording {
            stream: "show".into()
        })
    );

    for bad in ["../escape", "/abs", "a//b", "a/./b", "a b"] {
        assert!(
            matches!(
                node.start_recording("show", Some(bad)).await,
                Err(RecordError::InvalidBaseDir { .. })
            ),
            "{bad}"
        );
    }
    let info = node
        .start_recording("show", Some("custom/1700000123"))
        .await
        .unwrap();
    assert_eq!(info.record_dir, "custom/1700000123");
    assert_eq!(info.record_id, "1700000123");
    assert_eq!(info.mpd_path, "custom/1700000123/manifest.mpd");
    assert_eq!(
        node.start_recording("show", None).await,
        Err(RecordError::AlreadyRecording {
            stream: "show".into()
        })
    );

    let half = events.len() / 2;
    feed(&stream, &events[..half], |_| {}).await;
    let status = node
        .wait_status("show", "some recorded seconds", |s| {
            s.duration_seconds > 1.0
        })
        .await;
    assert!(status.recording);
    assert_eq!(status.current.as_ref(), Some(&info));
    assert_eq!(status.restarts, 0);
    assert!(node.list().await[0].recording);
    assert_eq!(
        node.list().await[0].codecs,
        vec!["h264".to_string(), "aac".to_string()]
    );

    assert_eq!(stop(&node, "show").await, Ok(info.clone()));
    assert_eq!(
        stop(&node, "show").await,
        Err(RecordError::NotRecording {
            stream: "show".into()
        })
    );
    let second = node.start_recording("show", None).await.unwrap();
    assert!(second.record_dir.starts_with("show/"));
    assert_eq!(second.record_id.len(), 10);
    feed(&stream, &events[half..], |_| {}).await;
    node.unpublish_and_wait(&stream, "show").await;

    let first = node.storage.join("custom/1700000123");
    assert!(
        first.join("manifest.mpd").exists(),
        "base_dir is the record_dir exactly"
    );
    assert_eq!(decode_errors(&first.join("manifest.mpd")), "");
    assert_eq!(
        node.session_json("custom/1700000123")["outcome"],
        "completed"
    );
    let (dash, flv) = check_playable(&node, &second.record_dir);
    assert!(dash.0 > 0 && flv.0 > 0);
    node.assert_segments_before_manifests();
}

#[tokio::test]
async fn rotation_gives_record_dirs_that_each_play_and_together_hold_every_frame() {
    let dir = test_dir("rotation");
    let mut s = settings(&dir, &["*"]);
    s.max_recording_seconds = 2;
    let node = Node::start(&dir, s).await;
    let events = source_events();
    let stream = node.publish("rot").await;
    // Fire the rotation timers whenever another 2 s of media has gone by, instead of waiting.
    let mut next = 2.0;
    for e in &events {
        if matches!(e, MediaEvent::Frame(_)) && event_seconds(e) >= next {
            stream
                .cast(StreamMsg::InjectFault(StreamFault::FireRotationTimers))
                .unwrap();
            next += 2.0;
        }
        stream.cast(StreamMsg::Media(e.clone())).unwrap();
    }
    node.unpublish_and_wait(&stream, "rot").await;

    let dirs = node.record_dirs("rot");
    assert!(dirs.len() >= 3, "several record_dirs: {dirs:?}");
    let mut total = (0, 0);
    for (i, d) in dirs.iter().enumerate() {
        let (dash, flv) = check_playable(&node, d);
        assert_eq!(dash, flv, "{d}: DASH and FLV hold the same frames");
        total.0 += dash.0;
        total.1 += dash.1;
        let outcome = &node.session_json(d)["outcome"];
        let want = if i + 1 == dirs.len() {
            "completed"
        } else {
            "rotated"
        };
        assert_eq!(outcome, want, "{d}");
    }
    assert_eq!(
        total,
        source_counts(),
        "no frame lost or duplicated across rotations"
    );
    node.assert_segments_before_manifests();
}

#[tokio::test]
async fn a_second_publisher_of_a_live_stream_is_refused_and_shutdown_closes_recordings() {
    let dir = test_dir("shutdown");
    let node = Node::start(&dir, settings(&dir, &["*"])).await;
    let events = source_events();
    let stream = node.publish("dup").await;
    let request = recnode_actors::stream::PublishRequest {
        app: "live".into(),
        stream: "dup".into(),
        protocol: recnode_actors::stream::IngestProtocol::Rtmp,
        remote: "127.0.0.1:2".into(),
    };
    let second =
        ractor::call_t!(node.streams, StreamSupervisorMsg::Publish, 10_000, request).unwrap();
    assert!(matches!(
        second,
        Err(recnode_actors::stream::PublishRejected::AlreadyLive { .. })
    ));
    feed(&stream, &events, |_| {}).await;
    ractor::call_t!(node.streams, StreamSupervisorMsg::Shutdown, 60_000).unwrap();
    node.drain().await;
    let dirs = node.record_dirs("dup");
    assert_eq!(dirs.len(), 1);
    assert_eq!(node.session_json(&dirs[0])["outcome"], "completed");
    let (dash, _) = check_playable(&node, &dirs[0]);
    assert_eq!(dash, source_counts());
}
