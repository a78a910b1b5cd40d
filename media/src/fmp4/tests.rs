use super::*;
use crate::codec::{AacConfig, AvcConfig};
use mp4_atom::{Any, Decode, Moof, TrunSamples};

fn avc() -> CodecConfig {
    CodecConfig::H264(AvcConfig {
        profile: 100,
        compatibility: 0,
        level: 31,
        sps: vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac])],
        pps: vec![Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])],
        width: 320,
        height: 240,
    })
}

fn aac() -> CodecConfig {
    CodecConfig::Aac(AacConfig {
        asc: Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44_100,
        channels: 2,
    })
}

fn video(ms: i64, key: bool) -> Frame {
    Frame {
        track: TrackKind::Video,
        pts: ms + 80,
        dts: ms,
        timescale: 1000,
        keyframe: key,
        data: Bytes::from(vec![0, 0, 0, 2, 0x65, ms as u8]),
    }
}

fn audio(ms: i64) -> Frame {
    Frame {
        track: TrackKind::Audio,
        pts: ms,
        dts: ms,
        timescale: 1000,
        keyframe: true,
        data: Bytes::from(vec![0x21, 0x10, ms as u8]),
    }
}

/// Records `seconds` of 25 fps video (a keyframe every second) and 44.1 kHz AAC.
fn record(seconds: i64) -> Vec<MuxOutput> {
    let mut m = Fmp4Muxer::new(Fmp4Options::default());
    let mut out = Vec::new();
    out.extend(m.set_config(avc()).unwrap());
    out.extend(m.set_config(aac()).unwrap());
    let mut a = 0.0f64;
    for i in 0..seconds * 25 {
        let ms = i * 40;
        out.extend(m.push(video(ms, i % 25 == 0)).unwrap());
        while a < (ms + 40) as f64 {
            out.extend(m.push(audio(a.round() as i64)).unwrap());
            a += 1024.0 * 1000.0 / 44_100.0;
        }
    }
    out.extend(m.finish().unwrap());
    out
}

fn segments(out: &[MuxOutput], track: TrackKind) -> Vec<SegmentInfo> {
    out.iter()
        .filter_map(|o| match o {
            MuxOutput::SegmentDone(s) if s.track == track => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn init_segments_decode_with_the_codec_boxes() {
    let mut m = Fmp4Muxer::new(Fmp4Options::default());
    for config in [avc(), aac()] {
        let Some(MuxOutput::Init { data, .. }) = m.set_config(config).unwrap() else {
            panic!("no init segment");
        };
        let mut buf = &data[..];
        assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
            panic!("no moov");
        };
        assert!(moov.mvex.is_some());
        assert_eq!(moov.trak[0].mdia.minf.stbl.stsd.codecs.len(), 1);
    }
    assert!(
        m.set_config(avc()).unwrap().is_none(),
        "same config twice is a no-op"
    );
}

#[test]
fn segments_are_cut_at_keyframes_near_the_target_and_are_contiguous() {
    let out = record(7);
    let v = segments(&out, TrackKind::Video);
    assert_eq!(v.len(), 4, "{v:?}");
    assert_eq!(v.iter().map(|s| s.number).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(v.iter().map(|s| s.samples).sum::<u32>(), 175);
    for pair in v.windows(2) {
        assert_eq!(pair[0].start + pair[0].duration, pair[1].start);
        assert_eq!(pair[0].duration, 2 * 90_000);
    }
    let a = segments(&out, TrackKind::Audio);
    assert_eq!(a.len(), 4);
    for pair in a.windows(2) {
        assert_eq!(pair[0].start + pair[0].duration, pair[1].start);
    }
}

#[test]
fn fragments_are_about_half_a_second_and_carry_tfdt_and_cts() {
    let out = record(3);
    let mut video_fragments = 0;
    let mut next_dts = 0u64;
    for o in &out {
        let MuxOutput::Fragment {
            track: TrackKind::Video,
            data,
            ..
        } = o
        else {
            continue;
        };
        video_fragments += 1;
        let mut buf = &data[..];
        let moof = loop {
            match Any::decode(&mut buf).unwrap() {
                Any::Moof(m) => break m,
                Any::Styp(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        let traf = &moof.traf[0];
        let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
        assert_eq!(tfdt, next_dts);
        let TrunSamples::Explicit(entries) = &traf.trun[0].samples else {
            panic!("inherited samples");
        };
        assert!(entries.len() <= 13, "fragment of {} samples", entries.len());
        for e in entries {
            assert_eq!(e.cts, Some(80 * 90));
            next_dts += u64::from(e.duration.unwrap());
        }
        let offset = traf.trun[0].data_offset.unwrap() as usize;
        let moof_len = {
            let mut v = Vec::new();
            mp4_atom::Encode::encode(&moof, &mut v).unwrap();
            v.len()
        };
        assert_eq!(offset, moof_len + 8);
        let _ = Moof::decode(&mut &[][..]).is_err();
    }
    assert!(video_fragments >= 6, "{video_fragments} fragments in 3 s");
}

#[test]
fn video_before_the_first_keyframe_is_dropped_and_counted() {
    let mut m = Fmp4Muxer::new(Fmp4Options::default());
    m.set_config(avc()).unwrap();
    assert!(m.push(video(0, false)).unwrap().is_empty());
    m.push(video(40, true)).unwrap();
    m.push(video(80, false)).unwrap();
    let out = m.finish().unwrap();
    assert_eq!(m.stats().dropped_before_keyframe, 1);
    assert_eq!(segments(&out, TrackKind::Video)[0].samples, 2);
}

#[test]
fn a_frame_without_config_is_an_error_and_a_changed_codec_is_refused() {
    let mut m = Fmp4Muxer::new(Fmp4Options::default());
    assert!(matches!(
        m.push(audio(0)),
        Err(Fmp4Error::NoTrack(TrackKind::Audio))
    ));
    m.set_config(aac()).unwrap();
    m.push(audio(0)).unwrap();
    let opus = CodecConfig::Opus(crate::codec::OpusConfig::webrtc(2));
    assert!(matches!(
        m.set_config(opus),
        Err(Fmp4Error::ConfigChanged { .. })
    ));
}

#[test]
fn backwards_timestamps_are_clamped_not_written_negative() {
    let mut m = Fmp4Muxer::new(Fmp4Options::default());
    m.set_config(aac()).unwrap();
    m.push(audio(100)).unwrap();
    m.push(audio(50)).unwrap();
    m.push(audio(150)).unwrap();
    let out = m.finish().unwrap();
    assert_eq!(m.stats().clamped_timestamps, 1);
    assert_eq!(segments(&out, TrackKind::Audio)[0].samples, 3);
}

#[test]
fn reordered_frames_report_how_far_presentation_runs_past_the_decode_end() {
    let out = record(3);
    let v = segments(&out, TrackKind::Video);
    // Every frame is shown 80 ms after it is decoded (cts = 80 ms at 90 kHz).
    assert!(v.iter().all(|s| s.presentation_tail == 80 * 90), "{v:?}");
    assert!(segments(&out, TrackKind::Audio)
        .iter()
        .all(|s| s.presentation_tail == 0));
}
