//! `vp08` + `vpcC` (VP Codec ISO Media File Format Binding v1.0 §2).

use super::visual;
use crate::codec::Vp8Config;
use mp4_atom::{Codec, Vp08, VpcC};

pub(super) fn sample_entry(c: &Vp8Config) -> Codec {
    Vp08 {
        visual: visual(c.width, c.height),
        vpcc: VpcC {
            profile: 0,
            level: 0,
            bit_depth: 8,
            // 4:2:0 colocated with luma (0, 0), the only layout VP8 has.
            chroma_subsampling: 1,
            video_full_range_flag: false,
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
