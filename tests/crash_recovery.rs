//! End to end: a `recnode` killed with SIGKILL mid-recording finishes that recording when
//! it starts again: spool recovery cuts torn fragments, writes a static manifest and a
//! session.json with outcome `recovered`, uploads everything and empties the spool. At
//! most the fragment being written at the kill (0.5 s) is lost.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::time::Duration;

/// Video frames per second of the source.
const FPS: f64 = 25.0;
/// One 0.5 s fragment of 25 fps video, rounded up: what a kill may lose.
const ONE_FRAGMENT: u64 = 13;

#[test]
fn a_recording_cut_by_kill_9_is_recovered_on_restart_losing_at_most_one_fragment() {
    let node = Node::start_with(&[("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]")]);
    let src = av_source(node.cwd.path(), "src.flv", 8);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    // Mid-publish: two whole 2 s segments have reached storage.
    let record_dir = wait_for(
        "two video segments of cam1 in storage",
        Duration::from_secs(30),
        || {
            record_dirs(&node.recordings(), "cam1")
                .into_iter()
                .find(|d| d.join("v_seg_0002.m4s").exists())
        },
    );

    // Then into the middle of a 0.5 s fragment (4.5–5.0 s), so the kill tears one.
    let status = wait_for(
        "the recording to hold more than 4.7 s",
        Duration::from_secs(20),
        || {
            let status = node.recording_status("cam1");
            (status["duration_seconds"].as_f64()? > 4.7).then_some(status)
        },
    );

    // "Frames sent before the kill", measured from the node's side: the stream actor's
    // `duration_seconds` is the media-time span of the frames it has handed to the
    // recorder, read just before the kill. Every video frame with a timestamp inside
    // that span (floor(duration × 25), one short to allow for the span ending on an
    // audio frame) had been sent and received. It is a lower bound: frames that arrive
    // between this read and the kill, or sit in socket buffers, are not counted. The
    // wall-clock bound (time since ffmpeg started × 25, an upper bound since `-re` paces
    // from its start) is printed for comparison.
    let killed_after = publisher.started.elapsed();
    let node = node.kill_9_and_restart();
    let duration = status["duration_seconds"].as_f64().expect("duration");
    let sent_before_kill = (duration * FPS).floor() as u64;
    eprintln!(
        "killed at {duration:.3} s of recorded media ({sent_before_kill} video frames), \
         {:.3} s after ffmpeg started (at most {:.0} frames)",
        killed_after.as_secs_f64(),
        killed_after.as_secs_f64() * FPS + 1.0
    );
    assert!(
        sent_before_kill >= 4 * FPS as u64,
        "two segments were stored: {status}"
    );
    // The node is gone and the new one listens elsewhere: ffmpeg fails.
    publisher.wait(Duration::from_secs(30));

    let dirs = wait_for_finished_recordings(&node, "cam1", Duration::from_secs(30));
    assert_eq!(
        dirs,
        vec![record_dir.clone()],
        "the one recording, finished"
    );
    let session = session_json(&record_dir).expect("session.json");
    assert_eq!(session["outcome"], "recovered", "{session}");

    let manifest = record_dir.join("manifest.mpd");
    let mpd = std::fs::read_to_string(&manifest).unwrap();
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    assert_eq!(media::decode_errors(&manifest), "", "no torn fragment");
    let got = media::count_frames(&manifest);
    eprintln!("recovered {got:?}");
    assert!(
        got.video + ONE_FRAGMENT >= sent_before_kill,
        "recovered {} video frames of the {sent_before_kill} sent before the kill",
        got.video
    );
    assert!(got.audio > 0, "audio is recovered too: {got:?}");
    let source = media::video_md5s(&src);
    let recovered = media::video_md5s(&manifest);
    assert!(
        source.starts_with(&recovered[..recovered.len().saturating_sub(2)]),
        "the recovered pictures are the source's, from its start"
    );
    assert!(
        files_under(&node.spool()).is_empty(),
        "the spool is empty after recovery: {:?}",
        files_under(&node.spool())
    );
}
