use super::*;
use crate::codec::{AacConfig, AvcConfig, HevcConfig, OpusConfig};
use bytes::Bytes;

fn avc() -> CodecConfig {
    CodecConfig::H264(AvcConfig {
        profile: 0x64,
        compatibility: 0,
        level: 0x1f,
        sps: vec![],
        pps: vec![],
        width: 1280,
        height: 720,
    })
}

fn seg(track: TrackKind, number: u32, start: u64, duration: u64) -> SegmentInfo {
    SegmentInfo {
        track,
        number,
        start,
        duration,
        timescale: 90_000,
        samples: 50,
        bytes: 500_000,
        presentation_tail: 0,
    }
}

#[test]
fn regular_segments_collapse_into_one_repeated_s_element() {
    let mut mpd = Mpd::new(0, 2.0);
    mpd.add_track(&avc(), 90_000, 1);
    for n in 0..43_200u64 {
        mpd.push_segment(&seg(TrackKind::Video, n as u32 + 1, n * 180_000, 180_000));
    }
    let text = mpd.render_static();
    assert!(
        text.contains("<S t=\"0\" d=\"180000\" r=\"43199\"/>"),
        "{text}"
    );
    assert!(text.lines().count() < 20, "{text}");
    assert!(text.contains("mediaPresentationDuration=\"PT86400.000S\""));
}

#[test]
fn a_gap_or_a_different_duration_starts_a_new_s_element() {
    let mut mpd = Mpd::new(0, 2.0);
    mpd.add_track(&avc(), 90_000, 1);
    mpd.push_segment(&seg(TrackKind::Video, 1, 0, 180_000));
    mpd.push_segment(&seg(TrackKind::Video, 2, 180_000, 180_000));
    mpd.push_segment(&seg(TrackKind::Video, 3, 360_000, 90_000));
    mpd.push_segment(&seg(TrackKind::Video, 4, 900_000, 90_000));
    assert_eq!(
        mpd.timeline(TrackKind::Video),
        [
            TimelineRun {
                t: 0,
                d: 180_000,
                r: 1
            },
            TimelineRun {
                t: 360_000,
                d: 90_000,
                r: 0
            },
            TimelineRun {
                t: 900_000,
                d: 90_000,
                r: 0
            },
        ]
    );
    let text = mpd.render_static();
    assert!(text.contains("<S t=\"0\" d=\"180000\" r=\"1\"/>\n            <S d=\"90000\"/>\n            <S t=\"900000\" d=\"90000\"/>"), "{text}");
}

#[test]
fn dynamic_manifest_names_live777_files_and_times_in_utc() {
    let mut mpd = Mpd::new(1_779_392_100_000, 2.0);
    mpd.add_track(&avc(), 90_000, 1);
    mpd.add_track(
        &CodecConfig::Aac(AacConfig {
            asc: Bytes::from_static(&[0x12, 0x10]),
            object_type: 2,
            sample_rate: 44_100,
            channels: 2,
        }),
        44_100,
        1,
    );
    let text = mpd.render_dynamic(1_779_392_102_500);
    assert!(text.contains("type=\"dynamic\""));
    assert!(
        text.contains("availabilityStartTime=\"2026-05-21T19:35:00.000Z\""),
        "{text}"
    );
    assert!(text.contains("publishTime=\"2026-05-21T19:35:02.500Z\""));
    assert!(text.contains("initialization=\"v_init.m4s\" media=\"v_seg_$Number%04d$.m4s\""));
    assert!(text.contains("initialization=\"a_init.m4s\" media=\"a_seg_$Number%04d$.m4s\""));
    assert!(text.contains("codecs=\"avc1.64001F\""));
    assert!(text.contains("codecs=\"mp4a.40.2\""));
    assert!(text.find("contentType=\"video\"") < text.find("contentType=\"audio\""));
}

#[test]
fn codec_strings_follow_rfc_6381() {
    let hevc = CodecConfig::H265(HevcConfig {
        profile_space: 0,
        tier_flag: false,
        profile_idc: 1,
        profile_compatibility_flags: 0x6000_0000,
        constraint_indicator_flags: 0x9000_0000_0000,
        level_idc: 93,
        chroma_format_idc: 1,
        bit_depth_luma: 8,
        bit_depth_chroma: 8,
        vps: vec![],
        sps: vec![],
        pps: vec![],
        width: 0,
        height: 0,
    });
    assert_eq!(codecs_string(&hevc), "hvc1.1.6.L93.90");
    assert_eq!(
        codecs_string(&CodecConfig::Opus(OpusConfig::webrtc(2))),
        "opus"
    );
}

#[test]
fn the_static_duration_covers_reordered_frames_shown_after_the_last_decode_time() {
    let mut mpd = Mpd::new(0, 2.0);
    mpd.add_track(&avc(), 90_000, 1);
    mpd.push_segment(&seg(TrackKind::Video, 1, 0, 180_000));
    let mut last = seg(TrackKind::Video, 2, 180_000, 180_000);
    last.presentation_tail = 7_200;
    mpd.push_segment(&last);
    assert!(mpd
        .render_static()
        .contains("mediaPresentationDuration=\"PT4.080S\""));
}
