//! End to end with a WebRTC client we did not write: aiortc (from PyPI, installed by
//! `scripts/test.sh`) publishes H264 or VP8 with Opus over WHIP to the built binary, and
//! ffmpeg decodes the DASH recording with (within 2%) every frame aiortc reports sending.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;
mod whip_support;

use common::*;
use std::time::Duration;
use whip_support::*;

/// Frames in the recording are within 2% of the frames sent (the slack is for the wait for
/// the first keyframe and a frame in flight at DELETE; loopback loses nothing).
fn assert_close(what: &str, recorded: u64, sent: u64) {
    assert!(sent > 0, "{what}: nothing sent");
    let diff = recorded.abs_diff(sent) as f64 / sent as f64;
    assert!(
        diff <= 0.02,
        "{what}: recorded {recorded} frames, sent {sent} ({:.1}% apart)",
        diff * 100.0
    );
}

/// Publishes with `codec` and checks the recording against the publisher's report.
fn publish_and_check(codec: &str, stream: &str) {
    let node = whip_node(&[]);
    let report = aiortc_publish(&node, stream, &["--codec", codec, "--seconds", "6"]);
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["delete_status"], 200, "{report}");
    let dirs = wait_for_finished_recordings(&node, stream, Duration::from_secs(30));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let manifest = dirs[0].join("manifest.mpd");
    let counts = media::count_frames(&manifest);
    let sent_video = report["video_frames"].as_u64().expect("video_frames");
    let sent_audio = report["audio_frames"].as_u64().expect("audio_frames");
    assert_close("video", counts.video, sent_video);
    assert_close("audio", counts.audio, sent_audio);
    assert_eq!(
        media::decode_errors(&manifest),
        "",
        "the recording decodes cleanly"
    );
    let session = session_json(&dirs[0]).expect("session.json");
    let text = session.to_string().to_lowercase();
    assert!(text.contains(codec) && text.contains("opus"), "{session}");
    assert_eq!(session_outcome(&dirs[0]).as_deref(), Some("completed"));
}

#[test]
fn an_aiortc_vp8_and_opus_publish_is_recorded_with_every_frame() {
    publish_and_check("vp8", "aiortc-vp8");
}

#[test]
fn an_aiortc_h264_and_opus_publish_is_recorded_with_every_frame() {
    publish_and_check("h264", "aiortc-h264");
}

#[test]
fn audio_that_starts_later_at_the_publisher_starts_as_much_later_in_the_recording() {
    let node = whip_node(&[]);
    let delay = 0.5;
    let report = aiortc_publish(
        &node,
        "late-audio",
        &[
            "--codec",
            "vp8",
            "--seconds",
            "5",
            "--audio-delay",
            &delay.to_string(),
        ],
    );
    assert_eq!(report["status"], 201, "{report}");
    let dirs = wait_for_finished_recordings(&node, "late-audio", Duration::from_secs(30));
    let video = track_start_seconds(&dirs[0], "v");
    let audio = track_start_seconds(&dirs[0], "a");
    let one_frame = 1.0 / 30.0;
    assert!(
        ((audio - video) - delay).abs() <= one_frame,
        "audio starts {:.3} s after video in the recording, {delay} s at the publisher",
        audio - video
    );
    assert!(
        node.log()
            .contains("placed on one timeline by RTCP sender reports"),
        "sender reports placed the tracks"
    );
}

#[test]
fn a_publisher_that_vanishes_without_delete_is_timed_out_and_its_recording_plays() {
    let node = whip_node(&[("RECNODE_WHIP__SESSION_TIMEOUT_SECONDS", "2")]);
    let report = aiortc_publish(
        &node,
        "vanish",
        &["--codec", "vp8", "--seconds", "4", "--vanish"],
    );
    assert_eq!(report["status"], 201, "{report}");
    assert!(report.get("delete_status").is_none(), "{report}");
    let dirs = wait_for_finished_recordings(&node, "vanish", Duration::from_secs(40));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let manifest = dirs[0].join("manifest.mpd");
    let counts = media::count_frames(&manifest);
    assert_close(
        "video",
        counts.video,
        report["video_frames"].as_u64().unwrap_or(0),
    );
    assert_eq!(media::decode_errors(&manifest), "");
    assert_eq!(session_outcome(&dirs[0]).as_deref(), Some("completed"));
    let log = node.log();
    assert!(
        log.contains("no RTP within the session timeout")
            || log.contains("peer connection state state=failed"),
        "the session ended by timeout:\n{log}"
    );
}
