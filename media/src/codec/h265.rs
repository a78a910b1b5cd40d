//! H.265 configuration (ISO/IEC 14496-15 §8.3.3 HEVCDecoderConfigurationRecord, H.265 §7.3.3 profile_tier_level).
//!
//! Specs: [ITU-T H.265](https://www.itu.int/rec/T-REC-H.265) §7.3.2.2.1 (SPS syntax), §7.3.3
//! (profile_tier_level), §7.4.3.2.1 (conformance window); ISO/IEC 14496-15 §8.3.3.1 (`hvcC`).

use bytes::Bytes;

use super::h264::{nal_to_rbsp, push_u16_prefixed, BitReader};
use super::{Codec, CodecError};

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

/// The fields of an H.265 sequence parameter set that recording needs (H.265 §7.3.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSpsInfo {
    /// `general_profile_space`.
    pub profile_space: u8,
    /// `general_tier_flag`.
    pub tier_flag: bool,
    /// `general_profile_idc`.
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`.
    pub profile_compatibility_flags: u32,
    /// The 48 general constraint indicator bits.
    pub constraint_indicator_flags: u64,
    /// `general_level_idc`.
    pub level_idc: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// Width after the conformance window.
    pub width: u16,
    /// Height after the conformance window.
    pub height: u16,
}

const CODEC: Codec = Codec::H265;
/// NAL unit types of the parameter sets (H.265 Table 7-1).
pub(crate) const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub(crate) const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub(crate) const NAL_PPS: u8 = 34;

fn truncated(what: &'static str) -> CodecError {
    CodecError::Truncated { codec: CODEC, what }
}

fn invalid(what: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        codec: CODEC,
        what: what.into(),
    }
}

/// The NAL unit type of an H.265 NAL unit (6 bits after the forbidden bit).
pub(crate) fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// Parses an H.265 SPS NAL unit (with its 2-byte NAL header, no start code).
pub fn parse_sps(nal: &[u8]) -> Result<HevcSpsInfo, CodecError> {
    if nal.len() < 2 {
        return Err(truncated("SPS NAL header"));
    }
    if nal_type(nal) != Some(NAL_SPS) {
        return Err(invalid(format!(
            "NAL type {:?} is not an SPS",
            nal_type(nal)
        )));
    }
    let rbsp = nal_to_rbsp(&nal[2..]);
    let t = || truncated("SPS");
    let mut r = BitReader::new(&rbsp);
    r.bits(4).ok_or_else(t)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3).ok_or_else(t)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(invalid("sps_max_sub_layers_minus1 7"));
    }
    let temporal_id_nesting = r.bit().ok_or_else(t)?;
    // profile_tier_level(1, sps_max_sub_layers_minus1), §7.3.3.
    let profile_space = r.bits(2).ok_or_else(t)? as u8;
    let tier_flag = r.bit().ok_or_else(t)?;
    let profile_idc = r.bits(5).ok_or_else(t)? as u8;
    let profile_compatibility_flags = r.bits(32).ok_or_else(t)? as u32;
    let constraint_indicator_flags = r.bits(48).ok_or_else(t)?;
    let level_idc = r.bits(8).ok_or_else(t)? as u8;
    let mut sub_layer_flags = [(false, false); 8];
    for flags in sub_layer_flags
        .iter_mut()
        .take(max_sub_layers_minus1.into())
    {
        *flags = (r.bit().ok_or_else(t)?, r.bit().ok_or_else(t)?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - usize::from(max_sub_layers_minus1)))
            .ok_or_else(t)?;
    }
    for &(profile_present, level_present) in
        sub_layer_flags.iter().take(max_sub_layers_minus1.into())
    {
        if profile_present {
            r.skip(88).ok_or_else(t)?;
        }
        if level_present {
            r.skip(8).ok_or_else(t)?;
        }
    }
    let sps_id = r.ue().ok_or_else(t)?;
    if sps_id > 15 {
        return Err(invalid(format!("sps_seq_parameter_set_id {sps_id}")));
    }
    let chroma_format_idc = r.ue().ok_or_else(t)?;
    if chroma_format_idc > 3 {
        return Err(invalid(format!("chroma_format_idc {chroma_format_idc}")));
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.bit().ok_or_else(t)?;
    let full_w = u64::from(r.ue().ok_or_else(t)?);
    let full_h = u64::from(r.ue().ok_or_else(t)?);
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit().ok_or_else(t)? {
        left = r.ue().ok_or_else(t)?.into();
        right = r.ue().ok_or_else(t)?.into();
        top = r.ue().ok_or_else(t)?.into();
        bottom = r.ue().ok_or_else(t)?.into();
    }
    let luma = r.ue().ok_or_else(t)?;
    let chroma = r.ue().ok_or_else(t)?;
    if luma > 8 || chroma > 8 {
        return Err(invalid("bit depth above 16"));
    }
    let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let crop_w = sub_w * (left + right);
    let crop_h = sub_h * (top + bottom);
    if full_w == 0 || full_h == 0 || crop_w >= full_w || crop_h >= full_h {
        return Err(invalid("empty picture after the conformance window"));
    }
    let width = u16::try_from(full_w - crop_w).map_err(|_| invalid("width above 65535"))?;
    let height = u16::try_from(full_h - crop_h).map_err(|_| invalid("height above 65535"))?;
    Ok(HevcSpsInfo {
        profile_space,
        tier_flag,
        profile_idc,
        profile_compatibility_flags,
        constraint_indicator_flags,
        level_idc,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: 8 + luma as u8,
        bit_depth_chroma: 8 + chroma as u8,
        width,
        height,
    })
}

/// The `pps_pic_parameter_set_id` of a PPS NAL unit (the first `ue(v)` after the 2-byte header).
pub(crate) fn pps_id(nal: &[u8]) -> Option<u32> {
    let rbsp = nal_to_rbsp(nal.get(2..)?);
    BitReader::new(&rbsp).ue()
}

/// Reads `lengthSizeMinusOne + 1` from an HEVCDecoderConfigurationRecord.
pub fn record_length_size(record: &[u8]) -> Result<u8, CodecError> {
    if record.len() < 23 {
        return Err(truncated("HEVCDecoderConfigurationRecord header"));
    }
    if record[0] != 1 {
        return Err(invalid(format!("configurationVersion {}", record[0])));
    }
    match (record[21] & 0x03) + 1 {
        3 => Err(invalid("lengthSizeMinusOne 2 (3-byte lengths)")),
        n => Ok(n),
    }
}

impl HevcConfig {
    /// Builds the config from VPS, SPS and PPS NAL units; profile, size and format come from the first SPS.
    pub fn from_parameter_sets(
        vps: &[Bytes],
        sps: &[Bytes],
        pps: &[Bytes],
    ) -> Result<HevcConfig, CodecError> {
        let first = sps.first().ok_or_else(|| invalid("no SPS"))?;
        if vps.is_empty() || pps.is_empty() {
            return Err(invalid("no VPS or no PPS"));
        }
        for (list, want) in [(vps, NAL_VPS), (pps, NAL_PPS)] {
            if let Some(p) = list
                .iter()
                .find(|p| p.len() < 2 || nal_type(p) != Some(want))
            {
                return Err(invalid(format!(
                    "NAL type {:?} where {want} was expected",
                    nal_type(p)
                )));
            }
        }
        if vps
            .iter()
            .chain(sps)
            .chain(pps)
            .any(|p| p.len() > usize::from(u16::MAX))
        {
            return Err(invalid("parameter set longer than 65535 bytes"));
        }
        let info = parse_sps(first)?;
        Ok(HevcConfig {
            profile_space: info.profile_space,
            tier_flag: info.tier_flag,
            profile_idc: info.profile_idc,
            profile_compatibility_flags: info.profile_compatibility_flags,
            constraint_indicator_flags: info.constraint_indicator_flags,
            level_idc: info.level_idc,
            chroma_format_idc: info.chroma_format_idc,
            bit_depth_luma: info.bit_depth_luma,
            bit_depth_chroma: info.bit_depth_chroma,
            vps: vps.to_vec(),
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            width: info.width,
            height: info.height,
        })
    }

    /// Parses an HEVCDecoderConfigurationRecord (`hvcC` body / enhanced-RTMP HEVC sequence header).
    pub fn from_record(record: &[u8]) -> Result<HevcConfig, CodecError> {
        record_length_size(record)?;
        let mut pos = 22;
        let mut take = |n: usize, what: &'static str| -> Result<&[u8], CodecError> {
            let end = pos + n;
            let s = record.get(pos..end).ok_or(truncated(what))?;
            pos = end;
            Ok(s)
        };
        let arrays = take(1, "numOfArrays")?[0];
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..arrays {
            let kind = take(1, "array NAL type")?[0] & 0x3f;
            let n = take(2, "numNalus")?;
            let n = u16::from_be_bytes([n[0], n[1]]);
            for _ in 0..n {
                let len = take(2, "NAL length")?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let nal = Bytes::copy_from_slice(take(len, "NAL unit")?);
                match kind {
                    NAL_VPS => vps.push(nal),
                    NAL_SPS => sps.push(nal),
                    NAL_PPS => pps.push(nal),
                    _ => {} // SEI arrays are allowed and not needed here.
                }
            }
        }
        let first = sps.first().ok_or_else(|| invalid("record holds no SPS"))?;
        let info = parse_sps(first)?;
        let r = record;
        Ok(HevcConfig {
            profile_space: r[1] >> 6,
            tier_flag: r[1] & 0x20 != 0,
            profile_idc: r[1] & 0x1f,
            profile_compatibility_flags: u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
            constraint_indicator_flags: r[6..12]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            level_idc: r[12],
            chroma_format_idc: r[16] & 0x03,
            bit_depth_luma: (r[17] & 0x07) + 8,
            bit_depth_chroma: (r[18] & 0x07) + 8,
            vps,
            sps,
            pps,
            width: info.width,
            height: info.height,
        })
    }

    /// Serialises an HEVCDecoderConfigurationRecord with 4-byte NAL lengths and complete VPS/SPS/PPS arrays.
    pub fn to_record(&self) -> Vec<u8> {
        let info = self.sps.first().and_then(|s| parse_sps(s).ok());
        let (layers, nested) = info
            .map(|i| (i.max_sub_layers, i.temporal_id_nesting))
            .unwrap_or((0, false));
        let mut out = Vec::with_capacity(64);
        out.push(1);
        out.push(
            (self.profile_space & 3) << 6
                | u8::from(self.tier_flag) << 5
                | (self.profile_idc & 0x1f),
        );
        out.extend_from_slice(&self.profile_compatibility_flags.to_be_bytes());
        out.extend_from_slice(&self.constraint_indicator_flags.to_be_bytes()[2..]);
        out.push(self.level_idc);
        out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc = 0
        out.push(0xfc); // parallelismType = 0 (unknown)
        out.push(0xfc | (self.chroma_format_idc & 3));
        out.push(0xf8 | (self.bit_depth_luma.saturating_sub(8) & 7));
        out.push(0xf8 | (self.bit_depth_chroma.saturating_sub(8) & 7));
        out.extend_from_slice(&[0, 0]); // avgFrameRate unknown
        out.push((layers & 7) << 3 | u8::from(nested) << 2 | 3);
        let arrays = [
            (NAL_VPS, &self.vps),
            (NAL_SPS, &self.sps),
            (NAL_PPS, &self.pps),
        ];
        out.push(arrays.iter().filter(|(_, l)| !l.is_empty()).count() as u8);
        for (kind, list) in arrays {
            if list.is_empty() {
                continue;
            }
            out.push(0x80 | kind); // array_completeness = 1
            let list = &list[..list.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(list.len() as u16).to_be_bytes());
            for nal in list {
                push_u16_prefixed(&mut out, nal);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h264::tests::annexb_nals;

    const MAIN_320X240: &[u8] = include_bytes!("../../testdata/h265_320x240.h265");
    const MAIN10_1080P: &[u8] = include_bytes!("../../testdata/h265_1920x1080_main10.h265");

    fn config(stream: &[u8]) -> HevcConfig {
        let nals = annexb_nals(stream);
        let of = |t: u8| -> Vec<Bytes> {
            nals.iter()
                .filter(|n| nal_type(n) == Some(t))
                .take(1)
                .cloned()
                .collect()
        };
        HevcConfig::from_parameter_sets(&of(NAL_VPS), &of(NAL_SPS), &of(NAL_PPS)).unwrap()
    }

    #[test]
    fn a_320x240_main_sps_gives_320_by_240_8_bit_420() {
        let c = config(MAIN_320X240);
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(
            (c.profile_idc, c.chroma_format_idc, c.bit_depth_luma),
            (1, 1, 8)
        );
        assert!(c.profile_compatibility_flags & (1 << 30) != 0);
    }

    #[test]
    fn a_1080p_main10_sps_applies_the_conformance_window() {
        let c = config(MAIN10_1080P);
        assert_eq!((c.width, c.height), (1920, 1080));
        assert_eq!(
            (c.profile_idc, c.bit_depth_luma, c.bit_depth_chroma),
            (2, 10, 10)
        );
    }

    #[test]
    fn a_record_round_trips_through_to_record_and_from_record() {
        for stream in [MAIN_320X240, MAIN10_1080P] {
            let c = config(stream);
            let record = c.to_record();
            assert_eq!(record_length_size(&record).unwrap(), 4);
            assert_eq!(HevcConfig::from_record(&record).unwrap(), c);
        }
    }

    #[test]
    fn the_record_matches_what_ffmpeg_writes_for_the_profile_fields() {
        let c = config(MAIN_320X240);
        let record = c.to_record();
        // general_profile_space 0, tier 0, profile 1; level from the SPS.
        assert_eq!(record[1], 0x01);
        assert_eq!(record[12], c.level_idc);
        assert_eq!(record[21], 0x0f); // 1 temporal layer, nested, 4-byte lengths
    }

    #[test]
    fn truncated_records_and_sps_are_errors_not_panics() {
        let c = config(MAIN10_1080P);
        let record = c.to_record();
        for len in 0..record.len() {
            assert!(
                HevcConfig::from_record(&record[..len]).is_err(),
                "len {len}"
            );
        }
        for len in 0..c.sps[0].len() {
            let _ = parse_sps(&c.sps[0][..len]);
        }
    }
}
