//! RTMP ingest end to end: real `ffmpeg` publishers against [`start_rtmp`], with a fake stream
//! supervisor that records every `Publish` and fake stream actors that count what arrives.
//!
//! Needs `ffmpeg` and `ffprobe` (with libx264 and the native AAC encoder) and coreutils
//! `timeout` on the PATH; every wait has a deadline, nothing sleeps to pass.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use recnode_actors::ingest::{start_rtmp, RtmpIngestArgs, RtmpListenerMsg, StreamKeyRule};
use recnode_actors::media::{MediaEvent, TrackKind};
use recnode_actors::stream::{PublishRejected, StreamMsg, StreamSupervisorMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long any single wait in these tests may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);
/// Seconds after which a publishing ffmpeg is killed (`timeout` exits 124 then).
const FFMPEG_DEADLINE_S: u32 = 40;

// ---------------------------------------------------------------------------------------
// The source file and its frame counts.

/// The 5 s H264 (B-frames) + AAC FLV every publisher sends, with ffprobe's frame counts.
struct RtmpIngestSource {
    path: PathBuf,
    video_frames: u64,
    audio_frames: u64,
}

fn rtmp_ingest_require_tool(tool: &str, version_flag: &str, package: &str) {
    let found = Command::new(tool)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is required by the RTMP ingest tests but was not found on the PATH; \
         install it (Debian: `apt-get install {package}`)"
    );
}

fn rtmp_ingest_count_frames(path: &Path, select: &str) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", select])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe printed {text:?} for {select}, not a frame count"))
}

/// Makes the source once per test binary.
fn rtmp_ingest_source() -> &'static RtmpIngestSource {
    static SOURCE: OnceLock<RtmpIngestSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        rtmp_ingest_require_tool("ffmpeg", "-version", "ffmpeg");
        rtmp_ingest_require_tool("ffprobe", "-version", "ffmpeg");
        rtmp_ingest_require_tool("timeout", "--version", "coreutils");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rtmp_ingest");
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let path = dir.join(format!("src-{}.flv", std::process::id()));
        let output = Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=sample_rate=44100"])
            .args([
                "-t", "5", "-c:v", "libx264", "-bf", "2", "-g", "25", "-c:a", "aac",
            ])
            .arg(&path)
            .output()
            .expect("ffmpeg runs");
        assert!(
            output.status.success(),
            "ffmpeg could not make the test source: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let video_frames = rtmp_ingest_count_frames(&path, "v");
        let audio_frames = rtmp_ingest_count_frames(&path, "a");
        assert!(video_frames > 0 && audio_frames > 0, "empty test source");
        RtmpIngestSource {
            path,
            video_frames,
            audio_frames,
        }
    })
}

/// What one ffmpeg run ended with.
struct RtmpIngestPublishOutcome {
    output: Output,
}

impl RtmpIngestPublishOutcome {
    fn succeeded(&self) -> bool {
        self.output.status.success()
    }

    fn timed_out(&self) -> bool {
        self.output.status.code() == Some(124)
    }

    fn describe(&self) -> String {
        format!(
            "ffmpeg exited with {:?}; stderr:\n{}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// Runs `ffmpeg -re [input_opts] -i src.flv -c copy -f flv url` off the runtime and waits for it.
async fn rtmp_ingest_publish(
    source: &RtmpIngestSource,
    input_opts: &[&str],
    url: String,
) -> RtmpIngestPublishOutcome {
    let mut command = Command::new("timeout");
    command
        .arg(FFMPEG_DEADLINE_S.to_string())
        .args(["ffmpeg", "-nostdin", "-loglevel", "error", "-re"])
        .args(input_opts)
        .arg("-i")
        .arg(&source.path)
        .args(["-c", "copy", "-f", "flv"])
        .arg(&url)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the ffmpeg thread did not panic")
        .expect("ffmpeg runs");
    RtmpIngestPublishOutcome { output }
}

fn rtmp_ingest_url(addr: SocketAddr, path: &str) -> String {
    format!("rtmp://{addr}/{path}")
}

// ---------------------------------------------------------------------------------------
// The fake stream supervisor and stream actors.

/// What a fake stream counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RtmpIngestCounts {
    video_frames: u64,
    audio_frames: u64,
    video_configs: u64,
    audio_configs: u64,
    /// Video frames whose pts differs from their dts (B-frame reordering survived).
    reordered_video_frames: u64,
    /// Frames that arrived before their track's config.
    frames_before_config: u64,
}

/// What the fakes report to the test.
#[derive(Debug)]
enum RtmpIngestEvent {
    /// The supervisor got a Publish and answered it.
    Publish {
        stream: String,
        app: String,
        accepted: Option<ActorRef<StreamMsg>>,
    },
    /// A stream got its first frame.
    FirstFrame { stream: String },
    /// A stream got an Unpublish (reported for every one, so duplicates are visible).
    Unpublished {
        stream: String,
        counts: RtmpIngestCounts,
    },
}

type RtmpIngestEvents = mpsc::UnboundedSender<RtmpIngestEvent>;

struct RtmpIngestFakeSupervisor;

impl Actor for RtmpIngestFakeSupervisor {
    type Msg = StreamSupervisorMsg;
    /// Names that were accepted once; a second Publish of one is `AlreadyLive`.
    type State = (RtmpIngestEvents, HashSet<String>);
    type Arguments = RtmpIngestEvents;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        events: RtmpIngestEvents,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((events, HashSet::new()))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        (events, live): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let StreamSupervisorMsg::Publish(request, reply) = message {
            let accepted = if live.insert(request.stream.clone()) {
                let (stream_ref, _) = Actor::spawn(
                    None,
                    RtmpIngestFakeStream,
                    (request.stream.clone(), events.clone()),
                )
                .await?;
                Some(stream_ref)
            } else {
                None
            };
            let answer = accepted.clone().ok_or(PublishRejected::AlreadyLive {
                stream: request.stream.clone(),
            });
            let _ = events.send(RtmpIngestEvent::Publish {
                stream: request.stream,
                app: request.app,
                accepted,
            });
            let _ = reply.send(answer);
        }
        Ok(())
    }
}

struct RtmpIngestFakeStream;

struct RtmpIngestFakeStreamState {
    stream: String,
    events: RtmpIngestEvents,
    counts: RtmpIngestCounts,
}

impl Actor for RtmpIngestFakeStream {
    type Msg = StreamMsg;
    type State = RtmpIngestFakeStreamState;
    type Arguments = (String, RtmpIngestEvents);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (stream, events): (String, RtmpIngestEvents),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RtmpIngestFakeStreamState {
            stream,
            events,
            counts: RtmpIngestCounts::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let counts = &mut state.counts;
        match message {
            StreamMsg::Media(MediaEvent::Config(config)) => match config.kind() {
                TrackKind::Video => counts.video_configs += 1,
                TrackKind::Audio => counts.audio_configs += 1,
            },
            StreamMsg::Media(MediaEvent::Frame(frame)) => {
                if counts.video_frames + counts.audio_frames == 0 {
                    let _ = state.events.send(RtmpIngestEvent::FirstFrame {
                        stream: state.stream.clone(),
                    });
                }
                match frame.track {
                    TrackKind::Video => {
                        counts.video_frames += 1;
                        counts.frames_before_config += u64::from(counts.video_configs == 0);
                        counts.reordered_video_frames += u64::from(frame.pts != frame.dts);
                    }
                    TrackKind::Audio => {
                        counts.audio_frames += 1;
                        counts.frames_before_config += u64::from(counts.audio_configs == 0);
                    }
                }
            }
            StreamMsg::Unpublish => {
                let _ = state.events.send(RtmpIngestEvent::Unpublished {
                    stream: state.stream.clone(),
                    counts: counts.clone(),
                });
            }
            // Messages that are not for ingest (the stream supervisor's own, test hooks).
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The node under test.

struct RtmpIngestNode {
    listener: ActorRef<RtmpListenerMsg>,
    addr: SocketAddr,
    supervisor: ActorRef<StreamSupervisorMsg>,
    events: mpsc::UnboundedReceiver<RtmpIngestEvent>,
}

impl RtmpIngestNode {
    async fn start(stream_keys: Vec<StreamKeyRule>) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let (supervisor, _) = Actor::spawn(None, RtmpIngestFakeSupervisor, tx)
            .await
            .expect("fake supervisor starts");
        let (listener, addr) = start_rtmp(RtmpIngestArgs {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            apps: vec!["live".to_string()],
            stream_keys,
            streams: supervisor.clone(),
        })
        .await
        .expect("the RTMP listener starts");
        assert_ne!(addr.port(), 0, "start_rtmp returns the bound port");
        RtmpIngestNode {
            listener,
            addr,
            supervisor,
            events,
        }
    }

    async fn next_event(&mut self, waiting_for: &str) -> RtmpIngestEvent {
        match tokio::time::timeout(WAIT, self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("event channel closed while waiting for {waiting_for}"),
            Err(_) => panic!("no event within {WAIT:?} while waiting for {waiting_for}"),
        }
    }

    /// Waits for an accepted Publish of `stream` and returns the fake stream actor.
    async fn expect_accepted_publish(&mut self, stream: &str) -> ActorRef<StreamMsg> {
        match self.next_event(&format!("the Publish of {stream}")).await {
            RtmpIngestEvent::Publish {
                stream: got,
                app,
                accepted: Some(stream_ref),
            } if got == stream => {
                assert_eq!(app, "live");
                stream_ref
            }
            other => panic!("expected an accepted Publish of {stream}, got {other:?}"),
        }
    }

    /// The connection actors the listener supervises right now.
    fn connections(&self) -> Vec<ActorCell> {
        self.listener.get_children()
    }

    /// Waits for the Unpublish of `stream`, then proves it was the only one: once the
    /// connections have stopped, the fake stream is drained and no second Unpublish is left.
    async fn expect_single_unpublish(
        &mut self,
        stream: &str,
        stream_ref: ActorRef<StreamMsg>,
        connections: Vec<ActorCell>,
    ) -> RtmpIngestCounts {
        let counts = match self.next_event(&format!("the Unpublish of {stream}")).await {
            RtmpIngestEvent::Unpublished {
                stream: got,
                counts,
            } if got == stream => counts,
            other => panic!("expected the Unpublish of {stream}, got {other:?}"),
        };
        for connection in connections {
            connection
                .wait(Some(WAIT))
                .await
                .expect("the connection actor stops after the publisher left");
        }
        stream_ref
            .drain_and_wait(Some(WAIT))
            .await
            .expect("the fake stream drains");
        while let Ok(event) = self.events.try_recv() {
            assert!(
                !matches!(event, RtmpIngestEvent::Unpublished { .. }),
                "a second Unpublish arrived: {event:?}"
            );
        }
        counts
    }

    async fn stop(self) {
        self.listener
            .stop_and_wait(None, Some(WAIT))
            .await
            .expect("the listener stops");
        self.supervisor.stop(None);
    }
}

fn rtmp_ingest_assert_complete(counts: &RtmpIngestCounts, source: &RtmpIngestSource) {
    assert_eq!(
        (counts.video_frames, counts.audio_frames),
        (source.video_frames, source.audio_frames),
        "frames received (video, audio) differ from ffprobe's count of the source: {counts:?}"
    );
    assert_eq!(counts.video_configs, 1, "one H264 config: {counts:?}");
    assert_eq!(counts.audio_configs, 1, "one AAC config: {counts:?}");
    assert_eq!(counts.frames_before_config, 0, "{counts:?}");
    assert!(
        counts.reordered_video_frames > 0,
        "B-frames keep pts != dts through ingest: {counts:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn ffmpeg_publish_delivers_every_frame_both_configs_and_one_unpublish() {
    let source = rtmp_ingest_source();
    let mut node = RtmpIngestNode::start(Vec::new()).await;

    let url = rtmp_ingest_url(node.addr, "live/cam1");
    let publisher = tokio::spawn(async move { rtmp_ingest_publish(source, &[], url).await });

    let stream_ref = node.expect_accepted_publish("cam1").await;
    let connections = node.connections();
    assert_eq!(connections.len(), 1, "one connection per publisher");

    let outcome = tokio::time::timeout(WAIT, publisher)
        .await
        .expect("ffmpeg finishes")
        .expect("the publisher task did not panic");
    assert!(outcome.succeeded(), "{}", outcome.describe());

    match node.next_event("the first frame of cam1").await {
        RtmpIngestEvent::FirstFrame { stream } => assert_eq!(stream, "cam1"),
        other => panic!("expected the first frame of cam1, got {other:?}"),
    }
    let counts = node
        .expect_single_unpublish("cam1", stream_ref, connections)
        .await;
    rtmp_ingest_assert_complete(&counts, source);
    node.stop().await;
}

#[tokio::test]
async fn publishers_with_an_unknown_app_a_bad_name_or_a_wrong_key_are_refused() {
    let source = rtmp_ingest_source();
    let mut node = RtmpIngestNode::start(vec![StreamKeyRule {
        pattern: "secure*".to_string(),
        key: "s3cret".to_string(),
    }])
    .await;

    let short = ["-t", "1"];
    for (case, path) in [
        ("unknown app", "other/cam1"),
        ("bad stream name", "live/bad$name"),
        ("wrong key", "live/secure1?key=wrong"),
        ("missing key", "live/secure1"),
    ] {
        let outcome = rtmp_ingest_publish(source, &short, rtmp_ingest_url(node.addr, path)).await;
        assert!(
            !outcome.timed_out(),
            "{case}: ffmpeg hung instead of being refused; {}",
            outcome.describe()
        );
        assert!(
            !outcome.succeeded(),
            "{case}: ffmpeg was not refused; {}",
            outcome.describe()
        );
    }

    // The listener survived the refusals and a right key is accepted. Events arrive in
    // order, so if any refused publisher had reached the supervisor its Publish would be
    // the one seen here instead.
    let url = rtmp_ingest_url(node.addr, "live/secure1?key=s3cret");
    let publisher = tokio::spawn(async move { rtmp_ingest_publish(source, &short, url).await });
    let stream_ref = node.expect_accepted_publish("secure1").await;
    let connections = node.connections();
    let outcome = tokio::time::timeout(WAIT, publisher)
        .await
        .expect("ffmpeg finishes")
        .expect("the publisher task did not panic");
    assert!(outcome.succeeded(), "{}", outcome.describe());
    match node.next_event("the first frame of secure1").await {
        RtmpIngestEvent::FirstFrame { stream } => assert_eq!(stream, "secure1"),
        other => panic!("expected the first frame of secure1, got {other:?}"),
    }
    node.expect_single_unpublish("secure1", stream_ref, connections)
        .await;
    node.stop().await;
}

#[tokio::test]
async fn a_second_publisher_of_a_live_name_is_refused_while_the_first_keeps_streaming() {
    let source = rtmp_ingest_source();
    let mut node = RtmpIngestNode::start(Vec::new()).await;

    let url = rtmp_ingest_url(node.addr, "live/cam2");
    let first = tokio::spawn(async move { rtmp_ingest_publish(source, &[], url).await });
    let stream_ref = node.expect_accepted_publish("cam2").await;
    let connections = node.connections();
    match node.next_event("the first frame of cam2").await {
        RtmpIngestEvent::FirstFrame { stream } => assert_eq!(stream, "cam2"),
        other => panic!("expected the first frame of cam2, got {other:?}"),
    }

    let second = rtmp_ingest_publish(
        source,
        &["-t", "1"],
        rtmp_ingest_url(node.addr, "live/cam2"),
    )
    .await;
    assert!(
        !second.timed_out() && !second.succeeded(),
        "the second publisher of cam2 was not refused; {}",
        second.describe()
    );
    match node.next_event("the second Publish of cam2").await {
        RtmpIngestEvent::Publish {
            stream,
            accepted: None,
            ..
        } => assert_eq!(stream, "cam2"),
        other => panic!("expected the refused second Publish of cam2, got {other:?}"),
    }
    // Had the first publisher ended before the refusal, its Unpublish would have been the
    // event above; it is live, and must still deliver every frame.

    let outcome = tokio::time::timeout(WAIT, first)
        .await
        .expect("the first ffmpeg finishes")
        .expect("the publisher task did not panic");
    assert!(
        outcome.succeeded(),
        "first publisher: {}",
        outcome.describe()
    );
    let counts = node
        .expect_single_unpublish("cam2", stream_ref, connections)
        .await;
    rtmp_ingest_assert_complete(&counts, source);
    node.stop().await;
}

/// Reads until the server closes the socket (EOF or reset); fails after [`WAIT`].
async fn rtmp_ingest_expect_closed(socket: &mut TcpStream, case: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{case}: the server did not close the socket within {WAIT:?}"
    );
}

/// Completes the client side of the RTMP handshake on `socket`.
async fn rtmp_ingest_client_handshake(socket: &mut TcpStream) {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    let mut handshake = Handshake::new(PeerType::Client);
    let p0_p1 = handshake
        .generate_outbound_p0_and_p1()
        .expect("client handshake packets");
    socket.write_all(&p0_p1).await.expect("send C0+C1");
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, socket.read(&mut buf))
            .await
            .expect("the server answers the handshake")
            .expect("read the handshake");
        assert!(n > 0, "the server closed the socket during the handshake");
        match handshake
            .process_bytes(&buf[..n])
            .expect("a valid server handshake")
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.expect("send");
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                socket.write_all(&response_bytes).await.expect("send C2");
                return;
            }
        }
    }
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection_and_never_reaches_the_supervisor() {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::RtmpMessage;
    use rml_rtmp::rml_amf0::Amf0Value;
    use rml_rtmp::time::RtmpTimestamp;

    let mut node = RtmpIngestNode::start(Vec::new()).await;

    // Not an RTMP handshake at all.
    let mut socket = TcpStream::connect(node.addr).await.expect("connect");
    socket.write_all(&[0x47; 4000]).await.expect("send garbage");
    rtmp_ingest_expect_closed(&mut socket, "garbage handshake").await;

    // A valid handshake followed by garbage chunks.
    let mut socket = TcpStream::connect(node.addr).await.expect("connect");
    rtmp_ingest_client_handshake(&mut socket).await;
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // The server may close mid-write; either way it must close.
    let _ = socket.write_all(&garbage).await;
    rtmp_ingest_expect_closed(&mut socket, "garbage chunks").await;

    // A well-formed chunk whose `@setDataFrame` lacks its arguments: rml_rtmp indexes into
    // them without a length check, which must close the connection, not crash anything.
    let mut socket = TcpStream::connect(node.addr).await.expect("connect");
    rtmp_ingest_client_handshake(&mut socket).await;
    let payload = RtmpMessage::Amf0Data {
        values: vec![Amf0Value::Utf8String("@setDataFrame".to_string())],
    }
    .into_message_payload(RtmpTimestamp::new(0), 1)
    .expect("a payload");
    let packet = ChunkSerializer::new()
        .serialize(&payload, false, false)
        .expect("a chunk");
    socket.write_all(&packet.bytes).await.expect("send");
    rtmp_ingest_expect_closed(&mut socket, "truncated @setDataFrame").await;

    // The listener is still serving, and none of these reached the stream supervisor: the
    // next event is the Publish of a good publisher.
    let source = rtmp_ingest_source();
    let url = rtmp_ingest_url(node.addr, "live/after-garbage");
    let publisher =
        tokio::spawn(async move { rtmp_ingest_publish(source, &["-t", "1"], url).await });
    let stream_ref = node.expect_accepted_publish("after-garbage").await;
    let connections = node.connections();
    let outcome = tokio::time::timeout(WAIT, publisher)
        .await
        .expect("ffmpeg finishes")
        .expect("the publisher task did not panic");
    assert!(outcome.succeeded(), "{}", outcome.describe());
    match node.next_event("the first frame of after-garbage").await {
        RtmpIngestEvent::FirstFrame { stream } => assert_eq!(stream, "after-garbage"),
        other => panic!("expected the first frame of after-garbage, got {other:?}"),
    }
    node.expect_single_unpublish("after-garbage", stream_ref, connections)
        .await;
    node.stop().await;
}
