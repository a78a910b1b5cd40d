//! One media timeline for the tracks of a WHIP session.
//!
//! Each RTP depacketizer numbers its frames from its own first frame (pts 0), in its own
//! clock. Recording needs both tracks on one timeline, so that audio that started 400 ms
//! after video at the publisher also starts 400 ms after it in the recording. RTCP sender
//! reports ([RFC 3550 §6.4.1]) tie each track's RTP clock to the publisher's NTP clock;
//! that places every track's first frame on one clock, and the earliest becomes time 0.
//! Each track then keeps its own RTP spacing, shifted by a fixed offset in its clock.
//!
//! Frames are held until every expected track has both a first frame and a sender report,
//! or until [`SYNC_WAIT_SECONDS`] after the first frame (publishers send their first report within
//! about a second; Chrome's audio report may take longer). If some track with frames still
//! has no report then, all tracks are placed by the local arrival time of their first frame
//! instead, and the log says so. A track whose first frame comes after that decision is
//! placed the same way when it arrives. Held frames are released merged in timeline order.
//!
//! Sans-IO like the media crate: the caller passes the local time (seconds on any monotonic
//! clock) into every call.
//!
//! [RFC 3550 §6.4.1]: https://www.rfc-editor.org/rfc/rfc3550#section-6.4.1

use std::collections::VecDeque;

use recnode_media::{MediaEvent, TrackKind};

/// How long frames are held, after the first one, waiting for sender reports.
pub(crate) const SYNC_WAIT_SECONDS: f64 = 3.0;
/// The most events held while waiting (about 10 s of 30 fps video with audio).
pub(crate) const MAX_HELD_EVENTS: usize = 1000;

/// What placed the tracks on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncSource {
    /// RTCP sender reports (the publisher's capture clock).
    SenderReports,
    /// The local arrival time of each track's first frame.
    Arrival,
}

/// One track's clock.
#[derive(Debug, Default)]
struct TrackClock {
    /// RTP clock rate; 0 until the track is expected or seen.
    clock_rate: u32,
    /// Whether the session negotiated this track (the decision waits for it).
    expected: bool,
    /// The RTP timestamp of the track's pts 0, and the local time its first frame arrived.
    first: Option<(u32, f64)>,
    /// The latest sender report: NTP time in seconds and the RTP timestamp it names.
    report: Option<(f64, u32)>,
    /// Ticks added to this track's times once it is placed.
    offset: Option<i64>,
    /// Events held until the decision.
    held: VecDeque<MediaEvent>,
}

/// The timeline of one session (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    tracks: [TrackClock; 2],
    /// Local seconds minus publisher NTP seconds, the smallest seen (least delay).
    ntp_to_local: Option<f64>,
    /// Local seconds of timeline time 0, once decided.
    origin: Option<f64>,
    source: Option<SyncSource>,
    first_frame_at: Option<f64>,
    held: usize,
}

fn index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// NTP 64-bit fixed point (RFC 3550 §4) to seconds.
pub(crate) fn ntp_seconds(ntp: u64) -> f64 {
    (ntp >> 32) as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0
}

/// Whether a sender report says anything about the track's clock. A sender that has not
/// sent a packet yet has no RTP time to pair with its wall clock; aiortc, for one, then
/// reports NTP 0 and RTP 0, which would place the track about 126 years away.
pub(crate) fn usable_sender_report(ntp: u64, packet_count: u32) -> bool {
    ntp != 0 && packet_count != 0
}

impl Timeline {
    /// A timeline with no tracks yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Declares a negotiated track: the decision waits for its first frame and report.
    pub(crate) fn expect(&mut self, kind: TrackKind, clock_rate: u32) {
        let t = &mut self.tracks[index(kind)];
        t.expected = true;
        t.clock_rate = clock_rate.max(1);
    }

    /// What placed the tracks, once decided.
    pub(crate) fn source(&self) -> Option<SyncSource> {
        self.source
    }

    /// The ticks added to `kind`'s times, once placed.
    pub(crate) fn offset(&self, kind: TrackKind) -> Option<i64> {
        self.tracks[index(kind)].offset
    }

    /// An RTCP sender report for `kind`'s SSRC, received at local time `now`.
    pub(crate) fn sender_report(&mut self, kind: TrackKind, ntp: u64, rtp: u32, now: f64) {
        let ntp = ntp_seconds(ntp);
        self.tracks[index(kind)].report = Some((ntp, rtp));
        let delta = now - ntp;
        self.ntp_to_local = Some(self.ntp_to_local.map_or(delta, |d| d.min(delta)));
    }

    /// Adds an event of `kind` from the depacketizer, received at local time `now`.
    /// `first_rtp` is the RTP timestamp of the track's pts 0 (known once it emitted a frame).
    /// Events ready to forward are appended to `out`, in timeline order.
    pub(crate) fn push(
        &mut self,
        kind: TrackKind,
        event: MediaEvent,
        first_rtp: Option<u32>,
        clock_rate: u32,
        now: f64,
        out: &mut Vec<MediaEvent>,
    ) {
        let i = index(kind);
        {
            let t = &mut self.tracks[i];
            if t.clock_rate == 0 {
                t.clock_rate = clock_rate.max(1);
            }
            if let (MediaEvent::Frame(_), None, Some(rtp)) = (&event, t.first, first_rtp) {
                t.first = Some((rtp, now));
                self.first_frame_at.get_or_insert(now);
            }
        }
        if self.origin.is_some() {
            if matches!(event, MediaEvent::Frame(_)) && self.tracks[i].offset.is_none() {
                self.place(i);
            }
            out.push(shifted(event, self.tracks[i].offset.unwrap_or(0)));
            return;
        }
        self.tracks[i].held.push_back(event);
        self.held += 1;
        self.poll(now, out);
    }

    /// Decides when every expected track is ready, or the wait is over; releases held events.
    pub(crate) fn poll(&mut self, now: f64, out: &mut Vec<MediaEvent>) {
        if self.origin.is_some() {
            return;
        }
        let ready = self
            .tracks
            .iter()
            .filter(|t| t.expected)
            .all(|t| t.first.is_some() && t.report.is_some())
            && self.tracks.iter().any(|t| t.expected);
        let waited = self
            .first_frame_at
            .is_some_and(|t| now - t >= SYNC_WAIT_SECONDS);
        if ready || waited || self.held >= MAX_HELD_EVENTS {
            self.decide(out);
        }
    }

    /// The session ends: decides with what is known and releases everything held.
    pub(crate) fn finish(&mut self, out: &mut Vec<MediaEvent>) {
        if self.origin.is_none() {
            self.decide(out);
        }
        // Events of a track that never had a frame (a config alone) go out as they are.
        for t in &mut self.tracks {
            out.extend(t.held.drain(..));
        }
        self.held = 0;
    }

    /// The local time of `kind`'s first frame by the chosen source.
    fn local_first(&self, i: usize) -> Option<f64> {
        let t = &self.tracks[i];
        let (first_rtp, arrival) = t.first?;
        if self.source == Some(SyncSource::SenderReports) {
            if let (Some((ntp, rtp)), Some(to_local)) = (t.report, self.ntp_to_local) {
                let ticks = f64::from(first_rtp.wrapping_sub(rtp) as i32);
                return Some(ntp + ticks / f64::from(t.clock_rate) + to_local);
            }
        }
        Some(arrival)
    }

    /// Places track `i` on the decided timeline.
    fn place(&mut self, i: usize) {
        let (Some(origin), Some(first)) = (self.origin, self.local_first(i)) else {
            return;
        };
        let clock = f64::from(self.tracks[i].clock_rate);
        self.tracks[i].offset = Some(((first - origin) * clock).round() as i64);
    }

    fn decide(&mut self, out: &mut Vec<MediaEvent>) {
        let with_frames: Vec<usize> = (0..2).filter(|&i| self.tracks[i].first.is_some()).collect();
        if with_frames.is_empty() {
            return; // nothing to place yet; keep holding configs
        }
        let all_reported = with_frames.iter().all(|&i| self.tracks[i].report.is_some())
            && self.ntp_to_local.is_some();
        self.source = Some(if all_reported {
            SyncSource::SenderReports
        } else {
            SyncSource::Arrival
        });
        let origin = with_frames
            .iter()
            .filter_map(|&i| self.local_first(i))
            .fold(f64::INFINITY, f64::min);
        self.origin = Some(origin);
        for &i in &with_frames {
            self.place(i);
        }
        self.release(out);
    }

    /// Releases held events merged by timeline time (configs go with their track's next frame).
    fn release(&mut self, out: &mut Vec<MediaEvent>) {
        loop {
            let mut best: Option<(usize, f64)> = None;
            for i in 0..2 {
                let t = &self.tracks[i];
                let time = match t.held.front() {
                    None => continue,
                    Some(MediaEvent::Config(_)) => f64::NEG_INFINITY,
                    Some(MediaEvent::Frame(f)) => {
                        (f.dts + t.offset.unwrap_or(0)) as f64 / f64::from(t.clock_rate.max(1))
                    }
                };
                if best.is_none_or(|(_, b)| time < b) {
                    best = Some((i, time));
                }
            }
            let Some((i, _)) = best else {
                break;
            };
            if let Some(e) = self.tracks[i].held.pop_front() {
                out.push(shifted(e, self.tracks[i].offset.unwrap_or(0)));
            }
        }
        self.held = 0;
    }
}

/// `event` with `offset` ticks added to a frame's times.
fn shifted(event: MediaEvent, offset: i64) -> MediaEvent {
    match event {
        MediaEvent::Frame(mut f) => {
            f.pts = f.pts.saturating_add(offset);
            f.dts = f.dts.saturating_add(offset);
            MediaEvent::Frame(f)
        }
        config => config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use recnode_media::codec::opus::OpusConfig;
    use recnode_media::{CodecConfig, Frame};

    fn frame(kind: TrackKind, pts: i64, timescale: u32) -> MediaEvent {
        MediaEvent::Frame(Frame {
            track: kind,
            pts,
            dts: pts,
            timescale,
            keyframe: true,
            data: Bytes::from_static(b"x"),
        })
    }

    fn times(events: &[MediaEvent]) -> Vec<(TrackKind, i64)> {
        events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some((f.track, f.pts)),
                MediaEvent::Config(_) => None,
            })
            .collect()
    }

    #[test]
    fn reports_from_a_sender_that_has_sent_nothing_are_not_used() {
        assert!(!usable_sender_report(0, 0));
        assert!(!usable_sender_report(ntp(100.0), 0));
        assert!(!usable_sender_report(0, 12));
        assert!(usable_sender_report(ntp(100.0), 12));
    }

    /// NTP seconds to the 64-bit format.
    fn ntp(seconds: f64) -> u64 {
        (seconds * 4_294_967_296.0) as u64
    }

    #[test]
    fn sender_reports_put_audio_that_started_later_at_its_place() {
        // The publisher's clocks: video RTP 1000 at NTP 100.0 s; audio RTP 5000 at NTP 100.0 s.
        // Video's first frame is RTP 1000 (NTP 100.0), audio's is RTP 5000 + 0.4 * 48000.
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Video, 90_000);
        tl.expect(TrackKind::Audio, 48_000);
        let mut out = Vec::new();
        // Local clock: the network adds 30 ms to everything; local = NTP - 50 + 0.03.
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 0, 90_000),
            Some(1000),
            90_000,
            50.03,
            &mut out,
        );
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 3000, 90_000),
            Some(1000),
            90_000,
            50.06,
            &mut out,
        );
        let audio_first = 5000 + 19_200;
        // Audio arrives late (a jitter buffer), which arrival timing would get wrong.
        tl.push(
            TrackKind::Audio,
            frame(TrackKind::Audio, 0, 48_000),
            Some(audio_first),
            48_000,
            50.9,
            &mut out,
        );
        assert!(out.is_empty(), "held until reports arrive");
        tl.sender_report(TrackKind::Video, ntp(101.0), 1000 + 90_000, 51.03);
        tl.sender_report(TrackKind::Audio, ntp(101.0), 5000 + 48_000, 51.05);
        tl.poll(51.05, &mut out);
        assert_eq!(tl.source(), Some(SyncSource::SenderReports));
        assert_eq!(tl.offset(TrackKind::Video), Some(0));
        assert_eq!(tl.offset(TrackKind::Audio), Some(19_200), "0.4 s at 48 kHz");
        assert_eq!(
            times(&out),
            vec![
                (TrackKind::Video, 0),
                (TrackKind::Video, 3000),
                (TrackKind::Audio, 19_200)
            ],
            "released in timeline order"
        );
        out.clear();
        tl.push(
            TrackKind::Audio,
            frame(TrackKind::Audio, 960, 48_000),
            Some(audio_first),
            48_000,
            51.1,
            &mut out,
        );
        assert_eq!(times(&out), vec![(TrackKind::Audio, 20_160)]);
    }

    #[test]
    fn audio_that_started_first_moves_video_later() {
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Video, 90_000);
        tl.expect(TrackKind::Audio, 48_000);
        let mut out = Vec::new();
        tl.sender_report(TrackKind::Video, ntp(10.0), 0, 1.0);
        tl.sender_report(TrackKind::Audio, ntp(10.0), 0, 1.0);
        // Video's first frame (a key frame) is 1 s after audio's first frame.
        tl.push(
            TrackKind::Audio,
            frame(TrackKind::Audio, 0, 48_000),
            Some(0),
            48_000,
            1.0,
            &mut out,
        );
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 0, 90_000),
            Some(90_000),
            90_000,
            2.0,
            &mut out,
        );
        assert_eq!(tl.offset(TrackKind::Audio), Some(0));
        assert_eq!(tl.offset(TrackKind::Video), Some(90_000));
        assert_eq!(
            times(&out),
            vec![(TrackKind::Audio, 0), (TrackKind::Video, 90_000)]
        );
    }

    #[test]
    fn without_reports_the_wait_ends_and_arrival_times_place_the_tracks() {
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Video, 90_000);
        tl.expect(TrackKind::Audio, 48_000);
        let mut out = Vec::new();
        let opus = MediaEvent::Config(CodecConfig::Opus(OpusConfig::webrtc(2)));
        tl.push(TrackKind::Audio, opus, None, 48_000, 0.0, &mut out);
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 0, 90_000),
            Some(7),
            90_000,
            0.0,
            &mut out,
        );
        tl.push(
            TrackKind::Audio,
            frame(TrackKind::Audio, 0, 48_000),
            Some(9),
            48_000,
            0.5,
            &mut out,
        );
        tl.poll(SYNC_WAIT_SECONDS - 0.01, &mut out);
        assert!(out.is_empty());
        tl.poll(SYNC_WAIT_SECONDS, &mut out);
        assert_eq!(tl.source(), Some(SyncSource::Arrival));
        assert_eq!(tl.offset(TrackKind::Audio), Some(24_000));
        assert!(matches!(out[0], MediaEvent::Config(_)), "configs first");
        assert_eq!(
            times(&out),
            vec![(TrackKind::Video, 0), (TrackKind::Audio, 24_000)]
        );
    }

    #[test]
    fn a_track_that_starts_after_the_decision_is_placed_when_it_arrives() {
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Audio, 48_000);
        let mut out = Vec::new();
        tl.sender_report(TrackKind::Audio, ntp(1000.0), 0, 5.0);
        tl.push(
            TrackKind::Audio,
            frame(TrackKind::Audio, 0, 48_000),
            Some(0),
            48_000,
            5.0,
            &mut out,
        );
        assert_eq!(
            tl.source(),
            Some(SyncSource::SenderReports),
            "only audio expected"
        );
        // Video was not expected (or came late): its report places it 2 s in.
        tl.sender_report(TrackKind::Video, ntp(1002.0), 500, 7.0);
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 0, 90_000),
            Some(500),
            90_000,
            7.1,
            &mut out,
        );
        assert_eq!(tl.offset(TrackKind::Video), Some(180_000));
        assert_eq!(times(&out).last(), Some(&(TrackKind::Video, 180_000)));
    }

    #[test]
    fn finishing_before_the_decision_releases_everything() {
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Video, 90_000);
        tl.expect(TrackKind::Audio, 48_000);
        let mut out = Vec::new();
        for i in 0..5 {
            tl.push(
                TrackKind::Video,
                frame(TrackKind::Video, i * 3000, 90_000),
                Some(0),
                90_000,
                0.1,
                &mut out,
            );
        }
        assert!(out.is_empty());
        tl.finish(&mut out);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn rtp_timestamps_wrap_when_mapped_through_a_report() {
        let mut tl = Timeline::new();
        tl.expect(TrackKind::Video, 90_000);
        let mut out = Vec::new();
        // The report was taken just before the wrap; the first frame is just after it.
        tl.sender_report(TrackKind::Video, ntp(50.0), u32::MAX - 89_999, 10.0);
        tl.push(
            TrackKind::Video,
            frame(TrackKind::Video, 0, 90_000),
            Some(0),
            90_000,
            11.0,
            &mut out,
        );
        assert_eq!(
            tl.origin,
            Some(11.0),
            "RTP 0 is one second after the report"
        );
        assert_eq!(tl.offset(TrackKind::Video), Some(0));
    }
}
