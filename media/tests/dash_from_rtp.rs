//! RTP (packetized by ffmpeg) → our depacketizers → fMP4 + DASH, checked by ffprobe/ffmpeg:
//! frames in == frames out, clean decode, identical decoded video.

mod common;

use common::*;
use recnode_media::rtp::RtpDepacketizer;
use recnode_media::{Codec, MediaEvent};
use std::path::Path;

/// Depacketizes every captured packet of one track; checks loopback lost nothing.
fn depacketize(codec: Codec, clock_rate: u32, packets: &[Vec<u8>]) -> Vec<MediaEvent> {
    let mut d = RtpDepacketizer::new(codec, clock_rate);
    let mut events = Vec::new();
    for p in packets {
        d.push(p).expect("ffmpeg's packets are valid RTP");
        while let Some(e) = d.pull() {
            events.push(e);
        }
    }
    events.extend(d.flush());
    let stats = d.stats();
    assert_eq!(
        stats.lost_packets, 0,
        "{codec:?}: loopback lost packets: {stats:?}"
    );
    assert_eq!(
        stats.dropped_frames, 0,
        "{codec:?}: dropped frames: {stats:?}"
    );
    events
}

/// Streams `source`'s video and audio over RTP and records them, interleaved by time as
/// a live stream arrives (both RTP timelines start at 0).
fn record_rtp(name: &str, source: &Path, video: (Codec, u32), audio: (Codec, u32), extra: &[&str]) {
    let dir = test_dir(name);
    let captured = rtp_capture(source, &["0:v:0", "0:a:0"], extra);
    let mut rec = Recording::new(dir.join("rec"));
    let v = depacketize(video.0, video.1, &captured[0]);
    let a = depacketize(audio.0, audio.1, &captured[1]);
    for e in interleave(v, a) {
        rec.handle(e);
    }
    let manifest = rec.finish();
    assert_recording_matches(source, &rec, &manifest, true);
}

const LAVFI_VIDEO: &str = "testsrc2=size=320x240:rate=25";
const LAVFI_AUDIO: &str = "sine=frequency=440:sample_rate=48000";

#[test]
fn h264_and_opus_over_rtp_record_every_frame() {
    let dir = test_dir("h264_opus_src");
    let src = make_source(
        &dir,
        "src.ts",
        &[
            "-f",
            "lavfi",
            "-i",
            LAVFI_VIDEO,
            "-f",
            "lavfi",
            "-i",
            LAVFI_AUDIO,
            "-t",
            "5",
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "25",
            "-x264-params",
            "repeat-headers=1",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
        ],
    );
    record_rtp(
        "h264_opus",
        &src,
        (Codec::H264, 90_000),
        (Codec::Opus, 48_000),
        &[],
    );
}

#[test]
fn vp8_and_opus_over_rtp_record_every_frame() {
    let dir = test_dir("vp8_opus_src");
    let src = make_source(
        &dir,
        "src.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            LAVFI_VIDEO,
            "-f",
            "lavfi",
            "-i",
            LAVFI_AUDIO,
            "-t",
            "5",
            "-c:v",
            "libvpx",
            "-g",
            "25",
            "-b:v",
            "500k",
            "-deadline",
            "realtime",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
        ],
    );
    record_rtp(
        "vp8_opus",
        &src,
        (Codec::Vp8, 90_000),
        (Codec::Opus, 48_000),
        &[],
    );
}

#[test]
fn vp9_and_opus_over_rtp_record_every_frame() {
    let dir = test_dir("vp9_opus_src");
    let src = make_source(
        &dir,
        "src.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            LAVFI_VIDEO,
            "-f",
            "lavfi",
            "-i",
            LAVFI_AUDIO,
            "-t",
            "5",
            "-c:v",
            "libvpx-vp9",
            "-g",
            "25",
            "-b:v",
            "500k",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
        ],
    );
    record_rtp(
        "vp9_opus",
        &src,
        (Codec::Vp9, 90_000),
        (Codec::Opus, 48_000),
        &["-strict", "experimental"],
    );
}
