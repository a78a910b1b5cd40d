//! Crash recovery, sans-IO half: a real recording whose last segment is cut mid-fragment
//! is truncated with `valid_fmp4_prefix` and re-described with `segment_info` and
//! `init_timescale_and_config`; the rebuilt static manifest plays in ffmpeg with at most
//! one fragment of video lost.

mod common;

use common::*;
use recnode_media::dash::Mpd;
use recnode_media::fmp4::{init_file_name, segment_file_name};
use recnode_media::recover::{init_timescale_and_config, segment_info, valid_fmp4_prefix};
use recnode_media::TrackKind;
use std::fs;

#[test]
fn a_segment_cut_mid_fragment_is_truncated_and_the_rebuilt_manifest_plays() {
    let dir = test_dir("recover_cut_segment");
    let src = lavfi_source(&dir, "src.flv", Some(44_100), "-c:v libx264 -g 25 -c:a aac");
    let mut rec = Recording::new(dir.join("rec"));
    for e in demux_flv(&src) {
        rec.handle(e);
    }
    rec.finish();
    let last = rec.segments[&TrackKind::Video];
    let path = rec.dir.join(segment_file_name(TrackKind::Video, last));
    let data = fs::read(&path).unwrap();
    let cut = data.len() - 300;
    fs::write(&path, &data[..cut]).unwrap();

    let mut mpd = Mpd::new(1_700_000_000_000, 2.0);
    for track in [TrackKind::Video, TrackKind::Audio] {
        let init = fs::read(rec.dir.join(init_file_name(track))).unwrap();
        let (timescale, config) = init_timescale_and_config(&init).unwrap();
        mpd.add_track(&config, timescale, 1);
        for number in 1..=rec.segments[&track] {
            let path = rec.dir.join(segment_file_name(track, number));
            let data = fs::read(&path).unwrap();
            let valid = valid_fmp4_prefix(&data);
            assert!(valid > 0);
            if track == TrackKind::Video && number == last {
                assert!(valid < cut, "the torn fragment is cut");
            } else {
                assert_eq!(valid, data.len(), "complete segments stay whole");
            }
            fs::write(&path, &data[..valid]).unwrap();
            mpd.push_segment(&segment_info(track, number, timescale, &data[..valid]).unwrap());
        }
    }
    let manifest = rec.dir.join("manifest.mpd");
    fs::write(&manifest, mpd.render_static()).unwrap();

    assert_eq!(
        decode_errors(&manifest),
        "",
        "the rebuilt manifest decodes cleanly"
    );
    let want = count_frames(&src).video;
    let got = count_frames(&manifest).video;
    assert!(
        got > 0 && got <= want && want - got <= 13,
        "source {want} frames, recovered {got}"
    );
}
