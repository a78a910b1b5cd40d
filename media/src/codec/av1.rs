//! AV1 configuration (AV1 spec §5.5 sequence header OBU; AV1 ISO-BMFF binding §2.3 `av1C`).
//!
//! Specs: [AV1 Bitstream & Decoding Process Specification](https://aomediacodec.github.io/av1-spec/)
//! §5.3 (OBU header), §5.5 (sequence_header_obu), §5.5.2 (color_config), §4.10.5 (leb128);
//! [AV1 Codec ISO Media File Format Binding](https://aomediacodec.github.io/av1-isobmff/) §2.3 (`av1C`).

use bytes::Bytes;

use super::h264::BitReader;
use super::{Codec, CodecError};

/// What an `av01` sample entry and its `av1C` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    /// `seq_profile`.
    pub seq_profile: u8,
    /// `seq_level_idx[0]`.
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]`.
    pub seq_tier_0: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// The sequence header OBU, as `av1C` configOBUs carries it.
    pub sequence_header: Bytes,
    /// `max_frame_width_minus_1 + 1`.
    pub width: u16,
    /// `max_frame_height_minus_1 + 1`.
    pub height: u16,
}

const CODEC: Codec = Codec::Av1;
/// `obu_type` of a sequence header (AV1 §6.2.2).
pub(crate) const OBU_SEQUENCE_HEADER: u8 = 1;

fn truncated(what: &'static str) -> CodecError {
    CodecError::Truncated { codec: CODEC, what }
}

fn invalid(what: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        codec: CODEC,
        what: what.into(),
    }
}

/// Reads a `leb128()` (AV1 §4.10.5): the value and the bytes used; `None` if truncated or above 2^32 - 1.
pub(crate) fn read_leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value <= u64::from(u32::MAX)).then_some((value, i + 1));
        }
    }
    None
}

/// Appends `value` as a minimal `leb128()`.
pub(crate) fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One OBU split from a low-overhead bitstream: header bytes (1 or 2, size flag cleared) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Obu<'a> {
    /// `obu_type`.
    pub(crate) obu_type: u8,
    /// The OBU header and extension byte, with `obu_has_size_field` cleared.
    pub(crate) header: [u8; 2],
    /// 1, or 2 with an extension byte.
    pub(crate) header_len: usize,
    /// The OBU payload.
    pub(crate) payload: &'a [u8],
}

impl Obu<'_> {
    /// Writes the OBU with `obu_has_size_field = 1` (the form ISO-BMFF samples and `av1C` carry).
    pub(crate) fn write_sized(&self, out: &mut Vec<u8>) {
        out.push(self.header[0] | 0x02);
        if self.header_len == 2 {
            out.push(self.header[1]);
        }
        write_leb128(out, self.payload.len() as u64);
        out.extend_from_slice(self.payload);
    }
}

/// Parses one OBU at the start of `data`; returns it and the bytes it used. Without a size
/// field the OBU runs to the end of `data`.
pub(crate) fn parse_obu(data: &[u8]) -> Result<(Obu<'_>, usize), CodecError> {
    let h = *data.first().ok_or(truncated("OBU header"))?;
    if h & 0x80 != 0 {
        return Err(invalid("obu_forbidden_bit set"));
    }
    let obu_type = (h >> 3) & 0x0f;
    let has_extension = h & 0x04 != 0;
    let has_size = h & 0x02 != 0;
    let mut header = [h & !0x02, 0];
    let mut pos = 1;
    if has_extension {
        header[1] = *data.get(1).ok_or(truncated("OBU extension header"))?;
        pos = 2;
    }
    let header_len = pos;
    let size = if has_size {
        let (size, n) = read_leb128(&data[pos..]).ok_or(truncated("OBU size"))?;
        pos += n;
        usize::try_from(size).map_err(|_| invalid("OBU size"))?
    } else {
        data.len() - pos
    };
    let end = pos.checked_add(size).ok_or(truncated("OBU payload"))?;
    let payload = data.get(pos..end).ok_or(truncated("OBU payload"))?;
    Ok((
        Obu {
            obu_type,
            header,
            header_len,
            payload,
        },
        end,
    ))
}

/// The parsed sequence header plus `reduced_still_picture_header`, which frame header parsing needs.
pub(crate) fn parse_sequence_header(obu: &[u8]) -> Result<(Av1Config, bool), CodecError> {
    let (obu, _) = parse_obu(obu)?;
    if obu.obu_type != OBU_SEQUENCE_HEADER {
        return Err(invalid(format!(
            "OBU type {} is not a sequence header",
            obu.obu_type
        )));
    }
    let t = || truncated("sequence header");
    let mut r = BitReader::new(obu.payload);
    let seq_profile = r.bits(3).ok_or_else(t)? as u8;
    if seq_profile > 2 {
        return Err(invalid(format!("seq_profile {seq_profile}")));
    }
    r.skip(1).ok_or_else(t)?; // still_picture
    let reduced = r.bit().ok_or_else(t)?;
    let (seq_level_idx_0, seq_tier_0);
    if reduced {
        seq_level_idx_0 = r.bits(5).ok_or_else(t)? as u8;
        seq_tier_0 = false;
    } else {
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0u32;
        if r.bit().ok_or_else(t)? {
            // timing_info()
            r.skip(64).ok_or_else(t)?;
            if r.bit().ok_or_else(t)? {
                read_uvlc(&mut r).ok_or_else(t)?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info_present = r.bit().ok_or_else(t)?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5).ok_or_else(t)? as u32 + 1;
                r.skip(32 + 5 + 5).ok_or_else(t)?;
            }
        }
        let initial_display_delay_present = r.bit().ok_or_else(t)?;
        let operating_points = r.bits(5).ok_or_else(t)? + 1;
        let (mut level0, mut tier0) = (0u8, false);
        for i in 0..operating_points {
            r.skip(12).ok_or_else(t)?; // operating_point_idc[i]
            let level = r.bits(5).ok_or_else(t)? as u8;
            let tier = level > 7 && r.bit().ok_or_else(t)?;
            if i == 0 {
                (level0, tier0) = (level, tier);
            }
            if decoder_model_info_present && r.bit().ok_or_else(t)? {
                r.skip(2 * buffer_delay_length as usize + 1).ok_or_else(t)?;
            }
            if initial_display_delay_present && r.bit().ok_or_else(t)? {
                r.skip(4).ok_or_else(t)?;
            }
        }
        seq_level_idx_0 = level0;
        seq_tier_0 = tier0;
    }
    let width_bits = r.bits(4).ok_or_else(t)? as u32 + 1;
    let height_bits = r.bits(4).ok_or_else(t)? as u32 + 1;
    let width = r.bits(width_bits).ok_or_else(t)? + 1;
    let height = r.bits(height_bits).ok_or_else(t)? + 1;
    let width = u16::try_from(width).map_err(|_| invalid("width 65536"))?;
    let height = u16::try_from(height).map_err(|_| invalid("height 65536"))?;
    if !reduced && r.bit().ok_or_else(t)? {
        r.skip(4 + 3).ok_or_else(t)?; // frame id lengths
    }
    r.skip(3).ok_or_else(t)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        r.skip(4).ok_or_else(t)?; // interintra, masked, warped, dual filter
        let order_hint = r.bit().ok_or_else(t)?;
        if order_hint {
            r.skip(2).ok_or_else(t)?; // jnt_comp, ref_frame_mvs
        }
        let force_screen_content_tools = if r.bit().ok_or_else(t)? {
            2
        } else {
            u8::from(r.bit().ok_or_else(t)?)
        };
        if force_screen_content_tools > 0 && !r.bit().ok_or_else(t)? {
            r.skip(1).ok_or_else(t)?; // seq_force_integer_mv
        }
        if order_hint {
            r.skip(3).ok_or_else(t)?;
        }
    }
    r.skip(3).ok_or_else(t)?; // superres, cdef, restoration
                              // color_config()
    let high_bitdepth = r.bit().ok_or_else(t)?;
    let twelve_bit = seq_profile == 2 && high_bitdepth && r.bit().ok_or_else(t)?;
    let monochrome = seq_profile != 1 && r.bit().ok_or_else(t)?;
    let (mut cp, mut tc, mut mc) = (2, 2, 2);
    if r.bit().ok_or_else(t)? {
        cp = r.bits(8).ok_or_else(t)?;
        tc = r.bits(8).ok_or_else(t)?;
        mc = r.bits(8).ok_or_else(t)?;
    }
    let (ss_x, ss_y, mut position) = if monochrome {
        r.skip(1).ok_or_else(t)?; // color_range
        (true, true, 0)
    } else if cp == 1 && tc == 13 && mc == 0 {
        (false, false, 0)
    } else {
        r.skip(1).ok_or_else(t)?; // color_range
        match seq_profile {
            0 => (true, true, 0),
            1 => (false, false, 0),
            _ if twelve_bit => {
                let x = r.bit().ok_or_else(t)?;
                let y = x && r.bit().ok_or_else(t)?;
                (x, y, 0)
            }
            _ => (true, false, 0),
        }
    };
    if !monochrome && ss_x && ss_y && !(cp == 1 && tc == 13 && mc == 0) {
        position = r.bits(2).ok_or_else(t)? as u8;
    }
    let mut sequence_header = Vec::with_capacity(obu.payload.len() + 4);
    obu.write_sized(&mut sequence_header);
    Ok((
        Av1Config {
            seq_profile,
            seq_level_idx_0,
            seq_tier_0,
            high_bitdepth,
            twelve_bit,
            monochrome,
            chroma_subsampling_x: ss_x,
            chroma_subsampling_y: ss_y,
            chroma_sample_position: position,
            sequence_header: Bytes::from(sequence_header),
            width,
            height,
        },
        reduced,
    ))
}

/// Reads a `uvlc()` (AV1 §4.10.3).
fn read_uvlc(r: &mut BitReader<'_>) -> Option<u64> {
    let mut zeros = 0u32;
    while !r.bit()? {
        zeros += 1;
        if zeros >= 32 {
            return Some(u64::from(u32::MAX));
        }
    }
    Some((1u64 << zeros) - 1 + r.bits(zeros)?)
}

impl Av1Config {
    /// Parses a sequence header OBU (with or without `obu_has_size_field`); the stored copy has the size field.
    pub fn from_sequence_header(obu: &[u8]) -> Result<Av1Config, CodecError> {
        parse_sequence_header(obu).map(|(config, _)| config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AV1_320X240: &[u8] = include_bytes!("../../testdata/av1_320x240.obu");

    /// The first sequence header OBU of a low-overhead stream.
    fn first_sequence_header(mut data: &[u8]) -> &[u8] {
        loop {
            let (obu, used) = parse_obu(data).unwrap();
            if obu.obu_type == OBU_SEQUENCE_HEADER {
                return &data[..used];
            }
            data = &data[used..];
        }
    }

    #[test]
    fn a_320x240_main_sequence_header_gives_its_size_and_format() {
        let c = Av1Config::from_sequence_header(first_sequence_header(AV1_320X240)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(
            (c.seq_profile, c.high_bitdepth, c.monochrome),
            (0, false, false)
        );
        assert!(c.chroma_subsampling_x && c.chroma_subsampling_y);
        assert_eq!(c.sequence_header[0] & 0x02, 0x02);
    }

    #[test]
    fn a_sequence_header_without_size_field_parses_the_same() {
        let sized = first_sequence_header(AV1_320X240);
        let (obu, _) = parse_obu(sized).unwrap();
        let mut unsized_obu = vec![obu.header[0]];
        unsized_obu.extend_from_slice(obu.payload);
        assert_eq!(
            Av1Config::from_sequence_header(&unsized_obu).unwrap(),
            Av1Config::from_sequence_header(sized).unwrap()
        );
    }

    #[test]
    fn a_reduced_still_picture_header_is_parsed() {
        // seq_profile 0, still 1, reduced 1, level 8 (5 bits), 4+4 bits of size lengths
        // (15 → 16-bit sizes), width-1 = 99, height-1 = 49, then flags and color config zeros.
        let mut bits = String::from("000" /* profile */);
        bits += "1" /* still */;
        bits += "1" /* reduced */;
        bits += "01000" /* level 8 */;
        bits += "1111" /* width bits - 1 = 15 */;
        bits += "1111";
        bits += &format!("{:016b}", 99);
        bits += &format!("{:016b}", 49);
        bits += "000" /* sb128, filter intra, intra edge */;
        bits += "000" /* superres cdef restoration */;
        bits += "0" /* high_bitdepth */;
        bits += "0" /* mono_chrome */;
        bits += "0" /* color_description_present */;
        bits += "0" /* color_range */;
        bits += "00" /* chroma_sample_position */;
        bits += "0" /* separate_uv_delta_q */;
        bits += "0" /* film grain */;
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let mut obu = vec![0x08]; // sequence header, no size field
        obu.extend(
            bits.as_bytes()
                .chunks(8)
                .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()),
        );
        let (c, reduced) = parse_sequence_header(&obu).unwrap();
        assert!(reduced);
        assert_eq!((c.width, c.height, c.seq_level_idx_0), (100, 50, 8));
    }

    #[test]
    fn truncated_sequence_headers_are_errors_not_panics() {
        let sized = first_sequence_header(AV1_320X240);
        for len in 0..sized.len() {
            assert!(
                Av1Config::from_sequence_header(&sized[..len]).is_err(),
                "len {len}"
            );
        }
        assert!(Av1Config::from_sequence_header(&[0x12, 0x00]).is_err());
    }

    #[test]
    fn leb128_round_trips() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX)] {
            let mut out = Vec::new();
            write_leb128(&mut out, v);
            assert_eq!(read_leb128(&out), Some((v, out.len())));
        }
    }
}
