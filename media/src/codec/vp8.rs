//! VP8 configuration (RFC 6386 §9.1, the key frame header).
//!
//! Spec: [RFC 6386 §9.1](https://www.rfc-editor.org/rfc/rfc6386#section-9.1) — a 3-byte
//! frame tag, then on key frames the start code `9d 01 2a` and two 16-bit little-endian
//! fields holding a 2-bit scale and a 14-bit dimension.

/// What a `vp08` sample entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Config {
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
}

/// True when the frame tag's P bit is 0 (RFC 6386 §9.1: `key_frame` is 0 for key frames).
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

impl Vp8Config {
    /// Reads the size from a key frame; `None` for inter frames and malformed or truncated headers.
    pub fn from_keyframe(frame: &[u8]) -> Option<Vp8Config> {
        if frame.len() < 10 || !is_keyframe(frame) || frame[3..6] != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
        let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
        if width == 0 || height == 0 {
            return None;
        }
        Some(Vp8Config { width, height })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The frames of an IVF file (test helper shared with the RTP tests).
    pub(crate) fn ivf_frames(ivf: &[u8]) -> Vec<&[u8]> {
        let mut frames = Vec::new();
        let mut pos = usize::from(u16::from_le_bytes([ivf[6], ivf[7]]));
        while pos + 12 <= ivf.len() {
            let len =
                u32::from_le_bytes([ivf[pos], ivf[pos + 1], ivf[pos + 2], ivf[pos + 3]]) as usize;
            pos += 12;
            frames.push(&ivf[pos..pos + len]);
            pos += len;
        }
        frames
    }

    const VP8_320X240: &[u8] = include_bytes!("../../testdata/vp8_320x240.ivf");

    #[test]
    fn a_320x240_key_frame_gives_320_by_240() {
        let frames = ivf_frames(VP8_320X240);
        assert_eq!(
            Vp8Config::from_keyframe(frames[0]),
            Some(Vp8Config {
                width: 320,
                height: 240
            })
        );
        assert!(is_keyframe(frames[0]));
    }

    #[test]
    fn inter_frames_and_truncated_headers_give_none() {
        let frames = ivf_frames(VP8_320X240);
        assert!(!is_keyframe(frames[1]));
        assert_eq!(Vp8Config::from_keyframe(frames[1]), None);
        for len in 0..10 {
            assert_eq!(Vp8Config::from_keyframe(&frames[0][..len]), None);
        }
    }
}
