//! H.264 configuration (ISO/IEC 14496-15 §5.3.3 AVCDecoderConfigurationRecord, H.264 §7.3.2.1 SPS).
//!
//! Specs: [ITU-T H.264](https://www.itu.int/rec/T-REC-H.264) §7.3.2.1.1 (SPS syntax),
//! §7.4.2.1.1 (cropping semantics), §7.4.1 (emulation prevention); ISO/IEC 14496-15 §5.3.3.1
//! (the `avcC` record). The bit reader here is shared with the other codec parsers.

use bytes::Bytes;

use super::{Codec, CodecError};

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

/// The fields of an H.264 sequence parameter set that recording needs (H.264 §7.3.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcSpsInfo {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The constraint-flags byte.
    pub constraint_flags: u8,
    /// `level_idc`.
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub sps_id: u8,
    /// `chroma_format_idc` (1 = 4:2:0 when absent).
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// Width in pixels after the cropping rectangle.
    pub width: u16,
    /// Height in pixels after the cropping rectangle.
    pub height: u16,
}

const CODEC: Codec = Codec::H264;
/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
const NAL_PPS: u8 = 8;

fn truncated(what: &'static str) -> CodecError {
    CodecError::Truncated { codec: CODEC, what }
}

fn invalid(what: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        codec: CODEC,
        what: what.into(),
    }
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`, H.264 §7.4.1 / H.265 §7.4.2).
pub(crate) fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A big-endian bit reader over an RBSP, shared by the codec parsers; reads past the end return `None`.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// `n` bits (n ≤ 64) as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64);
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        if self.pos + n > self.data.len() * 8 {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// An Exp-Golomb `ue(v)`; `None` past the end or above 2^32 - 2.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        u32::try_from((1u64 << zeros) - 1 + rest).ok()
    }

    /// An Exp-Golomb `se(v)`.
    pub(crate) fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Parses an H.264 SPS NAL unit (with its 1-byte NAL header, no start code).
pub fn parse_sps(nal: &[u8]) -> Result<AvcSpsInfo, CodecError> {
    let first = *nal.first().ok_or(truncated("SPS NAL header"))?;
    if first & 0x1f != NAL_SPS {
        return Err(invalid(format!("NAL type {} is not an SPS", first & 0x1f)));
    }
    let rbsp = nal_to_rbsp(&nal[1..]);
    let t = || truncated("SPS");
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8).ok_or_else(t)? as u8;
    let constraint_flags = r.bits(8).ok_or_else(t)? as u8;
    let level_idc = r.bits(8).ok_or_else(t)? as u8;
    let sps_id = r.ue().ok_or_else(t)?;
    if sps_id > 31 {
        return Err(invalid(format!("seq_parameter_set_id {sps_id} > 31")));
    }
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue().ok_or_else(t)?;
        if chroma_format_idc > 3 {
            return Err(invalid(format!("chroma_format_idc {chroma_format_idc}")));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit().ok_or_else(t)?;
        }
        let luma = r.ue().ok_or_else(t)?;
        let chroma = r.ue().ok_or_else(t)?;
        if luma > 6 || chroma > 6 {
            return Err(invalid("bit depth above 14"));
        }
        bit_depth_luma = 8 + luma as u8;
        bit_depth_chroma = 8 + chroma as u8;
        r.bit().ok_or_else(t)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit().ok_or_else(t)? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit().ok_or_else(t)? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 }).ok_or_else(t)?;
                }
            }
        }
    }
    r.ue().ok_or_else(t)?; // log2_max_frame_num_minus4
    match r.ue().ok_or_else(t)? {
        0 => {
            r.ue().ok_or_else(t)?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit().ok_or_else(t)?; // delta_pic_order_always_zero_flag
            r.se().ok_or_else(t)?; // offset_for_non_ref_pic
            r.se().ok_or_else(t)?; // offset_for_top_to_bottom_field
            let cycle = r.ue().ok_or_else(t)?;
            if cycle > 255 {
                return Err(invalid("num_ref_frames_in_pic_order_cnt_cycle > 255"));
            }
            for _ in 0..cycle {
                r.se().ok_or_else(t)?;
            }
        }
        2 => {}
        other => return Err(invalid(format!("pic_order_cnt_type {other}"))),
    }
    r.ue().ok_or_else(t)?; // max_num_ref_frames
    r.bit().ok_or_else(t)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue().ok_or_else(t)?) + 1;
    let height_map_units = u64::from(r.ue().ok_or_else(t)?) + 1;
    let frame_mbs_only = r.bit().ok_or_else(t)?;
    if !frame_mbs_only {
        r.bit().ok_or_else(t)?; // mb_adaptive_frame_field_flag
    }
    r.bit().ok_or_else(t)?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.bit().ok_or_else(t)? {
        crop_l = r.ue().ok_or_else(t)?.into();
        crop_r = r.ue().ok_or_else(t)?.into();
        crop_t = r.ue().ok_or_else(t)?.into();
        crop_b = r.ue().ok_or_else(t)?.into();
    }
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let full_w = width_mbs * 16;
    let full_h = height_map_units * 16 * field_factor;
    let crop_w = crop_unit_x * (crop_l + crop_r);
    let crop_h = crop_unit_y * (crop_t + crop_b);
    if crop_w >= full_w || crop_h >= full_h {
        return Err(invalid("cropping rectangle larger than the picture"));
    }
    let width = u16::try_from(full_w - crop_w).map_err(|_| invalid("width above 65535"))?;
    let height = u16::try_from(full_h - crop_h).map_err(|_| invalid("height above 65535"))?;
    Ok(AvcSpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id: sps_id as u8,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    })
}

/// Skips a `scaling_list()` (H.264 §7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The `pic_parameter_set_id` of a PPS NAL unit (the first `ue(v)` after the NAL header).
pub(crate) fn pps_id(nal: &[u8]) -> Option<u32> {
    let rbsp = nal_to_rbsp(nal.get(1..)?);
    BitReader::new(&rbsp).ue()
}

/// Reads `lengthSizeMinusOne + 1` from an AVCDecoderConfigurationRecord: the NAL length size FLV/MP4 samples use.
pub fn record_length_size(record: &[u8]) -> Result<u8, CodecError> {
    if record.len() < 5 {
        return Err(truncated("AVCDecoderConfigurationRecord header"));
    }
    if record[0] != 1 {
        return Err(invalid(format!("configurationVersion {}", record[0])));
    }
    match (record[4] & 0x03) + 1 {
        3 => Err(invalid("lengthSizeMinusOne 2 (3-byte lengths)")),
        n => Ok(n),
    }
}

/// Whether the `avcC` record carries the chroma/bit-depth extension for this profile (14496-15 §5.3.3.1.2).
fn record_has_ext(profile: u8) -> bool {
    matches!(profile, 100 | 110 | 122 | 144)
}

impl AvcConfig {
    /// Builds the config from SPS and PPS NAL units; profile and size come from the first SPS.
    pub fn from_parameter_sets(sps: &[Bytes], pps: &[Bytes]) -> Result<AvcConfig, CodecError> {
        let first = sps.first().ok_or_else(|| invalid("no SPS"))?;
        if pps.is_empty() {
            return Err(invalid("no PPS"));
        }
        if sps.len() > 31 || pps.len() > 255 {
            return Err(invalid("too many parameter sets for avcC"));
        }
        if sps
            .iter()
            .chain(pps)
            .any(|p| p.len() > usize::from(u16::MAX))
        {
            return Err(invalid("parameter set longer than 65535 bytes"));
        }
        if let Some(p) = pps
            .iter()
            .find(|p| p.first().map(|b| b & 0x1f) != Some(NAL_PPS))
        {
            return Err(invalid(format!(
                "NAL {:?} is not a PPS",
                p.first().map(|b| b & 0x1f)
            )));
        }
        let info = parse_sps(first)?;
        Ok(AvcConfig {
            profile: info.profile_idc,
            compatibility: info.constraint_flags,
            level: info.level_idc,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            width: info.width,
            height: info.height,
        })
    }

    /// Parses an AVCDecoderConfigurationRecord (`avcC` body / FLV AVC sequence header).
    pub fn from_record(record: &[u8]) -> Result<AvcConfig, CodecError> {
        record_length_size(record)?;
        let mut pos = 5;
        let mut take = |n: usize, what: &'static str| -> Result<&[u8], CodecError> {
            let end = pos + n;
            let s = record.get(pos..end).ok_or(truncated(what))?;
            pos = end;
            Ok(s)
        };
        let num_sps = take(1, "SPS count")?[0] & 0x1f;
        let mut sps = Vec::with_capacity(num_sps.into());
        for _ in 0..num_sps {
            let len = take(2, "SPS length")?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            sps.push(Bytes::copy_from_slice(take(len, "SPS")?));
        }
        let num_pps = take(1, "PPS count")?[0];
        let mut pps = Vec::with_capacity(num_pps.into());
        for _ in 0..num_pps {
            let len = take(2, "PPS length")?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            pps.push(Bytes::copy_from_slice(take(len, "PPS")?));
        }
        let first = sps.first().ok_or_else(|| invalid("record holds no SPS"))?;
        let info = parse_sps(first)?;
        Ok(AvcConfig {
            profile: record[1],
            compatibility: record[2],
            level: record[3],
            sps,
            pps,
            width: info.width,
            height: info.height,
        })
    }

    /// Serialises an AVCDecoderConfigurationRecord with 4-byte NAL lengths (the form this crate's samples use).
    ///
    /// For the High profiles the chroma/bit-depth extension is written from the first SPS.
    pub fn to_record(&self) -> Vec<u8> {
        let mut out = vec![
            1,
            self.profile,
            self.compatibility,
            self.level,
            0xfc | 3,
            0xe0 | (self.sps.len().min(31) as u8),
        ];
        for sps in self.sps.iter().take(31) {
            push_u16_prefixed(&mut out, sps);
        }
        out.push(self.pps.len().min(255) as u8);
        for pps in self.pps.iter().take(255) {
            push_u16_prefixed(&mut out, pps);
        }
        if record_has_ext(self.profile) {
            let info = self.sps.first().and_then(|s| parse_sps(s).ok());
            let (chroma, luma, chroma_depth) = info
                .map(|i| (i.chroma_format_idc, i.bit_depth_luma, i.bit_depth_chroma))
                .unwrap_or((1, 8, 8));
            out.push(0xfc | (chroma & 3));
            out.push(0xf8 | (luma.saturating_sub(8) & 7));
            out.push(0xf8 | (chroma_depth.saturating_sub(8) & 7));
            out.push(0); // numOfSequenceParameterSetExt
        }
        out
    }
}

/// Appends a 16-bit big-endian length and the bytes (truncated to 65535, which the constructors rule out).
pub(crate) fn push_u16_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Splits an Annex B byte stream into NAL units (test helper shared with the RTP tests).
    pub(crate) fn annexb_nals(data: &[u8]) -> Vec<Bytes> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                starts.push(i + 3);
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut nals = Vec::new();
        for (n, &s) in starts.iter().enumerate() {
            let mut end = starts.get(n + 1).map(|&e| e - 3).unwrap_or(data.len());
            while end > s && data[end - 1] == 0 {
                end -= 1;
            }
            nals.push(Bytes::copy_from_slice(&data[s..end]));
        }
        nals
    }

    fn parameter_sets(stream: &[u8]) -> (Vec<Bytes>, Vec<Bytes>) {
        let nals = annexb_nals(stream);
        let of = |t: u8| -> Vec<Bytes> {
            nals.iter()
                .filter(|n| n[0] & 0x1f == t)
                .take(1)
                .cloned()
                .collect()
        };
        (of(NAL_SPS), of(NAL_PPS))
    }

    const BASELINE_320X240: &[u8] = include_bytes!("../../testdata/h264_320x240.h264");
    const HIGH_1080P: &[u8] = include_bytes!("../../testdata/h264_1920x1080_high.h264");

    #[test]
    fn a_320x240_baseline_sps_gives_320_by_240() {
        let (sps, pps) = parameter_sets(BASELINE_320X240);
        let config = AvcConfig::from_parameter_sets(&sps, &pps).unwrap();
        assert_eq!((config.width, config.height), (320, 240));
        assert_eq!(
            (config.profile, config.compatibility, config.level),
            (66, 0xc0, 13)
        );
    }

    #[test]
    fn a_1080p_high_sps_applies_the_cropping_rectangle() {
        let (sps, pps) = parameter_sets(HIGH_1080P);
        let info = parse_sps(&sps[0]).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(info.profile_idc, 100);
        assert_eq!((info.chroma_format_idc, info.bit_depth_luma), (1, 8));
        let config = AvcConfig::from_parameter_sets(&sps, &pps).unwrap();
        assert_eq!((config.width, config.height), (1920, 1080));
    }

    #[test]
    fn a_record_round_trips_through_to_record_and_from_record() {
        for stream in [BASELINE_320X240, HIGH_1080P] {
            let (sps, pps) = parameter_sets(stream);
            let config = AvcConfig::from_parameter_sets(&sps, &pps).unwrap();
            let record = config.to_record();
            assert_eq!(record_length_size(&record).unwrap(), 4);
            assert_eq!(AvcConfig::from_record(&record).unwrap(), config);
        }
    }

    #[test]
    fn a_high_profile_record_carries_the_chroma_extension() {
        let (sps, pps) = parameter_sets(HIGH_1080P);
        let record = AvcConfig::from_parameter_sets(&sps, &pps)
            .unwrap()
            .to_record();
        assert_eq!(&record[record.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            nal_to_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn truncated_records_and_sps_are_errors_not_panics() {
        let (sps, pps) = parameter_sets(HIGH_1080P);
        let record = AvcConfig::from_parameter_sets(&sps, &pps)
            .unwrap()
            .to_record();
        for len in 0..record.len() - 4 {
            assert!(AvcConfig::from_record(&record[..len]).is_err(), "len {len}");
        }
        for len in 0..sps[0].len() {
            let _ = parse_sps(&sps[0][..len]);
        }
        assert!(parse_sps(&[0x67]).is_err());
    }

    #[test]
    fn a_record_with_three_byte_lengths_is_rejected() {
        assert!(record_length_size(&[1, 66, 0, 13, 0xfe]).is_err());
        assert_eq!(record_length_size(&[1, 66, 0, 13, 0xff]).unwrap(), 4);
    }
}
