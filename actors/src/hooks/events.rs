//! Builders for the events recnode raises, so emitters fill the schema the same way.
//!
//! Record events carry the stream (`room`), the app (`app`: the RTMP app, or `whip`),
//! the recording's `record_id` and `record_dir` and its output formats; build a
//! [`RecordRef`] once per recording and take each event from it.
//!
//! Emitting from an actor: `emitter.emit_nowait(record.segment(..))` never waits (the
//! order of calls is the order of seqs); `emitter.emit(..).await` waits for the commit,
//! for events that must be durable before the caller goes on.

use recnode_media::codec::CodecConfig;
use recnode_media::TrackKind;
use recnode_proto::hook::v1::{
    hook_event::Event, node_event, record_event, stream_event, upload_event, Codec, Kind,
    NodeEvent, RecordEvent, StreamEvent, UploadEvent,
};

pub use recnode_proto::hook::v1::record_event::Outcome;

/// A track's codec as hook events describe it.
pub fn codec(config: &CodecConfig) -> Codec {
    let kind = match config.kind() {
        TrackKind::Video => Kind::Video,
        TrackKind::Audio => Kind::Audio,
    };
    let mut codec = Codec {
        kind: kind as i32,
        name: config.codec().name().to_string(),
        ..Codec::default()
    };
    match config {
        CodecConfig::H264(c) => (codec.width, codec.height) = (c.width.into(), c.height.into()),
        CodecConfig::Vp8(c) => (codec.width, codec.height) = (c.width.into(), c.height.into()),
        CodecConfig::Vp9(c) => (codec.width, codec.height) = (c.width.into(), c.height.into()),
        CodecConfig::Aac(c) => {
            (codec.sample_rate, codec.channels) = (c.sample_rate, c.channels.into())
        }
        CodecConfig::Opus(c) => (codec.sample_rate, codec.channels) = (48_000, c.channels.into()),
        CodecConfig::H265(_) | CodecConfig::Av1(_) => {}
    }
    codec
}

/// `stream.started`: a publisher started publishing `stream` in `app` over `protocol`
/// (`rtmp` or `whip`).
pub fn stream_started(
    stream: &str,
    app: &str,
    protocol: &str,
    codecs: &[CodecConfig],
    remote_addr: &str,
) -> Event {
    Event::Stream(StreamEvent {
        stream: stream.to_string(),
        app: app.to_string(),
        protocol: protocol.to_string(),
        event: Some(stream_event::Event::Started(stream_event::PublishStarted {
            codecs: codecs.iter().map(codec).collect(),
            remote_addr: remote_addr.to_string(),
        })),
    })
}

/// `stream.stopped`: the publisher of `stream` stopped after `duration_ms`.
pub fn stream_stopped(
    stream: &str,
    app: &str,
    protocol: &str,
    duration_ms: u64,
    reason: &str,
) -> Event {
    Event::Stream(StreamEvent {
        stream: stream.to_string(),
        app: app.to_string(),
        protocol: protocol.to_string(),
        event: Some(stream_event::Event::Stopped(stream_event::PublishStopped {
            duration_ms,
            reason: reason.to_string(),
        })),
    })
}

/// Identifies one recording in its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    /// The stream name (`room`).
    pub stream: String,
    /// The RTMP app, or `whip` (`app`).
    pub app: String,
    /// The record id (10-digit unix seconds at start).
    pub record_id: String,
    /// The record dir, relative to the storage root.
    pub record_dir: String,
    /// The output formats, comma-separated: `dash`, `flv` or `dash,flv`.
    pub format: String,
}

impl RecordRef {
    fn event(&self, event: record_event::Event) -> Event {
        Event::Record(RecordEvent {
            room: self.stream.clone(),
            app: self.app.clone(),
            record_id: self.record_id.clone(),
            record_dir: self.record_dir.clone(),
            format: self.format.clone(),
            event: Some(event),
        })
    }

    /// `record.started`, with the manifest's and/or the FLV's object keys (empty when
    /// not written).
    pub fn started(&self, mpd_path: &str, flv_path: &str) -> Event {
        self.event(record_event::Event::Started(record_event::RecordStarted {
            path: self.record_dir.clone(),
            record_dir: self.record_dir.clone(),
            mpd_path: mpd_path.to_string(),
            flv_path: flv_path.to_string(),
        }))
    }

    /// `record.segment`: a segment is complete in the spool and queued for upload.
    pub fn segment(
        &self,
        key: &str,
        kind: TrackKind,
        number: u32,
        start_ms: u64,
        duration_ms: u64,
        bytes: u64,
    ) -> Event {
        let kind = match kind {
            TrackKind::Video => Kind::Video,
            TrackKind::Audio => Kind::Audio,
        };
        self.event(record_event::Event::Segment(record_event::RecordSegment {
            key: key.to_string(),
            kind: kind as i32,
            number,
            start_ms,
            duration_ms,
            bytes,
        }))
    }

    /// `record.rotated`: the recording continues in `next_record_dir`.
    pub fn rotated(&self, next_record_dir: &str, next_record_id: &str) -> Event {
        self.event(record_event::Event::Rotated(record_event::RecordRotated {
            next_record_dir: next_record_dir.to_string(),
            next_record_id: next_record_id.to_string(),
        }))
    }

    /// `record.stopped`: the recording ended; its manifest is final.
    pub fn stopped(&self, duration_ms: u64, outcome: Outcome, segments: u32) -> Event {
        self.event(record_event::Event::Stopped(record_event::RecordStopped {
            duration_ms,
            outcome: outcome as i32,
            segments,
        }))
    }

    /// `record.failed`: the recording failed for good after `attempts`.
    pub fn failed(&self, error: &str, attempts: u32) -> Event {
        self.event(record_event::Event::Failed(record_event::RecordFailed {
            error: error.to_string(),
            attempts,
        }))
    }

    /// `record.restarted`: attempt `attempt` starts after a recorder crash.
    pub fn restarted(&self, attempt: u32, error: &str) -> Event {
        self.event(record_event::Event::Restarted(
            record_event::RecordRestarted {
                attempt,
                error: error.to_string(),
            },
        ))
    }
}

/// `upload.stored`: `key` is in object storage.
pub fn upload_stored(key: &str, bytes: u64, attempts: u32, latency_ms: u64) -> Event {
    Event::Upload(UploadEvent {
        key: key.to_string(),
        event: Some(upload_event::Event::Stored(upload_event::ObjectStored {
            bytes,
            attempts,
            latency_ms,
        })),
    })
}

/// `upload.retrying`: attempt `attempt` of `key` failed; the next starts in `retry_in_ms`;
/// `queue_length` files are waiting for upload on the node.
pub fn upload_retrying(
    key: &str,
    attempt: u32,
    error: &str,
    retry_in_ms: u64,
    queue_length: u64,
) -> Event {
    Event::Upload(UploadEvent {
        key: key.to_string(),
        event: Some(upload_event::Event::Retrying(
            upload_event::UploadRetrying {
                attempt,
                error: error.to_string(),
                retry_in_ms,
                queue_length,
            },
        )),
    })
}

/// `upload.disk_low`: free space under `path` fell below `min_free_bytes` (`hard`: the
/// floor below which open recordings are closed).
pub fn disk_low(path: &str, free_bytes: u64, min_free_bytes: u64, hard: bool) -> Event {
    Event::Upload(UploadEvent {
        key: String::new(),
        event: Some(upload_event::Event::DiskLow(upload_event::DiskLow {
            path: path.to_string(),
            free_bytes,
            min_free_bytes,
            hard,
        })),
    })
}

/// `node.joined`: node `node` (`node_alias`) started and accepts publishers.
pub fn node_joined(node: u32, node_alias: &str) -> Event {
    Event::NodeEvent(NodeEvent {
        node,
        node_alias: node_alias.to_string(),
        event: Some(node_event::Event::Joined(node_event::NodeJoined {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })),
    })
}

/// `node.left`: node `node` left (`shutdown` or `lost`).
pub fn node_left(node: u32, node_alias: &str, reason: &str) -> Event {
    Event::NodeEvent(NodeEvent {
        node,
        node_alias: node_alias.to_string(),
        event: Some(node_event::Event::Left(node_event::NodeLeft {
            reason: reason.to_string(),
        })),
    })
}
