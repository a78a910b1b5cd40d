//! The stream actor's frame cache: the frames since the last video keyframe (the GOP cache)
//! plus whatever its recordings may still need replayed after a recorder failure.
//!
//! Every frame gets the next sequence number of its stream. A new recording starts at the
//! last video keyframe; a restarted recorder session is replayed from its recording's
//! checkpoint. The cache is bounded: past [`MAX_BYTES`] or [`MAX_SECONDS`] it first drops
//! what precedes the last keyframe and, if the GOP alone is too long, everything.

use crate::recorder::SeqFrame;
use recnode_media::{Frame, TrackKind};
use std::collections::VecDeque;

/// Most bytes of frame data kept.
pub(crate) const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Most seconds of media kept.
pub(crate) const MAX_SECONDS: f64 = 10.0;

/// Numbered frames of one stream, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FrameCache {
    frames: VecDeque<SeqFrame>,
    bytes: usize,
    next_seq: u64,
    /// The newest video keyframe's number, while it is cached.
    last_keyframe: Option<u64>,
    /// Whether any video frame was seen (else every point is a start point).
    video_seen: bool,
}

/// What [`FrameCache::enforce_bounds`] dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Nothing.
    Nothing,
    /// Frames before the last keyframe (a restart may lose them).
    BeforeKeyframe(usize),
    /// The whole cache: the GOP alone is over the bounds.
    Everything(usize),
}

impl FrameCache {
    /// Numbers and caches a frame; returns its number.
    pub(crate) fn push(&mut self, frame: Frame) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if frame.track == TrackKind::Video {
            self.video_seen = true;
            if frame.keyframe {
                self.last_keyframe = Some(seq);
            }
        }
        self.bytes += frame.data.len();
        self.frames.push_back(SeqFrame { seq, frame });
        seq
    }

    /// The cached frame numbered `seq`, if it is still cached.
    pub(crate) fn get(&self, seq: u64) -> Option<&SeqFrame> {
        let index = seq.checked_sub(self.first_seq())?;
        self.frames.get(usize::try_from(index).ok()?)
    }

    /// The number the next frame will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Where a recording started now begins: the last video keyframe (or, with no video, the next frame).
    pub(crate) fn gop_start(&self) -> u64 {
        match (self.video_seen, self.last_keyframe) {
            (true, Some(seq)) => seq,
            _ => self.next_seq,
        }
    }

    /// The oldest cached frame's number (`next_seq` when empty).
    pub(crate) fn first_seq(&self) -> u64 {
        self.frames.front().map_or(self.next_seq, |f| f.seq)
    }

    /// Cached frames numbered `from` or later, oldest first.
    pub(crate) fn since(&self, from: u64) -> impl Iterator<Item = &SeqFrame> {
        let skip = from.saturating_sub(self.first_seq());
        self.frames
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }

    /// Forgets frames numbered below `keep_from` (never the current GOP).
    pub(crate) fn trim(&mut self, keep_from: u64) {
        let keep_from = keep_from.min(self.gop_start());
        while self.frames.front().is_some_and(|f| f.seq < keep_from) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(f) = self.frames.pop_front() {
            self.bytes -= f.frame.data.len();
            if self.last_keyframe == Some(f.seq) {
                self.last_keyframe = None;
            }
        }
    }

    fn over_bounds(&self) -> bool {
        let span = match (self.frames.front(), self.frames.back()) {
            (Some(a), Some(b)) => b.frame.dts_seconds() - a.frame.dts_seconds(),
            _ => 0.0,
        };
        self.bytes > MAX_BYTES || span > MAX_SECONDS
    }

    /// Applies the size and time bounds.
    pub(crate) fn enforce_bounds(&mut self) -> Dropped {
        if !self.over_bounds() {
            return Dropped::Nothing;
        }
        let before = self.frames.len();
        let gop = self.gop_start();
        while self.frames.front().is_some_and(|f| f.seq < gop) {
            self.pop();
        }
        if !self.over_bounds() {
            return Dropped::BeforeKeyframe(before - self.frames.len());
        }
        while !self.frames.is_empty() {
            self.pop();
        }
        self.last_keyframe = None;
        Dropped::Everything(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(track: TrackKind, ms: i64, keyframe: bool, size: usize) -> Frame {
        Frame {
            track,
            pts: ms,
            dts: ms,
            timescale: 1000,
            keyframe,
            data: Bytes::from(vec![0u8; size]),
        }
    }

    #[test]
    fn a_new_recording_starts_at_the_last_video_keyframe() {
        let mut cache = FrameCache::default();
        cache.push(frame(TrackKind::Video, 0, true, 10));
        cache.push(frame(TrackKind::Audio, 10, true, 10));
        cache.push(frame(TrackKind::Video, 40, false, 10));
        let k = cache.push(frame(TrackKind::Video, 80, true, 10));
        cache.push(frame(TrackKind::Audio, 90, true, 10));
        assert_eq!(cache.gop_start(), k);
        cache.trim(u64::MAX);
        assert_eq!(cache.first_seq(), k);
        assert_eq!(cache.since(k).count(), 2);
        assert_eq!(cache.get(k).map(|f| f.frame.dts), Some(80));
        assert!(cache.get(k - 1).is_none());
        assert!(cache.get(k + 2).is_none());
    }

    #[test]
    fn the_cache_keeps_what_a_recording_still_needs_but_stays_bounded() {
        let mut cache = FrameCache::default();
        for i in 0..100 {
            cache.push(frame(TrackKind::Video, i * 40, i % 25 == 0, 10));
        }
        cache.trim(10);
        assert_eq!(cache.first_seq(), 10);
        assert_eq!(cache.enforce_bounds(), Dropped::Nothing);
        for i in 100..400 {
            cache.push(frame(TrackKind::Video, i * 40, i % 25 == 0, 10));
        }
        assert!(matches!(cache.enforce_bounds(), Dropped::BeforeKeyframe(_)));
        assert_eq!(cache.first_seq(), cache.gop_start());
        // One GOP longer than the bound: everything goes.
        for i in 400..700 {
            cache.push(frame(TrackKind::Video, i * 40, false, 10));
        }
        assert!(matches!(cache.enforce_bounds(), Dropped::Everything(_)));
        assert_eq!(cache.since(0).count(), 0);
    }
}
