//! End to end: SIGTERM mid-publish makes the built `recnode` binary close its recordings
//! cleanly, upload them and exit 0; the recording is complete up to the stop.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::time::Duration;

/// Video frames per second of the source.
const FPS: f64 = 25.0;

#[test]
fn sigterm_mid_publish_closes_the_recording_cleanly_with_every_frame_received() {
    let mut node = Node::start_with(&[("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]")]);
    let src = av_source(node.cwd.path(), "src.flv", 8);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    let status = wait_for(
        "the recording to hold more than 2 s",
        Duration::from_secs(20),
        || {
            let r = node.api("GET", "/api/record/cam1", None);
            let status = (r.status == 200).then(|| r.json())?;
            (status["duration_seconds"].as_f64()? > 2.0).then_some(status)
        },
    );
    // Every video frame inside the media-time span the node had received when we read
    // its status was sent before the stop (one short for a span ending on audio); a
    // clean stop records them all, and what arrived after the read as well.
    let received = (status["duration_seconds"].as_f64().unwrap() * FPS).floor() as u64;

    let exit = node.terminate(Duration::from_secs(60));
    assert!(exit.success(), "recnode exits 0 after SIGTERM: {exit}");
    publisher.wait(Duration::from_secs(30));

    // The node drained its uploads before exiting: nothing to wait for.
    let dirs = record_dirs(&node.recordings(), "cam1");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    assert!(is_finished(dir), "static manifest and final session.json");
    assert_eq!(session_outcome(dir).as_deref(), Some("completed"));
    assert!(
        files_under(&node.spool()).is_empty(),
        "the spool was drained: {:?}",
        files_under(&node.spool())
    );

    let manifest = dir.join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "", "no torn fragment");
    let got = media::count_frames(&manifest);
    eprintln!("recorded {got:?}; {received} video frames received before SIGTERM");
    assert!(got.video >= FPS as u64, "at least 1 s of video: {got:?}");
    assert!(
        got.video >= received,
        "{} video frames recorded of the {received} received before SIGTERM",
        got.video
    );
    let flv = flv_of(dir);
    assert_eq!(media::decode_errors(&flv), "");
    assert_eq!(
        media::count_frames(&flv),
        got,
        "FLV and DASH hold the same frames"
    );
    let video_seconds = got.video as f64 / FPS;
    let audio_seconds = got.audio as f64 * 1024.0 / 44_100.0;
    assert!(
        (video_seconds - audio_seconds).abs() < 0.5,
        "audio and video both run to the stop: {got:?}"
    );
    // The recorded pictures are the source's from its start, none lost or repeated (the
    // last two may be B-frames' anchors out of place: the stop cut in decode order).
    let source = media::video_md5s(&src);
    let recorded = media::video_md5s(&manifest);
    let checked = recorded.len().saturating_sub(2);
    assert_eq!(
        recorded[..checked],
        source[..checked],
        "the recording is the source up to the stop"
    );
}
