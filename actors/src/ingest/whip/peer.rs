//! One session's webrtc-rs peer connection: the codecs the offer chose, the interceptors
//! (NACK generator, receiver reports, transport-wide congestion feedback) and the shared
//! network settings.
//!
//! Each session gets its own `MediaEngine` holding exactly the chosen codec per kind with
//! the offer's payload type and `fmtp`, so webrtc-rs's answer lists that codec alone and
//! the publisher cannot switch to another mid-stream.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::UDPMuxDefault;
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::interceptor::nack::generator::Generator;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;

use super::sdp::{ChosenCodec, OfferSummary};
use super::WhipSettings;

/// The RTP header extension that names a packet's media section (RFC 9143 §15).
const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// How often missing packets are NACKed: short, so that a retransmission arrives within the
/// depacketizer's reorder window (100 ms of media) on a network with a modest RTT.
const NACK_INTERVAL: Duration = Duration::from_millis(20);
/// How many SRTP packets back a (NACKed) retransmission on the same SSRC may arrive.
const SRTP_REPLAY_WINDOW: usize = 1024;

/// The node-wide part of every session's network setup.
pub(crate) enum Transport {
    /// The shared socket and the address it is bound to.
    Mux(Arc<UDPMuxDefault>, SocketAddr),
    /// A socket per session from this port range.
    PortRange(u16, u16),
}

/// What every session shares: settings and the transport.
pub(crate) struct WhipShared {
    pub(crate) settings: WhipSettings,
    pub(crate) transport: Transport,
}

fn register(
    engine: &mut MediaEngine,
    chosen: &ChosenCodec,
    kind: RTPCodecType,
) -> Result<(), webrtc::Error> {
    engine.register_codec(
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: chosen.mime_type.to_string(),
                clock_rate: chosen.clock_rate,
                channels: chosen.channels,
                sdp_fmtp_line: chosen.fmtp.clone(),
                rtcp_feedback: Vec::new(),
            },
            payload_type: chosen.payload_type,
            ..Default::default()
        },
        kind,
    )
}

/// A peer connection that can receive exactly what `summary` chose.
pub(crate) async fn new_peer(
    shared: &WhipShared,
    summary: &OfferSummary,
) -> Result<Arc<RTCPeerConnection>, webrtc::Error> {
    // DTLS needs rustls' process-wide provider; with more than one compiled in (the
    // cluster's dependencies add aws-lc-rs) rustls cannot choose one by itself.
    crate::uploader::init_http_transport();
    let mut engine = MediaEngine::default();
    if let Some(video) = &summary.video {
        register(&mut engine, video, RTPCodecType::Video)?;
    }
    if let Some(audio) = &summary.audio {
        register(&mut engine, audio, RTPCodecType::Audio)?;
    }
    for kind in [RTPCodecType::Video, RTPCodecType::Audio] {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: SDES_MID_URI.to_string(),
            },
            kind,
            None,
        )?;
    }
    // After the codecs: feedback is added to the codecs registered so far.
    let mut registry = Registry::new();
    for (typ, parameter) in [("nack", ""), ("nack", "pli")] {
        engine.register_feedback(
            RTCPFeedback {
                typ: typ.to_string(),
                parameter: parameter.to_string(),
            },
            RTPCodecType::Video,
        );
    }
    // Only the NACK generator: sessions send no media, so there is nothing to retransmit.
    registry.add(Box::new(Generator::builder().with_interval(NACK_INTERVAL)));
    registry = configure_rtcp_reports(registry);
    registry = configure_twcc_receiver_only(registry, &mut engine)?;

    let settings = &shared.settings;
    let mut net = SettingEngine::default();
    let bound_ip: Option<IpAddr> = match &shared.transport {
        Transport::Mux(mux, addr) => {
            net.set_udp_network(UDPNetwork::Muxed(mux.clone()));
            Some(addr.ip())
        }
        Transport::PortRange(min, max) => {
            net.set_udp_network(UDPNetwork::Ephemeral(EphemeralUDP::new(*min, *max)?));
            None
        }
    };
    let mut types = vec![NetworkType::Udp4];
    if bound_ip.is_some_and(|ip| ip.is_ipv6()) {
        types.push(NetworkType::Udp6);
    }
    net.set_network_types(types);
    if let Some(ip) = bound_ip.filter(|ip| !ip.is_unspecified()) {
        // Bound to one address: advertise that one only (loopback included if it is one).
        net.set_include_loopback_candidate(ip.is_loopback());
        net.set_ip_filter(Box::new(move |candidate: IpAddr| candidate == ip));
    }
    if !settings.public_ips.is_empty() {
        let ips = settings
            .public_ips
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        net.set_nat_1to1_ips(ips, RTCIceCandidateType::Host);
    }
    let timeout = settings.session_timeout.max(Duration::from_secs(1));
    net.set_ice_timeouts(
        Some((timeout / 2).max(Duration::from_secs(1))),
        Some(timeout),
        Some(Duration::from_secs(2)),
    );
    net.set_srtp_replay_protection_window(SRTP_REPLAY_WINDOW);

    let api = APIBuilder::new()
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(net)
        .build();
    Ok(Arc::new(
        api.new_peer_connection(RTCConfiguration::default()).await?,
    ))
}
