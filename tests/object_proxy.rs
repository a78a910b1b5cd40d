//! End to end: the object proxy (`GET /api/record/object/{path}` with byte ranges) and
//! the presign service (`POST /api/storage/presign`) of a node on a real S3 server
//! (s3s-fs on loopback), and of a node on local storage.

mod common;

use common::s3::S3Server;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// The node's storage root inside the bucket.
const ROOT: &str = "/rec";
/// The admin token of the nodes in these tests.
const TOKEN: &str = "proxy-test-token";

/// A raw HTTP/1.1 answer, with the body as bytes.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.pointer("/error/code")?.as_str().map(str::to_string)
    }
}

/// Sends one request with `Connection: close` and reads the answer to the end.
fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("set read timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `GET /api/record/object/{key}` with the admin token and extra headers.
fn get_object(node: &Node, key: &str, headers: &[(&str, &str)]) -> Answer {
    object(node, "GET", key, headers)
}

fn object(node: &Node, method: &str, key: &str, headers: &[(&str, &str)]) -> Answer {
    let auth = format!("Bearer {TOKEN}");
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    request(
        node.http,
        method,
        &format!("/api/record/object/{key}"),
        &all,
        b"",
    )
}

/// Bytes that differ at every offset, so a wrong slice cannot pass.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn write(root: &Path, key: &str, data: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("a key has a parent")).expect("mkdir");
    std::fs::write(path, data).expect("write object");
}

/// Checks every proxy behaviour on `node`, whose storage holds `small` at
/// `cam/1700000000/session.json` and `large` at `cam/1700000000/v_seg_0001.m4s`.
fn check_proxy(node: &Node, small: &[u8], large: &[u8]) {
    let seg = "cam/1700000000/v_seg_0001.m4s";
    let len = large.len();

    let whole = get_object(node, seg, &[]);
    assert_eq!(whole.status, 200, "{:?}", whole.headers);
    assert_eq!(whole.body, large, "the whole object");
    assert_eq!(whole.header("content-type"), Some("video/iso.segment"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-length"), Some(&*len.to_string()));

    let cases = [
        ("bytes=1000-1999".to_string(), 1000, 1999),
        (format!("bytes={}-", len - 777), len - 777, len - 1),
        ("bytes=-4096".to_string(), len - 4096, len - 1),
        (format!("bytes=5-{}", len * 2), 5, len - 1),
        ("bytes=0-0".to_string(), 0, 0),
    ];
    for (range, start, end) in cases {
        let part = get_object(node, seg, &[("Range", &range)]);
        assert_eq!(part.status, 206, "{range}: {:?}", part.headers);
        assert_eq!(part.body, large[start..=end], "{range}: the object's slice");
        assert_eq!(
            part.header("content-range"),
            Some(&*format!("bytes {start}-{end}/{len}")),
            "{range}"
        );
        assert_eq!(
            part.header("content-length"),
            Some(&*(end - start + 1).to_string()),
            "{range}"
        );
    }

    let session = "cam/1700000000/session.json";
    let part = get_object(node, session, &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, small[10..20]);
    assert_eq!(part.header("content-type"), Some("application/json"));
    let tail = get_object(node, session, &[("Range", "bytes=-5")]);
    assert_eq!(tail.body, small[small.len() - 5..]);

    let past = get_object(node, seg, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(&*format!("bytes */{len}"))
    );
    assert_eq!(past.error_code().as_deref(), Some("range_not_satisfiable"));

    let head = object(node, "HEAD", seg, &[("Range", "bytes=0-99")]);
    assert_eq!(head.status, 206);
    assert_eq!(head.header("content-length"), Some("100"));
    assert!(head.body.is_empty());

    let missing = get_object(node, "cam/1700000000/v_seg_0999.m4s", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code().as_deref(), Some("object_not_found"));

    for escape in [
        "../../etc/passwd",
        "cam/../../secret",
        "cam/./x",
        "%2e%2e/%2e%2e/etc/passwd",
    ] {
        let refused = get_object(node, escape, &[]);
        assert_eq!(refused.status, 400, "{escape}");
        assert_eq!(
            refused.error_code().as_deref(),
            Some("invalid_key"),
            "{escape}"
        );
    }

    let anonymous = request(
        node.http,
        "GET",
        &format!("/api/record/object/{seg}"),
        &[],
        b"",
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.error_code().as_deref(), Some("unauthorized"));
}

#[test]
fn the_object_proxy_serves_objects_and_byte_ranges_from_s3() {
    let s3 = S3Server::start();
    let small = pattern(300, 1);
    let large = pattern(3 * 1024 * 1024 + 17, 2);
    // s3s-fs keeps `{bucket}/{key}` as plain files: put the objects there.
    let bucket = s3.root.path().join(common::s3::BUCKET);
    write(&bucket, "rec/cam/1700000000/session.json", &small);
    write(&bucket, "rec/cam/1700000000/v_seg_0001.m4s", &large);
    write(&bucket, "outside-the-root.bin", b"secret");
    let mut env = s3.node_env(ROOT);
    env.push(("RECNODE_AUTH__ADMIN_TOKEN".into(), TOKEN.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let node = Node::start_with(&env);
    check_proxy(&node, &small, &large);
    let outside = get_object(&node, "../outside-the-root.bin", &[]);
    assert_eq!(outside.status, 400);
}

#[test]
fn the_object_proxy_serves_objects_and_byte_ranges_from_local_storage() {
    let node = Node::start_with(&[("RECNODE_AUTH__ADMIN_TOKEN", TOKEN)]);
    let small = pattern(300, 3);
    let large = pattern(2 * 1024 * 1024 + 5, 4);
    write(&node.recordings(), "cam/1700000000/session.json", &small);
    write(&node.recordings(), "cam/1700000000/v_seg_0001.m4s", &large);
    check_proxy(&node, &small, &large);
    let dir = get_object(&node, "cam/1700000000", &[]);
    assert_eq!(dir.status, 404, "a directory is not an object");
}

/// `POST /api/storage/presign` with the admin token.
fn presign(node: &Node, body: &str) -> Answer {
    let auth = format!("Bearer {TOKEN}");
    request(
        node.http,
        "POST",
        "/api/storage/presign",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// Sends `data` with exactly the presigned request, as a client without credentials would.
fn send_presigned(signed: &serde_json::Value, data: &[u8]) -> Answer {
    let url = signed["url"].as_str().expect("url");
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the test server is plain HTTP: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let addr: SocketAddr = authority.parse().expect("a loopback address");
    let headers: Vec<(String, String)> = signed["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(n, v)| (n.clone(), v.as_str().expect("string header").to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let method = signed["method"].as_str().expect("method");
    request(addr, method, path, &headers, data)
}

#[test]
fn the_presign_service_hands_out_urls_that_store_objects() {
    let s3 = S3Server::start();
    let mut env = s3.node_env(ROOT);
    env.push(("RECNODE_AUTH__ADMIN_TOKEN".into(), TOKEN.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let node = Node::start_with(&env);

    let answer = presign(
        &node,
        r#"{"key":"cam/1700000000/v_seg_0001.m4s","method":"PUT","ttl_seconds":999999999}"#,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let signed: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(signed["method"], "PUT");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let expires_at = signed["expires_at"].as_u64().expect("expires_at");
    assert!(
        expires_at > now && expires_at <= now + 604_800 + 5,
        "the validity is clamped to 7 days: {signed}"
    );

    let data = pattern(70_000, 5);
    let stored = send_presigned(&signed, &data);
    assert_eq!(
        stored.status,
        200,
        "PUT to the presigned URL: {}",
        String::from_utf8_lossy(&stored.body)
    );
    let objects = s3.list("rec/");
    assert_eq!(
        objects,
        [("rec/cam/1700000000/v_seg_0001.m4s".to_string(), 70_000)],
        "the key is relative to the node's storage root"
    );
    // And the proxy reads it back.
    let back = get_object(&node, "cam/1700000000/v_seg_0001.m4s", &[]);
    assert_eq!(back.body, data);

    for (body, code) in [
        (
            r#"{"key":"../x","method":"PUT","ttl_seconds":60}"#,
            "invalid_key",
        ),
        (
            r#"{"key":"/abs","method":"PUT","ttl_seconds":60}"#,
            "invalid_key",
        ),
        (
            r#"{"key":"a/b","method":"GET","ttl_seconds":60}"#,
            "unsupported_method",
        ),
        (r#"{"key":"a/b","method":"PUT"}"#, "invalid_body"),
        (
            r#"{"key":"a/b","method":"PUT","ttl_seconds":1,"acl":"public"}"#,
            "invalid_body",
        ),
    ] {
        let refused = presign(&node, body);
        assert_eq!(refused.status, 400, "{body}");
        assert_eq!(refused.error_code().as_deref(), Some(code), "{body}");
    }
    let anonymous = request(
        node.http,
        "POST",
        "/api/storage/presign",
        &[],
        br#"{"key":"a/b","method":"PUT","ttl_seconds":60}"#,
    );
    assert_eq!(anonymous.status, 401);
}

#[test]
fn local_storage_cannot_presign() {
    let node = Node::start_with(&[("RECNODE_AUTH__ADMIN_TOKEN", TOKEN)]);
    let answer = presign(
        &node,
        r#"{"key":"a/b.m4s","method":"PUT","ttl_seconds":60}"#,
    );
    assert_eq!(answer.status, 501);
    assert_eq!(answer.error_code().as_deref(), Some("presign_unsupported"));
}
