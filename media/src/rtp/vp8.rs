//! VP8 RTP payload format ([RFC 7741 §4](https://www.rfc-editor.org/rfc/rfc7741#section-4)).
//!
//! The payload descriptor is stripped and the partitions of one timestamp concatenated into the
//! raw frame. A frame starts at a packet with S=1 and partition index 0.

use bytes::{BufMut, Bytes, BytesMut};

use super::{check_frame_limits, Assembled, PayloadDepacketizer, PayloadError};
use crate::codec::vp8::is_keyframe;
use crate::codec::{Codec, CodecConfig, CodecError, Vp8Config};

/// The VP8 payload descriptor fields depacketizing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// S: start of a VP8 partition.
    start: bool,
    /// PID: partition index.
    partition: u8,
    /// Descriptor length in bytes.
    len: usize,
}

/// Parses the payload descriptor (RFC 7741 §4.2).
fn descriptor(payload: &[u8]) -> Result<Descriptor, PayloadError> {
    let truncated = PayloadError::Truncated("VP8 payload descriptor");
    let b0 = *payload.first().ok_or(truncated.clone())?;
    let mut len = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(1).ok_or(truncated.clone())?;
        len = 2;
        if x & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits (M bit).
            let pid = *payload.get(len).ok_or(truncated.clone())?;
            len += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // T/K: TID/Y/KEYIDX
        }
    }
    if payload.len() <= len {
        return Err(truncated);
    }
    Ok(Descriptor {
        start: b0 & 0x10 != 0,
        partition: b0 & 0x07,
        len,
    })
}

/// Reassembles VP8 frames from RTP payloads.
#[derive(Debug, Default)]
pub(crate) struct Vp8Depacketizer {
    frame: BytesMut,
    packets: usize,
    config: Option<CodecConfig>,
}

impl PayloadDepacketizer for Vp8Depacketizer {
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        descriptor(payload).is_ok_and(|d| d.start && d.partition == 0)
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        let d = descriptor(payload)?;
        if self.frame.is_empty() && !(d.start && d.partition == 0) {
            return Err(PayloadError::BadFragment(
                "frame does not start with S=1 and partition 0",
            ));
        }
        let data = &payload[d.len..];
        check_frame_limits(self.frame.len() + data.len(), self.packets + 1)?;
        self.frame.put_slice(data);
        self.packets += 1;
        Ok(())
    }

    fn is_complete(&self) -> bool {
        true
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        if self.frame.is_empty() {
            return Ok(None);
        }
        let data = std::mem::take(&mut self.frame).freeze();
        self.packets = 0;
        let keyframe = is_keyframe(&data);
        if keyframe {
            let config = Vp8Config::from_keyframe(&data).ok_or_else(|| {
                PayloadError::Codec(CodecError::Invalid {
                    codec: Codec::Vp8,
                    what: "key frame header without start code or size".into(),
                })
            })?;
            self.config = Some(CodecConfig::Vp8(config));
        }
        Ok(Some(Assembled { data, keyframe }))
    }

    fn reset(&mut self) {
        self.frame.clear();
        self.packets = 0;
    }

    fn config(&self) -> Option<&CodecConfig> {
        self.config.as_ref()
    }
}
