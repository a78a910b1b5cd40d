//! Depacketizer behaviour, driven by packets made with the `rtp` crate's payloaders (or by hand
//! where those are wrong) from real encoder output in `media/testdata`.

use bytes::Bytes;
use rtp::codecs::av1::Av1Payloader;
use rtp::codecs::h264::H264Payloader;
use rtp::codecs::opus::OpusPayloader;
use rtp::codecs::vp8::Vp8Payloader;
use rtp::codecs::vp9::Vp9Payloader;
use rtp::packetizer::Payloader;

use super::*;
use crate::codec::h264::tests::annexb_nals;
use crate::codec::vp8::tests::ivf_frames;
use crate::TrackKind;

const H264_320X240: &[u8] = include_bytes!("../../testdata/h264_320x240.h264");
const H265_320X240: &[u8] = include_bytes!("../../testdata/h265_320x240.h265");
const VP8_320X240: &[u8] = include_bytes!("../../testdata/vp8_320x240.ivf");
const VP9_320X240: &[u8] = include_bytes!("../../testdata/vp9_320x240.ivf");
const AV1_320X240: &[u8] = include_bytes!("../../testdata/av1_320x240.obu");

const SSRC: u32 = 0x1234_5678;

/// One RTP packet: a 12-byte header (V=2, PT 96) and the payload.
fn rtp(seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Packets for a sequence of frames: one timestamp per frame, the marker on each frame's last packet.
fn packetize(frames: &[Vec<Bytes>], first_seq: u16, first_ts: u32, ts_step: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut seq = first_seq;
    for (i, payloads) in frames.iter().enumerate() {
        let ts = first_ts.wrapping_add(ts_step.wrapping_mul(i as u32));
        for (j, payload) in payloads.iter().enumerate() {
            out.push(rtp(seq, ts, j + 1 == payloads.len(), payload));
            seq = seq.wrapping_add(1);
        }
    }
    out
}

/// Pushes every packet, draining events after each push; errors are collected.
fn run(d: &mut RtpDepacketizer, packets: &[Vec<u8>]) -> (Vec<MediaEvent>, Vec<RtpError>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for p in packets {
        if let Err(e) = d.push(p) {
            errors.push(e);
        }
        while let Some(e) = d.pull() {
            events.push(e);
        }
    }
    events.extend(d.flush());
    (events, errors)
}

fn frames(events: &[MediaEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Frame(f) => Some(f),
            MediaEvent::Config(_) => None,
        })
        .collect()
}

fn configs(events: &[MediaEvent]) -> Vec<&CodecConfig> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Config(c) => Some(c),
            MediaEvent::Frame(_) => None,
        })
        .collect()
}

/// Groups H.264 NAL units into access units (a new one at SPS/AUD/SEI or a first slice after a slice).
fn h264_access_units(stream: &[u8]) -> Vec<Vec<Bytes>> {
    let mut units: Vec<Vec<Bytes>> = Vec::new();
    let mut has_vcl = false;
    for nal in annexb_nals(stream) {
        let t = nal[0] & 0x1f;
        let vcl = (1..=5).contains(&t);
        let opens = (vcl && nal[1] & 0x80 != 0) || matches!(t, 6..=9);
        if units.is_empty() || (opens && has_vcl) {
            units.push(Vec::new());
            has_vcl = false;
        }
        has_vcl |= vcl;
        // A non-empty list was pushed above.
        units.last_mut().unwrap().push(nal);
    }
    units
}

/// The AVCC form of NAL units, without AUD and filler.
fn avcc(nals: &[Bytes], drop: impl Fn(&Bytes) -> bool) -> Bytes {
    let mut out = Vec::new();
    for nal in nals.iter().filter(|n| !drop(n)) {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

fn annexb(nals: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

/// H.264 frames made into RTP payloads by the `rtp` crate's payloader.
fn h264_payloads(units: &[Vec<Bytes>], mtu: usize) -> Vec<Vec<Bytes>> {
    let mut payloader = H264Payloader::default();
    units
        .iter()
        .map(|nals| payloader.payload(mtu, &annexb(nals)).unwrap())
        .collect()
}

fn h264_packets(first_seq: u16, first_ts: u32) -> (Vec<Vec<Bytes>>, Vec<Vec<u8>>) {
    let units = h264_access_units(H264_320X240);
    let packets = packetize(&h264_payloads(&units, 1200), first_seq, first_ts, 3000);
    (units, packets)
}

fn is_aud_or_filler(nal: &Bytes) -> bool {
    matches!(nal[0] & 0x1f, 9 | 12)
}

#[test]
fn h264_frames_round_trip_as_avcc_after_their_config() {
    let (units, packets) = h264_packets(1000, 90_000);
    assert!(packets.len() > units.len(), "the key frame is fragmented");
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let MediaEvent::Config(CodecConfig::H264(config)) = &events[0] else {
        panic!("config first, got {:?}", events[0]);
    };
    assert_eq!((config.width, config.height), (320, 240));
    let frames = frames(&events);
    assert_eq!(frames.len(), units.len());
    for (i, (frame, nals)) in frames.iter().zip(&units).enumerate() {
        assert_eq!(frame.data, avcc(nals, is_aud_or_filler), "frame {i}");
        assert_eq!(frame.pts, 3000 * i as i64);
        assert_eq!(frame.dts, frame.pts);
        assert_eq!(frame.timescale, 90_000);
        assert_eq!(frame.track, TrackKind::Video);
        assert_eq!(frame.keyframe, i == 0);
    }
    let stats = d.stats();
    assert_eq!(
        (stats.frames, stats.lost_packets, stats.dropped_frames),
        (3, 0, 0)
    );
    assert_eq!(stats.packets, packets.len() as u64);
}

#[test]
fn h264_frames_before_the_first_parameter_sets_are_dropped_and_counted() {
    let units = h264_access_units(H264_320X240);
    // The P frames alone: no SPS/PPS, no IDR.
    let packets = packetize(&h264_payloads(&units[1..], 1200), 1, 0, 3000);
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty());
    assert!(events.is_empty());
    assert_eq!(d.stats().dropped_frames, 2);
}

#[test]
fn a_lost_packet_drops_frames_until_the_next_keyframe_and_is_counted() {
    let units = h264_access_units(H264_320X240);
    // IDR, P, P, then the IDR again, and P.
    let mut all = units.clone();
    all.push(units[0].clone());
    all.push(units[1].clone());
    let payloads = h264_payloads(&all, 1200);
    let mut packets = packetize(&payloads, 500, 0, 3000);
    // Drop the single packet of the first P frame (its index is after the key frame's packets).
    let lost = payloads[0].len();
    packets.remove(lost);
    let mut d = RtpDepacketizer::with_reorder_window(Codec::H264, 90_000, 4);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let frames = frames(&events);
    let pts: Vec<i64> = frames.iter().map(|f| f.pts).collect();
    assert_eq!(
        pts,
        vec![0, 9000, 12_000],
        "the second P frame waits for the key frame"
    );
    assert!(frames[1].keyframe);
    let stats = d.stats();
    assert_eq!(stats.lost_packets, 1);
    assert_eq!(stats.dropped_frames, 1);
    assert_eq!(stats.frames, 3);
}

#[test]
fn a_lost_fragment_never_yields_a_corrupt_frame() {
    let (units, mut packets) = h264_packets(7, 0);
    packets.remove(2); // a middle FU-A of the key frame
    let mut d = RtpDepacketizer::with_reorder_window(Codec::H264, 90_000, 0);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        frames(&events).is_empty(),
        "no key frame, so nothing is emitted"
    );
    assert_eq!(d.stats().lost_packets, 1);
    assert_eq!(d.stats().dropped_frames, units.len() as u64);
}

#[test]
fn reordered_packets_within_the_window_are_recovered_without_loss() {
    let (units, mut packets) = h264_packets(40, 0);
    packets.swap(1, 3);
    packets.swap(4, 5);
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames(&events).len(), units.len());
    let stats = d.stats();
    assert_eq!((stats.lost_packets, stats.dropped_frames), (0, 0));
    assert_eq!(
        stats.reordered, 3,
        "packets 1 and 2 came after 3, and 4 after 5"
    );
}

#[test]
fn duplicate_packets_are_dropped_and_counted() {
    let (units, packets) = h264_packets(40, 0);
    let mut doubled = Vec::new();
    for p in &packets {
        doubled.push(p.clone());
        doubled.push(p.clone());
    }
    doubled.push(packets[0].clone());
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &doubled);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames(&events).len(), units.len());
    assert_eq!(d.stats().duplicates, packets.len() as u64 + 1);
    assert_eq!(d.stats().lost_packets, 0);
}

#[test]
fn sequence_and_timestamp_wraparound_are_invisible() {
    let (units, packets) = h264_packets(65_533, u32::MAX - 2000);
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let pts: Vec<i64> = frames(&events).iter().map(|f| f.pts).collect();
    assert_eq!(pts.len(), units.len());
    assert_eq!(pts, vec![0, 3000, 6000]);
    assert_eq!(d.stats().lost_packets, 0);
}

/// SPS+PPS in a STAP-A, then an IDR slice, as hand-made payloads.
fn h264_key_frame_payloads() -> Vec<Bytes> {
    let units = h264_access_units(H264_320X240);
    let sps = units[0].iter().find(|n| n[0] & 0x1f == 7).unwrap().clone();
    let pps = units[0].iter().find(|n| n[0] & 0x1f == 8).unwrap().clone();
    let mut stap = vec![24u8];
    for n in [&sps, &pps] {
        stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
        stap.extend_from_slice(n);
    }
    vec![
        Bytes::from(stap),
        Bytes::from_static(&[0x65, 0x88, 0x84, 0x00]),
    ]
}

#[test]
fn a_truncated_fu_a_is_an_error_with_context_and_the_depacketizer_recovers() {
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let key = h264_key_frame_payloads();
    // A one-byte FU-A (no FU header), then an FU-A start that the marker ends without an end fragment.
    let packets = vec![
        rtp(1, 0, false, &key[0]),
        rtp(2, 0, true, &[0x7c]),
        rtp(3, 3000, false, &[0x7c, 0x85, 1, 2, 3]),
        rtp(4, 3000, true, &[0x7c, 0x05, 4, 5]),
        rtp(5, 6000, false, &key[0]),
        rtp(6, 6000, true, &key[1]),
    ];
    let (events, errors) = run(&mut d, &packets);
    assert_eq!(
        errors[0],
        RtpError::Truncated {
            codec: Codec::H264,
            seq: 2,
            ssrc: SSRC,
            what: "FU-A header"
        }
    );
    assert!(matches!(
        errors[1],
        RtpError::BadFragment {
            seq: 4,
            ssrc: SSRC,
            ..
        }
    ));
    assert_eq!(errors.len(), 2);
    let frames = frames(&events);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].pts, 0, "the first emitted frame is pts 0");
    assert!(frames[0].keyframe);
}

#[test]
fn a_stap_a_with_a_bad_length_is_an_error() {
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    for (seq, payload) in [
        (1u16, vec![24u8, 0x00, 0x09, 0x67, 0x42]),
        (2, vec![24, 0x00, 0x02, 0x67, 0x42, 0x00]),
        (3, vec![24, 0x00, 0x00]),
    ] {
        let err = d.push(&rtp(seq, seq.into(), true, &payload)).unwrap_err();
        assert!(
            matches!(err, RtpError::BadAggregationLength { seq: s, .. } if s == seq),
            "{err:?}"
        );
    }
    // Still usable.
    let key = h264_key_frame_payloads();
    d.push(&rtp(4, 9000, false, &key[0])).unwrap();
    d.push(&rtp(5, 9000, true, &key[1])).unwrap();
    assert!(matches!(d.pull(), Some(MediaEvent::Config(_))));
    assert!(matches!(d.pull(), Some(MediaEvent::Frame(_))));
}

#[test]
fn an_oversized_nal_is_an_error_and_frames_resume_at_the_next_keyframe() {
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let key = h264_key_frame_payloads();
    let mut huge = vec![0x65u8, 0x88];
    huge.resize(MAX_FRAME_BYTES + 1, 0xab);
    let err = d.push(&rtp(1, 0, true, &huge)).unwrap_err();
    assert!(
        matches!(err, RtpError::UnitTooLarge { seq: 1, .. }),
        "{err:?}"
    );
    // FU-A fragments that add up past the limit.
    let mut big = vec![0x7cu8, 0x85];
    big.resize(60_000, 1);
    let mut result = d.push(&rtp(2, 3000, false, &big));
    let mut seq = 3u16;
    big[1] = 0x05;
    while result.is_ok() && seq < 400 {
        result = d.push(&rtp(seq, 3000, false, &big));
        seq += 1;
    }
    assert!(
        matches!(result, Err(RtpError::UnitTooLarge { .. })),
        "{result:?}"
    );
    d.push(&rtp(seq, 6000, false, &key[0])).unwrap();
    d.push(&rtp(seq + 1, 6000, true, &key[1])).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| d.pull()).collect();
    assert_eq!(frames(&events).len(), 1);
}

#[test]
fn unsupported_h264_packet_types_are_rejected() {
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let key = h264_key_frame_payloads();
    d.push(&rtp(1, 0, false, &key[0])).unwrap();
    d.push(&rtp(2, 0, true, &key[1])).unwrap();
    for (seq, t) in [(3u16, 25u8), (4, 26), (5, 29), (6, 30)] {
        let err = d.push(&rtp(seq, 0, true, &[t, 1, 2, 3])).unwrap_err();
        assert!(
            matches!(err, RtpError::UnsupportedPacketType { packet_type, .. } if packet_type == t)
        );
    }
}

#[test]
fn malformed_rtp_headers_are_errors_and_leave_the_depacketizer_usable() {
    let mut d = RtpDepacketizer::new(Codec::Opus, 48_000);
    assert!(matches!(
        d.push(&[0x80, 96, 0, 1]),
        Err(RtpError::MalformedHeader { seq: Some(1), .. })
    ));
    let mut bad_version = rtp(2, 0, false, &[1]);
    bad_version[0] = 0x40;
    assert!(d.push(&bad_version).is_err());
    let mut bad_padding = rtp(3, 0, false, &[1, 9]);
    bad_padding[0] |= 0x20;
    assert!(d.push(&bad_padding).is_err());
    let mut ext = rtp(4, 0, false, &[]);
    ext[0] |= 0x10;
    ext.extend_from_slice(&[0xbe, 0xde, 0x00, 0x05]);
    assert!(d.push(&ext).is_err());
    assert_eq!(d.stats().packets, 0);
    d.push(&rtp(5, 960, false, &[0xfc, 1, 2])).unwrap();
    assert!(matches!(d.pull(), Some(MediaEvent::Config(_))));
    assert!(matches!(d.pull(), Some(MediaEvent::Frame(_))));
}

#[test]
fn header_extensions_csrcs_and_padding_are_stripped() {
    let mut d = RtpDepacketizer::new(Codec::Opus, 48_000);
    let mut p = vec![0x80 | 0x20 | 0x10 | 0x01, 111];
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 42]); // CSRC
    p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00]); // one-byte extension
    p.extend_from_slice(&[0xfc, 0xaa, 0xbb]); // payload
    p.extend_from_slice(&[0, 0, 3]); // padding
    d.push(&p).unwrap();
    let events = d.flush();
    assert_eq!(
        frames(&events)[0].data,
        Bytes::from_static(&[0xfc, 0xaa, 0xbb])
    );
}

/// H.265 payloads made by hand (the `rtp` crate's HevcPayloader hard-codes FU types and can
/// omit the end bit): parameter sets in one AP, small NAL units single, large ones as FUs.
fn h265_payloads(nals: &[Bytes], mtu: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut ap = vec![48 << 1, 1];
    for nal in nals {
        let t = (nal[0] >> 1) & 0x3f;
        if (32..=34).contains(&t) {
            ap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            ap.extend_from_slice(nal);
            continue;
        }
        if ap.len() > 2 {
            out.push(Bytes::from(std::mem::replace(&mut ap, vec![48 << 1, 1])));
        }
        if nal.len() <= mtu {
            out.push(nal.clone());
            continue;
        }
        let chunks: Vec<&[u8]> = nal[2..].chunks(mtu - 3).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut fu = vec![(nal[0] & 0x81) | (49 << 1), nal[1]];
            let mut header = t;
            if i == 0 {
                header |= 0x80;
            }
            if i + 1 == chunks.len() {
                header |= 0x40;
            }
            fu.push(header);
            fu.extend_from_slice(chunk);
            out.push(Bytes::from(fu));
        }
    }
    out
}

fn h265_access_units(stream: &[u8]) -> Vec<Vec<Bytes>> {
    let mut units: Vec<Vec<Bytes>> = Vec::new();
    let mut has_vcl = false;
    for nal in annexb_nals(stream) {
        let t = (nal[0] >> 1) & 0x3f;
        let vcl = t < 32;
        let opens = (vcl && nal[2] & 0x80 != 0) || matches!(t, 32..=35 | 39);
        if units.is_empty() || (opens && has_vcl) {
            units.push(Vec::new());
            has_vcl = false;
        }
        has_vcl |= vcl;
        // A non-empty list was pushed above.
        units.last_mut().unwrap().push(nal);
    }
    units
}

#[test]
fn h265_frames_round_trip_through_ap_and_fu_packets() {
    let units = h265_access_units(H265_320X240);
    let payloads: Vec<Vec<Bytes>> = units.iter().map(|u| h265_payloads(u, 500)).collect();
    assert!(payloads[0].iter().any(|p| (p[0] >> 1) & 0x3f == 49));
    let packets = packetize(&payloads, 9, 0, 3000);
    let mut d = RtpDepacketizer::new(Codec::H265, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let MediaEvent::Config(CodecConfig::H265(config)) = &events[0] else {
        panic!("config first");
    };
    assert_eq!((config.width, config.height), (320, 240));
    let frames = frames(&events);
    assert_eq!(frames.len(), units.len());
    for (frame, nals) in frames.iter().zip(&units) {
        assert_eq!(
            frame.data,
            avcc(nals, |n| matches!((n[0] >> 1) & 0x3f, 35 | 38))
        );
    }
    assert!(frames[0].keyframe);
    assert!(frames[1..].iter().all(|f| !f.keyframe));
}

#[test]
fn an_h265_paci_packet_is_unwrapped() {
    let units = h265_access_units(H265_320X240);
    let mut payloads = h265_payloads(&units[0], 60_000);
    // Wrap the IDR slice (the last payload) in a PACI with a 2-byte header extension.
    let idr = payloads.pop().unwrap();
    let ctype = (idr[0] >> 1) & 0x3f;
    let mut paci = vec![(idr[0] & 0x81) | (50 << 1), idr[1]];
    paci.push(ctype << 1); // A=0, cType, PHSsize high bit 0
    paci.push(2 << 4); // PHSsize 2, F0-F2/Y 0
    paci.extend_from_slice(&[0xee, 0xee]);
    paci.extend_from_slice(&idr[2..]);
    payloads.push(Bytes::from(paci));
    let packets = packetize(&[payloads], 1, 0, 3000);
    let mut d = RtpDepacketizer::new(Codec::H265, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        frames(&events)[0].data,
        avcc(&units[0], |n| matches!((n[0] >> 1) & 0x3f, 35 | 38))
    );
}

#[test]
fn vp8_frames_round_trip_and_a_key_frame_gives_the_size() {
    let frames_in = ivf_frames(VP8_320X240);
    let mut payloader = Vp8Payloader::default();
    payloader.enable_picture_id = true;
    let payloads: Vec<Vec<Bytes>> = frames_in
        .iter()
        .map(|f| payloader.payload(700, &Bytes::copy_from_slice(f)).unwrap())
        .collect();
    assert!(payloads[0].len() > 1);
    let packets = packetize(&payloads, 100, 5, 3000);
    let mut d = RtpDepacketizer::new(Codec::Vp8, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        configs(&events),
        vec![&CodecConfig::Vp8(crate::codec::Vp8Config {
            width: 320,
            height: 240
        })]
    );
    let out = frames(&events);
    assert_eq!(out.len(), frames_in.len());
    for (f, raw) in out.iter().zip(&frames_in) {
        assert_eq!(&f.data[..], *raw);
    }
    assert!(out[0].keyframe && !out[1].keyframe);
}

#[test]
fn vp9_frames_round_trip_in_flexible_mode() {
    let frames_in = ivf_frames(VP9_320X240);
    let mut payloader = Vp9Payloader::default();
    let payloads: Vec<Vec<Bytes>> = frames_in
        .iter()
        .map(|f| payloader.payload(800, &Bytes::copy_from_slice(f)).unwrap())
        .collect();
    let packets = packetize(&payloads, 65_500, 0, 3000);
    let mut d = RtpDepacketizer::new(Codec::Vp9, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let CodecConfig::Vp9(config) = configs(&events)[0] else {
        panic!("a VP9 config");
    };
    assert_eq!((config.width, config.height, config.profile), (320, 240, 0));
    let out = frames(&events);
    assert_eq!(out.len(), frames_in.len());
    for (f, raw) in out.iter().zip(&frames_in) {
        assert_eq!(&f.data[..], *raw);
    }
    assert!(out[0].keyframe && !out[1].keyframe);
}

#[test]
fn vp9_spatial_layers_become_a_superframe() {
    let frames_in = ivf_frames(VP9_320X240);
    let (l0, l1) = (frames_in[0], frames_in[1]);
    // Non-flexible mode with layer indices: I=1, L=1, B/E per layer frame.
    let packet = |b0: u8, sid: u8, data: &[u8]| {
        let mut p = vec![b0, 0x05, sid << 1, 0x00];
        p.extend_from_slice(data);
        p
    };
    let packets = vec![
        rtp(1, 0, false, &packet(0xa8, 0, &l0[..100])),
        rtp(2, 0, false, &packet(0xa4, 0, &l0[100..])),
        rtp(3, 0, true, &packet(0xac, 1, l1)),
    ];
    let mut d = RtpDepacketizer::new(Codec::Vp9, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let frame = frames(&events)[0].clone();
    assert_eq!(
        crate::codec::vp9::superframe_frames(&frame.data),
        vec![l0, l1]
    );
    assert!(frame.keyframe);
}

#[test]
fn opus_packets_are_frames_and_loss_only_removes_the_lost_packets() {
    let mut payloader = OpusPayloader;
    let payloads: Vec<Vec<Bytes>> = (0..5u8)
        .map(|i| {
            payloader
                .payload(1200, &Bytes::from(vec![0xfc, i, i]))
                .unwrap()
        })
        .collect();
    let mut packets = packetize(&payloads, 65_534, u32::MAX - 960, 960);
    packets.remove(2);
    let mut d = RtpDepacketizer::with_reorder_window(Codec::Opus, 48_000, 1);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        configs(&events),
        vec![&CodecConfig::Opus(crate::codec::OpusConfig::webrtc(2))]
    );
    let out = frames(&events);
    let pts: Vec<i64> = out.iter().map(|f| f.pts).collect();
    assert_eq!(pts, vec![0, 960, 2880, 3840]);
    assert!(out
        .iter()
        .all(|f| f.keyframe && f.track == TrackKind::Audio));
    assert_eq!(out[2].data, Bytes::from_static(&[0xfc, 3, 3]));
    let stats = d.stats();
    assert_eq!(
        (stats.lost_packets, stats.dropped_frames, stats.frames),
        (1, 0, 4)
    );
}

/// Splits a low-overhead AV1 stream into temporal units (each starts at a temporal delimiter).
fn av1_temporal_units(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    while !data.is_empty() {
        let (obu, used) = crate::codec::av1::parse_obu(data).unwrap();
        if obu.obu_type == 2 || units.is_empty() {
            units.push(Vec::new());
        }
        units.last_mut().unwrap().extend_from_slice(&data[..used]);
        data = &data[used..];
    }
    units
}

/// A temporal unit as this crate emits it: sized OBUs, temporal delimiters dropped.
fn av1_expected(mut tu: &[u8]) -> Bytes {
    let mut out = Vec::new();
    while !tu.is_empty() {
        let (obu, used) = crate::codec::av1::parse_obu(tu).unwrap();
        if obu.obu_type != 2 {
            obu.write_sized(&mut out);
        }
        tu = &tu[used..];
    }
    Bytes::from(out)
}

#[test]
fn av1_temporal_units_round_trip_as_sized_obus() {
    let units = av1_temporal_units(AV1_320X240);
    let mut payloader = Av1Payloader {};
    let payloads: Vec<Vec<Bytes>> = units
        .iter()
        .map(|tu| payloader.payload(300, &Bytes::copy_from_slice(tu)).unwrap())
        .collect();
    assert!(payloads[0].len() > 1, "the key frame is fragmented");
    let packets = packetize(&payloads, 3, 0, 3000);
    let mut d = RtpDepacketizer::new(Codec::Av1, 90_000);
    let (events, errors) = run(&mut d, &packets);
    assert!(errors.is_empty(), "{errors:?}");
    let CodecConfig::Av1(config) = configs(&events)[0] else {
        panic!("an AV1 config");
    };
    assert_eq!((config.width, config.height), (320, 240));
    let out = frames(&events);
    assert_eq!(out.len(), units.len());
    for (f, tu) in out.iter().zip(&units) {
        assert_eq!(f.data, av1_expected(tu));
    }
    assert!(out[0].keyframe && !out[1].keyframe);
}

#[test]
fn a_new_ssrc_restarts_sequence_tracking_and_keeps_pts_continuous() {
    let (_, first) = h264_packets(100, 0);
    let (_, mut second) = h264_packets(9, 777_777);
    for p in &mut second {
        p[8..12].copy_from_slice(&0xaabb_ccddu32.to_be_bytes());
    }
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    let (events, errors) = run(&mut d, &[first, second].concat());
    assert!(errors.is_empty(), "{errors:?}");
    let pts: Vec<i64> = frames(&events).iter().map(|f| f.pts).collect();
    assert_eq!(pts, vec![0, 3000, 6000, 6001, 9001, 12_001]);
    assert_eq!(d.stats().lost_packets, 0);
}

#[test]
fn aac_has_no_rtp_depacketizer() {
    let mut d = RtpDepacketizer::new(Codec::Aac, 48_000);
    assert_eq!(
        d.push(&rtp(1, 0, true, &[1])),
        Err(RtpError::UnsupportedCodec { codec: Codec::Aac })
    );
}

/// A tiny xorshift generator, so the mutation test needs no dependency and is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_packet_sequences_never_panic_or_emit_malformed_frames() {
    let units = h264_access_units(H264_320X240);
    let h264 = packetize(&h264_payloads(&units, 300), 1, 0, 3000);
    let h265_units = h265_access_units(H265_320X240);
    let h265: Vec<Vec<Bytes>> = h265_units.iter().map(|u| h265_payloads(u, 300)).collect();
    let h265 = packetize(&h265, 1, 0, 3000);
    let mut vp8 = Vp8Payloader::default();
    let vp8: Vec<Vec<Bytes>> = ivf_frames(VP8_320X240)
        .iter()
        .map(|f| vp8.payload(300, &Bytes::copy_from_slice(f)).unwrap())
        .collect();
    let mut vp9 = Vp9Payloader::default();
    let vp9: Vec<Vec<Bytes>> = ivf_frames(VP9_320X240)
        .iter()
        .map(|f| vp9.payload(300, &Bytes::copy_from_slice(f)).unwrap())
        .collect();
    let mut av1 = Av1Payloader {};
    let av1: Vec<Vec<Bytes>> = av1_temporal_units(AV1_320X240)
        .iter()
        .map(|tu| av1.payload(200, &Bytes::copy_from_slice(tu)).unwrap())
        .collect();
    let streams = [
        (Codec::H264, h264),
        (Codec::H265, h265),
        (Codec::Vp8, packetize(&vp8, 1, 0, 3000)),
        (Codec::Vp9, packetize(&vp9, 1, 0, 3000)),
        (Codec::Av1, packetize(&av1, 1, 0, 3000)),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for (codec, packets) in &streams {
        for _ in 0..300 {
            let mut d = RtpDepacketizer::with_reorder_window(*codec, 90_000, rng.below(8));
            let mut seq: Vec<Vec<u8>> = packets.clone();
            for _ in 0..rng.below(6) {
                let i = rng.below(seq.len());
                match rng.below(5) {
                    0 => {
                        seq.remove(i);
                    }
                    1 => {
                        let p = seq[i].clone();
                        seq.insert(rng.below(seq.len()), p);
                    }
                    2 => {
                        let j = rng.below(seq.len());
                        seq.swap(i, j);
                    }
                    3 => {
                        let len = seq[i].len();
                        let at = 12 + rng.below(len.saturating_sub(12));
                        if at < len {
                            seq[i][at] ^= 1 << rng.below(8);
                        }
                    }
                    _ => {
                        let keep = rng.below(seq[i].len() + 1);
                        seq[i].truncate(keep);
                    }
                }
            }
            let (events, _) = run(&mut d, &seq);
            let frames = frames(&events);
            assert!(frames.len() as u64 <= d.stats().packets);
            if let Some(MediaEvent::Frame(_)) = events.first() {
                panic!("{codec:?}: a frame before its config");
            }
            for f in frames {
                assert!(!f.data.is_empty());
                if matches!(codec, Codec::H264 | Codec::H265) {
                    let mut rest = &f.data[..];
                    while !rest.is_empty() {
                        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        assert!(len > 0 && len + 4 <= rest.len(), "{codec:?}: bad AVCC");
                        rest = &rest[4 + len..];
                    }
                }
            }
        }
    }
}

#[test]
fn emitted_pts_map_back_to_their_rtp_timestamps_across_a_wrap() {
    let units = h264_access_units(H264_320X240);
    // The P frames first (dropped: no key frame yet), then the key frame and a P frame.
    let mut all: Vec<Vec<Bytes>> = units[1..].to_vec();
    all.push(units[0].clone());
    all.push(units[1].clone());
    let first_ts = u32::MAX - 5000;
    let packets = packetize(&h264_payloads(&all, 1200), 1, first_ts, 3000);
    let mut d = RtpDepacketizer::new(Codec::H264, 90_000);
    assert_eq!(d.rtp_timestamp_of(0), None, "no frame yet");
    let (events, _) = run(&mut d, &packets);
    let frames = frames(&events);
    assert_eq!(frames.len(), 2);
    let key_ts = first_ts.wrapping_add(3000 * (units.len() as u32 - 1));
    assert_eq!(d.rtp_timestamp_of(frames[0].pts), Some(key_ts));
    assert_eq!(
        d.rtp_timestamp_of(frames[1].pts),
        Some(key_ts.wrapping_add(3000))
    );
}
