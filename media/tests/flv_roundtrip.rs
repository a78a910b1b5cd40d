//! An ffmpeg-made FLV goes through FlvReader → FlvDemuxer → FlvWriter, and ffmpeg/ffprobe
//! must see the same frames in the copy, decode it without a message, and find its
//! `onMetaData` duration and keyframe index.
//!
//! Needs `ffmpeg` and `ffprobe` on PATH (with libx264); fails, rather than skips, without them.

mod common;

use common::*;
use recnode_media::flv::{amf, FlvDemuxer, FlvReader, FlvWriter, FlvWriterOptions, TagKind};
use recnode_media::{CodecConfig, Frame, MediaEvent};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Runs a tool and returns (stdout, stderr); panics with a clear message if it is missing or fails.
fn run_text(tool: &str, args: &[&str]) -> (String, String) {
    let out = run(tool, args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads and demuxes a whole file: the first config of each track and all frames in tag order.
fn demux(file: &[u8]) -> (Option<CodecConfig>, Option<CodecConfig>, Vec<Frame>) {
    let mut demuxer = FlvDemuxer::new();
    let (mut video, mut audio, mut frames) = (None, None, Vec::new());
    for tag in FlvReader::new(file).unwrap() {
        let tag = tag.unwrap();
        let events = match tag.kind {
            TagKind::Video => demuxer.push_video(tag.timestamp_ms, tag.data).unwrap(),
            TagKind::Audio => demuxer.push_audio(tag.timestamp_ms, tag.data).unwrap(),
            TagKind::Script => continue,
        };
        for event in events {
            match event {
                MediaEvent::Config(c @ CodecConfig::Aac(_)) => {
                    audio.get_or_insert(c);
                }
                MediaEvent::Config(c) => {
                    video.get_or_insert(c);
                }
                MediaEvent::Frame(f) => frames.push(f),
            }
        }
    }
    (video, audio, frames)
}

#[test]
fn ffmpeg_flv_survives_demux_and_rewrite_with_a_seekable_index() {
    let dir = test_dir("flv_roundtrip");
    let input = lavfi_source(
        &dir,
        "x.flv",
        Some(44_100),
        "-c:v libx264 -bf 2 -g 25 -c:a aac",
    );
    let output_path = dir.join("out.flv");
    let output = &output_path;
    let original = std::fs::read(&input).unwrap();
    let (video, audio, frames) = demux(&original);
    assert!(
        video.is_some() && audio.is_some(),
        "ffmpeg's FLV has both tracks"
    );
    assert!(
        frames.iter().any(|f| f.pts != f.dts),
        "-bf 2 gives reordered frames"
    );

    let mut writer = FlvWriter::new(video, audio, FlvWriterOptions::default()).unwrap();
    let mut file = writer.header().to_vec();
    for frame in &frames {
        file.extend_from_slice(&writer.write_frame(frame).unwrap());
    }
    let finish = writer.finish();
    let at = usize::try_from(finish.metadata_offset).unwrap();
    file[at..at + finish.metadata.len()].copy_from_slice(&finish.metadata);
    assert_eq!(finish.file_size, file.len() as u64);
    assert_eq!(
        finish.keyframes_indexed, 5,
        "one key frame per second for 5 s"
    );
    std::fs::write(output, &file).unwrap();

    // The rewritten file demuxes to the same frames.
    let (_, _, again) = demux(&file);
    assert_eq!(again, frames);

    assert_eq!(count_frames(output), count_frames(&input));
    assert_eq!(
        decode_errors(output),
        "",
        "ffmpeg reports problems decoding the rewritten FLV"
    );
    let md5s = video_md5s(output);
    assert_eq!(md5s.len(), 125);
    assert_eq!(md5s, video_md5s(&input));

    // ffprobe takes duration and encoder from onMetaData and accepts the keyframe index.
    let (stdout, stderr) = run_text(
        "ffprobe",
        &[
            "-v",
            "warning",
            "-show_entries",
            "format=duration:format_tags=encoder",
            "-of",
            "default=noprint_wrappers=1",
            path(output),
        ],
    );
    assert!(
        !stderr.contains("keyframes"),
        "ffprobe rejected the index: {stderr}"
    );
    assert!(stdout.contains("TAG:encoder=recnode"), "{stdout}");
    let duration: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {stdout}"));
    assert!((duration - 5.0).abs() < 0.15, "duration {duration}");

    // The index our metadata carries points at video key frame tags.
    let meta = FlvReader::new(&file).unwrap().next().unwrap().unwrap();
    let values = amf::decode_all(meta.data).unwrap();
    let times = values[1]
        .get("keyframes")
        .and_then(|k| k.get("times"))
        .cloned();
    assert_eq!(
        times,
        Some(amf::AmfValue::StrictArray(vec![
            amf::AmfValue::Number(0.0),
            amf::AmfValue::Number(1.0),
            amf::AmfValue::Number(2.0),
            amf::AmfValue::Number(3.0),
            amf::AmfValue::Number(4.0),
        ]))
    );

    // Seeking to 2 s lands on the key frame there and decodes cleanly.
    let (stdout, stderr) = run_text(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-ss",
            "2",
            "-i",
            path(output),
            "-map",
            "0:v",
            "-frames:v",
            "5",
            "-f",
            "framemd5",
            "-",
        ],
    );
    assert_eq!(stderr, "");
    assert_eq!(stdout.lines().filter(|l| !l.starts_with('#')).count(), 5);
}
