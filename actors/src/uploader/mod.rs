//! Uploads: finished files move from the local spool to object storage.
//!
//! The contract with recorders is [`UploaderMsg`]: a recorder enqueues each finished file
//! (a segment, an init segment, a manifest, the FLV, session.json) with the object key it
//! must have. The local file is deleted only after storage confirms the write.
//!
//! The pipeline (storage issue):
//! - **Durable queue.** Every accepted job is a row in the node's state store (SQLite in
//!   WAL mode under `[data] dir`) before `Enqueue` is acknowledged to the loop; a row is
//!   removed only after storage confirms the PUT and the spool file is deleted. After a
//!   crash the queue is reloaded from the store. Re-enqueueing a local path that is
//!   already waiting moves it to the tail (its bytes are read at upload time).
//! - **A pool.** The [`Uploader`] owns the queue and supervises
//!   [`UploadSettings::concurrency`] workers (default 4), restarting a failed one.
//! - **Ordering.** Jobs are grouped by record dir (the key's parent). A *barrier* job
//!   (`manifest.mpd`, `session.json`) starts only when every earlier job of its group is
//!   stored, so a manifest never names a missing object and the final static manifest is
//!   written last; other jobs of a group may run in parallel.
//! - **Whole or absent.** One PUT per object with the file's bytes (a file above 32 MiB,
//!   such as a long FLV, is streamed as a multipart upload, which is also whole or
//!   absent); a retry writes the same key with the same bytes. Retries back off
//!   exponentially with jitter up to [`UploadSettings::max_backoff`], with no cap on
//!   attempts, and a failing job holds back only the barriers of its own record dir.
//!   While storage is down the uploader probes with one job at a time.
//! - **Crash recovery.** Spool recovery ([`crate::recovery`]) runs before the uploader
//!   starts and adds what a killed node left to the same durable queue, merging with the
//!   rows already there, so every file is stored once and the spool empties.
//! - **Targets.** An opendal [`Operator`] (fs, s3, azblob, gcs, oss), or a presign
//!   service ([`UploadTarget::Presigned`]) for nodes without credentials: the worker
//!   POSTs a [`PresignRequest`] to the service, gets a [`PresignedRequest`] back, and
//!   sends the bytes with plain HTTP. `POST /api/storage/presign` on a node with
//!   credentials is such a service.
//! - **Health.** Each storage success and failure is reported to [`StorageHealth`], which
//!   `/readyz` and the metrics read (a local read error is not a storage failure).

use opendal::Operator;
use ractor::RpcReplyPort;
use ractor_cluster_derive::RactorMessage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod queue;
mod target;
mod upload_worker;
#[allow(clippy::module_inception)]
mod uploader;

pub use uploader::{
    fs_operator, start_uploader, validate_key, UploadError, Uploader, UploaderArgs, UploaderEvent,
    UploaderState, UploaderStats, WorkerReport, WORKER_RESTARTS, WORKER_RESTART_WINDOW,
};

/// One file to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    /// The finished local file in the spool.
    pub local: PathBuf,
    /// The object key, relative to the storage root (`{stream}/{record_id}/v_seg_0001.m4s`).
    pub key: String,
    /// Delete the local file once stored (false for files that will be rewritten, such as a live manifest).
    pub delete_after: bool,
}

/// Messages to the uploader.
#[derive(RactorMessage)]
pub enum UploaderMsg {
    /// Store a finished file. Fire and forget: the job is saved in the state store before
    /// it can start, and is stored even across a crash. Order: see the module docs.
    Enqueue(UploadJob),
    /// Replies once every job enqueued before this message is stored and its row removed
    /// from the state store (shutdown and tests).
    Drain(RpcReplyPort<()>),
    /// Replies with the counters so far.
    Stats(RpcReplyPort<UploaderStats>),
    /// An upload worker reports one attempt (sent by the uploader's own workers).
    #[doc(hidden)]
    Report(WorkerReport),
    /// The uploader's own timers and store commits (sent by the uploader itself).
    #[doc(hidden)]
    Internal(UploaderEvent),
}

/// Installs, once per process, the TLS crypto provider (rustls with ring) and opendal's
/// HTTP transport (reqwest). Call before building any remote storage operator, HTTP
/// client or WebRTC peer (DTLS); later calls do nothing.
pub fn init_http_transport() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
    });
}

/// Where and how the uploader stores files.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// How many uploads run at once (`[recorder.upload] concurrency`, default 4).
    pub concurrency: usize,
    /// The longest wait between two attempts of a failing upload.
    pub max_backoff: Duration,
    /// Where objects go.
    pub target: UploadTarget,
}

/// The destination of uploads.
#[derive(Debug, Clone)]
pub enum UploadTarget {
    /// Write through an opendal operator (credentials on this node).
    Operator(Operator),
    /// Ask a presign service for a URL per object, then PUT with plain HTTP.
    Presigned(PresignSettings),
}

/// `[recorder.upload]` presigned-URL mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignSettings {
    /// The presign service, e.g. `http://other-node:7777/api/storage/presign`.
    pub url: String,
    /// Sent as `Authorization: Bearer {token}` when set.
    pub token: Option<String>,
    /// How long each presigned URL should stay valid.
    pub ttl: Duration,
}

/// The body a node POSTs to a presign service (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// The object key, relative to the storage root (same rules as [`validate_key`]).
    pub key: String,
    /// The HTTP method the URL is for; only `"PUT"` is served.
    pub method: String,
    /// Requested validity in seconds (the service may clamp it).
    pub ttl_seconds: u64,
}

/// A presign service's answer (JSON): send the bytes with exactly this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedRequest {
    /// The HTTP method to use (`"PUT"`).
    pub method: String,
    /// The absolute URL to send the object to.
    pub url: String,
    /// Headers the signature covers; send them unchanged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Unix seconds after which the URL stops working.
    pub expires_at: u64,
}

/// Whether storage accepted the latest write, shared by the workers and `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct StorageHealth {
    inner: Arc<Mutex<HealthInner>>,
}

#[derive(Debug, Default)]
struct HealthInner {
    /// The last error and when failures began; `None` while storage works.
    failing: Option<(String, SystemTime)>,
    /// When storage last confirmed a write.
    last_ok: Option<SystemTime>,
}

/// A snapshot of [`StorageHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStatus {
    /// False from the first failed write until the next confirmed one.
    pub reachable: bool,
    /// The latest error while unreachable.
    pub error: Option<String>,
    /// When the failures began (unreachable) or the last confirmed write (reachable).
    pub since: Option<SystemTime>,
}

impl StorageHealth {
    /// Records a confirmed write (or a successful probe).
    pub fn report_ok(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.failing = None;
        inner.last_ok = Some(SystemTime::now());
    }

    /// Records a failed write (or probe) with its error.
    pub fn report_error(&self, error: impl std::fmt::Display) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let since = inner
            .failing
            .as_ref()
            .map_or_else(SystemTime::now, |(_, since)| *since);
        inner.failing = Some((error.to_string(), since));
    }

    /// The current state.
    pub fn status(&self) -> StorageStatus {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &inner.failing {
            Some((error, since)) => StorageStatus {
                reachable: false,
                error: Some(error.clone()),
                since: Some(*since),
            },
            None => StorageStatus {
                reachable: true,
                error: None,
                since: inner.last_ok,
            },
        }
    }
}
