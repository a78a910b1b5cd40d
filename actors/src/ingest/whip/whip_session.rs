//! [`WhipSession`]: one WHIP publisher, from its offer until it leaves.
//!
//! It owns the webrtc-rs peer connection, one [`RtpDepacketizer`] per track, the session's
//! [`Timeline`] and the reference to its stream actor. It supervises nothing: webrtc-rs
//! runs its own tasks, and the session spawns two plain tasks per track (one reads RTP,
//! one reads RTCP) that only forward what they read as messages, so all state lives here.
//!
//! Life: `pre_start` only stores its arguments and sends itself `Start`, so the
//! [`WhipIngest`](super::WhipIngest) that spawns it never waits on negotiation. `Start`
//! negotiates (offer → answer with every local candidate), then publishes the stream and
//! answers the HTTP request. It stops itself on `DELETE`, on a failed or closed peer
//! connection, or after `session_timeout` without RTP; `post_stop` forwards what the
//! depacketizers and the timeline still hold, sends `Unpublish`, and closes the peer
//! connection. It is never restarted (a peer connection cannot be resumed server-side):
//! if it fails instead, its supervisor, the [`WhipIngest`](super::WhipIngest), unpublishes
//! the stream and closes the peer connection for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;
use recnode_media::rtp::{RtpDepacketizer, RtpStats, DEFAULT_REORDER_PACKETS};
use recnode_media::{Codec, MediaEvent, TrackKind};
use tracing::Instrument;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::util::marshal::Marshal;

use super::peer::{new_peer, WhipShared};
use super::sdp::{parse_ice_fragment, OfferSummary};
use super::timeline::{usable_sender_report, SyncSource, Timeline};
use super::whip_ingest::{SessionPublished, WhipIngestInternal, WhipIngestMsg};
use super::{random_token, WhipAnswer, WhipError, WhipOffer, PLI_INTERVAL};
use crate::stream::{
    IngestProtocol, PublishRequest, StreamInternal, StreamMsg, StreamSupervisorMsg,
};

/// How long negotiation may wait for local ICE candidates.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the session checks its timers (timeline wait, pending PLI, inactivity).
const TICK: Duration = Duration::from_millis(250);
/// After `DELETE`, how long packets already on their way are still taken in: a publisher
/// that sends its last frame and DELETE at once must not lose that frame.
const DELETE_DRAIN: Duration = Duration::from_millis(300);
/// The video reorder window in packets: a 2.5 Mb/s keyframe is 100–200 packets, and a NACKed
/// packet of its start must not be given up while the rest of the frame streams in (the
/// window still gives up after 100 ms of media).
const VIDEO_REORDER_PACKETS: usize = 512;
/// How long the stream supervisor may take to accept a publish.
const PUBLISH_TIMEOUT_MS: u64 = 5_000;

/// The session actor (one per WHIP publisher).
pub struct WhipSession;

/// What a session starts from; built by the [`WhipIngest`](super::WhipIngest).
pub struct WhipSessionArgs {
    pub(crate) id: String,
    pub(crate) offer: WhipOffer,
    pub(crate) summary: OfferSummary,
    pub(crate) shared: Arc<WhipShared>,
    pub(crate) streams: ActorRef<StreamSupervisorMsg>,
    pub(crate) ingest: ActorRef<WhipIngestMsg>,
    pub(crate) reply: RpcReplyPort<Result<WhipAnswer, WhipError>>,
}

/// Messages to a session; opaque outside this crate (the HTTP layer talks to the ingest).
#[derive(RactorMessage)]
pub struct WhipSessionMsg(pub(crate) SessionMsg);

/// A session's messages.
pub(crate) enum SessionMsg {
    /// Negotiate, publish and answer the offer (sent to itself by `pre_start`).
    Start,
    /// webrtc-rs found a track (its first RTP packet arrived).
    Track {
        kind: TrackKind,
        mime_type: String,
        clock_rate: u32,
        ssrc: u32,
    },
    /// One RTP packet of a track, as received (after SRTP).
    Rtp { kind: TrackKind, packet: Bytes },
    /// An RTCP sender report of a track.
    SenderReport {
        kind: TrackKind,
        ssrc: u32,
        ntp: u64,
        rtp: u32,
        /// Packets sent before the report (0: none, so its times mean nothing).
        packets: u32,
    },
    /// The peer connection's state changed.
    PeerState(RTCPeerConnectionState),
    /// Timers.
    Tick,
    /// `PATCH`: trickle ICE candidates.
    Patch {
        if_match: Option<String>,
        fragment: String,
        reply: RpcReplyPort<Result<(), WhipError>>,
    },
    /// `DELETE`: the publisher is done.
    Delete(RpcReplyPort<Result<(), WhipError>>),
    /// The drain after `DELETE` is over: stop.
    Drained,
    /// The stream actor wants a keyframe (a recorder restarted, or a recording started
    /// with none cached).
    KeyframeWanted(&'static str),
}

/// One received track.
struct TrackIn {
    codec: Codec,
    ssrc: u32,
    clock_rate: u32,
    depacketizer: RtpDepacketizer,
    errors: u64,
}

/// Keyframe requests.
#[derive(Default)]
struct Pli {
    last_sent: Option<Instant>,
    /// A request came within [`PLI_INTERVAL`] of the last one; send it when that passes.
    pending: bool,
    sent: u64,
}

/// A session's state.
pub struct WhipSessionState {
    id: String,
    offer: WhipOffer,
    summary: OfferSummary,
    shared: Arc<WhipShared>,
    streams: ActorRef<StreamSupervisorMsg>,
    ingest: ActorRef<WhipIngestMsg>,
    reply: Option<RpcReplyPort<Result<WhipAnswer, WhipError>>>,
    etag: String,
    remote_ufrag: Option<String>,
    pc: Option<Arc<RTCPeerConnection>>,
    stream: Option<ActorRef<StreamMsg>>,
    tracks: [Option<TrackIn>; 2],
    timeline: Timeline,
    epoch: Instant,
    last_rtp: Instant,
    pli: Pli,
    ticker: Option<JoinHandle<()>>,
    frames_forwarded: u64,
    /// `DELETE` was answered; the session stops when the drain is over.
    deleted: bool,
    span: tracing::Span,
}

fn index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

fn kind_of(kind: RTPCodecType) -> Option<TrackKind> {
    match kind {
        RTPCodecType::Video => Some(TrackKind::Video),
        RTPCodecType::Audio => Some(TrackKind::Audio),
        _ => None,
    }
}

/// The first `a=ice-ufrag` of an SDP.
fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::to_string)
}

impl WhipSessionState {
    /// The answer to requests for a session that was deleted.
    fn gone(&self) -> WhipError {
        WhipError::SessionNotFound {
            stream: self.offer.stream.clone(),
            session: self.id.clone(),
        }
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Sends events to the stream actor; false if it is gone.
    fn forward(&mut self, events: Vec<MediaEvent>) -> bool {
        let Some(stream) = &self.stream else {
            return true;
        };
        for event in events {
            if matches!(event, MediaEvent::Frame(_)) {
                self.frames_forwarded += 1;
            }
            if stream.cast(StreamMsg::Media(event)).is_err() {
                return false;
            }
        }
        true
    }

    /// Asks the publisher for a keyframe, at most once per [`PLI_INTERVAL`].
    fn request_keyframe(&mut self, why: &'static str) {
        let Some(video) = &self.tracks[0] else {
            return;
        };
        let Some(pc) = self.pc.clone() else {
            return;
        };
        if self
            .pli
            .last_sent
            .is_some_and(|t| t.elapsed() < PLI_INTERVAL)
        {
            self.pli.pending = true;
            return;
        }
        self.pli.last_sent = Some(Instant::now());
        self.pli.pending = false;
        self.pli.sent += 1;
        let media_ssrc = video.ssrc;
        tracing::debug!(ssrc = media_ssrc, why, "requesting a keyframe (PLI)");
        tokio::spawn(async move {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(e) = pc.write_rtcp(&[Box::new(pli)]).await {
                tracing::debug!("PLI not sent: {e}");
            }
        });
    }

    /// Negotiates, publishes and answers; on error the caller replies and stops.
    async fn start(&mut self, myself: &ActorRef<WhipSessionMsg>) -> Result<WhipAnswer, WhipError> {
        let internal = |e: webrtc::Error| WhipError::Internal {
            message: e.to_string(),
        };
        let pc = new_peer(&self.shared, &self.summary)
            .await
            .map_err(internal)?;
        self.pc = Some(pc.clone());
        install_handlers(&pc, myself);
        let offer = RTCSessionDescription::offer(self.offer.sdp.clone()).map_err(|e| {
            WhipError::MalformedSdp {
                reason: e.to_string(),
            }
        })?;
        pc.set_remote_description(offer)
            .await
            .map_err(|e| WhipError::MalformedSdp {
                reason: e.to_string(),
            })?;
        let answer = pc.create_answer(None).await.map_err(internal)?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer).await.map_err(internal)?;
        if tokio::time::timeout(GATHER_TIMEOUT, gathered.recv())
            .await
            .is_err()
        {
            tracing::warn!("ICE gathering did not complete in {GATHER_TIMEOUT:?}; answering with the candidates so far");
        }
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| WhipError::Internal {
                message: "no local description after set_local_description".into(),
            })?
            .sdp;
        if !sdp.contains("a=candidate:") {
            return Err(WhipError::Internal {
                message: "no local ICE candidate (check [whip] udp_listen and public_ips)".into(),
            });
        }

        let request = PublishRequest {
            app: IngestProtocol::Whip.default_app().to_string(),
            stream: self.offer.stream.clone(),
            protocol: IngestProtocol::Whip,
            remote: self.offer.remote.clone(),
        };
        let stream = match ractor::call_t!(
            self.streams,
            StreamSupervisorMsg::Publish,
            PUBLISH_TIMEOUT_MS,
            request
        ) {
            Ok(Ok(stream)) => stream,
            Ok(Err(rejected)) => return Err(WhipError::Rejected(rejected)),
            Err(e) => {
                return Err(WhipError::Internal {
                    message: format!("the stream supervisor did not answer: {e}"),
                })
            }
        };
        self.stream = Some(stream.clone());
        // The stream actor asks for a keyframe when a recorder restarts or a recording
        // starts with no keyframe cached.
        let me = myself.clone();
        let _ = stream.cast(StreamMsg::Internal(StreamInternal::keyframe_source(
            Arc::new(move |why| {
                let _ = me.cast(WhipSessionMsg(SessionMsg::KeyframeWanted(why)));
            }),
        )));
        let _ = self.ingest.cast(WhipIngestMsg::Internal(WhipIngestInternal(
            SessionPublished {
                id: self.id.clone(),
                stream,
                pc,
            },
        )));
        if let Some(video) = &self.summary.video {
            self.timeline.expect(TrackKind::Video, video.clock_rate);
        }
        if let Some(audio) = &self.summary.audio {
            self.timeline.expect(TrackKind::Audio, audio.clock_rate);
        }
        self.last_rtp = Instant::now();
        Ok(WhipAnswer {
            session: self.id.clone(),
            sdp,
            etag: self.etag.clone(),
        })
    }

    fn on_track(&mut self, kind: TrackKind, mime_type: &str, clock_rate: u32, ssrc: u32) {
        let chosen = match kind {
            TrackKind::Video => self.summary.video.as_ref(),
            TrackKind::Audio => self.summary.audio.as_ref(),
        };
        let Some(chosen) = chosen.filter(|c| c.mime_type.eq_ignore_ascii_case(mime_type)) else {
            tracing::warn!(
                ?kind,
                mime_type,
                "ignoring a track with a codec that was not negotiated"
            );
            return;
        };
        if let Some(existing) = &self.tracks[index(kind)] {
            tracing::warn!(
                ?kind,
                ssrc,
                first = existing.ssrc,
                "ignoring a second track of this kind"
            );
            return;
        }
        let clock_rate = if clock_rate == 0 {
            chosen.clock_rate
        } else {
            clock_rate
        };
        tracing::info!(
            ?kind,
            codec = chosen.codec.name(),
            ssrc,
            clock_rate,
            "track started"
        );
        self.tracks[index(kind)] = Some(TrackIn {
            codec: chosen.codec,
            ssrc,
            clock_rate,
            depacketizer: RtpDepacketizer::with_reorder_window(
                chosen.codec,
                clock_rate,
                if kind == TrackKind::Video {
                    VIDEO_REORDER_PACKETS
                } else {
                    DEFAULT_REORDER_PACKETS
                },
            ),
            errors: 0,
        });
        if kind == TrackKind::Video {
            self.request_keyframe("session start");
        }
    }

    fn on_rtp(&mut self, kind: TrackKind, packet: &[u8]) -> bool {
        self.last_rtp = Instant::now();
        let now = self.now();
        let Some(track) = self.tracks[index(kind)].as_mut() else {
            return true;
        };
        let before: RtpStats = track.depacketizer.stats();
        let result = track.depacketizer.push(packet);
        if let Err(e) = &result {
            track.errors += 1;
            if track.errors <= 10 || track.errors.is_power_of_two() {
                tracing::warn!(?kind, errors = track.errors, "RTP packet rejected: {e}");
            }
        }
        let mut events = Vec::new();
        while let Some(event) = track.depacketizer.pull() {
            events.push(event);
        }
        let after = track.depacketizer.stats();
        let first_rtp = track.depacketizer.rtp_timestamp_of(0);
        let clock_rate = track.clock_rate;
        let lost_reference = kind == TrackKind::Video
            && (result.is_err()
                || after.lost_packets > before.lost_packets
                || after.dropped_frames > before.dropped_frames);
        if lost_reference {
            self.request_keyframe("frames dropped for want of a reference");
        }
        let mut out = Vec::new();
        for event in events {
            self.timeline
                .push(kind, event, first_rtp, clock_rate, now, &mut out);
        }
        self.note_sync_decision(&out);
        self.forward(out)
    }

    fn note_sync_decision(&self, released: &[MediaEvent]) {
        if released.len() > 1 && self.frames_forwarded == 0 {
            let offsets =
                [TrackKind::Video, TrackKind::Audio].map(|k| self.timeline.offset(k).unwrap_or(0));
            match self.timeline.source() {
                Some(SyncSource::SenderReports) => tracing::info!(
                    video_offset = offsets[0],
                    audio_offset = offsets[1],
                    "tracks placed on one timeline by RTCP sender reports"
                ),
                Some(SyncSource::Arrival) => tracing::warn!(
                    video_offset = offsets[0],
                    audio_offset = offsets[1],
                    "no sender report for every track in time; tracks placed by arrival time"
                ),
                None => {}
            }
        }
    }

    fn on_tick(&mut self, myself: &ActorRef<WhipSessionMsg>) -> bool {
        let now = self.now();
        let mut out = Vec::new();
        self.timeline.poll(now, &mut out);
        self.note_sync_decision(&out);
        if !self.forward(out) {
            return false;
        }
        if self.pli.pending
            && self
                .pli
                .last_sent
                .is_none_or(|t| t.elapsed() >= PLI_INTERVAL)
        {
            self.request_keyframe("retry after the rate limit");
        }
        let idle = self.last_rtp.elapsed();
        if self.stream.is_some() && idle >= self.shared.settings.session_timeout {
            tracing::warn!(
                idle_ms = idle.as_millis() as u64,
                "no RTP within the session timeout; closing"
            );
            myself.stop(Some("session timed out".into()));
        }
        true
    }

    async fn on_patch(
        &mut self,
        if_match: Option<String>,
        fragment: &str,
    ) -> Result<(), WhipError> {
        if let Some(given) = if_match {
            if given.trim() != "*" && given.trim() != self.etag {
                return Err(WhipError::EtagMismatch { given });
            }
        }
        let fragment = parse_ice_fragment(fragment)
            .map_err(|reason| WhipError::MalformedFragment { reason })?;
        let restart = fragment
            .ufrag
            .as_ref()
            .is_some_and(|u| Some(u) != self.remote_ufrag.as_ref());
        if restart {
            return Err(WhipError::IceRestartUnsupported);
        }
        let Some(pc) = self.pc.clone() else {
            return Err(WhipError::Internal {
                message: "no peer connection".into(),
            });
        };
        for (mid, candidate) in fragment.candidates {
            let init = RTCIceCandidateInit {
                candidate,
                sdp_mid: mid,
                sdp_mline_index: None,
                username_fragment: fragment.ufrag.clone(),
            };
            pc.add_ice_candidate(init)
                .await
                .map_err(|e| WhipError::MalformedFragment {
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Releases everything held and unpublishes (once).
    fn close(&mut self) {
        let now = self.now();
        let mut out = Vec::new();
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let Some(track) = self.tracks[index(kind)].as_mut() else {
                continue;
            };
            let flushed = track.depacketizer.flush();
            let first_rtp = track.depacketizer.rtp_timestamp_of(0);
            let clock_rate = track.clock_rate;
            for event in flushed {
                self.timeline
                    .push(kind, event, first_rtp, clock_rate, now, &mut out);
            }
        }
        self.timeline.finish(&mut out);
        self.forward(out);
        if let Some(stream) = self.stream.take() {
            let _ = stream.cast(StreamMsg::Unpublish);
        }
        if let Some(pc) = self.pc.take() {
            tokio::spawn(async move {
                let _ = pc.close().await;
            });
        }
        let stats: Vec<String> = self
            .tracks
            .iter()
            .flatten()
            .map(|t| {
                let s = t.depacketizer.stats();
                format!(
                    "{}: {} frames, {} packets, {} lost, {} dropped frames, {} errors",
                    t.codec.name(),
                    s.frames,
                    s.packets,
                    s.lost_packets,
                    s.dropped_frames,
                    t.errors
                )
            })
            .collect();
        tracing::info!(
            frames = self.frames_forwarded,
            plis = self.pli.sent,
            tracks = %stats.join("; "),
            "WHIP session closed"
        );
    }
}

/// Connects webrtc-rs's callbacks to the session's mailbox.
fn install_handlers(pc: &Arc<RTCPeerConnection>, myself: &ActorRef<WhipSessionMsg>) {
    let me = myself.clone();
    pc.on_peer_connection_state_change(Box::new(move |state| {
        let _ = me.cast(WhipSessionMsg(SessionMsg::PeerState(state)));
        Box::pin(async {})
    }));
    let me = myself.clone();
    pc.on_track(Box::new(move |track, receiver, _transceiver| {
        let me = me.clone();
        Box::pin(async move {
            let Some(kind) = kind_of(track.kind()) else {
                return;
            };
            let codec = track.codec();
            let ssrc = track.ssrc();
            let announced = me.cast(WhipSessionMsg(SessionMsg::Track {
                kind,
                mime_type: codec.capability.mime_type.clone(),
                clock_rate: codec.capability.clock_rate,
                ssrc,
            }));
            if announced.is_err() {
                return;
            }
            let rtp_me = me.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1500];
                while let Ok((packet, _)) = track.read(&mut buf).await {
                    let Ok(raw) = packet.marshal() else {
                        continue;
                    };
                    let msg = SessionMsg::Rtp { kind, packet: raw };
                    if rtp_me.cast(WhipSessionMsg(msg)).is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Ok((packets, _)) = receiver.read_rtcp().await {
                    for packet in packets {
                        let Some(sr) = packet.as_any().downcast_ref::<SenderReport>() else {
                            continue;
                        };
                        let msg = SessionMsg::SenderReport {
                            kind,
                            ssrc: sr.ssrc,
                            ntp: sr.ntp_time,
                            rtp: sr.rtp_time,
                            packets: sr.packet_count,
                        };
                        if me.cast(WhipSessionMsg(msg)).is_err() {
                            return;
                        }
                    }
                }
            });
        })
    }));
}

/// Handles one message (inside the session's span).
async fn handle_msg(
    myself: &ActorRef<WhipSessionMsg>,
    msg: SessionMsg,
    state: &mut WhipSessionState,
) {
    match msg {
        SessionMsg::Delete(reply) if state.deleted => {
            let _ = reply.send(Err(state.gone()));
        }
        SessionMsg::Patch { reply, .. } if state.deleted => {
            let _ = reply.send(Err(state.gone()));
        }
        SessionMsg::Start => {
            let result = state.start(myself).await;
            let Some(reply) = state.reply.take() else {
                return;
            };
            match result {
                Ok(answer) => {
                    tracing::info!(remote = %state.offer.remote,
                        video = state.summary.video.as_ref().map(|c| c.codec.name()),
                        audio = state.summary.audio.as_ref().map(|c| c.codec.name()),
                        "WHIP session negotiated; stream published");
                    let _ = reply.send(Ok(answer));
                    state.ticker =
                        Some(myself.send_interval(TICK, || WhipSessionMsg(SessionMsg::Tick)));
                }
                Err(e) => {
                    tracing::warn!(remote = %state.offer.remote, "WHIP offer refused: {e}");
                    let _ = reply.send(Err(e));
                    myself.stop(Some("offer refused".into()));
                }
            }
        }
        SessionMsg::Track {
            kind,
            mime_type,
            clock_rate,
            ssrc,
        } => state.on_track(kind, &mime_type, clock_rate, ssrc),
        SessionMsg::Rtp { kind, packet } => {
            if !state.on_rtp(kind, &packet) {
                myself.stop(Some("stream actor gone".into()));
            }
        }
        SessionMsg::SenderReport {
            kind,
            ssrc,
            ntp,
            rtp,
            packets,
        } => {
            let ours = state.tracks[index(kind)]
                .as_ref()
                .is_some_and(|t| t.ssrc == ssrc);
            if ours && !usable_sender_report(ntp, packets) {
                tracing::debug!(
                    ssrc,
                    ntp,
                    packets,
                    "sender report before any media: ignored"
                );
            } else if ours {
                let now = state.now();
                state.timeline.sender_report(kind, ntp, rtp, now);
                let mut out = Vec::new();
                state.timeline.poll(now, &mut out);
                state.note_sync_decision(&out);
                if !state.forward(out) {
                    myself.stop(Some("stream actor gone".into()));
                }
            }
        }
        SessionMsg::PeerState(peer) => {
            tracing::info!(state = %peer, "peer connection state");
            if matches!(
                peer,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            ) && state.stream.is_some()
                && !state.deleted
            {
                myself.stop(Some(format!("peer connection {peer}")));
            }
        }
        SessionMsg::Tick => {
            if !state.on_tick(myself) {
                myself.stop(Some("stream actor gone".into()));
            }
        }
        SessionMsg::Patch {
            if_match,
            fragment,
            reply,
        } => {
            let result = state.on_patch(if_match, &fragment).await;
            let _ = reply.send(result);
        }
        SessionMsg::Delete(reply) => {
            state.deleted = true;
            tracing::info!("DELETE by the publisher; taking in packets still in flight");
            let _ = reply.send(Ok(()));
            // The timer task is detached: it delivers `Drained` (or nothing, if we are gone).
            drop(myself.send_after(DELETE_DRAIN, || WhipSessionMsg(SessionMsg::Drained)));
        }
        SessionMsg::Drained => myself.stop(Some("deleted".into())),
        SessionMsg::KeyframeWanted(why) => state.request_keyframe(why),
    }
}

impl Actor for WhipSession {
    type Msg = WhipSessionMsg;
    type State = WhipSessionState;
    type Arguments = WhipSessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: WhipSessionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let span = tracing::info_span!("whip", stream = %args.offer.stream, session = %args.id);
        myself.cast(WhipSessionMsg(SessionMsg::Start))?;
        Ok(WhipSessionState {
            remote_ufrag: ice_ufrag(&args.offer.sdp),
            id: args.id,
            offer: args.offer,
            summary: args.summary,
            shared: args.shared,
            streams: args.streams,
            ingest: args.ingest,
            reply: Some(args.reply),
            etag: format!("\"{}\"", random_token()),
            pc: None,
            stream: None,
            tracks: [None, None],
            timeline: Timeline::new(),
            epoch: Instant::now(),
            last_rtp: Instant::now(),
            pli: Pli::default(),
            ticker: None,
            frames_forwarded: 0,
            deleted: false,
            span,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        WhipSessionMsg(msg): Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        handle_msg(&myself, msg, state).instrument(span).await;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _g = state.span.clone().entered();
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
        if let Some(reply) = state.reply.take() {
            let _ = reply.send(Err(WhipError::Internal {
                message: "the session stopped before answering".into(),
            }));
        }
        state.close();
        Ok(())
    }
}
