//! An endpoint that fails for 10 s loses nothing: once it answers 2xx again, every event
//! emitted meanwhile arrives, once, in seq order.

mod common;
mod hooks_support;

use std::time::{Duration, Instant};

use hooks_support::receiver::Receiver;
use hooks_support::{emit, endpoint, hook_env, start_node, SECRET};

#[test]
fn after_a_ten_second_outage_every_event_arrives_in_seq_order() {
    let receiver = Receiver::start(SECRET);
    receiver.set_status(500);
    let env = hook_env(&[endpoint("ep", &receiver.url("/h"), "json", &["*"])], &[]);
    let node = start_node(&env);

    // Events keep coming during the outage (node.joined is seq 1).
    let outage = Instant::now();
    let mut last = 1;
    while outage.elapsed() < Duration::from_secs(10) {
        last = emit(&node, "cam1", 10).1;
        // Pacing the emits over the outage, not waiting for a condition.
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        receiver.refused() > 0,
        "the endpoint was tried during the outage"
    );
    assert!(receiver.received().is_empty());
    receiver.set_status(200);

    let got = receiver.wait_for("/h", last as usize, Duration::from_secs(60));
    let seqs: Vec<u64> = got.iter().map(|r| r.event.seq).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "all, once, in order");
    assert!(receiver.invalid().is_empty(), "{:?}", receiver.invalid());
    let listed = node.api("GET", "/api/hooks", None).json();
    let ep = &listed["endpoints"][0];
    assert_eq!(ep["dead_letters"], 0, "{listed}");
    common::wait_for(
        "the endpoint to have acknowledged everything",
        Duration::from_secs(10),
        || {
            let listed = node.api("GET", "/api/hooks", None).json();
            (listed["endpoints"][0]["acked_seq"] == last).then_some(())
        },
    );
}
