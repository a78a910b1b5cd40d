//! A small HTTP/1.1 client that pipelines POST requests on one keep-alive connection, so
//! one endpoint's events are not limited to one round trip each.
//!
//! Why its own client: hyper (under reqwest) does not pipeline, on purpose
//! (hyperium/hyper#2596), and the sans-IO HTTP/1.1 crates that do pipeline only do so for
//! idempotent methods, as RFC 9112 §9.3.2 advises. A hook POST is made idempotent by the
//! receiver: every attempt of an event carries the same `webhook-id`.
//!
//! [`PipelinedClient::run`] sends a run of requests in order. Up to a window of them are
//! written before the first response is read; the server answers in order (RFC 9112
//! §9.3.2), so the n-th response is the n-th request's. Responses are read as they come:
//! - a 2xx settles its request (the caller is told the settled prefix as it grows);
//! - the first non-2xx, or a connection error or timeout, ends the run there: the
//!   requests before it are settled, it and every request after it are not (the caller
//!   sends them again, after its backoff; the server may have taken some of those behind
//!   it, which is why an attempt must be safe to repeat);
//! - a 2xx with `Connection: close` settles its request; the requests behind it were not
//!   answered (a server that closes does not process them) and are sent again at once on
//!   a new connection.
//!
//! The window opens like TCP's slow start: it starts at one request and grows by one per
//! 2xx up to [`ClientOptions::window`]; any failure shuts it back to one. So a server that
//! is down or refusing is probed with one request at a time, and while it keeps refusing
//! no request waits behind the refused one. The window is refilled once a quarter of it
//! is free, so one write carries several requests even when answers come one at a time.
//!
//! A server that closes the connection after its first response (or answers HTTP/1.0) is
//! sent one request at a time; pipelining resumes if a later connection carries two
//! responses without closing. A reused idle connection that turns out closed before it
//! answered anything is replaced once, at once (the server's keep-alive timeout).
//!
//! Timeouts: connecting (TCP and TLS) must finish within `connect_timeout`; each response
//! must arrive within `response_timeout` of its request being sent or of the previous
//! response, whichever is later. Redirects are not followed: a 3xx is a non-2xx.
//!
//! Responses are parsed with `httparse` by [`ResponseParser`] (sans-IO: bytes in,
//! responses out), bodies are read and dropped (`Content-Length`, chunked, or to the end
//! of the connection); 1xx interim responses are skipped.

use std::future::{poll_fn, Future as _};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most response header fields accepted.
const MAX_HEADERS: usize = 64;
/// How much one read takes from the connection.
const READ_CHUNK: usize = 16 * 1024;

/// How a [`PipelinedClient`] connects and how far it pipelines.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The most requests in flight on the connection (1: one at a time).
    pub window: usize,
    /// How long connecting (TCP, then TLS) may take.
    pub connect_timeout: Duration,
    /// How long each response may take (see the module documentation).
    pub response_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// TLS settings for `https://` URLs; `None`: the platform's verifier and roots, as
    /// reqwest uses them.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why a client cannot be made for a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse, or is not `http`/`https` with a host.
    #[error("{url:?} is not a usable http(s) URL: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings could not be built.
    #[error("TLS settings for {url:?}: {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Why a run stopped before every request was answered 2xx.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Connecting failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {addr}: timed out after {after:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// Reading or writing failed.
    #[error("connection to {addr}: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// The server closed the connection with requests unanswered.
    #[error("{addr} closed the connection with {unanswered} request(s) unanswered")]
    Closed {
        /// `host:port`.
        addr: String,
        /// Requests in flight.
        unanswered: usize,
    },
    /// A response did not come in time.
    #[error("no response from {addr} within {after:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// The server's bytes are not a valid HTTP/1.1 response.
    #[error("bad response from {addr}: {error}")]
    Protocol {
        /// `host:port`.
        addr: String,
        /// What was wrong.
        error: ProtocolError,
    },
    /// The caller could not build the request.
    #[error("{0}")]
    Request(String),
}

/// A malformed response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// httparse refused the status line or headers.
    #[error("response head: {0}")]
    Head(httparse::Error),
    /// The head is longer than the limit.
    #[error("response head longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// `Content-Length` is not one decimal number.
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
    /// A chunk size line or a chunk's end is malformed.
    #[error("bad chunked body")]
    Chunked,
    /// The server switched protocols without being asked to.
    #[error("unexpected 101 Switching Protocols")]
    SwitchingProtocols,
    /// A response came with no request waiting for it.
    #[error("a response with no request outstanding")]
    Unsolicited,
}

/// One request of a run: its own headers and body (the client adds `Host`,
/// `User-Agent`, `Authorization` from the URL's user info, and `Content-Length`).
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// Header names and values (no CR, LF or NUL in either).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// Requests answered 2xx, from the first.
    pub delivered: usize,
    /// What stopped the run at request `delivered` (`None`: every request was answered
    /// 2xx).
    pub stop: Option<Stop>,
}

/// What stopped a run.
#[derive(Debug)]
pub enum Stop {
    /// The server answered this non-2xx status.
    Status(u16),
    /// No answer: the connection failed, timed out, or the request could not be built.
    Failed(TransportError),
}

/// A parsed final response: what the client needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The server closes the connection after it (`Connection: close`, HTTP/1.0 without
    /// keep-alive, or a body that ends with the connection).
    pub close: bool,
    /// The server speaks HTTP/1.0.
    pub http10: bool,
}

/// Where requests go, from the URL.
#[derive(Debug, Clone)]
struct Target {
    tls: bool,
    /// The host to connect to (IPv6 without brackets).
    host: String,
    port: u16,
    /// `host[:port]` for logs and errors.
    addr: String,
    /// The head of every request, up to the per-request headers.
    head: Vec<u8>,
}

/// One connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    fn poll_read(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }

    fn poll_write(
        &mut self,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, data),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
}

/// What one wait on the connection brought.
enum IoEvent {
    /// Bytes were read into the read buffer.
    Read,
    /// The server closed its side.
    Eof,
    /// The head request's response is overdue.
    Timeout,
}

/// An HTTP/1.1 client for one URL that pipelines POSTs on one keep-alive connection.
pub struct PipelinedClient {
    target: Target,
    options: ClientOptions,
    tls: Option<tokio_rustls::TlsConnector>,
    conn: Option<Conn>,
    /// The current window (slow start: 1 after a failure, +1 per 2xx).
    cwnd: usize,
    /// One request at a time: the server closes after each response or speaks HTTP/1.0.
    single: bool,
    /// Final responses read on the current connection.
    answered_on_conn: u64,
    wbuf: BytesMut,
    rbuf: BytesMut,
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for PipelinedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinedClient")
            .field("addr", &self.target.addr)
            .field("window", &self.options.window)
            .field("cwnd", &self.cwnd)
            .field("single", &self.single)
            .finish_non_exhaustive()
    }
}

/// The platform-verifier TLS settings, built once per process (loading the system roots
/// is not free).
fn default_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = rustls::crypto::CryptoProvider::get_default()
                .cloned()
                .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| e.to_string())?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// Decodes `%XX` escapes (URL user info), leaving malformed ones as they are.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

impl Target {
    fn parse(url: &str, user_agent: &str) -> Result<Target, ClientError> {
        let bad = |reason: String| ClientError::Url {
            url: url.to_string(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("scheme {other} is not http or https"))),
        };
        // `host_str` keeps an IPv6 address's brackets; connecting takes it without.
        let host_str = parsed.host_str().unwrap_or_default();
        if host_str.is_empty() {
            return Err(bad("no host".into()));
        }
        let host = host_str
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host_str)
            .to_string();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| bad("no port".into()))?;
        // `port` is None for the scheme's default.
        let authority = match parsed.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        let mut target = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head =
            format!("POST {target} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: {user_agent}\r\n");
        // As reqwest does: user info in the URL becomes basic authentication.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            use base64::Engine as _;
            let mut creds = percent_decode(parsed.username());
            creds.push(b':');
            creds.extend(percent_decode(parsed.password().unwrap_or_default()));
            head.push_str("authorization: Basic ");
            head.push_str(&base64::engine::general_purpose::STANDARD.encode(creds));
            head.push_str("\r\n");
        }
        Ok(Target {
            tls,
            addr: authority,
            host,
            port,
            head: head.into_bytes(),
        })
    }

    /// Appends `request` to `out`.
    fn encode(&self, request: &OutgoingRequest, out: &mut BytesMut) -> Result<(), TransportError> {
        let clean = |s: &str| !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
        out.extend_from_slice(&self.head);
        for (name, value) in &request.headers {
            if !clean(name) || !clean(value) {
                return Err(TransportError::Request(format!(
                    "header {name:?} has a CR, LF or NUL"
                )));
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(request.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&request.body);
        Ok(())
    }
}

impl PipelinedClient {
    /// A client for `url` (no connection is made until the first run).
    pub fn new(url: &str, options: ClientOptions) -> Result<PipelinedClient, ClientError> {
        let target = Target::parse(url, &options.user_agent)?;
        let tls = if target.tls {
            let config = match &options.tls {
                Some(config) => config.clone(),
                None => default_tls().map_err(|reason| ClientError::Tls {
                    url: url.to_string(),
                    reason,
                })?,
            };
            Some(tokio_rustls::TlsConnector::from(config))
        } else {
            None
        };
        Ok(PipelinedClient {
            target,
            options: ClientOptions {
                window: options.window.max(1),
                ..options
            },
            tls,
            conn: None,
            cwnd: 1,
            single: false,
            answered_on_conn: 0,
            wbuf: BytesMut::with_capacity(64 * 1024),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// How many requests the next run may have in flight at first.
    pub fn window(&self) -> usize {
        if self.single {
            1
        } else {
            self.cwnd
        }
    }

    async fn connect(&self) -> Result<Conn, TransportError> {
        let addr = &self.target.addr;
        let connecting = async {
            let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
                .await
                .map_err(|source| TransportError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            // Requests go out as soon as they are written; the window batches them.
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => Ok(Conn::Plain(tcp)),
                Some(connector) => {
                    let name = ServerName::try_from(self.target.host.clone()).map_err(|e| {
                        TransportError::Tls {
                            addr: addr.clone(),
                            source: io::Error::new(io::ErrorKind::InvalidInput, e),
                        }
                    })?;
                    let tls = connector.connect(name, tcp).await.map_err(|source| {
                        TransportError::Tls {
                            addr: addr.clone(),
                            source,
                        }
                    })?;
                    Ok(Conn::Tls(Box::new(tls)))
                }
            }
        };
        tokio::time::timeout(self.options.connect_timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::ConnectTimeout {
                    addr: addr.clone(),
                    after: self.options.connect_timeout,
                })
            })
    }

    /// A failure: the connection is dropped and the window shuts to one request.
    fn failed(&mut self, delivered: usize, stop: Stop) -> RunOutcome {
        self.conn = None;
        self.cwnd = 1;
        RunOutcome {
            delivered,
            stop: Some(stop),
        }
    }

    /// Notes what a final response says about the connection.
    fn note_keep_alive(&mut self, response: &Response) {
        if response.http10 || (response.close && self.answered_on_conn == 1) {
            self.single = true;
        } else if !response.close && self.answered_on_conn >= 2 {
            self.single = false;
        }
    }

    /// Sends requests `0..count` in order, pipelined; `prepare(i)` builds request `i`
    /// (called again for a request that has to be re-sent), `settled(n)` is told each time
    /// the prefix of requests answered 2xx grows to `n`.
    pub async fn run(
        &mut self,
        count: usize,
        mut prepare: impl FnMut(usize) -> Result<OutgoingRequest, String>,
        mut settled: impl FnMut(usize),
    ) -> RunOutcome {
        let timeout = self.options.response_timeout;
        let mut done = 0;
        let mut replaced_stale = false;
        'connection: loop {
            if done == count {
                return RunOutcome {
                    delivered: done,
                    stop: None,
                };
            }
            let (mut conn, reused) = match self.conn.take() {
                Some(conn) => (conn, true),
                None => match self.connect().await {
                    Ok(conn) => {
                        self.answered_on_conn = 0;
                        (conn, false)
                    }
                    Err(e) => return self.failed(done, Stop::Failed(e)),
                },
            };
            let mut next = done;
            let mut in_flight = 0usize;
            let mut answered_here = 0usize;
            let mut unprepared: Option<TransportError> = None;
            let mut parser = ResponseParser::default();
            let mut need_flush = false;
            self.wbuf.clear();
            self.rbuf.clear();
            let sleep = tokio::time::sleep(timeout);
            tokio::pin!(sleep);
            loop {
                let window = self.window();
                let idle = in_flight == 0;
                // Refill in batches of a quarter window (or what is left), so one write
                // carries several requests even when answers come one at a time.
                let batch = (window / 4).max(1).min(count - next);
                let refill = window - in_flight >= batch;
                while refill && in_flight < window && next < count && unprepared.is_none() {
                    let encoded = prepare(next)
                        .map_err(TransportError::Request)
                        .and_then(|request| self.target.encode(&request, &mut self.wbuf));
                    match encoded {
                        Ok(()) => {
                            in_flight += 1;
                            next += 1;
                            need_flush = true;
                        }
                        Err(e) => unprepared = Some(e),
                    }
                }
                if in_flight == 0 {
                    // Everything sent was answered; the connection stays for the next run.
                    self.conn = Some(conn);
                    return match unprepared {
                        Some(e) => RunOutcome {
                            delivered: done,
                            stop: Some(Stop::Failed(e)),
                        },
                        None => RunOutcome {
                            delivered: done,
                            stop: None,
                        },
                    };
                }
                if idle {
                    sleep.as_mut().reset(Instant::now() + timeout);
                }
                let event = {
                    let (wbuf, rbuf, scratch) =
                        (&mut self.wbuf, &mut self.rbuf, &mut self.scratch[..]);
                    let conn = &mut conn;
                    let sleep = sleep.as_mut();
                    let need_flush = &mut need_flush;
                    wait(conn, wbuf, need_flush, rbuf, scratch, sleep).await
                };
                let addr = &self.target.addr;
                let stale = reused && answered_here == 0 && !replaced_stale;
                match event {
                    Err(source) if stale => {
                        tracing::debug!(addr = %addr, "idle connection was closed ({source}); reconnecting");
                        replaced_stale = true;
                        continue 'connection;
                    }
                    Err(source) => {
                        let e = TransportError::Io {
                            addr: addr.clone(),
                            source,
                        };
                        return self.failed(done, Stop::Failed(e));
                    }
                    Ok(IoEvent::Timeout) => {
                        let e = TransportError::Timeout {
                            addr: addr.clone(),
                            after: timeout,
                        };
                        return self.failed(done, Stop::Failed(e));
                    }
                    Ok(IoEvent::Eof) => {
                        if let Some(response) = parser.finish() {
                            // A body that ran to the end of the connection.
                            self.answered_on_conn += 1;
                            self.note_keep_alive(&response);
                            if !(200..300).contains(&response.status) {
                                return self.failed(done, Stop::Status(response.status));
                            }
                            done += 1;
                            self.cwnd = (self.cwnd + 1).min(self.options.window);
                            settled(done);
                            continue 'connection;
                        }
                        if stale {
                            tracing::debug!(addr = %addr, "idle connection was closed; reconnecting");
                            replaced_stale = true;
                            continue 'connection;
                        }
                        let e = TransportError::Closed {
                            addr: addr.clone(),
                            unanswered: in_flight,
                        };
                        return self.failed(done, Stop::Failed(e));
                    }
                    Ok(IoEvent::Read) => {}
                }
                let before = done;
                loop {
                    let response = match parser.parse(&mut self.rbuf) {
                        Ok(Some(response)) => response,
                        Ok(None) => break,
                        Err(error) => {
                            if done > before {
                                settled(done);
                            }
                            let e = TransportError::Protocol {
                                addr: self.target.addr.clone(),
                                error,
                            };
                            return self.failed(done, Stop::Failed(e));
                        }
                    };
                    if in_flight == 0 {
                        if done > before {
                            settled(done);
                        }
                        let e = TransportError::Protocol {
                            addr: self.target.addr.clone(),
                            error: ProtocolError::Unsolicited,
                        };
                        return self.failed(done, Stop::Failed(e));
                    }
                    in_flight -= 1;
                    answered_here += 1;
                    self.answered_on_conn += 1;
                    self.note_keep_alive(&response);
                    sleep.as_mut().reset(Instant::now() + timeout);
                    if !(200..300).contains(&response.status) {
                        if done > before {
                            settled(done);
                        }
                        let status = response.status;
                        if response.close || in_flight > 0 {
                            return self.failed(done, Stop::Status(status));
                        }
                        // Nothing else in flight: the connection can carry the retry.
                        self.cwnd = 1;
                        self.conn = Some(conn);
                        return RunOutcome {
                            delivered: done,
                            stop: Some(Stop::Status(status)),
                        };
                    }
                    done += 1;
                    self.cwnd = (self.cwnd + 1).min(self.options.window);
                    if response.close {
                        // The requests behind it were not taken: send them again at once.
                        settled(done);
                        continue 'connection;
                    }
                }
                if done > before {
                    settled(done);
                }
            }
        }
    }
}

/// Writes what is buffered and waits for response bytes, the server closing, or the
/// head's response deadline.
async fn wait(
    conn: &mut Conn,
    wbuf: &mut BytesMut,
    need_flush: &mut bool,
    rbuf: &mut BytesMut,
    scratch: &mut [u8],
    mut sleep: Pin<&mut tokio::time::Sleep>,
) -> io::Result<IoEvent> {
    poll_fn(|cx| {
        while !wbuf.is_empty() {
            match conn.poll_write(cx, wbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => wbuf.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if wbuf.is_empty() && *need_flush {
            match conn.poll_flush(cx) {
                Poll::Ready(Ok(())) => *need_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        let mut read = ReadBuf::new(scratch);
        match conn.poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                return Poll::Ready(Ok(IoEvent::Eof))
            }
            Poll::Ready(Ok(())) => {
                rbuf.extend_from_slice(read.filled());
                return Poll::Ready(Ok(IoEvent::Read));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(IoEvent::Timeout));
        }
        Poll::Pending
    })
    .await
}

/// How a response's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Where the parser is within a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPhase {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ParseState {
    #[default]
    Head,
    Length(Response, u64),
    Chunked(Response, ChunkPhase),
    UntilClose(Response),
}

/// A sans-IO HTTP/1.1 response reader: feed it the connection's bytes, take complete
/// responses out (bodies are consumed and dropped; 1xx interim responses are skipped).
#[derive(Debug, Default)]
pub struct ResponseParser {
    state: ParseState,
}

/// The comma-separated tokens of every `name` header, lowercased.
fn tokens(headers: &[httparse::Header<'_>], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        for token in String::from_utf8_lossy(header.value).split(',') {
            let token = token.trim();
            if !token.is_empty() {
                out.push(token.to_ascii_lowercase());
            }
        }
    }
    out
}

impl ResponseParser {
    /// Consumes bytes from `buf`; returns the next complete response, or `None` when
    /// `buf` holds no complete one yet (what was consumed is remembered).
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, ProtocolError> {
        loop {
            match self.state {
                ParseState::Head => {
                    let Some((response, framing, used)) = parse_head(buf)? else {
                        return Ok(None);
                    };
                    buf.advance(used);
                    if (100..200).contains(&response.status) {
                        if response.status == 101 {
                            return Err(ProtocolError::SwitchingProtocols);
                        }
                        continue;
                    }
                    match framing {
                        Framing::None | Framing::Length(0) => return Ok(Some(response)),
                        Framing::Length(n) => self.state = ParseState::Length(response, n),
                        Framing::Chunked => {
                            self.state = ParseState::Chunked(response, ChunkPhase::Size)
                        }
                        Framing::UntilClose => self.state = ParseState::UntilClose(response),
                    }
                }
                ParseState::Length(response, remaining) => {
                    let take = remaining.min(buf.len() as u64);
                    buf.advance(take as usize);
                    if take == remaining {
                        self.state = ParseState::Head;
                        return Ok(Some(response));
                    }
                    self.state = ParseState::Length(response, remaining - take);
                    return Ok(None);
                }
                ParseState::Chunked(response, phase) => match phase {
                    ChunkPhase::Size => match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            let next = if size == 0 {
                                ChunkPhase::Trailers
                            } else {
                                ChunkPhase::Data(size)
                            };
                            self.state = ParseState::Chunked(response, next);
                        }
                        Ok(httparse::Status::Partial) if buf.len() < 1024 => return Ok(None),
                        _ => return Err(ProtocolError::Chunked),
                    },
                    ChunkPhase::Data(remaining) => {
                        let take = remaining.min(buf.len() as u64);
                        buf.advance(take as usize);
                        let next = if take == remaining {
                            ChunkPhase::DataEnd
                        } else {
                            ChunkPhase::Data(remaining - take)
                        };
                        self.state = ParseState::Chunked(response, next);
                        if take < remaining {
                            return Ok(None);
                        }
                    }
                    ChunkPhase::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(None);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(ProtocolError::Chunked);
                        }
                        buf.advance(2);
                        self.state = ParseState::Chunked(response, ChunkPhase::Size);
                    }
                    ChunkPhase::Trailers => {
                        let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                        match httparse::parse_headers(buf, &mut trailers) {
                            Ok(httparse::Status::Complete((used, _))) => {
                                buf.advance(used);
                                self.state = ParseState::Head;
                                return Ok(Some(response));
                            }
                            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => {
                                return Ok(None)
                            }
                            Ok(httparse::Status::Partial) => {
                                return Err(ProtocolError::HeadTooLarge)
                            }
                            Err(e) => return Err(ProtocolError::Head(e)),
                        }
                    }
                },
                ParseState::UntilClose(_) => {
                    buf.clear();
                    return Ok(None);
                }
            }
        }
    }

    /// The connection ended: the response whose body runs to the end, if one was being
    /// read.
    pub fn finish(&mut self) -> Option<Response> {
        match std::mem::take(&mut self.state) {
            ParseState::UntilClose(response) => Some(response),
            _ => None,
        }
    }
}

/// Parses a response head at the start of `buf`: the response, its body's framing, and
/// the head's length; `None` if the head is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<(Response, Framing, usize)>, ProtocolError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut headers);
    let used = match head.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(ProtocolError::HeadTooLarge),
        Err(e) => return Err(ProtocolError::Head(e)),
    };
    // A complete parse sets the code and version.
    let status = head.code.unwrap_or(0);
    let http10 = head.version == Some(0);
    let headers = &*head.headers;
    let connection = tokens(headers, "connection");
    let mut close = connection.iter().any(|t| t == "close");
    if http10 && !connection.iter().any(|t| t == "keep-alive") {
        close = true;
    }
    let codings = tokens(headers, "transfer-encoding");
    let lengths: Vec<&[u8]> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value)
        .collect();
    // RFC 9112 §6.3.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if !codings.is_empty() {
        if !lengths.is_empty() {
            close = true;
        }
        if codings.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            close = true;
            Framing::UntilClose
        }
    } else if let Some(first) = lengths.first() {
        let parse = |v: &[u8]| -> Option<u64> {
            let s = std::str::from_utf8(v).ok()?.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let n = parse(first)
            .ok_or_else(|| ProtocolError::ContentLength(String::from_utf8_lossy(first).into()))?;
        if lengths.iter().any(|v| parse(v) != Some(n)) {
            return Err(ProtocolError::ContentLength(
                lengths
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some((
        Response {
            status,
            close,
            http10,
        },
        framing,
        used,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(parser: &mut ResponseParser, bytes: &[u8]) -> Vec<Response> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(r) = parser.parse(&mut buf).expect("valid") {
            out.push(r);
        }
        out
    }

    fn ok(status: u16) -> Response {
        Response {
            status,
            close: false,
            http10: false,
        }
    }

    #[test]
    fn pipelined_responses_in_one_read_come_out_in_order() {
        let mut p = ResponseParser::default();
        let got = feed(
            &mut p,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n\
              HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
        );
        assert_eq!(got, [ok(200), ok(204), ok(500)]);
    }

    #[test]
    fn a_response_split_anywhere_is_the_same_response() {
        let whole: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\
            Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz";
        for split in 0..whole.len() {
            let mut p = ResponseParser::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&whole[..split], &whole[split..]] {
                buf.extend_from_slice(part);
                while let Some(r) = p.parse(&mut buf).expect("valid") {
                    got.push(r);
                }
            }
            assert_eq!(got, [ok(201), ok(200)], "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn closing_responses_are_recognised() {
        let mut p = ResponseParser::default();
        let got = feed(
            &mut p,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(got[0].close);
        let got = feed(&mut p, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(got[0].close && got[0].http10);
        let got = feed(
            &mut p,
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!got[0].close && got[0].http10);
        // No length: the body runs to the end of the connection.
        assert!(feed(&mut p, b"HTTP/1.1 200 OK\r\n\r\nsome body").is_empty());
        assert_eq!(
            p.finish(),
            Some(Response {
                status: 200,
                close: true,
                http10: false
            })
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        let bad = |bytes: &[u8]| {
            let mut p = ResponseParser::default();
            let mut buf = BytesMut::from(bytes);
            loop {
                match p.parse(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => return None,
                    Err(e) => return Some(e),
                }
            }
        };
        assert!(matches!(
            bad(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Some(ProtocolError::Head(_))
        ));
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(ProtocolError::ContentLength("1, 2".into()))
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Some(ProtocolError::ContentLength("-1".into()))
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Some(ProtocolError::Chunked)
        );
        assert_eq!(
            bad(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Some(ProtocolError::SwitchingProtocols)
        );
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 1));
        assert_eq!(bad(&huge), Some(ProtocolError::HeadTooLarge));
    }

    #[test]
    fn requests_carry_the_url_and_user_info() {
        let target = Target::parse("http://u%40x:p%3Aw@example.com:8080/h/ook?a=1#frag", "ua/1")
            .expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("example.com", 8080));
        let mut out = BytesMut::new();
        target
            .encode(
                &OutgoingRequest {
                    headers: vec![("webhook-id", "m1".into())],
                    body: Bytes::from_static(b"{}"),
                },
                &mut out,
            )
            .unwrap();
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("u@x:p:w");
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            format!(
                "POST /h/ook?a=1 HTTP/1.1\r\nhost: example.com:8080\r\nuser-agent: ua/1\r\n\
                 authorization: Basic {auth}\r\nwebhook-id: m1\r\ncontent-length: 2\r\n\r\n{{}}"
            )
        );
        let v6 = Target::parse("https://[::1]/x", "ua").unwrap();
        assert_eq!((v6.host.as_str(), v6.port, v6.tls), ("::1", 443, true));
        assert!(String::from_utf8_lossy(&v6.head).contains("host: [::1]\r\n"));
        let injected = OutgoingRequest {
            headers: vec![("x", "a\r\nb: c".into())],
            body: Bytes::new(),
        };
        assert!(v6.encode(&injected, &mut out).is_err());
    }
}
