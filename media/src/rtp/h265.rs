//! H.265 RTP payload format ([RFC 7798 §4.4](https://www.rfc-editor.org/rfc/rfc7798#section-4.4)):
//! single NAL unit packets, aggregation packets (AP), fragmentation units (FU) and PACI packets.
//!
//! Output is AVCC-style: each NAL unit prefixed by its 4-byte big-endian length (what `hvcC`
//! with `lengthSizeMinusOne = 3` expects). In-band VPS/SPS/PPS stay in the frame; access unit
//! delimiters and filler data are dropped. DONL/DOND fields are not supported: the session must
//! not negotiate `sprop-max-don-diff > 0` (WebRTC and RTSP cameras do not).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::nal::{for_each_aggregated, AccessUnit, Fragments};
use super::{Assembled, PayloadDepacketizer, PayloadError, MAX_FRAME_BYTES};
use crate::codec::h265::{nal_type, pps_id, NAL_PPS, NAL_SPS, NAL_VPS};
use crate::codec::{CodecConfig, HevcConfig};

const NAL_AUD: u8 = 35;
const NAL_FD: u8 = 38;
const NAL_PREFIX_SEI: u8 = 39;
const AP: u8 = 48;
const FU: u8 = 49;
const PACI: u8 = 50;

/// Reassembles H.265 access units from RTP payloads.
#[derive(Debug, Default)]
pub(crate) struct H265Depacketizer {
    /// The access unit so far, in AVCC form.
    unit: AccessUnit,
    /// The NAL unit an FU sequence is rebuilding.
    fu: Fragments,
    new_vps: Option<Bytes>,
    new_sps: Option<Bytes>,
    new_pps: Vec<(u32, Bytes)>,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: BTreeMap<u32, Bytes>,
    config: Option<CodecConfig>,
}

/// Whether a NAL unit (its type and the bytes after its 2-byte header) can open an access unit.
fn starts_access_unit(nal_type: u8, rest: &[u8]) -> bool {
    match nal_type {
        // first_slice_segment_in_pic_flag is the first bit of a slice segment header.
        0..=31 => rest.first().is_some_and(|b| b & 0x80 != 0),
        NAL_VPS | NAL_SPS | NAL_PPS | NAL_AUD | NAL_PREFIX_SEI => true,
        _ => false,
    }
}

/// For a PACI packet, the payload it carries with the PACI header replaced by a plain payload header.
fn unwrap_paci(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
    if payload.len() < 4 {
        return Err(PayloadError::Truncated("PACI header"));
    }
    let ctype = (payload[2] >> 1) & 0x3f;
    let phs_size = usize::from(((payload[2] & 1) << 4) | (payload[3] >> 4));
    let body = payload
        .get(4 + phs_size..)
        .ok_or(PayloadError::Truncated("PACI header extensions"))?;
    if ctype == PACI {
        return Err(PayloadError::UnsupportedPacketType(PACI));
    }
    let mut inner = Vec::with_capacity(2 + body.len());
    inner.push((payload[0] & 0x81) | (ctype << 1));
    inner.push(payload[1]);
    inner.extend_from_slice(body);
    Ok(inner)
}

impl H265Depacketizer {
    fn add_nal(&mut self, nal: &[u8]) -> Result<(), PayloadError> {
        if nal.len() < 2 {
            return Err(PayloadError::BadAggregationLength {
                declared: nal.len(),
                remaining: nal.len(),
            });
        }
        if nal.len() > MAX_FRAME_BYTES {
            return Err(PayloadError::UnitTooLarge(nal.len()));
        }
        // Length checked just above.
        let t = nal_type(nal).unwrap_or_default();
        match t {
            NAL_AUD | NAL_FD => return Ok(()),
            NAL_VPS => self.new_vps = Some(Bytes::copy_from_slice(nal)),
            NAL_SPS => self.new_sps = Some(Bytes::copy_from_slice(nal)),
            NAL_PPS => {
                if let Some(id) = pps_id(nal).filter(|&id| id <= 63) {
                    self.new_pps.push((id, Bytes::copy_from_slice(nal)));
                }
            }
            _ => {}
        }
        self.unit.append(nal, t <= 31, (16..=23).contains(&t))
    }

    fn push_fu(&mut self, payload: &[u8]) -> Result<(), PayloadError> {
        if payload.len() < 3 {
            return Err(PayloadError::Truncated("FU header"));
        }
        let header = payload[2];
        let nal_header = [(payload[0] & 0x81) | ((header & 0x3f) << 1), payload[1]];
        let (start, end) = (header & 0x80 != 0, header & 0x40 != 0);
        match self.fu.push(start, end, &nal_header, &payload[3..])? {
            Some(nal) => self.add_nal(&nal),
            None => Ok(()),
        }
    }

    fn push_inner(&mut self, payload: &[u8], allow_paci: bool) -> Result<(), PayloadError> {
        if payload.len() < 2 {
            return Err(PayloadError::Truncated("payload header"));
        }
        if payload[0] & 0x80 != 0 {
            return Err(PayloadError::BadFragment("forbidden_zero_bit set"));
        }
        let t = (payload[0] >> 1) & 0x3f;
        if t != FU && self.fu.is_open() {
            return Err(PayloadError::BadFragment(
                "FU not ended before the next NAL unit",
            ));
        }
        match t {
            0..=47 => self.add_nal(payload),
            AP => for_each_aggregated(&payload[2..], 2, |nal| self.add_nal(nal)),
            FU => self.push_fu(payload),
            PACI if allow_paci => {
                let inner = unwrap_paci(payload)?;
                self.push_inner(&inner, false)
            }
            t => Err(PayloadError::UnsupportedPacketType(t)),
        }
    }

    fn update_config(&mut self) -> Result<(), PayloadError> {
        let mut changed = false;
        for (new, cur) in [
            (self.new_vps.take(), &mut self.vps),
            (self.new_sps.take(), &mut self.sps),
        ] {
            if let Some(new) = new {
                changed |= cur.as_ref() != Some(&new);
                *cur = Some(new);
            }
        }
        for (id, pps) in self.new_pps.drain(..) {
            changed |= self.pps.get(&id) != Some(&pps);
            self.pps.insert(id, pps);
        }
        if changed || self.config.is_none() {
            if let (Some(vps), Some(sps)) = (&self.vps, &self.sps) {
                if !self.pps.is_empty() {
                    let pps: Vec<Bytes> = self.pps.values().cloned().collect();
                    match HevcConfig::from_parameter_sets(
                        std::slice::from_ref(vps),
                        std::slice::from_ref(sps),
                        &pps,
                    ) {
                        Ok(config) => self.config = Some(CodecConfig::H265(config)),
                        Err(e) => {
                            self.sps = None;
                            return Err(PayloadError::Codec(e));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl PayloadDepacketizer for H265Depacketizer {
    fn is_frame_start(&self, payload: &[u8]) -> bool {
        if payload.len() < 3 {
            return false;
        }
        match (payload[0] >> 1) & 0x3f {
            AP => payload.len() >= 7 && starts_access_unit((payload[4] >> 1) & 0x3f, &payload[6..]),
            FU => {
                payload[2] & 0x80 != 0
                    && starts_access_unit(payload[2] & 0x3f, payload.get(3..).unwrap_or(&[]))
            }
            PACI => unwrap_paci(payload)
                .map(|inner| (inner[0] >> 1) & 0x3f != PACI && self.is_frame_start(&inner))
                .unwrap_or(false),
            t => starts_access_unit(t, &payload[2..]),
        }
    }

    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError> {
        self.push_inner(payload, true)
    }

    fn is_complete(&self) -> bool {
        !self.fu.is_open()
    }

    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError> {
        if self.fu.is_open() {
            return Err(PayloadError::BadFragment(
                "access unit ended inside an FU (truncated FU)",
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
        self.new_vps = None;
        self.new_sps = None;
        self.new_pps.clear();
    }

    fn config(&self) -> Option<&CodecConfig> {
        self.config.as_ref()
    }
}
