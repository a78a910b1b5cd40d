//! Opus configuration (RFC 7845 §5.1 identification header; Opus-in-ISOBMFF `dOps`).

/// The Opus identification header fields that `dOps` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    /// Output channel count (1 or 2 for mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) to discard from the decoder output at the start.
    pub pre_skip: u16,
    /// The input sample rate the encoder saw (informational).
    pub input_sample_rate: u32,
    /// Output gain in Q7.8 dB.
    pub output_gain: i16,
}

impl OpusConfig {
    /// The config WebRTC implies: 48 kHz, `channels` channels, the usual 312-sample pre-skip.
    pub fn webrtc(channels: u8) -> Self {
        OpusConfig {
            channels,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
        }
    }
}
