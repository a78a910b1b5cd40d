//! RTP packets → [`MediaEvent`]s (RFC 3550 framing; one payload format per codec module).
//!
//! [`RtpDepacketizer`] is a push/pull state machine in the style of retina: hand it one RTP
//! packet (a UDP datagram, or an SRTP packet after decryption) with [`RtpDepacketizer::push`],
//! then drain [`RtpDepacketizer::pull`] until it returns `None`. At the end of the stream
//! [`RtpDepacketizer::flush`] releases whatever is still buffered.
//!
//! The pipeline inside:
//! 1. The RTP header is parsed here ([RFC 3550 §5.1](https://www.rfc-editor.org/rfc/rfc3550#section-5.1)).
//! 2. A bounded reorder buffer ([`reorder`]) puts packets back in sequence order. When it holds
//!    more than its window of packets (or 100 ms of media) while waiting for a missing sequence
//!    number, the gap is declared lost. Duplicates are dropped and counted.
//! 3. A per-codec payload depacketizer ([`h264`] RFC 6184, [`h265`] RFC 7798, [`vp8`] RFC 7741,
//!    [`vp9`] RFC 9628, [`av1`] the AV1 RTP specification, [`opus`] RFC 7587) turns the payloads
//!    of one RTP timestamp into one access unit. A frame ends at the marker bit or when the
//!    timestamp changes.
//! 4. Loss handling: a gap drops the frame being assembled and, for video, every frame up to the
//!    next key frame. A corrupt frame is never emitted. Opus frames are independent, so only the
//!    lost packets are missing.
//!
//! Timing: `pts = dts =` the RTP timestamp, unwrapped to 64 bits and rebased so the first
//! emitted frame is 0, in units of the clock rate given at construction.
//!
//! One depacketizer handles one SSRC; a packet with a new SSRC restarts sequence tracking
//! (as after loss) while keeping timestamps continuous.

mod av1;
mod h264;
mod h265;
mod nal;
mod opus;
mod reorder;
mod vp8;
mod vp9;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::codec::CodecError;
use crate::{Codec, CodecConfig, Frame, MediaEvent};
use reorder::{Insert, Released, ReorderBuffer};

/// The largest access unit (and NAL unit or OBU) a depacketizer assembles.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// The most NAL units (or OBUs) one access unit may hold.
pub const MAX_UNITS_PER_FRAME: usize = 4096;
/// The reorder window [`RtpDepacketizer::new`] uses, in packets.
pub const DEFAULT_REORDER_PACKETS: usize = 64;
/// How long (in media time) the reorder buffer waits for a missing packet.
pub const REORDER_MAX_DELAY_MS: u32 = 100;

/// Counters since the depacketizer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// RTP packets with a valid header.
    pub packets: u64,
    /// Sequence numbers declared lost (never arrived within the reorder window).
    pub lost_packets: u64,
    /// Packets dropped because the same sequence number was already received.
    pub duplicates: u64,
    /// Packets that arrived after a later sequence number and were put back in order.
    pub reordered: u64,
    /// Packets that arrived after their sequence number had been declared lost, and were dropped.
    pub late: u64,
    /// Frames not emitted: broken by loss or an error, or waiting for a key frame or codec config.
    pub dropped_frames: u64,
    /// Frames emitted.
    pub frames: u64,
}

/// Why an RTP packet (or the frame it belongs to) was rejected; the depacketizer stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// The RTP header is invalid (RFC 3550 §5.1).
    #[error("malformed RTP packet (seq {seq:?}, ssrc {ssrc:?}): {what}")]
    MalformedHeader {
        /// The sequence number, if the header was long enough to hold one.
        seq: Option<u16>,
        /// The SSRC, if the header was long enough to hold one.
        ssrc: Option<u32>,
        /// What was wrong.
        what: &'static str,
    },
    /// The payload ended inside a header (FU-A/FU indicator, payload descriptor, aggregation header).
    #[error("{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: truncated {what}")]
    Truncated {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// Which structure was cut short.
        what: &'static str,
    },
    /// An aggregation packet (STAP-A, AP, AV1 OBU element) declares a unit length the payload cannot hold.
    #[error("{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: aggregated unit of {declared} bytes with {remaining} left")]
    BadAggregationLength {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// The declared unit length.
        declared: usize,
        /// The bytes left in the payload.
        remaining: usize,
    },
    /// Fragments (FU-A, FU, AV1 OBU fragments, VP8/VP9 partitions) do not line up.
    #[error("{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: {what}")]
    BadFragment {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// What did not line up.
        what: &'static str,
    },
    /// A NAL unit or OBU is larger than [`MAX_FRAME_BYTES`].
    #[error(
        "{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: unit of {size} bytes exceeds {max}"
    )]
    UnitTooLarge {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// The size reached.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An access unit is larger than [`MAX_FRAME_BYTES`] or has more than [`MAX_UNITS_PER_FRAME`] units.
    #[error("{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: frame of {size} bytes / {units} units exceeds the limits")]
    FrameTooLarge {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// Bytes in the frame so far.
        size: usize,
        /// Units in the frame so far.
        units: usize,
    },
    /// A packetization this depacketizer does not implement (interleaved mode, reserved types).
    #[error(
        "{codec:?} RTP packet seq {seq} ssrc {ssrc:#010x}: unsupported packet type {packet_type}"
    )]
    UnsupportedPacketType {
        /// The codec being depacketized.
        codec: Codec,
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// The NAL/packet type field.
        packet_type: u8,
    },
    /// An in-band parameter set, sequence header or key frame header did not parse.
    #[error("RTP packet seq {seq} ssrc {ssrc:#010x}: {source}")]
    Codec {
        /// RTP sequence number.
        seq: u16,
        /// RTP SSRC.
        ssrc: u32,
        /// The codec parser's error.
        source: CodecError,
    },
    /// There is no RTP depacketizer for this codec (AAC over RTP is not supported).
    #[error("no RTP depacketizer for {codec:?}")]
    UnsupportedCodec {
        /// The codec asked for.
        codec: Codec,
    },
}

/// A payload-level error; [`RtpDepacketizer`] adds codec, sequence number and SSRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// See [`RtpError::Truncated`].
    Truncated(&'static str),
    /// See [`RtpError::BadAggregationLength`].
    BadAggregationLength { declared: usize, remaining: usize },
    /// See [`RtpError::BadFragment`].
    BadFragment(&'static str),
    /// See [`RtpError::UnitTooLarge`].
    UnitTooLarge(usize),
    /// See [`RtpError::FrameTooLarge`].
    FrameTooLarge { size: usize, units: usize },
    /// See [`RtpError::UnsupportedPacketType`].
    UnsupportedPacketType(u8),
    /// See [`RtpError::Codec`].
    Codec(CodecError),
}

impl PayloadError {
    fn with_context(self, codec: Codec, seq: u16, ssrc: u32) -> RtpError {
        match self {
            PayloadError::Truncated(what) => RtpError::Truncated {
                codec,
                seq,
                ssrc,
                what,
            },
            PayloadError::BadAggregationLength {
                declared,
                remaining,
            } => RtpError::BadAggregationLength {
                codec,
                seq,
                ssrc,
                declared,
                remaining,
            },
            PayloadError::BadFragment(what) => RtpError::BadFragment {
                codec,
                seq,
                ssrc,
                what,
            },
            PayloadError::UnitTooLarge(size) => RtpError::UnitTooLarge {
                codec,
                seq,
                ssrc,
                size,
                max: MAX_FRAME_BYTES,
            },
            PayloadError::FrameTooLarge { size, units } => RtpError::FrameTooLarge {
                codec,
                seq,
                ssrc,
                size,
                units,
            },
            PayloadError::UnsupportedPacketType(packet_type) => RtpError::UnsupportedPacketType {
                codec,
                seq,
                ssrc,
                packet_type,
            },
            PayloadError::Codec(source) => RtpError::Codec { seq, ssrc, source },
        }
    }
}

/// Checks a frame's size and unit count against the limits.
pub(crate) fn check_frame_limits(size: usize, units: usize) -> Result<(), PayloadError> {
    if size > MAX_FRAME_BYTES || units > MAX_UNITS_PER_FRAME {
        return Err(PayloadError::FrameTooLarge { size, units });
    }
    Ok(())
}

/// An access unit a payload depacketizer finished.
#[derive(Debug)]
pub(crate) struct Assembled {
    /// The frame data in the form [`Frame::data`] documents for the codec.
    pub(crate) data: Bytes,
    /// Whether a decoder can start here.
    pub(crate) keyframe: bool,
}

/// One codec's RTP payload format: payloads of one timestamp in, an access unit out.
pub(crate) trait PayloadDepacketizer: Send {
    /// Whether this payload can begin an access unit (used to resynchronise after loss).
    fn is_frame_start(&self, payload: &[u8]) -> bool;
    /// Adds the payload of the next in-order packet of the current access unit.
    fn push(&mut self, payload: &Bytes) -> Result<(), PayloadError>;
    /// True when no fragment (FU, OBU fragment, partition) is waiting for its end.
    fn is_complete(&self) -> bool;
    /// Ends the access unit; `Ok(None)` when it held nothing to emit.
    fn finish(&mut self) -> Result<Option<Assembled>, PayloadError>;
    /// Discards a partially assembled access unit.
    fn reset(&mut self);
    /// The codec configuration as of the last finished access unit.
    fn config(&self) -> Option<&CodecConfig>;
}

/// The parsed fields of one RTP packet that depacketizing needs.
#[derive(Debug, Clone)]
pub(crate) struct RtpPacket {
    /// `sequence number`.
    pub(crate) seq: u16,
    /// `timestamp`.
    pub(crate) timestamp: u32,
    /// `SSRC`.
    pub(crate) ssrc: u32,
    /// `M`.
    pub(crate) marker: bool,
    /// The payload, with CSRCs, header extension and padding removed.
    pub(crate) payload: Bytes,
}

/// Parses an RTP packet (RFC 3550 §5.1; header extensions per §5.3.1 are skipped).
pub(crate) fn parse_rtp(data: &[u8]) -> Result<RtpPacket, RtpError> {
    let malformed = |what, seq, ssrc| RtpError::MalformedHeader { seq, ssrc, what };
    if data.len() < 12 {
        let seq = (data.len() >= 4).then(|| u16::from_be_bytes([data[2], data[3]]));
        return Err(malformed("shorter than the 12-byte header", seq, None));
    }
    let seq = u16::from_be_bytes([data[2], data[3]]);
    let timestamp = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let (s, c) = (Some(seq), Some(ssrc));
    if data[0] >> 6 != 2 {
        return Err(malformed("version is not 2", s, c));
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrc_count = usize::from(data[0] & 0x0f);
    let marker = data[1] & 0x80 != 0;
    let mut start = 12 + 4 * csrc_count;
    if data.len() < start {
        return Err(malformed("CSRC list past the end", s, c));
    }
    if extension {
        let ext = data
            .get(start..start + 4)
            .ok_or_else(|| malformed("header extension past the end", s, c))?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
        if data.len() < start {
            return Err(malformed("header extension past the end", s, c));
        }
    }
    let mut end = data.len();
    if padding {
        let pad = usize::from(data[end - 1]);
        if pad == 0 || pad > end - start {
            return Err(malformed("bad padding length", s, c));
        }
        end -= pad;
    }
    Ok(RtpPacket {
        seq,
        timestamp,
        ssrc,
        marker,
        payload: Bytes::copy_from_slice(&data[start..end]),
    })
}

/// The access unit being assembled.
#[derive(Debug, Clone, Copy)]
struct FrameInProgress {
    /// Its RTP timestamp.
    timestamp: u32,
    /// The last sequence number added (for error context).
    last_seq: u16,
    /// An error or loss broke it; the rest of its packets are skipped.
    broken: bool,
}

/// RTP packets of one SSRC in, codec configs and frames out (see the module docs).
pub struct RtpDepacketizer {
    codec: Codec,
    clock_rate: u32,
    ssrc: Option<u32>,
    reorder: ReorderBuffer<RtpPacket>,
    payload: Option<Box<dyn PayloadDepacketizer>>,
    events: VecDeque<MediaEvent>,
    stats: RtpStats,
    frame: Option<FrameInProgress>,
    /// Waiting for a packet that can start a frame (at start and after loss).
    resync: bool,
    /// While resynchronising, packets of this timestamp are skipped.
    discard_timestamp: Option<u32>,
    /// Video only: frames are dropped until a key frame.
    need_keyframe: bool,
    /// The last config emitted.
    config: Option<CodecConfig>,
    /// Timestamp unwrapping: the last RTP timestamp seen and its 64-bit value.
    timestamp_ref: Option<(u32, i64)>,
    /// The unwrapped timestamp of pts 0.
    timestamp_base: Option<i64>,
    /// The pts of the last emitted frame (keeps pts continuous across an SSRC change).
    last_pts: Option<i64>,
}

impl std::fmt::Debug for RtpDepacketizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpDepacketizer")
            .field("codec", &self.codec)
            .field("clock_rate", &self.clock_rate)
            .field("ssrc", &self.ssrc)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl RtpDepacketizer {
    /// A depacketizer with the default reorder window: 64 packets, and at most 100 ms of media.
    pub fn new(codec: Codec, clock_rate: u32) -> Self {
        Self::with_reorder_window(codec, clock_rate, DEFAULT_REORDER_PACKETS)
    }

    /// A depacketizer holding up to `packets` packets while waiting for a missing one (0 = no
    /// reordering), and at most 100 ms of media.
    pub fn with_reorder_window(codec: Codec, clock_rate: u32, packets: usize) -> Self {
        let payload: Option<Box<dyn PayloadDepacketizer>> = match codec {
            Codec::H264 => Some(Box::new(h264::H264Depacketizer::default())),
            Codec::H265 => Some(Box::new(h265::H265Depacketizer::default())),
            Codec::Vp8 => Some(Box::new(vp8::Vp8Depacketizer::default())),
            Codec::Vp9 => Some(Box::new(vp9::Vp9Depacketizer::default())),
            Codec::Av1 => Some(Box::new(av1::Av1Depacketizer::default())),
            Codec::Opus => Some(Box::new(opus::OpusDepacketizer::default())),
            Codec::Aac => None,
        };
        let max_delay = (u64::from(clock_rate) * u64::from(REORDER_MAX_DELAY_MS) / 1000) as u32;
        RtpDepacketizer {
            codec,
            clock_rate,
            ssrc: None,
            reorder: ReorderBuffer::new(packets, Some(max_delay.max(1))),
            payload,
            events: VecDeque::new(),
            stats: RtpStats::default(),
            frame: None,
            resync: true,
            discard_timestamp: None,
            need_keyframe: codec.kind() == crate::TrackKind::Video,
            config: None,
            timestamp_ref: None,
            timestamp_base: None,
            last_pts: None,
        }
    }

    /// Adds one raw RTP packet. On error the packet (and possibly the frame it belongs to) is
    /// dropped and the depacketizer stays usable; events may be ready either way.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), RtpError> {
        if self.payload.is_none() {
            return Err(RtpError::UnsupportedCodec { codec: self.codec });
        }
        let packet = parse_rtp(packet)?;
        self.stats.packets += 1;
        let mut first_error = None;
        if self.ssrc.is_some_and(|s| s != packet.ssrc) {
            let released = self.reorder.drain();
            self.process_all(released, &mut first_error);
            self.reorder.reset();
            self.drop_frame_in_progress();
            self.start_resync(None);
            self.timestamp_ref = None;
        }
        self.ssrc = Some(packet.ssrc);
        match self.reorder.insert(packet.seq, packet.timestamp, packet) {
            Insert::Accepted { reordered } => {
                if reordered {
                    self.stats.reordered += 1;
                }
            }
            Insert::Duplicate => self.stats.duplicates += 1,
            Insert::Late => self.stats.late += 1,
            Insert::Probation => {}
        }
        while let Some(released) = self.reorder.pop() {
            self.process(released, &mut first_error);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The next event, if any; call until `None` after every push.
    pub fn pull(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// End of stream: releases the reorder buffer (gaps count as lost), the last frame if it is
    /// structurally complete, and every event not yet pulled.
    pub fn flush(&mut self) -> Vec<MediaEvent> {
        let released = self.reorder.drain();
        let mut ignored = None;
        self.process_all(released, &mut ignored);
        if self.frame.is_some() {
            let _ = self.finish_frame(true);
        }
        self.events.drain(..).collect()
    }

    /// Counters since creation.
    pub fn stats(&self) -> RtpStats {
        self.stats
    }

    /// The RTP timestamp (in the current SSRC's numbering) of an emitted frame's `pts`;
    /// `None` before the first frame. Lets the caller place frames on a wall clock with
    /// RTCP sender reports (RFC 3550 §6.4.1).
    pub fn rtp_timestamp_of(&self, pts: i64) -> Option<u32> {
        // Truncation is the point: RTP timestamps are the low 32 bits of the unwrapped value.
        self.timestamp_base
            .map(|base| base.wrapping_add(pts) as u32)
    }

    fn is_video(&self) -> bool {
        self.codec.kind() == crate::TrackKind::Video
    }

    fn process_all(
        &mut self,
        released: Vec<Released<RtpPacket>>,
        first_error: &mut Option<RtpError>,
    ) {
        for r in released {
            self.process(r, first_error);
        }
    }

    fn process(&mut self, released: Released<RtpPacket>, first_error: &mut Option<RtpError>) {
        let result = match released {
            Released::Packet(p) => self.process_packet(p),
            Released::Lost(n) => {
                self.stats.lost_packets += n;
                self.on_discontinuity();
                Ok(())
            }
            Released::Restart => {
                self.on_discontinuity();
                Ok(())
            }
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }

    /// Loss or a sequence restart: video drops the frame in progress and waits for a key frame.
    fn on_discontinuity(&mut self) {
        if !self.is_video() {
            return;
        }
        let dropped = self.frame.map(|f| f.timestamp);
        self.drop_frame_in_progress();
        self.start_resync(dropped);
    }

    fn start_resync(&mut self, discard_timestamp: Option<u32>) {
        if self.is_video() {
            self.need_keyframe = true;
            self.resync = true;
            self.discard_timestamp = discard_timestamp;
        }
    }

    fn drop_frame_in_progress(&mut self) {
        if let Some(f) = self.frame.take() {
            if !f.broken {
                self.stats.dropped_frames += 1;
            }
            if let Some(p) = self.payload.as_mut() {
                p.reset();
            }
        }
    }

    fn process_packet(&mut self, p: RtpPacket) -> Result<(), RtpError> {
        if p.payload.is_empty() {
            return Ok(()); // padding-only packet (bandwidth probing)
        }
        let mut result = Ok(());
        if self.frame.is_some_and(|f| f.timestamp != p.timestamp) {
            result = self.finish_frame(false);
        }
        let Some(payload) = self.payload.as_mut() else {
            return result;
        };
        if self.resync {
            if self.discard_timestamp == Some(p.timestamp) {
                return result;
            }
            if !payload.is_frame_start(&p.payload) {
                self.discard_timestamp = Some(p.timestamp);
                self.stats.dropped_frames += 1;
                return result;
            }
            self.resync = false;
            self.discard_timestamp = None;
        }
        let frame = self.frame.get_or_insert(FrameInProgress {
            timestamp: p.timestamp,
            last_seq: p.seq,
            broken: false,
        });
        frame.last_seq = p.seq;
        if frame.broken {
            if p.marker {
                self.frame = None;
            }
            return result;
        }
        if let Err(e) = payload.push(&p.payload) {
            payload.reset();
            frame.broken = true;
            self.stats.dropped_frames += 1;
            if p.marker {
                self.frame = None;
            }
            if self.codec.kind() == crate::TrackKind::Video {
                self.need_keyframe = true;
            }
            return result.and(Err(e.with_context(self.codec, p.seq, p.ssrc)));
        }
        if p.marker || self.codec == Codec::Opus {
            result = result.and(self.finish_frame(false));
        }
        result
    }

    /// Ends the frame in progress and emits it if it passes the key frame and config gates.
    fn finish_frame(&mut self, at_flush: bool) -> Result<(), RtpError> {
        let video = self.is_video();
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        let Some(payload) = self.payload.as_mut() else {
            return Ok(());
        };
        if frame.broken {
            return Ok(());
        }
        if at_flush && !payload.is_complete() {
            payload.reset();
            self.stats.dropped_frames += 1;
            return Ok(());
        }
        let assembled = match payload.finish() {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(()),
            Err(e) => {
                payload.reset();
                self.stats.dropped_frames += 1;
                if self.codec.kind() == crate::TrackKind::Video {
                    self.need_keyframe = true;
                }
                let ssrc = self.ssrc.unwrap_or_default();
                return Err(e.with_context(self.codec, frame.last_seq, ssrc));
            }
        };
        if video && self.need_keyframe && !assembled.keyframe {
            self.stats.dropped_frames += 1;
            return Ok(());
        }
        let Some(config) = payload.config() else {
            self.stats.dropped_frames += 1;
            return Ok(());
        };
        if self.config.as_ref() != Some(config) {
            self.config = Some(config.clone());
            self.events.push_back(MediaEvent::Config(config.clone()));
        }
        if assembled.keyframe {
            self.need_keyframe = false;
        }
        let pts = self.frame_pts(frame.timestamp);
        self.stats.frames += 1;
        self.events.push_back(MediaEvent::Frame(Frame {
            track: self.codec.kind(),
            pts,
            dts: pts,
            timescale: self.clock_rate,
            keyframe: assembled.keyframe || !video,
            data: assembled.data,
        }));
        Ok(())
    }

    /// Unwraps a 32-bit RTP timestamp and rebases it so the first frame is 0.
    fn frame_pts(&mut self, timestamp: u32) -> i64 {
        let unwrapped = match self.timestamp_ref {
            Some((last, ext)) => ext + i64::from(timestamp.wrapping_sub(last) as i32),
            None => i64::from(timestamp),
        };
        let continuing = self.timestamp_ref.is_none();
        self.timestamp_ref = Some((timestamp, unwrapped));
        let base = match (self.timestamp_base, continuing, self.last_pts) {
            // A new SSRC: continue one tick after the last frame.
            (Some(_), true, Some(last)) => unwrapped - (last + 1),
            (Some(base), _, _) => base,
            (None, _, _) => unwrapped,
        };
        self.timestamp_base = Some(base);
        let pts = unwrapped - base;
        self.last_pts = Some(pts);
        pts
    }
}

#[cfg(test)]
mod tests;
