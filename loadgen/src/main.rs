//! `recnode-loadgen`: publishes N concurrent RTMP streams replayed from an FLV file at
//! real-time pace, and checks that recnode recorded every frame of each.
//!
//! - `rtmp` runs the publishers on one thread (a current-thread tokio runtime), so the
//!   generator uses at most one core of the machine it shares with the node under test.
//!   Stream `i` starts `i * ramp / N` after the first, so keyframes are not all aligned.
//! - `whip` runs N WHIP publishers (webrtc-rs, [`recnode_loadgen::whip`]) replaying an H264
//!   Annex-B or IVF file and an Ogg Opus file at real-time pace, on one thread by default.
//! - `check` (or `rtmp --check`, `whip --check`) reads the storage root and compares sample counts in
//!   the fMP4 segments with what was sent; with send times it also reports storage lag.
#![deny(missing_docs)]

mod check;
mod pacing;
mod publisher;
mod source;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use check::{check_stream, percentile, Expectation, SendReport, StreamCheck};
use publisher::{publish, PublishTarget, StreamReport};
use source::{MediaKind, Source};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "recnode-loadgen",
    about = "RTMP load generator and recording checker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Publish N concurrent RTMP streams replaying an FLV file at real-time pace.
    Rtmp(RtmpArgs),
    /// Publish N concurrent WHIP (WebRTC) streams replaying pre-encoded files at real-time pace.
    Whip(WhipArgs),
    /// Verify the recordings of a previous `rtmp` run.
    Check(CheckArgs),
}

/// Arguments of `rtmp`.
#[derive(Debug, clap::Args)]
struct RtmpArgs {
    /// Server URL, `rtmp://127.0.0.1:PORT/APP` (loopback only).
    #[arg(long)]
    url: String,
    /// Number of concurrent publishers.
    #[arg(long)]
    streams: usize,
    /// The FLV file to replay (H264/AAC as ffmpeg writes it).
    #[arg(long)]
    file: String,
    /// Media seconds to send per stream, looping the file (default: the file once).
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Stream names are `{prefix}{i}`.
    #[arg(long, default_value = "bench-")]
    prefix: String,
    /// Spread the stream starts over this many ms.
    #[arg(long, default_value_t = 2000)]
    ramp_ms: u64,
    /// Write per-stream counts and send times as JSON here (input to `check --sent`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// After publishing, wait for and check the recordings under this storage root.
    #[arg(long)]
    check: Option<PathBuf>,
    /// How long `--check` waits for the recordings to be complete.
    #[arg(long, default_value_t = 60)]
    check_timeout_secs: u64,
    /// With `--check`: fail if a segment reached storage later than this after its last frame.
    #[arg(long)]
    max_lag_ms: Option<f64>,
}

/// Arguments of `whip`.
#[derive(Debug, clap::Args)]
struct WhipArgs {
    /// The node's HTTP base URL, `http://127.0.0.1:PORT`; streams go to `{url}/whip/{prefix}{i}`.
    #[arg(long)]
    url: String,
    /// Number of concurrent publishers.
    #[arg(long)]
    streams: usize,
    /// The video file: H264 Annex-B with AUDs (`.h264`) or IVF (VP8, VP9, AV1).
    #[arg(long)]
    video: PathBuf,
    /// Frame rate of an `.h264` file (IVF files carry their timestamps).
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// The audio file: Ogg Opus.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Media seconds to send per stream, looping the files (default: the files once).
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Stream names are `{prefix}{i}`.
    #[arg(long, default_value = "whip-")]
    prefix: String,
    /// Spread the stream starts over this many ms.
    #[arg(long, default_value_t = 2000)]
    ramp_ms: u64,
    /// Bearer token (stream key) for every publisher.
    #[arg(long)]
    token: Option<String>,
    /// Runtime worker threads (1: a current-thread runtime, at most one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// After publishing, wait for and check the recordings under this storage root.
    #[arg(long)]
    check: Option<PathBuf>,
    /// How long `--check` waits for the recordings to be complete.
    #[arg(long, default_value_t = 60)]
    check_timeout_secs: u64,
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The storage root (the node's `recordings/`).
    #[arg(long)]
    recordings: PathBuf,
    /// Per-stream counts and send times from `rtmp --report` (then --streams etc. are not needed).
    #[arg(long)]
    sent: Option<String>,
    /// Number of streams (without --sent).
    #[arg(long, required_unless_present = "sent")]
    streams: Option<usize>,
    /// Stream names are `{prefix}{i}` (without --sent).
    #[arg(long, default_value = "bench-")]
    prefix: String,
    /// Video frames every stream must hold (without --sent).
    #[arg(long, required_unless_present = "sent")]
    expect_video_frames: Option<u64>,
    /// Audio frames every stream must hold (without --sent).
    #[arg(long, required_unless_present = "sent")]
    expect_audio_frames: Option<u64>,
    /// Fail if a segment reached storage later than this after its last frame (needs --sent).
    #[arg(long)]
    max_lag_ms: Option<f64>,
}

/// Splits `rtmp://host[:port]/app` into a loopback socket address and the app name.
fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("rtmp://")
        .with_context(|| format!("{url}: not an rtmp:// URL"))?;
    let (authority, app) = rest
        .split_once('/')
        .with_context(|| format!("{url}: no application name"))?;
    if app.is_empty() {
        bail!("{url}: empty application name");
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:1935")
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("{url}: resolving {authority}"))?
        .next()
        .with_context(|| format!("{url}: {authority} resolves to nothing"))?;
    if !addr.ip().is_loopback() {
        bail!("{url}: {addr} is not a loopback address; this tool only loads local servers");
    }
    Ok((addr, app.to_string()))
}

/// Runs the publishers and prints what each sent.
fn run_rtmp(args: RtmpArgs) -> anyhow::Result<bool> {
    let (addr, app) = parse_url(&args.url)?;
    let source = Arc::new(Source::load(&args.file)?);
    let duration = args.duration_secs.map(Duration::from_secs_f64);
    eprintln!(
        "source {}: {} video + {} audio frames per pass, loop {} ms; {} streams to {}",
        args.file,
        source.count(MediaKind::Video),
        source.count(MediaKind::Audio),
        source.loop_len_ms,
        args.streams,
        args.url
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let began = Instant::now();
    let reports: Vec<StreamReport> = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(args.streams);
        for i in 0..args.streams {
            let target = PublishTarget {
                addr,
                app: app.clone(),
                tc_url: args.url.clone(),
                stream: format!("{}{i}", args.prefix),
            };
            let delay = Duration::from_millis(args.ramp_ms * i as u64 / args.streams.max(1) as u64);
            let source = Arc::clone(&source);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                publish(target, source, duration).await
            }));
        }
        let mut reports = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.into_iter().enumerate() {
            reports.push(task.await.unwrap_or_else(|e| StreamReport {
                name: format!("{}{i}", args.prefix),
                error: Some(format!("publisher task failed: {e}")),
                ..StreamReport::default()
            }));
        }
        reports
    });
    let wall = began.elapsed();

    let mut ok = true;
    for r in &reports {
        println!(
            "stream {} tags={} video={} audio={} bytes={} max_late_ms={:.1} mean_late_ms={:.2} late_over_100ms={}{}",
            r.name,
            r.tags,
            r.video_frames,
            r.audio_frames,
            r.bytes,
            r.max_lateness_ms,
            r.mean_lateness_ms,
            r.late_over_100ms,
            r.error.as_ref().map_or(String::new(), |e| format!(" ERROR {e}"))
        );
        ok &= r.error.is_none();
    }
    let mut maxes: Vec<f64> = reports.iter().map(|r| r.max_lateness_ms).collect();
    maxes.sort_by(f64::total_cmp);
    println!(
        "SEND streams={} failed={} tags={} video_frames={} audio_frames={} bytes={} wall_s={:.1} \
         lateness_max_ms={:.1} stream_max_lateness_p50_ms={:.1} late_over_100ms={}",
        reports.len(),
        reports.iter().filter(|r| r.error.is_some()).count(),
        reports.iter().map(|r| r.tags).sum::<u64>(),
        reports.iter().map(|r| r.video_frames).sum::<u64>(),
        reports.iter().map(|r| r.audio_frames).sum::<u64>(),
        reports.iter().map(|r| r.bytes).sum::<u64>(),
        wall.as_secs_f64(),
        maxes.last().copied().unwrap_or(0.0),
        percentile(&maxes, 50.0).unwrap_or(0.0),
        reports.iter().map(|r| r.late_over_100ms).sum::<u64>(),
    );
    let send_report = SendReport { streams: reports };
    if let Some(path) = &args.report {
        let text = serde_json::to_string(&send_report).context("serialising the send report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(root) = &args.check {
        let expectations: Vec<Expectation> = send_report
            .streams
            .into_iter()
            .map(Expectation::from)
            .collect();
        let deadline = Instant::now() + Duration::from_secs(args.check_timeout_secs);
        let checks = loop {
            let checks = check_all(root, &expectations);
            if checks.iter().all(|c| c.problems.is_empty()) || Instant::now() >= deadline {
                break checks;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        ok &= print_checks(&checks, args.max_lag_ms);
    }
    Ok(ok)
}

/// Runs the WHIP publishers and prints what each sent.
fn run_whip(args: WhipArgs) -> anyhow::Result<bool> {
    use recnode_loadgen::whip;
    let is_ivf = args.video.extension().is_some_and(|e| e == "ivf");
    let video = if is_ivf {
        whip::ivf_track(&args.video)?
    } else {
        whip::h264_track(&args.video, args.fps)?
    };
    let audio = args.audio.as_deref().map(whip::opus_track).transpose()?;
    eprintln!(
        "video {} ({} frames, {}), audio {}; {} WHIP streams to {}",
        args.video.display(),
        video.frames.len(),
        video.mime_type,
        audio.as_ref().map_or("none".to_string(), |a| format!(
            "{} packets",
            a.frames.len()
        )),
        args.streams,
        args.url
    );
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("building the tokio runtime")?;
    let began = Instant::now();
    let base = args.url.trim_end_matches('/').to_string();
    let results = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(args.streams);
        for i in 0..args.streams {
            let options = whip::PublishOptions {
                url: format!("{base}/whip/{}{i}", args.prefix),
                token: args.token.clone(),
                video: Some(video.clone()),
                audio: audio.clone(),
                duration: args.duration_secs.map(Duration::from_secs_f64),
                vanish: false,
                connect_timeout: Duration::from_secs(30),
            };
            let delay = Duration::from_millis(args.ramp_ms * i as u64 / args.streams.max(1) as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                whip::publish(options).await
            }));
        }
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(match task.await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) => Err(format!("publisher task failed: {e}")),
            });
        }
        results
    });
    let wall = began.elapsed();
    let mut ok = true;
    let mut expectations = Vec::new();
    for (i, result) in results.iter().enumerate() {
        let name = format!("{}{i}", args.prefix);
        match result {
            Ok(r) => {
                println!(
                    "stream {name} video={} audio={} late_over_100ms={} plis={} connect_ms={} delete={}",
                    r.video_frames, r.audio_frames, r.late_frames, r.plis, r.connect_ms, r.delete_status
                );
                expectations.push(Expectation {
                    name,
                    video_frames: r.video_frames,
                    audio_frames: r.audio_frames,
                    ..Expectation::default()
                });
            }
            Err(e) => {
                println!("stream {name} ERROR {e}");
                ok = false;
            }
        }
    }
    let reports: Vec<&whip::PublishReport> =
        results.iter().filter_map(|r| r.as_ref().ok()).collect();
    println!(
        "SEND streams={} failed={} video_frames={} audio_frames={} late_over_100ms={} plis={} wall_s={:.1}",
        results.len(),
        results.len() - reports.len(),
        reports.iter().map(|r| r.video_frames).sum::<u64>(),
        reports.iter().map(|r| r.audio_frames).sum::<u64>(),
        reports.iter().map(|r| r.late_frames).sum::<u64>(),
        reports.iter().map(|r| r.plis).sum::<u64>(),
        wall.as_secs_f64(),
    );
    if let Some(root) = &args.check {
        let deadline = Instant::now() + Duration::from_secs(args.check_timeout_secs);
        let checks = loop {
            let checks = check_all(root, &expectations);
            if checks.iter().all(|c| c.problems.is_empty()) || Instant::now() >= deadline {
                break checks;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        ok &= print_checks(&checks, None);
    }
    Ok(ok)
}

/// Checks every expected stream.
fn check_all(root: &Path, expectations: &[Expectation]) -> Vec<StreamCheck> {
    expectations.iter().map(|e| check_stream(root, e)).collect()
}

/// Prints failing streams and a summary line; true if everything passed.
fn print_checks(checks: &[StreamCheck], max_lag_ms: Option<f64>) -> bool {
    for c in checks.iter().filter(|c| !c.problems.is_empty()) {
        println!("FAIL {}: {}", c.name, c.problems.join("; "));
    }
    let mut all: Vec<f64> = checks
        .iter()
        .flat_map(|c| c.lags.iter().map(|l| l.lag_ms))
        .collect();
    all.sort_by(f64::total_cmp);
    let mut mid: Vec<f64> = checks
        .iter()
        .flat_map(|c| c.lags.iter().filter(|l| !l.last_of_track).map(|l| l.lag_ms))
        .collect();
    mid.sort_by(f64::total_cmp);
    let failed = checks.iter().filter(|c| !c.problems.is_empty()).count();
    let lag_max = all.last().copied();
    let lag_ok = match (max_lag_ms, lag_max) {
        (Some(limit), Some(max)) => max <= limit,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let fmt = |v: Option<f64>| v.map_or("na".to_string(), |v| format!("{v:.0}"));
    println!(
        "CHECK streams={} passed={} failed={} video_samples={} audio_samples={} bytes={} \
         segments_timed={} lag_p50_ms={} lag_p99_ms={} lag_max_ms={} lag_max_excl_final_ms={} \
         lag_ok={} result={}",
        checks.len(),
        checks.len() - failed,
        failed,
        checks.iter().map(|c| c.video_samples).sum::<u64>(),
        checks.iter().map(|c| c.audio_samples).sum::<u64>(),
        checks.iter().map(|c| c.bytes).sum::<u64>(),
        all.len(),
        fmt(percentile(&all, 50.0)),
        fmt(percentile(&all, 99.0)),
        fmt(lag_max),
        fmt(mid.last().copied()),
        lag_ok,
        if failed == 0 && lag_ok {
            "PASS"
        } else {
            "FAIL"
        },
    );
    failed == 0 && lag_ok
}

/// Runs the `check` subcommand.
fn run_check(args: CheckArgs) -> anyhow::Result<bool> {
    let expectations: Vec<Expectation> = match &args.sent {
        Some(path) => SendReport::load(path)?
            .streams
            .into_iter()
            .map(Expectation::from)
            .collect(),
        None => {
            let (Some(n), Some(v), Some(a)) = (
                args.streams,
                args.expect_video_frames,
                args.expect_audio_frames,
            ) else {
                bail!("--streams, --expect-video-frames and --expect-audio-frames are needed without --sent");
            };
            (0..n)
                .map(|i| Expectation {
                    name: format!("{}{i}", args.prefix),
                    video_frames: v,
                    audio_frames: a,
                    ..Expectation::default()
                })
                .collect()
        }
    };
    let checks = check_all(&args.recordings, &expectations);
    Ok(print_checks(&checks, args.max_lag_ms))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ok = match cli.command {
        Command::Rtmp(args) => run_rtmp(args)?,
        Command::Whip(args) => run_whip(args)?,
        Command::Check(args) => run_check(args)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
