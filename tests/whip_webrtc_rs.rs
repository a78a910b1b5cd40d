//! End to end with the project's own webrtc-rs publisher (`recnode_loadgen::whip`): VP9
//! and AV1 encoded by ffmpeg into IVF files, each with Opus, are recorded as DASH that
//! ffmpeg decodes with every frame; stream keys apply to WHIP as to RTMP.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;
mod whip_support;

use common::*;
use recnode_loadgen::whip::{
    ivf_track, opus_track, publish, PublishOptions, PublishReport, WhipClientError,
};
use std::path::Path;
use std::time::Duration;
use whip_support::*;

/// Publishes `video` (an IVF file) and `audio` (Ogg Opus) to `url` and waits for the end.
fn publish_files(url: &str, video: &Path, audio: &Path, token: Option<&str>) -> PublishReport {
    let options = PublishOptions {
        url: url.to_string(),
        token: token.map(str::to_string),
        video: Some(ivf_track(video).expect("IVF source")),
        audio: Some(opus_track(audio).expect("Opus source")),
        duration: None,
        vanish: false,
        connect_timeout: Duration::from_secs(20),
    };
    run_publish(options).expect("publish")
}

/// Runs one webrtc-rs publish to its end on a current-thread runtime.
fn run_publish(options: PublishOptions) -> Result<PublishReport, WhipClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(publish(options))
}

/// Publishes a codec's IVF file and checks the recording has every frame.
fn record_ivf(node: &Node, stream: &str, ivf: &Path, opus: &Path, codec: &str) {
    let report = publish_files(&whip_url(node, stream), ivf, opus, None);
    assert_eq!(report.delete_status, 200, "{report:?}");
    let dirs = wait_for_finished_recordings(node, stream, Duration::from_secs(30));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let manifest = dirs[0].join("manifest.mpd");
    let counts = media::count_frames(&manifest);
    let source = media::count_frames(ivf);
    assert_eq!(
        report.video_frames, source.video,
        "the publisher sent every frame of the file"
    );
    assert_eq!(
        counts.video, report.video_frames,
        "{codec}: every video frame recorded"
    );
    let audio_diff = counts.audio.abs_diff(report.audio_frames);
    assert!(
        audio_diff as f64 <= 0.02 * report.audio_frames as f64,
        "{codec}: audio recorded {} of {}",
        counts.audio,
        report.audio_frames
    );
    assert_eq!(
        media::decode_errors(&manifest),
        "",
        "{codec} decodes cleanly"
    );
    let session = session_json(&dirs[0]).expect("session.json").to_string();
    assert!(session.to_lowercase().contains(codec), "{session}");
}

#[test]
fn vp9_and_av1_ivf_files_from_ffmpeg_are_recorded_from_a_webrtc_rs_publisher() {
    let node = whip_node(&[]);
    let dir = node.cwd.path().join("sources");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let realtime_vp9 = [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-lag-in-frames",
        "0",
        "-g",
        "30",
        "-b:v",
        "500k",
    ];
    let vp9 = encode_video(&dir, "vp9.ivf", 3, &realtime_vp9);
    let av1_args = [
        "-c:v",
        "libaom-av1",
        "-usage",
        "realtime",
        "-cpu-used",
        "8",
        "-lag-in-frames",
        "0",
        "-g",
        "30",
        "-b:v",
        "500k",
    ];
    let av1 = encode_video(&dir, "av1.ivf", 3, &av1_args);
    let opus = encode_opus(&dir, "tone.ogg", 3);
    record_ivf(&node, "webrtc-rs-vp9", &vp9, &opus, "vp9");
    record_ivf(&node, "webrtc-rs-av1", &av1, &opus, "av1");
}

#[test]
fn a_publish_longer_than_the_frame_cache_keeps_every_frame() {
    // The stream keeps at most 10 s of frames; a recording must never depend on more.
    let node = whip_node(&[]);
    let dir = node.cwd.path().join("sources");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Keyframes every 37 frames (1.23 s) fall inside the recorder's 0.5 s fragments, as a
    // keyframe asked for by PLI would; the file loops every 2 s.
    let args = [
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-g",
        "37",
        "-keyint_min",
        "37",
        "-b:v",
        "800k",
    ];
    let vp8 = encode_video(&dir, "vp8.ivf", 2, &args);
    let opus = encode_opus(&dir, "tone.ogg", 2);
    let options = PublishOptions {
        url: whip_url(&node, "long"),
        token: None,
        video: Some(ivf_track(&vp8).expect("IVF")),
        audio: Some(opus_track(&opus).expect("Opus")),
        duration: Some(Duration::from_secs(14)),
        vanish: false,
        connect_timeout: Duration::from_secs(20),
    };
    let report = run_publish(options).expect("publish");
    assert!(report.video_frames >= 14 * 29, "{report:?}");
    let dirs = wait_for_finished_recordings(&node, "long", Duration::from_secs(30));
    let counts = media::count_frames(&dirs[0].join("manifest.mpd"));
    assert_eq!(
        counts.video, report.video_frames,
        "every video frame recorded"
    );
    assert_eq!(
        counts.audio, report.audio_frames,
        "every audio frame recorded"
    );
    assert!(
        !node.log().contains("they are missing"),
        "no frame dropped from the stream's cache before it was recorded"
    );
}

#[test]
fn a_stream_key_rule_applies_to_whip_publishers_as_a_bearer_token() {
    let node = whip_node(&[("RECNODE_AUTH__STREAM_KEYS", "{ \"secure-*\" = \"k1\" }")]);
    let dir = node.cwd.path().join("sources");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let vp8 = encode_video(
        &dir,
        "vp8.ivf",
        1,
        &["-c:v", "libvpx", "-deadline", "realtime"],
    );
    let opus = encode_opus(&dir, "tone.ogg", 1);
    let url = whip_url(&node, "secure-1");
    let refused = |token: Option<&str>| {
        let options = PublishOptions {
            url: url.clone(),
            token: token.map(str::to_string),
            video: Some(ivf_track(&vp8).expect("IVF")),
            audio: None,
            duration: None,
            vanish: false,
            connect_timeout: Duration::from_secs(20),
        };
        run_publish(options).expect_err("refused").to_string()
    };
    assert!(refused(None).contains("401"), "no key");
    assert!(refused(Some("k2")).contains("401"), "wrong key");
    let report = publish_files(&url, &vp8, &opus, Some("k1"));
    assert_eq!(report.delete_status, 200);
    wait_for_finished_recordings(&node, "secure-1", Duration::from_secs(30));
}
