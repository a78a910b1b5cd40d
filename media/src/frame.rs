//! The unit that flows between depacketizers, demuxers and writers.

use bytes::Bytes;

/// Which kind of track a frame or codec belongs to; a recording has at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

impl TrackKind {
    /// A short lowercase name, used in file names (`v`/`a`) and logs.
    pub fn prefix(self) -> &'static str {
        match self {
            TrackKind::Video => "v",
            TrackKind::Audio => "a",
        }
    }
}

/// One access unit (a video picture or an audio frame) with its timing.
///
/// `pts` and `dts` are in units of `1/timescale` seconds and may start anywhere; writers
/// rebase them. For H264/H265 `data` is AVCC form (4-byte big-endian NAL lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Video or audio.
    pub track: TrackKind,
    /// Presentation timestamp in `timescale` units.
    pub pts: i64,
    /// Decode timestamp in `timescale` units (equals `pts` when there is no reordering).
    pub dts: i64,
    /// Ticks per second for `pts` and `dts`.
    pub timescale: u32,
    /// True when a decoder can start at this frame (IDR/IRAP, VP8/VP9/AV1 key frame; always for audio).
    pub keyframe: bool,
    /// The coded payload.
    pub data: Bytes,
}

impl Frame {
    /// The decode time in seconds, for logs and segment decisions.
    pub fn dts_seconds(&self) -> f64 {
        self.dts as f64 / self.timescale.max(1) as f64
    }
}

/// What a depacketizer or demuxer hands on: a (new or changed) codec configuration, or a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The track's codec configuration became known or changed; it precedes the frames that use it.
    Config(crate::CodecConfig),
    /// A complete access unit.
    Frame(Frame),
}
