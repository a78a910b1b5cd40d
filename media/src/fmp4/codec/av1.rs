//! `av01` + `av1C` (AV1 Codec ISO Media File Format Binding §2.2–2.3).

use super::visual;
use crate::codec::Av1Config;
use mp4_atom::{Av01, Av1c, Codec};

pub(super) fn sample_entry(c: &Av1Config) -> Codec {
    Av01 {
        visual: visual(c.width, c.height),
        av1c: Av1c {
            seq_profile: c.seq_profile,
            seq_level_idx_0: c.seq_level_idx_0,
            seq_tier_0: c.seq_tier_0,
            high_bitdepth: c.high_bitdepth,
            twelve_bit: c.twelve_bit,
            monochrome: c.monochrome,
            chroma_subsampling_x: c.chroma_subsampling_x,
            chroma_subsampling_y: c.chroma_subsampling_y,
            chroma_sample_position: c.chroma_sample_position,
            initial_presentation_delay: None,
            config_obus: c.sequence_header.to_vec(),
        },
        btrt: None,
        ccst: None,
        colr: None,
        pasp: None,
        taic: None,
        spatial: None,
    }
    .into()
}
