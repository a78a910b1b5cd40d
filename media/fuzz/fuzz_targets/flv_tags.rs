//! Arbitrary bytes → FlvReader → FlvDemuxer → FlvWriter → FlvReader.
//!
//! Invariants checked after every step: nothing panics; every frame the demuxer emits has
//! timescale 1000 and (for H264/H265) well-formed 4-byte NAL lengths; the writer accepts
//! every frame for a configured track, and its output (with the final metadata patched
//! in) reads back tag for tag, with the metadata exactly as long as its placeholder.
//!
//! Inputs that are not an FLV file are split into tag bodies instead: each chunk is
//! `[kind, len, body…]`, so the demuxer sees arbitrary sequences of bodies too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recnode_media::flv::{FlvDemuxer, FlvReader, FlvWriter, FlvWriterOptions, TagKind};
use recnode_media::{Codec, CodecConfig, Frame, MediaEvent, TrackKind};

fn check_frame(frame: &Frame, video: Option<&CodecConfig>) {
    assert_eq!(frame.timescale, 1000);
    if frame.track == TrackKind::Video
        && matches!(
            video.map(CodecConfig::codec),
            Some(Codec::H264 | Codec::H265)
        )
    {
        let mut rest = &frame.data[..];
        while !rest.is_empty() {
            assert!(rest.len() >= 4, "dangling NAL length");
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            assert!(len > 0 && rest.len() >= 4 + len, "bad NAL length");
            rest = &rest[4 + len..];
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bodies: Vec<(TagKind, u32, &[u8])> = Vec::new();
    match FlvReader::new(data) {
        Ok(reader) => {
            for tag in reader {
                match tag {
                    Ok(tag) => bodies.push((tag.kind, tag.timestamp_ms, tag.data)),
                    Err(_) => break,
                }
            }
        }
        Err(_) => {
            let mut rest = data;
            let mut timestamp = 0u32;
            while rest.len() >= 2 {
                let kind = if rest[0] & 1 == 0 {
                    TagKind::Video
                } else {
                    TagKind::Audio
                };
                // Large jumps exercise the 32-bit wrap.
                timestamp = timestamp.wrapping_add(u32::from(rest[0]) << 20);
                let len = usize::from(rest[1]).min(rest.len() - 2);
                bodies.push((kind, timestamp, &rest[2..2 + len]));
                rest = &rest[2 + len..];
            }
        }
    }

    let mut demuxer = FlvDemuxer::new();
    let (mut video, mut audio) = (None, None);
    let mut frames = Vec::new();
    for (kind, timestamp, body) in bodies {
        let events = match kind {
            TagKind::Video => demuxer.push_video(timestamp, body),
            TagKind::Audio => demuxer.push_audio(timestamp, body),
            TagKind::Script => {
                let _ = recnode_media::flv::amf::decode_all(body);
                continue;
            }
        };
        for event in events.unwrap_or_default() {
            match event {
                MediaEvent::Config(config) if config.kind() == TrackKind::Video => {
                    video.get_or_insert(config);
                }
                MediaEvent::Config(config) => {
                    audio.get_or_insert(config);
                }
                MediaEvent::Frame(frame) => {
                    check_frame(&frame, video.as_ref());
                    frames.push(frame);
                }
            }
        }
    }

    let Ok(mut writer) = FlvWriter::new(video.clone(), audio.clone(), FlvWriterOptions::default())
    else {
        return;
    };
    let mut file = writer.header().to_vec();
    let mut written = 0usize;
    for frame in &frames {
        // Frames of a track whose config changed after the first are still accepted: the
        // writer checks only that the track exists.
        if let Ok(tag) = writer.write_frame(frame) {
            file.extend_from_slice(&tag);
            written += 1;
        }
    }
    let finish = writer.finish();
    let at = finish.metadata_offset as usize;
    let placeholder = FlvReader::new(&file).unwrap().next().unwrap().unwrap();
    assert_eq!(11 + placeholder.data.len() + 4, finish.metadata.len());
    file[at..at + finish.metadata.len()].copy_from_slice(&finish.metadata);
    assert_eq!(finish.file_size, file.len() as u64);
    let tags: Vec<_> = FlvReader::new(&file)
        .unwrap()
        .map(|tag| tag.expect("writer output re-reads"))
        .collect();
    let sequence_headers = usize::from(video.is_some()) + usize::from(audio.is_some());
    assert_eq!(tags.len(), 1 + sequence_headers + written);
});
