//! Upload benchmark driver (used by `scripts/bench-upload.sh`): runs the real
//! [`Uploader`] actor (durable queue, worker pool, S3 through opendal) on a current-thread
//! runtime, as the node does, against an S3 endpoint on loopback.
//!
//! ```text
//! bench_upload throughput --endpoint URL --bucket B --dir DIR --prefix P [--concurrency 4]
//!     uploads every file under DIR as P/{relative path}; prints files, bytes, seconds, MB/s
//! bench_upload latency --endpoint URL --bucket B --work DIR [--concurrency 4]
//!     [--streams 50] [--seconds 60] [--segment-bytes 625000] [--interval 2]
//!     each stream writes one segment into the spool every interval and enqueues it;
//!     prints the enqueue → stored latency (p50, p99, max)
//! ```
//! Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.

use ractor::{call_t, ActorRef};
use recnode_actors::uploader::{
    init_http_transport, start_uploader, StorageHealth, UploadJob, UploadSettings, UploadTarget,
    UploaderArgs, UploaderMsg,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn arg(args: &HashMap<String, String>, name: &str, default: Option<&str>) -> String {
    args.get(name)
        .cloned()
        .or(default.map(str::to_string))
        .unwrap_or_else(|| panic!("--{name} is required"))
}

fn operator(endpoint: &str, bucket: &str) -> opendal::Operator {
    init_http_transport();
    let key = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
    let builder = opendal::services::S3::default()
        .bucket(bucket)
        .endpoint(endpoint)
        .region("us-east-1")
        .access_key_id(&key)
        .secret_access_key(&secret)
        .disable_config_load();
    opendal::Operator::new(builder).expect("S3 operator")
}

async fn uploader(
    endpoint: &str,
    bucket: &str,
    concurrency: usize,
    spool: &Path,
    state_db: &Path,
) -> ActorRef<UploaderMsg> {
    start_uploader(UploaderArgs {
        hooks: recnode_actors::hooks::HookEmitter::disabled(),
        settings: UploadSettings {
            concurrency,
            max_backoff: Duration::from_secs(2),
            target: UploadTarget::Operator(operator(endpoint, bucket)),
        },
        spool_dir: spool.to_path_buf(),
        state_db: state_db.to_path_buf(),
        health: StorageHealth::default(),
    })
    .await
    .expect("start the uploader")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

async fn throughput(args: &HashMap<String, String>) {
    let dir = PathBuf::from(arg(args, "dir", None));
    let prefix = arg(args, "prefix", None);
    let concurrency: usize = arg(args, "concurrency", Some("4")).parse().expect("number");
    let state = tempfile::tempdir().expect("temp dir");
    let up = uploader(
        &arg(args, "endpoint", None),
        &arg(args, "bucket", None),
        concurrency,
        &dir,
        &state.path().join("state.sqlite3"),
    )
    .await;
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let start = Instant::now();
    for f in &files {
        let rel = f.strip_prefix(&dir).expect("below dir").to_string_lossy();
        up.cast(UploaderMsg::Enqueue(UploadJob {
            local: f.clone(),
            key: format!("{prefix}/{rel}"),
            delete_after: false,
        }))
        .expect("enqueue");
    }
    call_t!(up, UploaderMsg::Drain, 600_000).expect("drained");
    let secs = start.elapsed().as_secs_f64();
    let stats = call_t!(up, UploaderMsg::Stats, 5_000).expect("stats");
    assert_eq!(stats.stored as usize, files.len(), "{stats:?}");
    println!(
        "files={} bytes={total} seconds={secs:.3} mb_per_s={:.2} retries={}",
        files.len(),
        total as f64 / secs / 1e6,
        stats.retries
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn latency(args: &HashMap<String, String>) {
    let work = PathBuf::from(arg(args, "work", None));
    let concurrency: usize = arg(args, "concurrency", Some("4")).parse().expect("number");
    let streams: usize = arg(args, "streams", Some("50")).parse().expect("number");
    let seconds: f64 = arg(args, "seconds", Some("60")).parse().expect("number");
    let size: usize = arg(args, "segment-bytes", Some("625000"))
        .parse()
        .expect("number");
    let interval = Duration::from_secs_f64(arg(args, "interval", Some("2")).parse().expect("s"));
    let spool = work.join("spool");
    std::fs::create_dir_all(&spool).expect("spool");
    let up = uploader(
        &arg(args, "endpoint", None),
        &arg(args, "bucket", None),
        concurrency,
        &spool,
        &work.join("state.sqlite3"),
    )
    .await;

    // Enqueue time of every file still in the spool; a watcher thread notes when each
    // disappears (the uploader deletes it only after S3 confirmed the PUT).
    let pending: Arc<Mutex<HashMap<PathBuf, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (pending, latencies, running) = (pending.clone(), latencies.clone(), running.clone());
        std::thread::spawn(move || loop {
            let snapshot: Vec<(PathBuf, Instant)> = pending
                .lock()
                .unwrap()
                .iter()
                .map(|(p, t)| (p.clone(), *t))
                .collect();
            for (path, at) in snapshot {
                if !path.exists() {
                    let lat = at.elapsed();
                    pending.lock().unwrap().remove(&path);
                    latencies.lock().unwrap().push(lat);
                }
            }
            let idle = pending.lock().unwrap().is_empty();
            if idle && !running.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        })
    };

    let data = Arc::new((0..size).map(|_| fastrand_byte()).collect::<Vec<u8>>());
    let start = Instant::now();
    let rounds = (seconds / interval.as_secs_f64()).ceil() as u32;
    let mut tasks = Vec::new();
    for s in 0..streams {
        let (up, pending, data, spool) = (up.clone(), pending.clone(), data.clone(), spool.clone());
        // Streams start spread over one interval, like independent publishers.
        let offset = interval.mul_f64(s as f64 / streams as f64);
        tasks.push(tokio::spawn(async move {
            for n in 1..=rounds {
                let due = start + offset + interval * (n - 1);
                tokio::time::sleep_until(due.into()).await;
                let key = format!("bench-latency/s{s:03}/1700000000/v_seg_{n:04}.m4s");
                let local = spool.join(&key);
                let d = data.clone();
                let l = local.clone();
                // Written and fsynced like a recorder's finished segment.
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(l.parent().unwrap())?;
                    let mut f = std::fs::File::create(&l)?;
                    f.write_all(&d)?;
                    f.sync_data()
                })
                .await
                .expect("join")
                .expect("write segment");
                pending
                    .lock()
                    .unwrap()
                    .insert(local.clone(), Instant::now());
                up.cast(UploaderMsg::Enqueue(UploadJob {
                    local,
                    key,
                    delete_after: true,
                }))
                .expect("enqueue");
            }
        }));
    }
    for t in tasks {
        t.await.expect("stream task");
    }
    call_t!(up, UploaderMsg::Drain, 600_000).expect("drained");
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    watcher.join().expect("watcher");
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let stats = call_t!(up, UploaderMsg::Stats, 5_000).expect("stats");
    println!(
        "segments={} streams={streams} seconds={elapsed:.1} mb_per_s={:.2} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} retries={}",
        lat.len(),
        stats.bytes_stored as f64 / elapsed / 1e6,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        stats.retries
    );
}

/// A pseudo-random byte (incompressible test data; no extra dependency).
fn fastrand_byte() -> u8 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9E37_79B9_7F4A_7C15) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 24) as u8
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().expect("mode: throughput | latency");
    let mut args = HashMap::new();
    while let Some(name) = argv.next() {
        let name = name.trim_start_matches("--").to_string();
        let value = argv
            .next()
            .unwrap_or_else(|| panic!("--{name} needs a value"));
        args.insert(name, value);
    }
    match mode.as_str() {
        "throughput" => throughput(&args).await,
        "latency" => latency(&args).await,
        other => panic!("unknown mode {other}"),
    }
}
