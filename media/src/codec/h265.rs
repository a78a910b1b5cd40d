//! H.265 configuration (ISO/IEC 14496-15 §8.3.3 HEVCDecoderConfigurationRecord, H.265 §7.3.3 profile_tier_level).

use bytes::Bytes;

/// H.265 parameter sets plus the fields `hvcC` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// `general_profile_space` (2 bits).
    pub profile_space: u8,
    /// `general_tier_flag`.
    pub tier_flag: bool,
    /// `general_profile_idc` (5 bits).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`.
    pub profile_compatibility_flags: u32,
    /// The 48 bits of general constraint indicator flags, in the low bits.
    pub constraint_indicator_flags: u64,
    /// `general_level_idc`.
    pub level_idc: u8,
    /// `chroma_format_idc` from the SPS.
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// Video parameter set NAL units (with NAL header, no start code).
    pub vps: Vec<Bytes>,
    /// Sequence parameter set NAL units.
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units.
    pub pps: Vec<Bytes>,
    /// Display width in pixels (after the conformance window).
    pub width: u16,
    /// Display height in pixels (after the conformance window).
    pub height: u16,
}
