//! End to end with a real S3 server (s3s-fs on loopback): node B has no storage
//! credentials and uploads in presigned-URL mode through node A's
//! `POST /api/storage/presign` (guarded by A's admin token). B's recording lands in A's
//! bucket, whole, and decodes with every frame.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::s3::S3Server;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const ROOT: &str = "/rec";
const TOKEN: &str = "presign-test-token";

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn a_node_without_credentials_records_into_the_bucket_through_a_presign_service() {
    let s3 = S3Server::start();
    let mut env_a = s3.node_env(ROOT);
    env_a.push(("RECNODE_AUTH__ADMIN_TOKEN".into(), TOKEN.into()));
    let node_a = Node::start_logged(&pairs(&env_a));

    let presign_url = format!("http://{}/api/storage/presign", node_a.http);
    let node_b = Node::start_logged(&[
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
        ("RECNODE_RECORDER__UPLOAD__ENABLED", "true"),
        ("RECNODE_RECORDER__UPLOAD__PRESIGN_URL", &presign_url),
        ("RECNODE_RECORDER__UPLOAD__TOKEN", TOKEN),
        ("RECNODE_RECORDER__UPLOAD__MAX_BACKOFF_SECONDS", "2"),
    ]);

    let src = av_source(node_b.cwd.path(), "src.flv", 5);
    let mut publisher = Publisher::start(&src, &node_b.rtmp_url("cam1"), node_b.cwd.path());
    publisher.wait_success(Duration::from_secs(30));

    let download = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = wait_for(
        "B's spool to empty and its recording to be finished in A's bucket",
        Duration::from_secs(60),
        || {
            if !files_under(&node_b.spool()).is_empty() {
                return None;
            }
            let keys = s3.list("rec/cam1/");
            if !keys.iter().any(|(key, _)| key.ends_with("/session.json")) {
                return None;
            }
            let _ = std::fs::remove_dir_all(download.path().join("rec"));
            s3.download("rec/cam1/", download.path());
            let dirs = record_dirs(&download.path().join("rec"), "cam1");
            (dirs.len() == 1 && is_finished(&dirs[0])).then(|| dirs[0].clone())
        },
    );
    assert!(
        files_under(&node_b.recordings()).is_empty(),
        "B wrote nothing to its own disk storage"
    );
    assert_eq!(
        http_get(node_b.http, "/readyz").map(|r| r.status),
        Some(200),
        "B's storage (through A) is reachable: {}",
        node_b.log()
    );

    let want = media::count_frames(&src);
    let manifest = dir.join("manifest.mpd");
    assert_eq!(media::decode_errors(&manifest), "", "the DASH decodes");
    assert_eq!(
        media::count_frames(&manifest),
        want,
        "DASH holds every frame"
    );
    let flv = flv_of(&dir);
    assert_eq!(media::decode_errors(&flv), "", "the FLV decodes");
    assert_eq!(media::count_frames(&flv), want, "FLV holds every frame");
    assert_eq!(session_outcome(&dir).as_deref(), Some("completed"));
}
