//! A recorder that fails mid-stream is restarted into the same recording with no frame lost
//! or written twice; one that keeps failing is marked failed while the stream goes on.

mod common_rec;

use common_rec::*;
use recnode_actors::stream::{RecordError, RestartPolicy, StreamFault, StreamSupervisorMsg};
use std::time::Duration;

async fn inject(node: &Node, stream: &str) {
    let stream = stream.to_string();
    node.streams
        .call(
            |reply| StreamSupervisorMsg::InjectFault {
                stream,
                fault: StreamFault::FailRecorder,
                reply,
            },
            Some(TIMEOUT),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_restarted_recorder_continues_the_same_recording_and_loses_no_frame() {
    let dir = test_dir("restart");
    let node = Node::start(&dir, settings(&dir, &["*"])).await;
    let events = source_events();
    let stream = node.publish("cam").await;
    // Fail at about 30% (inside segment 1: an unfinished segment is rewritten) and 70%.
    let cuts = [events.len() * 3 / 10, events.len() * 7 / 10];
    let mut from = 0;
    for (n, &cut) in cuts.iter().enumerate() {
        feed(&stream, &events[from..cut], |_| {}).await;
        inject(&node, "cam").await;
        node.wait_status("cam", "the restart", |s| s.restarts == n as u32 + 1)
            .await;
        from = cut;
    }
    feed(&stream, &events[from..], |_| {}).await;
    let status = node.status("cam").await.unwrap();
    assert!(status.recording && status.failed.is_none(), "{status:?}");
    node.unpublish_and_wait(&stream, "cam").await;

    let dirs = node.record_dirs("cam");
    assert_eq!(
        dirs.len(),
        1,
        "the restarted recorder continued the same record_dir: {dirs:?}"
    );
    let mpd = node.storage.join(&dirs[0]).join("manifest.mpd");
    assert_eq!(decode_errors(&mpd), "", "DASH decodes cleanly");
    let want = count_frames(source());
    assert_eq!(
        count_frames(&mpd),
        want,
        "DASH holds exactly the source's frames"
    );
    let flv = node.flv(&dirs[0]);
    assert_eq!(decode_errors(&flv), "", "FLV decodes cleanly");
    assert_eq!(
        count_frames(&flv),
        want,
        "FLV holds exactly the source's frames"
    );
    let session = node.session_json(&dirs[0]);
    assert_eq!(session["outcome"], "completed");
    assert_eq!(session["restarts"], 2);
    node.assert_segments_before_manifests();
}

#[tokio::test]
async fn a_recorder_that_keeps_failing_is_marked_failed_while_the_stream_goes_on() {
    let dir = test_dir("intensity");
    let mut s = settings(&dir, &["*"]);
    s.restart = RestartPolicy {
        max_restarts: 2,
        within: Duration::from_secs(30),
        backoff_base: Duration::from_millis(10),
    };
    let node = Node::start(&dir, s).await;
    let events = source_events();
    let stream = node.publish("flaky").await;
    let third = events.len() / 3;
    feed(&stream, &events[..third], |_| {}).await;
    let first = node.status("flaky").await.unwrap().current.unwrap();
    for n in 1..=2u32 {
        inject(&node, "flaky").await;
        node.wait_status("flaky", "a restart", |s| s.restarts == n)
            .await;
    }
    inject(&node, "flaky").await;
    let status = node
        .wait_status("flaky", "the recording marked failed", |s| {
            s.failed.is_some()
        })
        .await;
    assert!(!status.recording);
    assert_eq!(status.current.as_ref(), Some(&first));
    assert_eq!(status.restarts, 2);

    // The stream goes on: it is still live and can be recorded again.
    assert!(node.list().await.iter().any(|s| s.stream == "flaky"));
    let again = node.start_recording("flaky", None).await;
    let again: Result<_, RecordError> = again;
    let again = again.unwrap();
    assert_ne!(again.record_dir, first.record_dir);
    feed(&stream, &events[third..], |_| {}).await;
    node.unpublish_and_wait(&stream, "flaky").await;

    assert_eq!(node.session_json(&first.record_dir)["outcome"], "failed");
    let failed_mpd = node.storage.join(&first.record_dir).join("manifest.mpd");
    assert_eq!(
        decode_errors(&failed_mpd),
        "",
        "what the failed recording kept still plays"
    );
    assert_eq!(node.session_json(&again.record_dir)["outcome"], "completed");
    let mpd = node.storage.join(&again.record_dir).join("manifest.mpd");
    assert_eq!(decode_errors(&mpd), "");
    assert!(count_frames(&mpd).0 > 0);
}
