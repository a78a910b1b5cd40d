//! End to end: the built `recnode` binary records an ffmpeg RTMP publish (H264 with
//! B-frames + AAC) as DASH and FLV, and ffprobe/ffmpeg find every frame in both.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Publishes `src` to `url` at real-time pace and waits for ffmpeg to finish.
fn publish(src: &Path, url: &str) -> std::process::ExitStatus {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-re", "-i"])
        .arg(src)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg is required (scripts/test.sh installs it)")
}

/// The record dirs of `stream` under the storage root whose manifest is final (static).
fn finished_record_dirs(root: &Path, stream: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(stream)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|d| {
            std::fs::read_to_string(d.join("manifest.mpd"))
                .is_ok_and(|m| m.contains("type=\"static\""))
                && std::fs::read_to_string(d.join("session.json"))
                    .is_ok_and(|s| !s.contains("\"recording\""))
        })
        .collect();
    dirs.sort();
    dirs
}

/// The FLV file of a record dir.
fn flv_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("record dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "flv"))
        .unwrap_or_else(|| panic!("no FLV in {}", dir.display()))
}

#[test]
fn an_rtmp_publish_is_recorded_as_dash_and_flv_with_every_frame() {
    let node = Node::start_with(&[("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]")]);
    let src = source(node.cwd.path());
    assert!(publish(&src, &node.rtmp_url("cam1")).success());

    let dirs = wait_for(
        "the recording to be finished in storage",
        Duration::from_secs(30),
        || Some(finished_record_dirs(&node.recordings(), "cam1")).filter(|d| !d.is_empty()),
    );
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    let record_id = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        record_id.len() == 10 && record_id.bytes().all(|b| b.is_ascii_digit()),
        "{record_id}"
    );

    let want = media::count_frames(&src);
    let manifest = dir.join("manifest.mpd");
    assert_eq!(
        media::count_frames(&manifest),
        want,
        "DASH holds every frame"
    );
    assert_eq!(media::decode_errors(&manifest), "");
    let flv = flv_in(dir);
    assert!(flv
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("live_cam1_"));
    assert_eq!(media::count_frames(&flv), want, "FLV holds every frame");
    assert_eq!(media::decode_errors(&flv), "");
    let session = std::fs::read_to_string(dir.join("session.json")).unwrap();
    assert!(session.contains("completed"), "{session}");
}
