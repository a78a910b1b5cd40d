//! Hook delivery benchmark: events per second from `emit` to receipt at one local
//! endpoint through the durable outbox, latency percentiles, and the outbox's size after
//! a million events with compaction.
//!
//! ```text
//! cargo run --release -p recnode-actors --example hooks_bench -- [EVENTS] [RATE] [FORMAT] [WINDOW]
//! ```
//! - `EVENTS` (default 200000): events for the throughput run;
//! - `RATE` (default 10000): events/s for the paced latency run;
//! - `FORMAT` (default protobuf): the endpoint's body format, `protobuf` or `json`;
//! - `WINDOW` (default 32, the default `[hooks] pipeline_window`): requests in flight to
//!   the endpoint; 1 sends one at a time;
//! - `HOOKS_BENCH_SKIP_1M=1` skips the million-event run;
//! - `HOOKS_BENCH_FLUSH_EACH=1` makes the receiver write each answer at once (one write
//!   per answer, like Go's net/http or hyper by default) instead of writing the answers
//!   to pipelined requests together.
//!
//! Runs, each on a fresh state store in a temporary directory:
//! 1. **commit**: emits with no endpoint, awaiting each batch's commit (group commit);
//! 2. **throughput**: emits as fast as commits allow; the receiver (a real HTTP server on
//!    loopback verifying every signature) stamps each arrival; reports delivered events/s
//!    and latency percentiles (queueing included);
//! 3. **paced**: emits at `RATE` events/s; latency percentiles at that load;
//! 4. **1M + compaction**: a million events through the endpoint at `RATE` events/s
//!    (0: as fast as commits go), then the outbox's rows and file sizes once compaction
//!    has caught up, and the largest they were while running.

#[path = "../tests/hooks_receiver/mod.rs"]
mod hooks_receiver;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recnode_actors::hooks::events::RecordRef;
use recnode_actors::hooks::{
    start_hooks, EndpointSpec, HookFormat, HookSettings, Hooks, DEFAULT_PIPELINE_WINDOW,
};
use recnode_media::TrackKind;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Emits in flight before waiting for a commit (bounds memory, keeps batches large).
const WINDOW: usize = 4096;

fn record() -> RecordRef {
    RecordRef {
        stream: "cam1".into(),
        app: "live".into(),
        record_id: "1700000000".into(),
        record_dir: "cam1/1700000000".into(),
        format: "dash".into(),
    }
}

/// Arrival times by seq, in nanoseconds since `base` (0: not yet).
struct Arrivals {
    base: Instant,
    at: Vec<AtomicU64>,
    count: AtomicU64,
}

/// The benchmark's knobs.
#[derive(Debug, Clone, Copy)]
struct Knobs {
    format: HookFormat,
    window: usize,
    flush_each: bool,
}

async fn start(dir: &std::path::Path, url: Option<String>, knobs: Knobs) -> Hooks {
    let endpoints = url
        .map(|url| {
            vec![EndpointSpec {
                id: Some("bench".into()),
                url: Some(url),
                secret: Some(SECRET.into()),
                format: knobs.format,
                events: None,
            }]
        })
        .unwrap_or_default();
    let settings = HookSettings {
        node: 1,
        node_alias: "bench".into(),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        pipeline_window: knobs.window,
        endpoints,
        ..HookSettings::default()
    };
    start_hooks(settings, &dir.join("state.sqlite3"))
        .await
        .expect("hooks start")
}

/// Emits `n` events, `rate` per second (0: as fast as commits go); returns each seq's
/// emit time in ns since `base`, indexed by seq.
async fn emit_all(hooks: &Hooks, n: usize, rate: u64, base: Instant) -> Vec<u64> {
    let rec = record();
    let mut emitted = vec![0u64; n + 2];
    let mut window = Vec::with_capacity(WINDOW);
    let start = Instant::now();
    for i in 0..n {
        let t = base.elapsed().as_nanos() as u64;
        let fut = hooks.emitter.emit(rec.segment(
            "cam1/1700000000/v_seg_0001.m4s",
            TrackKind::Video,
            i as u32,
            0,
            2000,
            1000,
        ));
        window.push((t, fut));
        // Paced runs go in ticks of 100 events, awaiting a tick's commits at its end (so
        // the emitter is never one commit per event behind); unpaced ones in windows.
        let tick_done = rate > 0 && (i + 1) % 100 == 0;
        if tick_done || window.len() >= WINDOW {
            for (t, fut) in window.drain(..) {
                let seq = fut.await.expect("committed").seq as usize;
                emitted[seq] = t;
            }
        }
        if tick_done {
            let due = start + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
    }
    for (t, fut) in window.drain(..) {
        let seq = fut.await.expect("committed").seq as usize;
        emitted[seq] = t;
    }
    emitted
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat` (Linux;
/// 0 elsewhere): the machine may be shared, so CPU per event is reported next to the rate.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 14th field
    // of the line, stime the 15th, in clock ticks (100 per second on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

async fn wait_arrivals(arrivals: &Arrivals, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while arrivals.count.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One delivery run; prints throughput and latency.
async fn delivery_run(label: &str, n: usize, rate: u64, knobs: Knobs) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = hooks_receiver::Receiver::start(SECRET);
    receiver.keep_events(false);
    receiver.flush_each_answer(knobs.flush_each);
    let arrivals = Arc::new(Arrivals {
        base: Instant::now(),
        at: (0..n + 2).map(|_| AtomicU64::new(0)).collect(),
        count: AtomicU64::new(0),
    });
    let sink = arrivals.clone();
    receiver.on_event(move |seq, at| {
        if let Some(slot) = sink.at.get(seq as usize) {
            slot.store(
                at.duration_since(sink.base).as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        sink.count.fetch_add(1, Ordering::Relaxed);
    });
    let hooks = start(dir.path(), Some(receiver.url("/bench")), knobs).await;
    let t0 = Instant::now();
    let cpu0 = cpu_seconds();
    let emitted = emit_all(&hooks, n, rate, arrivals.base).await;
    let emit_secs = t0.elapsed().as_secs_f64();
    wait_arrivals(&arrivals, n as u64, Duration::from_secs(600)).await;
    let total_secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut latencies: Vec<u64> = (1..=n)
        .map(|seq| {
            arrivals.at[seq]
                .load(Ordering::Relaxed)
                .saturating_sub(emitted[seq])
        })
        .collect();
    latencies.sort_unstable();
    println!(
        "{label}: {n} events ({:?}, window {}{}), emitted at {:.0}/s, delivered at {:.0}/s; \
         emit→receipt latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         CPU {cpu:.1} s ({:.1} µs/event, receiver included)",
        knobs.format,
        knobs.window,
        if knobs.flush_each {
            ", receiver flushing each answer"
        } else {
            ""
        },
        n as f64 / emit_secs,
        n as f64 / total_secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        cpu * 1e6 / n as f64,
    );
    hooks.stop().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let format = match args.get(2).map(String::as_str) {
        Some("json") => HookFormat::Json,
        _ => HookFormat::Protobuf,
    };
    let window: usize = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_PIPELINE_WINDOW);
    let knobs = Knobs {
        format,
        window,
        flush_each: std::env::var_os("HOOKS_BENCH_FLUSH_EACH").is_some(),
    };

    // 1. Commits alone.
    {
        let dir = tempfile::tempdir().unwrap();
        let hooks = start(dir.path(), None, knobs).await;
        let t0 = Instant::now();
        emit_all(&hooks, n, 0, Instant::now()).await;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "commit: {n} events emitted and committed at {:.0}/s (no endpoint)",
            n as f64 / secs
        );
        hooks.stop().await;
    }

    // 2 and 3. Deliveries.
    delivery_run("throughput", n, 0, knobs).await;
    let paced = (rate as usize * 10).min(n);
    delivery_run(&format!("paced {rate}/s"), paced, rate, knobs).await;

    // 4. A million events through an endpoint, then the outbox after compaction.
    if std::env::var_os("HOOKS_BENCH_SKIP_1M").is_none() {
        let million = 1_000_000;
        let dir = tempfile::tempdir().unwrap();
        let receiver = hooks_receiver::Receiver::start(SECRET);
        receiver.keep_events(false);
        receiver.flush_each_answer(knobs.flush_each);
        let count = Arc::new(AtomicU64::new(0));
        let sink = count.clone();
        receiver.on_event(move |_, _| {
            sink.fetch_add(1, Ordering::Relaxed);
        });
        let hooks = start(dir.path(), Some(receiver.url("/bench")), knobs).await;
        let t0 = Instant::now();
        let mut peak = recnode_actors::hooks::OutboxStats::default();
        let rec = record();
        let paced_start = Instant::now();
        for chunk in 0..(million / 100_000) {
            let mut window = Vec::with_capacity(WINDOW);
            for i in 0..100_000 {
                let n = chunk * 100_000 + i;
                if rate > 0 && n % 100 == 0 {
                    let due = paced_start + Duration::from_secs_f64(n as f64 / rate as f64);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                    }
                }
                window.push(hooks.emitter.emit(rec.segment(
                    "cam1/1700000000/v_seg_0001.m4s",
                    TrackKind::Video,
                    (chunk * 100_000 + i) as u32,
                    0,
                    2000,
                    1000,
                )));
                if window.len() >= WINDOW {
                    for fut in window.drain(..) {
                        fut.await.expect("committed");
                    }
                }
            }
            for fut in window.drain(..) {
                fut.await.expect("committed");
            }
            let stats = hooks.outbox.stats().await.unwrap();
            if stats.db_bytes + stats.wal_bytes > peak.db_bytes + peak.wal_bytes {
                peak = stats;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        while count.load(Ordering::Relaxed) < million as u64 {
            assert!(Instant::now() < deadline, "deliveries stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered_secs = t0.elapsed().as_secs_f64();
        assert!(hooks.wait_delivered(Duration::from_secs(60)).await);
        // Let compaction (every 0.5 s) catch up with the last acks.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let end = hooks.outbox.stats().await.unwrap();
        println!(
            "1M: {million} events delivered in {delivered_secs:.1} s ({:.0}/s); outbox after \
             compaction: {} events (seq {:?}..={}), db {:.1} MiB + wal {:.1} MiB; peak while \
             running: {} events, db {:.1} MiB + wal {:.1} MiB",
            million as f64 / delivered_secs,
            end.events,
            end.first_seq,
            end.last_seq,
            end.db_bytes as f64 / 1048576.0,
            end.wal_bytes as f64 / 1048576.0,
            peak.events,
            peak.db_bytes as f64 / 1048576.0,
            peak.wal_bytes as f64 / 1048576.0,
        );
        hooks.stop().await;
    }
}
