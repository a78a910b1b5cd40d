//! The WHIP resource over HTTP (RFC 9725), against the built binary: CORS preflight,
//! every refusal as a JSON 4xx (content type, size, junk, no usable codec, stream name,
//! a live stream), trickle ICE PATCH with its ETag and ICE-restart rules, and DELETE.
//! A session whose publisher never connects is closed by the session timeout.

mod common;
mod whip_support;

use common::*;
use std::time::Duration;
use whip_support::*;

/// A complete offer (VP8 + Opus, sendonly) from a publisher that will never connect.
fn offer(ufrag: &str, audio_codec: &str) -> String {
    let fingerprint = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    let common = format!(
        "c=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:{fingerprint}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\n"
    );
    let (audio_pt, audio_map) = match audio_codec {
        "opus" => (111, "opus/48000/2"),
        _ => (0, "PCMU/8000"),
    };
    let video = if audio_codec == "opus" {
        format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{common}a=mid:1\r\na=rtpmap:96 VP8/90000\r\n")
    } else {
        format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 126\r\n{common}a=mid:1\r\na=rtpmap:126 MP4V-ES/90000\r\n"
        )
    };
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF {audio_pt}\r\n{common}a=mid:0\r\na=rtpmap:{audio_pt} {audio_map}\r\n\
         {video}"
    )
}

fn post(node: &Node, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    raw_http(node, "POST", path, &[("Content-Type", content_type)], body)
}

#[test]
fn refusals_are_json_4xx_and_never_start_a_stream() {
    let node = whip_node(&[]);
    let sdp = offer("abcd", "opus");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/whip/cam",
            "text/plain",
            sdp.clone().into_bytes(),
            415,
            "unsupported_media_type",
        ),
        (
            "/whip/cam",
            "application/sdp",
            vec![b'v'; 100 * 1024],
            413,
            "body_too_large",
        ),
        (
            "/whip/cam",
            "application/sdp",
            b"hello, world".to_vec(),
            400,
            "malformed_sdp",
        ),
        (
            "/whip/cam",
            "application/sdp",
            vec![0xff, 0xfe, 0xfd],
            400,
            "malformed_sdp",
        ),
        (
            "/whip/cam",
            "application/sdp",
            offer("abcd", "pcmu").into_bytes(),
            422,
            "no_usable_codec",
        ),
        (
            "/whip/bad$name",
            "application/sdp",
            sdp.clone().into_bytes(),
            400,
            "invalid_stream_name",
        ),
        (
            "/whip/..",
            "application/sdp",
            sdp.clone().into_bytes(),
            400,
            "invalid_stream_name",
        ),
    ];
    for (path, content_type, body, status, code) in cases {
        let r = post(&node, path, content_type, &body);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (status, Some(code)),
            "POST {path} ({content_type}, {} bytes): {r:?}",
            body.len()
        );
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some("*"),
            "{r:?}"
        );
    }
    let streams = node.api("GET", "/api/streams", None);
    assert_eq!(streams.status, 200, "{streams:?}");
    assert!(
        !streams.body.contains("\"cam\""),
        "no stream went live: {}",
        streams.body
    );
    let get = raw_http(&node, "GET", "/whip/cam", &[], b"");
    assert_eq!(
        (get.status, get.error_code().as_deref()),
        (405, Some("method_not_allowed"))
    );
}

#[test]
fn a_browser_on_another_origin_passes_the_cors_preflight() {
    let node = whip_node(&[]);
    let headers = [
        ("Origin", "https://studio.example"),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ),
    ];
    for path in ["/whip/cam", "/whip/cam/0123456789abcdef"] {
        let r = raw_http(&node, "OPTIONS", path, &headers, b"");
        assert_eq!(r.status, 204, "{r:?}");
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        let methods = header(&r, "access-control-allow-methods").unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("DELETE") && methods.contains("PATCH")
        );
        let allowed = header(&r, "access-control-allow-headers")
            .unwrap_or_default()
            .to_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        let exposed = header(&r, "access-control-expose-headers").unwrap_or_default();
        assert!(
            exposed.contains("Location") && exposed.contains("ETag"),
            "{r:?}"
        );
    }
}

#[test]
fn a_session_answers_patch_refuses_a_second_publisher_and_ends_on_delete() {
    let node = whip_node(&[("RECNODE_WHIP__SESSION_TIMEOUT_SECONDS", "30")]);
    let r = post(
        &node,
        "/whip/cam",
        "application/sdp",
        offer("abcd", "opus").as_bytes(),
    );
    assert_eq!(r.status, 201, "{r:?}\n{}", node.log());
    assert_eq!(header(&r, "content-type"), Some("application/sdp"));
    assert!(
        r.body.contains("a=candidate:"),
        "every candidate is in the answer: {}",
        r.body
    );
    assert!(
        r.body.contains("VP8") && r.body.contains("opus"),
        "{}",
        r.body
    );
    let location = header(&r, "location").expect("Location").to_string();
    assert!(location.starts_with("/whip/cam/"), "{location}");
    let etag = header(&r, "etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let again = post(
        &node,
        "/whip/cam",
        "application/sdp",
        offer("efgh", "opus").as_bytes(),
    );
    assert_eq!(
        (again.status, again.error_code().as_deref()),
        (409, Some("stream_live")),
        "{again:?}"
    );

    let frag = |ufrag: &str| {
        format!(
            "a=ice-ufrag:{ufrag}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host generation 0\r\na=end-of-candidates\r\n"
        )
    };
    let patch = |if_match: &str, body: &str, content_type: &str| {
        raw_http(
            &node,
            "PATCH",
            &location,
            &[("Content-Type", content_type), ("If-Match", if_match)],
            body.as_bytes(),
        )
    };
    let ok = patch(&etag, &frag("abcd"), "application/trickle-ice-sdpfrag");
    assert_eq!(ok.status, 204, "{ok:?}");
    let stale = patch(
        "\"stale\"",
        &frag("abcd"),
        "application/trickle-ice-sdpfrag",
    );
    assert_eq!(
        (stale.status, stale.error_code().as_deref()),
        (412, Some("etag_mismatch"))
    );
    let restart = patch("*", &frag("zzzz"), "application/trickle-ice-sdpfrag");
    assert_eq!(
        (restart.status, restart.error_code().as_deref()),
        (422, Some("ice_restart_unsupported"))
    );
    let junk = patch(&etag, "not a fragment", "application/trickle-ice-sdpfrag");
    assert_eq!(
        (junk.status, junk.error_code().as_deref()),
        (400, Some("malformed_fragment"))
    );
    let wrong_type = patch(&etag, &frag("abcd"), "application/sdp");
    assert_eq!(wrong_type.status, 415);

    let wrong_stream = location.replacen("/whip/cam/", "/whip/other/", 1);
    let r = raw_http(&node, "DELETE", &wrong_stream, &[], b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("session_not_found"))
    );
    let r = raw_http(&node, "DELETE", &location, &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let r = raw_http(&node, "DELETE", &location, &[], b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("session_not_found"))
    );
    // The stream is gone: the name can be published again.
    wait_for(
        "the stream to end after DELETE",
        Duration::from_secs(10),
        || {
            let r = node.api("GET", "/api/streams", None);
            (!r.body.contains("\"cam\"")).then_some(())
        },
    );
}

#[test]
fn a_publisher_that_never_connects_is_closed_by_the_session_timeout() {
    let node = whip_node(&[("RECNODE_WHIP__SESSION_TIMEOUT_SECONDS", "1")]);
    let r = post(
        &node,
        "/whip/ghost",
        "application/sdp",
        offer("abcd", "opus").as_bytes(),
    );
    assert_eq!(r.status, 201, "{r:?}");
    wait_for("the session to time out", Duration::from_secs(20), || {
        let r = node.api("GET", "/api/streams", None);
        (!r.body.contains("\"ghost\"")).then_some(())
    });
    assert!(node.log().contains("no RTP within the session timeout"));
}
