//! End to end: a real "No space left on device" under the spool fails the recording with
//! a clear log line naming the stream, and never the publisher's connection: ffmpeg sends
//! its whole file, the stream stays live, and the API reports the recording failed.
//!
//! The node's data dir (spool and state) is a 4 MiB tmpfs that the test fills up while
//! recording, with the disk guard off so the write errors themselves are exercised. Mounting
//! needs root (CI and the dev machines run the suite as root); without it the test says so
//! and does nothing.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Option<Tmpfs<'a>> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if out.status.success() {
            Some(Tmpfs(dir))
        } else {
            eprintln!(
                "disk_full: cannot mount a tmpfs ({}); this test needs root and does nothing",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// Fills the file system holding `dir` until a write fails with ENOSPC.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).expect("create filler");
    let block = vec![0u8; 16 * 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
}

#[test]
fn a_full_spool_fails_the_recording_with_a_clear_log_line_and_never_the_publisher() {
    let work = tempfile::tempdir().expect("temp dir");
    let data = work.path().join("data");
    let Some(_tmpfs) = Tmpfs::mount(&data, "4m") else {
        return;
    };
    let data_dir = data.to_str().expect("utf-8 path").to_string();
    let node = Node::start_logged(&[
        ("RECNODE_DATA__DIR", &data_dir),
        ("RECNODE_DATA__MIN_FREE_BYTES", "0"),
        ("RECNODE_RECORDER__AUTO_STREAMS", "[\"*\"]"),
    ]);
    let src = av_source(node.cwd.path(), "src.flv", 12);
    let mut publisher = Publisher::start(&src, &node.rtmp_url("full1"), node.cwd.path());
    wait_for("1 s recorded", Duration::from_secs(30), || {
        let r = node.api("GET", "/api/record/full1", None);
        (r.status == 200 && r.json()["duration_seconds"].as_f64()? > 1.0).then_some(())
    });

    fill(&data);

    let failed = wait_for(
        "the recording to be marked failed",
        Duration::from_secs(40),
        || {
            let s = node.recording_status("full1");
            s["failed"].as_str().map(str::to_string)
        },
    );
    assert!(
        failed.contains("No space left on device"),
        "failure reason: {failed}"
    );
    assert!(
        publisher.is_running(),
        "the publisher is still connected after the recording failed"
    );
    publisher.wait_success(Duration::from_secs(40));
    let log = node.log();
    assert!(
        log.lines().any(|l| l.contains("full1")
            && l.contains("No space left on device")
            && (l.contains("ERROR") || l.contains("WARN"))),
        "no clear log line naming the stream and the error:\n{log}"
    );
}
