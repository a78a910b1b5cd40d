//! End to end with a real S3 server (s3s-fs on loopback): the S3 server goes away for
//! about 20 s in the middle of a 12 s publish. The node keeps recording into its spool,
//! reports storage unreachable on `/readyz`, and once S3 is back it uploads everything it
//! held: the bucket then has exactly the objects the final manifest names, whole, and the
//! recording decodes with every frame that was sent.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::s3::S3Server;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The node's storage root inside the bucket.
const ROOT: &str = "/rec";
/// How long S3 stays down.
const OUTAGE: Duration = Duration::from_secs(20);

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Segment file names a DASH manifest lists: per `SegmentTemplate`, `startNumber` and one
/// per `<S>` (plus its `r` repeats), formatted like the template's `$Number%04d$`.
fn listed_segments(mpd: &str) -> Vec<String> {
    let mut names = Vec::new();
    for set in mpd.split("<SegmentTemplate").skip(1) {
        let attr = |name: &str| -> Option<String> {
            let start = set.find(&format!("{name}=\""))? + name.len() + 2;
            Some(set[start..].split('"').next()?.to_string())
        };
        let media = attr("media").unwrap_or_default();
        let prefix = media.split('$').next().unwrap_or_default().to_string();
        let start: u32 = attr("startNumber")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let timeline = set.split("</SegmentTimeline>").next().unwrap_or_default();
        let mut count = 0u32;
        for s in timeline.split("<S ").skip(1) {
            let r = s
                .find("r=\"")
                .and_then(|i| s[i + 3..].split('"').next()?.parse::<u32>().ok())
                .unwrap_or(0);
            count += r + 1;
        }
        for n in start..start + count {
            names.push(format!("{prefix}{n:04}.m4s"));
        }
    }
    names
}

/// Checks a downloaded DASH record dir: the bucket holds exactly the segments the static
/// manifest lists (no gap, no extra), each made of whole fragments.
pub fn assert_segments_whole_and_exact(dir: &Path) {
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).expect("manifest");
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    let listed: BTreeSet<String> = listed_segments(&mpd).into_iter().collect();
    assert!(
        listed.len() >= 10,
        "12 s of media in 2 s segments: {listed:?}"
    );
    let present: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("record dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_seg_"))
        .collect();
    assert_eq!(present, listed, "objects in the bucket = segments listed");
    for name in &listed {
        let data = std::fs::read(dir.join(name)).expect("segment");
        assert_eq!(
            recnode_media::recover::valid_fmp4_prefix(&data),
            data.len(),
            "{name} ({} bytes) is whole fragments, not truncated",
            data.len()
        );
    }
}

#[test]
fn an_s3_outage_mid_recording_loses_nothing_once_storage_is_back() {
    let mut s3 = S3Server::start();
    let mut env = s3.node_env(ROOT);
    env.push(("RECNODE_RECORDER__AUTO_STREAMS".into(), "[\"*\"]".into()));
    env.push((
        "RECNODE_RECORDER__UPLOAD__MAX_BACKOFF_SECONDS".into(),
        "2".into(),
    ));
    let node = Node::start_logged(&pairs(&env));
    let src = av_source(node.cwd.path(), "src.flv", 12);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());

    // Uploads work before the outage.
    wait_for(
        "the first segment in the bucket",
        Duration::from_secs(30),
        || {
            s3.list("rec/cam1/")
                .iter()
                .any(|(k, _)| k.ends_with("/v_seg_0001.m4s"))
                .then_some(())
        },
    );
    s3.stop();
    let down_at = Instant::now();
    wait_for(
        "/readyz to report storage unreachable",
        Duration::from_secs(20),
        || http_get(node.http, "/readyz").filter(|r| r.status == 503),
    );
    // The publish ends during the outage; the recording closes into the spool.
    publisher.wait_success(Duration::from_secs(30));
    let held = wait_for(
        "the closed recording's session.json in the spool",
        Duration::from_secs(20),
        || {
            let files = files_under(&node.spool());
            files
                .iter()
                .any(|f| f.ends_with("session.json") && is_final_session(f))
                .then_some(files)
        },
    );
    assert!(
        held.iter()
            .filter(|f| f.to_string_lossy().contains("_seg_"))
            .count()
            >= 4,
        "segments wait in the spool during the outage: {held:?}"
    );
    // The outage lasts its full length whatever the publish did (this sets the scenario;
    // nothing below depends on timing).
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    s3.resume();

    let download = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = wait_for(
        "the spool to empty and the recording to be finished in the bucket",
        Duration::from_secs(60),
        || {
            if !files_under(&node.spool()).is_empty() {
                return None;
            }
            let _ = std::fs::remove_dir_all(download.path().join("rec"));
            s3.download("rec/cam1/", download.path());
            let dirs = record_dirs(&download.path().join("rec"), "cam1");
            (dirs.len() == 1 && is_finished(&dirs[0])).then(|| dirs[0].clone())
        },
    );
    assert_eq!(
        http_get(node.http, "/readyz").map(|r| r.status),
        Some(200),
        "storage reachable again"
    );

    assert_segments_whole_and_exact(&dir);
    let want = media::count_frames(&src);
    let manifest = dir.join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "", "the DASH decodes");
    assert_eq!(
        media::count_frames(&manifest),
        want,
        "DASH holds every frame sent"
    );
    let flv = flv_of(&dir);
    assert_eq!(media::decode_errors(&flv), "", "the FLV decodes");
    assert_eq!(
        media::count_frames(&flv),
        want,
        "FLV holds every frame sent"
    );
    assert_eq!(session_outcome(&dir).as_deref(), Some("completed"));
    // The outage and the recovery are hook events too.
    let events = hook_event_types(&node);
    for kind in ["upload.retrying", "upload.stored"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    // Retry events carry the backlog the outage built up (canonical JSON: a string).
    let sse = node
        .api("GET", "/api/events?since=0&follow=false", None)
        .body;
    assert!(
        sse.contains("\"queueLength\":\""),
        "queue length in:\n{sse}"
    );
}

/// Whether a spool session.json is the final one (outcome no longer `recording`).
fn is_final_session(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["outcome"].as_str().map(|o| o != "recording"))
        .unwrap_or(false)
}
