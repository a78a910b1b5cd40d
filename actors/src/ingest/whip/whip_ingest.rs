//! [`WhipIngest`]: admits WHIP offers and supervises one [`WhipSession`] per publisher.
//!
//! It owns the node-wide WebRTC transport (the shared UDP socket in mux mode), the stream
//! key rules, and the registry of sessions by id, which `PATCH` and `DELETE` go through.
//! An offer is checked here (stream name, bearer key, SDP and codecs; see the module docs
//! of [`super`]) without waiting on anything, then handed to a new session spawned linked;
//! the session answers the HTTP request itself once negotiated.
//!
//! Restart policy: none for sessions, which cannot be resumed server-side. A session that
//! stops normally has already unpublished its stream and closed its peer connection; one
//! that fails (an error or a panic, where its `post_stop` does not run) is cleaned up here:
//! its stream gets `Unpublish`, so the recordings close cleanly, and its peer connection
//! is closed. The ingest itself is started by the binary (`start_whip`) and is not
//! restarted; [`WhipIngestMsg::Shutdown`] stops every session cleanly before the node stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster_derive::RactorMessage;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::peer_connection::RTCPeerConnection;

use super::peer::{Transport, WhipShared};
use super::sdp::inspect_offer;
use super::whip_session::{SessionMsg, WhipSession, WhipSessionArgs, WhipSessionMsg};
use super::{
    random_token, WhipAnswer, WhipError, WhipIngestArgs, WhipOffer, WhipStartError, WhipUdp,
};
use crate::ingest::{stream_key_allowed, StreamKeyRule};
use crate::stream::{validate_stream_name, PublishRejected, StreamMsg, StreamSupervisorMsg};

/// The receive buffer asked for the shared UDP socket (Linux doubles it and caps it at
/// `net.core.rmem_max`): about 1.5 s of 20 streams at 2.5 Mb/s.
const MUX_RECV_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How long shutdown waits for sessions to unpublish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The WHIP ingest actor (one per node).
pub struct WhipIngest;

/// A session that published its stream: what a failure clean-up needs.
pub(crate) struct SessionPublished {
    pub(crate) id: String,
    pub(crate) stream: ActorRef<StreamMsg>,
    pub(crate) pc: Arc<RTCPeerConnection>,
}

/// Messages to the WHIP ingest.
#[derive(RactorMessage)]
pub enum WhipIngestMsg {
    /// `POST /whip/{stream}`: the answer, or why not.
    Offer(WhipOffer, RpcReplyPort<Result<WhipAnswer, WhipError>>),
    /// `PATCH /whip/{stream}/{session}`: trickle ICE candidates.
    Patch {
        /// The stream name from the URL.
        stream: String,
        /// The session id from the URL.
        session: String,
        /// The bearer token, if any.
        key: Option<String>,
        /// The `If-Match` header, if any.
        if_match: Option<String>,
        /// The `application/trickle-ice-sdpfrag` body.
        fragment: String,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), WhipError>>,
    },
    /// `DELETE /whip/{stream}/{session}`: end the session (its recordings close).
    Delete {
        /// The stream name from the URL.
        stream: String,
        /// The session id from the URL.
        session: String,
        /// The bearer token, if any.
        key: Option<String>,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), WhipError>>,
    },
    /// The bound UDP address of the shared socket (`None` in port-range mode).
    UdpAddr(RpcReplyPort<Option<SocketAddr>>),
    /// Stop taking offers and end every session cleanly; replies when they are gone.
    Shutdown(RpcReplyPort<()>),
    /// From a session that published its stream; not for the HTTP layer.
    Internal(WhipIngestInternal),
}

/// Messages from the ingest's own sessions; opaque outside this crate.
pub struct WhipIngestInternal(pub(crate) SessionPublished);

/// One registered session.
struct Entry {
    stream: String,
    actor: ActorRef<WhipSessionMsg>,
    published: Option<SessionPublished>,
}

/// The ingest's state.
pub struct WhipIngestState {
    shared: Arc<WhipShared>,
    stream_keys: Vec<StreamKeyRule>,
    streams: ActorRef<StreamSupervisorMsg>,
    udp_addr: Option<SocketAddr>,
    sessions: HashMap<String, Entry>,
    by_actor: HashMap<ActorId, String>,
    shutting_down: bool,
}

impl WhipIngestState {
    /// Admits an offer: name, key, SDP; then spawns its session.
    async fn offer(
        &mut self,
        myself: &ActorRef<WhipIngestMsg>,
        offer: WhipOffer,
        reply: RpcReplyPort<Result<WhipAnswer, WhipError>>,
    ) {
        let refuse = |reply: RpcReplyPort<_>, e: WhipError| {
            tracing::warn!(stream = %offer.stream.chars().take(200).collect::<String>(),
                remote = %offer.remote, "WHIP offer refused: {e}");
            let _ = reply.send(Err(e));
        };
        if self.shutting_down {
            return refuse(reply, WhipError::Rejected(PublishRejected::ShuttingDown));
        }
        if let Err(e) = validate_stream_name(&offer.stream) {
            return refuse(reply, e.into());
        }
        if !stream_key_allowed(&self.stream_keys, &offer.stream, offer.key.as_deref()) {
            return refuse(
                reply,
                WhipError::Unauthorized {
                    stream: offer.stream.clone(),
                },
            );
        }
        let settings = &self.shared.settings;
        let summary =
            match inspect_offer(&offer.sdp, &settings.video_codecs, &settings.audio_codecs) {
                Ok(summary) => summary,
                Err(problem) => return refuse(reply, (&problem).into()),
            };
        let id = random_token();
        let stream = offer.stream.clone();
        let args = WhipSessionArgs {
            id: id.clone(),
            offer,
            summary,
            shared: self.shared.clone(),
            streams: self.streams.clone(),
            ingest: myself.clone(),
            reply,
        };
        match Actor::spawn_linked(None, WhipSession, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.by_actor.insert(actor.get_id(), id.clone());
                self.sessions.insert(
                    id,
                    Entry {
                        stream,
                        actor,
                        published: None,
                    },
                );
            }
            // The reply port went down with the arguments: the caller sees the call fail.
            Err(e) => tracing::error!(stream = %stream, "WHIP session did not start: {e}"),
        }
    }

    /// The session `id` of `stream`, if the key allows touching it.
    fn session(
        &self,
        stream: &str,
        id: &str,
        key: Option<&str>,
    ) -> Result<&ActorRef<WhipSessionMsg>, WhipError> {
        let not_found = || WhipError::SessionNotFound {
            stream: stream.chars().take(200).collect(),
            session: id.chars().take(64).collect(),
        };
        let entry = self.sessions.get(id).ok_or_else(not_found)?;
        if entry.stream != stream {
            return Err(not_found());
        }
        if !stream_key_allowed(&self.stream_keys, stream, key) {
            return Err(WhipError::Unauthorized {
                stream: stream.to_string(),
            });
        }
        Ok(&entry.actor)
    }

    fn forget(&mut self, actor: &ActorId) -> Option<Entry> {
        let id = self.by_actor.remove(actor)?;
        self.sessions.remove(&id)
    }
}

impl Actor for WhipIngest {
    type Msg = WhipIngestMsg;
    type State = WhipIngestState;
    type Arguments = WhipIngestArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: WhipIngestArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (transport, udp_addr) = match &args.settings.udp {
            WhipUdp::Mux(listen) => {
                let socket = tokio::net::UdpSocket::bind(listen)
                    .await
                    .map_err(|source| WhipStartError::Bind {
                        listen: *listen,
                        source,
                    })?;
                let bound = socket.local_addr().map_err(|source| WhipStartError::Bind {
                    listen: *listen,
                    source,
                })?;
                // Every session's media arrives on this one socket: a deep receive buffer
                // rides out a busy runtime thread instead of dropping packets (capped by
                // net.core.rmem_max).
                if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(
                    &socket,
                    MUX_RECV_BUFFER_BYTES,
                ) {
                    tracing::warn!("cannot enlarge the WHIP UDP receive buffer: {e}");
                }
                let recv_buffer = rustix::net::sockopt::socket_recv_buffer_size(&socket).ok();
                tracing::info!(bytes = ?recv_buffer, "WHIP UDP receive buffer");
                let mux = UDPMuxDefault::new(UDPMuxParams::new(socket));
                (Transport::Mux(mux, bound), Some(bound))
            }
            WhipUdp::PortRange { min, max } => (Transport::PortRange(*min, *max), None),
        };
        tracing::info!(udp = ?udp_addr, public_ips = ?args.settings.public_ips,
            video = ?args.settings.video_codecs, audio = ?args.settings.audio_codecs,
            "WHIP ingest ready");
        Ok(WhipIngestState {
            shared: Arc::new(WhipShared {
                settings: args.settings,
                transport,
            }),
            stream_keys: args.stream_keys,
            streams: args.streams,
            udp_addr,
            sessions: HashMap::new(),
            by_actor: HashMap::new(),
            shutting_down: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WhipIngestMsg::Offer(offer, reply) => state.offer(&myself, offer, reply).await,
            WhipIngestMsg::Patch {
                stream,
                session,
                key,
                if_match,
                fragment,
                reply,
            } => match state.session(&stream, &session, key.as_deref()) {
                Ok(actor) => {
                    let msg = SessionMsg::Patch {
                        if_match,
                        fragment,
                        reply,
                    };
                    // If it just stopped, the dropped reply port tells the caller.
                    let _ = actor.cast(WhipSessionMsg(msg));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            WhipIngestMsg::Delete {
                stream,
                session,
                key,
                reply,
            } => match state.session(&stream, &session, key.as_deref()) {
                Ok(actor) => {
                    let _ = actor.cast(WhipSessionMsg(SessionMsg::Delete(reply)));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            WhipIngestMsg::UdpAddr(reply) => {
                let _ = reply.send(state.udp_addr);
            }
            WhipIngestMsg::Shutdown(reply) => {
                state.shutting_down = true;
                tracing::info!(sessions = state.sessions.len(), "WHIP ingest shutting down");
                myself
                    .get_cell()
                    .stop_children_and_wait(
                        Some("node shutting down".into()),
                        Some(SHUTDOWN_TIMEOUT),
                    )
                    .await;
                let _ = reply.send(());
            }
            WhipIngestMsg::Internal(WhipIngestInternal(published)) => {
                if let Some(entry) = state.sessions.get_mut(&published.id) {
                    entry.published = Some(published);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.forget(&cell.get_id());
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(entry) = state.forget(&cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(stream = %entry.stream, "WHIP session failed; unpublishing its stream: {error}");
                if let Some(published) = entry.published {
                    let _ = published.stream.cast(StreamMsg::Unpublish);
                    tokio::spawn(async move {
                        let _ = published.pc.close().await;
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}
