//! VP9 RTP payload format ([RFC 9628 §4](https://www.rfc-editor.org/rfc/rfc9628#section-4)),
//! flexible and non-flexible mode.
//!
//! The payload descriptor (picture ID, layer indices, reference indices, scalability structure)
//! is stripped. The packets of one RTP timestamp form a picture; each layer frame runs from a
//! packet with B=1 to one with E=1. A picture of one layer frame is emitted as is (which may
//! itself be a superframe); a picture of several spatial layer frames is emitted as a VP9
//! superframe (VP9 spec Annex B) so that a decoder sees one sample.

use bytes::{BufMut, Bytes, BytesMut};

use super::{check_frame_limits, Assembled, PayloadDepacketizer, PayloadError};
use crate::codec::{CodecConfig, Vp9Config};

/// The VP9 payload descriptor fields depacketizing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// B: start of a layer frame.
    begin: bool,
    /// E: end of a layer frame.
    end: bool,
    /// Spatial layer ID (0 without layer indices).
    spatial_id: u8,
    /// Descriptor length in bytes.
    len: usize,
}

/// Parses the payload descriptor (RFC 9628 §4.2).
fn descriptor(payload: &[u8]) -> Result<Descriptor, PayloadError> {
    let truncated = || PayloadError::Truncated("VP9 payload descriptor");
    let b0 = *payload.first().ok_or_else(truncated)?;
    let (i, p, l, f, v) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
        b0 & 0x02 != 0,
    );
    let mut pos = 1;
    let byte = |pos: usize| payload.get(pos).copied().ok_or_else(truncated);
    if i {
        pos += if byte(pos)? & 0x80 != 0 { 2 } else { 1 };
    }
    let mut spatial_id = 0;
    if l {
        spatial_id = (byte(pos)? >> 1) & 0x07;
        pos += 1;
        if !f {
            pos += 1; // TL0PICIDX
        }
    }
    if f && p {
        // Up to 3 reference indices, each with N (another follows).
        let mut count = 0;
        loop {
            let b = byte(pos)?;
            pos += 1;
            count += 1;
            if b & 0x01 == 0 {
                break;
            }
            if count == 3 {
                return Err(PayloadError::BadFragment("more than 3 P_DIFF fields"));
            }
        }
    }
    if v {
        let ss = byte(pos)?;
        pos += 1;
        let layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            pos += 4 * layers; // WIDTH/HEIGHT per spatial layer
        }
        if ss & 0x08 != 0 {
            let pictures = byte(pos)?;
            pos += 1;
            for _ in 0..pictures {
                let refs = usize::from((byte(pos)? >> 2) & 0x03);
                pos += 1 + refs;
            }
        }
    }
    if payload.len() <= pos {
        return Err(truncated());
    }
    Ok(Descriptor {
        begin: b0 & 0x08 != 0,
        end: b0 & 0x04 != 0,
        spatial_id,
        len: pos,
    })
}

/// Reassembles VP9 pictures from RTP payloads.
#[derive(Debug, Default)]
pub(crate) struct Vp9Depacketizer {
    data: BytesMut,
    /// Start offset of each layer frame in `data`, and whether its E packet arrived.
    layers: Vec<(usize, bool)>,
    packets: usize,
    config: Option<CodecConfig>,
}

/// Appends a superframe index for frames of the given sizes (VP9 Annex B).
fn push_superframe_index(out: &mut BytesMut, sizes: &[usize]) {
    let max = sizes.iter().copied().max().unwrap_or(0);
    let mag = match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    };
    let marker = 0xc0 | ((mag - 1) << 3) as u8 | (sizes.len() - 1) as u8;
    out.put_u8(marker);
    for &size in sizes {
        out.put_slice(&(size as u32).to_le_bytes()[..mag]);
    }
    out.put_u8(marker);
}

impl PayloadDepacketizer for Vp9Depacketizer {
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        descriptor(payload).is_ok_and(|d| d.begin && d.spatial_id == 0)
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        let d = descriptor(payload)?;
        let open = self.layers.last().is_some_and(|&(_, ended)| !ended);
        match (d.begin, open) {
            (true, true) => {
                return Err(PayloadError::BadFragment(
                    "layer frame begins before the previous one ended",
                ))
            }
            (false, false) => {
                return Err(PayloadError::BadFragment(
                    "layer frame continues without a B packet",
                ))
            }
            (true, false) => {
                if self.layers.len() == 8 {
                    return Err(PayloadError::FrameTooLarge {
                        size: self.data.len(),
                        units: 9,
                    });
                }
                self.layers.push((self.data.len(), false));
            }
            (false, true) => {}
        }
        let body = &payload[d.len..];
        check_frame_limits(self.data.len() + body.len() + 34, self.packets + 1)?;
        self.data.put_slice(body);
        self.packets += 1;
        if d.end {
            if let Some(last) = self.layers.last_mut() {
                last.1 = true;
            }
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.layers.iter().all(|&(_, ended)| ended)
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        if self.layers.is_empty() {
            self.reset();
            return Ok(None);
        }
        let mut data = std::mem::take(&mut self.data);
        let starts: Vec<usize> = self.layers.iter().map(|&(s, _)| s).collect();
        let first_end = starts.get(1).copied().unwrap_or(data.len());
        let config = Vp9Config::from_keyframe(&data[..first_end]).map_err(PayloadError::Codec)?;
        if starts.len() > 1 {
            let sizes: Vec<usize> = starts
                .iter()
                .zip(starts.iter().skip(1).chain(std::iter::once(&data.len())))
                .map(|(&s, &e)| e - s)
                .collect();
            push_superframe_index(&mut data, &sizes);
        }
        self.reset();
        let keyframe = config.is_some();
        if let Some(config) = config {
            self.config = Some(CodecConfig::Vp9(config));
        }
        Ok(Some(Assembled {
            data: data.freeze(),
            keyframe,
        }))
    }

    fn reset(&mut self) {
        self.data.clear();
        self.layers.clear();
        self.packets = 0;
    }

    fn config(&self) -> Option<&CodecConfig> {
        self.config.as_ref()
    }
}
