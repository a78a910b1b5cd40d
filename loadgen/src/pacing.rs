//! Real-time pacing of a replay: which frame goes out next, with what timestamp, and
//! when it is due. Sans-IO: the caller owns the clock and the socket.
//!
//! The source's frames are replayed in file order. Each pass after the first shifts the
//! timestamps by the loop length, so they keep growing. A frame is due at its timestamp
//! after the stream's start instant; the due time never goes backwards even where the
//! file interleaves audio and video slightly out of timestamp order.

use std::time::Duration;

/// One frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index of the frame in the source.
    pub index: usize,
    /// The RTMP timestamp to send it with (ms since the stream's first frame).
    pub ts_ms: u64,
    /// When it is due, in ms after the stream's start instant (monotonic).
    pub due_ms: u64,
}

/// Iterates the frames of a looping replay until the replay duration is reached.
#[derive(Debug, Clone)]
pub struct Schedule<'a> {
    timestamps: &'a [u64],
    loop_len_ms: u64,
    duration_ms: Option<u64>,
    index: usize,
    pass: u64,
    last_due_ms: u64,
}

impl<'a> Schedule<'a> {
    /// A schedule over frames with these timestamps (file order).
    ///
    /// With `duration` `None` the file is sent once; otherwise every frame whose shifted
    /// timestamp is below `duration` is sent, looping as often as needed.
    pub fn new(timestamps: &'a [u64], loop_len_ms: u64, duration: Option<Duration>) -> Self {
        Schedule {
            timestamps,
            loop_len_ms: loop_len_ms.max(1),
            duration_ms: duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            index: 0,
            pass: 0,
            last_due_ms: 0,
        }
    }
}

impl Iterator for Schedule<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        if self.timestamps.is_empty() {
            return None;
        }
        if self.index == self.timestamps.len() {
            // One pass only without a duration.
            self.duration_ms?;
            self.index = 0;
            self.pass += 1;
        }
        let ts_ms = self.timestamps[self.index] + self.pass * self.loop_len_ms;
        if self.duration_ms.is_some_and(|d| ts_ms >= d) {
            // Timestamps within a pass are close to sorted; a later frame of this pass
            // could still be below the limit only by the interleaving jitter, which is
            // not worth sending half a frame pair for.
            self.index = self.timestamps.len();
            self.duration_ms = None;
            return None;
        }
        let index = self.index;
        self.index += 1;
        self.last_due_ms = self.last_due_ms.max(ts_ms);
        Some(Slot {
            index,
            ts_ms,
            due_ms: self.last_due_ms,
        })
    }
}

/// How far behind its schedule a sender fell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lateness {
    /// The largest lateness seen, in ms.
    pub max_ms: f64,
    /// Sum of all lateness, in ms (for the mean).
    pub sum_ms: f64,
    /// Frames measured.
    pub count: u64,
    /// Frames sent more than 100 ms late.
    pub over_100ms: u64,
}

impl Lateness {
    /// Records one frame that started going out `late` after it was due (zero if early).
    pub fn record(&mut self, late: Duration) {
        let ms = late.as_secs_f64() * 1000.0;
        self.max_ms = self.max_ms.max(ms);
        self.sum_ms += ms;
        self.count += 1;
        if ms > 100.0 {
            self.over_100ms += 1;
        }
    }

    /// Mean lateness in ms (0 with no frames).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(ts: &[u64], loop_len: u64, duration_ms: Option<u64>) -> Vec<Slot> {
        Schedule::new(ts, loop_len, duration_ms.map(Duration::from_millis)).collect()
    }

    #[test]
    fn without_a_duration_the_file_is_sent_once() {
        let s = slots(&[0, 10, 20], 30, None);
        assert_eq!(s.iter().map(|s| s.ts_ms).collect::<Vec<_>>(), [0, 10, 20]);
        assert_eq!(s.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn a_duration_longer_than_the_file_loops_with_continued_timestamps() {
        let s = slots(&[0, 10, 20], 30, Some(75));
        assert_eq!(
            s.iter().map(|s| s.ts_ms).collect::<Vec<_>>(),
            [0, 10, 20, 30, 40, 50, 60, 70]
        );
        assert_eq!(
            s.iter().map(|s| s.index).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0, 1]
        );
    }

    #[test]
    fn a_duration_shorter_than_the_file_cuts_the_first_pass() {
        let s = slots(&[0, 10, 20, 30], 40, Some(15));
        assert_eq!(s.iter().map(|s| s.ts_ms).collect::<Vec<_>>(), [0, 10]);
    }

    #[test]
    fn timestamps_stay_monotonic_across_loops() {
        let s = slots(&[0, 33, 66, 66, 99], 132, Some(10_000));
        assert!(s.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        // Passes 0..=75 start below 10 000 ms and fit whole (75 * 132 + 99 < 10 000).
        assert_eq!(s.len(), 5 * 76);
    }

    #[test]
    fn due_times_never_go_backwards_when_tracks_interleave_out_of_order() {
        let s = slots(&[0, 23, 20, 46, 40], 60, None);
        assert_eq!(
            s.iter().map(|s| s.due_ms).collect::<Vec<_>>(),
            [0, 23, 23, 46, 46]
        );
        assert_eq!(s[2].ts_ms, 20, "the RTMP timestamp is the frame's own");
    }

    #[test]
    fn an_empty_source_schedules_nothing() {
        assert!(slots(&[], 30, Some(1000)).is_empty());
    }

    #[test]
    fn lateness_keeps_max_mean_and_the_count_over_100_ms() {
        let mut l = Lateness::default();
        l.record(Duration::from_millis(10));
        l.record(Duration::from_millis(150));
        l.record(Duration::ZERO);
        assert_eq!(l.max_ms, 150.0);
        assert_eq!(l.count, 3);
        assert_eq!(l.over_100ms, 1);
        assert!((l.mean_ms() - 160.0 / 3.0).abs() < 1e-9);
    }
}
