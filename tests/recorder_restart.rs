//! End to end: when a recording's recorder fails mid-publish (a fault injected through the
//! debug API of the test build), the built `recnode` binary restarts it, and the recording
//! goes on in the same record dir with every frame of the source, in DASH and FLV.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::time::Duration;

#[test]
fn a_restarted_recorder_continues_the_same_recording_and_loses_no_frames() {
    let node = Node::start_logged(&[("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]")]);
    let src = av_source(node.cwd.path(), "src.flv", 8);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    let before = wait_for(
        "the recording to hold more than 1.5 s",
        Duration::from_secs(20),
        || {
            let r = node.api("GET", "/api/record/cam1", None);
            let status = (r.status == 200).then(|| r.json())?;
            (status["duration_seconds"].as_f64()? > 1.5).then_some(status)
        },
    );
    assert_eq!(before["restarts"], 0, "{before}");
    node.inject_fault("cam1", "fail-recorder");

    let after = wait_for(
        "GET /api/record/cam1 to count the restart",
        Duration::from_secs(10),
        || {
            let status = node.recording_status("cam1");
            (status["restarts"].as_u64()? >= 1).then_some(status)
        },
    );
    assert_eq!(after["recording"], true, "the recording goes on: {after}");
    assert_eq!(after["record_dir"], before["record_dir"], "{after}");

    publisher.wait_success(Duration::from_secs(40));
    let dirs = wait_for_finished_recordings(&node, "cam1", Duration::from_secs(30));
    assert_eq!(dirs.len(), 1, "one recording, not a new one: {dirs:?}");
    let dir = &dirs[0];
    assert_eq!(
        dir.strip_prefix(node.recordings()).unwrap(),
        std::path::Path::new(before["record_dir"].as_str().unwrap())
    );

    let session = session_json(dir).expect("session.json");
    assert_eq!(session["outcome"], "completed", "{session}");
    assert!(session["restarts"].as_u64() >= Some(1), "{session}");

    let want = media::count_frames(&src);
    let manifest = dir.join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "");
    assert_eq!(
        media::count_frames(&manifest),
        want,
        "DASH holds every frame"
    );
    assert_eq!(
        media::video_md5s(&manifest),
        media::video_md5s(&src),
        "DASH holds the source's pictures in order"
    );
    let flv = flv_of(dir);
    assert_eq!(media::decode_errors(&flv), "");
    assert_eq!(media::count_frames(&flv), want, "FLV holds every frame");

    let log = node.log();
    assert!(
        log.lines()
            .any(|l| l.contains("restart") && l.contains("cam1") && l.contains("WARN")),
        "the node logs the restart with the stream's name:\n{log}"
    );
}
