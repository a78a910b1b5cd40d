//! Throughput of the fMP4 writer on a 2.5 Mbps 1080p-like H264 stream with 128 kbps AAC.
//!
//! Frames are synthetic (the muxer never looks inside a sample), sized like a real
//! encoder's output: a 60 KB keyframe every 2 s and ~10 KB inter frames at 30 fps, plus
//! ~370-byte AAC frames at 44.1 kHz. Each iteration muxes 60 s of media, so criterion's
//! bytes/s figure is MB of recording per second and frames/s follows from the count.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use recnode_media::codec::{AacConfig, AvcConfig};
use recnode_media::fmp4::{Fmp4Muxer, Fmp4Options, MuxOutput};
use recnode_media::{CodecConfig, Frame, TrackKind};
use std::hint::black_box;

const SECONDS: i64 = 60;
const FPS: i64 = 30;

fn frames() -> Vec<Frame> {
    let key = Bytes::from(vec![0x65u8; 60_000]);
    let inter = Bytes::from(vec![0x41u8; 10_150]);
    let aac = Bytes::from(vec![0x21u8; 371]);
    let mut out = Vec::new();
    let mut audio_ms = 0.0f64;
    for i in 0..SECONDS * FPS {
        let dts = i * 1000 / FPS;
        let keyframe = i % (2 * FPS) == 0;
        out.push(Frame {
            track: TrackKind::Video,
            pts: dts + 66,
            dts,
            timescale: 1000,
            keyframe,
            data: if keyframe { key.clone() } else { inter.clone() },
        });
        while audio_ms < (dts + 1000 / FPS) as f64 {
            out.push(Frame {
                track: TrackKind::Audio,
                pts: audio_ms as i64,
                dts: audio_ms as i64,
                timescale: 1000,
                keyframe: true,
                data: aac.clone(),
            });
            audio_ms += 1024.0 * 1000.0 / 44_100.0;
        }
    }
    out
}

fn configs() -> [CodecConfig; 2] {
    [
        CodecConfig::H264(AvcConfig {
            profile: 100,
            compatibility: 0,
            level: 40,
            sps: vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x28, 0xac])],
            pps: vec![Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])],
            width: 1920,
            height: 1080,
        }),
        CodecConfig::Aac(AacConfig {
            asc: Bytes::from_static(&[0x12, 0x10]),
            object_type: 2,
            sample_rate: 44_100,
            channels: 2,
        }),
    ]
}

fn mux_all(frames: Vec<Frame>) -> usize {
    let mut muxer = Fmp4Muxer::new(Fmp4Options::default());
    let mut written = 0;
    for c in configs() {
        muxer.set_config(c).expect("valid config");
    }
    let mut count = |outs: Vec<MuxOutput>| {
        for o in outs {
            if let MuxOutput::Fragment { data, .. } = o {
                written += data.len();
            }
        }
    };
    for f in frames {
        count(muxer.push(f).expect("frame accepted"));
    }
    count(muxer.finish().expect("finish"));
    written
}

fn bench(c: &mut Criterion) {
    let input = frames();
    let bytes: usize = input.iter().map(|f| f.data.len()).sum();
    let count = input.len();
    let mut group = c.benchmark_group("fmp4_writer");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function(format!("60s_1080p_2.5mbps_h264_aac_{count}_frames"), |b| {
        b.iter_batched(
            || input.clone(),
            |f| black_box(mux_all(f)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
