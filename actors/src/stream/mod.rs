//! Live streams: the [`StreamSupervisorMsg`] registry of live streams and one stream actor
//! per published stream, which owns the codec configuration and the frames since the last
//! keyframe and fans frames out to its recorder sessions.
//!
//! The contract with ingest (RTMP now, WHIP later) is the two message types below: an
//! ingest connection asks the supervisor to [`StreamSupervisorMsg::Publish`], receives the
//! stream actor's reference, sends it [`StreamMsg::Media`] in arrival order and finally
//! [`StreamMsg::Unpublish`].
//!
//! Actors: [`StreamSupervisor`] (`supervisor.rs`, the registry; started with
//! [`start_streams`]) and [`StreamActor`] (`stream_actor.rs`, one per live stream), with
//! the stream's frame cache in `gop.rs`. Recording settings are [`RecorderSettings`].

mod gop;
pub(crate) mod stream_actor;
mod supervisor;

pub use crate::recorder::{RecordFormats, RecorderSettings, RestartPolicy};
pub use stream_actor::{
    glob_matches, StreamActor, StreamActorArgs, StreamActorState, StreamInternal,
};
pub use supervisor::{
    start_streams, StreamSupervisor, StreamSupervisorArgs, StreamSupervisorState,
};

use ractor::{ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;
use recnode_media::MediaEvent;

/// How a publisher reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestProtocol {
    /// RTMP (`rtmp://host/{app}/{stream}`).
    Rtmp,
    /// WebRTC over WHIP (`POST /whip/{stream}`).
    Whip,
}

impl IngestProtocol {
    /// The `app` recorded in hook events and FLV names for this protocol when it has none of its own.
    pub fn default_app(self) -> &'static str {
        match self {
            IngestProtocol::Rtmp => "live",
            IngestProtocol::Whip => "whip",
        }
    }
}

impl IngestProtocol {
    /// The protocol's name in hook events and the API: `rtmp` or `whip`.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestProtocol::Rtmp => "rtmp",
            IngestProtocol::Whip => "whip",
        }
    }
}

/// A publisher asking to go live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The RTMP app (`live`), or `whip`.
    pub app: String,
    /// The stream name, already checked with [`validate_stream_name`].
    pub stream: String,
    /// RTMP or WHIP.
    pub protocol: IngestProtocol,
    /// The publisher's address, for logs.
    pub remote: String,
}

/// Why a publish was refused; ingest reports it to the publisher and logs it with the stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRejected {
    /// The stream name is already live on this node (the first publisher keeps it).
    #[error("stream {stream:?} is already live")]
    AlreadyLive {
        /// The stream name.
        stream: String,
    },
    /// The node is shutting down and takes no new publishers.
    #[error("node is shutting down")]
    ShuttingDown,
}

/// Where a stream may go live across a cluster. The stream supervisor claims a name before
/// a publish goes live and releases it when the stream ends; without a cluster nothing is
/// claimed ([`LocalPlacement`]). Both calls run inside the supervisor's handler, so they
/// must answer at once from local state (no I/O, no waiting on other nodes).
pub trait StreamPlacement: Send + Sync + 'static {
    /// Claims `stream` for this node; `Err(owner)` names the node where it is already live.
    fn claim(&self, stream: &str) -> Result<(), String>;
    /// Gives up this node's claim on `stream` (it ended here).
    fn release(&self, stream: &str);
}

/// The single-node placement: every claim succeeds and nothing is recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalPlacement;

impl StreamPlacement for LocalPlacement {
    fn claim(&self, _stream: &str) -> Result<(), String> {
        Ok(())
    }

    fn release(&self, _stream: &str) {}
}

/// Messages to the stream supervisor, which owns the registry of live streams.
#[derive(RactorMessage)]
pub enum StreamSupervisorMsg {
    /// Use this placement for publishes from now on (the cluster layer sets it at start-up;
    /// until then, and without a cluster, [`LocalPlacement`]).
    SetPlacement(std::sync::Arc<dyn StreamPlacement>),
    /// The auto-record rules made through the API (`/api/rules`, on any node of a
    /// cluster), replacing the previous set: streams published from now on are recorded
    /// when their name matches one of these or a configured `auto_streams` pattern.
    /// Streams already live are left as they are.
    SetAutoRecordRules(Vec<String>),
    /// An ingest connection wants to publish; the reply is the stream actor to send media to.
    Publish(
        PublishRequest,
        RpcReplyPort<Result<ActorRef<StreamMsg>, PublishRejected>>,
    ),
    /// `POST /api/record/{stream}`: start recording a live stream.
    StartRecording {
        /// The stream name (validated by the caller).
        stream: String,
        /// live777's `base_dir`: the record_dir to use exactly, relative to the storage root.
        base_dir: Option<String>,
        /// The new recording, or why not.
        reply: RpcReplyPort<Result<RecordingInfo, RecordError>>,
    },
    /// `DELETE /api/record/{stream}`: stop the stream's recording; it closes cleanly.
    StopRecording {
        /// The stream name.
        stream: String,
        /// The recording that was stopped, or why not.
        reply: RpcReplyPort<Result<RecordingInfo, RecordError>>,
    },
    /// `GET /api/record/{stream}`: whether the stream is being recorded.
    RecordingStatus {
        /// The stream name.
        stream: String,
        /// The status, or why not.
        reply: RpcReplyPort<Result<RecordingStatus, RecordError>>,
    },
    /// `GET /api/streams`: every live stream with its codecs (asks each stream actor).
    ListStreams(RpcReplyPort<Vec<StreamInfo>>),
    /// How many streams are live and how many are being recorded, from the supervisor's
    /// own counters: one answer whatever the number of streams (the cluster heartbeat,
    /// `/metrics`).
    Counts(RpcReplyPort<StreamCounts>),
    /// From a stream actor: it started or stopped being recorded; not for others.
    RecordingChanged(RecordingChange),
    /// SIGTERM: close every recording cleanly, then reply.
    Shutdown(RpcReplyPort<()>),
    /// The disk guard found free space under the hard floor: stop every open recording
    /// (each closes cleanly); streams stay live.
    DiskCritical,
    /// Test hook: make the disk guard see this many free bytes (`None`: measure again).
    #[cfg(any(test, feature = "fault-injection"))]
    OverrideDiskFree(Option<u64>, RpcReplyPort<()>),
    /// Test hook: inject a fault into a live stream (`NotFound` if it is not live).
    #[cfg(any(test, feature = "fault-injection"))]
    InjectFault {
        /// The stream name.
        stream: String,
        /// What to do.
        fault: StreamFault,
        /// Ok once the fault is handed to the stream actor.
        reply: RpcReplyPort<Result<(), RecordError>>,
    },
}

/// Faults tests can inject into a live stream (feature `fault-injection`).
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// The running recording's recorder session fails at once, as on a write error.
    FailRecorder,
    /// Every rotation timer of the stream fires now instead of after `max_recording_seconds`.
    FireRotationTimers,
}

/// How many streams are live on this node and how many of them are being recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Streams being published to this node.
    pub live_streams: usize,
    /// Those with a running recording.
    pub recordings: usize,
}

/// A stream actor telling its supervisor whether it has a running recording now;
/// opaque outside this crate.
#[derive(Debug, Clone)]
pub struct RecordingChange {
    /// The stream actor.
    pub(crate) actor: ractor::ActorId,
    /// Whether it records now.
    pub(crate) recording: bool,
}

/// A recording as live777's API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The stream name.
    pub id: String,
    /// The 10-digit unix time at start, or `""` when a `base_dir` without one was given.
    pub record_id: String,
    /// Where the recording's objects live, relative to the storage root: `{stream}/{record_id}`.
    pub record_dir: String,
    /// `{record_dir}/manifest.mpd`.
    pub mpd_path: String,
}

/// What `GET /api/record/{stream}` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingStatus {
    /// Whether a recording is running.
    pub recording: bool,
    /// The running recording, if any.
    pub current: Option<RecordingInfo>,
    /// Seconds recorded so far in the running recording.
    pub duration_seconds: f64,
    /// How many times its recorder was restarted after a failure.
    pub restarts: u32,
    /// Why the stream's last recording failed for good (restart intensity exceeded), if it did;
    /// `current` then describes that recording and `recording` is false.
    pub failed: Option<String>,
}

/// One live stream, as `GET /api/streams` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// The stream name.
    pub stream: String,
    /// The RTMP app, or `whip`.
    pub app: String,
    /// How it is published.
    pub protocol: IngestProtocol,
    /// Codec names (`h264`, `aac`, ...) of its tracks so far.
    pub codecs: Vec<String>,
    /// Whether it is being recorded.
    pub recording: bool,
    /// When it went live, in unix milliseconds.
    pub started_at_ms: u64,
}

/// Why a recording API call failed; the HTTP layer maps each to a status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No live stream by that name (404).
    #[error("stream {stream:?} is not live")]
    NotFound {
        /// The stream name.
        stream: String,
    },
    /// The stream is already being recorded (409).
    #[error("stream {stream:?} is already being recorded")]
    AlreadyRecording {
        /// The stream name.
        stream: String,
    },
    /// The stream is live but not being recorded (404 on stop).
    #[error("stream {stream:?} is not being recorded")]
    NotRecording {
        /// The stream name.
        stream: String,
    },
    /// The `base_dir` is absolute, contains `..`, or is otherwise unusable (400).
    #[error("invalid base_dir {base_dir:?}: {reason}")]
    InvalidBaseDir {
        /// The base_dir as given.
        base_dir: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Free space under the spool is below `[data] min_free_bytes` (507).
    #[error("recording of {stream:?} refused: {free_bytes} bytes free under the spool, below the minimum of {min_free_bytes}")]
    InsufficientStorage {
        /// The stream name.
        stream: String,
        /// Free bytes at the last measurement.
        free_bytes: u64,
        /// The configured minimum.
        min_free_bytes: u64,
    },
    /// The recorder could not start (disk, permissions) (500).
    #[error("recording of {stream:?} failed to start: {message}")]
    Failed {
        /// The stream name.
        stream: String,
        /// The underlying error.
        message: String,
    },
}

/// Messages to one live stream's actor.
#[derive(RactorMessage)]
pub enum StreamMsg {
    /// A codec configuration or a frame from the publisher, in arrival order.
    Media(MediaEvent),
    /// The publisher left (unpublish, socket closed or session timed out); recordings close cleanly.
    Unpublish,
    /// From the stream supervisor and the stream's own recorder sessions and timers; not for ingest.
    Internal(StreamInternal),
    /// Test hook: inject a fault (feature `fault-injection`).
    #[cfg(any(test, feature = "fault-injection"))]
    InjectFault(StreamFault),
}

/// Why a stream name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream name {name:?}: {reason}")]
pub struct InvalidStreamName {
    /// The name as given (truncated to 200 characters).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks a stream name from outside: 1–128 characters of `[A-Za-z0-9._-]`, not `.` or `..`,
/// so that it can never escape the storage root when used as a path component.
pub fn validate_stream_name(name: &str) -> Result<(), InvalidStreamName> {
    let invalid = |reason| InvalidStreamName {
        name: name.chars().take(200).collect(),
        reason,
    };
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("must be 1 to 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not stream names"));
    }
    Ok(())
}

/// Why an auto-record pattern is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream pattern {pattern:?}: {reason}")]
pub struct InvalidStreamPattern {
    /// The pattern as given (truncated to 200 characters).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks an auto-record pattern from outside (the rules API, a peer): 1–128 characters
/// of a stream name's `[A-Za-z0-9._-]` plus `*`, which matches any run of characters.
pub fn validate_stream_pattern(pattern: &str) -> Result<(), InvalidStreamPattern> {
    let invalid = |reason| InvalidStreamPattern {
        pattern: pattern.chars().take(200).collect(),
        reason,
    };
    if pattern.is_empty() || pattern.len() > 128 {
        return Err(invalid("must be 1 to 128 characters"));
    }
    if !pattern
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*'))
    {
        return Err(invalid(
            "only A-Z, a-z, 0-9, '.', '_', '-' and '*' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{validate_stream_name, validate_stream_pattern};

    #[test]
    fn stream_patterns_take_a_stream_names_characters_and_stars() {
        for bad in ["", "a/b", "web *", "é*", "a?", &"x".repeat(129)] {
            assert!(validate_stream_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["*", "web-*", "*.hd", "cam_1", &"*".repeat(128)] {
            assert!(validate_stream_pattern(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn stream_names_that_could_escape_the_storage_root_are_refused() {
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "a\\b",
            "../x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "cam-1", "show_2.hd", &"x".repeat(128)] {
            assert!(validate_stream_name(good).is_ok(), "{good:?}");
        }
    }
}
