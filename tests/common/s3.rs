//! A real S3 server on loopback for the object-storage tests: `s3s-fs` (installed by
//! `scripts/test.sh` into `.tools/bin`), and boto3 (`scripts/s3client.py`, in
//! `.tools/venv`) to read the bucket with a client we did not write.
#![allow(dead_code)]

use super::{free_local_addr, wait_for};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The access key the test server accepts.
pub const ACCESS_KEY: &str = "recnode-test";
/// The secret key the test server accepts.
pub const SECRET_KEY: &str = "recnode-test-secret";
/// The bucket every test server starts with.
pub const BUCKET: &str = "recordings";

fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools")
}

/// The `s3s-fs` binary; panics with the fix when it is missing.
pub fn s3s_fs_bin() -> PathBuf {
    let bin = tools_dir().join("bin/s3s-fs");
    assert!(
        bin.is_file(),
        "{} is missing: run ./scripts/test.sh once (it installs s3s-fs 0.14.1)",
        bin.display()
    );
    bin
}

/// The Python with boto3; panics with the fix when it is missing.
pub fn python_bin() -> PathBuf {
    let bin = tools_dir().join("venv/bin/python");
    assert!(
        bin.is_file(),
        "{} is missing: run ./scripts/test.sh once (it installs boto3)",
        bin.display()
    );
    bin
}

/// A running `s3s-fs` over a temporary directory; killed on drop.
pub struct S3Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (`{root}/{bucket}/{key}`).
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with one empty bucket, [`BUCKET`], and waits until it accepts TCP.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("create S3 root");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("create bucket dir");
        let mut server = S3Server {
            child: None,
            addr: free_local_addr(),
            root,
        };
        server.resume();
        server
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the server (an outage); the data stays for [`S3Server::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for("the S3 port to close", Duration::from_secs(10), || {
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                .is_err()
                .then_some(())
        });
    }

    /// (Re)starts the server on the same address and data.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "S3 server already running");
        let child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        wait_for(
            "s3s-fs to accept connections",
            Duration::from_secs(20),
            || {
                TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                    .ok()
                    .map(|_| ())
            },
        );
    }

    /// `RECNODE_*` variables that point a node's `[recorder.storage]` at this server,
    /// with object keys under `root` (e.g. `"/rec"`).
    pub fn node_env(&self, root: &str) -> Vec<(String, String)> {
        [
            ("RECNODE_RECORDER__STORAGE__TYPE", "s3".to_string()),
            ("RECNODE_RECORDER__STORAGE__BUCKET", BUCKET.to_string()),
            ("RECNODE_RECORDER__STORAGE__ROOT", root.to_string()),
            ("RECNODE_RECORDER__STORAGE__REGION", "us-east-1".to_string()),
            ("RECNODE_RECORDER__STORAGE__ENDPOINT", self.endpoint()),
            (
                "RECNODE_RECORDER__STORAGE__ACCESS_KEY_ID",
                ACCESS_KEY.to_string(),
            ),
            (
                "RECNODE_RECORDER__STORAGE__SECRET_ACCESS_KEY",
                SECRET_KEY.to_string(),
            ),
            (
                "RECNODE_RECORDER__STORAGE__DISABLE_CONFIG_LOAD",
                "true".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn client(&self, args: &[&str]) -> String {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/s3client.py");
        let out = Command::new(python_bin())
            .arg(script)
            .args(["--endpoint", &self.endpoint(), "--bucket", BUCKET])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run s3client.py");
        assert!(
            out.status.success(),
            "s3client.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 listing")
    }

    /// Every object under `prefix` as (key, size), listed with boto3.
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        self.client(&["list", prefix])
            .lines()
            .filter_map(|line| {
                let (key, size) = line.rsplit_once(' ')?;
                Some((key.to_string(), size.parse().ok()?))
            })
            .collect()
    }

    /// Downloads every object under `prefix` into `dest/{key}` with boto3.
    pub fn download(&self, prefix: &str, dest: &Path) {
        self.client(&["sync", prefix, dest.to_str().expect("utf-8 path")]);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
