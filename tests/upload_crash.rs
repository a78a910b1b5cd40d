//! End to end with a real S3 server (s3s-fs on loopback): a node records while S3 is
//! down, so its uploads pile up in the durable queue (rows in `data/state.sqlite3`); it is
//! then killed with SIGKILL. The restarted node reloads the queue, recovers the open
//! recording, and once S3 is back stores everything exactly once: the spool and the queue
//! empty, and the recording in the bucket decodes.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::s3::S3Server;
use common::*;
use recnode_actors::state_store::StateStore;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/rec";
/// Video frames per second of the source.
const FPS: f64 = 25.0;
/// One 0.5 s fragment of 25 fps video, rounded up: what a kill may lose.
const ONE_FRAGMENT: u64 = 13;

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The keys of the upload rows in a node's state store.
fn pending_keys(cwd: &Path) -> Vec<String> {
    let store = StateStore::open(&cwd.join("data/state.sqlite3")).expect("open the state store");
    store
        .pending_uploads()
        .expect("read the upload queue")
        .into_iter()
        .map(|r| r.key)
        .collect()
}

#[test]
fn uploads_pending_at_a_kill_9_are_stored_after_restart_once_s3_is_back() {
    let mut s3 = S3Server::start();
    let mut env = s3.node_env(ROOT);
    env.push(("RECNODE_RECORDER__AUTO_STREAMS".into(), "[\"*\"]".into()));
    env.push((
        "RECNODE_RECORDER__UPLOAD__MAX_BACKOFF_SECONDS".into(),
        "2".into(),
    ));
    let node = Node::start_logged(&pairs(&env));
    s3.stop();

    let src = av_source(node.cwd.path(), "src.flv", 10);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());
    // Several segments (and manifest snapshots) wait in the durable queue.
    let keys = wait_for(
        "three video segments queued in the state store",
        Duration::from_secs(30),
        || {
            let keys = pending_keys(node.cwd.path());
            (keys.iter().filter(|k| k.contains("/v_seg_")).count() >= 3).then_some(keys)
        },
    );
    assert!(
        keys.iter().any(|k| k.ends_with("/session.json")),
        "{keys:?}"
    );
    let status = node.recording_status("cam1");
    let node = node.kill_9_and_restart();
    let duration = status["duration_seconds"].as_f64().expect("duration");
    let sent_before_kill = (duration * FPS).floor() as u64;
    publisher.wait(Duration::from_secs(30));

    // S3 is still down: the queue survived the kill (and recovery added the rest).
    let after = pending_keys(node.cwd.path());
    for key in keys.iter().filter(|k| k.contains("/v_seg_")) {
        assert!(
            after.contains(key),
            "{key} still queued after the restart: {after:?}"
        );
    }
    assert!(
        s3.root
            .path()
            .join("recordings/rec/cam1")
            .read_dir()
            .is_err(),
        "nothing reached the bucket yet"
    );
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
    wait_for(
        "the upload queue to be empty",
        Duration::from_secs(10),
        || pending_keys(node.cwd.path()).is_empty().then_some(()),
    );
    assert_eq!(session_outcome(&dir).as_deref(), Some("recovered"));
    let manifest = dir.join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "", "the DASH decodes");
    let got = media::count_frames(&manifest);
    assert!(
        got.video + ONE_FRAGMENT >= sent_before_kill && got.audio > 0,
        "recovered {got:?} of the {sent_before_kill} video frames sent before the kill"
    );
    let flv = flv_of(&dir);
    assert_eq!(media::decode_errors(&flv), "", "the FLV decodes");
    assert!(media::count_frames(&flv).video + ONE_FRAGMENT >= sent_before_kill);
}
