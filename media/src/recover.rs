//! Crash recovery of spool files, sans-IO: how much of a file survived a kill -9, and what
//! it holds.
//!
//! A recorder appends each fragment (`styp`? + `moof` + `mdat`) to its segment file and
//! fsyncs it as it closes, and appends FLV tags the same way. After a kill -9 the last
//! fragment or tag may be torn. The functions here take the file's bytes and answer:
//! - [`valid_fmp4_prefix`]: the length to truncate a segment file to (ISO/IEC 14496-12
//!   §4.2 box structure, §8.8.4 `moof`, §8.1.1 `mdat`);
//! - [`segment_info`]: the timing of a (truncated) segment file, as the MPD needs it
//!   (§8.8.12 `tfdt`, §8.8.8 `trun`);
//! - [`init_timescale_and_config`]: a track's timescale (`mdhd`, §8.4.2) and codec
//!   configuration (the `stsd` sample entry mapped back to a [`CodecConfig`]);
//! - [`valid_flv_prefix`]: the length to truncate an FLV file to (FLV spec v10.1 §E.3).
//!
//! None of them panics on arbitrary input: a malformed box ends the valid prefix.

use crate::codec::{
    AacConfig, Av1Config, AvcConfig, CodecError, HevcConfig, OpusConfig, Vp8Config, Vp9Config,
};
use crate::flv::FlvReader;
use crate::fmp4::SegmentInfo;
use crate::{CodecConfig, TrackKind};
use bytes::Bytes;
use mp4_atom::{Atom, Codec as SampleEntry, Decode, DecodeMaybe, FourCC, Header, Moof, Moov};

/// Why a spool file could not be described.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// A box that the answer depends on could not be decoded.
    #[error("{kind} box at byte {offset} invalid: {source}")]
    Box {
        /// The box's FourCC.
        kind: FourCC,
        /// File offset of the box header.
        offset: usize,
        /// mp4-atom's error.
        #[source]
        source: mp4_atom::Error,
    },
    /// A segment file holds no complete fragment (it should be dropped).
    #[error("{track:?} segment {number} holds no complete fragment")]
    NoFragment {
        /// The track.
        track: TrackKind,
        /// The segment number.
        number: u32,
    },
    /// A fragment has no `traf`/`tfdt`, so its place on the timeline is unknown.
    #[error("{track:?} segment {number}: fragment at byte {offset} lacks {what}")]
    MissingTiming {
        /// The track.
        track: TrackKind,
        /// The segment number.
        number: u32,
        /// File offset of the `moof`.
        offset: usize,
        /// The missing box.
        what: &'static str,
    },
    /// The init segment has no complete `moov` with a track.
    #[error("init segment invalid: {what}")]
    BadInit {
        /// What was missing.
        what: &'static str,
    },
    /// The sample entry is of a codec recnode does not record.
    #[error("init segment sample entry {fourcc} is not a codec recnode records")]
    UnsupportedCodec {
        /// The sample entry's FourCC (or `????` when mp4-atom does not know it either).
        fourcc: String,
    },
    /// The sample entry's codec configuration could not be parsed back.
    #[error("init segment codec configuration invalid: {0}")]
    Codec(#[from] CodecError),
}

/// One complete top-level box: its kind and byte range.
#[derive(Debug, Clone, Copy)]
struct BoxSpan {
    kind: FourCC,
    start: usize,
    end: usize,
}

/// The complete top-level boxes of `data`, in order, up to the first incomplete or malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = BoxSpan> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(pos..)?;
        let mut cursor = rest;
        // `None`: fewer bytes than a header; `Err`: a size smaller than the header.
        let header = Header::decode_maybe(&mut cursor).ok()??;
        let header_len = rest.len() - cursor.len();
        // A size of 0 ("to the end of the file") is never written by a fragment writer,
        // so it cannot prove the box complete.
        let body = header.size?;
        let end = pos.checked_add(header_len)?.checked_add(body)?;
        if end > data.len() {
            return None;
        }
        let span = BoxSpan {
            kind: header.kind,
            start: pos,
            end,
        };
        pos = end;
        Some(span)
    })
}

/// Decodes the `moof` box spanning `span` of `data`.
fn decode_moof(data: &[u8], span: BoxSpan) -> Result<Moof, RecoverError> {
    let mut body = &data[span.start..span.end];
    Moof::decode(&mut body).map_err(|source| RecoverError::Box {
        kind: Moof::KIND,
        offset: span.start,
        source,
    })
}

/// The length of the longest prefix of a segment file made of complete top-level boxes
/// and ending with a complete `moof` + `mdat` pair; 0 when no fragment is complete.
///
/// A `moof` that does not decode, or an `mdat` that no `moof` precedes, ends the prefix.
pub fn valid_fmp4_prefix(data: &[u8]) -> usize {
    let mut valid = 0;
    let mut open_moof = false;
    for span in boxes(data) {
        match span.kind.as_ref() {
            b"moof" => {
                if open_moof || decode_moof(data, span).is_err() {
                    break;
                }
                open_moof = true;
            }
            b"mdat" => {
                if !open_moof {
                    break;
                }
                open_moof = false;
                valid = span.end;
            }
            // Boxes a segment may carry between fragments (§8.16.2 styp, §8.16.3 sidx,
            // §8.16.5 prft, DASH emsg, free space); a moof must be followed by its mdat.
            b"styp" | b"sidx" | b"prft" | b"emsg" | b"free" | b"skip" if !open_moof => {}
            _ => break,
        }
    }
    valid
}

/// Describes segment `number` of `track` from its file bytes: the `tfdt` of its first
/// fragment, the sum of its `trun` sample durations and its sample count, over the
/// complete fragments only ([`valid_fmp4_prefix`]). `timescale` is the track's, from
/// [`init_timescale_and_config`].
pub fn segment_info(
    track: TrackKind,
    number: u32,
    timescale: u32,
    data: &[u8],
) -> Result<SegmentInfo, RecoverError> {
    let valid = valid_fmp4_prefix(data);
    let data = &data[..valid];
    let mut start = None;
    let mut duration = 0u64;
    let mut samples = 0u32;
    let mut presentation_end = 0i128;
    for span in boxes(data).filter(|s| s.kind == Moof::KIND) {
        let moof = decode_moof(data, span)?;
        let missing = |what| RecoverError::MissingTiming {
            track,
            number,
            offset: span.start,
            what,
        };
        let traf = moof.traf.first().ok_or_else(|| missing("traf"))?;
        if start.is_none() {
            let tfdt = traf.tfdt.as_ref().ok_or_else(|| missing("tfdt"))?;
            start = Some(tfdt.base_media_decode_time);
        }
        let default_duration = traf.tfhd.default_sample_duration.unwrap_or(0);
        for trun in &traf.trun {
            for entry in trun.samples.iter() {
                let d = u64::from(entry.duration.unwrap_or(default_duration));
                // Presentation end relative to the segment start: decode time so far plus
                // this sample's composition offset and duration.
                let shown =
                    i128::from(duration) + i128::from(entry.cts.unwrap_or(0)) + i128::from(d);
                presentation_end = presentation_end.max(shown);
                duration += d;
                samples = samples.saturating_add(1);
            }
        }
    }
    let start = start.ok_or(RecoverError::NoFragment { track, number })?;
    let presentation_tail = u64::try_from(presentation_end - i128::from(duration)).unwrap_or(0);
    Ok(SegmentInfo {
        track,
        number,
        start,
        duration,
        timescale,
        samples,
        bytes: valid as u64,
        presentation_tail,
    })
}

/// Reads an init segment (`ftyp` + `moov`): the media timescale of its first track
/// (`mdhd`) and its codec configuration, mapped back from the `stsd` sample entry
/// (`avc1`/`avc3`, `hvc1`/`hev1`, `vp08`, `vp09`, `av01`, `mp4a`, `Opus`).
pub fn init_timescale_and_config(init: &[u8]) -> Result<(u32, CodecConfig), RecoverError> {
    let span = boxes(init)
        .find(|s| s.kind == Moov::KIND)
        .ok_or(RecoverError::BadInit {
            what: "no complete moov box",
        })?;
    let mut body = &init[span.start..span.end];
    let moov = Moov::decode(&mut body).map_err(|source| RecoverError::Box {
        kind: Moov::KIND,
        offset: span.start,
        source,
    })?;
    let trak = moov.trak.first().ok_or(RecoverError::BadInit {
        what: "moov has no trak",
    })?;
    let timescale = trak.mdia.mdhd.timescale;
    if timescale == 0 {
        return Err(RecoverError::BadInit {
            what: "mdhd timescale is 0",
        });
    }
    let entry = trak
        .mdia
        .minf
        .stbl
        .stsd
        .codecs
        .first()
        .ok_or(RecoverError::BadInit {
            what: "stsd has no sample entry",
        })?;
    Ok((timescale, config_from_sample_entry(entry)?))
}

fn bytes_list(list: &[Vec<u8>]) -> Vec<Bytes> {
    list.iter().map(|b| Bytes::copy_from_slice(b)).collect()
}

fn avc(visual: &mp4_atom::Visual, avcc: &mp4_atom::Avcc) -> CodecConfig {
    CodecConfig::H264(AvcConfig {
        profile: avcc.avc_profile_indication,
        compatibility: avcc.profile_compatibility,
        level: avcc.avc_level_indication,
        sps: bytes_list(&avcc.sequence_parameter_sets),
        pps: bytes_list(&avcc.picture_parameter_sets),
        width: visual.width,
        height: visual.height,
    })
}

fn hevc(visual: &mp4_atom::Visual, hvcc: &mp4_atom::Hvcc) -> CodecConfig {
    // NAL unit types of the parameter set arrays (H.265 Table 7-1).
    let nalus = |nal_unit_type: u8| -> Vec<Bytes> {
        hvcc.arrays
            .iter()
            .filter(|a| a.nal_unit_type == nal_unit_type)
            .flat_map(|a| bytes_list(&a.nalus))
            .collect()
    };
    let mut constraint = [0u8; 8];
    constraint[2..].copy_from_slice(&hvcc.general_constraint_indicator_flags);
    CodecConfig::H265(HevcConfig {
        profile_space: hvcc.general_profile_space,
        tier_flag: hvcc.general_tier_flag,
        profile_idc: hvcc.general_profile_idc,
        profile_compatibility_flags: u32::from_be_bytes(hvcc.general_profile_compatibility_flags),
        constraint_indicator_flags: u64::from_be_bytes(constraint),
        level_idc: hvcc.general_level_idc,
        chroma_format_idc: hvcc.chroma_format_idc,
        bit_depth_luma: hvcc.bit_depth_luma_minus8.saturating_add(8),
        bit_depth_chroma: hvcc.bit_depth_chroma_minus8.saturating_add(8),
        vps: nalus(32),
        sps: nalus(33),
        pps: nalus(34),
        width: visual.width,
        height: visual.height,
    })
}

/// Maps an `stsd` sample entry back to the [`CodecConfig`] it was written from.
fn config_from_sample_entry(entry: &SampleEntry) -> Result<CodecConfig, RecoverError> {
    Ok(match entry {
        SampleEntry::Avc1(e) => avc(&e.visual, &e.avcc),
        SampleEntry::Avc3(e) => avc(&e.visual, &e.avcc),
        SampleEntry::Hvc1(e) => hevc(&e.visual, &e.hvcc),
        SampleEntry::Hev1(e) => hevc(&e.visual, &e.hvcc),
        SampleEntry::Vp08(e) => CodecConfig::Vp8(Vp8Config {
            width: e.visual.width,
            height: e.visual.height,
        }),
        SampleEntry::Vp09(e) => CodecConfig::Vp9(Vp9Config {
            profile: e.vpcc.profile,
            level: e.vpcc.level,
            bit_depth: e.vpcc.bit_depth,
            chroma_subsampling: e.vpcc.chroma_subsampling,
            full_range: e.vpcc.video_full_range_flag,
            width: e.visual.width,
            height: e.visual.height,
        }),
        SampleEntry::Av01(e) => CodecConfig::Av1(Av1Config {
            seq_profile: e.av1c.seq_profile,
            seq_level_idx_0: e.av1c.seq_level_idx_0,
            seq_tier_0: e.av1c.seq_tier_0,
            high_bitdepth: e.av1c.high_bitdepth,
            twelve_bit: e.av1c.twelve_bit,
            monochrome: e.av1c.monochrome,
            chroma_subsampling_x: e.av1c.chroma_subsampling_x,
            chroma_subsampling_y: e.av1c.chroma_subsampling_y,
            chroma_sample_position: e.av1c.chroma_sample_position,
            sequence_header: Bytes::copy_from_slice(&e.av1c.config_obus),
            width: e.visual.width,
            height: e.visual.height,
        }),
        SampleEntry::Mp4a(e) => {
            let specific = e.esds.es_desc.dec_config.dec_specific.as_ref();
            match specific {
                Some(s) if !s.raw.is_empty() => CodecConfig::Aac(AacConfig::from_asc(&s.raw)?),
                _ => {
                    let object_type = specific.map_or(2, |s| s.profile.max(1));
                    let channels = u8::try_from(e.audio.channel_count).unwrap_or(2);
                    let rate = u32::from(e.audio.sample_rate.integer());
                    CodecConfig::Aac(AacConfig::from_params(object_type, rate, channels)?)
                }
            }
        }
        SampleEntry::Opus(e) => CodecConfig::Opus(OpusConfig {
            channels: e.dops.output_channel_count,
            pre_skip: e.dops.pre_skip,
            input_sample_rate: e.dops.input_sample_rate,
            output_gain: e.dops.output_gain,
        }),
        SampleEntry::Unknown(fourcc, _) => {
            return Err(RecoverError::UnsupportedCodec {
                fourcc: fourcc.to_string(),
            })
        }
        other => {
            return Err(RecoverError::UnsupportedCodec {
                fourcc: format!("{other:?}").chars().take(4).collect(),
            })
        }
    })
}

/// The length of the longest prefix of an FLV file made of the header, PreviousTagSize0
/// and complete tags (header, body and a matching PreviousTagSize); 0 when the file
/// header itself is incomplete or invalid.
pub fn valid_flv_prefix(data: &[u8]) -> usize {
    let Ok(reader) = FlvReader::new(data) else {
        return 0;
    };
    // FlvReader::new checked the header and PreviousTagSize0 at DataOffset (≥ 9, < len).
    let data_offset = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut valid = data_offset + 4;
    for tag in reader {
        let Ok(tag) = tag else { break };
        // Tag header (11) + body + PreviousTagSize (4), all inside `data`.
        valid = tag.offset as usize + 11 + tag.data.len() + 4;
    }
    valid
}

/// One track's SegmentTimeline as a manifest lists it (see [`mpd_timelines`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpdTimeline {
    /// The track, from the `media` template's `v_`/`a_` prefix.
    pub track: TrackKind,
    /// The SegmentTemplate timescale.
    pub timescale: u32,
    /// The number of the first listed segment (`startNumber`, 1 when absent).
    pub start_number: u32,
    /// `(start, duration)` of each listed segment, in order, `r` repeats expanded.
    pub segments: Vec<(u64, u64)>,
}

/// The value of attribute `name` in the tag text `tag` (`name="value"`).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before = rest[..at].chars().next_back();
        rest = &rest[at + name.len()..];
        if before.is_some_and(char::is_whitespace) {
            if let Some(value) = rest.strip_prefix("=\"") {
                return value.split('"').next();
            }
        }
    }
}

/// Reads the SegmentTimelines of a DASH manifest written by [`crate::dash::Mpd`] (one
/// SegmentTemplate per track, `media="v_seg_…"`/`"a_seg_…"`), so recovery can keep the
/// segments a crashed recording already finished and uploaded. Anything it cannot read
/// (another layout, `r="-1"`, a cut-off manifest) ends that track's list early; it never
/// panics.
pub fn mpd_timelines(mpd: &str) -> Vec<MpdTimeline> {
    const MAX_SEGMENTS: usize = 1 << 20;
    let mut out = Vec::new();
    for template in mpd.split("<SegmentTemplate").skip(1) {
        let Some(head_end) = template.find('>') else {
            break;
        };
        let head = &template[..head_end];
        let track = match attribute(head, "media") {
            Some(m) if m.starts_with("v_") => TrackKind::Video,
            Some(m) if m.starts_with("a_") => TrackKind::Audio,
            _ => continue,
        };
        let Some(timescale) = attribute(head, "timescale").and_then(|v| v.parse().ok()) else {
            continue;
        };
        let start_number = attribute(head, "startNumber")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let body = &template[head_end..];
        let body = &body[..body.find("</SegmentTemplate").unwrap_or(body.len())];
        let mut segments = Vec::new();
        let mut next = 0u64;
        for s in body.split("<S ").skip(1) {
            let tag = format!(" {}", &s[..s.find('>').unwrap_or(s.len())]);
            let t = match attribute(&tag, "t").map(str::parse::<u64>) {
                Some(Ok(t)) => t,
                Some(Err(_)) => break,
                None => next,
            };
            let Some(Ok(d)) = attribute(&tag, "d").map(str::parse::<u64>) else {
                break;
            };
            let r = match attribute(&tag, "r").map(str::parse::<u32>) {
                None => 0,
                Some(Ok(r)) => r,
                Some(Err(_)) => break,
            };
            let mut start = t;
            for _ in 0..=r {
                if segments.len() >= MAX_SEGMENTS {
                    break;
                }
                segments.push((start, d));
                start = start.saturating_add(d);
            }
            next = start;
        }
        out.push(MpdTimeline {
            track,
            timescale,
            start_number,
            segments,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{AacConfig, OpusConfig, Vp8Config, Vp9Config};
    use crate::flv::{FlvWriter, FlvWriterOptions};
    use crate::fmp4::{Fmp4Muxer, Fmp4Options, MuxOutput};
    use crate::Frame;

    fn aac() -> CodecConfig {
        CodecConfig::Aac(AacConfig::from_params(2, 44_100, 2).unwrap())
    }

    fn vp8() -> CodecConfig {
        CodecConfig::Vp8(Vp8Config {
            width: 320,
            height: 240,
        })
    }

    fn frame(track: TrackKind, dts: i64, timescale: u32, keyframe: bool) -> Frame {
        Frame {
            track,
            pts: dts,
            dts,
            timescale,
            keyframe,
            data: Bytes::from(vec![0x5a; 100]),
        }
    }

    /// An init segment and the bytes of segment 1 (several fragments) of a VP8 track.
    fn vp8_segment() -> (Vec<u8>, Vec<u8>, Vec<SegmentInfo>) {
        let mut muxer = Fmp4Muxer::new(Fmp4Options {
            segment_seconds: 10.0,
            fragment_seconds: 0.2,
            first_segment: 1,
        });
        let Some(MuxOutput::Init { data: init, .. }) = muxer.set_config(vp8()).unwrap() else {
            panic!("init expected");
        };
        let mut seg = Vec::new();
        let mut done = Vec::new();
        let mut outputs = Vec::new();
        for i in 0..30 {
            outputs.extend(
                muxer
                    .push(frame(TrackKind::Video, i * 3600, 90_000, i == 0))
                    .unwrap(),
            );
        }
        outputs.extend(muxer.finish().unwrap());
        for o in outputs {
            match o {
                MuxOutput::Fragment { data, .. } => seg.extend_from_slice(&data),
                MuxOutput::SegmentDone(info) => done.push(info),
                MuxOutput::Init { .. } => {}
            }
        }
        (init.to_vec(), seg, done)
    }

    #[test]
    fn a_complete_segment_is_valid_whole_and_described_as_the_muxer_did() {
        let (init, seg, done) = vp8_segment();
        assert_eq!(valid_fmp4_prefix(&seg), seg.len());
        let (timescale, config) = init_timescale_and_config(&init).unwrap();
        assert_eq!((timescale, config), (90_000, vp8()));
        let info = segment_info(TrackKind::Video, 1, timescale, &seg).unwrap();
        assert_eq!(vec![info], done);
    }

    #[test]
    fn every_truncation_cuts_back_to_the_last_complete_fragment() {
        let (_, seg, _) = vp8_segment();
        let ends: Vec<usize> = {
            let mut ends = Vec::new();
            let mut last_moof = false;
            for s in boxes(&seg) {
                if s.kind == Moof::KIND {
                    last_moof = true;
                } else if s.kind.as_ref() == b"mdat" && last_moof {
                    ends.push(s.end);
                }
            }
            ends
        };
        assert!(ends.len() >= 5, "several fragments: {ends:?}");
        for cut in 0..=seg.len() {
            let want = ends
                .iter()
                .copied()
                .filter(|&e| e <= cut)
                .max()
                .unwrap_or(0);
            assert_eq!(valid_fmp4_prefix(&seg[..cut]), want, "cut at {cut}");
            match segment_info(TrackKind::Video, 1, 90_000, &seg[..cut]) {
                Ok(info) => {
                    assert_eq!(info.bytes as usize, want);
                    assert_eq!(info.start, 0);
                    assert!(info.samples > 0);
                }
                Err(RecoverError::NoFragment { .. }) => assert_eq!(want, 0),
                Err(e) => panic!("cut at {cut}: {e}"),
            }
        }
    }

    #[test]
    fn garbage_never_panics_and_yields_no_prefix() {
        let mut state = 0x1234_5678u32;
        for len in 0..2000 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = valid_fmp4_prefix(&data);
            let _ = segment_info(TrackKind::Audio, 1, 48_000, &data);
            let _ = init_timescale_and_config(&data);
            assert!(valid_flv_prefix(&data) <= data.len());
        }
        // Sizes that overflow, or claim 0 or less than a header.
        for header in [
            &[0, 0, 0, 0, b'm', b'o', b'o', b'f'][..],
            &[0, 0, 0, 4, b'm', b'd', b'a', b't'],
            &[
                0, 0, 0, 1, b'm', b'd', b'a', b't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[0xff, 0xff, 0xff, 0xff, b'm', b'o', b'o', b'f'],
        ] {
            assert_eq!(valid_fmp4_prefix(header), 0);
        }
    }

    #[test]
    fn an_mdat_without_its_moof_is_not_a_fragment() {
        let (_, seg, _) = vp8_segment();
        let spans: Vec<BoxSpan> = boxes(&seg).collect();
        let first_mdat = spans.iter().find(|s| s.kind.as_ref() == b"mdat").unwrap();
        assert_eq!(valid_fmp4_prefix(&seg[first_mdat.start..]), 0);
    }

    #[test]
    fn init_segments_map_back_to_their_codec_configuration() {
        let configs = [
            vp8(),
            CodecConfig::Vp9(Vp9Config {
                profile: 0,
                level: 31,
                bit_depth: 8,
                chroma_subsampling: 1,
                full_range: false,
                width: 640,
                height: 360,
            }),
            aac(),
            CodecConfig::Opus(OpusConfig::webrtc(2)),
        ];
        for config in configs {
            let mut muxer = Fmp4Muxer::new(Fmp4Options::default());
            let Some(MuxOutput::Init { data, .. }) = muxer.set_config(config.clone()).unwrap()
            else {
                panic!("init expected");
            };
            let (timescale, back) = init_timescale_and_config(&data).unwrap();
            assert_eq!(back, config);
            assert_eq!(Some(timescale), muxer.timescale(config.kind()));
            for cut in 0..data.len() {
                assert!(init_timescale_and_config(&data[..cut]).is_err());
            }
        }
    }

    #[test]
    fn a_torn_flv_tag_is_cut_and_complete_tags_are_kept() {
        let mut writer = FlvWriter::new(None, Some(aac()), FlvWriterOptions::default()).unwrap();
        let mut file = writer.header().to_vec();
        let mut ends = vec![file.len()];
        for i in 0..10 {
            let f = frame(TrackKind::Audio, i * 1024, 44_100, true);
            file.extend_from_slice(&writer.write_frame(&f).unwrap());
            ends.push(file.len());
        }
        assert_eq!(valid_flv_prefix(&file), file.len());
        for cut in 0..file.len() {
            let want = ends.iter().copied().filter(|&e| e <= cut).max();
            let want = if cut < 13 { 0 } else { want.unwrap_or(13) };
            let got = valid_flv_prefix(&file[..cut]);
            assert!(got <= cut, "cut at {cut}");
            if cut >= ends[0] {
                assert_eq!(got, want, "cut at {cut}");
            }
        }
        assert_eq!(valid_flv_prefix(&file[..8]), 0);
        assert_eq!(valid_flv_prefix(&file[..13]), 13);
    }

    #[test]
    fn manifest_timelines_read_back_what_the_mpd_wrote() {
        let mut mpd = crate::dash::Mpd::new(1_700_000_000_000, 2.0);
        mpd.add_track(&vp8(), 90_000, 3);
        mpd.add_track(&aac(), 44_100, 3);
        let mut want_v = Vec::new();
        let mut want_a = Vec::new();
        for (i, number) in (3..9).enumerate() {
            let d = if i == 4 { 90_000 } else { 180_000 };
            let t = want_v.last().map_or(5_000, |&(t, d): &(u64, u64)| t + d);
            want_v.push((t, d));
            mpd.push_segment(&SegmentInfo {
                track: TrackKind::Video,
                number,
                start: t,
                duration: d,
                timescale: 90_000,
                samples: 1,
                bytes: 10,
                presentation_tail: 0,
            });
            let ta = 88_200 * i as u64;
            want_a.push((ta, 88_200));
            mpd.push_segment(&SegmentInfo {
                track: TrackKind::Audio,
                number,
                start: ta,
                duration: 88_200,
                timescale: 44_100,
                samples: 1,
                bytes: 10,
                presentation_tail: 0,
            });
        }
        for text in [mpd.render_dynamic(1_700_000_010_000), mpd.render_static()] {
            let got = mpd_timelines(&text);
            assert_eq!(got.len(), 2, "{text}");
            let v = got.iter().find(|t| t.track == TrackKind::Video).unwrap();
            assert_eq!((v.timescale, v.start_number), (90_000, 3));
            assert_eq!(v.segments, want_v);
            let a = got.iter().find(|t| t.track == TrackKind::Audio).unwrap();
            assert_eq!((a.timescale, a.start_number), (44_100, 3));
            assert_eq!(a.segments, want_a);
            for cut in 0..text.len() {
                if text.is_char_boundary(cut) {
                    let _ = mpd_timelines(&text[..cut]);
                }
            }
        }
    }
}
