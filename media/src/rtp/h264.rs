//! H.264 RTP payload format, non-interleaved mode ([RFC 6184 §5.6–5.8](https://www.rfc-editor.org/rfc/rfc6184#section-5.6)):
//! single NAL unit packets, STAP-A and FU-A.
//!
//! Output is AVCC: each NAL unit prefixed by its 4-byte big-endian length. In-band SPS/PPS stay
//! in the frame; access unit delimiters and filler data are dropped. STAP-B, MTAP and FU-B
//! (interleaved mode) are rejected as unsupported.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::nal::{for_each_aggregated, AccessUnit, Fragments};
use super::{Assembled, PayloadDepacketizer, PayloadError, MAX_FRAME_BYTES};
use crate::codec::h264::pps_id;
use crate::codec::{AvcConfig, CodecConfig};

const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Reassembles H.264 access units from RTP payloads.
#[derive(Debug, Default)]
pub(crate) struct H264Depacketizer {
    /// The access unit so far, in AVCC form.
    unit: AccessUnit,
    /// The NAL unit an FU-A sequence is rebuilding.
    fu: Fragments,
    /// Parameter sets seen in the current access unit.
    new_sps: Option<Bytes>,
    new_pps: Vec<(u32, Bytes)>,
    /// The parameter sets in force.
    sps: Option<Bytes>,
    pps: BTreeMap<u32, Bytes>,
    config: Option<CodecConfig>,
}

/// Whether a slice's `first_mb_in_slice` is 0 (its `ue(v)` is the single bit `1`).
fn first_slice(slice_data: &[u8]) -> bool {
    slice_data.first().is_some_and(|b| b & 0x80 != 0)
}

/// Whether a NAL unit (given its type and the bytes after its header) can open an access unit.
fn starts_access_unit(nal_type: u8, rest: &[u8]) -> bool {
    match nal_type {
        1..=5 => first_slice(rest),
        NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD => true,
        _ => false,
    }
}

impl H264Depacketizer {
    fn add_nal(&mut self, nal: &[u8]) -> Result<(), PayloadError> {
        let Some(&header) = nal.first() else {
            return Err(PayloadError::BadAggregationLength {
                declared: 0,
                remaining: 0,
            });
        };
        if nal.len() > MAX_FRAME_BYTES {
            return Err(PayloadError::UnitTooLarge(nal.len()));
        }
        let nal_type = header & 0x1f;
        match nal_type {
            NAL_AUD | NAL_FILLER => return Ok(()),
            NAL_SPS => self.new_sps = Some(Bytes::copy_from_slice(nal)),
            NAL_PPS => {
                if let Some(id) = pps_id(nal).filter(|&id| id <= 255) {
                    self.new_pps.push((id, Bytes::copy_from_slice(nal)));
                }
            }
            _ => {}
        }
        self.unit
            .append(nal, (1..=5).contains(&nal_type), nal_type == NAL_IDR)
    }

    fn push_fu_a(&mut self, payload: &[u8]) -> Result<(), PayloadError> {
        if payload.len() < 2 {
            return Err(PayloadError::Truncated("FU-A header"));
        }
        let (indicator, header) = (payload[0], payload[1]);
        let nal_header = [(indicator & 0xe0) | (header & 0x1f)];
        let (start, end) = (header & 0x80 != 0, header & 0x40 != 0);
        match self.fu.push(start, end, &nal_header, &payload[2..])? {
            Some(nal) => self.add_nal(&nal),
            None => Ok(()),
        }
    }

    /// Applies the parameter sets of the finished access unit; rebuilds the config on change.
    fn update_config(&mut self) -> Result<(), PayloadError> {
        let mut changed = false;
        if let Some(sps) = self.new_sps.take() {
            changed |= self.sps.as_ref() != Some(&sps);
            self.sps = Some(sps);
        }
        for (id, pps) in self.new_pps.drain(..) {
            changed |= self.pps.get(&id) != Some(&pps);
            self.pps.insert(id, pps);
        }
        if changed || self.config.is_none() {
            if let Some(sps) = &self.sps {
                if !self.pps.is_empty() {
                    let pps: Vec<Bytes> = self.pps.values().cloned().collect();
                    let config = AvcConfig::from_parameter_sets(std::slice::from_ref(sps), &pps)
                        .map_err(|e| {
                            // A bad SPS must not stay in force.
                            self.sps = None;
                            PayloadError::Codec(e)
                        })?;
                    self.config = Some(CodecConfig::H264(config));
                }
            }
        }
        Ok(())
    }
}

impl PayloadDepacketizer for H264Depacketizer {
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        let Some(&b0) = payload.first() else {
            return false;
        };
        match b0 & 0x1f {
            STAP_A => payload
                .get(3)
                .is_some_and(|&h| starts_access_unit(h & 0x1f, payload.get(4..).unwrap_or(&[]))),
            FU_A => payload.get(1).is_some_and(|&h| {
                h & 0x80 != 0 && starts_access_unit(h & 0x1f, payload.get(2..).unwrap_or(&[]))
            }),
            t => starts_access_unit(t, &payload[1..]),
        }
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        let Some(&b0) = payload.first() else {
            return Err(PayloadError::Truncated("payload"));
        };
        let packet_type = b0 & 0x1f;
        if packet_type != FU_A && self.fu.is_open() {
            return Err(PayloadError::BadFragment(
                "FU-A not ended before the next NAL unit",
            ));
        }
        match packet_type {
            1..=23 => self.add_nal(payload),
            STAP_A => for_each_aggregated(&payload[1..], 1, |nal| self.add_nal(nal)),
            FU_A => self.push_fu_a(payload),
            t => Err(PayloadError::UnsupportedPacketType(t)),
        }
    }

    fn is_complete(&self) -> bool {
        !self.fu.is_open()
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        if self.fu.is_open() {
            return Err(PayloadError::BadFragment(
                "access unit ended inside an FU-A (truncated FU-A)",
            ));
        }
        self.update_config()?;
        let Some(assembled) = self.unit.take() else {
            return Ok(None);
        };
        self.reset();
        Ok(Some(assembled))
    }

    fn reset(&mut self) {
        self.unit.clear();
        self.fu.clear();
        self.new_sps = None;
        self.new_pps.clear();
    }

    fn config(&self) -> Option<&CodecConfig> {
        self.config.as_ref()
    }
}
