//! Opus RTP payload format ([RFC 7587 §4.2](https://www.rfc-editor.org/rfc/rfc7587#section-4.2)):
//! one Opus packet per RTP packet, timestamps at 48 kHz.
//!
//! Every packet is a frame and a sync point. The config is the one WebRTC implies
//! (`opus/48000/2`: two output channels, 312 samples of pre-skip).

use bytes::Bytes;

use super::{Assembled, PayloadDepacketizer, PayloadError};
use crate::codec::{CodecConfig, OpusConfig};

/// Passes Opus packets through.
#[derive(Debug)]
pub(crate) struct OpusDepacketizer {
    packet: Option<Bytes>,
    config: CodecConfig,
}

impl Default for OpusDepacketizer {
    fn default() -> Self {
        OpusDepacketizer {
            packet: None,
            config: CodecConfig::Opus(OpusConfig::webrtc(2)),
        }
    }
}

impl PayloadDepacketizer for OpusDepacketizer {
    fn is_frame_start(&self, _payload: &[u8]) -> bool {
        true
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        if payload.is_empty() {
            return Err(PayloadError::Truncated("Opus packet"));
        }
        if self.packet.is_some() {
            return Err(PayloadError::BadFragment(
                "two Opus packets with one timestamp",
            ));
        }
        self.packet = Some(payload.clone());
        Ok(())
    }

    fn is_complete(&self) -> bool {
        true
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        Ok(self.packet.take().map(|data| Assembled {
            data,
            keyframe: true,
        }))
    }

    fn reset(&mut self) {
        self.packet = None;
    }

    fn config(&self) -> Option<&CodecConfig> {
        Some(&self.config)
    }
}
