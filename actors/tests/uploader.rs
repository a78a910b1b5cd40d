//! The uploader against a filesystem operator on a temp dir (and, for the presigned mode,
//! a tiny HTTP server on loopback): bytes, deletion only after storage, refused keys,
//! the ordering rule for manifests and session.json, retries through failing storage,
//! and a queue that survives the uploader's death through the state store.
//! Waits are on `Drain`/`Stats` replies with deadlines, never on bare sleeps.

use ractor::{call_t, ActorRef};
use recnode_actors::uploader::{
    fs_operator, start_uploader, PresignSettings, PresignedRequest, StorageHealth, UploadJob,
    UploadSettings, UploadTarget, UploaderArgs, UploaderMsg, UploaderStats,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

struct Setup {
    tmp: tempfile::TempDir,
    spool: PathBuf,
    storage: PathBuf,
    state_db: PathBuf,
    health: StorageHealth,
    uploader: ActorRef<UploaderMsg>,
}

fn settings(target: UploadTarget, concurrency: usize) -> UploadSettings {
    UploadSettings {
        concurrency,
        max_backoff: Duration::from_millis(500),
        target,
    }
}

async fn setup_with(concurrency: usize) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let storage = tmp.path().join("storage");
    std::fs::create_dir_all(&spool).unwrap();
    let state_db = tmp.path().join("state.sqlite3");
    let health = StorageHealth::default();
    let uploader = start_uploader(UploaderArgs {
        hooks: recnode_actors::hooks::HookEmitter::disabled(),
        settings: settings(
            UploadTarget::Operator(fs_operator(&storage).unwrap()),
            concurrency,
        ),
        spool_dir: spool.clone(),
        state_db: state_db.clone(),
        health: health.clone(),
    })
    .await
    .unwrap();
    Setup {
        tmp,
        spool,
        storage,
        state_db,
        health,
        uploader,
    }
}

async fn setup() -> Setup {
    setup_with(4).await
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

/// A manifest snapshot the way a recorder writes it: its own local file, key `.../manifest.mpd`.
fn snapshot(spool: &Path, dir: &str, n: u32, data: &[u8]) -> UploadJob {
    let local = spool.join(dir).join(format!("manifest.mpd.{n}.tmp"));
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, data).unwrap();
    UploadJob {
        local,
        key: format!("{dir}/manifest.mpd"),
        delete_after: true,
    }
}

fn enqueue(uploader: &ActorRef<UploaderMsg>, job: &UploadJob) {
    uploader.cast(UploaderMsg::Enqueue(job.clone())).unwrap();
}

async fn stats(uploader: &ActorRef<UploaderMsg>) -> UploaderStats {
    call_t!(uploader, UploaderMsg::Stats, 5_000).unwrap()
}

async fn drain(uploader: &ActorRef<UploaderMsg>, timeout_ms: u64) {
    call_t!(uploader, UploaderMsg::Drain, timeout_ms).expect("drained in time");
}

/// Polls until `done` returns true, failing after `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_job_lands_in_storage_with_identical_bytes_and_its_file_is_deleted() {
    let s = setup().await;
    let mut jobs = Vec::new();
    for i in 1..=12u8 {
        let data: Vec<u8> = (0..50_000u32).map(|b| (b as u8) ^ i).collect();
        let key = format!("live/1700000000/v_seg_{i:04}.m4s");
        jobs.push((spool_file(&s.spool, &key, &data, true), data));
    }
    let manifest = spool_file(&s.spool, "live/1700000000/manifest.mpd", b"<MPD/>", false);
    for (job, _) in &jobs {
        enqueue(&s.uploader, job);
    }
    enqueue(&s.uploader, &manifest);
    drain(&s.uploader, 10_000).await;

    for (job, data) in &jobs {
        let stored = s.storage.join(&job.key);
        assert_eq!(&std::fs::read(&stored).unwrap(), data, "{}", job.key);
        assert!(!job.local.exists(), "{} deleted after storage", job.key);
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
    assert_eq!(
        (st.stored, st.queued, st.in_flight, st.retries),
        (13, 0, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.bytes_stored, 12 * 50_000 + 6);
    assert_eq!(st.oldest_pending_age, None);
    assert!(s.health.status().reachable);
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
    enqueue(&s.uploader, &gone);
    enqueue(&s.uploader, &next);
    drain(&s.uploader, 5_000).await;
    let st = stats(&s.uploader).await;
    assert_eq!((st.skipped, st.stored, st.queued), (1, 1, 0), "{st:?}");
    assert_eq!(std::fs::read(s.storage.join(&next.key)).unwrap(), b"y");
}

#[tokio::test]
async fn a_manifest_waits_for_a_failing_segment_of_its_record_dir_while_everything_else_moves() {
    let s = setup().await;
    let dir = "live/1700000000";
    // A directory where segment 2 must go: storing that one object fails until it is removed.
    let blocker = s.storage.join(dir).join("v_seg_0002.m4s");
    std::fs::create_dir_all(&blocker).unwrap();
    let seg = |n: u32| {
        spool_file(
            &s.spool,
            &format!("{dir}/v_seg_{n:04}.m4s"),
            format!("segment {n}").as_bytes(),
            true,
        )
    };
    let (s1, s2) = (seg(1), seg(2));
    let m1 = snapshot(&s.spool, dir, 1, b"manifest listing 1-2");
    let (s3, s4) = (seg(3), seg(4));
    let m2 = snapshot(&s.spool, dir, 2, b"manifest listing 1-4");
    let other = spool_file(&s.spool, "other/1700000001/manifest.mpd", b"other", true);
    for job in [&s1, &s2, &m1, &s3, &s4, &m2, &other] {
        enqueue(&s.uploader, job);
    }

    let key = |j: &UploadJob| s.storage.join(&j.key);
    let st = wait_for_stats(&s.uploader, Duration::from_secs(20), |st| {
        st.retries >= 3 && st.stored >= 4
    })
    .await;
    // Segments 1, 3, 4 and the other record dir's manifest are stored; both manifests of
    // this record dir wait behind segment 2.
    for j in [&s1, &s3, &s4, &other] {
        assert!(key(j).is_file(), "{} stored: {st:?}", j.key);
    }
    assert!(!key(&m1).exists(), "the manifest never overtakes segment 2");
    assert!(s2.local.exists() && m1.local.exists() && m2.local.exists());
    assert_eq!((st.stored, st.queued), (4, 3), "{st:?}");
    let status = s.health.status();
    assert!(!status.reachable && status.error.is_some(), "{status:?}");
    assert!(st.oldest_pending_age.is_some());

    std::fs::remove_dir(&blocker).unwrap();
    drain(&s.uploader, 30_000).await;
    assert_eq!(std::fs::read(key(&s2)).unwrap(), b"segment 2");
    assert_eq!(
        std::fs::read(key(&m2)).unwrap(),
        b"manifest listing 1-4",
        "the later manifest is stored last"
    );
    assert_eq!(files_under(&s.spool), Vec::<PathBuf>::new(), "spool empty");
    assert!(s.health.status().reachable);
    let st = stats(&s.uploader).await;
    assert_eq!((st.stored, st.queued, st.in_flight), (7, 0, 0), "{st:?}");
}

#[tokio::test]
async fn a_waiting_file_enqueued_again_is_stored_once_with_its_last_settings() {
    let s = setup_with(1).await;
    // Hold the only worker on a failing job so the rest waits in the queue.
    let blocker = s.storage.join("hold/1/v_seg_0001.m4s");
    std::fs::create_dir_all(&blocker).unwrap();
    let hold = spool_file(&s.spool, "hold/1/v_seg_0001.m4s", b"hold", true);
    enqueue(&s.uploader, &hold);
    wait_for_stats(&s.uploader, Duration::from_secs(10), |st| st.retries >= 1).await;

    let init = spool_file(&s.spool, "live/1/v_init.m4s", b"init", false);
    enqueue(&s.uploader, &init);
    let final_init = UploadJob {
        delete_after: true,
        ..init.clone()
    };
    // Both arrive before the first is committed, so the second finds the first waiting.
    enqueue(&s.uploader, &final_init);

    std::fs::remove_dir(&blocker).unwrap();
    drain(&s.uploader, 30_000).await;
    let st = stats(&s.uploader).await;
    assert_eq!(st.stored, 2, "the init segment is stored once: {st:?}");
    assert_eq!(std::fs::read(s.storage.join(&init.key)).unwrap(), b"init");
    assert!(!init.local.exists(), "the last enqueue's delete_after wins");
}

#[tokio::test]
async fn the_queue_survives_the_uploaders_death_and_is_stored_by_the_next_one() {
    let s = setup().await;
    // Storage fails for everything under `live/`.
    let blocker = s.storage.join("live");
    std::fs::create_dir_all(&s.storage).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    let mut jobs = Vec::new();
    for n in 1..=5u32 {
        jobs.push(spool_file(
            &s.spool,
            &format!("live/1/v_seg_{n:04}.m4s"),
            format!("segment {n}").as_bytes(),
            true,
        ));
    }
    jobs.push(snapshot(&s.spool, "live/1", 7, b"final manifest"));
    jobs.push(spool_file(&s.spool, "live/1/session.json", b"{}", true));
    for job in &jobs {
        enqueue(&s.uploader, job);
    }
    // Every job committed, none stored.
    wait_for_stats(&s.uploader, Duration::from_secs(10), |st| {
        st.queued == 7 && st.retries >= 1
    })
    .await;
    s.uploader.kill();
    wait_until("the uploader to die", Duration::from_secs(5), || {
        s.uploader.get_status() == ractor::ActorStatus::Stopped
    })
    .await;

    std::fs::remove_file(&blocker).unwrap();
    let uploader = start_uploader(UploaderArgs {
        hooks: recnode_actors::hooks::HookEmitter::disabled(),
        settings: settings(UploadTarget::Operator(fs_operator(&s.storage).unwrap()), 4),
        spool_dir: s.spool.clone(),
        state_db: s.state_db.clone(),
        health: s.health.clone(),
    })
    .await
    .unwrap();
    drain(&uploader, 30_000).await;
    let st = stats(&uploader).await;
    assert_eq!((st.stored, st.queued), (7, 0), "{st:?}");
    for job in &jobs[..5] {
        assert!(s.storage.join(&job.key).is_file(), "{}", job.key);
    }
    assert_eq!(
        std::fs::read(s.storage.join("live/1/manifest.mpd")).unwrap(),
        b"final manifest"
    );
    assert_eq!(files_under(&s.spool), Vec::<PathBuf>::new(), "spool empty");
    drop(s.tmp);
}

// ---- presigned mode against a tiny HTTP server --------------------------------------

/// What the test server saw, in order: `start KEY` when a PUT arrived, `done KEY` just
/// before its 200 went out.
#[derive(Default)]
struct ServerLog {
    events: Vec<String>,
    objects: HashMap<String, Vec<u8>>,
    presign_auth: Vec<Option<String>>,
    /// Keys whose next PUTs answer 503, and how many times.
    fail: HashMap<String, u32>,
}

/// A minimal HTTP/1.1 server: `POST /presign` answers a [`PresignedRequest`] for
/// `PUT /obj/{key}`; `PUT /obj/{key}` stores the body (after a short pause, so parallel
/// PUTs overlap).
async fn serve(listener: tokio::net::TcpListener, log: Arc<Mutex<ServerLog>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let log = log.clone();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut stream = BufReader::new(stream);
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    stream.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                stream.read_exact(&mut body).await.unwrap();
                let (status, answer) = if method == "POST" && path == "/presign" {
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let key = req["key"].as_str().unwrap().to_string();
                    log.lock()
                        .unwrap()
                        .presign_auth
                        .push(headers.get("authorization").cloned());
                    let signed = PresignedRequest {
                        method: "PUT".into(),
                        url: format!("http://{addr}/obj/{key}"),
                        headers: [("x-signed".to_string(), "yes".to_string())].into(),
                        expires_at: 4_000_000_000,
                    };
                    (200, serde_json::to_vec(&signed).unwrap())
                } else if method == "PUT" && path.starts_with("/obj/") {
                    let key = path["/obj/".len()..].to_string();
                    assert_eq!(headers.get("x-signed").map(String::as_str), Some("yes"));
                    log.lock().unwrap().events.push(format!("start {key}"));
                    tokio::time::sleep(Duration::from_millis(fastrand_ms(&key))).await;
                    let mut l = log.lock().unwrap();
                    let fail = l.fail.get_mut(&key).filter(|n| **n > 0);
                    if let Some(n) = fail {
                        *n -= 1;
                        (503, b"slow down".to_vec())
                    } else {
                        l.events.push(format!("done {key}"));
                        l.objects.insert(key, body);
                        (200, Vec::new())
                    }
                } else {
                    (404, Vec::new())
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n",
                    answer.len()
                );
                let inner = stream.get_mut();
                if inner.write_all(head.as_bytes()).await.is_err()
                    || inner.write_all(&answer).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

/// A pause of 0–15 ms that differs per key, so that parallel PUTs finish out of order.
fn fastrand_ms(key: &str) -> u64 {
    key.bytes().map(u64::from).sum::<u64>() % 16
}

#[tokio::test]
async fn presigned_uploads_keep_manifests_behind_every_earlier_segment_of_their_record_dir() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(ServerLog::default()));
    // Two early segments fail a few times (503): their manifests must wait for them.
    log.lock()
        .unwrap()
        .fail
        .insert("cam0/1/v_seg_0002.m4s".into(), 3);
    log.lock()
        .unwrap()
        .fail
        .insert("cam2/1/a_seg_0001.m4s".into(), 2);
    tokio::spawn(serve(listener, log.clone()));

    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let health = StorageHealth::default();
    let uploader = start_uploader(UploaderArgs {
        hooks: recnode_actors::hooks::HookEmitter::disabled(),
        settings: UploadSettings {
            concurrency: 6,
            max_backoff: Duration::from_millis(200),
            target: UploadTarget::Presigned(PresignSettings {
                url: format!("http://{addr}/presign"),
                token: Some("t0ken".into()),
                ttl: Duration::from_secs(60),
            }),
        },
        spool_dir: spool.clone(),
        state_db: tmp.path().join("state.sqlite3"),
        health: health.clone(),
    })
    .await
    .unwrap();

    // Three record dirs, interleaved like concurrent recordings: per round, a video and
    // an audio segment, then a manifest snapshot; session.json at the end.
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    let mut snap = 0;
    for round in 1..=5u32 {
        for cam in 0..3 {
            let dir = format!("cam{cam}/1");
            for track in ["v", "a"] {
                let key = format!("{dir}/{track}_seg_{round:04}.m4s");
                let data = format!("{key} bytes").repeat(200).into_bytes();
                enqueue(&uploader, &spool_file(&spool, &key, &data, true));
                expected.push((key, data));
            }
            snap += 1;
            let text = format!("manifest of {dir} after round {round}");
            enqueue(&uploader, &snapshot(&spool, &dir, snap, text.as_bytes()));
        }
    }
    for cam in 0..3 {
        let key = format!("cam{cam}/1/session.json");
        enqueue(
            &uploader,
            &spool_file(&spool, &key, b"{\"outcome\":\"stopped\"}", true),
        );
    }
    drain(&uploader, 60_000).await;

    {
        let log = log.lock().unwrap();
        for (key, data) in &expected {
            assert_eq!(log.objects.get(key), Some(data), "{key}");
        }
        for cam in 0..3 {
            assert_eq!(
                log.objects[&format!("cam{cam}/1/manifest.mpd")],
                format!("manifest of cam{cam}/1 after round 5").into_bytes()
            );
        }
        assert!(log
            .presign_auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer t0ken")));
        // The rule, checked on the server's own order of events: a barrier's PUT starts only
        // after every PUT of its record dir enqueued before it has been answered.
        for (i, event) in log.events.iter().enumerate() {
            let Some(key) = event.strip_prefix("start ") else {
                continue;
            };
            let (dir, name) = key.rsplit_once('/').unwrap();
            if name != "manifest.mpd" && name != "session.json" {
                continue;
            }
            let done_before: Vec<&str> = log.events[..i]
                .iter()
                .filter_map(|e| e.strip_prefix("done "))
                .collect();
            let round = done_before
                .iter()
                .filter(|k| k.starts_with(&format!("{dir}/")) && k.ends_with("manifest.mpd"))
                .count() as u32
                + 1;
            let round = if name == "session.json" { 5 } else { round };
            for track in ["v", "a"] {
                for r in 1..=round {
                    let seg = format!("{dir}/{track}_seg_{r:04}.m4s");
                    assert!(
                        done_before.contains(&seg.as_str()),
                        "{key} (round {round}) started before {seg} was stored"
                    );
                }
            }
        }
        assert!(
            log.events
                .iter()
                .filter(|e| e.starts_with("start "))
                .count()
                > expected.len(),
            "the failing segments were retried"
        );
    }
    assert!(health.status().reachable);
    assert_eq!(files_under(&spool), Vec::<PathBuf>::new(), "spool empty");
    let st = stats(&uploader).await;
    assert!(st.retries >= 5, "{st:?}");
}

#[tokio::test]
async fn a_file_larger_than_the_stream_threshold_is_stored_whole_piece_by_piece() {
    let s = setup().await;
    // 40 MiB: above the 32 MiB threshold, five 8 MiB pieces.
    let data: Vec<u8> = (0..40u32 * 1024 * 1024)
        .map(|i| (i ^ (i >> 11)) as u8)
        .collect();
    let flv = spool_file(
        &s.spool,
        "live/1/live_cam1_20240101_000000.flv",
        &data,
        true,
    );
    enqueue(&s.uploader, &flv);
    drain(&s.uploader, 60_000).await;
    let stored = std::fs::read(s.storage.join(&flv.key)).unwrap();
    assert!(stored == data, "stored bytes equal the spool file's");
    assert!(!flv.local.exists());
    let st = stats(&s.uploader).await;
    assert_eq!(
        (st.stored, st.bytes_stored),
        (1, data.len() as u64),
        "{st:?}"
    );
}
