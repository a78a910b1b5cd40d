//! The uploader against a filesystem operator on a temp dir: order, bytes, deletion only
//! after storage, refused keys, and retries through a failing store. Waits are on
//! `Drain`/`Stats` replies with deadlines, never on bare sleeps.

use ractor::{call_t, ActorRef};
use recnode_actors::uploader::{
    fs_operator, start_uploader, UploadJob, UploaderArgs, UploaderMsg, UploaderStats,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Setup {
    _tmp: tempfile::TempDir,
    spool: PathBuf,
    storage: PathBuf,
    uploader: ActorRef<UploaderMsg>,
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let storage = tmp.path().join("storage");
    std::fs::create_dir_all(&spool).unwrap();
    let operator = fs_operator(&storage).unwrap();
    let uploader = start_uploader(UploaderArgs {
        operator,
        spool_dir: spool.clone(),
    })
    .await
    .unwrap();
    Setup {
        _tmp: tmp,
        spool,
        storage,
        uploader,
    }
}

/// Writes `data` at `spool/key` and returns the job for it.
fn spool_file(spool: &Path, key: &str, data: &[u8], delete_after: bool) -> UploadJob {
    let local = spool.join(key);
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, data).unwrap();
    UploadJob {
        local,
        key: key.to_string(),
        delete_after,
    }
}

async fn stats(uploader: &ActorRef<UploaderMsg>) -> UploaderStats {
    call_t!(uploader, UploaderMsg::Stats, 5_000).unwrap()
}

async fn drain(uploader: &ActorRef<UploaderMsg>, timeout_ms: u64) {
    call_t!(uploader, UploaderMsg::Drain, timeout_ms).expect("drained in time");
}

/// Polls the uploader's counters until `done` holds, failing after `timeout`.
async fn wait_for_stats(
    uploader: &ActorRef<UploaderMsg>,
    timeout: Duration,
    done: impl Fn(&UploaderStats) -> bool,
) -> UploaderStats {
    let deadline = Instant::now() + timeout;
    loop {
        let s = stats(uploader).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "condition not reached: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn jobs_land_in_storage_in_enqueue_order_with_identical_bytes() {
    let s = setup().await;
    let mut jobs = Vec::new();
    for i in 1..=6u8 {
        let data: Vec<u8> = (0..50_000u32).map(|b| (b as u8) ^ i).collect();
        let key = format!("live/1700000000/v_seg_{i:04}.m4s");
        jobs.push((spool_file(&s.spool, &key, &data, true), data));
    }
    let manifest = spool_file(&s.spool, "live/1700000000/manifest.mpd", b"<MPD/>", false);
    for (job, _) in &jobs {
        s.uploader.cast(UploaderMsg::Enqueue(job.clone())).unwrap();
    }
    s.uploader
        .cast(UploaderMsg::Enqueue(manifest.clone()))
        .unwrap();
    drain(&s.uploader, 10_000).await;

    let mut last_modified = None;
    for (job, data) in &jobs {
        let stored = s.storage.join(&job.key);
        assert_eq!(&std::fs::read(&stored).unwrap(), data, "{}", job.key);
        assert!(!job.local.exists(), "{} deleted after storage", job.key);
        let modified = std::fs::metadata(&stored).unwrap().modified().unwrap();
        assert!(last_modified <= Some(modified), "stored in enqueue order");
        last_modified = Some(modified);
    }
    assert_eq!(
        std::fs::read(s.storage.join(&manifest.key)).unwrap(),
        b"<MPD/>"
    );
    assert!(
        manifest.local.exists(),
        "delete_after = false keeps the file"
    );
    let st = stats(&s.uploader).await;
    assert_eq!((st.stored, st.queued, st.retries), (7, 0, 0), "{st:?}");
}

#[tokio::test]
async fn a_key_with_dot_dot_is_refused_and_its_file_kept() {
    let s = setup().await;
    let job = spool_file(&s.spool, "escape.m4s", b"secret", true);
    for key in [
        "../escape.m4s",
        "live/../../escape.m4s",
        "/abs.m4s",
        "a\\b.m4s",
    ] {
        let job = UploadJob {
            key: key.to_string(),
            ..job.clone()
        };
        s.uploader.cast(UploaderMsg::Enqueue(job)).unwrap();
    }
    drain(&s.uploader, 5_000).await;
    let st = stats(&s.uploader).await;
    assert_eq!((st.rejected, st.stored, st.queued), (4, 0, 0), "{st:?}");
    assert!(job.local.exists(), "a refused job never deletes its file");
    assert!(!s.storage.parent().unwrap().join("escape.m4s").exists());
    assert!(!Path::new("/abs.m4s").exists());
}

#[tokio::test]
async fn a_vanished_local_file_is_skipped_and_the_queue_goes_on() {
    let s = setup().await;
    let gone = spool_file(&s.spool, "live/1/v_seg_0001.m4s", b"x", true);
    std::fs::remove_file(&gone.local).unwrap();
    let next = spool_file(&s.spool, "live/1/v_seg_0002.m4s", b"y", true);
    s.uploader.cast(UploaderMsg::Enqueue(gone)).unwrap();
    s.uploader.cast(UploaderMsg::Enqueue(next.clone())).unwrap();
    drain(&s.uploader, 5_000).await;
    let st = stats(&s.uploader).await;
    assert_eq!((st.skipped, st.stored, st.queued), (1, 1, 0), "{st:?}");
    assert_eq!(std::fs::read(s.storage.join(&next.key)).unwrap(), b"y");
}

#[tokio::test]
async fn a_failing_store_is_retried_until_fixed_and_later_jobs_wait_behind_it() {
    let s = setup().await;
    // A regular file where the stream's directory must go: every write under it fails.
    let blocker = s.storage.join("live");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let segment = spool_file(&s.spool, "live/1/v_seg_0001.m4s", b"segment", true);
    let manifest = spool_file(&s.spool, "other/1/manifest.mpd", b"manifest", true);
    s.uploader
        .cast(UploaderMsg::Enqueue(segment.clone()))
        .unwrap();
    s.uploader
        .cast(UploaderMsg::Enqueue(manifest.clone()))
        .unwrap();

    let st = wait_for_stats(&s.uploader, Duration::from_secs(20), |st| st.retries >= 2).await;
    assert_eq!((st.stored, st.queued), (0, 2), "{st:?}");
    assert!(segment.local.exists(), "kept while storage fails");
    assert!(
        !s.storage.join(&manifest.key).exists(),
        "the job behind the failing one waits (FIFO)"
    );

    std::fs::remove_file(&blocker).unwrap();
    // The backoff after a few failures is at most a few seconds.
    drain(&s.uploader, 30_000).await;
    let st = stats(&s.uploader).await;
    assert_eq!((st.stored, st.queued), (2, 0), "{st:?}");
    assert!(st.retries >= 2);
    assert_eq!(
        std::fs::read(s.storage.join(&segment.key)).unwrap(),
        b"segment"
    );
    assert_eq!(
        std::fs::read(s.storage.join(&manifest.key)).unwrap(),
        b"manifest"
    );
    assert!(!segment.local.exists() && !manifest.local.exists());
    let left: Vec<_> = std::fs::read_dir(&s.spool).unwrap().collect();
    assert!(
        left.is_empty(),
        "emptied spool directories are removed: {left:?}"
    );
}
