//! AV1 configuration (AV1 spec §5.5 sequence header OBU; AV1 ISO-BMFF binding §2.3 `av1C`).

use bytes::Bytes;

/// What an `av01` sample entry and its `av1C` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    /// `seq_profile`.
    pub seq_profile: u8,
    /// `seq_level_idx[0]`.
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]`.
    pub seq_tier_0: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// The sequence header OBU, as `av1C` configOBUs carries it.
    pub sequence_header: Bytes,
    /// `max_frame_width_minus_1 + 1`.
    pub width: u16,
    /// `max_frame_height_minus_1 + 1`.
    pub height: u16,
}
