//! AAC configuration (ISO/IEC 14496-3 §1.6.2.1 AudioSpecificConfig).

use bytes::Bytes;

/// An AudioSpecificConfig and the fields parsed out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The raw AudioSpecificConfig, as carried in `esds` and the FLV AAC sequence header.
    pub asc: Bytes,
    /// `audioObjectType` (2 = AAC-LC).
    pub object_type: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// Channel count (from `channelConfiguration`).
    pub channels: u8,
}
