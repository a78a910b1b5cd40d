//! End to end: an RTMP publisher whose connection drops without a FIN (a half-open socket,
//! as when a streamer's network goes away) reconnects the way OBS does, retrying the same
//! stream every second or so. The node notices the dead connection, frees the name, takes
//! the reconnect, and both recordings (before and after the drop) close and decode.
//!
//! The drop is made with a TCP relay between ffmpeg and the node that stops relaying and
//! keeps its socket to the node open, so the node never sees the connection close.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A one-connection TCP relay that can be frozen: it then stops relaying but keeps the
/// node's socket open.
struct Relay {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    /// Sockets kept alive after freezing, so the node sees no FIN.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (f, h) = (frozen.clone(), held.clone());
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let upstream = TcpStream::connect(target).expect("connect to the node");
            h.lock()
                .unwrap()
                .push(upstream.try_clone().expect("clone socket"));
            let pipe = |mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if frozen.load(Ordering::SeqCst) {
                            // Swallow and keep both sockets open: no FIN reaches anyone.
                            continue;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            };
            pipe(
                client.try_clone().unwrap(),
                upstream.try_clone().unwrap(),
                f.clone(),
            );
            pipe(upstream, client, f);
        });
        Relay { addr, frozen, held }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_publisher_that_drops_without_fin_can_reconnect_and_both_recordings_decode() {
    let node = Node::start_logged(&[("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]")]);
    let src = av_source(node.cwd.path(), "src.flv", 30);
    let relay = Relay::start(node.rtmp);
    let first = Publisher::start(
        &src,
        &format!("rtmp://{}/live/obs1", relay.addr),
        node.cwd.path(),
    );
    wait_for("2 s recorded", Duration::from_secs(30), || {
        let r = node.api("GET", "/api/record/obs1", None);
        (r.status == 200 && r.json()["duration_seconds"].as_f64()? > 2.0).then_some(())
    });

    // The network goes away: nothing more reaches the node, and no FIN either.
    relay.freeze();
    drop(first);
    let dropped_at = Instant::now();

    // OBS-style reconnect: the same stream, retried every second until accepted.
    let short = av_source(node.cwd.path(), "short.flv", 4);
    let second = wait_for(
        "a reconnect of obs1 to be accepted",
        Duration::from_secs(45),
        || {
            let mut p = Publisher::start(&short, &node.rtmp_url("obs1"), node.cwd.path());
            let status = p.wait(Duration::from_secs(30));
            if status.success() {
                Some(p)
            } else {
                std::thread::sleep(Duration::from_secs(1)); // OBS's retry delay, not a sync
                None
            }
        },
    );
    drop(second);
    let waited = dropped_at.elapsed();
    assert!(
        waited < Duration::from_secs(40),
        "reconnect accepted after {waited:?}"
    );

    let dirs = wait_for("two finished recordings", Duration::from_secs(40), || {
        let dirs = record_dirs(&node.recordings(), "obs1");
        (dirs.len() == 2
            && dirs.iter().all(|d| is_finished(d))
            && files_under(&node.spool()).is_empty())
        .then_some(dirs)
    });
    for dir in &dirs {
        let manifest = dir.join("manifest.mpd");
        assert_eq!(media::decode_errors(&manifest), "", "{}", dir.display());
        assert_eq!(media::decode_errors(&flv_of(dir)), "", "{}", dir.display());
    }
    // The reconnect's recording holds its whole 4 s publish.
    let want = media::count_frames(&short);
    assert_eq!(media::count_frames(&dirs[1].join("manifest.mpd")), want);
    let log = node.log();
    assert!(log.contains("connection presumed dead"), "log:\n{log}");
    drop(relay.held);
}
