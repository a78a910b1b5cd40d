//! `avc1` + `avcC` (ISO/IEC 14496-15 §5.4.2). Samples carry 4-byte NAL lengths.

use super::visual;
use crate::codec::AvcConfig;
use mp4_atom::{Avc1, Avcc, AvccExt, Codec};

/// Profiles whose `avcC` carries the chroma/bit-depth extension (ISO/IEC 14496-15 §5.3.3.1.2).
const HIGH_PROFILES: [u8; 4] = [100, 110, 122, 144];

pub(super) fn sample_entry(c: &AvcConfig) -> Codec {
    let ext = HIGH_PROFILES.contains(&c.profile).then(|| AvccExt {
        chroma_format: 1,
        bit_depth_luma: 8,
        bit_depth_chroma: 8,
        sequence_parameter_sets_ext: Vec::new(),
    });
    Avc1 {
        visual: visual(c.width, c.height),
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: c.profile,
            profile_compatibility: c.compatibility,
            avc_level_indication: c.level,
            length_size: 4,
            sequence_parameter_sets: c.sps.iter().map(|s| s.to_vec()).collect(),
            picture_parameter_sets: c.pps.iter().map(|s| s.to_vec()).collect(),
            ext,
        },
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    }
    .into()
}
