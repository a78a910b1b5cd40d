//! End to end with a real S3 server (s3s-fs on loopback): a node records an RTMP publish
//! into the bucket, and its readiness follows whether storage answers.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::s3::S3Server;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

/// The node's storage root inside the bucket.
const ROOT: &str = "/rec";

/// `env` as the borrowed pairs `Node::start_with` takes.
fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn an_rtmp_publish_is_stored_whole_in_the_s3_bucket() {
    let s3 = S3Server::start();
    let mut env = s3.node_env(ROOT);
    env.push(("RECNODE_RECORDER__AUTO_STREAMS".into(), "[\"*\"]".into()));
    let node = Node::start_logged(&pairs(&env));
    assert_eq!(
        http_get(node.http, "/readyz").map(|r| r.status),
        Some(200),
        "storage is up: the node is ready"
    );

    let src = av_source(node.cwd.path(), "src.flv", 5);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("cam1"), node.cwd.path());
    publisher.wait_success(Duration::from_secs(30));

    // Finished means: the spool is empty and the bucket holds a static manifest and a
    // final session.json (read back with boto3, a client we did not write).
    let download = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = wait_for(
        "the recording to be finished in the bucket and the spool to be empty",
        Duration::from_secs(60),
        || {
            if !files_under(&node.spool()).is_empty() {
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

    let want = media::count_frames(&src);
    assert!(want.video > 0 && want.audio > 0, "{want:?}");
    let manifest = dir.join("manifest.mpd");
    assert_eq!(
        media::decode_errors(&manifest),
        "",
        "the DASH recording decodes"
    );
    assert_eq!(
        media::count_frames(&manifest),
        want,
        "DASH holds every frame"
    );
    let flv = flv_of(&dir);
    assert_eq!(media::decode_errors(&flv), "", "the FLV recording decodes");
    assert_eq!(media::count_frames(&flv), want, "FLV holds every frame");
    assert_eq!(
        session_outcome(&dir).as_deref(),
        Some("completed"),
        "{:?}",
        session_json(&dir)
    );

    // The start-up probe cleaned up after itself; nothing is stored outside the root.
    let all = s3.list("");
    assert!(
        all.iter()
            .all(|(key, _)| key.starts_with("rec/cam1/") && !key.contains(".recnode")),
        "{all:?}"
    );
    assert!(files_under(&node.spool()).is_empty());
}

#[test]
fn readyz_reports_unreachable_storage_until_it_comes_back() {
    let mut s3 = S3Server::start();
    s3.stop();
    let env = s3.node_env(ROOT);
    // The node starts although storage does not answer.
    let node = Node::start_logged(&pairs(&env));
    assert_eq!(http_get(node.http, "/healthz").map(|r| r.status), Some(200));
    let unready = http_get(node.http, "/readyz").expect("GET /readyz");
    assert_eq!(unready.status, 503, "{unready:?}");
    let body = unready.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["storage"]["reachable"], false);
    assert!(
        body["storage"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(".recnode/probe-")),
        "{body}"
    );
    assert!(body["storage"]["since"].as_u64().is_some(), "{body}");
    assert!(
        node.log().contains("storage is not reachable"),
        "{}",
        node.log()
    );

    s3.resume();
    let ready = wait_for(
        "/readyz to answer 200 once storage is back",
        Duration::from_secs(30),
        || http_get(node.http, "/readyz").filter(|r| r.status == 200),
    );
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["storage"]["reachable"], true);
    assert!(body["storage"].get("error").is_none(), "{body}");
    assert!(
        s3.list("").iter().all(|(key, _)| !key.contains(".recnode")),
        "the probe object is deleted"
    );
}

#[test]
fn a_presigned_mode_node_is_ready_when_its_presign_service_answers() {
    let s3 = S3Server::start();
    let signer = Node::start_with(&pairs(&s3.node_env(ROOT)));
    let presign_url = format!("http://{}/api/storage/presign", signer.http);
    let presigned = Node::start_with(&[
        ("RECNODE_RECORDER__UPLOAD__ENABLED", "true"),
        ("RECNODE_RECORDER__UPLOAD__PRESIGN_URL", &presign_url),
    ]);
    let ready = http_get(presigned.http, "/readyz").expect("GET /readyz");
    assert_eq!(ready.status, 200, "{ready:?}");

    // A presign service that does not answer: the node starts, unready.
    let nobody = format!("http://{}/api/storage/presign", free_local_addr());
    let orphan = Node::start_with(&[
        ("RECNODE_RECORDER__UPLOAD__ENABLED", "true"),
        ("RECNODE_RECORDER__UPLOAD__PRESIGN_URL", &nobody),
    ]);
    let unready = http_get(orphan.http, "/readyz").expect("GET /readyz");
    assert_eq!(unready.status, 503, "{unready:?}");
    assert!(
        unready.json()["storage"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("presign service")),
        "{unready:?}"
    );
}
