//! Verifies the recordings of a load run: one finished record dir per stream, a static
//! DASH manifest, session.json `outcome` `completed`, and exactly as many samples in the
//! fMP4 segments (counted from `trun`, ISO/IEC 14496-12 §8.8.8) as frames were sent.
//!
//! With the publisher's send times at hand it also measures storage lag: for each
//! segment, the time its name appeared in storage (the file's ctime) minus the time its
//! last frame left the publisher. Which frame is last follows from the running sample count (frame k of a
//! track is the k-th frame sent on it), so no timeline mapping is involved.

use std::path::{Path, PathBuf};

use mp4_atom::{Decode, Moof};

use crate::publisher::StreamReport;

/// Why a check could not run at all (as opposed to finding a bad recording).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The send report could not be read.
    #[error("reading send report {path}: {source}")]
    ReadReport {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The send report is not valid JSON of the expected shape.
    #[error("parsing send report {path}: {source}")]
    ParseReport {
        /// The file.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a stream's recording must hold.
#[derive(Debug, Clone, Default)]
pub struct Expectation {
    /// The stream name.
    pub name: String,
    /// Video frames sent.
    pub video_frames: u64,
    /// Audio frames sent.
    pub audio_frames: u64,
    /// Send time (Unix ms) of each video frame, if known.
    pub video_sent_unix_ms: Vec<u64>,
    /// Send time (Unix ms) of each audio frame, if known.
    pub audio_sent_unix_ms: Vec<u64>,
}

impl From<StreamReport> for Expectation {
    fn from(r: StreamReport) -> Self {
        Expectation {
            name: r.name,
            video_frames: r.video_frames,
            audio_frames: r.audio_frames,
            video_sent_unix_ms: r.video_sent_unix_ms,
            audio_sent_unix_ms: r.audio_sent_unix_ms,
        }
    }
}

/// The send report the `rtmp` command writes with `--report`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SendReport {
    /// One entry per publisher.
    pub streams: Vec<StreamReport>,
}

impl SendReport {
    /// Reads a send report written by the `rtmp` command.
    pub fn load(path: &str) -> Result<SendReport, CheckError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckError::ReadReport {
            path: path.to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| CheckError::ParseReport {
            path: path.to_string(),
            source,
        })
    }
}

/// A segment's storage lag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentLag {
    /// ctime of the segment file minus the send time of its last frame, ms.
    pub lag_ms: f64,
    /// Whether it is the last segment of its track (written when the publish ends).
    pub last_of_track: bool,
}

/// The findings for one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamCheck {
    /// The stream name.
    pub name: String,
    /// Everything wrong with the recording; empty if it is complete.
    pub problems: Vec<String>,
    /// Video samples in the segments.
    pub video_samples: u64,
    /// Audio samples in the segments.
    pub audio_samples: u64,
    /// Per-segment storage lag (only with send times).
    pub lags: Vec<SegmentLag>,
    /// Bytes of all files in the record dirs.
    pub bytes: u64,
}

/// Samples per `trun` of every `moof` in a segment file, in file order.
pub fn segment_sample_count(data: &[u8]) -> Result<u64, String> {
    let mut rest = data;
    let mut samples = 0u64;
    let mut offset = 0usize;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(format!("{} trailing bytes at {offset}", rest.len()));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let size = match size32 {
            0 => rest.len() as u64,
            1 => {
                let b = rest
                    .get(8..16)
                    .ok_or_else(|| format!("truncated largesize at {offset}"))?;
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            n => n,
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size < 8 || size > rest.len() {
            return Err(format!(
                "box {:?} at {offset} of size {size} does not fit in {} bytes",
                String::from_utf8_lossy(&kind),
                rest.len()
            ));
        }
        let (this, next) = rest.split_at(size);
        if &kind == b"moof" {
            let mut body: &[u8] = this;
            let moof = Moof::decode(&mut body).map_err(|e| format!("moof at {offset}: {e}"))?;
            samples += moof
                .traf
                .iter()
                .flat_map(|t| t.trun.iter())
                .map(|t| t.samples.len() as u64)
                .sum::<u64>();
        }
        rest = next;
        offset += size;
    }
    Ok(samples)
}

/// The record dirs of `stream` under `root`, sorted.
fn record_dirs(root: &Path, stream: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(stream)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The segment files of one track (`v_seg_NNNN.m4s` or `a_seg_…`) sorted by number.
fn segments(dir: &Path, prefix: &str) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let number = name
                .strip_prefix(prefix)?
                .strip_suffix(".m4s")?
                .parse()
                .ok()?;
            Some((number, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// When `path` got its name in storage, in Unix ms: its ctime. The uploader either
/// renames a written copy into place or hard-links the spool file there; both set the
/// ctime, while the mtime of a linked file is when the recorder last wrote it. (Deleting
/// the spool's name right after a link sets the ctime again, a little later.)
fn stored_unix_ms(path: &Path) -> Option<f64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(meta.ctime() as f64 * 1000.0 + meta.ctime_nsec() as f64 / 1e6)
}

/// Counts one track's samples over its segments and measures each segment's lag.
fn check_track(dir: &Path, prefix: &str, what: &str, sent: &[u64], check: &mut StreamCheck) -> u64 {
    let segs = segments(dir, prefix);
    if segs.is_empty() {
        check
            .problems
            .push(format!("{}: no {what} segments", dir.display()));
    }
    let mut total = 0u64;
    let count = segs.len();
    for (i, (_, path)) in segs.iter().enumerate() {
        let samples = match std::fs::read(path) {
            Ok(data) => match segment_sample_count(&data) {
                Ok(n) => n,
                Err(e) => {
                    check.problems.push(format!("{}: {e}", path.display()));
                    0
                }
            },
            Err(e) => {
                check.problems.push(format!("{}: {e}", path.display()));
                0
            }
        };
        total += samples;
        let last_frame = usize::try_from(total).unwrap_or(usize::MAX).checked_sub(1);
        if let (Some(&sent_at), Some(stored)) =
            (last_frame.and_then(|k| sent.get(k)), stored_unix_ms(path))
        {
            check.lags.push(SegmentLag {
                lag_ms: stored - sent_at as f64,
                last_of_track: i + 1 == count,
            });
        }
    }
    total
}

/// Checks the recording of one stream under the storage root `root`.
pub fn check_stream(root: &Path, expect: &Expectation) -> StreamCheck {
    let mut check = StreamCheck {
        name: expect.name.clone(),
        ..StreamCheck::default()
    };
    let dirs = record_dirs(root, &expect.name);
    match dirs.len() {
        0 => {
            check.problems.push("no record dir".into());
            return check;
        }
        1 => {}
        n => check
            .problems
            .push(format!("{n} record dirs (the recording was split)")),
    }
    for dir in &dirs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            check.bytes += entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
        match std::fs::read_to_string(dir.join("manifest.mpd")) {
            Ok(m) if m.contains("type=\"static\"") => {}
            Ok(_) => check
                .problems
                .push(format!("{}: manifest.mpd is not static", dir.display())),
            Err(e) => check
                .problems
                .push(format!("{}: manifest.mpd: {e}", dir.display())),
        }
        match std::fs::read_to_string(dir.join("session.json")) {
            Ok(text) => {
                let outcome = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("outcome").and_then(|o| o.as_str()).map(String::from));
                if outcome.as_deref() != Some("completed") {
                    check.problems.push(format!(
                        "{}: session.json outcome {outcome:?}",
                        dir.display()
                    ));
                }
            }
            Err(e) => check
                .problems
                .push(format!("{}: session.json: {e}", dir.display())),
        }
    }
    // Lag is only meaningful for a single recording (frame k ↔ k-th frame sent).
    let (video_sent, audio_sent): (&[u64], &[u64]) = if dirs.len() == 1 {
        (&expect.video_sent_unix_ms, &expect.audio_sent_unix_ms)
    } else {
        (&[], &[])
    };
    for dir in &dirs {
        let video = check_track(dir, "v_seg_", "video", video_sent, &mut check);
        let audio = check_track(dir, "a_seg_", "audio", audio_sent, &mut check);
        check.video_samples += video;
        check.audio_samples += audio;
    }
    if check.video_samples != expect.video_frames {
        check.problems.push(format!(
            "video: {} samples recorded, {} frames sent",
            check.video_samples, expect.video_frames
        ));
    }
    if check.audio_samples != expect.audio_frames {
        check.problems.push(format!(
            "audio: {} samples recorded, {} frames sent",
            check.audio_samples, expect.audio_frames
        ));
    }
    check
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_segment_with_trailing_garbage_is_an_error_not_a_panic() {
        assert!(segment_sample_count(&[0, 0, 0, 9, b'f', b'r', b'e', b'e']).is_err());
        assert!(segment_sample_count(&[0, 0, 0]).is_err());
        assert_eq!(
            segment_sample_count(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']),
            Ok(0)
        );
    }
}
