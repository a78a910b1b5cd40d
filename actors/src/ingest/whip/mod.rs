//! WebRTC ingest over WHIP ([RFC 9725]): one [`WhipSession`] actor per publisher, under
//! the [`WhipIngest`] actor that admits offers and keeps the registry of sessions.
//!
//! The HTTP layer (`src/http/whip.rs` in the binary) turns `POST /whip/{stream}` into
//! [`WhipIngestMsg::Offer`], and `PATCH`/`DELETE` of the session resource into
//! [`WhipIngestMsg::Patch`] / [`WhipIngestMsg::Delete`]; every refusal is a [`WhipError`].
//!
//! Admission, in order (cheap checks first; nothing is allocated for a refused offer):
//! 1. the stream name passes [`validate_stream_name`](crate::stream::validate_stream_name);
//! 2. the bearer token passes the same [`StreamKeyRule`]s as RTMP's `?key=`;
//! 3. the offer parses and carries a codec this node records (`sdp.rs`); the configured
//!    preference order picks one codec per kind, and the answer offers only that one;
//! 4. the session negotiates (webrtc-rs: ICE, DTLS, SRTP; every local candidate is in the
//!    answer) and only then asks the stream supervisor to publish, so a refused publish
//!    (`AlreadyLive`: 409) never starts a stream, and a started stream always has a peer.
//!
//! Media path: RTP packets of each track go through the media crate's
//! [`RtpDepacketizer`](recnode_media::rtp::RtpDepacketizer), then through the session's
//! [`timeline`] (RTCP sender reports put audio and video on one clock), then to the
//! [`StreamActor`](crate::stream::StreamActor) as [`StreamMsg::Media`], exactly as RTMP
//! frames go. Keyframes are requested with PLI (at most every [`PLI_INTERVAL`]) when the
//! video track starts and whenever the depacketizer drops frames for want of a reference.
//! Lost packets are NACKed every 20 ms by webrtc-rs's NACK generator, and retransmissions
//! on the same SSRC are put back in order by the depacketizer's reorder window (512 packets
//! for video, at most 100 ms of media); RTX is not negotiated because webrtc-rs 0.17
//! discards the repair stream. The shared UDP socket asks for a 4 MiB receive buffer.
//!
//! A session ends on `DELETE` (after a short drain, so packets sent just before it are still
//! recorded), on ICE/DTLS failure (the peer connection reports `failed` or `closed`), or
//! when no RTP arrived for `session_timeout`; it then sends the frames it still holds and
//! [`StreamMsg::Unpublish`], so the stream's recordings close cleanly.
//!
//! Transport: by default every session shares one UDP socket (`UDPMuxDefault`, sessions
//! told apart by ICE ufrag, then by remote address). One port scales better than a port
//! per session: one firewall rule, one file descriptor, no port exhaustion, and nothing to
//! bind per publisher. A port range ([`WhipUdp::PortRange`]) is the alternative.
//!
//! [RFC 9725]: https://www.rfc-editor.org/rfc/rfc9725
//! [`StreamMsg::Media`]: crate::stream::StreamMsg::Media
//! [`StreamMsg::Unpublish`]: crate::stream::StreamMsg::Unpublish

mod peer;
mod sdp;
mod timeline;
mod whip_ingest;
mod whip_session;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ractor::{Actor, ActorRef, SpawnErr};
use recnode_media::Codec;

use crate::ingest::StreamKeyRule;
use crate::stream::{InvalidStreamName, PublishRejected, StreamSupervisorMsg};

pub use sdp::MAX_SDP_BYTES;
pub use whip_ingest::{WhipIngest, WhipIngestInternal, WhipIngestMsg, WhipIngestState};
pub use whip_session::{WhipSession, WhipSessionArgs, WhipSessionMsg, WhipSessionState};

/// The least time between two keyframe requests (PLI) of one session.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// Where WHIP sessions receive media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhipUdp {
    /// One UDP socket bound here, shared by every session (port 0: any free port).
    Mux(SocketAddr),
    /// One UDP socket per session, on a port from this range (inclusive).
    PortRange {
        /// The lowest port.
        min: u16,
        /// The highest port.
        max: u16,
    },
}

/// The `[whip]` settings the actors need.
#[derive(Debug, Clone, PartialEq)]
pub struct WhipSettings {
    /// The UDP transport.
    pub udp: WhipUdp,
    /// Addresses to advertise instead of the local interfaces' (1:1 NAT, e.g. a cloud VM's
    /// public IP); empty: the local addresses.
    pub public_ips: Vec<IpAddr>,
    /// Video codecs to accept, most preferred first.
    pub video_codecs: Vec<Codec>,
    /// Audio codecs to accept, most preferred first.
    pub audio_codecs: Vec<Codec>,
    /// A session with no RTP for this long (or whose ICE fails for this long) is closed.
    pub session_timeout: Duration,
}

impl Default for WhipSettings {
    fn default() -> Self {
        WhipSettings {
            udp: WhipUdp::Mux(SocketAddr::from(([0, 0, 0, 0], 8189))),
            public_ips: Vec::new(),
            video_codecs: vec![Codec::H264, Codec::Vp8, Codec::Vp9, Codec::Av1],
            audio_codecs: vec![Codec::Opus],
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the WHIP ingest needs.
#[derive(Clone)]
pub struct WhipIngestArgs {
    /// Transport, codecs and timeouts.
    pub settings: WhipSettings,
    /// The stream key rules RTMP uses; the bearer token is the key.
    pub stream_keys: Vec<StreamKeyRule>,
    /// The stream supervisor that turns a negotiated session into a stream actor.
    pub streams: ActorRef<StreamSupervisorMsg>,
}

impl std::fmt::Debug for WhipIngestArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhipIngestArgs")
            .field("settings", &self.settings)
            .field("stream_keys", &self.stream_keys)
            .field("streams", &self.streams.get_id())
            .finish()
    }
}

/// A publisher's offer, as the HTTP layer received it.
#[derive(Debug, Clone)]
pub struct WhipOffer {
    /// The stream name from the URL (not yet validated).
    pub stream: String,
    /// The SDP offer (UTF-8, at most [`MAX_SDP_BYTES`]).
    pub sdp: String,
    /// The bearer token, if the request had one.
    pub key: Option<String>,
    /// The publisher's address, for logs.
    pub remote: String,
}

/// A negotiated session: what `201 Created` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipAnswer {
    /// The session id (the last segment of the `Location` URL).
    pub session: String,
    /// The SDP answer, with every local ICE candidate.
    pub sdp: String,
    /// The entity tag of the ICE session (`ETag`, quoted).
    pub etag: String,
}

/// Why a WHIP request was refused; the HTTP layer maps each to a 4xx/5xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhipError {
    /// The stream name in the URL is unusable (400).
    #[error(transparent)]
    InvalidStreamName(#[from] InvalidStreamName),
    /// The stream needs a key and the bearer token is missing or wrong (401).
    #[error("stream {stream:?} needs its stream key as `Authorization: Bearer <key>`")]
    Unauthorized {
        /// The stream name.
        stream: String,
    },
    /// The stream supervisor refused: already live (409) or shutting down (503).
    #[error(transparent)]
    Rejected(#[from] PublishRejected),
    /// The body is not an SDP offer webrtc-rs accepts (400).
    #[error("malformed SDP offer: {reason}")]
    MalformedSdp {
        /// What the parser reported.
        reason: String,
    },
    /// The offer carries no codec this node records (422).
    #[error("the offer has no codec this node records; it offered: {offered}")]
    NoUsableCodec {
        /// The media sections and codecs offered.
        offered: String,
    },
    /// No such session of this stream (404).
    #[error("no WHIP session {session:?} for stream {stream:?}")]
    SessionNotFound {
        /// The stream name.
        stream: String,
        /// The session id.
        session: String,
    },
    /// `If-Match` does not name the session's current entity tag (412).
    #[error("If-Match {given} does not match the session's ETag")]
    EtagMismatch {
        /// The header as sent.
        given: String,
    },
    /// A PATCH asked for an ICE restart, which sessions do not support (422).
    #[error("ICE restarts are not supported; start a new session")]
    IceRestartUnsupported,
    /// A trickle ICE fragment that does not parse or whose candidates are refused (400).
    #[error("malformed trickle ICE fragment: {reason}")]
    MalformedFragment {
        /// What was wrong.
        reason: String,
    },
    /// Setting up the peer connection failed on our side (500).
    #[error("WebRTC setup failed: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl From<&sdp::OfferProblem> for WhipError {
    fn from(problem: &sdp::OfferProblem) -> Self {
        match problem {
            sdp::OfferProblem::Malformed(reason) => WhipError::MalformedSdp {
                reason: reason.clone(),
            },
            sdp::OfferProblem::NoUsableCodec(offered) => WhipError::NoUsableCodec {
                offered: offered.clone(),
            },
        }
    }
}

/// Why the WHIP ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum WhipStartError {
    /// The shared UDP socket could not be bound.
    #[error("cannot bind the WHIP UDP socket on {listen}: {source}")]
    Bind {
        /// The address from the configuration.
        listen: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The ingest actor did not start or did not answer.
    #[error("WHIP ingest did not start: {message}")]
    Spawn {
        /// What ractor reported.
        message: String,
    },
}

/// 128 random bits from the operating system, as 32 hex digits (session ids, ETags).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness at all is a broken host; fall back to a per-process hash seed
        // (itself from the OS when available) mixed with the time, never a constant.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bytes[..8].copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts an unsupervised [`WhipIngest`] (binding the shared UDP socket in mux mode) and
/// returns it with the bound UDP address (`None` in port-range mode).
///
/// Link it under a supervisor with `ingest.get_cell().link(supervisor)`; on shutdown send
/// [`WhipIngestMsg::Shutdown`] first so every session unpublishes cleanly.
pub async fn start_whip(
    args: WhipIngestArgs,
) -> Result<(ActorRef<WhipIngestMsg>, Option<SocketAddr>), WhipStartError> {
    let (ingest, _join) = Actor::spawn(None, WhipIngest, args)
        .await
        .map_err(|err| match err {
            SpawnErr::StartupFailed(inner) => match inner.downcast::<WhipStartError>() {
                Ok(start) => *start,
                Err(other) => WhipStartError::Spawn {
                    message: other.to_string(),
                },
            },
            other => WhipStartError::Spawn {
                message: other.to_string(),
            },
        })?;
    match ractor::call_t!(ingest, WhipIngestMsg::UdpAddr, 5_000) {
        Ok(addr) => Ok((ingest, addr)),
        Err(e) => {
            ingest.stop(None);
            Err(WhipStartError::Spawn {
                message: e.to_string(),
            })
        }
    }
}
