//! [`BatchClock`]: when the stream actor hands a recording's frames to its session.
//!
//! Frames go to a recorder session in batches, and each batch is one step of the session
//! on the blocking pool (muxing, writes, fsyncs), so the cost of a step (two thread
//! wake-ups, the fsyncs) is paid a few times per second rather than once per frame. A batch
//! ends with the frame that makes the fMP4 muxer close a fragment (or cut a segment): the
//! session writes and fsyncs that fragment at once, so batching delays no fragment and a
//! kill -9 still loses at most the open fragment. The clock mirrors the rules of
//! [`recnode_media::fmp4::Fmp4Muxer::push`] on the frames' own timestamps: a track's
//! fragment closes at the first frame of that track at least `fragment_seconds` after the
//! fragment's first frame, and every fragment closes at a video keyframe (any frame when
//! there is no video) at least `segment_seconds` after the segment start. It is a
//! prediction: if it is off (rounding, clamped timestamps), a fragment is written with
//! the next batch, never lost. Batches are also bounded in frames and bytes, for streams
//! whose timestamps do not advance.

use super::track_index;
use recnode_media::{Frame, TrackKind};

/// The fMP4 fragment length the recorder's muxer uses, in seconds.
pub(crate) const FRAGMENT_SECONDS: f64 = 0.5;
/// A batch ends after this many frames whatever their timestamps.
const MAX_BATCH_FRAMES: usize = 512;
/// A batch ends once it holds this many bytes of frame data.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Slack for comparing media times computed in different timescales.
const EPSILON: f64 = 1e-6;

/// Predicts the muxer's fragment closes for one recording and counts the frames held back.
#[derive(Debug, Clone)]
pub(crate) struct BatchClock {
    segment_seconds: f64,
    /// Per track: media time of the first frame of the open fragment.
    fragment_start: [Option<f64>; 2],
    /// Per track: media time of the last frame seen (the muxer holds that one back).
    last: [Option<f64>; 2],
    /// Media time of the open segment's first video keyframe (first frame without video).
    segment_start: Option<f64>,
    /// The muxer drops video frames until the first keyframe.
    video_started: bool,
    /// Frames and bytes seen since the last batch went out.
    held_frames: usize,
    held_bytes: usize,
}

impl BatchClock {
    /// A clock for a recording whose muxer cuts segments of `segment_seconds`.
    pub(crate) fn new(segment_seconds: f64) -> Self {
        BatchClock {
            segment_seconds,
            fragment_start: [None; 2],
            last: [None; 2],
            segment_start: None,
            video_started: false,
            held_frames: 0,
            held_bytes: 0,
        }
    }

    /// Feeds the next frame of the recording; true when the batch ending with it should be
    /// handed to the session now. `has_video` says whether the stream has a video track.
    pub(crate) fn on_frame(&mut self, frame: &Frame, has_video: bool) -> bool {
        self.held_frames += 1;
        self.held_bytes += frame.data.len();
        let closes = self.closes_fragment(frame, has_video);
        closes || self.held_frames >= MAX_BATCH_FRAMES || self.held_bytes >= MAX_BATCH_BYTES
    }

    /// The batch went out: nothing is held back any more.
    pub(crate) fn sent(&mut self) {
        self.held_frames = 0;
        self.held_bytes = 0;
    }

    fn closes_fragment(&mut self, frame: &Frame, has_video: bool) -> bool {
        let i = track_index(frame.track);
        let video = frame.track == TrackKind::Video;
        if video && !self.video_started {
            if !frame.keyframe {
                return false;
            }
            self.video_started = true;
        }
        let t = frame.dts_seconds();
        let drives_cuts = video || !has_video;
        let cut = drives_cuts
            && frame.keyframe
            && self
                .segment_start
                .is_some_and(|start| t - start >= self.segment_seconds - EPSILON);
        let mut closes = false;
        if cut {
            // Every track's fragment closes; the other track's held-back frame starts its next one.
            for j in 0..2 {
                self.fragment_start[j] = if j == i { Some(t) } else { self.last[j] };
            }
            self.segment_start = Some(t);
            closes = true;
        } else {
            match self.fragment_start[i] {
                Some(start) if t - start >= FRAGMENT_SECONDS - EPSILON => {
                    self.fragment_start[i] = Some(t);
                    closes = true;
                }
                Some(_) => {}
                None => self.fragment_start[i] = Some(t),
            }
            if drives_cuts && self.segment_start.is_none() {
                self.segment_start = Some(t);
            }
        }
        self.last[i] = Some(t);
        closes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(track: TrackKind, ms: i64, keyframe: bool) -> Frame {
        Frame {
            track,
            pts: ms,
            dts: ms,
            timescale: 1000,
            keyframe,
            data: Bytes::from_static(&[0; 100]),
        }
    }

    #[test]
    fn batches_end_where_the_muxer_closes_a_fragment_or_cuts_a_segment() {
        let mut clock = BatchClock::new(2.0);
        let mut video_flushes = Vec::new();
        // 25 fps video, keyframe every 2 s (50 frames).
        for k in 0..150 {
            let ms = k * 40;
            if clock.on_frame(&frame(TrackKind::Video, ms, k % 50 == 0), true) {
                video_flushes.push(ms);
                clock.sent();
            }
        }
        // A fragment closes at the first frame 0.5 s or more after its first one (0.52 s,
        // then 1.04 s, 1.56 s); the keyframe at 2.0 s cuts the segment.
        assert_eq!(
            video_flushes,
            vec![520, 1040, 1560, 2000, 2520, 3040, 3560, 4000, 4520, 5040, 5560]
        );
    }

    #[test]
    fn audio_fragments_close_on_their_own_clock_and_video_before_a_keyframe_is_ignored() {
        let mut clock = BatchClock::new(2.0);
        // Video not started yet: no keyframe, nothing predicted for it.
        assert!(!clock.on_frame(&frame(TrackKind::Video, 0, false), true));
        let mut flushes = 0;
        for k in 0..44 {
            // AAC at 48 kHz: 1024 samples ≈ 21.33 ms; 0.5 s after the first frame is frame 24.
            let ms = k * 64 / 3;
            if clock.on_frame(&frame(TrackKind::Audio, ms, true), true) {
                flushes += 1;
                clock.sent();
            }
        }
        assert_eq!(flushes, 1);
    }

    #[test]
    fn a_batch_is_bounded_when_timestamps_do_not_advance() {
        let mut clock = BatchClock::new(2.0);
        let mut flushes = 0;
        for _ in 0..(2 * MAX_BATCH_FRAMES) {
            if clock.on_frame(&frame(TrackKind::Audio, 0, true), false) {
                flushes += 1;
                clock.sent();
            }
        }
        assert_eq!(flushes, 2);
    }
}
