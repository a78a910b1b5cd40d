//! The stream supervisor's counts (live streams, streams being recorded), which the
//! cluster heartbeat and `/metrics` read in one reply: they follow recordings started by
//! rule and by API, stopped, and streams that end, without asking any stream.

mod common_rec;

use common_rec::*;
use recnode_actors::stream::{StreamCounts, StreamMsg, StreamSupervisorMsg};
use std::time::{Duration, Instant};

/// Waits until the supervisor counts `live_streams` and `recordings`.
async fn wait_counts(node: &Node, live_streams: usize, recordings: usize) {
    let want = StreamCounts {
        live_streams,
        recordings,
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let counts = ractor::call_t!(node.streams, StreamSupervisorMsg::Counts, 10_000).unwrap();
        if counts == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {want:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_supervisor_counts_live_streams_and_recordings_as_they_change() {
    let dir = test_dir("counts");
    let node = Node::start(&dir, settings(&dir, &["auto-*"])).await;
    wait_counts(&node, 0, 0).await;
    let auto = node.publish("auto-1").await;
    let plain = node.publish("plain").await;
    wait_counts(&node, 2, 1).await;

    let started = node.start_recording("plain", None).await;
    assert!(started.is_ok(), "{started:?}");
    wait_counts(&node, 2, 2).await;

    let stream = "auto-1".to_string();
    let stopped = node
        .streams
        .call(
            |reply| StreamSupervisorMsg::StopRecording { stream, reply },
            Some(TIMEOUT),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
    wait_counts(&node, 2, 1).await;

    // A stream that ends while recording leaves both counts.
    node.unpublish_and_wait(&plain, "plain").await;
    wait_counts(&node, 1, 0).await;
    auto.cast(StreamMsg::Unpublish).unwrap();
    wait_counts(&node, 0, 0).await;
}
