//! AV1 RTP payload format ([AV1 RTP specification §4](https://aomediacodec.github.io/av1-rtp-spec/#4-payload-format)).
//!
//! The aggregation header (Z, Y, W, N) and OBU elements are undone, fragments are joined, and
//! the temporal unit is emitted as low-overhead OBUs with `obu_has_size_field = 1` (the form
//! ISO-BMFF AV1 samples carry, AV1-ISOBMFF §2.4). Temporal delimiters, tile lists and padding
//! OBUs are dropped. A sequence header OBU updates the config; a frame whose first frame header
//! has `frame_type = KEY_FRAME` (or any frame under a reduced still picture header) is a key frame.

use bytes::Bytes;

use super::{check_frame_limits, Assembled, PayloadDepacketizer, PayloadError, MAX_FRAME_BYTES};
use crate::codec::av1::{parse_obu, parse_sequence_header, read_leb128, OBU_SEQUENCE_HEADER};
use crate::codec::CodecConfig;

const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_METADATA: u8 = 5;
const OBU_FRAME: u8 = 6;
const OBU_TILE_LIST: u8 = 8;
const OBU_PADDING: u8 = 15;

/// Reassembles AV1 temporal units from RTP payloads.
#[derive(Debug, Default)]
pub(crate) struct Av1Depacketizer {
    /// The temporal unit so far: sized OBUs.
    out: Vec<u8>,
    units: usize,
    /// An OBU whose fragments are still arriving (Y=1 / Z=1).
    fragment: Option<Vec<u8>>,
    /// Key frame status of the first frame header of this temporal unit, once seen.
    keyframe: Option<bool>,
    reduced_still_picture_header: bool,
    config: Option<CodecConfig>,
}

/// The OBU elements of a payload after the aggregation header (AV1 RTP §4.4).
fn elements(payload: &[u8], count: u8) -> Result<Vec<&[u8]>, PayloadError> {
    let mut rest = &payload[1..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        if count != 0 && out.len() + 1 == usize::from(count) {
            out.push(rest);
            break;
        }
        let (len, n) = read_leb128(rest).ok_or(PayloadError::Truncated("OBU element length"))?;
        rest = &rest[n..];
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len == 0 || len > rest.len() {
            return Err(PayloadError::BadAggregationLength {
                declared: len,
                remaining: rest.len(),
            });
        }
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    if out.is_empty() || (count != 0 && out.len() != usize::from(count)) {
        return Err(PayloadError::BadAggregationLength {
            declared: usize::from(count),
            remaining: out.len(),
        });
    }
    Ok(out)
}

impl Av1Depacketizer {
    fn add_obu(&mut self, obu: &[u8]) -> Result<(), PayloadError> {
        let (parsed, _) = parse_obu(obu).map_err(PayloadError::Codec)?;
        match parsed.obu_type {
            OBU_TEMPORAL_DELIMITER | OBU_TILE_LIST | OBU_PADDING => return Ok(()),
            OBU_SEQUENCE_HEADER => {
                let (config, reduced) = parse_sequence_header(obu).map_err(PayloadError::Codec)?;
                self.reduced_still_picture_header = reduced;
                self.config = Some(CodecConfig::Av1(config));
            }
            OBU_FRAME_HEADER | OBU_FRAME if self.keyframe.is_none() => {
                let key = if self.reduced_still_picture_header {
                    true
                } else {
                    // show_existing_frame (1 bit), then frame_type (2 bits); KEY_FRAME = 0.
                    parsed
                        .payload
                        .first()
                        .is_some_and(|b| b & 0x80 == 0 && b & 0x60 == 0)
                };
                self.keyframe = Some(key);
            }
            _ => {}
        }
        check_frame_limits(self.out.len() + obu.len() + 8, self.units + 1)?;
        parsed.write_sized(&mut self.out);
        self.units += 1;
        Ok(())
    }
}

impl PayloadDepacketizer for Av1Depacketizer {
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        let Some(&header) = payload.first() else {
            return false;
        };
        if header & 0x80 != 0 {
            return false; // Z: continues a fragment
        }
        let Ok(elements) = elements(payload, (header >> 4) & 0x03) else {
            return false;
        };
        elements.first().and_then(|e| e.first()).is_some_and(|h| {
            matches!(
                (h >> 3) & 0x0f,
                OBU_SEQUENCE_HEADER
                    | OBU_TEMPORAL_DELIMITER
                    | OBU_FRAME_HEADER
                    | OBU_METADATA
                    | OBU_FRAME
            )
        })
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        let header = *payload
            .first()
            .ok_or(PayloadError::Truncated("aggregation header"))?;
        let (z, y, w) = (header & 0x80 != 0, header & 0x40 != 0, (header >> 4) & 0x03);
        match (z, self.fragment.is_some()) {
            (true, false) => {
                return Err(PayloadError::BadFragment(
                    "OBU fragment continues without a start",
                ))
            }
            (false, true) => {
                return Err(PayloadError::BadFragment("OBU fragment was not finished"))
            }
            _ => {}
        }
        let elements = elements(payload, w)?;
        let last = elements.len() - 1;
        for (i, element) in elements.into_iter().enumerate() {
            let mut obu = match (i, self.fragment.take()) {
                (0, Some(mut head)) => {
                    if head.len() + element.len() > MAX_FRAME_BYTES {
                        return Err(PayloadError::UnitTooLarge(head.len() + element.len()));
                    }
                    head.extend_from_slice(element);
                    head
                }
                _ => element.to_vec(),
            };
            if i == last && y {
                self.fragment = Some(std::mem::take(&mut obu));
            } else {
                self.add_obu(&obu)?;
            }
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.fragment.is_none()
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        if self.fragment.is_some() {
            return Err(PayloadError::BadFragment(
                "temporal unit ended inside an OBU fragment",
            ));
        }
        if self.out.is_empty() {
            self.reset();
            return Ok(None);
        }
        let data = Bytes::from(std::mem::take(&mut self.out));
        let keyframe = self.keyframe.unwrap_or(false);
        self.reset();
        Ok(Some(Assembled { data, keyframe }))
    }

    fn reset(&mut self) {
        self.out.clear();
        self.units = 0;
        self.fragment = None;
        self.keyframe = None;
    }

    fn config(&self) -> Option<&CodecConfig> {
        self.config.as_ref()
    }
}
