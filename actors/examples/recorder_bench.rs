//! Recorder benchmark driver: the real stream supervisor, stream actors and recorder
//! sessions on a current-thread runtime, as in the node, fed N streams from an FLV file at
//! real-time pace (times `--speed`), with a stub uploader that only deletes what it is
//! handed. No RTMP and no storage copy, so the CPU it prints is the recording pipeline's
//! own (stream actor → recorder session → spool files), per GB written to the spool.
//!
//! ```text
//! recorder_bench --source SRC.flv --dir DIR [--streams 50] [--seconds 30] [--speed 1]
//! ```
//! Prints one line: `streams= seconds= cpu_s= user_s= sys_s= bytes= cpu_s_per_gb= wall_s=`
//! `threads_max= voluntary_ctxt= involuntary_ctxt=`.

use ractor::{call_t, Actor, ActorProcessingErr, ActorRef};
use recnode_actors::media::{Frame, MediaEvent};
use recnode_actors::stream::{
    start_streams, IngestProtocol, PublishRequest, RecorderSettings, StreamMsg,
    StreamSupervisorArgs, StreamSupervisorMsg,
};
use recnode_actors::uploader::UploaderMsg;
use recnode_media::flv::{FlvDemuxer, FlvReader, TagKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts and deletes what the recorder hands over.
struct StubUploader;

struct StubState {
    bytes: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

impl Actor for StubUploader {
    type Msg = UploaderMsg;
    type State = StubState;
    type Arguments = (Arc<AtomicU64>, Arc<AtomicU64>);

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        (bytes, closed): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(StubState { bytes, closed })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UploaderMsg::Enqueue(job) if job.delete_after => {
                let local = job.local.clone();
                let size = tokio::task::spawn_blocking(move || {
                    let size = std::fs::metadata(&local).map_or(0, |m| m.len());
                    let _ = std::fs::remove_file(&local);
                    size
                })
                .await
                .unwrap_or(0);
                state.bytes.fetch_add(size, Ordering::Relaxed);
                if job.key.ends_with("/session.json") {
                    state.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
            UploaderMsg::Drain(reply) => {
                let _ = reply.send(());
            }
            _ => {}
        }
        Ok(())
    }
}

fn args() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        out.insert(name.trim_start_matches("--").to_string(), value);
    }
    out
}

fn demux(path: &Path) -> Vec<MediaEvent> {
    let data = std::fs::read(path).expect("--source is readable");
    let mut demuxer = FlvDemuxer::new();
    let mut events = Vec::new();
    for tag in FlvReader::new(&data).expect("--source is an FLV file") {
        let tag = tag.expect("valid FLV tags");
        let out = match tag.kind {
            TagKind::Video => demuxer.push_video(tag.timestamp_ms, tag.data),
            TagKind::Audio => demuxer.push_audio(tag.timestamp_ms, tag.data),
            TagKind::Script => continue,
        };
        events.extend(out.expect("the source demuxes"));
    }
    events
}

/// `(user, system)` CPU seconds of this process, and its thread count.
fn cpu() -> (f64, f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(") ").next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat (12 and 13 after the comm); ticks of 1/100 s.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    let threads = f.get(17).and_then(|v| v.parse().ok()).unwrap_or(0);
    (tick(11), tick(12), threads)
}

fn ctxt() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (
        get("voluntary_ctxt_switches"),
        get("nonvoluntary_ctxt_switches"),
    )
}

fn shifted(frame: &Frame, ms: i64) -> Frame {
    let shift = ms * i64::from(frame.timescale) / 1000;
    Frame {
        pts: frame.pts + shift,
        dts: frame.dts + shift,
        ..frame.clone()
    }
}

fn main() {
    let args = args();
    let source = PathBuf::from(args.get("source").expect("--source is required"));
    let dir = PathBuf::from(args.get("dir").expect("--dir is required"));
    let streams: usize = args.get("streams").map_or(50, |v| v.parse().unwrap());
    let seconds: f64 = args.get("seconds").map_or(30.0, |v| v.parse().unwrap());
    let speed: f64 = args.get("speed").map_or(1.0, |v| v.parse().unwrap());
    let events = demux(&source);
    let file_ms = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Frame(f) => Some(f.dts * 1000 / i64::from(f.timescale.max(1))),
            MediaEvent::Config(_) => None,
        })
        .max()
        .unwrap_or(0)
        + 40;
    // The frames of one stream in order, looped to `seconds`: (media ms, event).
    let mut timeline: Vec<(i64, MediaEvent)> = events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Config(_)))
        .map(|e| (0, e.clone()))
        .collect();
    let total_ms = (seconds * 1000.0) as i64;
    let mut lap = 0;
    'laps: loop {
        for e in &events {
            if let MediaEvent::Frame(f) = e {
                let at = f.dts * 1000 / i64::from(f.timescale.max(1)) + lap * file_ms;
                if at >= total_ms {
                    break 'laps;
                }
                timeline.push((at, MediaEvent::Frame(shifted(f, lap * file_ms))));
            }
        }
        lap += 1;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("--dir can be created");
        let bytes = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let (uploader, _) = Actor::spawn(None, StubUploader, (bytes.clone(), closed.clone()))
            .await
            .expect("stub uploader");
        let settings = RecorderSettings {
            spool_dir: dir.join("spool"),
            auto_streams: vec!["*".into()],
            ..Default::default()
        };
        let supervisor = start_streams(StreamSupervisorArgs {
            disk: recnode_actors::disk_guard::DiskStatus::new(&settings.disk),
            recorder: settings,
            uploader,
            hooks: recnode_actors::hooks::HookEmitter::disabled(),
            auto_record_rules: Vec::new(),
        })
        .await
        .expect("stream supervisor");

        let (u0, s0, _) = cpu();
        let (v0, i0) = ctxt();
        let started = Instant::now();
        let mut actors = Vec::new();
        for i in 0..streams {
            let request = PublishRequest {
                app: "live".into(),
                stream: format!("bench-{i}"),
                protocol: IngestProtocol::Rtmp,
                remote: "127.0.0.1:1".into(),
            };
            let stream = call_t!(supervisor, StreamSupervisorMsg::Publish, 10_000, request)
                .expect("publish answered")
                .expect("publish accepted");
            actors.push(stream);
        }
        // Stream i starts i * 2 s / N after the first, as the RTMP load generator does.
        let offsets: Vec<i64> = (0..streams)
            .map(|i| (i as i64 * 2000) / streams as i64)
            .collect();
        let mut next = vec![0usize; streams];
        let mut threads_max = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            let now_ms = (started.elapsed().as_secs_f64() * 1000.0 * speed) as i64;
            let mut done = true;
            for (i, stream) in actors.iter().enumerate() {
                while let Some((at, event)) = timeline.get(next[i]) {
                    if at + offsets[i] > now_ms {
                        break;
                    }
                    let _ = stream.send_message(StreamMsg::Media(event.clone()));
                    next[i] += 1;
                }
                done &= next[i] >= timeline.len();
            }
            threads_max = threads_max.max(cpu().2);
            if done {
                break;
            }
        }
        for stream in &actors {
            let _ = stream.send_message(StreamMsg::Unpublish);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while closed.load(Ordering::Relaxed) < streams as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (u1, s1, _) = cpu();
        let (v1, i1) = ctxt();
        let (user, sys) = (u1 - u0, s1 - s0);
        let b = bytes.load(Ordering::Relaxed);
        println!(
            "streams={streams} seconds={seconds} cpu_s={:.2} user_s={user:.2} sys_s={sys:.2} \
             bytes={b} cpu_s_per_gb={:.2} wall_s={:.1} threads_max={threads_max} \
             voluntary_ctxt={} involuntary_ctxt={} closed={}",
            user + sys,
            (user + sys) / (b as f64 / 1e9),
            started.elapsed().as_secs_f64(),
            v1 - v0,
            i1 - i0,
            closed.load(Ordering::Relaxed),
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
