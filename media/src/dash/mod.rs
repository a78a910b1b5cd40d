//! Finished segments → a DASH MPD (ISO/IEC 23009-1), in live777's file layout.
//!
//! One AdaptationSet per track, each with a `SegmentTemplate` (`v_seg_$Number%04d$.m4s`)
//! and a `SegmentTimeline`. Runs of equal, contiguous segments collapse into one `<S>`
//! with a repeat count `r` (§5.3.9.6), so a 24-hour recording of regular 2 s segments
//! stays a few lines long instead of 43,200. The manifest is `type="dynamic"` while
//! recording and `type="static"` with `mediaPresentationDuration` once it ends.
//!
//! Sans-IO: wall-clock times (availability start, publish time) are passed in as unix
//! milliseconds; the caller writes the returned text after the segments it lists.

mod codecs;

pub use codecs::codecs_string;

use crate::fmp4::{init_file_name, SegmentInfo};
use crate::{CodecConfig, TrackKind};
use std::fmt::Write as _;

/// One `<S>` element: `r + 1` segments of duration `d`, the first starting at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineRun {
    /// Start of the first segment, in track timescale units.
    pub t: u64,
    /// Duration of each segment in the run.
    pub d: u64,
    /// How many more segments follow the first (0 for a single one).
    pub r: u32,
}

impl TimelineRun {
    fn end(&self) -> u64 {
        self.t + self.d * (u64::from(self.r) + 1)
    }
}

/// What the MPD says about one track.
#[derive(Debug, Clone, PartialEq)]
struct MpdTrack {
    kind: TrackKind,
    codecs: String,
    timescale: u32,
    width: u16,
    height: u16,
    sample_rate: u32,
    channels: u8,
    start_number: u32,
    runs: Vec<TimelineRun>,
    bytes: u64,
    duration: u64,
    /// The last segment's presentation tail (reordered frames shown after its decode end).
    tail: u64,
}

impl MpdTrack {
    fn bandwidth(&self) -> u64 {
        if self.duration == 0 {
            return 1;
        }
        (self.bytes * 8 * u64::from(self.timescale) / self.duration).max(1)
    }

    fn seconds(&self) -> f64 {
        // The presentation ends after the decode timeline when the last frames are
        // reordered; a duration that cut them off would make players drop them.
        let end = self.runs.last().map_or(0, TimelineRun::end) + self.tail;
        let start = self.runs.first().map_or(0, |r| r.t);
        (end - start) as f64 / f64::from(self.timescale.max(1))
    }
}

/// The manifest of one recording, updated as segments finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    availability_start_ms: u64,
    min_segment_seconds: f64,
    tracks: Vec<MpdTrack>,
}

impl Mpd {
    /// An empty manifest for a recording that began at `availability_start_ms` (unix ms).
    pub fn new(availability_start_ms: u64, segment_seconds: f64) -> Self {
        Mpd {
            availability_start_ms,
            min_segment_seconds: segment_seconds,
            tracks: Vec::new(),
        }
    }

    /// Declares a track: its codec, the timescale its segments use, and its first segment number.
    pub fn add_track(&mut self, config: &CodecConfig, timescale: u32, start_number: u32) {
        let kind = config.kind();
        self.tracks.retain(|t| t.kind != kind);
        let (width, height, sample_rate, channels) = match config {
            CodecConfig::H264(c) => (c.width, c.height, 0, 0),
            CodecConfig::H265(c) => (c.width, c.height, 0, 0),
            CodecConfig::Vp8(c) => (c.width, c.height, 0, 0),
            CodecConfig::Vp9(c) => (c.width, c.height, 0, 0),
            CodecConfig::Av1(c) => (c.width, c.height, 0, 0),
            CodecConfig::Aac(c) => (0, 0, c.sample_rate, c.channels),
            CodecConfig::Opus(c) => (0, 0, 48_000, c.channels),
        };
        self.tracks.push(MpdTrack {
            kind,
            codecs: codecs_string(config),
            timescale,
            width,
            height,
            sample_rate,
            channels,
            start_number,
            runs: Vec::new(),
            bytes: 0,
            duration: 0,
            tail: 0,
        });
        self.tracks.sort_by_key(|t| t.kind);
    }

    /// Adds a finished segment to its track's timeline; segments of undeclared tracks are ignored.
    pub fn push_segment(&mut self, seg: &SegmentInfo) {
        let Some(track) = self.tracks.iter_mut().find(|t| t.kind == seg.track) else {
            return;
        };
        track.bytes += seg.bytes;
        track.duration += seg.duration;
        track.tail = seg.presentation_tail;
        match track.runs.last_mut() {
            Some(run) if run.d == seg.duration && run.end() == seg.start => run.r += 1,
            _ => track.runs.push(TimelineRun {
                t: seg.start,
                d: seg.duration,
                r: 0,
            }),
        }
    }

    /// The timeline of `track` so far.
    pub fn timeline(&self, track: TrackKind) -> &[TimelineRun] {
        self.tracks
            .iter()
            .find(|t| t.kind == track)
            .map_or(&[], |t| &t.runs)
    }

    /// The recorded duration in seconds: the longest track's timeline.
    pub fn duration_seconds(&self) -> f64 {
        self.tracks
            .iter()
            .map(MpdTrack::seconds)
            .fold(0.0, f64::max)
    }

    /// The manifest while recording: `type="dynamic"`, published at `publish_ms` (unix ms).
    pub fn render_dynamic(&self, publish_ms: u64) -> String {
        let update = format_duration(self.min_segment_seconds.max(1.0));
        let head = format!(
            "type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
             minimumUpdatePeriod=\"{update}\" timeShiftBufferDepth=\"{}\"",
            format_utc(self.availability_start_ms),
            format_utc(publish_ms),
            // The whole recording stays available.
            format_duration(self.duration_seconds().max(self.min_segment_seconds) + 60.0),
        );
        self.render(&head)
    }

    /// The manifest of a finished recording: `type="static"` with its total duration.
    pub fn render_static(&self) -> String {
        let head = format!(
            "type=\"static\" mediaPresentationDuration=\"{}\"",
            format_duration(self.duration_seconds())
        );
        self.render(&head)
    }

    fn render(&self, head: &str) -> String {
        let mut s = String::with_capacity(1024);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" {head} minBufferTime=\"{}\">\n\
             \x20 <Period id=\"0\" start=\"PT0S\">\n",
            format_duration(self.min_segment_seconds.max(1.0)),
        );
        for (id, t) in self.tracks.iter().enumerate() {
            let (content, mime, extra) = match t.kind {
                TrackKind::Video => (
                    "video",
                    "video/mp4",
                    format!(" width=\"{}\" height=\"{}\"", t.width, t.height),
                ),
                TrackKind::Audio => (
                    "audio",
                    "audio/mp4",
                    format!(" audioSamplingRate=\"{}\"", t.sample_rate),
                ),
            };
            let prefix = t.kind.prefix();
            let _ = write!(
                s,
                "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" \
                 segmentAlignment=\"true\" startWithSAP=\"1\">\n\
                 \x20     <Representation id=\"{prefix}\" codecs=\"{}\" bandwidth=\"{}\"{extra}>\n",
                xml_escape(&t.codecs),
                t.bandwidth(),
            );
            if t.kind == TrackKind::Audio {
                let _ = writeln!(
                    s,
                    "        <AudioChannelConfiguration \
                     schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" \
                     value=\"{}\"/>",
                    t.channels
                );
            }
            let _ = write!(
                s,
                "        <SegmentTemplate timescale=\"{}\" initialization=\"{}\" \
                 media=\"{prefix}_seg_$Number%04d$.m4s\" startNumber=\"{}\">\n\
                 \x20         <SegmentTimeline>\n",
                t.timescale,
                init_file_name(t.kind),
                t.start_number,
            );
            let mut expected = None;
            for run in &t.runs {
                s.push_str("            <S");
                if expected != Some(run.t) {
                    let _ = write!(s, " t=\"{}\"", run.t);
                }
                let _ = write!(s, " d=\"{}\"", run.d);
                if run.r > 0 {
                    let _ = write!(s, " r=\"{}\"", run.r);
                }
                s.push_str("/>\n");
                expected = Some(run.end());
            }
            s.push_str(
                "          </SegmentTimeline>\n        </SegmentTemplate>\n      \
                 </Representation>\n    </AdaptationSet>\n",
            );
        }
        s.push_str("  </Period>\n</MPD>\n");
        s
    }
}

/// An `xs:duration` such as `PT7.040S`.
fn format_duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds.max(0.0))
}

/// An `xs:dateTime` in UTC such as `2026-11-21T19:35:00.000Z`, from unix milliseconds.
fn format_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Escapes the five XML special characters.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests;
