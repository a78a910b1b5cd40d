//! `vp09` + `vpcC` (VP Codec ISO Media File Format Binding v1.0 §2).

use super::visual;
use crate::codec::Vp9Config;
use mp4_atom::{Codec, Vp09, VpcC};

pub(super) fn sample_entry(c: &Vp9Config) -> Codec {
    Vp09 {
        visual: visual(c.width, c.height),
        vpcc: VpcC {
            profile: c.profile,
            level: c.level,
            bit_depth: c.bit_depth,
            chroma_subsampling: c.chroma_subsampling,
            video_full_range_flag: c.full_range,
            // ISO/IEC 23091-4 "unspecified".
            color_primaries: 2,
            transfer_characteristics: 2,
            matrix_coefficients: 2,
            codec_initialization_data: Vec::new(),
        },
        btrt: None,
        colr: None,
        pasp: None,
        spatial: None,
    }
    .into()
}
