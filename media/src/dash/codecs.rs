//! RFC 6381 `codecs` parameter strings, per codec binding:
//! ISO/IEC 14496-15 Annex E (avc1, hvc1), the VP9 ISO-BMFF binding §5 (vp09),
//! the AV1 ISO-BMFF binding Annex A (av01), RFC 6381 §3.3 (mp4a), and Opus-in-ISOBMFF §4.

use crate::CodecConfig;
use std::fmt::Write as _;

/// The `codecs` string a player needs to pick a decoder for `config`.
pub fn codecs_string(config: &CodecConfig) -> String {
    match config {
        CodecConfig::H264(c) => {
            format!(
                "avc1.{:02X}{:02X}{:02X}",
                c.profile, c.compatibility, c.level
            )
        }
        CodecConfig::H265(c) => {
            let space = ["", "A", "B", "C"][usize::from(c.profile_space & 3)];
            let tier = if c.tier_flag { 'H' } else { 'L' };
            let mut s = format!(
                "hvc1.{space}{}.{:X}.{tier}{}",
                c.profile_idc,
                c.profile_compatibility_flags.reverse_bits(),
                c.level_idc
            );
            // The six constraint bytes, trailing zero bytes omitted.
            let bytes = c.constraint_indicator_flags.to_be_bytes();
            let constraint = &bytes[2..8];
            let used = constraint
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |i| i + 1);
            for b in &constraint[..used] {
                let _ = write!(s, ".{b:X}");
            }
            s
        }
        CodecConfig::Vp8(_) => "vp8".to_string(),
        CodecConfig::Vp9(c) => {
            // Level 0 means unknown; 1.0 is the smallest the string can state.
            let level = if c.level == 0 { 10 } else { c.level };
            format!("vp09.{:02}.{level:02}.{:02}", c.profile, c.bit_depth)
        }
        CodecConfig::Av1(c) => {
            let depth = if c.twelve_bit {
                12
            } else if c.high_bitdepth {
                10
            } else {
                8
            };
            let tier = if c.seq_tier_0 { 'H' } else { 'M' };
            format!(
                "av01.{}.{:02}{tier}.{depth:02}",
                c.seq_profile, c.seq_level_idx_0
            )
        }
        CodecConfig::Aac(c) => format!("mp4a.40.{}", c.object_type),
        CodecConfig::Opus(_) => "opus".to_string(),
    }
}
