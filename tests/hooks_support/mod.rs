//! Shared by the `hooks_*` end-to-end tests: the real receiver, endpoint settings as
//! `RECNODE_HOOKS__*` variables, synthetic events through the debug API, and the
//! `recnode events` client.
#![allow(dead_code)] // Each test binary uses a different subset.

#[path = "../../actors/tests/hooks_receiver/mod.rs"]
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::common::{recnode_command, run_to_exit, Node};

/// The secret every test endpoint uses (Standard Webhooks form, 24 bytes).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One `[[hooks.endpoints]]` entry as an inline TOML table.
pub fn endpoint(id: &str, url: &str, format: &str, events: &[&str]) -> String {
    let events: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
    format!(
        "{{ id = {id:?}, url = {url:?}, secret = {SECRET:?}, format = {format:?}, events = [{}] }}",
        events.join(", ")
    )
}

/// Node settings for hooks: these endpoints, fast retries, and `extra`.
pub fn hook_env(endpoints: &[String], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "RECNODE_HOOKS__ENDPOINTS".to_string(),
            format!("[{}]", endpoints.join(", ")),
        ),
        (
            "RECNODE_HOOKS__MIN_BACKOFF_SECONDS".to_string(),
            "0.05".to_string(),
        ),
        (
            "RECNODE_HOOKS__MAX_BACKOFF_SECONDS".to_string(),
            "0.5".to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// Starts a logged node with `env`.
pub fn start_node(env: &[(String, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Node::start_logged(&env)
}

/// Emits `count` synthetic `record.segment` events of `stream` through the debug API;
/// returns the (first, last) seq once they are committed.
pub fn emit(node: &Node, stream: &str, count: u32) -> (u64, u64) {
    let body = format!("{{\"count\":{count},\"stream\":{stream:?}}}");
    let r = node.api("POST", "/api/debug/hooks/emit", Some(&body));
    assert_eq!(r.status, 200, "{r:?}");
    let json = r.json();
    (
        json["first_seq"].as_u64().expect("first_seq"),
        json["last_seq"].as_u64().expect("last_seq"),
    )
}

/// `recnode events ARGS` against `node`, to completion (no `--follow`): its stdout lines.
pub fn events_cli(node: &Node, args: &[&str]) -> Vec<String> {
    let mut command = recnode_command(node.cwd.path());
    command
        .arg("events")
        .args(["--url", &format!("http://{}", node.http)])
        .args(args);
    let out = run_to_exit(command, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "recnode events failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A `recnode events --follow …` process; its stdout lines arrive on `lines`.
pub struct Follower {
    child: Child,
    /// Lines printed so far, as they come.
    pub lines: mpsc::Receiver<String>,
}

impl Follower {
    /// Starts `recnode events --follow ARGS` against `node`.
    pub fn start(node: &Node, args: &[&str]) -> Follower {
        let mut child = recnode_command(node.cwd.path())
            .arg("events")
            .arg("--follow")
            .args(["--url", &format!("http://{}", node.http)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn recnode events");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next `n` lines, each within `timeout`.
    pub fn take(&self, n: usize, timeout: Duration) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(timeout)
                    .unwrap_or_else(|_| panic!("recnode events printed only {i} of {n} lines"))
            })
            .collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seq of an event printed as canonical proto3 JSON (uint64 is a string there).
pub fn seq_of(json_line: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(json_line).expect("a JSON event");
    value["seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq in {json_line}"))
}
