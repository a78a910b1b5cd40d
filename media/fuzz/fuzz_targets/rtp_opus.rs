//! Fuzzes the Opus RTP depacketizer with arbitrary packet sequences (loss, reordering,
//! duplicates and garbage included); see `recnode_media_fuzz::drive_rtp` for the input format.
#![no_main]

use recnode_media::Codec;
use recnode_media_fuzz::{drive_rtp, non_empty};

libfuzzer_sys::fuzz_target!(|input: &[u8]| drive_rtp(Codec::Opus, 48_000, input, non_empty));
