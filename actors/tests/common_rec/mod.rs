//! Shared helpers for the recording tests: an ffmpeg-made source demuxed into media events,
//! a fake uploader that copies files into a storage directory in job order, and waits on
//! conditions with a timeout (never a bare sleep).
#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

#[path = "../../../media/tests/common/mod.rs"]
mod media;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use recnode_actors::media::MediaEvent;
use recnode_actors::stream::{
    start_streams, IngestProtocol, PublishRequest, RecordError, RecordFormats, RecorderSettings,
    RecordingStatus, RestartPolicy, StreamInfo, StreamMsg, StreamSupervisorArgs,
    StreamSupervisorMsg,
};
use recnode_actors::uploader::UploaderMsg;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long any wait in these tests may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh directory for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("recording")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The 6 s test source (H264 with B-frames, GOP 25, AAC), made once per test binary.
pub fn source() -> &'static Path {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("recording")
            .join(format!("source-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("src.flv");
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine=sample_rate=44100",
                "-t",
                "6",
                "-c:v",
                "libx264",
                "-bf",
                "2",
                "-g",
                "25",
                "-c:a",
                "aac",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("ffmpeg is required for the recording tests");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
}

/// The source read tag by tag through the RTMP payload demuxer, as RTMP ingest would.
pub fn source_events() -> Vec<MediaEvent> {
    media::demux_flv(source())
}

/// Decoded frame counts `(video, audio)` by `ffprobe -count_frames`, one stream type at a time.
pub fn count_frames(path: &Path) -> (u64, u64) {
    let counts = media::count_frames(path);
    (counts.video, counts.audio)
}

/// What `ffmpeg -v error -i X -f null -` prints (empty = decodes cleanly).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is required");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\nexit status {}", out.status));
    }
    text
}

/// What the fake uploader saw.
#[derive(Default)]
pub struct Uploads {
    /// Object keys in the order they were stored.
    pub keys: Vec<String>,
    /// Manifests stored before a segment they list.
    pub violations: Vec<String>,
}

/// An uploader that copies each file to `storage/{key}` in job order.
pub struct FakeUploader;

/// The fake uploader's state.
pub struct FakeUploaderState {
    storage: PathBuf,
    log: Arc<Mutex<Uploads>>,
}

/// Segment file names a manifest lists: for each `SegmentTemplate`, startNumber.. plus the timeline's count.
pub fn listed_segments(mpd: &str) -> Vec<String> {
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

impl Actor for FakeUploader {
    type Msg = UploaderMsg;
    type State = FakeUploaderState;
    type Arguments = (PathBuf, Arc<Mutex<Uploads>>);

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        (storage, log): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(FakeUploaderState { storage, log })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UploaderMsg::Enqueue(job) => {
                let target = state.storage.join(&job.key);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                let data = fs::read(&job.local)
                    .unwrap_or_else(|e| panic!("uploader: {:?} for {}: {e}", job.local, job.key));
                let mut log = state.log.lock().unwrap();
                if job.key.ends_with("manifest.mpd") {
                    let dir = target.parent().unwrap();
                    for seg in listed_segments(&String::from_utf8_lossy(&data)) {
                        if !dir.join(&seg).exists() {
                            log.violations
                                .push(format!("{} lists {seg} before it was stored", job.key));
                        }
                    }
                }
                fs::write(&target, &data).unwrap();
                if job.delete_after {
                    fs::remove_file(&job.local).unwrap();
                }
                log.keys.push(job.key);
            }
            UploaderMsg::Drain(reply) => {
                let _ = reply.send(());
            }
            // Other requests (stats, ...) are not used by the recorder.
            _ => {}
        }
        Ok(())
    }
}

/// A node's stream side for a test: the supervisor, the fake uploader and its storage.
pub struct Node {
    /// The stream supervisor.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// The fake uploader.
    pub uploader: ActorRef<UploaderMsg>,
    /// Where the uploader stores objects.
    pub storage: PathBuf,
    /// The spool root.
    pub spool: PathBuf,
    /// What the uploader saw.
    pub uploads: Arc<Mutex<Uploads>>,
}

/// Recorder settings for tests: DASH + FLV, 2 s segments, quick restarts.
pub fn settings(spool: &Path, auto: &[&str]) -> RecorderSettings {
    RecorderSettings {
        spool_dir: spool.to_path_buf(),
        auto_streams: auto.iter().map(|s| s.to_string()).collect(),
        formats: RecordFormats {
            dash: true,
            flv: true,
        },
        segment_seconds: 2.0,
        max_recording_seconds: 0,
        node_alias: "test-node".into(),
        restart: RestartPolicy {
            max_restarts: 5,
            within: Duration::from_secs(10),
            backoff_base: Duration::from_millis(20),
        },
        disk: Default::default(),
    }
}

impl Node {
    /// Starts the supervisor with `settings` (its spool_dir is replaced by `dir/spool`).
    pub async fn start(dir: &Path, mut settings: RecorderSettings) -> Node {
        let storage = dir.join("storage");
        let spool = dir.join("spool");
        fs::create_dir_all(&storage).unwrap();
        settings.spool_dir = spool.clone();
        let uploads = Arc::new(Mutex::new(Uploads::default()));
        let (uploader, _) = Actor::spawn(None, FakeUploader, (storage.clone(), uploads.clone()))
            .await
            .unwrap();
        let streams = start_streams(StreamSupervisorArgs {
            disk: recnode_actors::disk_guard::DiskStatus::new(&settings.disk),
            recorder: settings,
            uploader: uploader.clone(),
            hooks: recnode_actors::hooks::HookEmitter::disabled(),
            auto_record_rules: Vec::new(),
        })
        .await
        .unwrap();
        Node {
            streams,
            uploader,
            storage,
            spool,
            uploads,
        }
    }

    /// Publishes `stream` (app `live`, RTMP) and returns its stream actor.
    pub async fn publish(&self, stream: &str) -> ActorRef<StreamMsg> {
        let request = PublishRequest {
            app: "live".into(),
            stream: stream.into(),
            protocol: IngestProtocol::Rtmp,
            remote: "127.0.0.1:1".into(),
        };
        ractor::call_t!(self.streams, StreamSupervisorMsg::Publish, 10_000, request)
            .unwrap()
            .unwrap()
    }

    /// Every live stream.
    pub async fn list(&self) -> Vec<StreamInfo> {
        ractor::call_t!(self.streams, StreamSupervisorMsg::ListStreams, 10_000).unwrap()
    }

    /// `POST /api/record/{stream}`, with an optional `base_dir`.
    pub async fn start_recording(
        &self,
        stream: &str,
        base_dir: Option<&str>,
    ) -> Result<recnode_actors::stream::RecordingInfo, RecordError> {
        let stream = stream.to_string();
        let base_dir = base_dir.map(str::to_string);
        self.streams
            .call(
                |reply| StreamSupervisorMsg::StartRecording {
                    stream,
                    base_dir,
                    reply,
                },
                Some(TIMEOUT),
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// `GET /api/record/{stream}`.
    pub async fn status(&self, stream: &str) -> Result<RecordingStatus, RecordError> {
        let stream = stream.to_string();
        self.streams
            .call(
                |reply| StreamSupervisorMsg::RecordingStatus { stream, reply },
                Some(TIMEOUT),
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until `cond` holds for the stream's status.
    pub async fn wait_status(
        &self,
        stream: &str,
        what: &str,
        cond: impl Fn(&RecordingStatus) -> bool,
    ) -> RecordingStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.status(stream).await.unwrap();
            if cond(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `Unpublish`, waits until the stream has left the registry, then drains the uploader.
    pub async fn unpublish_and_wait(&self, stream: &ActorRef<StreamMsg>, name: &str) {
        stream.cast(StreamMsg::Unpublish).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while self.list().await.iter().any(|s| s.stream == name) {
            assert!(
                Instant::now() < deadline,
                "stream {name} did not close in time"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.drain().await;
    }

    /// Waits until every job enqueued so far is stored.
    pub async fn drain(&self) {
        ractor::call_t!(self.uploader, UploaderMsg::Drain, 60_000).unwrap();
    }

    /// The record_dirs (relative to storage) that have a session.json, sorted.
    pub fn record_dirs(&self, stream: &str) -> Vec<String> {
        let mut dirs: Vec<String> = fs::read_dir(self.storage.join(stream))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().join("session.json").exists())
                    .map(|e| format!("{stream}/{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// A record_dir's session.json.
    pub fn session_json(&self, record_dir: &str) -> serde_json::Value {
        let text = fs::read_to_string(self.storage.join(record_dir).join("session.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The FLV file in a stored record_dir.
    pub fn flv(&self, record_dir: &str) -> PathBuf {
        fs::read_dir(self.storage.join(record_dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "flv"))
            .unwrap_or_else(|| panic!("no FLV in {record_dir}"))
    }

    /// Checks the uploader stored every segment before any manifest listing it.
    pub fn assert_segments_before_manifests(&self) {
        let log = self.uploads.lock().unwrap();
        assert!(log.violations.is_empty(), "{:?}", log.violations);
        assert!(log.keys.iter().any(|k| k.ends_with("manifest.mpd")));
    }
}

/// Sends every event to the stream actor, calling `at(i)` before event `i`.
pub async fn feed(stream: &ActorRef<StreamMsg>, events: &[MediaEvent], mut at: impl FnMut(usize)) {
    for (i, e) in events.iter().enumerate() {
        at(i);
        stream.cast(StreamMsg::Media(e.clone())).unwrap();
        if i % 50 == 0 {
            // Let the actors run, as a live publisher's pace would.
            tokio::task::yield_now().await;
        }
    }
}

/// Decode time of event `i` in seconds (configs count as 0).
pub fn event_seconds(e: &MediaEvent) -> f64 {
    match e {
        MediaEvent::Frame(f) => f.dts_seconds(),
        MediaEvent::Config(_) => 0.0,
    }
}
