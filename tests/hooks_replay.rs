//! Replays: `GET /api/events?since=SEQ` (through `recnode events`) replays the outbox from
//! a seq and then tails it; dead letters of an endpoint that failed past `max_age` are
//! listed and sent again.

mod common;
mod hooks_support;

use std::time::Duration;

use common::{http_get, wait_for, Node};
use hooks_support::receiver::Receiver;
use hooks_support::{emit, endpoint, events_cli, hook_env, seq_of, start_node, Follower, SECRET};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_event_stream_replays_from_a_seq_then_tails() {
    let node = Node::start_logged(&[]);
    // node.joined is seq 1; these are 2..=11.
    let (first, last) = emit(&node, "cam1", 10);
    assert_eq!((first, last), (2, 11));

    let lines = events_cli(&node, &["--since", "4", "--format", "json"]);
    let seqs: Vec<u64> = lines.iter().map(|l| seq_of(l)).collect();
    assert_eq!(seqs, (4..=11).collect::<Vec<_>>());
    let event: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        event["record"]["room"], "cam1",
        "canonical proto3 JSON: {event}"
    );
    assert_eq!(event["record"]["segment"]["number"], 3);

    // Without --since and --follow: everything the node still holds, as text lines.
    let text = events_cli(&node, &[]);
    assert_eq!(text.len(), 11);
    assert!(text[0].starts_with("1\tnode.joined\t{"), "{}", text[0]);

    // Replay, then tail.
    let follower = Follower::start(&node, &["--since", "10", "--format", "json"]);
    let replayed: Vec<u64> = follower.take(2, WAIT).iter().map(|l| seq_of(l)).collect();
    assert_eq!(replayed, [10, 11]);
    emit(&node, "cam1", 3);
    let tailed: Vec<u64> = follower.take(3, WAIT).iter().map(|l| seq_of(l)).collect();
    assert_eq!(tailed, [12, 13, 14]);

    // The raw stream: one SSE message per event, with its seq and type.
    let r = http_get(node.http, "/api/events?since=14&follow=false").expect("answer");
    assert_eq!(r.status, 200);
    assert!(
        r.headers.to_ascii_lowercase().contains("text/event-stream"),
        "{r:?}"
    );
    assert!(
        r.body.contains("id: 14\nevent: record.segment\ndata: {"),
        "{r:?}"
    );
}

#[test]
fn compacted_events_are_reported_as_a_gap() {
    // No endpoints hold events back; only the newest 5 stay for replay.
    let node = Node::start_logged(&[("RECNODE_HOOKS__RETAIN_EVENTS", "5")]);
    emit(&node, "cam1", 20);
    let lines = wait_for("compaction", WAIT, || {
        let lines = events_cli(&node, &["--since", "1", "--format", "json"]);
        (lines.len() <= 5).then_some(lines)
    });
    let seqs: Vec<u64> = lines.iter().map(|l| seq_of(l)).collect();
    assert_eq!(seqs, (17..=21).collect::<Vec<_>>());
    let r = http_get(node.http, "/api/events?since=3&follow=false").expect("answer");
    assert!(
        r.body
            .contains("event: gap\ndata: {\"since\":3,\"first_seq\":17}"),
        "{r:?}"
    );
}

#[test]
fn the_event_stream_needs_the_admin_token() {
    let node = Node::start_logged(&[("RECNODE_AUTH__ADMIN_TOKEN", "s3cret")]);
    let r = http_get(node.http, "/api/events?since=1&follow=false").expect("answer");
    assert_eq!(r.status, 401);
    let lines = events_cli(&node, &["--token", "s3cret"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("node.joined"));
}

#[test]
fn dead_letters_after_a_short_max_age_are_listed_and_replayed() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(500);
    let env = hook_env(
        &[endpoint("ep", &receiver.url("/h"), "protobuf", &["*"])],
        &[("RECNODE_HOOKS__MAX_AGE_SECONDS", "1")],
    );
    let node = start_node(&env);
    emit(&node, "cam1", 3);
    let dead = wait_for("4 dead letters", WAIT, || {
        let r = node.api("GET", "/api/hooks/ep/dead", None);
        assert_eq!(r.status, 200, "{r:?}");
        let dead = r.json()["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (dead.len() == 4).then_some(dead)
    });
    let seqs: Vec<u64> = dead.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(dead[0]["type"], "node.joined");
    assert_eq!(dead[1]["type"], "record.segment");
    assert!(
        dead[1]["error"].as_str().unwrap().contains("500"),
        "{:?}",
        dead[1]
    );
    assert_eq!(dead[1]["event"]["record"]["room"], "cam1");
    let listed = node.api("GET", "/api/hooks", None).json();
    assert_eq!(listed["endpoints"][0]["dead_letters"], 4);
    assert_eq!(node.api("POST", "/api/hooks/nope/replay", None).status, 404);

    receiver.set_status(200);
    let r = node.api("POST", "/api/hooks/ep/replay", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["replayed"], 4);
    let got = receiver.wait_for("/h", 4, WAIT);
    let replayed: Vec<(u64, String)> = got.iter().map(|r| (r.event.seq, r.id.clone())).collect();
    let want: Vec<(u64, String)> = dead
        .iter()
        .map(|d| {
            (
                d["seq"].as_u64().unwrap(),
                d["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(replayed, want, "in seq order, with their original ids");
    wait_for("the dead letters to be forgotten", WAIT, || {
        let r = node.api("GET", "/api/hooks/ep/dead", None).json();
        r["dead_letters"]
            .as_array()
            .is_some_and(|d| d.is_empty())
            .then_some(())
    });
    // New events flow as usual.
    emit(&node, "cam1", 1);
    let got = receiver.wait_for("/h", 5, WAIT);
    assert_eq!(got[4].event.seq, 5);
}
