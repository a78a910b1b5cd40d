//! Helpers shared by the WHIP tests: a node with WHIP on loopback, the aiortc publisher
//! (`scripts/whip_publish.py` in the venv `scripts/test.sh` makes), sources encoded by
//! ffmpeg for the webrtc-rs publisher, and reading track start times from a recording.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{HttpResponse, Node};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python with aiortc (installed by `scripts/test.sh`).
pub fn python() -> PathBuf {
    let python = repo().join(".tools/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import aiortc"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} with aiortc is required: run scripts/test.sh once to install it",
        python.display()
    );
    python
}

/// A node that records every stream, with WHIP on loopback and the given session timeout.
pub fn whip_node(extra: &[(&str, &str)]) -> Node {
    let mut env = vec![
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
        // The test machine's disk may be fuller than the default 1 GiB floor.
        ("RECNODE_DATA__MIN_FREE_BYTES", "0"),
        ("RECNODE_WHIP__UDP_LISTEN", "127.0.0.1:0"),
    ];
    env.extend_from_slice(extra);
    Node::start_logged(&env)
}

/// The WHIP endpoint of `stream` on `node`.
pub fn whip_url(node: &Node, stream: &str) -> String {
    format!("http://{}/whip/{stream}", node.http)
}

/// Runs the aiortc publisher to completion and returns its JSON report.
pub fn aiortc_publish(node: &Node, stream: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("scripts/whip_publish.py"))
        .args(["--url", &whip_url(node, stream)])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the aiortc publisher");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no report from the aiortc publisher ({}): {stdout}\n{}\nnode log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                node.log()
            )
        });
    assert!(
        out.status.success(),
        "aiortc publisher failed: {report}\n{}\nnode log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    report
}

/// Encodes `seconds` of a 320x240 test pattern at 30 fps with ffmpeg into `name`.
pub fn encode_video(dir: &Path, name: &str, seconds: u32, codec_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args(codec_args)
        .arg(&path)
        .stdin(Stdio::null());
    let out = command
        .output()
        .expect("ffmpeg is required (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {codec_args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Encodes `seconds` of a 440 Hz tone as Ogg Opus (20 ms packets).
pub fn encode_opus(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-c:a", "libopus", "-b:a", "64k"])
        .args(["-frame_duration", "20", "-ac", "2"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is required");
    assert!(
        out.status.success(),
        "ffmpeg opus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The decode time of the first sample of `track` (`v` or `a`) in a DASH record dir, in
/// seconds: its first segment's `tfdt` through ffprobe.
pub fn track_start_seconds(dir: &Path, track: &str) -> f64 {
    let init = std::fs::read(dir.join(format!("{track}_init.m4s"))).expect("init segment");
    let seg = std::fs::read(dir.join(format!("{track}_seg_0001.m4s"))).expect("first segment");
    let joined = dir.join(format!("{track}_first.mp4"));
    std::fs::write(&joined, [init, seg].concat()).expect("write joined file");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=dts_time",
            "-of",
            "csv=p=0",
        ])
        .args(["-read_intervals", "%+#1"])
        .arg(&joined)
        .stdin(Stdio::null())
        .output()
        .expect("ffprobe is required");
    let _ = std::fs::remove_file(&joined);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no packet time for {track} in {}", dir.display()))
}

/// A raw HTTP exchange with the node (method, path, headers, body).
pub fn raw_http(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(node.http).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        node.http,
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // A server may answer (and close) before reading a large body: ignore write errors.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    HttpResponse {
        status: status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

/// The value of header `name` (case-insensitive) in a raw header block.
pub fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response.headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
