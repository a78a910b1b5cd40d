//! [`RtmpConnection`] owns one publisher's socket: its write half, the reader task that
//! feeds it the read half's bytes, the RTMP handshake and `rml_rtmp` server session, the
//! [`FlvDemuxer`] of the published stream and the reference to the stream actor it feeds.
//! It supervises no actor. Its parent is the [`RtmpListener`](super::RtmpListener), which
//! logs its exit and never restarts it: the publisher reconnects and gets a new connection.
//!
//! Backpressure: ractor mailboxes are unbounded, so the reader task does not `cast` bytes.
//! It reads at most [`READ_CHUNK`] bytes, `call`s the actor with them and reads again only
//! after the actor has handled them, so at most one chunk per connection is in flight and a
//! slow connection (or a slow supervisor answering `Publish`) leaves the rest in the kernel's
//! TCP buffers, which slows the publisher down. The hop to the stream actor is a `cast`
//! (the [`StreamMsg`] contract has no acknowledgement), so a stream actor that cannot keep
//! up grows its own mailbox; bounding that needs a credit or ack in the contract.
//!
//! Lifecycle: the socket closing, a read or write error, an idle publisher, a session error,
//! `deleteStream`/`closeStream` (`PublishStreamFinished`) or a refused request all end with
//! [`StreamMsg::Unpublish`] sent at most once (exactly once after an accepted publish) and
//! the actor stopping. `rml_rtmp` indexes into some command arguments without checking
//! their length, so every call into it runs under `catch_unwind`: malformed input closes
//! the connection instead of panicking the actor.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;
use recnode_media::flv::{FlvDemuxer, FlvError};
use recnode_media::TrackKind;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument, Span};

use super::{parse_publish_name, IngestError, IngestPolicy};
use crate::stream::{
    validate_stream_name, IngestProtocol, PublishRejected, PublishRequest, StreamMsg,
    StreamSupervisorMsg,
};

/// The most bytes one read hands to the actor (the in-flight bound per connection).
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// A connection that sends nothing for this long before it publishes is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A publishing connection that sends nothing for this long is disconnected and its
/// stream unpublished. A live encoder sends media many times a second; this frees the
/// name of a publisher whose connection dropped without a FIN (a half-open socket), so
/// its reconnect (OBS retries every few seconds) is accepted instead of refused for
/// minutes.
pub(crate) const PUBLISHING_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher that does not read our responses for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the stream supervisor has to answer a `Publish`.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one demux error log line per stream per this interval.
const DEMUX_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// Names from the network are cut to this many characters in logs.
const LOG_NAME_MAX: usize = 200;

/// RTMP status codes sent with refusals.
mod status {
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    pub const PUBLISH_DENIED: &str = "NetStream.Publish.Denied";
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
}

/// One publisher connection: handshake, RTMP session, policy, demuxing, forwarding.
pub struct RtmpConnection;

/// Messages to an [`RtmpConnection`], all from its own reader task.
#[derive(RactorMessage)]
pub enum RtmpConnectionMsg {
    /// Bytes read from the socket; the reply lets the reader read the next chunk.
    Received(Bytes, RpcReplyPort<()>),
    /// The reader stopped: end of stream, read error or idle timeout.
    ReadEnded(String),
}

/// What the listener hands a new connection.
pub struct RtmpConnectionArgs {
    /// The accepted socket.
    pub socket: TcpStream,
    /// The publisher's address.
    pub remote: SocketAddr,
    /// The listener's publish policy and stream supervisor.
    pub(crate) policy: Arc<IngestPolicy>,
}

/// Where the RTMP protocol of a connection is.
enum Protocol {
    /// Waiting for the client's C0/C1/C2.
    Handshake(Box<Handshake>),
    /// Handshake done; every further byte belongs to the session.
    Session(Box<ServerSession>),
    /// The session state is no longer trusted (rml_rtmp panicked); nothing is fed to it.
    Broken,
}

/// The accepted publish of this connection.
struct Published {
    stream: String,
    stream_ref: ActorRef<StreamMsg>,
}

/// What to do after handling input.
enum Step {
    Continue,
    /// Flush what is queued, close the socket, unpublish and stop, for this reason.
    Close(String),
}

/// Logs demux errors at most once per [`DEMUX_LOG_INTERVAL`], counting the rest.
#[derive(Default)]
struct DemuxErrorLog {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl DemuxErrorLog {
    fn record(&mut self, stream: &str, remote: SocketAddr, err: &FlvError) {
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= DEMUX_LOG_INTERVAL)
        {
            warn!(%stream, %remote, error = %err, suppressed = self.suppressed,
                "bad RTMP media message skipped");
            self.last_logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }
}

/// A connection's state.
pub struct RtmpConnectionState {
    remote: SocketAddr,
    policy: Arc<IngestPolicy>,
    writer: OwnedWriteHalf,
    /// Taken by `post_start`, which moves it into the reader task.
    read_half: Option<OwnedReadHalf>,
    reader: Option<JoinHandle<()>>,
    protocol: Protocol,
    published: Option<Published>,
    /// The reader's idle timeout in milliseconds, shortened once the connection publishes.
    idle_ms: Arc<AtomicU64>,
    demuxer: FlvDemuxer,
    demux_errors: DemuxErrorLog,
    span: Span,
}

impl Actor for RtmpConnection {
    type Msg = RtmpConnectionMsg;
    type State = RtmpConnectionState;
    type Arguments = RtmpConnectionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RtmpConnectionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Small RTMP control responses should not wait for Nagle; failure only costs latency.
        let _ = args.socket.set_nodelay(true);
        let (read_half, writer) = args.socket.into_split();
        let span = info_span!("rtmp", remote = %args.remote, stream = tracing::field::Empty);
        span.in_scope(|| debug!("RTMP connection started"));
        Ok(RtmpConnectionState {
            remote: args.remote,
            policy: args.policy,
            writer,
            read_half: Some(read_half),
            reader: None,
            protocol: Protocol::Handshake(Box::new(Handshake::new(PeerType::Server))),
            published: None,
            idle_ms: Arc::new(AtomicU64::new(IDLE_TIMEOUT.as_millis() as u64)),
            demuxer: FlvDemuxer::new(),
            demux_errors: DemuxErrorLog::default(),
            span,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(read_half) = state.read_half.take() {
            state.reader = Some(tokio::spawn(
                read_loop(read_half, myself, state.idle_ms.clone()).instrument(state.span.clone()),
            ));
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        async {
            let step = match message {
                RtmpConnectionMsg::Received(bytes, reply) => {
                    let step = state.on_bytes(&bytes).await;
                    if matches!(step, Step::Continue) {
                        // The reader may have been aborted meanwhile; nothing to do then.
                        let _ = reply.send(());
                    }
                    step
                }
                RtmpConnectionMsg::ReadEnded(reason) => Step::Close(reason),
            };
            if let Step::Close(reason) = step {
                info!(remote = %state.remote, %reason, "RTMP connection closing");
                state.unpublish(&reason);
                myself.stop(Some(reason));
            }
        }
        .instrument(span)
        .await;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        span.in_scope(|| state.unpublish("connection actor stopped"));
        if let Some(reader) = state.reader.take() {
            reader.abort();
        }
        Ok(())
    }
}

/// Reads the socket and hands each chunk to the connection, one at a time (see the module doc).
async fn read_loop(
    mut read_half: OwnedReadHalf,
    connection: ActorRef<RtmpConnectionMsg>,
    idle_ms: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let idle = Duration::from_millis(idle_ms.load(Ordering::Relaxed));
        let reason = match tokio::time::timeout(idle, read_half.read(&mut buf)).await {
            Err(_) => format!(
                "no data from the publisher for {} s (connection presumed dead)",
                idle.as_secs_f64()
            ),
            Ok(Ok(0)) => "socket closed by the publisher".to_string(),
            Ok(Err(err)) => format!("socket read failed: {err}"),
            Ok(Ok(n)) => {
                let chunk = Bytes::copy_from_slice(&buf[..n]);
                match connection
                    .call(|reply| RtmpConnectionMsg::Received(chunk, reply), None)
                    .await
                {
                    Ok(CallResult::Success(())) => continue,
                    // The connection is closing or gone; it no longer wants bytes.
                    _ => return,
                }
            }
        };
        // If the connection is already gone there is nobody left to tell.
        let _ = connection.send_message(RtmpConnectionMsg::ReadEnded(reason));
        return;
    }
}

/// Cuts a name from the network for logging (Debug formatting escapes control characters).
fn log_name(name: &str) -> String {
    name.chars().take(LOG_NAME_MAX).collect()
}

/// A panic payload as text.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl RtmpConnectionState {
    /// The published stream's name, for error context.
    fn stream_name(&self) -> Option<String> {
        self.published.as_ref().map(|p| p.stream.clone())
    }

    /// Feeds socket bytes through the handshake or session and writes the responses.
    async fn on_bytes(&mut self, bytes: &[u8]) -> Step {
        let mut out = Vec::new();
        let step = self.process(bytes, &mut out).await;
        if !out.is_empty() {
            if let Err(err) = self.write(&out).await {
                warn!(remote = %self.remote, stream = ?self.stream_name(), error = %err,
                    "RTMP write failed");
                return Step::Close(err.to_string());
            }
        }
        if matches!(step, Step::Close(_)) {
            // A clean FIN after the refusal, so the publisher reads the status first; the
            // socket is dropped with the actor either way.
            let _ = tokio::time::timeout(WRITE_TIMEOUT, self.writer.shutdown()).await;
        }
        step
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        let source = match tokio::time::timeout(WRITE_TIMEOUT, self.writer.write_all(bytes)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => err,
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("publisher read nothing for {} s", WRITE_TIMEOUT.as_secs()),
            ),
        };
        Err(IngestError::Write {
            remote: self.remote,
            source,
        })
    }

    async fn process(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Step {
        let handshake = match &mut self.protocol {
            Protocol::Session(_) => return self.feed_session(bytes, out).await,
            Protocol::Broken => return Step::Close("RTMP session is broken".to_string()),
            Protocol::Handshake(handshake) => {
                catch_unwind(AssertUnwindSafe(|| handshake.process_bytes(bytes)))
            }
        };
        let remaining = match handshake {
            Err(panic) => {
                self.protocol = Protocol::Broken;
                return self.fail(IngestError::Malformed {
                    remote: self.remote,
                    stream: None,
                    stage: "handshake",
                    message: panic_message(panic.as_ref()),
                });
            }
            Ok(Err(source)) => {
                return self.fail(IngestError::Handshake {
                    remote: self.remote,
                    source,
                })
            }
            Ok(Ok(HandshakeProcessResult::InProgress { response_bytes })) => {
                out.extend_from_slice(&response_bytes);
                return Step::Continue;
            }
            Ok(Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            })) => {
                out.extend_from_slice(&response_bytes);
                remaining_bytes
            }
        };
        debug!(remote = %self.remote, "RTMP handshake completed");
        let (session, initial) = match ServerSession::new(ServerSessionConfig::new()) {
            Ok(created) => created,
            Err(source) => {
                return self.fail(IngestError::Session {
                    remote: self.remote,
                    stream: None,
                    source,
                })
            }
        };
        self.protocol = Protocol::Session(Box::new(session));
        push_outbound(initial, out);
        if remaining.is_empty() {
            Step::Continue
        } else {
            self.feed_session(&remaining, out).await
        }
    }

    /// Logs a connection error and turns it into a close.
    fn fail(&self, err: IngestError) -> Step {
        warn!(remote = %self.remote, stream = ?self.stream_name(), error = %err,
            "RTMP connection failed");
        Step::Close(err.to_string())
    }

    /// Runs one call into the server session, turning its errors and panics into a close.
    fn session_call<T>(
        &mut self,
        call: impl FnOnce(&mut ServerSession) -> Result<T, ServerSessionError>,
    ) -> Result<T, Step> {
        let Protocol::Session(session) = &mut self.protocol else {
            return Err(Step::Close("RTMP session is not running".to_string()));
        };
        match catch_unwind(AssertUnwindSafe(|| call(session))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(self.fail(IngestError::Session {
                remote: self.remote,
                stream: self.stream_name(),
                source,
            })),
            Err(panic) => {
                self.protocol = Protocol::Broken;
                Err(self.fail(IngestError::Malformed {
                    remote: self.remote,
                    stream: self.stream_name(),
                    stage: "session",
                    message: panic_message(panic.as_ref()),
                }))
            }
        }
    }

    async fn feed_session(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Step {
        let results = match self.session_call(|session| session.handle_input(bytes)) {
            Ok(results) => results,
            Err(step) => return step,
        };
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    out.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => {
                    if let Step::Close(reason) = self.on_event(event, out).await {
                        return Step::Close(reason);
                    }
                }
                ServerSessionResult::UnhandleableMessageReceived(payload) => {
                    debug!(type_id = payload.type_id, "RTMP message ignored");
                }
            }
        }
        Step::Continue
    }

    async fn on_event(&mut self, event: ServerSessionEvent, out: &mut Vec<u8>) -> Step {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                if self.policy.app_allowed(&app_name) {
                    debug!(app = %app_name, "RTMP connect accepted");
                    match self.session_call(|session| session.accept_request(request_id)) {
                        Ok(results) => push_outbound(results, out),
                        Err(step) => return step,
                    }
                    Step::Continue
                } else {
                    let app = log_name(&app_name);
                    warn!(remote = %self.remote, app = ?app, "RTMP connect refused: unknown app");
                    self.refuse(
                        request_id,
                        status::CONNECT_REJECTED,
                        &format!("unknown app {app:?}"),
                        out,
                    )
                }
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                mode: _,
            } => {
                self.on_publish(request_id, app_name, &stream_key, out)
                    .await
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                Step::Close("publisher finished (deleteStream/closeStream)".to_string())
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.on_media(TrackKind::Video, timestamp.value, &data),
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.on_media(TrackKind::Audio, timestamp.value, &data),
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                debug!(?metadata, "onMetaData ignored");
                Step::Continue
            }
            ServerSessionEvent::UnhandleableAmf0Command { command_name, .. } => {
                // releaseStream, FCPublish, FCUnpublish, ...: clients do not wait for answers.
                debug!(command = ?log_name(&command_name), "RTMP command ignored");
                Step::Continue
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                warn!(remote = %self.remote, stream = ?log_name(&stream_key),
                    "RTMP play refused: this node only ingests");
                self.refuse(
                    request_id,
                    status::PLAY_FAILED,
                    "this server does not play streams",
                    out,
                )
            }
            ServerSessionEvent::ClientChunkSizeChanged { .. }
            | ServerSessionEvent::ReleaseStreamRequested { .. }
            | ServerSessionEvent::PlayStreamFinished { .. }
            | ServerSessionEvent::AcknowledgementReceived { .. }
            | ServerSessionEvent::PingResponseReceived { .. } => Step::Continue,
        }
    }

    /// Applies the publish policy (module doc of `ingest`) and asks the stream supervisor.
    async fn on_publish(
        &mut self,
        request_id: u32,
        app: String,
        publish_name: &str,
        out: &mut Vec<u8>,
    ) -> Step {
        let name = parse_publish_name(publish_name);
        let shown = log_name(name.stream);
        if let Some(published) = &self.published {
            warn!(remote = %self.remote, stream = ?shown, live = %published.stream,
                "RTMP publish refused: this connection already publishes");
            match self.session_call(|session| {
                session.reject_request(
                    request_id,
                    status::PUBLISH_DENIED,
                    "this connection already publishes a stream",
                )
            }) {
                Ok(results) => push_outbound(results, out),
                Err(step) => return step,
            }
            return Step::Continue;
        }
        if let Err(invalid) = validate_stream_name(name.stream) {
            warn!(remote = %self.remote, stream = ?shown, reason = invalid.reason,
                "RTMP publish refused: invalid stream name");
            return self.refuse(
                request_id,
                status::PUBLISH_BAD_NAME,
                &invalid.to_string(),
                out,
            );
        }
        // Validated: at most 128 safe characters from here on.
        let stream = name.stream.to_string();
        self.span.record("stream", name.stream);
        if !self.policy.key_allowed(name.stream, name.key) {
            warn!(remote = %self.remote, %stream, key_sent = name.key.is_some(),
                "RTMP publish refused: wrong or missing stream key");
            return self.refuse(
                request_id,
                status::PUBLISH_DENIED,
                "wrong or missing stream key",
                out,
            );
        }
        let request = PublishRequest {
            app,
            stream: stream.clone(),
            protocol: IngestProtocol::Rtmp,
            remote: self.remote.to_string(),
        };
        let answer = self
            .policy
            .streams
            .call(
                |reply| StreamSupervisorMsg::Publish(request, reply),
                Some(PUBLISH_TIMEOUT),
            )
            .await;
        let refusal = match answer {
            Ok(CallResult::Success(Ok(stream_ref))) => {
                // Recorded before accepting, so that any failure from here on unpublishes.
                self.published = Some(Published {
                    stream: stream.clone(),
                    stream_ref,
                });
                self.idle_ms.store(
                    PUBLISHING_IDLE_TIMEOUT.as_millis() as u64,
                    Ordering::Relaxed,
                );
                return match self.session_call(|session| session.accept_request(request_id)) {
                    Ok(results) => {
                        push_outbound(results, out);
                        info!(remote = %self.remote, %stream, "RTMP publish started");
                        Step::Continue
                    }
                    Err(step) => step,
                };
            }
            Ok(CallResult::Success(Err(rejected))) => {
                let code = match rejected {
                    PublishRejected::AlreadyLive { .. } => status::PUBLISH_BAD_NAME,
                    PublishRejected::ShuttingDown => status::PUBLISH_DENIED,
                };
                (code, rejected.to_string())
            }
            Ok(CallResult::Timeout) => (
                status::PUBLISH_DENIED,
                format!(
                    "stream supervisor did not answer within {} s",
                    PUBLISH_TIMEOUT.as_secs()
                ),
            ),
            Ok(CallResult::SenderError) => (
                status::PUBLISH_DENIED,
                "stream supervisor dropped the request".to_string(),
            ),
            Err(err) => (
                status::PUBLISH_DENIED,
                format!("stream supervisor unavailable: {err}"),
            ),
        };
        let (code, reason) = refusal;
        warn!(remote = %self.remote, %stream, %reason, "RTMP publish refused by the stream supervisor");
        self.refuse(request_id, code, &reason, out)
    }

    /// Answers a request with an RTMP error status and closes the connection.
    fn refuse(
        &mut self,
        request_id: u32,
        code: &str,
        description: &str,
        out: &mut Vec<u8>,
    ) -> Step {
        match self.session_call(|session| session.reject_request(request_id, code, description)) {
            Ok(results) => push_outbound(results, out),
            Err(step) => return step,
        }
        Step::Close(format!("refused ({code}): {description}"))
    }

    /// Demuxes one audio/video message body and forwards its events to the stream actor.
    fn on_media(&mut self, kind: TrackKind, timestamp_ms: u32, body: &[u8]) -> Step {
        let Some(published) = &self.published else {
            // rml_rtmp only raises media for an accepted publish; nothing to forward to.
            return Step::Continue;
        };
        let demuxed = match kind {
            TrackKind::Video => self.demuxer.push_video(timestamp_ms, body),
            TrackKind::Audio => self.demuxer.push_audio(timestamp_ms, body),
        };
        match demuxed {
            Ok(events) => {
                for event in events {
                    if published
                        .stream_ref
                        .send_message(StreamMsg::Media(event))
                        .is_err()
                    {
                        warn!(remote = %self.remote, stream = %published.stream,
                            "stream actor is gone; closing the publisher");
                        return Step::Close("stream actor is gone".to_string());
                    }
                }
            }
            Err(err) => self
                .demux_errors
                .record(&published.stream, self.remote, &err),
        }
        Step::Continue
    }

    /// Sends `Unpublish` if a publish was accepted and not yet ended; later calls do nothing.
    fn unpublish(&mut self, reason: &str) {
        if let Some(published) = self.published.take() {
            if published
                .stream_ref
                .send_message(StreamMsg::Unpublish)
                .is_err()
            {
                debug!(stream = %published.stream, "stream actor already gone at unpublish");
            }
            let stats = self.demuxer.stats();
            info!(remote = %self.remote, stream = %published.stream, %reason,
                video_frames = stats.video_frames, audio_frames = stats.audio_frames,
                demux_errors = stats.errors, "RTMP publish ended");
        }
    }
}

/// Appends the packets of an accept/reject answer (rml_rtmp answers those with packets only).
fn push_outbound(results: Vec<ServerSessionResult>, out: &mut Vec<u8>) {
    for result in results {
        match result {
            ServerSessionResult::OutboundResponse(packet) => out.extend_from_slice(&packet.bytes),
            other => debug!(result = ?other, "unexpected RTMP session result ignored"),
        }
    }
}
