//! Unit tests for the FLV demuxer, reader and writer with hand-made bodies.

use bytes::Bytes;

use super::amf::{decode_all, AmfValue};
use super::*;
use crate::codec::{AacConfig, Av1Config, AvcConfig, HevcConfig, Vp9Config};
use crate::{CodecConfig, Frame, MediaEvent, TrackKind};

/// The AVCDecoderConfigurationRecord x264 wrote for 320x240 High profile (from ffmpeg's FLV output).
const AVC_RECORD: &str =
    "0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000668ebe3cb22c0fdf8f800";
/// x265 parameter sets for 320x240.
const HEVC_VPS: &str = "40010c01ffff01600000030090000003000003003c959809";
const HEVC_SPS: &str =
    "42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003210";
const HEVC_PPS: &str = "4401c172b46240";
/// libaom's sequence header OBU for 320x240.
const AV1_SEQUENCE_HEADER: &str = "0a0b000000043cffbcdaf90040";
/// The first bytes of a libvpx-vp9 320x240 key frame.
const VP9_KEYFRAME: &str =
    "824983420013f00ef60438241c184a000b107fd9fa3c77187f2fde5ff0f7efbf2fc9dc9f83b47a9f";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn avc_sequence_body(record: &[u8]) -> Vec<u8> {
    let mut body = vec![0x17, 0, 0, 0, 0];
    body.extend_from_slice(record);
    body
}

fn avc_nalu_body(keyframe: bool, cts: i32, nals: &[&[u8]], length_size: usize) -> Vec<u8> {
    let c = cts.to_be_bytes();
    let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, c[1], c[2], c[3]];
    for nal in nals {
        let len = (nal.len() as u32).to_be_bytes();
        body.extend_from_slice(&len[4 - length_size..]);
        body.extend_from_slice(nal);
    }
    body
}

fn frames(events: &[MediaEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn configured_avc() -> FlvDemuxer {
    let mut demuxer = FlvDemuxer::new();
    demuxer
        .push_video(0, &avc_sequence_body(&hex(AVC_RECORD)))
        .unwrap();
    demuxer
}

#[test]
fn avc_sequence_header_then_nalus_become_config_and_avcc_frame() {
    let mut demuxer = FlvDemuxer::new();
    let events = demuxer
        .push_video(0, &avc_sequence_body(&hex(AVC_RECORD)))
        .unwrap();
    let [MediaEvent::Config(CodecConfig::H264(config))] = events.as_slice() else {
        panic!("expected one H264 config, got {events:?}");
    };
    assert_eq!((config.width, config.height), (320, 240));

    let events = demuxer
        .push_video(40, &avc_nalu_body(true, 80, &[&[0x65, 1, 2, 3]], 4))
        .unwrap();
    let frame = frames(&events)[0];
    assert_eq!(frame.track, TrackKind::Video);
    assert_eq!((frame.dts, frame.pts, frame.timescale), (40, 120, 1000));
    assert!(frame.keyframe);
    assert_eq!(&frame.data[..], &[0, 0, 0, 4, 0x65, 1, 2, 3]);

    let events = demuxer
        .push_video(80, &avc_nalu_body(false, 0, &[&[0x41, 9]], 4))
        .unwrap();
    assert!(!frames(&events)[0].keyframe);
}

#[test]
fn short_nal_lengths_are_rewritten_to_four_bytes() {
    for (length_size_minus_one, length_size) in [(0u8, 1usize), (1, 2)] {
        let mut record = hex(AVC_RECORD);
        record[4] = 0xfc | length_size_minus_one;
        let mut demuxer = FlvDemuxer::new();
        demuxer.push_video(0, &avc_sequence_body(&record)).unwrap();
        let body = avc_nalu_body(false, 0, &[&[0x41, 1], &[0x06, 2, 3]], length_size);
        let events = demuxer.push_video(0, &body).unwrap();
        assert_eq!(
            &frames(&events)[0].data[..],
            &[0, 0, 0, 2, 0x41, 1, 0, 0, 0, 3, 0x06, 2, 3]
        );
    }
}

#[test]
fn negative_composition_time_is_sign_extended() {
    let mut demuxer = configured_avc();
    let events = demuxer
        .push_video(1000, &avc_nalu_body(false, -40, &[&[0x41]], 4))
        .unwrap();
    let frame = frames(&events)[0];
    assert_eq!((frame.dts, frame.pts), (1000, 960));
    // The most negative 24-bit value.
    let events = demuxer
        .push_video(10_000_000, &avc_nalu_body(false, -(1 << 23), &[&[0x41]], 4))
        .unwrap();
    assert_eq!(frames(&events)[0].pts, 10_000_000 - (1 << 23));
}

#[test]
fn rtmp_timestamp_wrap_keeps_time_monotonic() {
    let mut demuxer = configured_avc();
    let mut dts = Vec::new();
    for ts in [u32::MAX - 40, u32::MAX - 20, 5, 25] {
        let events = demuxer
            .push_video(ts, &avc_nalu_body(false, 0, &[&[0x41]], 4))
            .unwrap();
        dts.push(frames(&events)[0].dts);
    }
    let base = i64::from(u32::MAX);
    assert_eq!(dts, vec![base - 40, base - 20, base + 6, base + 26]);

    // Audio keeps its own clock, with the same rule.
    demuxer.push_audio(0, &[0xaf, 0, 0x12, 0x10]).unwrap();
    let mut audio = Vec::new();
    for ts in [u32::MAX - 10, 13] {
        let events = demuxer.push_audio(ts, &[0xaf, 1, 0x21]).unwrap();
        audio.push(frames(&events)[0].dts);
    }
    assert_eq!(audio, vec![base - 10, base + 14]);
}

#[test]
fn aac_sequence_header_and_raw_frames_become_config_and_frames() {
    let mut demuxer = FlvDemuxer::new();
    let events = demuxer.push_audio(0, &[0xaf, 0, 0x12, 0x10]).unwrap();
    let [MediaEvent::Config(CodecConfig::Aac(config))] = events.as_slice() else {
        panic!("expected an AAC config, got {events:?}");
    };
    assert_eq!((config.sample_rate, config.channels), (44_100, 2));
    let events = demuxer.push_audio(23, &[0xaf, 1, 0x21, 0x10]).unwrap();
    let frame = frames(&events)[0];
    assert_eq!(frame.track, TrackKind::Audio);
    assert_eq!((frame.pts, frame.dts, frame.timescale), (23, 23, 1000));
    assert!(frame.keyframe);
    assert_eq!(&frame.data[..], &[0x21, 0x10]);
    assert_eq!(demuxer.stats().audio_frames, 1);
}

#[test]
fn empty_sequence_headers_are_skipped_as_ffmpeg_stream_copy_sends_them() {
    let mut demuxer = FlvDemuxer::new();
    assert!(demuxer.push_audio(0, &[0xaf, 0]).unwrap().is_empty());
    assert!(demuxer
        .push_video(0, &[0x17, 0, 0, 0, 0])
        .unwrap()
        .is_empty());
    assert_eq!(demuxer.stats().ignored, 2);
    assert_eq!(demuxer.stats().errors, 0);
    // The real header that follows is taken.
    let events = demuxer.push_audio(0, &[0xaf, 0, 0x12, 0x10]).unwrap();
    assert!(matches!(
        events.as_slice(),
        [MediaEvent::Config(CodecConfig::Aac(_))]
    ));
}

#[test]
fn aac_frame_before_its_config_is_an_error_and_counted() {
    let mut demuxer = FlvDemuxer::new();
    let err = demuxer.push_audio(7, &[0xaf, 1, 0x21]).unwrap_err();
    assert_eq!(
        err,
        FlvError::MissingConfig {
            kind: TrackKind::Audio,
            timestamp_ms: 7
        }
    );
    assert_eq!(demuxer.stats().errors, 1);
    // The demuxer stays usable.
    demuxer.push_audio(8, &[0xaf, 0, 0x12, 0x10]).unwrap();
    assert_eq!(
        frames(&demuxer.push_audio(9, &[0xaf, 1, 0x21]).unwrap()).len(),
        1
    );
}

#[test]
fn video_frame_before_its_config_is_an_error() {
    let mut demuxer = FlvDemuxer::new();
    let err = demuxer
        .push_video(3, &avc_nalu_body(true, 0, &[&[0x65]], 4))
        .unwrap_err();
    assert!(matches!(
        err,
        FlvError::MissingConfig {
            kind: TrackKind::Video,
            timestamp_ms: 3
        }
    ));
}

#[test]
fn other_sound_formats_and_video_codecs_are_unsupported() {
    let mut demuxer = FlvDemuxer::new();
    let err = demuxer.push_audio(5, &[0x2f, 0xff, 0xfb]).unwrap_err();
    assert!(
        matches!(&err, FlvError::UnsupportedCodec { kind: TrackKind::Audio, codec, timestamp_ms: 5 } if codec.contains("MP3")),
        "{err}"
    );
    let err = demuxer.push_video(5, &[0x12, 0, 0]).unwrap_err();
    assert!(matches!(
        err,
        FlvError::UnsupportedCodec {
            kind: TrackKind::Video,
            ..
        }
    ));
    let err = demuxer
        .push_video(5, &[0x90, b'v', b'p', b'0', b'8'])
        .unwrap_err();
    assert!(matches!(&err, FlvError::UnsupportedCodec { codec, .. } if codec.contains("vp08")));
}

#[test]
fn command_frames_end_of_sequence_and_metadata_are_ignored() {
    let mut demuxer = configured_avc();
    assert!(demuxer.push_video(0, &[0x57, 0]).unwrap().is_empty());
    assert!(demuxer
        .push_video(0, &[0x17, 2, 0, 0, 0])
        .unwrap()
        .is_empty());
    assert!(demuxer
        .push_video(0, &[0x94, b'h', b'v', b'c', b'1', 2, 0])
        .unwrap()
        .is_empty());
    assert!(demuxer
        .push_video(0, &[0xd2, b'h', b'v', b'c', b'1'])
        .unwrap()
        .is_empty());
    assert_eq!(demuxer.stats().ignored, 4);
}

#[test]
fn truncated_and_garbage_bodies_are_errors_not_panics() {
    let record_body = avc_sequence_body(&hex(AVC_RECORD));
    let frame_body = avc_nalu_body(true, 0, &[&[0x65, 1, 2, 3, 4, 5]], 4);
    // The last 4 bytes are the optional High-profile extension.
    // Cutting right after the 5-byte tag header leaves an empty record, which is skipped.
    for cut in (0..record_body.len() - 4).filter(|cut| *cut != 5) {
        assert!(
            FlvDemuxer::new()
                .push_video(0, &record_body[..cut])
                .is_err(),
            "cut {cut}"
        );
    }
    let mut demuxer = configured_avc();
    for cut in 0..frame_body.len() {
        let result = demuxer.push_video(0, &frame_body[..cut]);
        // Cutting exactly at a NAL boundary leaves a valid (empty) body.
        assert!(result.is_err() || cut == 5, "cut {cut}: {result:?}");
    }
    assert!(demuxer.push_audio(0, &[]).is_err());
    assert!(demuxer.push_audio(0, &[0xaf]).is_err());
    assert!(demuxer.push_audio(0, &[0xaf, 0, 0x12]).is_err());
    assert!(demuxer.push_audio(0, &[0xaf, 7]).is_err());
    // A NAL length far past the end.
    assert!(demuxer
        .push_video(0, &[0x27, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1])
        .is_err());

    // Pseudo-random bodies through every entry point: any result, no panic.
    let mut state = 0x1234_5678_u32;
    for len in 0..2000 {
        let body: Vec<u8> = (0..len % 64)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let mut prefixed = vec![[0x17, 0x27, 0x90, 0x91, 0x93, 0xaf, 0x80][len % 7]];
        prefixed.extend_from_slice(&body);
        let _ = demuxer.push_video(state, &prefixed);
        let _ = demuxer.push_video(state, &body);
        let _ = demuxer.push_audio(state, &prefixed);
        let _ = demuxer.push_audio(state, &body);
    }
}

fn enhanced(first: u8, fourcc: &[u8; 4], rest: &[u8]) -> Vec<u8> {
    let mut body = vec![first];
    body.extend_from_slice(fourcc);
    body.extend_from_slice(rest);
    body
}

#[test]
fn enhanced_rtmp_hevc_sequence_start_and_coded_frames_demux() {
    let config = HevcConfig::from_parameter_sets(
        &[Bytes::from(hex(HEVC_VPS))],
        &[Bytes::from(hex(HEVC_SPS))],
        &[Bytes::from(hex(HEVC_PPS))],
    )
    .unwrap();
    let mut demuxer = FlvDemuxer::new();
    let events = demuxer
        .push_video(0, &enhanced(0x90, b"hvc1", &config.to_record()))
        .unwrap();
    assert_eq!(events, vec![MediaEvent::Config(CodecConfig::H265(config))]);
    // CodedFrames: SI24 composition time, then 4-byte-length NAL units.
    let events = demuxer
        .push_video(
            100,
            &enhanced(0x91, b"hvc1", &[0xff, 0xff, 0xd8, 0, 0, 0, 2, 0x26, 1]),
        )
        .unwrap();
    let frame = frames(&events)[0];
    assert_eq!((frame.dts, frame.pts, frame.keyframe), (100, 60, true));
    assert_eq!(&frame.data[..], &[0, 0, 0, 2, 0x26, 1]);
    // CodedFramesX: no composition time.
    let events = demuxer
        .push_video(140, &enhanced(0xa3, b"hvc1", &[0, 0, 0, 2, 0x02, 1]))
        .unwrap();
    let frame = frames(&events)[0];
    assert_eq!((frame.dts, frame.pts, frame.keyframe), (140, 140, false));
}

#[test]
fn enhanced_rtmp_av1_sequence_start_reads_the_sequence_header_obu() {
    let mut av1c = vec![0x81, 0x00, 0x0c, 0x00];
    av1c.extend_from_slice(&hex(AV1_SEQUENCE_HEADER));
    let mut demuxer = FlvDemuxer::new();
    let events = demuxer
        .push_video(0, &enhanced(0x90, b"av01", &av1c))
        .unwrap();
    let [MediaEvent::Config(CodecConfig::Av1(config))] = events.as_slice() else {
        panic!("expected an AV1 config, got {events:?}");
    };
    assert_eq!((config.width, config.height), (320, 240));
    let events = demuxer
        .push_video(
            40,
            &enhanced(0x91, b"av01", &[0x12, 0x00, 0x32, 0x01, 0xaa]),
        )
        .unwrap();
    let frame = frames(&events)[0];
    assert_eq!(&frame.data[..], &[0x12, 0x00, 0x32, 0x01, 0xaa]);
    assert!(frame.keyframe);
}

#[test]
fn enhanced_rtmp_vp9_takes_its_size_from_the_first_keyframe() {
    let vpcc = [0x00, 0x1f, 0x80, 2, 2, 2, 0, 0];
    let mut demuxer = FlvDemuxer::new();
    let events = demuxer
        .push_video(0, &enhanced(0x90, b"vp09", &vpcc))
        .unwrap();
    let [MediaEvent::Config(CodecConfig::Vp9(config))] = events.as_slice() else {
        panic!("expected a VP9 config, got {events:?}");
    };
    assert_eq!((config.bit_depth, config.width), (8, 0));
    let events = demuxer
        .push_video(0, &enhanced(0x91, b"vp09", &hex(VP9_KEYFRAME)))
        .unwrap();
    let [MediaEvent::Config(CodecConfig::Vp9(config)), MediaEvent::Frame(frame)] =
        events.as_slice()
    else {
        panic!("expected a sized VP9 config and a frame, got {events:?}");
    };
    assert_eq!((config.width, config.height), (320, 240));
    assert!(frame.keyframe);
}

/// Applies a writer's output and final metadata to one byte vector, as an actor would to a file.
fn write_file(writer: &mut FlvWriter, frames: &[Frame]) -> Vec<u8> {
    let mut file = writer.header().to_vec();
    for frame in frames {
        file.extend_from_slice(&writer.write_frame(frame).unwrap());
    }
    let finish = writer.finish();
    let at = finish.metadata_offset as usize;
    file[at..at + finish.metadata.len()].copy_from_slice(&finish.metadata);
    assert_eq!(finish.file_size, file.len() as u64);
    file
}

fn onmetadata(file: &[u8]) -> AmfValue {
    let tag = FlvReader::new(file).unwrap().next().unwrap().unwrap();
    assert_eq!(tag.kind, TagKind::Script);
    let values = decode_all(tag.data).unwrap();
    assert_eq!(values[0], AmfValue::String("onMetaData".into()));
    values[1].clone()
}

fn video_frame(dts_90k: i64, cts_90k: i64, keyframe: bool, payload: &[u8]) -> Frame {
    let mut data = (payload.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(payload);
    Frame {
        track: TrackKind::Video,
        pts: dts_90k + cts_90k,
        dts: dts_90k,
        timescale: 90_000,
        keyframe,
        data: Bytes::from(data),
    }
}

#[test]
fn written_file_reads_back_with_the_same_frames_and_an_index() {
    let avc = AvcConfig::from_record(&hex(AVC_RECORD)).unwrap();
    let aac = AacConfig::from_params(2, 48_000, 2).unwrap();
    let mut writer = FlvWriter::new(
        Some(CodecConfig::H264(avc.clone())),
        Some(CodecConfig::Aac(aac.clone())),
        FlvWriterOptions::default(),
    )
    .unwrap();
    let start = 1_000_000i64; // Arbitrary RTP-like start, rebased to 0.
    let mut input = Vec::new();
    for i in 0..100i64 {
        input.push(video_frame(
            start + i * 3600,
            7200,
            i % 25 == 0,
            &[0x65, i as u8],
        ));
        input.push(Frame {
            track: TrackKind::Audio,
            pts: 48 * (40 * i) + 480,
            dts: 48 * (40 * i) + 480,
            timescale: 48_000,
            keyframe: true,
            data: Bytes::from(vec![0x21, i as u8]),
        });
    }
    let file = write_file(&mut writer, &input);

    let mut demuxer = FlvDemuxer::new();
    let mut configs = Vec::new();
    let mut out = Vec::new();
    for tag in FlvReader::new(&file).unwrap() {
        let tag = tag.unwrap();
        let events = match tag.kind {
            TagKind::Video => demuxer.push_video(tag.timestamp_ms, tag.data).unwrap(),
            TagKind::Audio => demuxer.push_audio(tag.timestamp_ms, tag.data).unwrap(),
            TagKind::Script => continue,
        };
        for event in events {
            match event {
                MediaEvent::Config(c) => configs.push(c),
                MediaEvent::Frame(f) => out.push(f),
            }
        }
    }
    assert_eq!(configs, vec![CodecConfig::H264(avc), CodecConfig::Aac(aac)]);
    assert_eq!(out.len(), input.len());
    for (i, (got, want)) in out.iter().zip(&input).enumerate() {
        assert_eq!(got.data, want.data, "frame {i}");
        assert_eq!(got.keyframe, want.keyframe, "frame {i}");
        // Both tracks are rebased on the first frame written (video at 1_000_000 / 90 kHz);
        // audio starts earlier on its own clock and is clamped to 0.
        let want_ms = want.dts * 1000 / i64::from(want.timescale);
        let want_dts = match want.track {
            TrackKind::Video => want_ms - start * 1000 / 90_000,
            TrackKind::Audio => (want_ms - start * 1000 / 90_000).max(0),
        };
        assert_eq!(got.dts, want_dts, "frame {i}");
        if want.track == TrackKind::Video {
            assert_eq!(got.pts - got.dts, 80, "frame {i}");
        }
    }

    let meta = onmetadata(&file);
    let number = |key: &str| meta.get(key).and_then(AmfValue::as_number).unwrap();
    assert_eq!(number("filesize"), file.len() as f64);
    assert_eq!(number("width"), 320.0);
    assert_eq!(number("videocodecid"), 7.0);
    assert_eq!(number("audiosamplerate"), 48_000.0);
    assert_eq!(number("framerate"), 25.0);
    assert!(
        (number("duration") - 4.0).abs() < 0.05,
        "{}",
        number("duration")
    );
    let keyframes = meta.get("keyframes").unwrap();
    let Some(AmfValue::StrictArray(times)) = keyframes.get("times") else {
        panic!("no times in {keyframes:?}");
    };
    let Some(AmfValue::StrictArray(positions)) = keyframes.get("filepositions") else {
        panic!("no filepositions in {keyframes:?}");
    };
    assert_eq!(times.len(), 4);
    assert_eq!(times[1], AmfValue::Number(1.0));
    // Every position points at a video key frame tag with that time.
    for (time, position) in times.iter().zip(positions) {
        let offset = position.as_number().unwrap() as u64;
        let tag = FlvReader::new(&file)
            .unwrap()
            .map(Result::unwrap)
            .find(|t| t.offset == offset)
            .unwrap();
        assert_eq!(tag.kind, TagKind::Video);
        assert_eq!(tag.data[0] >> 4, 1);
        assert_eq!(
            f64::from(tag.timestamp_ms) / 1000.0,
            time.as_number().unwrap()
        );
    }
}

#[test]
fn metadata_fills_its_reservation_exactly_and_thins_the_index_to_fit() {
    let avc = AvcConfig::from_record(&hex(AVC_RECORD)).unwrap();
    let options = FlvWriterOptions {
        metadata_size: 1024,
        ..FlvWriterOptions::default()
    };
    let mut writer = FlvWriter::new(Some(CodecConfig::H264(avc)), None, options).unwrap();
    let input: Vec<Frame> = (0..500)
        .map(|i| video_frame(i * 9000, 0, true, &[0x65]))
        .collect();
    let file = write_file(&mut writer, &input);
    let finish = writer.finish();
    assert_eq!(finish.keyframes_total, 500);
    assert!(finish.keyframes_indexed < 500 && finish.keyframes_indexed > 10);
    assert_eq!(finish.metadata.len(), 11 + 1024 + 4);
    let meta = onmetadata(&file);
    let Some(AmfValue::StrictArray(times)) = meta.get("keyframes").and_then(|k| k.get("times"))
    else {
        panic!("no keyframe times");
    };
    assert_eq!(times.len(), finish.keyframes_indexed);
    assert_eq!(times.first(), Some(&AmfValue::Number(0.0)));
    assert_eq!(times.last(), Some(&AmfValue::Number(49.9)));
    let tag = FlvReader::new(&file).unwrap().next().unwrap().unwrap();
    assert_eq!(tag.data.len(), 1024);
}

#[test]
fn enhanced_codecs_round_trip_through_writer_and_demuxer() {
    let hevc = HevcConfig::from_parameter_sets(
        &[Bytes::from(hex(HEVC_VPS))],
        &[Bytes::from(hex(HEVC_SPS))],
        &[Bytes::from(hex(HEVC_PPS))],
    )
    .unwrap();
    let av1 = Av1Config::from_sequence_header(&hex(AV1_SEQUENCE_HEADER)).unwrap();
    let vp9 = Vp9Config::from_keyframe(&hex(VP9_KEYFRAME))
        .unwrap()
        .unwrap();
    for config in [
        CodecConfig::H265(hevc),
        CodecConfig::Av1(av1),
        CodecConfig::Vp9(vp9),
    ] {
        let mut writer =
            FlvWriter::new(Some(config.clone()), None, FlvWriterOptions::default()).unwrap();
        let cts = if config.codec() == crate::Codec::H265 {
            3600
        } else {
            0
        };
        let mut input = vec![
            video_frame(0, cts, true, &[0x26, 1]),
            video_frame(3600, 0, false, &[0x02, 1]),
        ];
        if config.codec() == crate::Codec::Vp9 {
            input[0].data = Bytes::from(hex(VP9_KEYFRAME));
        }
        let file = write_file(&mut writer, &input);
        let mut demuxer = FlvDemuxer::new();
        let mut events = Vec::new();
        for tag in FlvReader::new(&file).unwrap().map(Result::unwrap) {
            if tag.kind == TagKind::Video {
                events.extend(demuxer.push_video(tag.timestamp_ms, tag.data).unwrap());
            }
        }
        // VP9 announces its size again at the first key frame; the last config is complete.
        let last_config = events
            .iter()
            .rev()
            .find(|e| matches!(e, MediaEvent::Config(_)));
        assert_eq!(
            last_config,
            Some(&MediaEvent::Config(config.clone())),
            "{config:?}"
        );
        let got = frames(&events);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].pts - got[0].dts, cts / 90);
        assert_eq!(got[1].dts, 40);
        assert_eq!(got[0].data, input[0].data);
    }
}

#[test]
fn writer_rejects_codecs_flv_cannot_carry_and_missing_tracks() {
    let opus = CodecConfig::Opus(crate::codec::OpusConfig::webrtc(2));
    assert!(matches!(
        FlvWriter::new(None, Some(opus), FlvWriterOptions::default()),
        Err(FlvError::UnwritableCodec { .. })
    ));
    let aac = CodecConfig::Aac(AacConfig::from_params(2, 48_000, 2).unwrap());
    let mut writer = FlvWriter::new(None, Some(aac), FlvWriterOptions::default()).unwrap();
    let err = writer
        .write_frame(&video_frame(0, 0, true, &[0x65]))
        .unwrap_err();
    assert!(matches!(
        err,
        FlvError::NoSuchTrack {
            kind: TrackKind::Video,
            ..
        }
    ));
}

#[test]
fn reader_rejects_bad_headers_sizes_and_truncation() {
    assert!(matches!(
        FlvReader::new(b"FLX\x01\x05\0\0\0\x09\0\0\0\0"),
        Err(FlvError::BadHeader { .. })
    ));
    assert!(matches!(
        FlvReader::new(b"FLV"),
        Err(FlvError::BadHeader { .. })
    ));
    assert!(matches!(
        FlvReader::new(b"FLV\x01\x05\0\0\0\x09\0\0\0\x01"),
        Err(FlvError::PreviousTagSize { .. })
    ));
    let aac = CodecConfig::Aac(AacConfig::from_params(2, 48_000, 2).unwrap());
    let mut writer = FlvWriter::new(None, Some(aac), FlvWriterOptions::default()).unwrap();
    let file = writer.header().to_vec();
    assert_eq!(
        FlvReader::new(&file).unwrap().map(Result::unwrap).count(),
        2
    );
    for cut in [file.len() - 1, file.len() - 5, 20] {
        let last = FlvReader::new(&file[..cut]).unwrap().last().unwrap();
        assert!(
            matches!(last, Err(FlvError::TruncatedTag { .. })),
            "cut {cut}: {last:?}"
        );
    }
    let mut bad = file.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let last = FlvReader::new(&bad).unwrap().last().unwrap();
    assert!(matches!(last, Err(FlvError::PreviousTagSize { .. })));
    let mut bad_type = file.clone();
    bad_type[13] = 7;
    let first = FlvReader::new(&bad_type).unwrap().next().unwrap();
    assert!(matches!(
        first,
        Err(FlvError::BadTagType {
            tag_type: 7,
            offset: 13
        })
    ));
}
