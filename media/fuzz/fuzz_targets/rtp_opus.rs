//! Fuzzes the Opus RTP depacketizer with arbitrary packet sequences (loss, reordering,
//! duplicates and garbage included), checking invariants after every step.
//!
//! Input: byte 0 picks the reorder window; then chunks of `[len: u16 LE][ctrl: u8][len bytes]`.
//! With `ctrl & 0x80` the bytes are a whole RTP packet; otherwise they are a payload and the
//! header is synthesised: marker = bit 0, sequence step = bits 1..4 minus 2 (so -2..=5: reorder,
//! duplicate, loss), timestamp step = bits 4..7 × 3000.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recnode_media::rtp::{RtpDepacketizer, MAX_FRAME_BYTES};
use recnode_media::{Codec, MediaEvent};

const CODEC: Codec = Codec::Opus;
const CLOCK_RATE: u32 = 48000;

/// Frame data must be non-empty.
fn check_data(data: &[u8]) {
    assert!(!data.is_empty(), "empty frame");
}

fuzz_target!(|input: &[u8]| {
    let Some((&window, mut rest)) = input.split_first() else {
        return;
    };
    let mut d = RtpDepacketizer::with_reorder_window(CODEC, CLOCK_RATE, usize::from(window % 80));
    let (mut seq, mut ts) = (0xfff0u16, 0xffff_0000u32);
    let mut frames = 0u64;
    let mut have_config = false;
    let mut check = |event: MediaEvent, frames: &mut u64| match event {
        MediaEvent::Config(c) => {
            assert_eq!(c.codec(), CODEC);
            have_config = true;
        }
        MediaEvent::Frame(f) => {
            assert!(have_config, "a frame before any config");
            assert_eq!(f.timescale, CLOCK_RATE);
            assert_eq!(f.track, CODEC.kind());
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
});
