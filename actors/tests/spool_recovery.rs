//! Spool recovery after a kill -9: a real recording (ffmpeg source → FLV demuxer → fMP4
//! muxer, written fragment by fragment like a recorder) is cut mid-fragment and left with
//! session.json saying `recording`; recovery must finish it so ffmpeg plays it from storage.

use ractor::call_t;
use recnode_actors::recovery::recover_spool;
use recnode_actors::state_store::{StateStore, UploadOp, UploadRow};
use recnode_actors::uploader::{
    fs_operator, start_uploader, StorageHealth, UploadSettings, UploadTarget, UploaderArgs,
    UploaderMsg, UploaderStats,
};
use recnode_media::dash::Mpd;
use recnode_media::flv::{FlvDemuxer, FlvReader, FlvWriter, FlvWriterOptions, TagKind};
use recnode_media::fmp4::{init_file_name, segment_file_name, Fmp4Muxer, Fmp4Options, MuxOutput};
use recnode_media::{MediaEvent, TrackKind};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn run(tool: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool} is required for this test: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn video_frames(path: &Path) -> u64 {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "flat",
            path.to_str().unwrap(),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("streams.stream."))
        .filter_map(|l| l.split_once('=')?.1.trim_matches('"').parse::<u64>().ok())
        .sum()
}

fn demux(path: &Path) -> Vec<MediaEvent> {
    let data = std::fs::read(path).unwrap();
    let mut demuxer = FlvDemuxer::new();
    let mut events = Vec::new();
    for tag in FlvReader::new(&data).unwrap() {
        let tag = tag.unwrap();
        let out = match tag.kind {
            TagKind::Video => demuxer.push_video(tag.timestamp_ms, tag.data),
            TagKind::Audio => demuxer.push_audio(tag.timestamp_ms, tag.data),
            TagKind::Script => continue,
        };
        events.extend(out.unwrap());
    }
    events
}

fn append(path: &Path, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

/// Records `events` into `record_dir` (and an FLV beside it) the way a recorder does, then
/// "dies": the manifest stays dynamic, the last video segment ends mid-fragment, the FLV
/// mid-tag, and segment 1 of each track was already uploaded to `storage` and deleted.
fn record_and_crash(
    events: Vec<MediaEvent>,
    spool: &Path,
    storage: &Path,
    rel: &str,
    flv_key: &str,
) {
    let dir = spool.join(rel);
    std::fs::create_dir_all(&dir).unwrap();
    let mut muxer = Fmp4Muxer::new(Fmp4Options::default());
    let mut mpd = Mpd::new(1_700_000_000_000, 2.0);
    let (mut video, mut audio) = (None, None);
    let mut outputs = Vec::new();
    let mut frames = Vec::new();
    for e in events {
        match e {
            MediaEvent::Config(c) => {
                match c.kind() {
                    TrackKind::Video => video = Some(c.clone()),
                    TrackKind::Audio => audio = Some(c.clone()),
                }
                if let Some(init) = muxer.set_config(c.clone()).unwrap() {
                    mpd.add_track(&c, muxer.timescale(c.kind()).unwrap(), 1);
                    outputs.push((init, true));
                }
            }
            MediaEvent::Frame(f) => {
                frames.push(f.clone());
                outputs.extend(muxer.push(f).unwrap().into_iter().map(|o| (o, true)));
            }
        }
    }
    // The last fragments reached the disk, but the node died before the static manifest.
    outputs.extend(muxer.finish().unwrap().into_iter().map(|o| (o, false)));
    let mut last_video_segment = 0;
    for (o, live) in outputs {
        match o {
            MuxOutput::Init { track, data } => {
                std::fs::write(dir.join(init_file_name(track)), data).unwrap()
            }
            MuxOutput::Fragment {
                track,
                segment,
                data,
            } => {
                if track == TrackKind::Video {
                    last_video_segment = segment;
                }
                append(&dir.join(segment_file_name(track, segment)), &data)
            }
            MuxOutput::SegmentDone(info) if live => {
                mpd.push_segment(&info);
                std::fs::write(
                    dir.join("manifest.mpd"),
                    mpd.render_dynamic(1_700_000_010_000),
                )
                .unwrap();
            }
            MuxOutput::SegmentDone(_) => {}
        }
    }
    // kill -9 mid-fragment: the last video segment loses the second half of its last fragment.
    let last = dir.join(segment_file_name(TrackKind::Video, last_video_segment));
    let len = std::fs::metadata(&last).unwrap().len();
    let data = std::fs::read(&last).unwrap();
    let last_moof = data.windows(4).rposition(|w| w == b"moof").unwrap() as u64 - 4;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len((last_moof + len) / 2)
        .unwrap();
    // Segment 1 of each track was already stored and deleted from the spool.
    for track in [TrackKind::Video, TrackKind::Audio] {
        let name = segment_file_name(track, 1);
        let stored = storage.join(rel).join(&name);
        std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
        std::fs::rename(dir.join(&name), stored).unwrap();
    }
    // The FLV, torn mid-tag.
    let mut writer = FlvWriter::new(video, audio, FlvWriterOptions::default()).unwrap();
    let mut flv = writer.header().to_vec();
    for f in &frames {
        flv.extend_from_slice(&writer.write_frame(f).unwrap());
    }
    flv.truncate(flv.len() - 7);
    std::fs::write(spool.join(flv_key), flv).unwrap();
    let session = serde_json::json!({
        "stream": "cam1",
        "app": "live",
        "record_dir": rel,
        "flv_path": flv_key,
        "start_unix_ms": 1_700_000_000_000u64,
        "outcome": "recording",
    });
    std::fs::write(dir.join("session.json"), session.to_string()).unwrap();
    // An interrupted atomic replace.
    std::fs::write(dir.join("manifest.mpd.tmp"), "<MPD").unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_recording_killed_mid_fragment_is_recovered_playable_and_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.flv");
    run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=44100",
            "-t",
            "5",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-c:a",
            "aac",
            src.to_str().unwrap(),
        ],
    );
    let spool = tmp.path().join("spool");
    let storage = tmp.path().join("storage");
    let rel = "cam1/1700000000";
    let flv_key = "cam1/live_cam1_20231114_221320.flv";
    record_and_crash(demux(&src), &spool, &storage, rel, flv_key);

    // The durable upload queue the killed node left: the init segment and session.json
    // of the live recording (kept in the spool), segment 2, and a live manifest snapshot.
    let state_db = tmp.path().join("state.sqlite3");
    let snapshot = spool.join(rel).join("manifest.mpd.3.tmp");
    std::fs::write(&snapshot, "<MPD type=\"dynamic\"/>").unwrap();
    let left: Vec<(PathBuf, &str, bool)> = vec![
        (spool.join(rel).join("v_init.m4s"), "v_init.m4s", false),
        (spool.join(rel).join("session.json"), "session.json", false),
        (
            spool.join(rel).join("v_seg_0002.m4s"),
            "v_seg_0002.m4s",
            true,
        ),
        (snapshot, "manifest.mpd", true),
    ];
    let rows: Vec<UploadOp> = left
        .into_iter()
        .enumerate()
        .map(|(i, (local, name, delete_after))| {
            UploadOp::Put(UploadRow {
                id: i as u64 + 1,
                seq: i as u64 + 1,
                local,
                key: format!("{rel}/{name}"),
                delete_after,
                enqueued_at_ms: 1_700_000_001_000,
            })
        })
        .collect();
    StateStore::open(&state_db)
        .unwrap()
        .apply_uploads(&rows)
        .unwrap();

    let report = recover_spool(&spool, 2.0, &state_db).await.unwrap();
    assert_eq!(report.recovered, vec![rel.to_string()], "{report:?}");
    assert!(
        report.failed.is_empty() && report.bytes_truncated > 0,
        "{report:?}"
    );
    let uploader = start_uploader(UploaderArgs {
        hooks: recnode_actors::hooks::HookEmitter::disabled(),
        settings: UploadSettings {
            concurrency: 4,
            max_backoff: std::time::Duration::from_secs(1),
            target: UploadTarget::Operator(fs_operator(&storage).unwrap()),
        },
        spool_dir: spool.clone(),
        state_db: state_db.clone(),
        health: StorageHealth::default(),
    })
    .await
    .unwrap();
    call_t!(uploader, UploaderMsg::Drain, 30_000).unwrap();
    let stats: UploaderStats = call_t!(uploader, UploaderMsg::Stats, 5_000).unwrap();
    assert_eq!(
        (stats.stored, stats.skipped, stats.queued),
        (report.files_enqueued as u64, 1, 0),
        "each spool file stored once; the snapshot recovery removed is skipped: {stats:?} {report:?}"
    );
    assert!(StateStore::open(&state_db)
        .unwrap()
        .pending_uploads()
        .unwrap()
        .is_empty());

    assert_eq!(
        files_under(&spool),
        Vec::<PathBuf>::new(),
        "the spool is empty"
    );
    let manifest = storage.join(rel).join("manifest.mpd");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("type=\"static\""), "{text}");
    let decode = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            manifest.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(decode.status.success());
    assert_eq!(
        String::from_utf8_lossy(&decode.stderr),
        "",
        "decodes cleanly"
    );

    let want = video_frames(&src);
    let got = video_frames(&manifest);
    assert!(
        got > 0 && got <= want && want - got <= 13,
        "source {want} frames, recovered {got}"
    );

    let session: serde_json::Value =
        serde_json::from_slice(&std::fs::read(storage.join(rel).join("session.json")).unwrap())
            .unwrap();
    assert_eq!(session["outcome"], "recovered");
    assert!(
        session["duration_seconds"].as_f64().unwrap() > 4.0,
        "{session}"
    );
    assert!(session["end_unix_ms"].as_u64().unwrap() > 1_700_000_004_000);

    let flv = storage.join(flv_key);
    let data = std::fs::read(&flv).unwrap();
    assert_eq!(
        recnode_media::recover::valid_flv_prefix(&data),
        data.len(),
        "FLV cut to whole tags"
    );
    assert!(
        video_frames(&flv) >= want - 1,
        "the FLV keeps all but the torn tag"
    );
}
