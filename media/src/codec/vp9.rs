//! VP9 configuration (VP9 bitstream spec §6.2 uncompressed header; VP Codec ISO-BMFF binding `vpcC`).
//!
//! Specs: [VP9 Bitstream & Decoding Process Specification v0.6](https://storage.googleapis.com/downloads.webmproject.org/docs/vp9/vp9-bitstream-specification-v0.6-20160331-draft.pdf)
//! §6.2 (uncompressed_header, color_config, frame_size) and Annex B (superframes);
//! [VP Codec ISO Media File Format Binding](https://www.webmproject.org/vp9/mp4/) (`vpcC`).

use super::h264::BitReader;
use super::{Codec, CodecError};

/// What a `vp09` sample entry and its `vpcC` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Config {
    /// Profile 0–3.
    pub profile: u8,
    /// Level as in the VP9 levels table (10 = 1.0 …); 0 when unknown.
    pub level: u8,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `vpcC` chromaSubsampling: 0 = 4:2:0 vertical, 1 = 4:2:0 colocated, 2 = 4:2:2, 3 = 4:4:4.
    pub chroma_subsampling: u8,
    /// Full-range video.
    pub full_range: bool,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
}

const CODEC: Codec = Codec::Vp9;
/// `color_space` value for RGB (VP9 §7.2).
const CS_RGB: u64 = 7;

fn truncated() -> CodecError {
    CodecError::Truncated {
        codec: CODEC,
        what: "uncompressed header",
    }
}

fn invalid(what: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        codec: CODEC,
        what: what.into(),
    }
}

/// Splits a superframe (VP9 Annex B) into its frames; a plain frame comes back as itself.
pub fn superframe_frames(data: &[u8]) -> Vec<&[u8]> {
    let Some(&marker) = data.last() else {
        return Vec::new();
    };
    if marker & 0xe0 == 0xc0 {
        let frames = usize::from(marker & 0x07) + 1;
        let mag = usize::from((marker >> 3) & 0x03) + 1;
        let index_len = 2 + mag * frames;
        if data.len() >= index_len && data[data.len() - index_len] == marker {
            let index = &data[data.len() - index_len + 1..data.len() - 1];
            let mut out = Vec::with_capacity(frames);
            let mut pos = 0usize;
            let body_len = data.len() - index_len;
            for size in index.chunks_exact(mag) {
                let size = size
                    .iter()
                    .rev()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                let end = pos.saturating_add(size);
                if end > body_len {
                    break;
                }
                out.push(&data[pos..end]);
                pos = end;
            }
            return out;
        }
    }
    vec![data]
}

/// A level from the VP9 levels table chosen by picture size alone (the smallest level whose
/// maximum luma picture size fits).
fn level_for_size(width: u16, height: u16) -> u8 {
    let samples = u64::from(width) * u64::from(height);
    const LEVELS: [(u64, u8); 13] = [
        (36_864, 10),
        (73_728, 11),
        (122_880, 20),
        (245_760, 21),
        (552_960, 30),
        (983_040, 31),
        (2_228_224, 40),
        (2_228_224, 41),
        (8_912_896, 50),
        (8_912_896, 51),
        (8_912_896, 52),
        (35_651_584, 60),
        (35_651_584, 61),
    ];
    LEVELS
        .iter()
        .find(|(max, _)| samples <= *max)
        .map(|&(_, level)| level)
        .unwrap_or(62)
}

impl Vp9Config {
    /// Reads the config from a key frame: `Ok(None)` for inter, intra-only and show-existing frames.
    ///
    /// For a superframe the first frame is parsed (a key frame always comes first).
    pub fn from_keyframe(frame: &[u8]) -> Result<Option<Vp9Config>, CodecError> {
        let first = superframe_frames(frame)
            .into_iter()
            .next()
            .ok_or_else(truncated)?;
        let mut r = BitReader::new(first);
        let t = truncated;
        if r.bits(2).ok_or_else(t)? != 2 {
            return Err(invalid("frame_marker is not 2"));
        }
        let low = r.bits(1).ok_or_else(t)?;
        let high = r.bits(1).ok_or_else(t)?;
        let profile = (high << 1 | low) as u8;
        if profile == 3 && r.bit().ok_or_else(t)? {
            return Err(invalid("reserved_zero set in profile 3"));
        }
        if r.bit().ok_or_else(t)? {
            return Ok(None); // show_existing_frame
        }
        if r.bit().ok_or_else(t)? {
            return Ok(None); // frame_type 1 = NON_KEY_FRAME
        }
        r.skip(2).ok_or_else(t)?; // show_frame, error_resilient_mode
        if r.bits(24).ok_or_else(t)? != 0x49_83_42 {
            return Err(invalid("bad frame_sync_code"));
        }
        let bit_depth = if profile >= 2 {
            if r.bit().ok_or_else(t)? {
                12
            } else {
                10
            }
        } else {
            8
        };
        let color_space = r.bits(3).ok_or_else(t)?;
        let (full_range, ss_x, ss_y);
        if color_space != CS_RGB {
            full_range = r.bit().ok_or_else(t)?;
            if profile == 1 || profile == 3 {
                ss_x = r.bit().ok_or_else(t)?;
                ss_y = r.bit().ok_or_else(t)?;
                r.skip(1).ok_or_else(t)?;
            } else {
                (ss_x, ss_y) = (true, true);
            }
        } else {
            full_range = true;
            if profile == 1 || profile == 3 {
                (ss_x, ss_y) = (false, false);
                r.skip(1).ok_or_else(t)?;
            } else {
                return Err(invalid("RGB in profile 0 or 2"));
            }
        }
        // VP9 does not signal 4:2:0 chroma siting; like ffmpeg's `vpcC` writer, assume colocated (1).
        let chroma_subsampling = match (ss_x, ss_y) {
            (true, true) => 1,
            (true, false) => 2,
            (false, false) => 3,
            (false, true) => return Err(invalid("4:4:0 subsampling")),
        };
        let width = r.bits(16).ok_or_else(t)? as u32 + 1;
        let height = r.bits(16).ok_or_else(t)? as u32 + 1;
        let width = u16::try_from(width).map_err(|_| invalid("width 65536"))?;
        let height = u16::try_from(height).map_err(|_| invalid("height 65536"))?;
        Ok(Some(Vp9Config {
            profile,
            level: level_for_size(width, height),
            bit_depth,
            chroma_subsampling,
            full_range,
            width,
            height,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::vp8::tests::ivf_frames;

    const VP9_320X240: &[u8] = include_bytes!("../../testdata/vp9_320x240.ivf");
    const VP9_444: &[u8] = include_bytes!("../../testdata/vp9_320x240_gbrp.ivf");
    const VP9_10BIT: &[u8] = include_bytes!("../../testdata/vp9_352x288_10bit.ivf");

    #[test]
    fn a_320x240_profile_0_key_frame_gives_its_size_and_format() {
        let frames = ivf_frames(VP9_320X240);
        let c = Vp9Config::from_keyframe(frames[0]).unwrap().unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!((c.profile, c.bit_depth, c.chroma_subsampling), (0, 8, 1));
        assert!(!c.full_range);
        assert_eq!(c.level, 20);
    }

    #[test]
    fn a_10_bit_profile_2_key_frame_gives_bit_depth_10() {
        let frames = ivf_frames(VP9_10BIT);
        let c = Vp9Config::from_keyframe(frames[0]).unwrap().unwrap();
        assert_eq!(
            (c.width, c.height, c.profile, c.bit_depth),
            (352, 288, 2, 10)
        );
    }

    #[test]
    fn an_rgb_profile_1_key_frame_is_full_range_444() {
        let frames = ivf_frames(VP9_444);
        let c = Vp9Config::from_keyframe(frames[0]).unwrap().unwrap();
        assert_eq!(
            (c.profile, c.chroma_subsampling, c.full_range),
            (1, 3, true)
        );
    }

    #[test]
    fn a_superframe_is_split_and_its_first_frame_parsed() {
        let frames = ivf_frames(VP9_320X240);
        let (key, inter) = (frames[0], frames[1]);
        let mut superframe = key.to_vec();
        superframe.extend_from_slice(inter);
        // Index: marker 0b110_01_001 (2-byte sizes, 2 frames), sizes little-endian, marker.
        let marker = 0xc0 | (1 << 3) | 1;
        superframe.push(marker);
        superframe.extend_from_slice(&(key.len() as u16).to_le_bytes());
        superframe.extend_from_slice(&(inter.len() as u16).to_le_bytes());
        superframe.push(marker);
        assert_eq!(superframe_frames(&superframe), vec![key, inter]);
        let c = Vp9Config::from_keyframe(&superframe).unwrap().unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        for f in &frames[1..] {
            assert_eq!(Vp9Config::from_keyframe(f).unwrap(), None);
        }
    }

    #[test]
    fn truncated_key_frames_are_errors_not_panics() {
        let frames = ivf_frames(VP9_320X240);
        for len in 0..9 {
            assert!(
                Vp9Config::from_keyframe(&frames[0][..len]).is_err(),
                "len {len}"
            );
        }
    }
}
