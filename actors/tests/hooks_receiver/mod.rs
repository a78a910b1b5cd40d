//! A real hook receiver for tests: an HTTP/1.1 server on loopback (keep-alive and
//! pipelining, one thread per connection) that verifies every request's signature, decodes protobuf or
//! canonical proto3 JSON bodies by `Content-Type`, answers the status the test sets, and
//! records what it saw.
//!
//! Signatures: JSON bodies are verified with the public Standard Webhooks library
//! (`standardwebhooks`). That library (like the Python and JavaScript ones) only takes
//! UTF-8 payloads, so binary protobuf bodies are verified by the specification's
//! algorithm written out here with an independent HMAC-SHA256 (`hmac-sha256`, the crate
//! the library itself uses): `v1,` + base64(HMAC(key, "{id}.{timestamp}.{raw body}")),
//! with the library's 5-minute timestamp tolerance. Shared by the actor tests, the end-to-end tests in `tests/` and the benchmark
//! (included with `#[path]`).
#![allow(dead_code)] // Each includer uses a different subset.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recnode_proto::hook::v1::HookEvent;
use recnode_proto::Message as _;

/// One request the receiver accepted (answered 2xx).
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// The decoded body.
    pub event: HookEvent,
    /// `protobuf` or `json`.
    pub format: &'static str,
    /// The request path.
    pub path: String,
    /// When it arrived.
    pub at: Instant,
}

/// A callback with each accepted event's seq and arrival time.
type OnEvent = Box<dyn FnMut(u64, Instant) + Send>;

#[derive(Default)]
struct Seen {
    accepted: Vec<Received>,
    /// Requests answered with a non-2xx status.
    refused: u64,
    /// Requests whose signature or body did not verify, with why.
    invalid: Vec<String>,
}

struct Shared {
    webhook: standardwebhooks::Webhook,
    key: Vec<u8>,
    status: AtomicU16,
    seen: Mutex<Seen>,
    stop: AtomicBool,
    /// Record decoded events (off for the benchmark's hot path, which only counts).
    keep: AtomicBool,
    /// Write each answer as soon as it is made, even with pipelined requests waiting.
    flush_each: AtomicBool,
    /// Called with (seq, arrival) for every accepted request.
    on_event: Mutex<Option<OnEvent>>,
}

/// A running receiver; stops accepting when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver that verifies signatures made with `secret` (`whsec_…`).
    pub fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            webhook: standardwebhooks::Webhook::new(secret).expect("a valid whsec_ secret"),
            key: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
                    .expect("base64 secret")
            },
            status: AtomicU16::new(200),
            seen: Mutex::new(Seen::default()),
            stop: AtomicBool::new(false),
            keep: AtomicBool::new(true),
            flush_each: AtomicBool::new(false),
            on_event: Mutex::new(None),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = accept.clone();
                std::thread::spawn(move || serve(stream, conn));
            }
        });
        Receiver { addr, shared }
    }

    /// The URL of `path` on this receiver (`/hooks`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every following request with `status` (200 by default).
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Stops keeping decoded events (the benchmark counts through `on_event`).
    pub fn keep_events(&self, keep: bool) {
        self.shared.keep.store(keep, Ordering::SeqCst);
    }

    /// Writes each answer at once, one write per answer, like servers that flush every
    /// response (Go's net/http, hyper by default); by default, answers to pipelined
    /// requests go out together once every request read so far is answered.
    pub fn flush_each_answer(&self, each: bool) {
        self.shared.flush_each.store(each, Ordering::SeqCst);
    }

    /// Calls `f(seq, arrival)` for every accepted event.
    pub fn on_event(&self, f: impl FnMut(u64, Instant) + Send + 'static) {
        *self.shared.on_event.lock().unwrap() = Some(Box::new(f));
    }

    /// Every accepted event so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.seen.lock().unwrap().accepted.clone()
    }

    /// Accepted events that came to `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Requests answered with a non-2xx status.
    pub fn refused(&self) -> u64 {
        self.shared.seen.lock().unwrap().refused
    }

    /// Requests that failed signature verification or decoding.
    pub fn invalid(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().invalid.clone()
    }

    /// Waits (polling, with a timeout) until `path` has accepted `count` events.
    pub fn wait_for(&self, path: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received_at(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {count} events at {path}; got {}: {:?}",
                got.len(),
                got.iter()
                    .map(|r| (r.event.seq, r.event.event_type()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// One parsed request.
struct Request {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = http::HeaderMap::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        }
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).ok()?,
            http::HeaderValue::from_str(value).ok()?,
        );
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body,
    })
}

fn header<'a>(request: &'a Request, name: &str) -> Result<&'a str, String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("missing header {name}"))
}

/// The Standard Webhooks check, for bodies the library cannot take (binary).
fn verify_binary(key: &[u8], request: &Request) -> Result<(), String> {
    use base64::Engine as _;
    let id = header(request, "webhook-id")?;
    let ts: i64 = header(request, "webhook-timestamp")?
        .parse()
        .map_err(|_| "bad webhook-timestamp".to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - ts).abs() > 5 * 60 {
        return Err(format!("timestamp {ts} is too far from now ({now})"));
    }
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256::HMAC::mac(&signed, key));
    let given = header(request, "webhook-signature")?;
    given
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .any(|(version, sig)| version == "v1" && sig == expected)
        .then_some(())
        .ok_or_else(|| format!("signature mismatch: {given}"))
}

fn verify(shared: &Shared, request: &Request) -> Result<(), String> {
    match header(request, "content-type")? {
        "application/json" => shared
            .webhook
            .verify(&request.body, &request.headers)
            .map_err(|e| format!("standardwebhooks: {e}")),
        _ => verify_binary(&shared.key, request),
    }
}

fn decode(request: &Request) -> Result<(HookEvent, &'static str), String> {
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match content_type {
        "application/x-protobuf" => HookEvent::decode(request.body.as_slice())
            .map(|e| (e, "protobuf"))
            .map_err(|e| format!("protobuf: {e}")),
        "application/json" => serde_json::from_slice::<HookEvent>(&request.body)
            .map(|e| (e, "json"))
            .map_err(|e| format!("json: {e}")),
        other => Err(format!("unexpected content-type {other:?}")),
    }
}

fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    // Answers to pipelined requests go out together, once the requests read so far are
    // answered, unless `flush_each_answer` is set.
    let mut writer = std::io::BufWriter::new(writer);
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let at = Instant::now();
        let status = shared.status.load(Ordering::SeqCst);
        let verdict = verify(&shared, &request).and_then(|()| decode(&request));
        let answer = match verdict {
            Err(why) => {
                shared.seen.lock().unwrap().invalid.push(why);
                400
            }
            Ok(_) if !(200..300).contains(&status) => {
                shared.seen.lock().unwrap().refused += 1;
                status
            }
            Ok((event, format)) => {
                if let Some(f) = shared.on_event.lock().unwrap().as_mut() {
                    f(event.seq, at);
                }
                if shared.keep.load(Ordering::SeqCst) {
                    let id = request
                        .headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    shared.seen.lock().unwrap().accepted.push(Received {
                        id,
                        event,
                        format,
                        path: request.path,
                        at,
                    });
                }
                status
            }
        };
        let response = format!("HTTP/1.1 {answer} X\r\nContent-Length: 0\r\n\r\n");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
        let flush = reader.buffer().is_empty() || shared.flush_each.load(Ordering::Relaxed);
        if flush && writer.flush().is_err() {
            return;
        }
    }
}
