//! Shared helpers for the end-to-end tests: start the built `recnode` binary in a
//! temporary working directory, wait on conditions with a timeout, speak minimal HTTP.
#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

pub mod s3;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start answering HTTP.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test, built by cargo for this test run.
pub fn recnode_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_recnode"))
}

/// A `recnode` command with `cwd` as working directory and no `RECNODE_*` variables
/// inherited from the environment running the tests.
pub fn recnode_command(cwd: &Path) -> Command {
    let mut command = Command::new(recnode_bin());
    command.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RECNODE_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs `recnode` to completion (for start-up failures) with a timeout.
pub fn run_to_exit(mut command: Command, timeout: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recnode");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.expect("wait for recnode"),
        Err(_) => {
            // SAFETY: plain libc call; `pid` is our child that has not been reaped
            // (the waiting thread is still blocked), so it cannot name another process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("recnode did not exit within {timeout:?}");
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the node to take).
pub fn free_local_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener
        .local_addr()
        .expect("local addr of a bound listener")
}

/// Polls `condition` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Raw header block (without the status line).
    pub headers: String,
    /// Body as text.
    pub body: String,
}

impl HttpResponse {
    /// The body parsed as JSON (panics with the response if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The `error.code` of an error answer, if any.
    pub fn error_code(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .pointer("/error/code")?
            .as_str()
            .map(str::to_string)
    }
}

/// `GET path` on `addr` with `Connection: close`; `None` if the connection fails.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    })
}

/// `method path` on `addr` with an optional JSON body and bearer token; `None` if the connection fails.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Option<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let body = body.unwrap_or("");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    })
}

/// A running `recnode` process; killed on drop if still running.
pub struct Node {
    child: Child,
    /// Address of its HTTP API.
    pub http: SocketAddr,
    /// Address of its RTMP listener.
    pub rtmp: SocketAddr,
    /// Its working directory (recordings under `recordings/`, spool and state under `data/`).
    pub cwd: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Where its stderr goes when started with [`Node::start_logged`] (else inherited).
    log: Option<PathBuf>,
}

impl Node {
    /// Starts a node with built-in defaults, HTTP on a free local port, in a fresh
    /// temporary directory, and waits until `GET /healthz` answers 200.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// Like [`Node::start`], with extra `RECNODE_*` variables.
    pub fn start_with(env: &[(&str, &str)]) -> Node {
        let cwd = tempfile::tempdir().expect("create temp dir");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Node::start_in(cwd, env)
    }

    /// Like [`Node::start_with`], with the node's stderr (its log) appended to
    /// `node.log` in its working directory; read it with [`Node::log`].
    pub fn start_logged(env: &[(&str, &str)]) -> Node {
        let cwd = tempfile::tempdir().expect("create temp dir");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = cwd.path().join("node.log");
        Node::start_in_logged(cwd, env, Some(log))
    }

    /// Starts a node in `cwd` (a new one, or one a killed node left) with `env`.
    pub fn start_in(cwd: tempfile::TempDir, env: Vec<(String, String)>) -> Node {
        Node::start_in_logged(cwd, env, None)
    }

    /// Like [`Node::start_in`]; with `log`, stderr is appended to that file instead of inherited.
    pub fn start_in_logged(
        cwd: tempfile::TempDir,
        env: Vec<(String, String)>,
        log: Option<PathBuf>,
    ) -> Node {
        let http = free_local_addr();
        let rtmp = free_local_addr();
        let stderr = match &log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open the node's log file"),
            ),
            None => Stdio::inherit(),
        };
        let child = recnode_command(cwd.path())
            .env("RECNODE_HTTP__LISTEN", http.to_string())
            .env("RECNODE_RTMP__LISTEN", rtmp.to_string())
            // The WHIP UDP socket on any free port, so parallel nodes never collide on 8189.
            .env("RECNODE_WHIP__UDP_LISTEN", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn recnode");
        let mut node = Node {
            child,
            http,
            rtmp,
            cwd,
            env,
            log,
        };
        wait_for("GET /healthz to answer 200", START_TIMEOUT, || {
            if let Some(status) = node.child.try_wait().expect("poll recnode") {
                panic!("recnode exited during start-up: {status}");
            }
            http_get(node.http, "/healthz").filter(|r| r.status == 200)
        });
        node
    }

    /// The storage root of a node on defaults: `recordings/` in its working directory.
    pub fn recordings(&self) -> PathBuf {
        self.cwd.path().join("recordings")
    }

    /// Calls the node's API.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        http_request(self.http, method, path, body, None)
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer"))
    }

    /// The RTMP URL of `stream` in app `live`.
    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://{}/live/{stream}", self.rtmp)
    }

    /// Kills the process with SIGKILL (no clean-up at all) and starts it again in the
    /// same directory with the same settings.
    pub fn kill_9_and_restart(mut self) -> Node {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Move the directory and settings out; `Drop` then has nothing left to stop.
        let cwd = std::mem::replace(&mut self.cwd, tempfile::tempdir().expect("temp dir"));
        let env = std::mem::take(&mut self.env);
        let log = self.log.take();
        Node::start_in_logged(cwd, env, log)
    }

    /// Kills the process with SIGKILL and keeps its directory and settings, to start it
    /// again later with [`KilledNode::restart`].
    pub fn kill_9(mut self) -> KilledNode {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let cwd = std::mem::replace(&mut self.cwd, tempfile::tempdir().expect("temp dir"));
        KilledNode {
            cwd,
            env: std::mem::take(&mut self.env),
            log: self.log.take(),
        }
    }

    /// What the node logged so far (all its runs), when started with [`Node::start_logged`].
    pub fn log(&self) -> String {
        let path = self
            .log
            .as_ref()
            .expect("start the node with Node::start_logged");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The local spool of a node on defaults: `data/spool/` in its working directory.
    pub fn spool(&self) -> PathBuf {
        self.cwd.path().join("data").join("spool")
    }

    /// Calls the node's API with a bearer token (or none).
    pub fn api_with_token(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> HttpResponse {
        http_request(self.http, method, path, body, token)
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer"))
    }

    /// `GET /api/record/{stream}` as JSON (panics unless it answers 200).
    pub fn recording_status(&self, stream: &str) -> serde_json::Value {
        let r = self.api("GET", &format!("/api/record/{stream}"), None);
        assert_eq!(r.status, 200, "GET /api/record/{stream}: {r:?}");
        r.json()
    }

    /// Injects a fault into a live stream through the debug API (`fail-recorder` or
    /// `fire-rotation`; the test build of the binary has the `fault-injection` feature).
    pub fn inject_fault(&self, stream: &str, fault: &str) {
        let r = self.api("POST", &format!("/api/debug/fault/{stream}/{fault}"), None);
        assert_eq!(
            r.status, 204,
            "POST /api/debug/fault/{stream}/{fault}: {r:?}"
        );
    }

    /// Sends `signal` to the process (e.g. `libc::SIGSTOP` to freeze it, `libc::SIGCONT`
    /// to let it go on).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain libc call on our own child's pid; the child has not been
        // reaped (we still own it), so the pid cannot have been reused.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    /// Sends SIGTERM and waits (with a timeout) for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        // SAFETY: plain libc call on our own child's pid; the child has not been
        // reaped (we still own it), so the pid cannot have been reused.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        wait_for("recnode to exit after SIGTERM", timeout, || {
            self.child.try_wait().expect("poll recnode")
        })
    }
}

/// A node killed with [`Node::kill_9`]: its directory and settings, not running.
pub struct KilledNode {
    cwd: tempfile::TempDir,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
}

impl KilledNode {
    /// Starts the node again in its directory with its settings (new HTTP and RTMP ports).
    pub fn restart(self) -> Node {
        Node::start_in_logged(self.cwd, self.env, self.log)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The types (`record.started`, `upload.stored`, ...) of every hook event in the node's
/// outbox so far, in seq order, read from `GET /api/events?since=0&follow=false`.
pub fn hook_event_types(node: &Node) -> Vec<String> {
    let r = node.api("GET", "/api/events?since=0&follow=false", None);
    assert_eq!(r.status, 200, "GET /api/events: {r:?}");
    r.body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

/// Makes a `seconds`-long test source like the one every RTMP test publishes
/// (`media::lavfi_source` makes 5 s): a 320x240 25 fps test pattern with a 440 Hz tone at
/// 44.1 kHz, H264 with B-frames and a keyframe every second, and AAC, in FLV.
pub fn av_source(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "96k"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is required (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg could not make the source: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// An ffmpeg process publishing a file over RTMP at real-time pace (`-re -c copy`);
/// killed on drop if still running. Its stderr goes to `{log_dir}/publish.log`.
pub struct Publisher {
    child: Child,
    log: PathBuf,
    /// When ffmpeg was started.
    pub started: Instant,
}

impl Publisher {
    /// Starts `ffmpeg -re -i src -c copy -f flv url` without waiting for it.
    pub fn start(src: &Path, url: &str, log_dir: &Path) -> Publisher {
        let log = log_dir.join("publish.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the publisher's log");
        let started = Instant::now();
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-re", "-i"])
            .arg(src)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("ffmpeg is required (scripts/test.sh installs it)");
        Publisher {
            child,
            log,
            started,
        }
    }

    /// Waits (with a timeout) for ffmpeg to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        wait_for("the publisher (ffmpeg) to exit", timeout, || {
            self.child.try_wait().expect("poll ffmpeg")
        })
    }

    /// Whether ffmpeg is still publishing.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll ffmpeg").is_none()
    }

    /// Waits for ffmpeg to exit and asserts that it succeeded (the whole file was sent).
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = self.wait(timeout);
        assert!(
            status.success(),
            "ffmpeg publish failed ({status}): {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The record dirs of `stream` in the default layout `{root}/{stream}/{record_id}`, sorted
/// (record_ids are 10-digit unix times, so by start).
pub fn record_dirs(root: &Path, stream: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(stream)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A record dir's session.json, if it is there and parses.
pub fn session_json(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("session.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A record dir's session outcome (`recording`, `completed`, `rotated`, `failed`, `recovered`).
pub fn session_outcome(dir: &Path) -> Option<String> {
    session_json(dir)?
        .get("outcome")?
        .as_str()
        .map(str::to_string)
}

/// Whether a record dir is finished in storage: a static manifest and a session.json whose
/// outcome is no longer `recording`.
pub fn is_finished(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("manifest.mpd")).is_ok_and(|m| m.contains("type=\"static\""))
        && session_outcome(dir).is_some_and(|o| o != "recording")
}

/// Every regular file under `dir`, recursively (none if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Waits until every record dir of `stream` in storage is finished, there is at least
/// one, and the spool holds no file: the node has nothing of the stream left to upload.
pub fn wait_for_finished_recordings(node: &Node, stream: &str, timeout: Duration) -> Vec<PathBuf> {
    wait_for(
        &format!("every recording of {stream} to be finished in storage"),
        timeout,
        || {
            let dirs = record_dirs(&node.recordings(), stream);
            let done = !dirs.is_empty()
                && dirs.iter().all(|d| is_finished(d))
                && files_under(&node.spool()).is_empty();
            done.then_some(dirs)
        },
    )
}

/// The FLV file of a record dir.
pub fn flv_of(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("record dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "flv"))
        .unwrap_or_else(|| panic!("no FLV in {}", dir.display()))
}
