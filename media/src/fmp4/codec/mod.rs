//! One `stsd` sample entry builder per codec (ISO/IEC 14496-12 §8.5.2, with each codec's binding).

mod aac;
mod av1;
mod h264;
mod h265;
mod opus;
mod vp8;
mod vp9;

use crate::CodecConfig;
use mp4_atom::{Codec as SampleEntry, FixedPoint, Visual};

/// The sample entry for `config`, as `stsd` carries it.
pub(crate) fn sample_entry(config: &CodecConfig) -> SampleEntry {
    match config {
        CodecConfig::H264(c) => h264::sample_entry(c),
        CodecConfig::H265(c) => h265::sample_entry(c),
        CodecConfig::Vp8(c) => vp8::sample_entry(c),
        CodecConfig::Vp9(c) => vp9::sample_entry(c),
        CodecConfig::Av1(c) => av1::sample_entry(c),
        CodecConfig::Aac(c) => aac::sample_entry(c),
        CodecConfig::Opus(c) => opus::sample_entry(c),
    }
}

/// The timescale a track of this codec is written in: 90 kHz for video, the sample rate for audio.
pub(crate) fn timescale(config: &CodecConfig) -> u32 {
    match config {
        CodecConfig::Aac(c) if c.sample_rate > 0 => c.sample_rate,
        CodecConfig::Aac(_) => 48_000,
        CodecConfig::Opus(_) => 48_000,
        _ => 90_000,
    }
}

/// The picture size, for `tkhd` and the visual sample entry; (0, 0) for audio.
pub(crate) fn dimensions(config: &CodecConfig) -> (u16, u16) {
    match config {
        CodecConfig::H264(c) => (c.width, c.height),
        CodecConfig::H265(c) => (c.width, c.height),
        CodecConfig::Vp8(c) => (c.width, c.height),
        CodecConfig::Vp9(c) => (c.width, c.height),
        CodecConfig::Av1(c) => (c.width, c.height),
        CodecConfig::Aac(_) | CodecConfig::Opus(_) => (0, 0),
    }
}

/// The common visual sample entry fields (ISO/IEC 14496-12 §12.1.3).
fn visual(width: u16, height: u16) -> Visual {
    Visual {
        data_reference_index: 1,
        width,
        height,
        ..Default::default()
    }
}

/// The common audio sample entry fields (ISO/IEC 14496-12 §12.2.3); rates above 65535 Hz are written as 0.
fn audio(channels: u8, sample_rate: u32) -> mp4_atom::Audio {
    mp4_atom::Audio {
        data_reference_index: 1,
        channel_count: u16::from(channels.max(1)),
        sample_size: 16,
        sample_rate: FixedPoint::new(u16::try_from(sample_rate).unwrap_or(0), 0),
    }
}
