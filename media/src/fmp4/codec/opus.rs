//! `Opus` + `dOps` (Encapsulation of Opus in ISO Base Media File Format v0.6.8 §4.3).

use super::audio;
use crate::codec::OpusConfig;
use mp4_atom::{Codec, Dops, Opus};

pub(super) fn sample_entry(c: &OpusConfig) -> Codec {
    Opus {
        audio: audio(c.channels, 48_000),
        dops: Dops {
            output_channel_count: c.channels.max(1),
            pre_skip: c.pre_skip,
            input_sample_rate: c.input_sample_rate,
            output_gain: c.output_gain,
            channel_mapping: None,
        },
        btrt: None,
    }
    .into()
}
