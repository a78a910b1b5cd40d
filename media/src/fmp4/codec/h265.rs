//! `hvc1` + `hvcC` (ISO/IEC 14496-15 §8.4.1). `hvc1` rather than `hev1` because Apple
//! players only accept `hvc1`; samples may still repeat parameter sets in-band, which
//! every decoder we test with accepts.

use super::visual;
use crate::codec::HevcConfig;
use mp4_atom::{Codec, Hvc1, HvcCArray, Hvcc};

/// NAL unit types of the parameter set arrays (H.265 Table 7-1).
const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;

pub(super) fn sample_entry(c: &HevcConfig) -> Codec {
    let array = |nal_unit_type: u8, nalus: &[bytes::Bytes]| HvcCArray {
        completeness: true,
        nal_unit_type,
        nalus: nalus.iter().map(|n| n.to_vec()).collect(),
    };
    let compat = c.profile_compatibility_flags.to_be_bytes();
    let constraint = c.constraint_indicator_flags.to_be_bytes();
    let mut constraint6 = [0u8; 6];
    constraint6.copy_from_slice(&constraint[2..8]);
    Hvc1 {
        visual: visual(c.width, c.height),
        hvcc: Hvcc {
            configuration_version: 1,
            general_profile_space: c.profile_space,
            general_tier_flag: c.tier_flag,
            general_profile_idc: c.profile_idc,
            general_profile_compatibility_flags: compat,
            general_constraint_indicator_flags: constraint6,
            general_level_idc: c.level_idc,
            min_spatial_segmentation_idc: 0,
            parallelism_type: 0,
            chroma_format_idc: c.chroma_format_idc,
            bit_depth_luma_minus8: c.bit_depth_luma.saturating_sub(8),
            bit_depth_chroma_minus8: c.bit_depth_chroma.saturating_sub(8),
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: 1,
            temporal_id_nested: true,
            length_size_minus_one: 3,
            arrays: vec![array(VPS, &c.vps), array(SPS, &c.sps), array(PPS, &c.pps)],
        },
        lhvc: None,
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        ccst: None,
        spatial: None,
    }
    .into()
}
