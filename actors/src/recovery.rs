//! Spool recovery at node start, before ingest: finishes the recordings a kill -9 left
//! open and hands every file still in the spool back to the uploader.
//!
//! A record_dir is a spool directory holding `session.json`. When its `outcome` is
//! `recording`, the node died mid-recording, and [`recover_spool`]:
//! 1. truncates each segment file to its complete fragments and removes those with none,
//!    and removes stale `*.tmp` files of interrupted atomic replaces;
//! 2. rebuilds the manifest as `static`: the segments the old (dynamic) manifest lists
//!    and that were already uploaded, plus the segments on disk, described exactly from
//!    their bytes; track codecs and timescales come from the init segments on disk;
//! 3. truncates the FLV (`flv_path`, or any `*.flv` in the record_dir) to its last complete
//!    tag. Its `onMetaData` is left as the placeholder (duration 0, no keyframe index):
//!    [`recnode_media::flv::FlvWriter`] can only render the final metadata from frames it
//!    wrote itself, and the file still plays;
//! 4. rewrites session.json with outcome `recovered`, the end and the duration.
//!
//! Then every file of every record_dir (recovered, or finished but not yet uploaded) is
//! enqueued in dependency order: init segments, media segments, other files (FLV), the
//! manifest, session.json last. Files outside any record_dir are enqueued after them.
//!
//! Recovery runs before the uploader starts and enqueues straight into the durable upload
//! queue in the state store, in one transaction
//! ([`StateStore::enqueue_uploads`](crate::state_store::StateStore::enqueue_uploads)). A
//! file the queue already holds (its row survived the crash) is not added twice: its row
//! moves to the tail with the order above and `delete_after`, so every file is stored
//! once and the spool empties. Rows of files recovery removed (manifest snapshots, torn
//! segments) are found missing by the uploader and dropped.
//! The sans-IO parts are in [`recnode_media::recover`]; file work runs in `spawn_blocking`.

use crate::state_store::{NewUpload, StateStore, StateStoreError};
use crate::uploader::{validate_key, UploadJob};
use recnode_media::dash::Mpd;
use recnode_media::fmp4::{init_file_name, SegmentInfo};
use recnode_media::recover::{
    init_timescale_and_config, mpd_timelines, segment_info, valid_flv_prefix, valid_fmp4_prefix,
    RecoverError,
};
use recnode_media::TrackKind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const SESSION: &str = "session.json";
const MANIFEST: &str = "manifest.mpd";
const TRACKS: [TrackKind; 2] = [TrackKind::Video, TrackKind::Audio];

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Record_dirs (relative to the spool) finished after a crash.
    pub recovered: Vec<String>,
    /// Record_dirs that had finished and were only re-enqueued.
    pub requeued: Vec<String>,
    /// Record_dirs that could not be recovered; their files stay in the spool.
    pub failed: Vec<String>,
    /// Upload jobs enqueued.
    pub files_enqueued: usize,
    /// Torn bytes cut from segment and FLV files.
    pub bytes_truncated: u64,
    /// Segment files removed because they held no complete fragment.
    pub segments_dropped: usize,
}

/// Why recovery failed (a single record_dir's failure is logged and reported, not returned).
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A spool file or directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A record_dir's media could not be described.
    #[error("{}: {source}", path.display())]
    Media {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: RecoverError,
    },
    /// A record_dir has segments of a track whose codec is unknown (no init segment on disk).
    #[error("{}: {track:?} segments but no {} on disk to describe them", record_dir.display(), init_file_name(*track))]
    NoInit {
        /// The record_dir.
        record_dir: PathBuf,
        /// The track.
        track: TrackKind,
    },
    /// The blocking scan task panicked or was cancelled.
    #[error("spool scan task failed: {0}")]
    Task(String),
    /// The recovered files could not be added to the upload queue (they stay in the
    /// spool; the next start tries again).
    #[error("enqueueing the recovered files: {0}")]
    Enqueue(#[from] StateStoreError),
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RecoveryError + 'a {
    move |source| RecoveryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Recovers the spool at `spool_dir` (see the module docs) and enqueues its files in the
/// upload queue of the state store at `state_db`. Call it before the uploader starts.
pub async fn recover_spool(
    spool_dir: &Path,
    segment_seconds: f64,
    state_db: &Path,
) -> Result<RecoveryReport, RecoveryError> {
    let spool = spool_dir.to_path_buf();
    let db = state_db.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (report, jobs) = recover_blocking(&spool, segment_seconds)?;
        let uploads: Vec<NewUpload> = jobs
            .into_iter()
            .map(|j| NewUpload {
                local: j.local,
                key: j.key,
                delete_after: j.delete_after,
            })
            .collect();
        if !uploads.is_empty() {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            StateStore::open(&db)?.enqueue_uploads(&uploads, now_ms)?;
        }
        Ok(report)
    })
    .await
    .map_err(|e| RecoveryError::Task(e.to_string()))?
}

/// The files below `dir`, recursively, sorted.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), RecoveryError> {
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("inspecting", &path))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "tmp") {
            // An interrupted atomic replace or a manifest snapshot whose upload never ran;
            // the file it stood for is intact (or superseded), so it is dropped.
            fs::remove_file(&path).map_err(io_err("removing", &path))?;
        } else if kind.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// The object key of a spool file: its path relative to the spool, `/`-separated.
fn key_of(spool: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(spool).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let key = parts?.join("/");
    validate_key(&key).ok().map(|()| key)
}

/// Upload order inside a record_dir: inits, segments (by number), others, manifest, session.json.
fn rank(name: &str) -> (u8, u32, String) {
    if name == SESSION {
        return (4, 0, String::new());
    }
    if name == MANIFEST {
        return (3, 0, String::new());
    }
    if TRACKS.iter().any(|&t| name == init_file_name(t)) {
        return (0, 0, name.to_string());
    }
    if let Some((_, number)) = parse_segment_name(name) {
        return (1, number, name.to_string());
    }
    (2, 0, name.to_string())
}

/// `v_seg_0001.m4s` → (Video, 1).
fn parse_segment_name(name: &str) -> Option<(TrackKind, u32)> {
    let number = name.strip_suffix(".m4s")?;
    let (track, number) = if let Some(n) = number.strip_prefix("v_seg_") {
        (TrackKind::Video, n)
    } else {
        (TrackKind::Audio, number.strip_prefix("a_seg_")?)
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((track, number.parse().ok()?))
}

fn recover_blocking(
    spool: &Path,
    segment_seconds: f64,
) -> Result<(RecoveryReport, Vec<UploadJob>), RecoveryError> {
    let mut report = RecoveryReport::default();
    let mut files = Vec::new();
    if !spool.exists() {
        return Ok((report, Vec::new()));
    }
    walk(spool, &mut files)?;
    files.sort();
    let record_dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == SESSION))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();

    let mut jobs = Vec::new();
    let mut claimed: BTreeSet<PathBuf> = BTreeSet::new();
    for dir in &record_dirs {
        let rel = key_of(spool, dir).unwrap_or_else(|| dir.display().to_string());
        let session = fs::read(dir.join(SESSION))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let outcome = session
            .as_ref()
            .and_then(|s| s.get("outcome"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // The FLV may live outside the record_dir (`{stream}/{key}_{time}.flv`).
        let flv_outside = session
            .as_ref()
            .and_then(|s| s.get("flv_path"))
            .and_then(Value::as_str)
            .filter(|k| validate_key(k).is_ok())
            .map(|k| spool.join(k))
            .filter(|p| p.is_file() && !p.starts_with(dir));
        let stream = session
            .as_ref()
            .and_then(|s| s.get("stream"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if outcome == "recording" {
            let span = tracing::info_span!("recovery", record_dir = %rel, %stream);
            let _enter = span.enter();
            match recover_record_dir(
                dir,
                flv_outside.as_deref(),
                session.clone().unwrap_or(Value::Null),
                segment_seconds,
                &mut report,
            ) {
                Ok(()) => {
                    tracing::info!("recording recovered after a crash");
                    report.recovered.push(rel.clone());
                }
                Err(error) => {
                    tracing::error!(%error, "recording could not be recovered; its files stay in the spool");
                    report.failed.push(rel);
                    claimed.insert(dir.clone());
                    if let Some(f) = flv_outside {
                        claimed.insert(f);
                    }
                    continue;
                }
            }
        } else {
            if session.is_none() {
                tracing::warn!(record_dir = %rel, "session.json unreadable; files re-enqueued as they are");
            }
            report.requeued.push(rel);
        }
        // List again: recovery removed and rewrote files.
        let mut dir_files = Vec::new();
        walk(dir, &mut dir_files)?;
        dir_files.retain(|f| f.parent() == Some(dir.as_path()));
        dir_files.sort_by_key(|f| rank(&f.file_name().unwrap_or_default().to_string_lossy()));
        if let Some(flv) = flv_outside {
            // Before the manifest and session.json.
            let at = dir_files
                .iter()
                .position(|f| rank(&f.file_name().unwrap_or_default().to_string_lossy()).0 >= 3)
                .unwrap_or(dir_files.len());
            dir_files.insert(at, flv);
        }
        for f in dir_files {
            claimed.insert(f.clone());
            push_job(spool, f, &mut jobs);
        }
    }
    // Files in no record_dir: an FLV is cut to its complete tags, then everything is enqueued.
    for f in files {
        if claimed.contains(&f) || record_dirs.iter().any(|d| f.parent() == Some(d.as_path())) {
            continue;
        }
        if f.extension().is_some_and(|e| e == "flv") {
            report.bytes_truncated += truncate_flv(&f)?;
        }
        push_job(spool, f, &mut jobs);
    }
    report.files_enqueued = jobs.len();
    Ok((report, jobs))
}

fn push_job(spool: &Path, local: PathBuf, jobs: &mut Vec<UploadJob>) {
    match key_of(spool, &local) {
        Some(key) => jobs.push(UploadJob {
            local,
            key,
            delete_after: true,
        }),
        None => {
            tracing::error!(local = %local.display(), "spool file has no valid object key; left in place")
        }
    }
}

/// Cuts `path` to `len` bytes and fsyncs it.
fn truncate(path: &Path, len: u64) -> Result<(), RecoveryError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    f.set_len(len).map_err(io_err("truncating", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

/// Cuts an FLV to its last complete tag; returns the bytes cut.
fn truncate_flv(path: &Path) -> Result<u64, RecoveryError> {
    let data = fs::read(path).map_err(io_err("reading", path))?;
    let valid = valid_flv_prefix(&data);
    if valid == data.len() || valid == 0 {
        // Complete, or not an FLV we understand: leave it as it is.
        return Ok(0);
    }
    truncate(path, valid as u64)?;
    tracing::info!(flv = %path.display(), cut = data.len() - valid, "torn FLV tag cut");
    Ok((data.len() - valid) as u64)
}

/// Writes a file through a synced temporary and a rename.
fn replace_synced(path: &Path, data: &[u8]) -> Result<(), RecoveryError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    f.write_all(data).map_err(io_err("writing", &tmp))?;
    f.sync_all().map_err(io_err("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("renaming", &tmp))
}

fn recover_record_dir(
    dir: &Path,
    flv_outside: Option<&Path>,
    mut session: Value,
    segment_seconds: f64,
    report: &mut RecoveryReport,
) -> Result<(), RecoveryError> {
    let mut segments: BTreeMap<(TrackKind, u32), PathBuf> = BTreeMap::new();
    let mut flvs: Vec<PathBuf> = flv_outside.map(Path::to_path_buf).into_iter().collect();
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let path = entry.map_err(io_err("listing", dir))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".tmp") {
            // An interrupted replace; the file it was replacing is intact.
            fs::remove_file(&path).map_err(io_err("removing", &path))?;
        } else if name.ends_with(".flv") {
            flvs.push(path.clone());
        } else if let Some(id) = parse_segment_name(&name) {
            segments.insert(id, path.clone());
        }
    }

    // 1. Segments: cut torn fragments, drop empty files, describe the rest.
    let mut inits = BTreeMap::new();
    for track in TRACKS {
        let path = dir.join(init_file_name(track));
        if let Ok(data) = fs::read(&path) {
            let (timescale, config) =
                init_timescale_and_config(&data).map_err(|source| RecoveryError::Media {
                    path: path.clone(),
                    source,
                })?;
            inits.insert(track, (timescale, config));
        }
    }
    let mut on_disk: BTreeMap<(TrackKind, u32), SegmentInfo> = BTreeMap::new();
    for ((track, number), path) in segments {
        let data = fs::read(&path).map_err(io_err("reading", &path))?;
        let valid = valid_fmp4_prefix(&data);
        if valid == 0 {
            fs::remove_file(&path).map_err(io_err("removing", &path))?;
            tracing::info!(segment = %path.display(), "segment without a complete fragment removed");
            report.segments_dropped += 1;
            continue;
        }
        if valid < data.len() {
            truncate(&path, valid as u64)?;
            tracing::info!(segment = %path.display(), cut = data.len() - valid, "torn fragment cut");
            report.bytes_truncated += (data.len() - valid) as u64;
        }
        let Some((timescale, _)) = inits.get(&track) else {
            return Err(RecoveryError::NoInit {
                record_dir: dir.to_path_buf(),
                track,
            });
        };
        let info = segment_info(track, number, *timescale, &data[..valid])
            .map_err(|source| RecoveryError::Media { path, source })?;
        on_disk.insert((track, number), info);
    }

    // 2. The static manifest: already-uploaded segments from the old manifest, then disk.
    let old = fs::read_to_string(dir.join(MANIFEST)).unwrap_or_default();
    let mut listed: BTreeMap<(TrackKind, u32), SegmentInfo> = BTreeMap::new();
    for timeline in mpd_timelines(&old) {
        for (i, &(start, duration)) in timeline.segments.iter().enumerate() {
            let number = timeline.start_number.saturating_add(i as u32);
            listed.insert(
                (timeline.track, number),
                SegmentInfo {
                    track: timeline.track,
                    number,
                    start,
                    duration,
                    timescale: timeline.timescale,
                    samples: 0,
                    bytes: 0,
                    presentation_tail: 0,
                },
            );
        }
    }
    listed.extend(on_disk);
    let start_ms = ["start_unix_ms", "start_ms"]
        .iter()
        .find_map(|k| session.get(k).and_then(Value::as_u64));
    let mut mpd = Mpd::new(start_ms.unwrap_or(0), segment_seconds);
    let mut counts = BTreeMap::new();
    for track in TRACKS {
        let mut infos: Vec<&SegmentInfo> = listed
            .range((track, 0)..=(track, u32::MAX))
            .map(|(_, i)| i)
            .collect();
        let Some((timescale, config)) = inits.get(&track) else {
            if !infos.is_empty() {
                return Err(RecoveryError::NoInit {
                    record_dir: dir.to_path_buf(),
                    track,
                });
            }
            continue;
        };
        // Keep the contiguous run from the first number: a gap means a segment is gone.
        if let Some(first) = infos.first().map(|i| i.number) {
            let run = infos
                .iter()
                .enumerate()
                .take_while(|(k, i)| i.number == first + *k as u32)
                .count();
            if run < infos.len() {
                tracing::warn!(
                    ?track,
                    after = first + run as u32 - 1,
                    "segment numbers have a gap; the manifest stops before it"
                );
                infos.truncate(run);
            }
        }
        let start_number = infos.first().map_or(1, |i| i.number);
        mpd.add_track(config, *timescale, start_number);
        for info in &infos {
            mpd.push_segment(info);
        }
        counts.insert(track, infos.len());
    }
    if !inits.is_empty() {
        replace_synced(&dir.join(MANIFEST), mpd.render_static().as_bytes())?;
    }

    // 3. The FLV.
    let mut flv_seconds = None;
    for flv in &flvs {
        report.bytes_truncated += truncate_flv(flv)?;
        flv_seconds = flv_seconds.or_else(|| flv_duration_seconds(flv));
    }

    // 4. session.json.
    let duration = if inits.is_empty() {
        flv_seconds.unwrap_or(0.0)
    } else {
        mpd.duration_seconds()
    };
    if let Value::Object(map) = &mut session {
        map.insert("outcome".into(), "recovered".into());
        map.insert("duration_seconds".into(), duration.into());
        if let Some(start) = start_ms {
            map.insert(
                "end_unix_ms".into(),
                (start + (duration * 1000.0).round() as u64).into(),
            );
        }
        if !inits.is_empty() {
            map.insert(
                "segments".into(),
                serde_json::json!({
                    "video": counts.get(&TrackKind::Video).copied().unwrap_or(0),
                    "audio": counts.get(&TrackKind::Audio).copied().unwrap_or(0),
                }),
            );
        }
    } else {
        session = serde_json::json!({ "outcome": "recovered", "duration_seconds": duration });
    }
    let text = serde_json::to_vec_pretty(&session).unwrap_or_default();
    replace_synced(&dir.join(SESSION), &text)
}

/// The timestamp of the last tag of a (complete) FLV, in seconds.
fn flv_duration_seconds(path: &Path) -> Option<f64> {
    let data = fs::read(path).ok()?;
    let last = recnode_media::flv::FlvReader::new(&data)
        .ok()?
        .filter_map(Result::ok)
        .map(|t| t.timestamp_ms)
        .max()?;
    Some(f64::from(last) / 1000.0)
}
