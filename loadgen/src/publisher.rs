//! One RTMP publisher: handshake, connect, publish, then replay the source at real-time
//! pace with rml_rtmp's sans-IO [`ClientSession`] doing the chunking.
//!
//! Inbound bytes (acks, status messages) are read while the publisher waits for the
//! next frame to fall due, so the server is never left blocked on its own writes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionError, ClientSessionEvent,
    ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pacing::{Lateness, Schedule};
use crate::source::{MediaKind, Source};

/// How long connect, handshake and the publish request may take together.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for the server to close the connection after the last frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a publisher stopped early.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A socket operation failed.
    #[error("stream {stream}: {what}: {source}")]
    Io {
        /// The stream name.
        stream: String,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The RTMP handshake failed.
    #[error("stream {stream}: handshake: {source}")]
    Handshake {
        /// The stream name.
        stream: String,
        /// The handshake error.
        #[source]
        source: HandshakeError,
    },
    /// The RTMP session reported an error.
    #[error("stream {stream}: RTMP session ({what}): {source}")]
    Session {
        /// The stream name.
        stream: String,
        /// What was being done.
        what: &'static str,
        /// The session error.
        #[source]
        source: ClientSessionError,
    },
    /// The server rejected the connect request.
    #[error("stream {stream}: connect rejected: {description}")]
    Rejected {
        /// The stream name.
        stream: String,
        /// The server's description.
        description: String,
    },
    /// The server closed the connection.
    #[error("stream {stream}: server closed the connection {when}")]
    Closed {
        /// The stream name.
        stream: String,
        /// During set-up, or after how many frames.
        when: String,
    },
    /// Set-up did not finish in time.
    #[error("stream {stream}: set-up timed out after {SETUP_TIMEOUT:?}")]
    SetupTimeout {
        /// The stream name.
        stream: String,
    },
}

/// Where and what to publish.
#[derive(Debug, Clone)]
pub struct PublishTarget {
    /// The server's address (loopback only; `main` checks).
    pub addr: SocketAddr,
    /// The RTMP application name.
    pub app: String,
    /// The full `rtmp://` URL, sent as `tcUrl`.
    pub tc_url: String,
    /// The stream name (publish key).
    pub stream: String,
}

/// What one publisher sent.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StreamReport {
    /// The stream name.
    pub name: String,
    /// RTMP audio/video messages sent, sequence headers included.
    pub tags: u64,
    /// Video frames sent (sequence headers excluded).
    pub video_frames: u64,
    /// Audio frames sent (sequence headers excluded).
    pub audio_frames: u64,
    /// Bytes written to the socket, RTMP chunking included.
    pub bytes: u64,
    /// Largest lateness of a frame behind its real-time schedule, ms.
    pub max_lateness_ms: f64,
    /// Mean lateness, ms.
    pub mean_lateness_ms: f64,
    /// Frames more than 100 ms late.
    pub late_over_100ms: u64,
    /// Wall-clock time (Unix ms) when the stream's first frame was due.
    pub start_unix_ms: u64,
    /// Wall-clock time (Unix ms) each video frame finished going out, in send order.
    pub video_sent_unix_ms: Vec<u64>,
    /// Wall-clock time (Unix ms) each audio frame finished going out, in send order.
    pub audio_sent_unix_ms: Vec<u64>,
    /// Why the publisher stopped early, if it did.
    pub error: Option<String>,
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A connected RTMP client session and its socket.
struct Connection {
    stream: String,
    socket: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
    bytes_out: u64,
}

impl Connection {
    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
        move |source| PublishError::Io {
            stream: self.stream.clone(),
            what,
            source,
        }
    }

    fn session_err(&self, what: &'static str) -> impl FnOnce(ClientSessionError) -> PublishError {
        let stream = self.stream.clone();
        move |source| PublishError::Session {
            stream,
            what,
            source,
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), PublishError> {
        let result = self.socket.write_all(bytes).await;
        result.map_err(self.io("write"))?;
        self.bytes_out += bytes.len() as u64;
        Ok(())
    }

    /// Sends the outbound packets among `results` and returns the raised events.
    async fn apply(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> Result<Vec<ClientSessionEvent>, PublishError> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => self.write(&packet.bytes).await?,
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    /// Feeds `n` bytes just read into the session; `Closed` if `n` is 0.
    async fn handle_read(
        &mut self,
        n: usize,
        when: impl FnOnce() -> String,
    ) -> Result<Vec<ClientSessionEvent>, PublishError> {
        if n == 0 {
            return Err(PublishError::Closed {
                stream: self.stream.clone(),
                when: when(),
            });
        }
        let input = self.buf[..n].to_vec();
        let results = self
            .session
            .handle_input(&input)
            .map_err(self.session_err("reading"))?;
        self.apply(results).await
    }

    /// Reads until `done` accepts an event; a rejected connect is an error.
    async fn wait_for(
        &mut self,
        done: impl Fn(&ClientSessionEvent) -> bool,
    ) -> Result<(), PublishError> {
        loop {
            let n = {
                let result = self.socket.read(&mut self.buf).await;
                result.map_err(self.io("read"))?
            };
            for event in self.handle_read(n, || "during set-up".into()).await? {
                if let ClientSessionEvent::ConnectionRequestRejected { description } = event {
                    return Err(PublishError::Rejected {
                        stream: self.stream.clone(),
                        description,
                    });
                }
                if done(&event) {
                    return Ok(());
                }
            }
        }
    }
}

/// Connects, shakes hands and gets the publish accepted.
async fn set_up(target: &PublishTarget) -> Result<Connection, PublishError> {
    let stream = target.stream.clone();
    let io = |what| {
        let stream = stream.clone();
        move |source| PublishError::Io {
            stream,
            what,
            source,
        }
    };
    let mut socket = TcpStream::connect(target.addr)
        .await
        .map_err(io("connect"))?;
    socket.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
    let hs_err = |source| PublishError::Handshake {
        stream: stream.clone(),
        source,
    };
    let mut handshake = Handshake::new(PeerType::Client);
    let p0p1 = handshake.generate_outbound_p0_and_p1().map_err(hs_err)?;
    socket.write_all(&p0p1).await.map_err(io("write"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let remaining = loop {
        let n = socket.read(&mut buf).await.map_err(io("read"))?;
        if n == 0 {
            return Err(PublishError::Closed {
                stream: stream.clone(),
                when: "during the handshake".into(),
            });
        }
        match handshake.process_bytes(&buf[..n]).map_err(hs_err)? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(io("write"))?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(io("write"))?;
                break remaining_bytes;
            }
        }
    };
    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(target.tc_url.clone());
    let session_err = |what| {
        let stream = stream.clone();
        move |source| PublishError::Session {
            stream,
            what,
            source,
        }
    };
    let (session, results) = ClientSession::new(config).map_err(session_err("new"))?;
    let mut conn = Connection {
        stream: stream.clone(),
        socket,
        session,
        buf,
        bytes_out: 0,
    };
    conn.apply(results).await?;
    if !remaining.is_empty() {
        let results = conn
            .session
            .handle_input(&remaining)
            .map_err(session_err("reading"))?;
        conn.apply(results).await?;
    }
    let request = conn
        .session
        .request_connection(target.app.clone())
        .map_err(session_err("connect"))?;
    conn.apply(vec![request]).await?;
    conn.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))
        .await?;
    let request = conn
        .session
        .request_publishing(target.stream.clone(), PublishRequestType::Live)
        .map_err(session_err("publish"))?;
    conn.apply(vec![request]).await?;
    conn.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))
        .await?;
    Ok(conn)
}

/// Publishes `source` as `target.stream` for `duration` (one pass if `None`) and reports
/// what was sent. Errors end up in the report's `error`; frames sent so far still count.
pub async fn publish(
    target: PublishTarget,
    source: Arc<Source>,
    duration: Option<Duration>,
) -> StreamReport {
    let mut report = StreamReport {
        name: target.stream.clone(),
        ..StreamReport::default()
    };
    let conn = match tokio::time::timeout(SETUP_TIMEOUT, set_up(&target)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            report.error = Some(e.to_string());
            return report;
        }
        Err(_) => {
            report.error = Some(
                PublishError::SetupTimeout {
                    stream: target.stream,
                }
                .to_string(),
            );
            return report;
        }
    };
    let mut conn = conn;
    if let Err(e) = replay(&mut conn, &source, duration, &mut report).await {
        report.error = Some(e.to_string());
    }
    report.bytes = conn.bytes_out;
    report
}

/// Sends the sequence headers, then every scheduled frame at its due time, then closes.
async fn replay(
    conn: &mut Connection,
    source: &Source,
    duration: Option<Duration>,
    report: &mut StreamReport,
) -> Result<(), PublishError> {
    let zero = RtmpTimestamp::new(0);
    let mut headers = Vec::new();
    if let Some(h) = &source.video_header {
        headers.push(
            conn.session
                .publish_video_data(h.clone(), zero, false)
                .map_err(conn.session_err("video sequence header"))?,
        );
    }
    if let Some(h) = &source.audio_header {
        headers.push(
            conn.session
                .publish_audio_data(h.clone(), zero, false)
                .map_err(conn.session_err("audio sequence header"))?,
        );
    }
    report.tags += headers.len() as u64;
    conn.apply(headers).await?;

    let timestamps: Vec<u64> = source.frames.iter().map(|f| f.ts_ms).collect();
    let start = Instant::now();
    report.start_unix_ms = unix_ms();
    let mut lateness = Lateness::default();
    for slot in Schedule::new(&timestamps, source.loop_len_ms, duration) {
        let due = start + Duration::from_millis(slot.due_ms);
        // Wait for the due time, serving inbound bytes meanwhile.
        loop {
            let sleep = tokio::time::sleep_until(due.into());
            tokio::select! {
                () = sleep => break,
                read = conn.socket.read(&mut conn.buf) => {
                    let n = read.map_err(conn.io("read"))?;
                    let sent = report.video_frames + report.audio_frames;
                    conn.handle_read(n, || format!("after {sent} frames")).await?;
                }
            }
        }
        lateness.record(Instant::now().saturating_duration_since(due));
        let frame = &source.frames[slot.index];
        // RTMP timestamps are 32-bit ms and wrap (after 49 days of replay).
        let ts = RtmpTimestamp::new(slot.ts_ms as u32);
        let packet = match frame.kind {
            MediaKind::Video => conn
                .session
                .publish_video_data(frame.data.clone(), ts, false),
            MediaKind::Audio => conn
                .session
                .publish_audio_data(frame.data.clone(), ts, false),
        }
        .map_err(conn.session_err("frame"))?;
        conn.apply(vec![packet]).await?;
        let sent_at = unix_ms();
        report.tags += 1;
        match frame.kind {
            MediaKind::Video => {
                report.video_frames += 1;
                report.video_sent_unix_ms.push(sent_at);
            }
            MediaKind::Audio => {
                report.audio_frames += 1;
                report.audio_sent_unix_ms.push(sent_at);
            }
        }
        report.max_lateness_ms = lateness.max_ms;
        report.mean_lateness_ms = lateness.mean_ms();
        report.late_over_100ms = lateness.over_100ms;
    }

    let stop = conn
        .session
        .stop_publishing()
        .map_err(conn.session_err("stop publishing"))?;
    conn.apply(stop).await?;
    let shutdown = conn.socket.shutdown().await;
    shutdown.map_err(conn.io("shutdown"))?;
    // Drain until the server closes (or give up after a while: the data is all out).
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Ok(n) = conn.socket.read(&mut conn.buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}
