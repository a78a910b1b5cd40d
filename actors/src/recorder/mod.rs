//! Recording sessions: one per active recording, writing fMP4 + DASH and FLV into the spool.
//!
//! - [`RecorderSession`] (`session.rs`) is the actor of one recording attempt. Its blocking
//!   file work lives in `writer.rs` ([`writer`] is private) and always runs on tokio's
//!   blocking pool, never on an actor loop, one step per batch of frames. The stream actor
//!   cuts the batches where the fMP4 muxer closes a fragment (`batch.rs`).
//! - [`RotationTimer`] (`rotation_timer.rs`) tells the stream actor when a recording has
//!   lasted `max_recording_seconds`.
//! - The durable state of a recording ([`RecordingState`]: record_dir, next segment number,
//!   the MPD timeline so far, the FLV writer as of its last fsync) is *not* owned by the
//!   session: the session reports a checkpoint after each durable step and the stream
//!   actor (its supervisor) keeps the latest one and hands it to the replacement session
//!   after a failure, so a restart continues the same recording.
//!
//! Spool layout (`spool_dir/{key}` for every object key):
//! `{record_dir}/v_init.m4s a_init.m4s v_seg_NNNN.m4s a_seg_NNNN.m4s manifest.mpd session.json`
//! and `{record_dir}/{app}_{stream}_{YYYYMMDD_HHMMSS}.flv`.

mod batch;
mod clock;
mod retime;
mod rotation_timer;
mod session;
mod writer;

pub use rotation_timer::{RotationTimer, RotationTimerArgs, RotationTimerMsg, RotationTimerState};
pub use session::{RecorderSession, RecorderSessionArgs, RecorderSessionMsg, RecorderSessionState};

pub(crate) use batch::BatchClock;
pub(crate) use clock::unix_ms;
pub(crate) use writer::finalize_failed;

use crate::stream::{RecordError, RecordingInfo};
use recnode_media::dash::Mpd;
use recnode_media::flv::FlvWriter;
use recnode_media::TrackKind;
use std::path::PathBuf;
use std::time::Duration;

/// How the node records: where the spool is, what is recorded automatically, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderSettings {
    /// The local spool root; the spool path of an object is `spool_dir/{key}`.
    pub spool_dir: PathBuf,
    /// Streams recorded as soon as they go live: names or globs where `*` matches any run of characters.
    pub auto_streams: Vec<String>,
    /// Which files a recording writes.
    pub formats: RecordFormats,
    /// Target DASH segment length in seconds (segments are cut at the next keyframe after it).
    pub segment_seconds: f64,
    /// Rotate a recording into a new record_dir after this many seconds; 0 never rotates.
    pub max_recording_seconds: u64,
    /// This node's name, written into session.json.
    pub node_alias: String,
    /// How failed recorder sessions are restarted.
    pub restart: RestartPolicy,
    /// Free-space thresholds under the spool (`[data] min_free_bytes`).
    pub disk: crate::disk_guard::DiskGuardSettings,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            spool_dir: PathBuf::from("./recordings"),
            auto_streams: Vec::new(),
            formats: RecordFormats::default(),
            segment_seconds: 2.0,
            max_recording_seconds: 0,
            node_alias: String::new(),
            restart: RestartPolicy::default(),
            disk: crate::disk_guard::DiskGuardSettings::default(),
        }
    }
}

/// Which files a recording writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFormats {
    /// fMP4 segments with a DASH manifest.
    pub dash: bool,
    /// One FLV file per recording (H264/H265/AV1/VP9 video and AAC audio only).
    pub flv: bool,
}

impl Default for RecordFormats {
    fn default() -> Self {
        RecordFormats {
            dash: true,
            flv: true,
        }
    }
}

/// OTP-style restart intensity for recorder sessions: at most `max_restarts` within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed inside the window before the recording is marked failed.
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub within: Duration,
    /// The first restart waits this long; each further one in the window waits twice as long.
    pub backoff_base: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            within: Duration::from_secs(10),
            backoff_base: Duration::from_millis(100),
        }
    }
}

/// Why a recorder session failed; the stream actor logs it with the stream and session.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A file in the spool could not be written (disk full, permissions).
    #[error("recording {record_dir} of stream {stream}: {what} {path}: {source}")]
    Io {
        /// The stream name.
        stream: String,
        /// The recording's record_dir.
        record_dir: String,
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The fMP4 muxer refused a frame or a codec configuration.
    #[error("recording {record_dir} of stream {stream}: {source}")]
    Mux {
        /// The stream name.
        stream: String,
        /// The recording's record_dir.
        record_dir: String,
        /// The muxer's error.
        source: recnode_media::fmp4::Fmp4Error,
    },
    /// A fragment could not be re-timed onto the resumed timeline.
    #[error("recording {record_dir} of stream {stream}: re-timing a fragment failed: {message}")]
    Retime {
        /// The stream name.
        stream: String,
        /// The recording's record_dir.
        record_dir: String,
        /// What went wrong.
        message: String,
    },
    /// The blocking writer task panicked (a bug) or was cancelled.
    #[error("recording {record_dir} of stream {stream}: writer task ended: {message}")]
    WriterLost {
        /// The stream name.
        stream: String,
        /// The recording's record_dir.
        record_dir: String,
        /// The join error.
        message: String,
    },
    /// A failure injected by a test (`StreamFault::FailRecorder`).
    #[cfg(any(test, feature = "fault-injection"))]
    #[error("recording {record_dir} of stream {stream}: injected failure")]
    Injected {
        /// The stream name.
        stream: String,
        /// The recording's record_dir.
        record_dir: String,
    },
}

/// How a recording ended, as session.json's `outcome` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still being written.
    Recording,
    /// Stopped by the API, by unpublish or by shutdown.
    Completed,
    /// Its recorder failed more often than the restart policy allows.
    Failed,
    /// Closed by rotation; the recording continues in a new record_dir.
    Rotated,
}

impl Outcome {
    /// The session.json spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recording => "recording",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Rotated => "rotated",
        }
    }
}

/// A frame numbered by its stream actor; numbers grow by one per frame in arrival order.
#[derive(Debug, Clone)]
pub struct SeqFrame {
    /// The frame's number in its stream.
    pub seq: u64,
    /// The frame.
    pub frame: recnode_media::Frame,
}

/// Index of a track in per-track arrays.
pub(crate) fn track_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// The durable DASH state of a recording as of its last finished segment.
#[derive(Debug, Clone)]
pub(crate) struct DashCheckpoint {
    /// The manifest with every finished segment.
    pub mpd: Mpd,
    /// Tracks declared in `mpd`, by [`track_index`].
    pub tracks_declared: [bool; 2],
    /// Init segments written and enqueued, by [`track_index`].
    pub init_written: [bool; 2],
    /// Per track: the first frame (stream seq) that is not in a finished segment.
    pub resume_seq: [u64; 2],
    /// Per track: the decode time (track units, recording timeline) of that frame.
    pub next_dts: [Option<u64>; 2],
    /// The recording's time zero: the first frame's `(dts, timescale)`.
    pub origin: Option<(i64, u32)>,
    /// Per track: the `mfhd` sequence number of the next fragment.
    pub next_fragment_sequence: [u32; 2],
    /// Per track: finished segments; the next one is numbered `segments + 1` (the one a restart rewrites).
    pub segments: [u32; 2],
}

/// The durable FLV state of a recording as of its last fsync.
#[derive(Debug, Clone)]
pub(crate) struct FlvCheckpoint {
    /// The FLV's object key.
    pub key: String,
    /// The writer as of `len` (None until the first frame).
    pub writer: Option<FlvWriter>,
    /// File length known to be on disk.
    pub len: u64,
    /// The first frame (stream seq) not in those bytes.
    pub resume_seq: u64,
}

/// Everything needed to continue a recording in a new session, kept by the stream actor.
#[derive(Debug, Clone)]
pub(crate) struct RecordingState {
    /// The stream name.
    pub stream: String,
    /// The RTMP app (or `whip`).
    pub app: String,
    /// The node alias for session.json.
    pub node_alias: String,
    /// The recording as the API reports it.
    pub info: RecordingInfo,
    /// When the recording started, unix ms.
    pub started_at_ms: u64,
    /// Codec names recorded.
    pub codecs: Vec<String>,
    /// DASH state, if DASH is recorded.
    pub dash: Option<DashCheckpoint>,
    /// FLV state, if FLV is recorded.
    pub flv: Option<FlvCheckpoint>,
    /// First and last frame decode time seen (seconds), for the duration.
    pub media_span: Option<(f64, f64)>,
    /// Restarts so far.
    pub restarts: u32,
}

impl RecordingState {
    /// A new recording whose first frame will be `first_seq`.
    pub(crate) fn new(
        settings: &RecorderSettings,
        stream: &str,
        app: &str,
        info: RecordingInfo,
        started_at_ms: u64,
        first_seq: u64,
    ) -> Self {
        let dash = settings.formats.dash.then(|| DashCheckpoint {
            mpd: Mpd::new(started_at_ms, settings.segment_seconds),
            tracks_declared: [false; 2],
            init_written: [false; 2],
            resume_seq: [first_seq; 2],
            next_dts: [None; 2],
            origin: None,
            next_fragment_sequence: [1; 2],
            segments: [0; 2],
        });
        let flv = settings.formats.flv.then(|| FlvCheckpoint {
            key: format!(
                "{}/{}_{}_{}.flv",
                info.record_dir,
                app.replace('/', "_"),
                stream,
                clock::utc_compact(started_at_ms)
            ),
            writer: None,
            len: 0,
            resume_seq: first_seq,
        });
        RecordingState {
            stream: stream.to_string(),
            app: app.to_string(),
            node_alias: settings.node_alias.clone(),
            info,
            started_at_ms,
            codecs: Vec::new(),
            dash,
            flv,
            media_span: None,
            restarts: 0,
        }
    }

    /// This recording as its hook events name it.
    pub(crate) fn record_ref(&self) -> crate::hooks::events::RecordRef {
        let formats: Vec<&str> = [(self.dash.is_some(), "dash"), (self.flv.is_some(), "flv")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        crate::hooks::events::RecordRef {
            stream: self.stream.clone(),
            app: self.app.clone(),
            record_id: self.info.record_id.clone(),
            record_dir: self.info.record_dir.clone(),
            format: formats.join(","),
        }
    }

    /// The recorded duration so far in seconds: the manifest's, else the frames' span.
    pub(crate) fn duration_seconds(&self) -> f64 {
        match (&self.dash, self.media_span) {
            (Some(cp), _) if cp.mpd.duration_seconds() > 0.0 => cp.mpd.duration_seconds(),
            (_, Some((a, b))) => b - a,
            _ => 0.0,
        }
    }

    /// Segments written so far (of the video track, else the audio track).
    pub(crate) fn segment_count(&self) -> u32 {
        self.dash.as_ref().map_or(0, |cp| {
            if cp.segments[0] > 0 {
                cp.segments[0]
            } else {
                cp.segments[1]
            }
        })
    }

    /// The first frame any format of this recording still needs.
    pub(crate) fn resume_seq(&self) -> u64 {
        let dash = self
            .dash
            .as_ref()
            .map_or(u64::MAX, |d| d.resume_seq[0].min(d.resume_seq[1]));
        let flv = self.flv.as_ref().map_or(u64::MAX, |f| f.resume_seq);
        dash.min(flv)
    }
}

/// The recording's identity: `{stream}/{record_id}`, or `base_dir` exactly when given.
pub(crate) fn recording_info(
    stream: &str,
    base_dir: Option<&str>,
    record_id_secs: u64,
) -> Result<RecordingInfo, RecordError> {
    let (record_id, record_dir) = match base_dir {
        Some(dir) => {
            validate_base_dir(dir)?;
            let dir = dir.trim_end_matches('/');
            let last = dir.rsplit('/').next().unwrap_or(dir);
            let id = if last.len() == 10 && last.bytes().all(|b| b.is_ascii_digit()) {
                last.to_string()
            } else {
                String::new()
            };
            (id, dir.to_string())
        }
        None => {
            let id = format!("{record_id_secs:010}");
            let dir = format!("{stream}/{id}");
            (id, dir)
        }
    };
    Ok(RecordingInfo {
        id: stream.to_string(),
        record_id,
        mpd_path: format!("{record_dir}/manifest.mpd"),
        record_dir,
    })
}

/// Checks a `base_dir` from the API: relative, no `..` or `.` or empty components, only `[A-Za-z0-9._-/]`.
pub fn validate_base_dir(dir: &str) -> Result<(), RecordError> {
    let invalid = |reason| {
        Err(RecordError::InvalidBaseDir {
            base_dir: dir.chars().take(200).collect(),
            reason,
        })
    };
    if dir.is_empty() || dir.len() > 512 {
        return invalid("must be 1 to 512 characters");
    }
    if dir.starts_with('/') {
        return invalid("must be relative to the storage root");
    }
    if !dir
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return invalid("only A-Z, a-z, 0-9, '.', '_', '-' and '/' are allowed");
    }
    // One trailing '/' is tolerated; every other component must be a real name.
    for part in dir.strip_suffix('/').unwrap_or(dir).split('/') {
        if part.is_empty() {
            return invalid("must not contain empty components ('//')");
        }
        if part == ".." || part == "." {
            return invalid("must not contain '.' or '..' components");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{recording_info, validate_base_dir};

    #[test]
    fn base_dirs_that_could_escape_the_storage_root_are_refused() {
        for bad in [
            "", "/abs", "../x", "a/../b", "a//b", "a/./b", "a b", "a\\b", "é", ".",
        ] {
            assert!(validate_base_dir(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "cam/1700000000", "x/y_z-1.0/", "shows/2024"] {
            assert!(validate_base_dir(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_base_dir_is_the_record_dir_and_its_ten_digit_tail_the_record_id() {
        let info = recording_info("cam", Some("x/1700000001"), 5).unwrap();
        assert_eq!(info.record_dir, "x/1700000001");
        assert_eq!(info.record_id, "1700000001");
        assert_eq!(info.mpd_path, "x/1700000001/manifest.mpd");
        let info = recording_info("cam", Some("x/show"), 5).unwrap();
        assert_eq!(info.record_id, "");
        let info = recording_info("cam", None, 1_700_000_002).unwrap();
        assert_eq!(info.record_dir, "cam/1700000002");
        assert_eq!(info.id, "cam");
    }
}
