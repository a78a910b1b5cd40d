//! A WHIP publisher built on webrtc-rs: replays pre-encoded files at real-time pace.
//!
//! Video comes from an IVF file (VP8, VP9 or AV1, as ffmpeg writes them) or an H264
//! Annex-B file whose access units start with an AUD (`-bsf:v h264_metadata=aud=insert`);
//! audio from an Ogg Opus file. [`publish`] negotiates with `POST`, sends every frame at
//! its timestamp (the first frame at once), then sends `DELETE` (unless asked to vanish)
//! and reports what it sent. The end-to-end tests (`tests/whip_*.rs`) and the `whip`
//! subcommand of `recnode-loadgen` use it.
//!
//! The publisher never re-encodes: a PLI from the server is counted, not obeyed (the
//! sources have a keyframe every second or so).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::media::io::ivf_reader::IVFReader;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_local::TrackLocal;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum WhipClientError {
    /// A source file could not be read or parsed.
    #[error("source {path}: {message}")]
    Source {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The URL is not `http://host:port/whip/...`.
    #[error("unsupported URL {0:?} (use http://host:port/whip/{{stream}})")]
    Url(String),
    /// Talking HTTP to the server failed.
    #[error("HTTP {method} {url}: {message}")]
    Http {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused the offer.
    #[error("the server answered {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// webrtc-rs failed.
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::Error),
    /// ICE/DTLS did not connect in time.
    #[error("not connected within {0:?}")]
    ConnectTimeout(Duration),
}

/// One coded frame and when (from the start) to send it.
#[derive(Debug, Clone)]
pub struct TimedFrame {
    /// Send time relative to the first frame.
    pub at: Duration,
    /// How long it lasts (the RTP timestamp advances by this much).
    pub duration: Duration,
    /// The coded data (an IVF frame, an Annex-B access unit, an Opus packet).
    pub data: Bytes,
}

/// A pre-encoded track: its codec and frames.
#[derive(Debug, Clone)]
pub struct SourceTrack {
    /// webrtc-rs's MIME type (`video/VP9`, `audio/opus`, ...).
    pub mime_type: &'static str,
    /// The `fmtp` line to offer.
    pub fmtp: &'static str,
    /// The frames in sending order.
    pub frames: Arc<Vec<TimedFrame>>,
}

impl SourceTrack {
    fn kind(&self) -> RTPCodecType {
        if self.mime_type.starts_with("audio/") {
            RTPCodecType::Audio
        } else {
            RTPCodecType::Video
        }
    }

    fn capability(&self) -> RTCRtpCodecCapability {
        let audio = self.kind() == RTPCodecType::Audio;
        RTCRtpCodecCapability {
            mime_type: self.mime_type.to_string(),
            clock_rate: if audio { 48_000 } else { 90_000 },
            channels: if audio { 2 } else { 0 },
            sdp_fmtp_line: self.fmtp.to_string(),
            rtcp_feedback: Vec::new(),
        }
    }
}

fn source_error(path: &Path, message: impl ToString) -> WhipClientError {
    WhipClientError::Source {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads an IVF file (VP8, VP9 or AV1).
pub fn ivf_track(path: &Path) -> Result<SourceTrack, WhipClientError> {
    let file = std::fs::File::open(path).map_err(|e| source_error(path, e))?;
    let (mut reader, header) =
        IVFReader::new(std::io::BufReader::new(file)).map_err(|e| source_error(path, e))?;
    let (mime_type, fmtp) = match &header.four_cc {
        b"VP80" => ("video/VP8", ""),
        b"VP90" => ("video/VP9", "profile-id=0"),
        b"AV01" => ("video/AV1", ""),
        other => {
            return Err(source_error(
                path,
                format!(
                    "unsupported IVF fourcc {:?}",
                    String::from_utf8_lossy(other)
                ),
            ))
        }
    };
    let (num, den) = (
        u64::from(header.timebase_numerator.max(1)),
        u64::from(header.timebase_denominator.max(1)),
    );
    let to_time =
        |ts: u64| Duration::from_nanos(ts.saturating_mul(num).saturating_mul(1_000_000_000) / den);
    let mut raw = Vec::new();
    while let Ok((data, frame)) = reader.parse_next_frame() {
        raw.push((to_time(frame.timestamp), data.freeze()));
    }
    Ok(SourceTrack {
        mime_type,
        fmtp,
        frames: Arc::new(with_durations(raw)),
    })
}

/// Durations from the distance to the next frame (the last repeats the one before).
fn with_durations(raw: Vec<(Duration, Bytes)>) -> Vec<TimedFrame> {
    let mut frames = Vec::with_capacity(raw.len());
    let mut last_duration = Duration::from_millis(33);
    for i in 0..raw.len() {
        let (at, data) = raw[i].clone();
        let duration = raw
            .get(i + 1)
            .map_or(last_duration, |(next, _)| next.saturating_sub(at));
        last_duration = duration;
        frames.push(TimedFrame { at, duration, data });
    }
    frames
}

/// Reads an H264 Annex-B file whose access units each start with an AUD, at `fps`.
pub fn h264_track(path: &Path, fps: f64) -> Result<SourceTrack, WhipClientError> {
    let data = std::fs::read(path).map_err(|e| source_error(path, e))?;
    let mut units: Vec<Bytes> = Vec::new();
    let mut current: Option<usize> = None;
    let mut i = 0;
    while i + 3 < data.len() {
        let start = if data[i..].starts_with(&[0, 0, 0, 1]) {
            Some(4)
        } else if data[i..].starts_with(&[0, 0, 1]) {
            Some(3)
        } else {
            None
        };
        match start {
            Some(len) => {
                let nal_type = data.get(i + len).map_or(0, |b| b & 0x1f);
                if nal_type == 9 {
                    if let Some(begin) = current {
                        units.push(Bytes::copy_from_slice(&data[begin..i]));
                    }
                    current = Some(i);
                }
                i += len;
            }
            None => i += 1,
        }
    }
    if let Some(begin) = current {
        units.push(Bytes::copy_from_slice(&data[begin..]));
    }
    if units.is_empty() {
        return Err(source_error(
            path,
            "no access unit delimiters (encode with -bsf:v h264_metadata=aud=insert)",
        ));
    }
    let period = Duration::from_secs_f64(1.0 / fps.max(1.0));
    let raw = units
        .into_iter()
        .enumerate()
        .map(|(n, unit)| (period * n as u32, unit))
        .collect();
    Ok(SourceTrack {
        mime_type: "video/H264",
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        frames: Arc::new(with_durations(raw)),
    })
}

/// The duration of an Opus packet from its TOC byte (RFC 6716 §3.1).
fn opus_duration(packet: &[u8]) -> Duration {
    let Some(&toc) = packet.first() else {
        return Duration::ZERO;
    };
    let config = toc >> 3;
    let frame_us: u64 = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(1, |b| u64::from(b & 0x3f)),
    };
    Duration::from_micros(frame_us * frames)
}

/// Reads an Ogg Opus file (RFC 7845) into packets, skipping `OpusHead` and `OpusTags`.
pub fn opus_track(path: &Path) -> Result<SourceTrack, WhipClientError> {
    let data = std::fs::read(path).map_err(|e| source_error(path, e))?;
    let mut packets: Vec<Bytes> = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() {
        if &data[pos..pos + 4] != b"OggS" {
            return Err(source_error(path, format!("no Ogg page at byte {pos}")));
        }
        let segments = usize::from(data[pos + 26]);
        let table = data
            .get(pos + 27..pos + 27 + segments)
            .ok_or_else(|| source_error(path, "truncated Ogg page"))?;
        let mut body = pos + 27 + segments;
        for &lace in table {
            let end = body + usize::from(lace);
            let chunk = data
                .get(body..end)
                .ok_or_else(|| source_error(path, "truncated Ogg page"))?;
            partial.extend_from_slice(chunk);
            body = end;
            if lace < 255 {
                packets.push(Bytes::from(std::mem::take(&mut partial)));
            }
        }
        pos = body;
    }
    let mut at = Duration::ZERO;
    let frames: Vec<TimedFrame> = packets
        .into_iter()
        .filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags"))
        .map(|data| {
            let duration = opus_duration(&data);
            let frame = TimedFrame { at, duration, data };
            at += duration;
            frame
        })
        .collect();
    Ok(SourceTrack {
        mime_type: "audio/opus",
        fmtp: "minptime=10;useinbandfec=1",
        frames: Arc::new(frames),
    })
}

/// What to publish and how.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// `http://host:port/whip/{stream}`.
    pub url: String,
    /// The stream key, sent as a bearer token.
    pub token: Option<String>,
    /// The video track, if any.
    pub video: Option<SourceTrack>,
    /// The audio track, if any.
    pub audio: Option<SourceTrack>,
    /// Stop after this much media (the sources loop until then); `None`: each source once.
    pub duration: Option<Duration>,
    /// Leave without `DELETE` and without closing the connection (a vanished publisher).
    pub vanish: bool,
    /// How long to wait for ICE and DTLS.
    pub connect_timeout: Duration,
}

/// What a publisher did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishReport {
    /// The `Location` of the session.
    pub location: String,
    /// Video frames written to the track.
    pub video_frames: u64,
    /// Audio frames written to the track.
    pub audio_frames: u64,
    /// Video frames sent later than 100 ms after their time (the publisher fell behind).
    pub late_frames: u64,
    /// PLIs the server sent.
    pub plis: u64,
    /// Milliseconds from `POST` to a connected peer connection.
    pub connect_ms: u64,
    /// The status of `DELETE` (0 when vanishing).
    pub delete_status: u16,
}

/// A plain HTTP/1.1 request to a loopback or LAN server (no TLS); returns status, headers, body.
async fn http(
    method: &'static str,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, String), WhipClientError> {
    let err = |message: String| WhipClientError::Http {
        method,
        url: url.to_string(),
        message,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| WhipClientError::Url(url.to_string()))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| err(e.to_string()))?;
    stream
        .write_all(body)
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| err("no answer within 20 s".into()))?
        .map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| err("malformed response".into()))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("malformed status line".into()))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// A peer connection that offers exactly the codecs of the given tracks.
async fn peer(tracks: &[&SourceTrack]) -> Result<Arc<RTCPeerConnection>, WhipClientError> {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut engine = MediaEngine::default();
    for (i, track) in tracks.iter().enumerate() {
        engine.register_codec(
            RTCRtpCodecParameters {
                capability: track.capability(),
                payload_type: 96 + i as u8,
                ..Default::default()
            },
            track.kind(),
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    let mut net = SettingEngine::default();
    net.set_network_types(vec![NetworkType::Udp4]);
    let api = APIBuilder::new()
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(net)
        .build();
    Ok(Arc::new(
        api.new_peer_connection(RTCConfiguration::default()).await?,
    ))
}

/// Writes `source` to `track` at real-time pace from `start`, looping until `until`.
async fn pace(
    track: Arc<TrackLocalStaticSample>,
    source: SourceTrack,
    start: Instant,
    until: Option<Duration>,
    sent: Arc<AtomicU64>,
    late: Arc<AtomicU64>,
) {
    let frames = source.frames.clone();
    let Some(last) = frames.last() else {
        return;
    };
    let loop_length = last.at + last.duration;
    let mut base = Duration::ZERO;
    loop {
        for frame in frames.iter() {
            let at = base + frame.at;
            if until.is_some_and(|u| at >= u) {
                return;
            }
            let due = start + at;
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else if now - due > Duration::from_millis(100) {
                late.fetch_add(1, Ordering::Relaxed);
            }
            let sample = Sample {
                data: frame.data.clone(),
                duration: frame.duration,
                timestamp: SystemTime::now(),
                ..Default::default()
            };
            if track.write_sample(&sample).await.is_err() {
                return;
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
        if until.is_none() || loop_length.is_zero() {
            return;
        }
        base += loop_length;
    }
}

/// Reads RTCP for a sender (runs the NACK responder) and counts PLIs.
fn read_rtcp(sender: Arc<RTCRtpSender>, plis: Arc<AtomicU64>) {
    tokio::spawn(async move {
        while let Ok((packets, _)) = sender.read_rtcp().await {
            for p in packets {
                if p.as_any().downcast_ref::<PictureLossIndication>().is_some() {
                    plis.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// Publishes `options` to a WHIP endpoint and reports what was sent.
pub async fn publish(options: PublishOptions) -> Result<PublishReport, WhipClientError> {
    let sources: Vec<&SourceTrack> = options.video.iter().chain(options.audio.iter()).collect();
    let pc = peer(&sources).await?;
    let plis = Arc::new(AtomicU64::new(0));
    let mut local_tracks = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let track = Arc::new(TrackLocalStaticSample::new(
            source.capability(),
            format!("track{i}"),
            "recnode-loadgen".to_string(),
        ));
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
        read_rtcp(sender, plis.clone());
        local_tracks.push(track);
    }
    let (connected_tx, mut connected_rx) = tokio::sync::watch::channel(RTCPeerConnectionState::New);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        let _ = connected_tx.send(state);
        Box::pin(async {})
    }));
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), gathered.recv()).await;
    let offer_sdp = pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .unwrap_or_default();

    let mut headers = vec![("Content-Type", "application/sdp".to_string())];
    if let Some(token) = &options.token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let posted = Instant::now();
    let (status, response_headers, body) =
        http("POST", &options.url, &headers, offer_sdp.as_bytes()).await?;
    if status != 201 {
        let _ = pc.close().await;
        return Err(WhipClientError::Refused { status, body });
    }
    let location = response_headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    pc.set_remote_description(RTCSessionDescription::answer(body)?)
        .await?;
    let connected = tokio::time::timeout(options.connect_timeout, async {
        loop {
            let state = *connected_rx.borrow_and_update();
            match state {
                RTCPeerConnectionState::Connected => return true,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return false,
                _ => {}
            }
            if connected_rx.changed().await.is_err() {
                return false;
            }
        }
    })
    .await;
    if connected != Ok(true) {
        let _ = pc.close().await;
        return Err(WhipClientError::ConnectTimeout(options.connect_timeout));
    }
    let connect_ms = posted.elapsed().as_millis() as u64;

    let start = Instant::now();
    let counters: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let late = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let counter = if source.kind() == RTPCodecType::Video {
            counters[0].clone()
        } else {
            counters[1].clone()
        };
        tasks.push(tokio::spawn(pace(
            local_tracks[i].clone(),
            (*source).clone(),
            start,
            options.duration,
            counter,
            late.clone(),
        )));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut report = PublishReport {
        location: location.clone(),
        video_frames: counters[0].load(Ordering::Relaxed),
        audio_frames: counters[1].load(Ordering::Relaxed),
        late_frames: late.load(Ordering::Relaxed),
        plis: plis.load(Ordering::Relaxed),
        connect_ms,
        delete_status: 0,
    };
    if options.vanish {
        // Leave the connection to the server's timeout: no DELETE, no DTLS close.
        std::mem::forget(pc);
        return Ok(report);
    }
    let base = options
        .url
        .split("/whip/")
        .next()
        .unwrap_or(&options.url)
        .to_string();
    let mut headers = Vec::new();
    if let Some(token) = &options.token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let (status, _, _) = http("DELETE", &format!("{base}{location}"), &headers, b"").await?;
    report.delete_status = status;
    // webrtc-rs's close can wait on a transport that is already gone; do not hang on it.
    let _ = tokio::time::timeout(Duration::from_secs(5), pc.close()).await;
    Ok(report)
}
