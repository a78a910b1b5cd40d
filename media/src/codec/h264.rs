//! H.264 configuration (ISO/IEC 14496-15 §5.3.3 AVCDecoderConfigurationRecord, H.264 §7.3.2.1 SPS).

use bytes::Bytes;

/// H.264 parameter sets plus the fields `avcC` and the FLV sequence header need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `profile_idc` from the SPS.
    pub profile: u8,
    /// The constraint-flags byte from the SPS (`profile_compatibility`).
    pub compatibility: u8,
    /// `level_idc` from the SPS.
    pub level: u8,
    /// Sequence parameter set NAL units (with NAL header, no start code).
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units (with NAL header, no start code).
    pub pps: Vec<Bytes>,
    /// Display width in pixels (after cropping).
    pub width: u16,
    /// Display height in pixels (after cropping).
    pub height: u16,
}
