//! Fuzzes the Av1 RTP depacketizer with arbitrary packet sequences (loss, reordering,
//! duplicates and garbage included); see `recnode_media_fuzz::drive_rtp` for the input format.
#![no_main]

use recnode_media::Codec;
use recnode_media_fuzz::{drive_rtp, sized_obus};

libfuzzer_sys::fuzz_target!(|input: &[u8]| drive_rtp(Codec::Av1, 90_000, input, sized_obus));
