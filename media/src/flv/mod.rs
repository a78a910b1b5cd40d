//! FLV: RTMP/FLV tag payloads → frames and codec configs, FLV files in and out.
//!
//! - [`FlvDemuxer`] turns the bodies of RTMP audio/video messages (which are FLV tag
//!   bodies, FLV spec v10.1 §E.4.2 AUDIODATA and §E.4.3 VIDEODATA, plus the Enhanced
//!   RTMP v1 extended video header for `hvc1`/`av01`/`vp09`/`avc1`) into
//!   [`MediaEvent`](crate::MediaEvent)s.
//! - [`FlvReader`] walks the tags of a complete FLV file (§E.2 header, §E.3 body, §E.4.1
//!   tag header) held in memory.
//! - [`FlvWriter`] produces the bytes of an FLV file from frames, with an `onMetaData`
//!   script tag (§E.5) whose final version, carrying duration and a `keyframes` index,
//!   is written back over a fixed-size placeholder when the recording finishes.
//!
//! All three are sans-IO: bytes and timestamps go in, values and bytes come out.

pub mod amf;
mod demux;
mod tag;
mod writer;

pub use demux::{DemuxStats, FlvDemuxer};
pub use tag::{FlvReader, FlvTag, TagKind};
pub use writer::{FlvFinish, FlvWriter, FlvWriterOptions};

use crate::codec::{Codec, CodecError};
use crate::TrackKind;

/// Why an FLV file, tag body or frame could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The 9-byte FLV header (§E.2) is missing or malformed.
    #[error("FLV header invalid: {what}")]
    BadHeader {
        /// What was wrong.
        what: &'static str,
    },
    /// A tag or PreviousTagSize field runs past the end of the file.
    #[error("FLV tag at byte {offset} truncated: {what}")]
    TruncatedTag {
        /// File offset of the tag (or PreviousTagSize field) that is cut short.
        offset: u64,
        /// Which field was cut short.
        what: &'static str,
    },
    /// PreviousTagSize (§E.3) does not match the size of the tag before it.
    #[error("PreviousTagSize at byte {offset} is {found}, expected {expected}")]
    PreviousTagSize {
        /// File offset of the PreviousTagSize field.
        offset: u64,
        /// The value in the file.
        found: u32,
        /// 11 + DataSize of the preceding tag (0 before the first tag).
        expected: u32,
    },
    /// A tag header has a TagType other than 8, 9 or 18 (§E.4.1).
    #[error("FLV tag at byte {offset} has reserved TagType {tag_type}")]
    BadTagType {
        /// File offset of the tag.
        offset: u64,
        /// The 5-bit TagType.
        tag_type: u8,
    },
    /// A tag body ends before a field the codec requires.
    #[error("{kind:?} tag body at {timestamp_ms} ms truncated at byte {offset}: {what}")]
    TruncatedBody {
        /// Audio or video.
        kind: TrackKind,
        /// The tag/message timestamp.
        timestamp_ms: u32,
        /// Offset within the body where the missing field starts.
        offset: usize,
        /// Which field is missing.
        what: &'static str,
    },
    /// A tag body holds a value the spec does not allow.
    #[error("{kind:?} tag body at {timestamp_ms} ms invalid at byte {offset}: {what}")]
    InvalidBody {
        /// Audio or video.
        kind: TrackKind,
        /// The tag/message timestamp.
        timestamp_ms: u32,
        /// Offset within the body of the bad field.
        offset: usize,
        /// What was wrong.
        what: String,
    },
    /// The codec (legacy SoundFormat/CodecID or Enhanced RTMP FourCC) is not one recnode records.
    #[error("unsupported {kind:?} codec {codec} at {timestamp_ms} ms")]
    UnsupportedCodec {
        /// Audio or video.
        kind: TrackKind,
        /// A readable name, e.g. `SoundFormat 2 (MP3)`, `CodecID 4 (VP6)` or `FourCC "vp08"`.
        codec: String,
        /// The tag/message timestamp.
        timestamp_ms: u32,
    },
    /// A coded frame arrived before its sequence header; the frame is dropped.
    #[error("{kind:?} frame at {timestamp_ms} ms before its sequence header")]
    MissingConfig {
        /// Audio or video.
        kind: TrackKind,
        /// The tag/message timestamp.
        timestamp_ms: u32,
    },
    /// A sequence header could not be parsed.
    #[error("{codec:?} sequence header at {timestamp_ms} ms invalid: {source}")]
    Config {
        /// The codec the header is for.
        codec: Codec,
        /// The tag/message timestamp.
        timestamp_ms: u32,
        /// The parser's error.
        #[source]
        source: CodecError,
    },
    /// Script data (AMF0) is malformed.
    #[error("AMF0 script data invalid at byte {offset}: {what}")]
    Amf {
        /// Offset within the script data.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The writer was given a codec FLV cannot carry (or not Enhanced RTMP v1).
    #[error("codec {codec:?} cannot be written to FLV")]
    UnwritableCodec {
        /// The codec.
        codec: Codec,
    },
    /// The writer was given a frame for a track it was not created with.
    #[error("{kind:?} frame at dts {dts} but the writer has no {kind:?} track")]
    NoSuchTrack {
        /// Audio or video.
        kind: TrackKind,
        /// The frame's decode timestamp, in its timescale.
        dts: i64,
    },
    /// The writer was given a frame with a zero timescale.
    #[error("{kind:?} frame at dts {dts} has timescale 0")]
    ZeroTimescale {
        /// Audio or video.
        kind: TrackKind,
        /// The frame's decode timestamp.
        dts: i64,
    },
}

#[cfg(test)]
mod tests;
