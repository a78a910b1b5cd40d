//! Frames → fragmented MP4 (ISO/IEC 14496-12 §8.8), one file series per track.
//!
//! [`Fmp4Muxer`] takes [`Frame`]s of up to one video and one audio track and returns
//! [`MuxOutput`]s for the caller to write:
//! - [`MuxOutput::Init`] once per track: `v_init.m4s` / `a_init.m4s`;
//! - [`MuxOutput::Fragment`]: one `moof`+`mdat` (about `fragment_seconds` long) to append
//!   to the track's current segment file, `v_seg_NNNN.m4s` / `a_seg_NNNN.m4s`. The first
//!   fragment of a segment starts with `styp`. A caller that fsyncs each fragment as it
//!   arrives loses at most the open fragment in a crash;
//! - [`MuxOutput::SegmentDone`]: that segment file is complete; its timing feeds the MPD.
//!
//! Segments are cut at the first video keyframe at least `segment_seconds` after the
//! segment began; both tracks close their segment at that moment, so video and audio
//! segment N cover the same stretch of time. Without video, audio is cut on time alone.
//!
//! Timing: each track is written in its own timescale (90 kHz video, the sample rate for
//! audio). Frame times are rebased on the first frame of the recording, so both tracks
//! share one timeline. A sample's duration is the distance to the next sample's decode
//! time, so each track holds back one frame until the next arrives; [`Fmp4Muxer::finish`]
//! releases it. Composition offsets (`pts - dts`) are signed (`trun` version 1).

mod codec;
mod fragment;
mod init;

use crate::{CodecConfig, Frame, TrackKind};
use bytes::Bytes;
use fragment::Sample;

/// Segmenting choices for one recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Fmp4Options {
    /// Target segment length; a segment ends at the first video keyframe after this.
    pub segment_seconds: f64,
    /// Target fragment length inside a segment, the unit of crash loss.
    pub fragment_seconds: f64,
    /// The number of the first segment (1 for a new recording; more when one is resumed).
    pub first_segment: u32,
}

impl Default for Fmp4Options {
    fn default() -> Self {
        Fmp4Options {
            segment_seconds: 2.0,
            fragment_seconds: 0.5,
            first_segment: 1,
        }
    }
}

/// A finished segment of one track, as the MPD's SegmentTimeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Which track's segment series.
    pub track: TrackKind,
    /// The segment number (`$Number$`).
    pub number: u32,
    /// The decode time of its first sample, in `timescale` units from the recording start.
    pub start: u64,
    /// The sum of its sample durations, in `timescale` units.
    pub duration: u64,
    /// The track timescale.
    pub timescale: u32,
    /// How many samples (frames) it holds.
    pub samples: u32,
    /// Its size in bytes, `styp` included.
    pub bytes: u64,
    /// How far its last presented frame ends past its decode end (`start + duration`),
    /// in `timescale` units: nonzero when frames are reordered (B-frames).
    pub presentation_tail: u64,
}

impl SegmentInfo {
    /// The segment's file name in live777's layout: `v_seg_0001.m4s`.
    pub fn file_name(&self) -> String {
        segment_file_name(self.track, self.number)
    }
}

/// The file name of segment `number` of `track`: `v_seg_0001.m4s`, `a_seg_0001.m4s`.
pub fn segment_file_name(track: TrackKind, number: u32) -> String {
    format!("{}_seg_{number:04}.m4s", track.prefix())
}

/// The file name of `track`'s init segment: `v_init.m4s`, `a_init.m4s`.
pub fn init_file_name(track: TrackKind) -> String {
    format!("{}_init.m4s", track.prefix())
}

/// What the muxer hands back for the caller to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxOutput {
    /// The init segment of a track (write it whole to [`init_file_name`]).
    Init {
        /// The track.
        track: TrackKind,
        /// `ftyp` + `moov`.
        data: Bytes,
    },
    /// A fragment to append to segment file `segment` of `track`.
    Fragment {
        /// The track.
        track: TrackKind,
        /// The segment number the fragment belongs to.
        segment: u32,
        /// [`styp`] + `moof` + `mdat`.
        data: Bytes,
    },
    /// The segment file is complete.
    SegmentDone(SegmentInfo),
}

/// Why the muxer refused a track or a frame.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    /// mp4-atom could not encode a box (a field out of range).
    #[error("mp4 box encoding failed: {0}")]
    Encode(#[from] mp4_atom::Error),
    /// A frame arrived for a track that has no codec configuration yet.
    #[error("{0:?} frame before its codec configuration")]
    NoTrack(TrackKind),
    /// A track's configuration changed mid-recording; the caller starts a new recording.
    #[error(
        "{track:?} codec configuration changed from {from} to {to}; a new recording is needed"
    )]
    ConfigChanged {
        /// The track.
        track: TrackKind,
        /// The codec recorded so far.
        from: &'static str,
        /// The codec that arrived.
        to: &'static str,
    },
    /// A sample or fragment is larger than 32-bit MP4 fields can describe.
    #[error("fragment too large for 32-bit size fields")]
    TooLarge,
    /// The muxer was finished; it takes no more frames.
    #[error("muxer already finished")]
    Finished,
}

/// Counters a recorder reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Video frames dropped because no keyframe had started the track yet.
    pub dropped_before_keyframe: u64,
    /// Frames whose decode time went backwards and was clamped forward.
    pub clamped_timestamps: u64,
    /// Samples written.
    pub samples: u64,
}

/// A sample whose duration is not known until the next one arrives.
#[derive(Debug)]
struct Pending {
    dts: i64,
    cts: i32,
    keyframe: bool,
    data: Bytes,
}

/// One track's state.
#[derive(Debug)]
struct Track {
    kind: TrackKind,
    config: CodecConfig,
    timescale: u32,
    /// Added to rebased times so the track never starts before 0.
    shift: i64,
    pending: Option<Pending>,
    last_dts: Option<i64>,
    last_duration: u32,
    fragment: Vec<Sample>,
    fragment_duration: u64,
    /// The number the current segment will be written as.
    segment: u32,
    segment_start: Option<u64>,
    segment_duration: u64,
    segment_samples: u32,
    segment_bytes: u64,
    /// The latest presentation end (`dts + cts + duration`) of a sample in this segment.
    segment_presentation_end: i64,
    /// `mfhd` sequence number of the next fragment.
    sequence: u32,
    waiting_for_keyframe: bool,
}

impl Track {
    fn new(config: CodecConfig, first_segment: u32) -> Self {
        let kind = config.kind();
        Track {
            kind,
            timescale: codec::timescale(&config),
            config,
            shift: 0,
            pending: None,
            last_dts: None,
            last_duration: 0,
            fragment: Vec::new(),
            fragment_duration: 0,
            segment: first_segment,
            segment_start: None,
            segment_duration: 0,
            segment_samples: 0,
            segment_bytes: 0,
            segment_presentation_end: 0,
            sequence: 1,
            waiting_for_keyframe: kind == TrackKind::Video,
        }
    }

    /// A duration for a sample with no successor: the previous one, or a codec default.
    fn fallback_duration(&self) -> u32 {
        if self.last_duration > 0 {
            return self.last_duration;
        }
        match &self.config {
            CodecConfig::Aac(_) => 1024,
            CodecConfig::Opus(_) => 960,
            _ => self.timescale / 30,
        }
    }

    fn append(&mut self, p: Pending, duration: u32) {
        self.last_duration = duration;
        self.segment_presentation_end = self
            .segment_presentation_end
            .max(p.dts + i64::from(p.cts) + i64::from(duration));
        self.fragment_duration += u64::from(duration);
        // Rebased times are >= 0 by construction (see `shift`).
        let dts = u64::try_from(p.dts).unwrap_or(0);
        self.fragment.push(Sample {
            dts,
            duration,
            cts: p.cts,
            keyframe: p.keyframe,
            data: p.data,
        });
    }

    fn flush_fragment(&mut self, out: &mut Vec<MuxOutput>) -> Result<(), Fmp4Error> {
        if self.fragment.is_empty() {
            return Ok(());
        }
        let first_in_segment = self.segment_start.is_none();
        if first_in_segment {
            self.segment_start = Some(self.fragment[0].dts);
        }
        let data = fragment::encode(self.sequence, &self.fragment, first_in_segment)?;
        self.sequence = self.sequence.wrapping_add(1);
        self.segment_duration += self.fragment_duration;
        self.segment_samples += self.fragment.len() as u32;
        self.segment_bytes += data.len() as u64;
        self.fragment.clear();
        self.fragment_duration = 0;
        out.push(MuxOutput::Fragment {
            track: self.kind,
            segment: self.segment,
            data: data.into(),
        });
        Ok(())
    }

    fn close_segment(&mut self, out: &mut Vec<MuxOutput>) -> Result<(), Fmp4Error> {
        self.flush_fragment(out)?;
        let Some(start) = self.segment_start.take() else {
            return Ok(());
        };
        let decode_end = start + self.segment_duration;
        let presentation_end = u64::try_from(self.segment_presentation_end).unwrap_or(0);
        out.push(MuxOutput::SegmentDone(SegmentInfo {
            track: self.kind,
            number: self.segment,
            start,
            duration: self.segment_duration,
            timescale: self.timescale,
            samples: self.segment_samples,
            bytes: self.segment_bytes,
            presentation_tail: presentation_end.saturating_sub(decode_end),
        }));
        self.segment_presentation_end = 0;
        self.segment += 1;
        self.segment_duration = 0;
        self.segment_samples = 0;
        self.segment_bytes = 0;
        Ok(())
    }
}

/// Turns frames of one recording into init segments, fragments and finished segments.
#[derive(Debug)]
pub struct Fmp4Muxer {
    opts: Fmp4Options,
    video: Option<Track>,
    audio: Option<Track>,
    /// The first frame's decode time `(value, timescale)`: time zero of the recording.
    origin: Option<(i64, u32)>,
    /// When the current segment began, in seconds from the origin.
    segment_start_seconds: Option<f64>,
    stats: MuxStats,
    finished: bool,
}

impl Fmp4Muxer {
    /// A muxer with no tracks yet; add them with [`Fmp4Muxer::set_config`].
    pub fn new(opts: Fmp4Options) -> Self {
        Fmp4Muxer {
            opts,
            video: None,
            audio: None,
            origin: None,
            segment_start_seconds: None,
            stats: MuxStats::default(),
            finished: false,
        }
    }

    /// Adds the track for `config` and returns its init segment; `None` if that exact config is already set.
    pub fn set_config(&mut self, config: CodecConfig) -> Result<Option<MuxOutput>, Fmp4Error> {
        let kind = config.kind();
        let slot = match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        if let Some(track) = slot {
            if track.config == config {
                return Ok(None);
            }
            if track.config.codec() != config.codec()
                || track.segment_start.is_some()
                || track.last_dts.is_some()
            {
                return Err(Fmp4Error::ConfigChanged {
                    track: kind,
                    from: track.config.codec().name(),
                    to: config.codec().name(),
                });
            }
        }
        let track = Track::new(config, self.opts.first_segment);
        let data = init::init_segment(&track.config, track.timescale)?;
        *slot = Some(track);
        Ok(Some(MuxOutput::Init {
            track: kind,
            data: data.into(),
        }))
    }

    /// The configuration of `track`, if it has one.
    pub fn config(&self, track: TrackKind) -> Option<&CodecConfig> {
        self.track(track).map(|t| &t.config)
    }

    /// The timescale `track` is written in.
    pub fn timescale(&self, track: TrackKind) -> Option<u32> {
        self.track(track).map(|t| t.timescale)
    }

    /// Counters so far.
    pub fn stats(&self) -> MuxStats {
        self.stats
    }

    fn track(&self, kind: TrackKind) -> Option<&Track> {
        match kind {
            TrackKind::Video => self.video.as_ref(),
            TrackKind::Audio => self.audio.as_ref(),
        }
    }

    fn track_mut(&mut self, kind: TrackKind) -> Option<&mut Track> {
        match kind {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        }
    }

    /// Adds one frame; returns what became ready (fragments, finished segments).
    pub fn push(&mut self, frame: Frame) -> Result<Vec<MuxOutput>, Fmp4Error> {
        if self.finished {
            return Err(Fmp4Error::Finished);
        }
        let kind = frame.track;
        let has_video = self.video.is_some();
        let segment_seconds = self.opts.segment_seconds;
        let fragment_seconds = self.opts.fragment_seconds;
        let frame_timescale = i128::from(frame.timescale.max(1));
        let origin = *self
            .origin
            .get_or_insert((frame.dts, frame.timescale.max(1)));

        let track = match kind {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        }
        .ok_or(Fmp4Error::NoTrack(kind))?;
        if track.waiting_for_keyframe {
            if !frame.keyframe {
                self.stats.dropped_before_keyframe += 1;
                return Ok(Vec::new());
            }
            track.waiting_for_keyframe = false;
        }

        // Rebase on the origin and rescale into the track timescale, rounding to nearest.
        let ts = i128::from(track.timescale);
        let (ov, ots) = (i128::from(origin.0), i128::from(origin.1));
        let rescale = |t: i64| -> i64 {
            let num = (i128::from(t) * ots - ov * frame_timescale) * ts;
            let den = frame_timescale * ots;
            let r = if num >= 0 {
                (num + den / 2) / den
            } else {
                (num - den / 2) / den
            };
            i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX })
        };
        let mut dts = rescale(frame.dts);
        let pts = rescale(frame.pts);
        if track.last_dts.is_none() && dts < 0 {
            // This track's first frame predates the recording's first frame (interleaving):
            // shift the track so it starts at zero.
            track.shift = -dts;
        }
        dts = dts.saturating_add(track.shift);
        let pts = pts.saturating_add(track.shift);
        if let Some(last) = track.last_dts {
            if dts <= last {
                self.stats.clamped_timestamps += 1;
                dts = last + 1;
            }
        }
        track.last_dts = Some(dts);
        let cts = i32::try_from(pts - dts).unwrap_or(0);

        let mut out = Vec::new();
        if let Some(p) = track.pending.take() {
            let duration = u32::try_from(dts - p.dts).unwrap_or(u32::MAX).max(1);
            track.append(p, duration);
            self.stats.samples += 1;
        }

        let now = dts as f64 / track.timescale as f64;
        let drives_cuts = kind == TrackKind::Video || !has_video;
        let cut = drives_cuts
            && frame.keyframe
            && self
                .segment_start_seconds
                .is_some_and(|start| now - start >= segment_seconds - 1e-6);
        if cut {
            for t in [self.video.as_mut(), self.audio.as_mut()]
                .into_iter()
                .flatten()
            {
                t.close_segment(&mut out)?;
            }
            self.segment_start_seconds = Some(now);
        } else {
            if track.fragment_duration as f64 >= fragment_seconds * track.timescale as f64 {
                track.flush_fragment(&mut out)?;
            }
            if drives_cuts && self.segment_start_seconds.is_none() {
                self.segment_start_seconds = Some(now);
            }
        }
        let track = self.track_mut(kind).ok_or(Fmp4Error::NoTrack(kind))?;
        track.pending = Some(Pending {
            dts,
            cts,
            keyframe: frame.keyframe || kind == TrackKind::Audio,
            data: frame.data,
        });
        Ok(out)
    }

    /// Ends the recording: writes the held-back samples and closes every open segment.
    pub fn finish(&mut self) -> Result<Vec<MuxOutput>, Fmp4Error> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        for t in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(p) = t.pending.take() {
                let d = t.fallback_duration();
                t.append(p, d);
                self.stats.samples += 1;
            }
            t.close_segment(&mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
