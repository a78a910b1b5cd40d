//! Reading a WHIP offer before any WebRTC state exists: is it SDP at all, which codec of
//! each kind to record, and the candidates of a trickle ICE fragment (RFC 8840).
//!
//! The offer is parsed with the `sdp` crate that webrtc-rs uses ([RFC 8866]). Only the
//! first audio and the first video media section count, as in webrtc-rs's negotiation;
//! a section the publisher does not send on (`recvonly`, `inactive`, port 0) is skipped.
//! For each kind the first codec of the configured preference list that the offer
//! carries wins; its payload type and `fmtp` line are kept as offered, so the answer
//! repeats the publisher's H264 `profile-level-id` and VP9 `profile-id`.
//!
//! [RFC 8866]: https://www.rfc-editor.org/rfc/rfc8866

use std::io::Cursor;

use recnode_media::Codec;
use webrtc::sdp::description::media::MediaDescription;
use webrtc::sdp::SessionDescription;

/// The largest offer (or trickle fragment) accepted, in bytes. Browsers send 4–12 KiB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// One codec of the offer chosen for recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChosenCodec {
    /// The media crate's codec.
    pub(crate) codec: Codec,
    /// The payload type the offer gave it.
    pub(crate) payload_type: u8,
    /// webrtc-rs's MIME type (`video/H264`, `audio/opus`, ...).
    pub(crate) mime_type: &'static str,
    /// The RTP clock rate (90000 for video, 48000 for Opus).
    pub(crate) clock_rate: u32,
    /// Audio channels from `rtpmap` (0 for video).
    pub(crate) channels: u16,
    /// The offer's `fmtp` parameters for this payload type, verbatim.
    pub(crate) fmtp: String,
}

/// What recording needs from an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferSummary {
    /// The video codec to record, if the offer sends video this node can record.
    pub(crate) video: Option<ChosenCodec>,
    /// The audio codec to record, likewise.
    pub(crate) audio: Option<ChosenCodec>,
}

/// Why an offer was refused before negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OfferProblem {
    /// Not SDP, or SDP without the parts an offer needs.
    Malformed(String),
    /// Parsed, but no media section carries a codec this node records; lists what was offered.
    NoUsableCodec(String),
}

/// The codec a MIME subtype (`rtpmap` encoding name) stands for, with webrtc-rs's MIME type.
fn codec_of(kind: &str, encoding: &str) -> Option<(Codec, &'static str)> {
    let e = encoding.to_ascii_lowercase();
    match (kind, e.as_str()) {
        ("video", "h264") => Some((Codec::H264, "video/H264")),
        ("video", "vp8") => Some((Codec::Vp8, "video/VP8")),
        ("video", "vp9") => Some((Codec::Vp9, "video/VP9")),
        ("video", "av1") => Some((Codec::Av1, "video/AV1")),
        ("video", "h265") => Some((Codec::H265, "video/H265")),
        ("audio", "opus") => Some((Codec::Opus, "audio/opus")),
        _ => None,
    }
}

/// `key=value` of an `fmtp` parameter list (`a; b=c`), case-insensitive key.
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// Whether this node can record a codec with these `fmtp` parameters.
fn fmtp_acceptable(codec: Codec, fmtp: &str) -> bool {
    match codec {
        // Only non-interleaved mode (RFC 6184 §6.3): single NAL units, STAP-A and FU-A.
        Codec::H264 => fmtp_param(fmtp, "packetization-mode") == Some("1"),
        _ => true,
    }
}

/// One offered payload type: number, encoding name, clock rate, channels.
struct RtpMap<'a> {
    payload_type: u8,
    encoding: &'a str,
    clock_rate: u32,
    channels: u16,
}

/// Parses `96 H264/90000` or `111 opus/48000/2`.
fn parse_rtpmap(value: &str) -> Option<RtpMap<'_>> {
    let (pt, rest) = value.trim().split_once(' ')?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = parts.next().map_or(Some(0), |c| c.parse().ok())?;
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

/// Whether the publisher sends on this media section.
fn sends(media: &MediaDescription) -> bool {
    media.media_name.port.value != 0
        && !media.has_attribute("recvonly")
        && !media.has_attribute("inactive")
}

/// Chooses the first codec of `preferences` this media section offers.
fn choose(media: &MediaDescription, preferences: &[Codec]) -> Option<ChosenCodec> {
    let kind = media.media_name.media.as_str();
    let maps: Vec<RtpMap<'_>> = media
        .attributes
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
        .filter(|m| {
            media
                .media_name
                .formats
                .iter()
                .any(|f| f.parse() == Ok(m.payload_type))
        })
        .collect();
    let fmtp_of = |pt: u8| -> String {
        media
            .attributes
            .iter()
            .filter(|a| a.key == "fmtp")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (p, params) = v.trim().split_once(' ')?;
                (p.parse() == Ok(pt)).then(|| params.trim().to_string())
            })
            .unwrap_or_default()
    };
    preferences.iter().find_map(|&wanted| {
        maps.iter().find_map(|m| {
            let (codec, mime_type) = codec_of(kind, m.encoding)?;
            let fmtp = fmtp_of(m.payload_type);
            (codec == wanted && fmtp_acceptable(codec, &fmtp)).then_some(ChosenCodec {
                codec,
                payload_type: m.payload_type,
                mime_type,
                clock_rate: m.clock_rate,
                channels: m.channels,
                fmtp,
            })
        })
    })
}

/// The encoding names a media section offers, for the "no usable codec" message.
fn offered_names(media: &MediaDescription) -> Vec<String> {
    media
        .attributes
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| Some(parse_rtpmap(a.value.as_deref()?)?.encoding.to_string()))
        .collect()
}

/// Parses `offer` and picks the codecs to record in the given preference orders.
pub(crate) fn inspect_offer(
    offer: &str,
    video_preferences: &[Codec],
    audio_preferences: &[Codec],
) -> Result<OfferSummary, OfferProblem> {
    if offer.len() > MAX_SDP_BYTES {
        return Err(OfferProblem::Malformed(format!(
            "offer of {} bytes exceeds {MAX_SDP_BYTES}",
            offer.len()
        )));
    }
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(offer.as_bytes()))
        .map_err(|e| OfferProblem::Malformed(e.to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(OfferProblem::Malformed("no media section".into()));
    }
    let first = |kind: &str| {
        parsed
            .media_descriptions
            .iter()
            .find(|m| m.media_name.media == kind)
    };
    let pick = |kind: &str, prefs: &[Codec]| {
        first(kind)
            .filter(|m| sends(m))
            .and_then(|m| choose(m, prefs))
    };
    let summary = OfferSummary {
        video: pick("video", video_preferences),
        audio: pick("audio", audio_preferences),
    };
    if summary.video.is_none() && summary.audio.is_none() {
        let offered: Vec<String> = parsed
            .media_descriptions
            .iter()
            .map(|m| {
                format!(
                    "{} [{}]{}",
                    m.media_name.media,
                    offered_names(m).join(" "),
                    if sends(m) { "" } else { " (not sending)" }
                )
            })
            .collect();
        return Err(OfferProblem::NoUsableCodec(offered.join(", ")));
    }
    Ok(summary)
}

/// A trickle ICE fragment (`application/trickle-ice-sdpfrag`, RFC 8840 §9.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IceFragment {
    /// `a=ice-ufrag`, if given (a change means an ICE restart).
    pub(crate) ufrag: Option<String>,
    /// `a=ice-pwd`, if given.
    pub(crate) pwd: Option<String>,
    /// Candidates with the `a=mid` they follow (`candidate:...`, without `a=`).
    pub(crate) candidates: Vec<(Option<String>, String)>,
}

/// Parses a trickle ICE fragment; lines other than the ones it needs are ignored.
pub(crate) fn parse_ice_fragment(text: &str) -> Result<IceFragment, String> {
    if text.len() > MAX_SDP_BYTES {
        return Err(format!(
            "fragment of {} bytes exceeds {MAX_SDP_BYTES}",
            text.len()
        ));
    }
    let mut fragment = IceFragment::default();
    let mut mid = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((kind, value)) = line.split_once('=') else {
            return Err(format!("not an SDP line: {:?}", truncate(line)));
        };
        if kind.len() != 1 {
            return Err(format!("not an SDP line: {:?}", truncate(line)));
        }
        if kind != "a" {
            continue;
        }
        let (key, val) = value.split_once(':').unwrap_or((value, ""));
        match key {
            "ice-ufrag" => fragment.ufrag = Some(val.to_string()),
            "ice-pwd" => fragment.pwd = Some(val.to_string()),
            "mid" => mid = Some(val.to_string()),
            "candidate" => {
                if val.split_whitespace().count() < 8 {
                    return Err(format!("short candidate line: {:?}", truncate(line)));
                }
                fragment
                    .candidates
                    .push((mid.clone(), format!("candidate:{val}")));
            }
            _ => {}
        }
    }
    Ok(fragment)
}

/// The first 100 characters of `s`, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer like Chrome's: audio (opus, red), video (VP8, VP9 profiles, H264 modes, AV1, rtx).
    pub(crate) const CHROME_LIKE: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 45\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:98 VP9/90000\r\n\
a=fmtp:98 profile-id=0\r\n\
a=rtpmap:99 H264/90000\r\n\
a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:100 H264/90000\r\n\
a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:101 VP9/90000\r\n\
a=fmtp:101 profile-id=2\r\n\
a=rtpmap:102 rtx/90000\r\n\
a=fmtp:102 apt=101\r\n\
a=rtpmap:45 AV1/90000\r\n";

    #[test]
    fn the_first_preferred_codec_the_offer_carries_wins_with_its_offered_parameters() {
        let s =
            inspect_offer(CHROME_LIKE, &[Codec::H264, Codec::Vp8], &[Codec::Opus]).expect("usable");
        let video = s.video.expect("video");
        assert_eq!(video.codec, Codec::H264);
        assert_eq!(video.payload_type, 100, "packetization-mode 1 only");
        assert_eq!(
            video.fmtp,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
        );
        let audio = s.audio.expect("audio");
        assert_eq!(
            (audio.codec, audio.payload_type, audio.channels),
            (Codec::Opus, 111, 2)
        );

        let s = inspect_offer(CHROME_LIKE, &[Codec::Av1, Codec::Vp9], &[]).expect("usable");
        assert_eq!(
            s.video.map(|v| (v.codec, v.payload_type)),
            Some((Codec::Av1, 45))
        );
        assert_eq!(s.audio, None);
        let s = inspect_offer(CHROME_LIKE, &[Codec::Vp9], &[Codec::Opus]).expect("usable");
        assert_eq!(
            s.video.map(|v| v.payload_type),
            Some(98),
            "offer order within a codec"
        );
    }

    #[test]
    fn an_offer_without_a_recordable_codec_names_what_it_offered() {
        let pcmu = CHROME_LIKE
            .replace("111 opus/48000/2", "0 PCMU/8000")
            .replace(
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
                "m=audio 9 UDP/TLS/RTP/SAVPF 0 63",
            );
        match inspect_offer(&pcmu, &[Codec::H265], &[Codec::Opus]) {
            Err(OfferProblem::NoUsableCodec(offered)) => {
                assert!(offered.contains("PCMU"), "{offered}");
                assert!(offered.contains("VP8"), "{offered}");
            }
            other => panic!("{other:?}"),
        }
        let only_mode_0 = CHROME_LIKE.replace("packetization-mode=1", "packetization-mode=0");
        let s = inspect_offer(&only_mode_0, &[Codec::H264], &[Codec::Opus]).expect("audio");
        assert_eq!(s.video, None, "H264 in single NAL mode only is not chosen");
        let recvonly = CHROME_LIKE.replace("a=sendonly", "a=recvonly");
        assert!(matches!(
            inspect_offer(&recvonly, &[Codec::Vp8], &[Codec::Opus]),
            Err(OfferProblem::NoUsableCodec(_))
        ));
    }

    #[test]
    fn junk_and_oversized_offers_are_malformed_not_panics() {
        let junk: [&[u8]; 8] = [
            b"",
            b"hello",
            b"v=0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=video\r\n",
            b"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
            b"v=0\r\no=\r\ns=\r\nt=\r\n",
            &[0xff, 0xfe, 0x00, 0x10],
            b"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=video 99999999999 RTP 96\r\n",
        ];
        for j in junk {
            let text = String::from_utf8_lossy(j);
            assert!(
                matches!(
                    inspect_offer(&text, &[Codec::Vp8], &[Codec::Opus]),
                    Err(OfferProblem::Malformed(_)) | Err(OfferProblem::NoUsableCodec(_))
                ),
                "{text:?}"
            );
        }
        let big = format!("{CHROME_LIKE}{}", "a=x\r\n".repeat(MAX_SDP_BYTES / 5));
        assert!(matches!(
            inspect_offer(&big, &[Codec::Vp8], &[Codec::Opus]),
            Err(OfferProblem::Malformed(_))
        ));
    }

    #[test]
    fn trickle_fragments_yield_their_candidates_and_credentials() {
        let frag = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
                    m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
                    a=end-of-candidates\r\n";
        let f = parse_ice_fragment(frag).expect("valid");
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].0.as_deref(), Some("0"));
        assert!(f.candidates[0].1.starts_with("candidate:1387637174 1 udp"));
        assert!(parse_ice_fragment("garbage").is_err());
        assert!(parse_ice_fragment("a=candidate:1 1 udp\r\n").is_err());
        assert_eq!(
            parse_ice_fragment("").expect("empty"),
            IceFragment::default()
        );
    }
}
