//! RTMP/FLV tag bodies (written by ffmpeg) → our FLV demuxer → fMP4 + DASH, checked by
//! ffprobe/ffmpeg: frames in == frames out, clean decode, identical decoded video.
//! This is the path an OBS or ffmpeg RTMP publish takes.

mod common;

use common::*;
use recnode_media::rtp::RtpDepacketizer;
use recnode_media::Codec;

#[test]
fn h264_with_b_frames_and_aac_from_flv_record_every_frame() {
    let dir = test_dir("flv_h264_aac");
    let src = lavfi_source(
        &dir,
        "src.flv",
        Some(44_100),
        "-c:v libx264 -bf 2 -g 25 -pix_fmt yuv420p -c:a aac -b:a 96k",
    );
    let mut rec = Recording::new(dir.join("rec"));
    for e in demux_flv(&src) {
        rec.handle(e);
    }
    let manifest = rec.finish();
    assert!(
        rec.segments[&recnode_media::TrackKind::Video] >= 2,
        "5 s makes several 2 s segments"
    );
    assert_recording_matches(&src, &rec, &manifest, true);
}

#[test]
fn h265_over_rtp_and_aac_from_flv_record_every_frame() {
    let dir = test_dir("h265_aac");
    let src = lavfi_source(
        &dir,
        "src.ts",
        Some(44_100),
        "-c:v libx265 -g 25 -pix_fmt yuv420p -x265-params bframes=0:repeat-headers=1:log-level=error -c:a aac -b:a 96k",
    );
    // ffmpeg 5.1 cannot put HEVC in FLV, and AAC over RTP is not a path recnode takes,
    // so the video goes through the RTP depacketizer and the audio through the FLV demuxer.
    let audio_flv = make_source(
        &dir,
        "audio.flv",
        &["-i", src.to_str().unwrap(), "-map", "0:a", "-c", "copy"],
    );
    let captured = rtp_capture(&src, &["0:v:0"], &[]);
    let mut d = RtpDepacketizer::new(Codec::H265, 90_000);
    let mut video = Vec::new();
    for p in &captured[0] {
        d.push(p).expect("ffmpeg's packets are valid RTP");
        video.extend(std::iter::from_fn(|| d.pull()));
    }
    video.extend(d.flush());
    assert_eq!(d.stats().lost_packets, 0, "{:?}", d.stats());

    let mut rec = Recording::new(dir.join("rec"));
    for e in interleave(video, demux_flv(&audio_flv)) {
        rec.handle(e);
    }
    let manifest = rec.finish();
    assert_recording_matches(&src, &rec, &manifest, true);
}

#[test]
fn a_video_only_recording_with_b_frames_plays_its_last_frames_through_the_manifest() {
    // Without audio to lengthen the presentation, the manifest's duration alone decides
    // whether players show the reordered frames that end the recording.
    let dir = test_dir("flv_h264_only");
    let src = lavfi_source(
        &dir,
        "src.flv",
        None,
        "-c:v libx264 -bf 2 -g 25 -pix_fmt yuv420p",
    );
    let mut rec = Recording::new(dir.join("rec"));
    for e in demux_flv(&src) {
        rec.handle(e);
    }
    let manifest = rec.finish();
    assert_recording_matches(&src, &rec, &manifest, false);
}
