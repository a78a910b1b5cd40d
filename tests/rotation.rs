//! End to end: with `max_recording_seconds = 2`, the built `recnode` binary rotates an
//! auto-recorded RTMP publish into several record dirs, each a finished recording that
//! plays on its own, and together they hold every frame of the source exactly once; a
//! rotation fired early through the debug API of the test build does the same.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Makes the 5 s source every RTMP test publishes.
fn source(dir: &Path) -> PathBuf {
    media::lavfi_source(
        dir,
        "src.flv",
        Some(44_100),
        "-c:v libx264 -bf 2 -g 25 -pix_fmt yuv420p -c:a aac -b:a 96k",
    )
}

/// Asserts that the finished record dirs of a rotated recording are `rotated`…`completed`,
/// each plays cleanly, and together they hold every frame of `src` exactly once, in DASH
/// (counts and decoded pictures) and in FLV (counts).
fn assert_rotated_recordings_hold_the_source(dirs: &[PathBuf], src: &Path) {
    let outcomes: Vec<String> = dirs
        .iter()
        .map(|d| session_outcome(d).unwrap_or_default())
        .collect();
    let (last, earlier) = outcomes.split_last().expect("at least one recording");
    assert_eq!(last, "completed", "{outcomes:?}");
    assert!(earlier.iter().all(|o| o == "rotated"), "{outcomes:?}");

    let mut total = media::Counts::default();
    let mut flv_total = media::Counts::default();
    let mut seen = BTreeSet::new();
    for dir in dirs {
        let manifest = dir.join("manifest.mpd");
        assert_eq!(media::decode_errors(&manifest), "", "{}", dir.display());
        let counts = media::count_frames(&manifest);
        assert!(counts.video > 0, "{} holds video", dir.display());
        total.video += counts.video;
        total.audio += counts.audio;
        let flv = flv_of(dir);
        assert_eq!(media::decode_errors(&flv), "", "{}", flv.display());
        let counts = media::count_frames(&flv);
        flv_total.video += counts.video;
        flv_total.audio += counts.audio;
        for md5 in media::video_md5s(&manifest) {
            assert!(
                seen.insert(md5),
                "a video frame of {} is in an earlier recording too",
                dir.display()
            );
        }
    }
    let want = media::count_frames(src);
    assert_eq!(total, want, "DASH: rotation loses and duplicates nothing");
    assert_eq!(
        flv_total, want,
        "FLV: rotation loses and duplicates nothing"
    );
    let source_md5s: BTreeSet<String> = media::video_md5s(src).into_iter().collect();
    assert_eq!(
        seen, source_md5s,
        "the recordings hold the source's pictures"
    );
}

#[test]
fn rotated_recordings_together_hold_every_frame_exactly_once() {
    let node = Node::start_with(&[
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
        ("RECNODE_RECORDER__MAX_RECORDING_SECONDS", "2"),
    ]);
    let src = source(node.cwd.path());
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());
    publisher.wait_success(Duration::from_secs(40));

    let dirs = wait_for_finished_recordings(&node, "cam1", Duration::from_secs(30));
    assert!(
        dirs.len() >= 2,
        "a 5 s publish rotates at least once: {dirs:?}"
    );
    assert_rotated_recordings_hold_the_source(&dirs, &src);
}

#[test]
fn a_rotation_fired_through_the_debug_api_splits_the_recording_without_losing_frames() {
    let node = Node::start_with(&[
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
        ("RECNODE_RECORDER__MAX_RECORDING_SECONDS", "3600"),
    ]);
    let src = source(node.cwd.path());
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());
    let first = wait_for(
        "the recording to hold more than 1.5 s",
        Duration::from_secs(20),
        || {
            let r = node.api("GET", "/api/record/cam1", None);
            let status = (r.status == 200).then(|| r.json())?;
            (status["duration_seconds"].as_f64()? > 1.5).then_some(status)
        },
    );
    node.inject_fault("cam1", "fire-rotation");
    wait_for(
        "GET /api/record/cam1 to report the next recording",
        Duration::from_secs(10),
        || {
            let status = node.recording_status("cam1");
            (status["record_dir"] != first["record_dir"]).then_some(())
        },
    );
    publisher.wait_success(Duration::from_secs(40));

    let dirs = wait_for_finished_recordings(&node, "cam1", Duration::from_secs(30));
    assert_eq!(dirs.len(), 2, "one rotation, two recordings: {dirs:?}");
    assert_eq!(
        dirs[0].strip_prefix(node.recordings()).unwrap(),
        Path::new(first["record_dir"].as_str().unwrap())
    );
    assert_rotated_recordings_hold_the_source(&dirs, &src);
}
