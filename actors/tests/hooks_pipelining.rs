//! Pipelined hook deliveries against scripted HTTP/1.1 servers on loopback: a window of
//! requests goes out on one connection, and whatever the server does mid-window (answers
//! 500 or 410, closes the connection, answers `Connection: close`, never answers) every
//! event still arrives, the last copy of each in seq order, every copy of an event with
//! the event's `webhook-id`. Also: a window of 1 still sends one request at a time, and
//! the client pipelines over TLS.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recnode_actors::hooks::events::RecordRef;
use recnode_actors::hooks::pipelined_client::{ClientOptions, OutgoingRequest, PipelinedClient};
use recnode_actors::hooks::{
    start_hooks, ConnectorMsg, EndpointSpec, HookFormat, HookSettings, Hooks,
};
use recnode_media::TrackKind;
use recnode_proto::hook::v1::HookEvent;
use recnode_proto::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);

/// What the scripted server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Answer this status.
    Answer(u16),
    /// Answer this status with `Connection: close`, then close.
    AnswerAndClose(u16),
    /// Answer this status, but only once another request is queued behind it (so the
    /// answer is certainly mid-window).
    AnswerWithOneBehind(u16),
    /// Close the connection without answering, once another request is queued behind.
    DropWithOneBehind,
    /// Never answer (the connection stays open).
    Ignore,
}

/// One request the server read.
#[derive(Debug, Clone)]
struct Seen {
    conn: usize,
    seq: u64,
    id: String,
    /// The status answered (`None`: not answered).
    answered: Option<u16>,
}

/// Chooses the action for a request: (connection number, its index on the connection,
/// seq, how many times this seq was seen before).
type Policy = Box<dyn FnMut(usize, usize, u64, usize) -> Action + Send>;

#[derive(Default)]
struct Log {
    requests: Vec<Seen>,
    /// The most requests read and not yet answered at once on a connection.
    max_outstanding: usize,
    connections: usize,
}

struct Scripted {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Scripted {
    async fn start(policy: Policy, tls: Option<tokio_rustls::TlsAcceptor>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let policy = Arc::new(Mutex::new(policy));
        let shared = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let conn = {
                    let mut log = shared.lock().unwrap();
                    log.connections += 1;
                    log.connections - 1
                };
                let (log, policy, tls) = (shared.clone(), policy.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, conn, log, policy).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, conn, log, policy).await;
                            }
                        }
                    }
                });
            }
        });
        Scripted { addr, log }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/hooks", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().requests.clone()
    }

    fn max_outstanding(&self) -> usize {
        self.log.lock().unwrap().max_outstanding
    }

    fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }

    /// The seqs answered 2xx, in the order they were answered.
    fn accepted(&self) -> Vec<u64> {
        self.requests()
            .iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .map(|r| r.seq)
            .collect()
    }
}

/// Parses one request at the start of `buf`: (its length, webhook-id, seq from the
/// protobuf body).
fn parse_request(buf: &[u8]) -> Option<(usize, String, u64)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = req.parse(buf).expect("a valid request") else {
        return None;
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    let id = header("webhook-id").unwrap_or_default();
    if buf.len() < head + length {
        return None;
    }
    let event = HookEvent::decode(&buf[head..head + length]).expect("a protobuf HookEvent");
    Some((head + length, id, event.seq))
}

/// Serves one connection: reads what is available, then answers the requests read, in
/// order, as the policy says.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    conn: usize,
    log: Arc<Mutex<Log>>,
    policy: Arc<Mutex<Policy>>,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Requests read and not answered yet: (index in the log, action).
    let mut queued: VecDeque<(usize, Action)> = VecDeque::new();
    let mut on_conn = 0;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some((used, id, seq)) = parse_request(&buf) {
            buf.drain(..used);
            let mut log = log.lock().unwrap();
            let before = log.requests.iter().filter(|r| r.seq == seq).count();
            let action = (policy.lock().unwrap())(conn, on_conn, seq, before);
            on_conn += 1;
            log.requests.push(Seen {
                conn,
                seq,
                id,
                answered: None,
            });
            queued.push_back((log.requests.len() - 1, action));
            log.max_outstanding = log.max_outstanding.max(queued.len());
        }
        let mut out = Vec::new();
        while let Some(&(index, action)) = queued.front() {
            let behind = queued.len() > 1;
            let (status, close) = match action {
                Action::Answer(status) => (status, false),
                Action::AnswerAndClose(status) => (status, true),
                Action::AnswerWithOneBehind(_) | Action::DropWithOneBehind if !behind => break,
                Action::AnswerWithOneBehind(status) => (status, false),
                Action::DropWithOneBehind => {
                    let _ = stream.write_all(&out).await;
                    return;
                }
                Action::Ignore => break,
            };
            queued.pop_front();
            log.lock().unwrap().requests[index].answered = Some(status);
            let connection = if close { "connection: close\r\n" } else { "" };
            out.extend_from_slice(
                format!("HTTP/1.1 {status} X\r\n{connection}content-length: 2\r\n\r\nok")
                    .as_bytes(),
            );
            if close {
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn settings(url: String, window: usize) -> HookSettings {
    HookSettings {
        node: 7,
        node_alias: "edge-a".into(),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        pipeline_window: window,
        endpoints: vec![EndpointSpec {
            id: Some("ep".into()),
            url: Some(url),
            secret: Some(SECRET.into()),
            format: HookFormat::Protobuf,
            events: None,
        }],
        ..HookSettings::default()
    }
}

/// Starts the hooks and emits `n` events (seqs 1..=n), committed.
async fn emit(dir: &std::path::Path, settings: HookSettings, n: u32) -> Hooks {
    let hooks = start_hooks(settings, &dir.join("state.sqlite3"))
        .await
        .expect("hooks start");
    let rec = RecordRef {
        stream: "cam1".into(),
        app: "live".into(),
        record_id: "1700000000".into(),
        record_dir: "cam1/1700000000".into(),
        format: "dash".into(),
    };
    let pending: Vec<_> = (1..=n)
        .map(|i| {
            hooks.emitter.emit(rec.segment(
                "cam1/1700000000/v_seg_0001.m4s",
                TrackKind::Video,
                i,
                0,
                2000,
                10,
            ))
        })
        .collect();
    for p in pending {
        p.await.expect("committed");
    }
    hooks
}

/// At least once, in order: every seq in `1..=n` was answered 2xx; each seq's copies all
/// carry one id; and the last 2xx of each seq comes in seq order.
fn check_delivered(requests: &[Seen], n: u64) {
    let mut ids: BTreeMap<u64, &str> = BTreeMap::new();
    for r in requests {
        let id = ids.entry(r.seq).or_insert(&r.id);
        assert_eq!(*id, r.id, "a copy of seq {} has another id", r.seq);
    }
    let mut last_accepted: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, r) in requests.iter().enumerate() {
        if r.answered.is_some_and(|s| (200..300).contains(&s)) {
            last_accepted.insert(r.seq, i);
        }
    }
    assert_eq!(
        last_accepted.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "every event answered 2xx"
    );
    let positions: Vec<usize> = last_accepted.values().copied().collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the last 2xx of each event comes in seq order"
    );
}

async fn wait_delivered(hooks: &Hooks) {
    assert!(
        hooks.wait_delivered(WAIT).await,
        "the endpoint acknowledged everything"
    );
}

#[tokio::test]
async fn a_window_of_requests_is_in_flight_and_arrives_once_in_order() {
    let server = Scripted::start(Box::new(|_, _, _, _| Action::Answer(200)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 2000).await;
    wait_delivered(&hooks).await;
    assert_eq!(server.accepted(), (1..=2000).collect::<Vec<_>>());
    assert!(
        server.max_outstanding() > 1,
        "requests were pipelined (at most {} outstanding)",
        server.max_outstanding()
    );
    assert!(server.max_outstanding() <= 32, "the window is respected");
    assert_eq!(server.connections(), 1, "one keep-alive connection");
    hooks.stop().await;
}

#[tokio::test]
async fn a_500_mid_window_resends_from_that_event_with_the_same_ids() {
    let server = Scripted::start(
        Box::new(|_, _, seq, before| match (seq, before) {
            (50, 0) => Action::AnswerWithOneBehind(500),
            _ => Action::Answer(200),
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 200).await;
    wait_delivered(&hooks).await;
    let requests = server.requests();
    check_delivered(&requests, 200);
    let copies = |seq: u64| requests.iter().filter(|r| r.seq == seq).count();
    assert!((1..50).all(|seq| copies(seq) == 1), "events before it once");
    assert_eq!(copies(50), 2, "the refused event is sent again");
    // Events behind it went out before the refusal was read, and again after it.
    let refused = requests.iter().position(|r| r.seq == 50).unwrap();
    let again = requests.iter().rposition(|r| r.seq == 50).unwrap();
    assert_eq!(requests[refused + 1].seq, 51);
    assert!(requests[again + 1..].iter().any(|r| r.seq == 51));
    hooks.stop().await;
}

#[tokio::test]
async fn a_connection_closed_mid_window_loses_nothing() {
    let server = Scripted::start(
        Box::new(|conn, _, seq, _| match (conn, seq) {
            (0, 30) => Action::DropWithOneBehind,
            _ => Action::Answer(200),
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 200).await;
    wait_delivered(&hooks).await;
    let requests = server.requests();
    check_delivered(&requests, 200);
    // What the server never answered it never took: each event was taken once.
    assert_eq!(server.accepted(), (1..=200).collect::<Vec<_>>());
    assert!(requests.iter().any(|r| r.conn == 0 && r.seq > 30));
    assert_eq!(server.connections(), 2);
    hooks.stop().await;
}

#[tokio::test]
async fn a_server_that_closes_after_each_answer_gets_one_request_at_a_time() {
    let server = Scripted::start(Box::new(|_, _, _, _| Action::AnswerAndClose(200)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 50).await;
    wait_delivered(&hooks).await;
    let requests = server.requests();
    assert_eq!(server.accepted(), (1..=50).collect::<Vec<_>>());
    assert_eq!(requests.len(), 50, "nothing sent that was not answered");
    assert_eq!(server.max_outstanding(), 1);
    assert_eq!(server.connections(), 50);
    hooks.stop().await;
}

#[tokio::test]
async fn a_server_that_closes_every_tenth_answer_keeps_the_pipeline() {
    // nginx's `keepalive_requests`: a long-lived connection is closed now and then.
    let server = Scripted::start(
        Box::new(|_, on_conn, _, _| {
            if on_conn == 9 {
                Action::AnswerAndClose(200)
            } else {
                Action::Answer(200)
            }
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 500).await;
    wait_delivered(&hooks).await;
    check_delivered(&server.requests(), 500);
    assert_eq!(server.accepted(), (1..=500).collect::<Vec<_>>());
    assert_eq!(server.connections(), 50);
    assert!(server.max_outstanding() > 1, "still pipelined");
    hooks.stop().await;
}

#[tokio::test]
async fn a_response_that_never_comes_times_out_and_the_event_is_sent_again() {
    let server = Scripted::start(
        Box::new(|conn, _, seq, _| match (conn, seq) {
            (0, 20) => Action::Ignore,
            _ => Action::Answer(200),
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(server.url("http"), 32);
    s.request_timeout = Duration::from_millis(300);
    let hooks = emit(dir.path(), s, 100).await;
    wait_delivered(&hooks).await;
    let requests = server.requests();
    check_delivered(&requests, 100);
    assert_eq!(server.accepted(), (1..=100).collect::<Vec<_>>());
    assert_eq!(server.connections(), 2);
    hooks.stop().await;
}

#[tokio::test]
async fn a_410_mid_window_disables_the_endpoint_after_the_events_before_it() {
    let server = Scripted::start(
        Box::new(|_, _, seq, _| match seq {
            40 => Action::AnswerWithOneBehind(410),
            _ => Action::Answer(200),
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 32), 100).await;
    // True once the endpoint is disabled.
    wait_delivered(&hooks).await;
    let listed = ractor::call_t!(hooks.connector, ConnectorMsg::List, 5_000)
        .unwrap()
        .unwrap();
    assert!(!listed[0].enabled);
    assert!(listed[0]
        .disabled_reason
        .as_deref()
        .unwrap()
        .contains("410"));
    assert_eq!(
        listed[0].acked_seq, 39,
        "the events before the 410 are settled"
    );
    assert_eq!(&server.accepted()[..39], (1..=39).collect::<Vec<_>>());
    assert_eq!(
        server.requests().iter().filter(|r| r.seq == 40).count(),
        1,
        "the 410 is not retried"
    );
    hooks.stop().await;
}

#[tokio::test]
async fn a_window_of_one_sends_one_request_at_a_time() {
    let server = Scripted::start(
        Box::new(|_, _, seq, before| match (seq, before) {
            (50, 0) => Action::Answer(500),
            _ => Action::Answer(200),
        }),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = emit(dir.path(), settings(server.url("http"), 1), 100).await;
    wait_delivered(&hooks).await;
    let requests = server.requests();
    assert_eq!(server.max_outstanding(), 1);
    assert_eq!(server.accepted(), (1..=100).collect::<Vec<_>>());
    let seqs: Vec<u64> = requests.iter().map(|r| r.seq).collect();
    let mut want: Vec<u64> = (1..=100).collect();
    want.insert(50, 50);
    assert_eq!(seqs, want, "only the refused event is sent twice");
    hooks.stop().await;
}

#[tokio::test]
async fn the_client_pipelines_over_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server = Scripted::start(
        Box::new(|_, _, seq, before| match (seq, before) {
            (60, 0) => Action::AnswerWithOneBehind(503),
            _ => Action::Answer(200),
        }),
        Some(acceptor),
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut client = PipelinedClient::new(
        &server.url("https"),
        ClientOptions {
            window: 16,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            user_agent: "test".into(),
            tls: Some(Arc::new(client_config)),
        },
    )
    .expect("client");
    let request = |i: usize| -> Result<OutgoingRequest, String> {
        let seq = i as u64 + 1;
        let event = HookEvent {
            seq,
            id: format!("msg_{seq}"),
            ..HookEvent::default()
        };
        Ok(OutgoingRequest {
            headers: vec![("webhook-id", event.id.clone())],
            body: event.encode_to_vec().into(),
        })
    };
    let mut settled = Vec::new();
    let first = client.run(100, request, |n| settled.push(n)).await;
    assert_eq!(first.delivered, 59);
    assert!(matches!(
        first.stop,
        Some(recnode_actors::hooks::pipelined_client::Stop::Status(503))
    ));
    assert!(settled.windows(2).all(|w| w[0] < w[1]) && settled.last() == Some(&59));
    assert_eq!(client.window(), 1, "the window shuts after a failure");
    let rest = client.run(41, |i| request(i + 59), |_| {}).await;
    assert_eq!(rest.delivered, 41);
    assert!(rest.stop.is_none());
    check_delivered(&server.requests(), 100);
    assert!(server.max_outstanding() > 1);
    assert_eq!(
        server.connections(),
        2,
        "a new connection after the failure"
    );
}
