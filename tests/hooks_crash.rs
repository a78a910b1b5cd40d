//! A node killed with `kill -9` keeps every event it emitted: after the restart they are
//! delivered, in order; a redelivery keeps the event's id.

mod common;
mod hooks_support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::wait_for;
use hooks_support::receiver::{Received, Receiver};
use hooks_support::{emit, endpoint, hook_env, start_node, SECRET};

const WAIT: Duration = Duration::from_secs(60);

/// Checks at-least-once in order: every seq in `1..=last` arrived, each copy of a seq has
/// the same id, and first arrivals are in seq order. Returns how many were duplicates.
fn check_complete(got: &[Received], last: u64) -> usize {
    let mut ids: BTreeMap<u64, String> = BTreeMap::new();
    let mut firsts = Vec::new();
    for r in got {
        match ids.get(&r.event.seq) {
            Some(id) => assert_eq!(
                id, &r.id,
                "a redelivery of seq {} changed its id",
                r.event.seq
            ),
            None => {
                ids.insert(r.event.seq, r.id.clone());
                firsts.push(r.event.seq);
            }
        }
    }
    assert_eq!(
        firsts,
        (1..=last).collect::<Vec<_>>(),
        "every event, first arrivals in order"
    );
    got.len() - firsts.len()
}

#[test]
fn events_undelivered_at_kill_9_arrive_after_the_restart() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(503);
    let env = hook_env(
        &[endpoint("ep", &receiver.url("/h"), "protobuf", &["*"])],
        &[],
    );
    let node = start_node(&env);
    // Committed when the call answers; none can be delivered yet.
    let (_, last) = emit(&node, "cam1", 30);
    wait_for("a refused attempt", WAIT, || {
        (receiver.refused() > 0).then_some(())
    });
    let node = node.kill_9_and_restart();
    receiver.set_status(200);
    // The restart's own node.joined comes after the 31 from before.
    let got = receiver.wait_for("/h", last as usize + 1, WAIT);
    assert_eq!(check_complete(&got, last + 1), 0);
    assert_eq!(got[0].event.event_type(), "node.joined");
    assert_eq!(got[last as usize].event.event_type(), "node.joined");
    assert!(receiver.invalid().is_empty(), "{:?}", receiver.invalid());
    drop(node);
}

#[test]
fn a_kill_9_during_delivery_loses_nothing_and_repeats_only_with_the_same_id() {
    let receiver = Receiver::start(SECRET);
    let env = hook_env(&[endpoint("ep", &receiver.url("/h"), "json", &["*"])], &[]);
    let node = start_node(&env);
    receiver.wait_for("/h", 1, WAIT);
    let (_, last) = emit(&node, "cam1", 300);
    // Killed while the endpoint is still taking them.
    let node = node.kill_9_and_restart();
    let got = wait_for("every event after the restart", WAIT, || {
        let got = receiver.received_at("/h");
        let seen: std::collections::BTreeSet<u64> = got.iter().map(|r| r.event.seq).collect();
        (seen.len() as u64 > last).then_some(got)
    });
    check_complete(&got, last + 1);
    drop(node);
}
