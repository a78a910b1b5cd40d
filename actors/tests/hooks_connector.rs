//! The hook connector at actor level: a durable outbox in a real state store, real HTTP
//! deliveries to a receiver that verifies Standard Webhooks signatures, and the failure
//! paths (outage, 410 Gone, dead letters and replay, a crashed deliverer, compaction).

mod hooks_receiver;

use std::path::Path;
use std::time::{Duration, Instant};

use hooks_receiver::Receiver;
use ractor::ActorRef;
use recnode_actors::hooks::events::{self, RecordRef};
use recnode_actors::hooks::{
    start_hooks, ConnectorMsg, EndpointInfo, EndpointSpec, HookFormat, HookSettings, Hooks,
};
use recnode_media::TrackKind;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn settings(endpoints: Vec<EndpointSpec>) -> HookSettings {
    HookSettings {
        node: 7,
        node_alias: "edge-a".into(),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        endpoints,
        ..HookSettings::default()
    }
}

fn endpoint(id: &str, url: String, format: HookFormat, events: &[&str]) -> EndpointSpec {
    EndpointSpec {
        id: Some(id.into()),
        url: Some(url),
        secret: Some(SECRET.into()),
        format,
        events: Some(events.iter().map(|s| s.to_string()).collect()),
    }
}

fn recording() -> RecordRef {
    RecordRef {
        stream: "cam1".into(),
        app: "live".into(),
        record_id: "1700000000".into(),
        record_dir: "cam1/1700000000".into(),
        format: "dash".into(),
    }
}

/// Polls `done` every 20 ms (yielding to the runtime) until it holds or `timeout` passes.
async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The receiver's `wait_for`, without blocking the test's runtime.
async fn wait_received(
    receiver: &Receiver,
    path: &str,
    count: usize,
    timeout: Duration,
) -> Vec<hooks_receiver::Received> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = receiver.received_at(path);
        if got.len() >= count || Instant::now() >= deadline {
            // Past the deadline, the receiver's own wait fails with the details.
            return receiver.wait_for(path, count, Duration::ZERO);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn endpoints(hooks: &Hooks) -> Vec<EndpointInfo> {
    ractor::call_t!(hooks.connector, ConnectorMsg::List, 5_000)
        .expect("connector answers")
        .expect("list")
}

async fn start(db: &Path, settings: HookSettings) -> Hooks {
    start_hooks(settings, db).await.expect("hooks start")
}

/// Emits `n` segment events and waits for their commit; returns their seqs.
async fn emit_segments(hooks: &Hooks, n: u32) -> Vec<u64> {
    let rec = recording();
    let mut pending = Vec::new();
    for i in 1..=n {
        let key = format!("cam1/1700000000/v_seg_{i:04}.m4s");
        pending.push(
            hooks
                .emitter
                .emit(rec.segment(&key, TrackKind::Video, i, 0, 2000, 1000)),
        );
    }
    let mut seqs = Vec::new();
    for p in pending {
        seqs.push(p.await.expect("committed").seq);
    }
    seqs
}

#[tokio::test]
async fn emitted_events_are_committed_gapless_and_unique_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let hooks = start(&db, settings(Vec::new())).await;
    let first = emit_segments(&hooks, 100).await;
    assert_eq!(first, (1..=100).collect::<Vec<_>>());
    // Fire and forget keeps the call order too.
    hooks
        .emitter
        .emit_nowait(events::node_left(7, "edge-a", "shutdown"));
    let last = hooks
        .emitter
        .emit(events::node_joined(7, "edge-a"))
        .await
        .unwrap();
    assert_eq!(last.seq, 102);
    let stored = hooks.outbox.read_after(0, 1000).await.unwrap();
    assert_eq!(stored.len(), 102);
    assert_eq!(stored[100].kind, "node.left");
    let ids: std::collections::BTreeSet<_> = stored.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 102, "ids are unique");
    let decoded = stored[0].decode().unwrap();
    assert_eq!((decoded.node, decoded.node_alias.as_str()), (7, "edge-a"));
    assert_eq!(
        (decoded.seq, decoded.id.as_str()),
        (1, stored[0].id.as_str())
    );
    hooks.stop().await;

    // A new process continues the sequence with the same id prefix.
    let hooks = start(&db, settings(Vec::new())).await;
    let next = emit_segments(&hooks, 1).await;
    assert_eq!(next, [103]);
    let again = hooks.outbox.read_after(102, 10).await.unwrap();
    let prefix = |id: &str| id.rsplit_once('_').unwrap().0.to_string();
    assert_eq!(prefix(&again[0].id), prefix(&stored[0].id));
    hooks.stop().await;
}

#[tokio::test]
async fn events_arrive_signed_in_order_as_protobuf_and_json_with_filters() {
    let receiver = Receiver::start(SECRET);
    let dir = tempfile::tempdir().unwrap();
    let hooks = start(
        &dir.path().join("state.sqlite3"),
        settings(vec![
            endpoint("all-pb", receiver.url("/pb"), HookFormat::Protobuf, &["*"]),
            endpoint(
                "rec-json",
                receiver.url("/json"),
                HookFormat::Json,
                &["record.*", "stream.started"],
            ),
        ]),
    )
    .await;
    let rec = recording();
    let emitter = &hooks.emitter;
    emitter
        .emit(events::stream_started(
            "cam1",
            "live",
            "rtmp",
            &[],
            "127.0.0.1:5000",
        ))
        .await
        .unwrap();
    emitter
        .emit(rec.started("cam1/1700000000/manifest.mpd", ""))
        .await
        .unwrap();
    emitter
        .emit(rec.segment(
            "cam1/1700000000/v_seg_0001.m4s",
            TrackKind::Video,
            1,
            0,
            2000,
            10,
        ))
        .await
        .unwrap();
    emitter
        .emit(events::upload_stored(
            "cam1/1700000000/v_seg_0001.m4s",
            10,
            1,
            3,
        ))
        .await
        .unwrap();
    emitter
        .emit(rec.stopped(2000, events::Outcome::Completed, 1))
        .await
        .unwrap();
    emitter
        .emit(events::stream_stopped(
            "cam1",
            "live",
            "rtmp",
            2100,
            "unpublished",
        ))
        .await
        .unwrap();

    let pb = wait_received(&receiver, "/pb", 6, Duration::from_secs(10)).await;
    let json = wait_received(&receiver, "/json", 4, Duration::from_secs(10)).await;
    assert!(receiver.invalid().is_empty(), "{:?}", receiver.invalid());
    let types = |got: &[hooks_receiver::Received]| {
        got.iter().map(|r| r.event.event_type()).collect::<Vec<_>>()
    };
    assert_eq!(
        types(&pb),
        [
            "stream.started",
            "record.started",
            "record.segment",
            "upload.stored",
            "record.stopped",
            "stream.stopped"
        ]
    );
    assert_eq!(
        types(&json),
        [
            "stream.started",
            "record.started",
            "record.segment",
            "record.stopped"
        ]
    );
    assert!(pb.iter().all(|r| r.format == "protobuf"));
    assert!(json.iter().all(|r| r.format == "json"));
    // The same event decodes the same from either body, and its id is the header's.
    for j in &json {
        let p = pb
            .iter()
            .find(|p| p.event.seq == j.event.seq)
            .expect("same event");
        assert_eq!(p.event, j.event);
        assert_eq!(j.id, j.event.id);
    }
    let started = &pb[1].event;
    let Some(recnode_proto::hook::v1::hook_event::Event::Record(r)) = &started.event else {
        panic!("expected a record event");
    };
    assert_eq!((r.room.as_str(), r.app.as_str()), ("cam1", "live"));
    hooks.stop().await;
}

#[tokio::test]
async fn an_endpoint_outage_delays_but_loses_and_reorders_nothing() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(500);
    let dir = tempfile::tempdir().unwrap();
    let hooks = start(
        &dir.path().join("state.sqlite3"),
        settings(vec![endpoint(
            "ep",
            receiver.url("/h"),
            HookFormat::Protobuf,
            &["*"],
        )]),
    )
    .await;
    let seqs = emit_segments(&hooks, 50).await;
    wait_until("a few refused attempts", Duration::from_secs(10), || {
        receiver.refused() >= 3
    })
    .await;
    assert!(receiver.received().is_empty());
    receiver.set_status(200);
    let got = wait_received(&receiver, "/h", 50, Duration::from_secs(20)).await;
    let delivered: Vec<u64> = got.iter().map(|r| r.event.seq).collect();
    assert_eq!(delivered, seqs, "every event once, in seq order");
    assert!(hooks.wait_delivered(Duration::from_secs(5)).await);
    hooks.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_stops_deliveries() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(410);
    let dir = tempfile::tempdir().unwrap();
    let hooks = start(
        &dir.path().join("state.sqlite3"),
        settings(vec![endpoint(
            "ep",
            receiver.url("/h"),
            HookFormat::Json,
            &["*"],
        )]),
    )
    .await;
    emit_segments(&hooks, 3).await;
    let mut listed = Vec::new();
    for _ in 0..250 {
        listed = endpoints(&hooks).await;
        if !listed[0].enabled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!listed[0].enabled, "{listed:?}");
    assert!(listed[0]
        .disabled_reason
        .as_deref()
        .unwrap()
        .contains("410"));
    let refused = receiver.refused();
    assert_eq!(refused, 1, "one 410 is enough");
    emit_segments(&hooks, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.refused(),
        refused,
        "a disabled endpoint gets nothing"
    );
    hooks.stop().await;
}

#[tokio::test]
async fn events_older_than_max_age_become_dead_letters_and_replay_with_their_ids() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(503);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(vec![endpoint(
        "ep",
        receiver.url("/h"),
        HookFormat::Protobuf,
        &["*"],
    )]);
    s.max_age = Duration::from_millis(300);
    let hooks = start(&dir.path().join("state.sqlite3"), s).await;
    let seqs = emit_segments(&hooks, 3).await;
    let dead = |hooks: Hooks| async move {
        ractor::call_t!(
            hooks.connector,
            |reply| ConnectorMsg::DeadLetters {
                id: "ep".into(),
                after: 0,
                limit: 100,
                reply
            },
            5_000
        )
        .unwrap()
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut letters = Vec::new();
    while letters.len() < 3 {
        assert!(Instant::now() < deadline, "dead letters: {letters:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = dead(hooks.clone()).await;
    }
    assert_eq!(
        letters.iter().map(|d| d.event.seq).collect::<Vec<_>>(),
        seqs
    );
    assert!(
        letters
            .iter()
            .all(|d| d.error.contains("503") && d.attempts >= 1),
        "{letters:?}"
    );
    assert_eq!(endpoints(&hooks).await[0].dead_letters, 3);

    // Events after the dead ones still flow once the endpoint is back.
    receiver.set_status(200);
    let later = emit_segments(&hooks, 1).await;
    let got = wait_received(&receiver, "/h", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].event.seq, later[0]);

    let replayed = ractor::call_t!(
        hooks.connector,
        |r| ConnectorMsg::Replay("ep".into(), r),
        5_000
    )
    .unwrap()
    .unwrap();
    assert_eq!(replayed, 3);
    let got = wait_received(&receiver, "/h", 4, Duration::from_secs(10)).await;
    let again: Vec<_> = got[1..]
        .iter()
        .map(|r| (r.event.seq, r.id.clone()))
        .collect();
    let want: Vec<_> = letters
        .iter()
        .map(|d| (d.event.seq, d.event.id.clone()))
        .collect();
    assert_eq!(again, want, "replayed in seq order with their original ids");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dead(hooks.clone()).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "replayed dead letters are forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hooks.stop().await;
}

#[tokio::test]
async fn endpoints_added_at_run_time_persist_and_bad_ones_name_the_field() {
    let receiver = Receiver::start(SECRET);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let hooks = start(&db, settings(Vec::new())).await;
    let create = |hooks: Hooks, spec: EndpointSpec| async move {
        ractor::call_t!(hooks.connector, |r| ConnectorMsg::Create(spec, r), 5_000).unwrap()
    };
    let mut bad = endpoint("x", receiver.url("/h"), HookFormat::Json, &["*"]);
    bad.secret = Some("whsec_c2hvcnQ=".into());
    match create(hooks.clone(), bad).await {
        Err(recnode_actors::hooks::ConnectorError::Invalid(e)) => assert_eq!(e.field, "secret"),
        other => panic!("{other:?}"),
    }
    let added = create(
        hooks.clone(),
        endpoint("api-1", receiver.url("/h"), HookFormat::Json, &["node.*"]),
    )
    .await
    .expect("valid endpoint");
    assert_eq!((added.id.as_str(), added.source.as_str()), ("api-1", "api"));
    assert!(matches!(
        create(
            hooks.clone(),
            endpoint("api-1", receiver.url("/h"), HookFormat::Json, &["*"])
        )
        .await,
        Err(recnode_actors::hooks::ConnectorError::Exists(_))
    ));
    hooks
        .emitter
        .emit(events::node_joined(7, "edge-a"))
        .await
        .unwrap();
    wait_received(&receiver, "/h", 1, Duration::from_secs(10)).await;
    hooks.stop().await;

    // Still there after a restart (config endpoints do not remove API ones).
    let hooks = start(&db, settings(Vec::new())).await;
    let listed = endpoints(&hooks).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "api-1");
    hooks
        .emitter
        .emit(events::node_joined(7, "edge-a"))
        .await
        .unwrap();
    wait_received(&receiver, "/h", 2, Duration::from_secs(10)).await;
    ractor::call_t!(
        hooks.connector,
        |r| ConnectorMsg::Delete("api-1".into(), r),
        5_000
    )
    .unwrap()
    .unwrap();
    assert!(endpoints(&hooks).await.is_empty());
    hooks.stop().await;
}

#[tokio::test]
async fn a_killed_deliverer_is_restarted_and_delivery_continues() {
    let receiver = Receiver::start(SECRET);
    let dir = tempfile::tempdir().unwrap();
    let hooks = start(
        &dir.path().join("state.sqlite3"),
        settings(vec![endpoint(
            "ep",
            receiver.url("/h"),
            HookFormat::Protobuf,
            &["*"],
        )]),
    )
    .await;
    emit_segments(&hooks, 5).await;
    wait_received(&receiver, "/h", 5, Duration::from_secs(10)).await;
    let connector: &ActorRef<ConnectorMsg> = &hooks.connector;
    let children = connector.get_children();
    assert_eq!(children.len(), 1);
    children[0].kill();
    wait_until("a new deliverer", Duration::from_secs(10), || {
        let now = connector.get_children();
        now.len() == 1 && now[0].get_id() != children[0].get_id()
    })
    .await;
    emit_segments(&hooks, 5).await;
    let got = wait_received(&receiver, "/h", 10, Duration::from_secs(10)).await;
    let seqs: Vec<u64> = got.iter().map(|r| r.event.seq).collect();
    // At least once: a redelivery after the restart is allowed, never a gap or reorder.
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(dedup, (1..=10).collect::<Vec<_>>(), "{seqs:?}");
    hooks.stop().await;
}

#[tokio::test]
async fn compaction_keeps_the_outbox_bounded() {
    let receiver = Receiver::start(SECRET);
    receiver.keep_events(false);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(vec![endpoint(
        "ep",
        receiver.url("/h"),
        HookFormat::Protobuf,
        &["record.*"],
    )]);
    s.retain_events = 100;
    let hooks = start(&dir.path().join("state.sqlite3"), s).await;
    for _ in 0..5 {
        emit_segments(&hooks, 1000).await;
    }
    // Events the endpoint filters out count as settled too.
    hooks
        .emitter
        .emit(events::node_joined(7, "edge-a"))
        .await
        .unwrap();
    assert!(hooks.wait_delivered(Duration::from_secs(60)).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = hooks.outbox.stats().await.unwrap();
        if stats.events <= 100 {
            assert_eq!(stats.last_seq, 5001);
            assert_eq!(stats.first_seq, Some(4902));
            break;
        }
        assert!(Instant::now() < deadline, "outbox not compacted: {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hooks.stop().await;
}
