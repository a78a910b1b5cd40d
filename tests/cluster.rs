//! End to end: three `recnode` processes on loopback form a cluster from their seeds
//! (ractor_cluster, Transitive mode). Any node answers the recording API for a stream
//! live on another one by forwarding to the owner, which the answer names; a stream name
//! live on one node is refused on the others; a killed node is reported gone (and a
//! `node.left` event emitted) by the survivors and rejoins when it restarts; a node with
//! the wrong cookie is refused, and both sides log it. A hook endpoint registered on one
//! node reaches every node, also one that joins later, and each delivers its own events;
//! an auto-record rule put on one node records matching streams on every node; a node
//! frozen with SIGSTOP is reported gone after the heartbeat timeout although its sockets
//! stay open, and rejoins when it answers again. With `[cluster.tls]` (a CA and node
//! certificates made here) nodes seeded with one node find each other and forward API
//! calls; a node whose certificate another CA signed, and a node without TLS, are refused
//! and the refusals are logged.

mod common;
mod hooks_support;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the cluster may take to form, or to notice a change.
const CLUSTER_WAIT: Duration = Duration::from_secs(20);
/// How long a publish may take to be seen.
const LIVE_WAIT: Duration = Duration::from_secs(30);
/// The shared secret of the test clusters.
const COOKIE: &str = "test-cookie-1234";

/// One cluster node's settings: name, cluster address and seeds.
fn cluster_env(
    name: &str,
    listen: SocketAddr,
    seeds: &[SocketAddr],
    cookie: &str,
) -> Vec<(String, String)> {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    [
        ("RECNODE_CLUSTER__ENABLED", "true".to_string()),
        ("RECNODE_CLUSTER__NODE_NAME", name.to_string()),
        ("RECNODE_RECORDER__NODE_ALIAS", name.to_string()),
        ("RECNODE_CLUSTER__LISTEN", listen.to_string()),
        ("RECNODE_CLUSTER__COOKIE", cookie.to_string()),
        ("RECNODE_CLUSTER__SEEDS", format!("[{}]", seeds.join(", "))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Starts a logged node with `env`.
fn start(env: Vec<(String, String)>) -> Node {
    let cwd = tempfile::tempdir().expect("temp dir");
    let log = cwd.path().join("node.log");
    Node::start_in_logged(cwd, env, Some(log))
}

/// Three nodes `a`, `b`, `c`, each seeded with the other two.
fn three_nodes() -> [Node; 3] {
    let addrs = [free_local_addr(), free_local_addr(), free_local_addr()];
    let names = ["a", "b", "c"];
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let seeds: Vec<SocketAddr> = (0..3).filter(|j| *j != i).map(|j| addrs[j]).collect();
            start(cluster_env(names[i], addrs[i], &seeds, COOKIE))
        })
        .collect();
    nodes
        .try_into()
        .unwrap_or_else(|_| unreachable!("three nodes"))
}

/// The names of the members `node` sees (itself excluded) that answered a heartbeat.
fn members_seen(node: &Node) -> Vec<String> {
    let r = node.api("GET", "/api/cluster", None);
    assert_eq!(r.status, 200, "GET /api/cluster: {r:?}");
    let body = r.json();
    let mut names: Vec<String> = body["members"]
        .as_array()
        .expect("members is an array")
        .iter()
        .filter(|m| m["self"] == false && !m["last_seen_ms"].is_null())
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Waits until `node` sees exactly `expected` as its members.
fn wait_members(node: &Node, expected: &[&str]) {
    wait_for(
        &format!("{} to see members {expected:?}", node.http),
        CLUSTER_WAIT,
        || (members_seen(node) == expected).then_some(()),
    );
}

/// The node's `recnode_cluster_stream_group_joins_total` from `/metrics`.
fn stream_group_joins(node: &Node) -> u64 {
    let r = node.api("GET", "/metrics", None);
    assert_eq!(r.status, 200, "GET /metrics: {r:?}");
    (r.body.lines())
        .find_map(|l| l.strip_prefix("recnode_cluster_stream_group_joins_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stream group joins in {}", r.body))
}

/// Waits until `node` answers `GET /api/record/{stream}` with 200.
fn wait_status(node: &Node, stream: &str) -> Value {
    wait_for(
        &format!("GET /api/record/{stream} on {} to answer 200", node.http),
        LIVE_WAIT,
        || {
            let r = node.api("GET", &format!("/api/record/{stream}"), None);
            (r.status == 200).then(|| r.json())
        },
    )
}

#[test]
fn any_node_answers_for_a_stream_live_on_another_and_names_the_owner() {
    let [a, b, c] = three_nodes();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);

    let src = av_source(b.cwd.path(), "src.flv", 30);
    let mut publisher = Publisher::start(&src, &b.rtmp_url("cam"), b.cwd.path());

    // Not recorded yet (no auto_streams): the owner answers through a.
    let status = wait_status(&a, "cam");
    assert_eq!(status["node"], "b", "{status}");
    assert_eq!(status["recording"], false, "{status}");

    // Every node lists the stream, on b.
    for node in [&a, &c] {
        let streams = node.api("GET", "/api/streams", None).json();
        let entry = streams["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .find(|s| s["stream"] == "cam")
            .cloned()
            .unwrap_or_else(|| panic!("cam listed: {streams}"));
        assert_eq!(entry["node"], "b", "{entry}");
    }

    // Start through c, stop through c, start again through c: b records.
    let r = c.api("POST", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["node"], "b", "{r:?}");
    let first_dir = r.json()["record_dir"]
        .as_str()
        .expect("record_dir")
        .to_string();
    wait_for("b to record 2 s of cam", LIVE_WAIT, || {
        let s = a.recording_status("cam");
        (s["recording"] == true && s["duration_seconds"].as_f64()? > 2.0).then_some(())
    });
    let r = c.api("DELETE", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["node"], "b");
    assert_eq!(r.json()["record_dir"], first_dir.as_str());
    assert_eq!(a.recording_status("cam")["recording"], false);
    // A second stop is the owner's 404, forwarded as is.
    let r = c.api("DELETE", "/api/record/cam", None);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("not_recording")),
        "{r:?}"
    );
    // record_ids are unix seconds: the next recording needs a new second.
    wait_for("a new second", Duration::from_secs(3), || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs()
            .to_string();
        (!first_dir.ends_with(&now)).then_some(())
    });
    let r = c.api("POST", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["node"], "b");
    wait_for("b to record 2 s of the second recording", LIVE_WAIT, || {
        let s = c.recording_status("cam");
        (s["recording"] == true && s["duration_seconds"].as_f64()? > 2.0).then_some(())
    });

    // The same name on another node is refused while b has it.
    let mut duplicate = Publisher::start(&src, &a.rtmp_url("cam"), a.cwd.path());
    let refused = duplicate.wait(Duration::from_secs(20));
    assert!(
        !refused.success(),
        "a second publisher of cam on a must be refused"
    );
    assert!(
        a.log().contains("already live on another node"),
        "a logs the refusal"
    );
    assert_eq!(b.recording_status("cam")["node"], "b");
    // One `stream/cam` join, on b; the refused publisher on a joined nothing.
    assert_eq!(stream_group_joins(&b), 1);
    assert_eq!(stream_group_joins(&a), 0);

    // Both recordings are on b and decode.
    let r = a.api("DELETE", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    let _ = publisher.wait(Duration::from_secs(60));
    let dirs = wait_for_finished_recordings(&b, "cam", Duration::from_secs(60));
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for dir in &dirs {
        assert_eq!(
            media::decode_errors(&dir.join("manifest.mpd")),
            "",
            "{}",
            dir.display()
        );
    }
    assert!(record_dirs(&a.recordings(), "cam").is_empty());
    assert!(record_dirs(&c.recordings(), "cam").is_empty());
}

#[test]
fn a_killed_node_is_reported_gone_by_the_others_and_rejoins_after_a_restart() {
    let [a, b, c] = three_nodes();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);

    // c records cam (started through a) when it is killed.
    let src = av_source(c.cwd.path(), "src.flv", 30);
    let publisher = Publisher::start(&src, &c.rtmp_url("cam"), c.cwd.path());
    wait_status(&a, "cam");
    let r = a.api("POST", "/api/record/cam", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["node"], "c", "{r:?}");
    wait_for("c to record 3 s of cam", LIVE_WAIT, || {
        let s = b.recording_status("cam");
        (s["duration_seconds"].as_f64()? > 3.0).then_some(())
    });

    let killed = Instant::now();
    let c = c.kill_9();
    drop(publisher);
    wait_members(&a, &["b"]);
    wait_members(&b, &["a"]);
    let gone = killed.elapsed();
    assert!(
        gone < Duration::from_secs(5),
        "reported gone after {gone:?}"
    );
    for node in [&a, &b] {
        wait_for("node.left in the survivor's events", CLUSTER_WAIT, || {
            hook_event_types(node)
                .iter()
                .any(|t| t == "node.left")
                .then_some(())
        });
        assert!(node.log().contains("cluster node left"));
    }
    // Its stream is live nowhere now, so its publisher may go live elsewhere.
    let r = b.api("GET", "/api/record/cam", None);
    assert_eq!(r.error_code().as_deref(), Some("stream_not_found"), "{r:?}");
    let _moved = Publisher::start(&src, &a.rtmp_url("cam"), a.cwd.path());
    assert_eq!(wait_status(&b, "cam")["node"], "a");

    // c comes back: it rejoins, and its spool recovery finishes the cut recording.
    let c = c.restart();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);
    let dirs = wait_for_finished_recordings(&c, "cam", Duration::from_secs(60));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let session = session_json(&dirs[0]).expect("session.json");
    assert_eq!(session["outcome"], "recovered", "{session}");
    assert_eq!(
        media::decode_errors(&dirs[0].join("manifest.mpd")),
        "",
        "{}",
        dirs[0].display()
    );
}

/// The default `[cluster] peer_timeout_ms`.
const PEER_TIMEOUT: Duration = Duration::from_millis(3000);

/// The canonical JSON of every `node.left` / `node.joined` event in the node's outbox, in
/// seq order, as `(type, data)`.
fn node_events(node: &Node) -> Vec<(String, String)> {
    let r = node.api("GET", "/api/events?since=0&follow=false", None);
    assert_eq!(r.status, 200, "GET /api/events: {r:?}");
    let mut out = Vec::new();
    for message in r.body.split("\n\n") {
        let field = |name: &str| {
            (message.lines())
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_default()
                .to_string()
        };
        let kind = field("event: ");
        if kind == "node.left" || kind == "node.joined" {
            out.push((kind, field("data: ")));
        }
    }
    out
}

/// Waits until the node's outbox has, after its first `skip` node events, a `kind` event
/// whose data contains every one of `needles`.
fn wait_node_event(node: &Node, skip: usize, kind: &str, needles: &[&str]) {
    wait_for(
        &format!("{kind} {needles:?} in the events of {}", node.http),
        CLUSTER_WAIT,
        || {
            (node_events(node).iter().skip(skip))
                .any(|(k, data)| k == kind && needles.iter().all(|n| data.contains(n)))
                .then_some(())
        },
    );
}

/// Resumes a frozen node when dropped, so a failing test leaves no stopped process.
struct Frozen<'a>(&'a Node);

impl Frozen<'_> {
    fn freeze(node: &Node) -> Frozen<'_> {
        node.signal(libc::SIGSTOP);
        Frozen(node)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.signal(libc::SIGCONT);
    }
}

#[test]
fn a_silent_node_is_reported_gone_after_the_heartbeat_timeout_and_rejoins_when_it_answers() {
    let [a, b, c] = three_nodes();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);
    let before = [node_events(&a).len(), node_events(&b).len()];

    // c has a live stream when it freezes.
    let src = av_source(c.cwd.path(), "src.flv", 60);
    let _on_c = Publisher::start(&src, &c.rtmp_url("cam"), c.cwd.path());
    assert_eq!(wait_status(&a, "cam")["node"], "c");

    // Frozen (SIGSTOP): its sockets stay open, only its heartbeat answers stop.
    let frozen = Frozen::freeze(&c);
    let since = Instant::now();
    for (node, skip) in [(&a, before[0]), (&b, before[1])] {
        wait_node_event(node, skip, "node.left", &["\"c\"", "heartbeat_timeout"]);
    }
    let gone = since.elapsed();
    eprintln!("frozen node reported gone after {gone:?}");
    // Its last answer came at most one heartbeat (1 s) before the freeze.
    assert!(
        gone + Duration::from_millis(1200) >= PEER_TIMEOUT,
        "reported gone after {gone:?}, before the timeout"
    );
    wait_members(&a, &["b"]);
    wait_members(&b, &["a"]);
    // Its stream is live nowhere now: the API answers at once, and its publisher may
    // go live elsewhere.
    let asked = Instant::now();
    let r = b.api("GET", "/api/record/cam", None);
    assert_eq!(r.error_code().as_deref(), Some("stream_not_found"), "{r:?}");
    assert!(asked.elapsed() < Duration::from_secs(2), "c was not asked");
    let _moved = Publisher::start(&src, &a.rtmp_url("cam"), a.cwd.path());
    assert_eq!(wait_status(&b, "cam")["node"], "a");

    // It answers again (SIGCONT): it rejoins, and was not blamed by itself for being late.
    let after = [node_events(&a).len(), node_events(&b).len()];
    drop(frozen);
    let resumed = Instant::now();
    for (node, skip) in [(&a, after[0]), (&b, after[1])] {
        wait_node_event(node, skip, "node.joined", &["\"c\""]);
    }
    eprintln!("resumed node rejoined after {:?}", resumed.elapsed());
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);
    assert!(
        !node_events(&c).iter().any(|(kind, _)| kind == "node.left"),
        "c reports nobody gone: {:?}",
        node_events(&c)
    );
    assert!(a
        .log()
        .contains("no heartbeat answer within the peer timeout"));
}

#[test]
fn a_node_with_the_wrong_cookie_is_refused_and_both_sides_log_it() {
    let (addr_a, addr_d) = (free_local_addr(), free_local_addr());
    let a = start(cluster_env("a", addr_a, &[], COOKIE));
    let d = start(cluster_env("d", addr_d, &[addr_a], "not-the-cookie"));
    let refusal = "cluster peer refused: authentication failed";
    wait_for("both sides to log the refusal", CLUSTER_WAIT, || {
        (a.log().contains(refusal) && d.log().contains(refusal)).then_some(())
    });
    assert!(members_seen(&a).is_empty());
    assert!(members_seen(&d).is_empty());
    let r = a.api("GET", "/api/cluster", None).json();
    assert_eq!(
        r["members"].as_array().map(Vec::len),
        Some(1),
        "only a itself: {r}"
    );
}

/// Waits until the receiver got an event at `path` from a node with this alias.
fn wait_event_from(receiver: &hooks_support::receiver::Receiver, path: &str, alias: &str) {
    wait_for(
        &format!("an event from {alias} at {path}"),
        CLUSTER_WAIT,
        || {
            (receiver.received_at(path).iter())
                .any(|r| r.event.node_alias == alias && r.event.event_type() == "record.segment")
                .then_some(())
        },
    );
}

#[test]
fn a_hook_endpoint_registered_on_one_node_receives_every_nodes_events() {
    let receiver = hooks_support::receiver::Receiver::start(hooks_support::SECRET);
    let [a, b, c] = three_nodes();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);

    let body = format!(
        r#"{{"id":"platform","url":"{}","secret":"{}","format":"json"}}"#,
        receiver.url("/hooks"),
        hooks_support::SECRET
    );
    let r = a.api("POST", "/api/hooks", Some(&body));
    assert_eq!(r.status, 201, "{r:?}");
    for node in [&b, &c] {
        wait_for("the endpoint to reach every node", CLUSTER_WAIT, || {
            let list = node.api("GET", "/api/hooks", None).json();
            (list["endpoints"].as_array()?.iter())
                .any(|e| e["id"] == "platform")
                .then_some(())
        });
    }
    for (node, alias) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        hooks_support::emit(node, "cam", 1);
        wait_event_from(&receiver, "/hooks", alias);
    }
    assert!(receiver.invalid().is_empty(), "{:?}", receiver.invalid());

    // A node that joins later catches up from a peer.
    let d = start(cluster_env("d", free_local_addr(), &[b_addr(&b)], COOKIE));
    wait_for("d to have the endpoint", CLUSTER_WAIT, || {
        let list = d.api("GET", "/api/hooks", None).json();
        (list["endpoints"].as_array()?.iter())
            .any(|e| e["id"] == "platform")
            .then_some(())
    });
    hooks_support::emit(&d, "cam", 1);
    wait_event_from(&receiver, "/hooks", "d");

    // Removing it on c removes it everywhere.
    let r = c.api("DELETE", "/api/hooks/platform", None);
    assert_eq!(r.status, 204, "{r:?}");
    for node in [&a, &b, &d] {
        wait_for("the endpoint to be gone everywhere", CLUSTER_WAIT, || {
            let list = node.api("GET", "/api/hooks", None).json();
            (!(list["endpoints"].as_array()?.iter()).any(|e| e["id"] == "platform")).then_some(())
        });
    }
}

/// The rule ids `node` lists in `GET /api/rules`.
fn rule_ids(node: &Node) -> Vec<String> {
    let r = node.api("GET", "/api/rules", None);
    assert_eq!(r.status, 200, "GET /api/rules: {r:?}");
    (r.json()["rules"].as_array().expect("rules").iter())
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `node` lists exactly the rules `expected`.
fn wait_rules(node: &Node, expected: &[&str]) {
    wait_for(
        &format!("{} to list the rules {expected:?}", node.http),
        CLUSTER_WAIT,
        || (rule_ids(node) == expected).then_some(()),
    );
}

#[test]
fn an_auto_record_rule_put_on_one_node_records_matching_streams_on_every_node() {
    let [a, b, c] = three_nodes();
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);

    let r = a.api("PUT", "/api/rules/cams", Some(r#"{"pattern":"cam-*"}"#));
    assert_eq!(r.status, 201, "{r:?}");
    for node in [&b, &c] {
        wait_rules(node, &["cams"]);
    }
    // A node that joins later pulls the rule from a peer.
    let d = start(cluster_env("d", free_local_addr(), &[b_addr(&b)], COOKIE));
    wait_rules(&d, &["cams"]);

    // Published on b: recorded there, as every node reports.
    let src = av_source(b.cwd.path(), "src.flv", 60);
    let _on_b = Publisher::start(&src, &b.rtmp_url("cam-b"), b.cwd.path());
    let status = wait_status(&c, "cam-b");
    assert_eq!(
        (status["node"].as_str(), status["recording"].as_bool()),
        (Some("b"), Some(true)),
        "{status}"
    );
    let _other = Publisher::start(&src, &b.rtmp_url("other"), b.cwd.path());
    assert_eq!(wait_status(&a, "other")["recording"], false);
    // On the late joiner too.
    let _on_d = Publisher::start(&src, &d.rtmp_url("cam-d"), d.cwd.path());
    assert_eq!(wait_status(&a, "cam-d")["recording"], true);

    // Deleted on c: gone everywhere, and new streams are not recorded.
    let r = c.api("DELETE", "/api/rules/cams", None);
    assert_eq!(r.status, 204, "{r:?}");
    for node in [&a, &b, &c, &d] {
        wait_rules(node, &[]);
    }
    let _after = Publisher::start(&src, &a.rtmp_url("cam-a"), a.cwd.path());
    let status = wait_status(&b, "cam-a");
    assert_eq!(
        (status["node"].as_str(), status["recording"].as_bool()),
        (Some("a"), Some(false)),
        "{status}"
    );
    // A stream recorded by the rule before keeps its recording.
    assert_eq!(b.recording_status("cam-b")["recording"], true);
}

/// A node's cluster address, from its `GET /api/cluster`.
fn b_addr(node: &Node) -> SocketAddr {
    let r = node.api("GET", "/api/cluster", None).json();
    r["members"][0]["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("own address in {r}"))
}

/// A CA made for one test; it signs node certificates for `127.0.0.1` into its directory.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    dir: tempfile::TempDir,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        (params.distinguished_name).push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        TestCa { cert, key, dir }
    }

    /// Writes node `node`'s certificate (for 127.0.0.1) and key, and a CA file of the
    /// `trusted` CAs' certificates; returns the `[cluster.tls]` variables naming them.
    fn node_tls_env(&self, node: &str, trusted: &[&TestCa]) -> Vec<(String, String)> {
        let key = rcgen::KeyPair::generate().expect("node key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        (params.distinguished_name).push(rcgen::DnType::CommonName, node);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("node certificate");
        let path = |file: String| self.dir.path().join(file);
        let (cert_file, key_file) = (path(format!("{node}.pem")), path(format!("{node}.key")));
        let ca_file = path(format!("{node}-trusts.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        let cas: String = trusted.iter().map(|ca| ca.cert.pem()).collect();
        std::fs::write(&ca_file, cas).expect("write CA file");
        [
            ("RECNODE_CLUSTER__TLS__CERT", cert_file),
            ("RECNODE_CLUSTER__TLS__KEY", key_file),
            ("RECNODE_CLUSTER__TLS__CA", ca_file),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect()
    }
}

/// Starts node `name` of the cluster whose CA is `ca`, with TLS, on `listen`.
fn start_tls(ca: &TestCa, name: &str, listen: SocketAddr, seeds: &[SocketAddr]) -> Node {
    let mut env = cluster_env(name, listen, seeds, COOKIE);
    env.extend(ca.node_tls_env(name, &[ca]));
    start(env)
}

#[test]
fn nodes_with_tls_find_each_other_from_one_seed_and_forward_api_calls() {
    let ca = TestCa::new("recnode test cluster CA");
    let addrs = [free_local_addr(), free_local_addr(), free_local_addr()];
    // b and c know only a: with TLS they learn of each other through a's heartbeat
    // answers (ractor_cluster's own transitive connections would be plain TCP).
    let a = start_tls(&ca, "a", addrs[0], &[]);
    let b = start_tls(&ca, "b", addrs[1], &[addrs[0]]);
    let c = start_tls(&ca, "c", addrs[2], &[addrs[0]]);
    wait_members(&a, &["b", "c"]);
    wait_members(&b, &["a", "c"]);
    wait_members(&c, &["a", "b"]);
    let learned = "cluster peer learned from a member";
    assert!(
        b.log().contains(learned) || c.log().contains(learned),
        "b or c learned of the other from a"
    );

    // A stream live on c: b forwards the recording API to it.
    let src = av_source(c.cwd.path(), "src.flv", 30);
    let _publisher = Publisher::start(&src, &c.rtmp_url("cam"), c.cwd.path());
    let status = wait_status(&b, "cam");
    assert_eq!(
        (status["node"].as_str(), status["recording"].as_bool()),
        (Some("c"), Some(false)),
        "{status}"
    );
    let r = b.api("POST", "/api/record/cam", None);
    assert_eq!(
        (r.status, r.json()["node"].as_str()),
        (200, Some("c")),
        "{r:?}"
    );
    wait_for("c to record cam, as a sees it", LIVE_WAIT, || {
        (a.recording_status("cam")["recording"] == true).then_some(())
    });
    let r = a.api("DELETE", "/api/record/cam", None);
    assert_eq!(
        (r.status, r.json()["node"].as_str()),
        (200, Some("c")),
        "{r:?}"
    );
    for node in [&a, &b, &c] {
        assert!(
            !node.log().contains("cluster peer refused"),
            "{}",
            node.log()
        );
    }
}

#[test]
fn with_tls_a_node_of_another_ca_and_a_node_without_tls_are_refused_and_logged() {
    let ca = TestCa::new("recnode test cluster CA");
    let other = TestCa::new("someone else's CA");
    let (addr_a, addr_x, addr_p) = (free_local_addr(), free_local_addr(), free_local_addr());
    // a dials x, x dials a; x has the cookie, a certificate of another CA, and trusts
    // the cluster's CA too (a CA certificate is public): mutual TLS refuses it both ways.
    let a = start_tls(&ca, "a", addr_a, &[addr_x]);
    let mut x_env = cluster_env("x", addr_x, &[addr_a], COOKIE);
    x_env.extend(other.node_tls_env("x", &[&ca, &other]));
    let x = start(x_env);
    // p has the cookie and no TLS at all.
    let p = start(cluster_env("p", addr_p, &[addr_a], COOKIE));

    wait_for("a, x and p to log the refusals", CLUSTER_WAIT, || {
        let a_log = a.log();
        // a as server: x's client certificate; a as client: x's server certificate.
        let a_logged = a_log.contains(
            "cluster peer refused: its TLS certificate does not verify against the cluster CA",
        ) && a_log.contains("cluster peer refused: TLS handshake failed");
        let x_logged = x.log().contains("cluster peer refused");
        let p_logged = p
            .log()
            .contains("cluster peer refused: authentication failed");
        (a_logged && x_logged && p_logged).then_some(())
    });
    assert!(a.log().contains("UnknownIssuer"), "a says why: {}", a.log());
    for node in [&a, &x, &p] {
        assert!(members_seen(node).is_empty(), "{}", node.http);
    }
    let r = a.api("GET", "/api/cluster", None).json();
    assert_eq!(
        r["members"].as_array().map(Vec::len),
        Some(1),
        "only a itself: {r}"
    );
}
