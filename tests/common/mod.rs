//! Shared helpers for the end-to-end tests: start the built `recnode` binary in a
//! temporary working directory, wait on conditions with a timeout, speak minimal HTTP.
#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

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

    /// Starts a node in `cwd` (a new one, or one a killed node left) with `env`.
    pub fn start_in(cwd: tempfile::TempDir, env: Vec<(String, String)>) -> Node {
        let http = free_local_addr();
        let rtmp = free_local_addr();
        let child = recnode_command(cwd.path())
            .env("RECNODE_HTTP__LISTEN", http.to_string())
            .env("RECNODE_RTMP__LISTEN", rtmp.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn recnode");
        let mut node = Node {
            child,
            http,
            rtmp,
            cwd,
            env,
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
        Node::start_in(cwd, env)
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

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
