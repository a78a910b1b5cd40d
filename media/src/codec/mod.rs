//! Typed codec configuration, one module per codec.
//!
//! Each config is what a container needs to describe a track: the fMP4 sample entry
//! (`avcC`, `hvcC`, `vpcC`, `av1C`, `esds`, `dOps`) and the FLV sequence header are
//! built from these structs. Parsers take bitstream bytes (parameter sets, decoder
//! configuration records, key frame headers) and never panic on bad input.

pub mod aac;
pub mod av1;
pub mod h264;
pub mod h265;
pub mod opus;
pub mod vp8;
pub mod vp9;

pub use aac::AacConfig;
pub use av1::Av1Config;
pub use h264::AvcConfig;
pub use h265::HevcConfig;
pub use opus::OpusConfig;
pub use vp8::Vp8Config;
pub use vp9::Vp9Config;

use crate::TrackKind;

/// The codecs recnode records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// AV1.
    Av1,
    /// AAC (MPEG-4 audio).
    Aac,
    /// Opus.
    Opus,
}

impl Codec {
    /// Whether this is a video or an audio codec.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::Aac | Codec::Opus => TrackKind::Audio,
            _ => TrackKind::Video,
        }
    }

    /// The lowercase name used in session.json, hooks and logs.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
            Codec::Aac => "aac",
            Codec::Opus => "opus",
        }
    }
}

/// A track's codec and everything a container needs to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecConfig {
    /// H.264 parameter sets and profile.
    H264(AvcConfig),
    /// H.265 parameter sets and profile.
    H265(HevcConfig),
    /// VP8 frame size.
    Vp8(Vp8Config),
    /// VP9 profile, bit depth, chroma and size.
    Vp9(Vp9Config),
    /// AV1 sequence header and what `av1C` needs.
    Av1(Av1Config),
    /// AAC AudioSpecificConfig.
    Aac(AacConfig),
    /// The Opus identification header.
    Opus(OpusConfig),
}

impl CodecConfig {
    /// The codec this config describes.
    pub fn codec(&self) -> Codec {
        match self {
            CodecConfig::H264(_) => Codec::H264,
            CodecConfig::H265(_) => Codec::H265,
            CodecConfig::Vp8(_) => Codec::Vp8,
            CodecConfig::Vp9(_) => Codec::Vp9,
            CodecConfig::Av1(_) => Codec::Av1,
            CodecConfig::Aac(_) => Codec::Aac,
            CodecConfig::Opus(_) => Codec::Opus,
        }
    }

    /// Video or audio.
    pub fn kind(&self) -> TrackKind {
        self.codec().kind()
    }
}

/// Why a codec configuration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended before a required field.
    #[error("{codec:?} config truncated: {what}")]
    Truncated {
        /// The codec being parsed.
        codec: Codec,
        /// Which structure was cut short.
        what: &'static str,
    },
    /// A field holds a value the spec does not allow, or we do not support.
    #[error("{codec:?} config invalid: {what}")]
    Invalid {
        /// The codec being parsed.
        codec: Codec,
        /// What was wrong.
        what: String,
    },
}
