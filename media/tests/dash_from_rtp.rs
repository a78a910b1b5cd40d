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

#[test]
fn h264_and_opus_over_rtp_record_every_frame() {
    let src = lavfi_source(
        &test_dir("h264_opus_src"),
        "src.ts",
        Some(48_000),
        "-c:v libx264 -bf 0 -g 25 -x264-params repeat-headers=1 -pix_fmt yuv420p -c:a libopus -b:a 64k",
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
    let src = lavfi_source(
        &test_dir("vp8_opus_src"),
        "src.webm",
        Some(48_000),
        "-c:v libvpx -g 25 -b:v 500k -deadline realtime -c:a libopus -b:a 64k",
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
    let src = lavfi_source(
        &test_dir("vp9_opus_src"),
        "src.webm",
        Some(48_000),
        "-c:v libvpx-vp9 -g 25 -b:v 500k -deadline realtime -cpu-used 8 -c:a libopus -b:a 64k",
    );
    // ffmpeg marks its VP9 RTP packetizer experimental.
    let experimental = ["-strict", "experimental"];
    record_rtp(
        "vp9_opus",
        &src,
        (Codec::Vp9, 90_000),
        (Codec::Opus, 48_000),
        &experimental,
    );
}

/// The frames of an IVF file (header length at bytes 6..8; each frame: u32 size, u64 pts, data).
fn ivf_frames(data: &[u8]) -> Vec<bytes::Bytes> {
    assert_eq!(&data[..4], b"DKIF", "an IVF file");
    let mut pos = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut frames = Vec::new();
    while pos + 12 <= data.len() {
        let size = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 12;
        frames.push(bytes::Bytes::copy_from_slice(&data[pos..pos + size]));
        pos += size;
    }
    frames
}

#[test]
fn av1_packetized_by_webrtc_rs_records_every_frame() {
    use rtp::packetizer::Payloader;
    // ffmpeg 5.1 has no AV1 RTP muxer, so the webrtc-rs payloader (what a webrtc-rs or
    // browser publisher sends) packetizes ffmpeg's AV1 temporal units.
    let dir = test_dir("av1_src");
    let src = lavfi_source(
        &dir,
        "src.ivf",
        None,
        "-c:v libaom-av1 -usage realtime -cpu-used 8 -g 25 -b:v 300k",
    );
    let mut payloader = rtp::codecs::av1::Av1Payloader {};
    let mut packets = Vec::new();
    let mut seq = 40_000u16;
    for (i, tu) in ivf_frames(&std::fs::read(&src).unwrap()).iter().enumerate() {
        let payloads = payloader.payload(1200, tu).expect("AV1 payloads");
        let ts = (i as u32) * 3600;
        for (j, payload) in payloads.iter().enumerate() {
            let marker = if j + 1 == payloads.len() { 0x80 } else { 0 };
            let mut p = vec![0x80, 96 | marker];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0xA1A1_A1A1u32.to_be_bytes());
            p.extend_from_slice(payload);
            packets.push(p);
            seq = seq.wrapping_add(1);
        }
    }
    let mut rec = Recording::new(dir.join("rec"));
    for e in depacketize(Codec::Av1, 90_000, &packets) {
        rec.handle(e);
    }
    let manifest = rec.finish();
    assert_recording_matches(&src, &rec, &manifest, false);
}
