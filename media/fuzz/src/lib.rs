//! Shared drivers for the fuzz targets: each target names its codec and the invariant
//! its frame data must hold; the driver feeds arbitrary packet sequences and checks the
//! depacketizer's invariants after every step.

use recnode_media::rtp::{RtpDepacketizer, MAX_FRAME_BYTES};
use recnode_media::{Codec, MediaEvent};

/// Feeds `input` to an RTP depacketizer for `codec` as a sequence of packets, with loss,
/// reordering, duplicates and garbage, and checks invariants after every push.
///
/// Input: byte 0 picks the reorder window; then chunks of `[len: u16 LE][ctrl: u8][len bytes]`.
/// With `ctrl & 0x80` the bytes are a whole RTP packet; otherwise they are a payload and the
/// header is synthesised: marker = bit 0, sequence step = bits 1..4 minus 2 (so -2..=5:
/// reorder, duplicate, loss), timestamp step = bits 4..7 × 3000.
pub fn drive_rtp(codec: Codec, clock_rate: u32, input: &[u8], check_data: fn(&[u8])) {
    let Some((&window, mut rest)) = input.split_first() else {
        return;
    };
    let mut d = RtpDepacketizer::with_reorder_window(codec, clock_rate, usize::from(window % 80));
    let (mut seq, mut ts) = (0xfff0u16, 0xffff_0000u32);
    let mut frames = 0u64;
    let mut have_config = false;
    let mut check = |event: MediaEvent, frames: &mut u64| match event {
        MediaEvent::Config(c) => {
            assert_eq!(c.codec(), codec);
            have_config = true;
        }
        MediaEvent::Frame(f) => {
            assert!(have_config, "a frame before any config");
            assert_eq!(f.timescale, clock_rate);
            assert_eq!(f.track, codec.kind());
            assert_eq!(f.pts, f.dts);
            assert!(f.data.len() <= MAX_FRAME_BYTES + 64);
            check_data(&f.data);
            *frames += 1;
        }
    };
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let ctrl = rest[2];
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + body.len()..];
        let packet = if ctrl & 0x80 != 0 {
            body.to_vec()
        } else {
            seq = seq
                .wrapping_add(u16::from((ctrl >> 1) & 0x07))
                .wrapping_sub(2);
            ts = ts.wrapping_add(u32::from((ctrl >> 4) & 0x07) * 3000);
            let mut p = vec![0x80, 96 | ((ctrl & 1) << 7)];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
            p.extend_from_slice(body);
            p
        };
        // Errors are expected on garbage; the depacketizer must stay usable.
        let _ = d.push(&packet);
        while let Some(event) = d.pull() {
            check(event, &mut frames);
        }
        assert!(frames <= d.stats().packets, "more frames than packets");
    }
    for event in d.flush() {
        check(event, &mut frames);
    }
    let stats = d.stats();
    assert_eq!(stats.frames, frames);
    assert!(frames <= stats.packets, "more frames than packets");
    assert!(d.pull().is_none());
}

/// Frame data must be non-empty (VP8, VP9, Opus).
pub fn non_empty(data: &[u8]) {
    assert!(!data.is_empty(), "empty frame");
}

/// Frame data must be AVCC: 4-byte lengths that exactly tile the data, no empty NAL units.
pub fn avcc(data: &[u8]) {
    let mut rest = data;
    assert!(!rest.is_empty(), "empty frame");
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "dangling length");
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(len > 0 && len <= rest.len() - 4, "bad NAL length {len}");
        rest = &rest[4 + len..];
    }
}

/// Frame data must be sized OBUs (`obu_has_size_field = 1`) that exactly tile the data,
/// with temporal delimiters removed.
pub fn sized_obus(data: &[u8]) {
    let mut rest = data;
    assert!(!rest.is_empty(), "empty temporal unit");
    while !rest.is_empty() {
        let header = rest[0];
        assert!(header & 0x02 != 0, "OBU without size field");
        let mut pos = if header & 0x04 != 0 { 2 } else { 1 };
        let mut size = 0usize;
        for i in 0..8 {
            let b = rest[pos];
            pos += 1;
            size |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        assert!(pos + size <= rest.len(), "OBU overruns the frame");
        assert!((header >> 3) & 0x0f != 2, "temporal delimiter kept");
        rest = &rest[pos + size..];
    }
}
