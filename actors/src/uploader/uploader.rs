//! The [`Uploader`] actor: owns the node's in-memory FIFO of [`UploadJob`]s and the storage
//! operator, and stores one job at a time, in enqueue order, from a worker task it spawns.
//!
//! The worker reads the local spool file, writes it whole with one `operator.write` (same
//! key, same bytes on every attempt, so retries are idempotent), retries failures forever
//! with capped exponential backoff and jitter, and only then deletes the local file (and
//! its emptied spool directories). It reports back with [`UploaderMsg::Report`], so the
//! actor's loop never waits on I/O and answers `Enqueue`, `Drain` and `Stats` at once.
//! The actor supervises nothing. It is restarted by the `UploaderSupervisor` (with that
//! supervisor's backoff); its queue is in memory, so after a restart the spool recovery
//! ([`crate::recovery`]) re-enqueues whatever is still in the spool.

use super::{UploadJob, UploaderMsg};
use bytes::Bytes;
use opendal::Operator;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The first retry waits about this long; each further one doubles it.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The uploader actor (see the module docs).
pub struct Uploader;

/// What the uploader starts with.
pub struct UploaderArgs {
    /// Where objects are stored.
    pub operator: Operator,
    /// The local spool root; emptied directories below it are removed after uploads.
    pub spool_dir: PathBuf,
}

/// Counters since the uploader started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploaderStats {
    /// Jobs accepted and not finished yet (waiting or in flight).
    pub queued: u64,
    /// Jobs whose object storage confirmed.
    pub stored: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Jobs skipped because their local file no longer existed.
    pub skipped: u64,
    /// Jobs refused because their key could escape the storage root.
    pub rejected: u64,
}

/// Why an upload, or setting one up, failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The object key is not a safe relative path below the storage root.
    #[error("object key {key:?} refused: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The storage root directory could not be created.
    #[error("creating storage root {}: {source}", root.display())]
    CreateRoot {
        /// The root.
        root: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The storage root path is not UTF-8, which opendal needs.
    #[error("storage root {} is not valid UTF-8", root.display())]
    RootNotUtf8 {
        /// The root.
        root: PathBuf,
    },
    /// opendal refused the operator configuration.
    #[error("building the storage operator for {}: {source}", root.display())]
    Operator {
        /// The root.
        root: PathBuf,
        /// opendal's error.
        #[source]
        source: opendal::Error,
    },
    /// The local file could not be read.
    #[error("reading {} for {key}: {source}", local.display())]
    Read {
        /// The object key.
        key: String,
        /// The local file.
        local: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The storage write failed.
    #[error("storing {key}: {source}")]
    Store {
        /// The object key.
        key: String,
        /// opendal's error.
        #[source]
        source: opendal::Error,
    },
    /// The actor could not be spawned.
    #[error("starting the uploader: {0}")]
    Spawn(#[from] ractor::SpawnErr),
}

/// A worker task's report to its uploader (sent by the uploader's own worker; not for other callers).
#[derive(Debug)]
pub struct WorkerReport {
    job: u64,
    key: String,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    /// An attempt failed; the worker waits and tries again.
    Retrying,
    /// The object is stored (and the local file deleted if asked).
    Stored,
    /// The local file was gone; the job was skipped.
    Vanished,
}

enum Entry {
    Job(UploadJob),
    Drain(RpcReplyPort<()>),
}

/// The uploader's state: the queue, the job in flight and the counters.
pub struct UploaderState {
    operator: Operator,
    spool_dir: PathBuf,
    queue: VecDeque<Entry>,
    /// The id and key of the job in flight, and its worker task.
    in_flight: Option<(u64, String, JoinHandle<()>)>,
    next_job: u64,
    stats: UploaderStats,
}

/// Checks that `key` is a relative `/`-separated path that stays below the storage root:
/// not empty, not absolute, no backslash or NUL, no empty, `.` or `..` component.
pub fn validate_key(key: &str) -> Result<(), UploadError> {
    let refuse = |reason| {
        Err(UploadError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("empty");
    }
    if key.starts_with('/') {
        return refuse("absolute path");
    }
    if key.contains('\\') {
        return refuse("backslash");
    }
    if key.contains('\0') {
        return refuse("NUL byte");
    }
    for part in key.split('/') {
        match part {
            ".." => return refuse("`..` component"),
            "" | "." => return refuse("empty or `.` component"),
            _ => {}
        }
    }
    Ok(())
}

/// A filesystem storage operator rooted at `root`, which is created if missing.
pub fn fs_operator(root: &Path) -> Result<Operator, UploadError> {
    std::fs::create_dir_all(root).map_err(|source| UploadError::CreateRoot {
        root: root.to_path_buf(),
        source,
    })?;
    let root_str = root.to_str().ok_or_else(|| UploadError::RootNotUtf8 {
        root: root.to_path_buf(),
    })?;
    let builder = opendal::services::Fs::default().root(root_str);
    Operator::new(builder).map_err(|source| UploadError::Operator {
        root: root.to_path_buf(),
        source,
    })
}

/// Spawns an uploader (unsupervised; a supervisor uses `Actor::spawn_linked` with [`Uploader`]).
pub async fn start_uploader(args: UploaderArgs) -> Result<ActorRef<UploaderMsg>, UploadError> {
    let (actor, _handle) = Actor::spawn(None, Uploader, args).await?;
    Ok(actor)
}

/// The wait before retry `attempt` (1-based): doubling from [`BACKOFF_INITIAL`], capped at
/// [`BACKOFF_CAP`], of which a random half is jitter so many nodes do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_INITIAL.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let full = exp.min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Reads the local file; `Ok(None)` when it does not exist.
async fn read_local(job: &UploadJob) -> Result<Option<Bytes>, UploadError> {
    let local = job.local.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(local))
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
    match read {
        Ok(data) => Ok(Some(Bytes::from(data))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UploadError::Read {
            key: job.key.clone(),
            local: job.local.clone(),
            source,
        }),
    }
}

/// Deletes the local file, then its parent directories up to (not including) `spool_dir`
/// while they are empty.
fn delete_local(local: &Path, spool_dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(local) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut dir = local.parent();
    while let Some(d) = dir {
        if d == spool_dir || !d.starts_with(spool_dir) {
            break;
        }
        // Fails (and stops) as soon as a directory still holds something.
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Stores one job, retrying until it succeeds, and reports each step to the uploader.
async fn run_job(
    id: u64,
    operator: Operator,
    spool_dir: PathBuf,
    job: UploadJob,
    uploader: ActorRef<UploaderMsg>,
) {
    let report = |outcome| {
        // The uploader may be stopping; then nobody waits for the report.
        let _ = uploader.cast(UploaderMsg::Report(WorkerReport {
            job: id,
            key: job.key.clone(),
            outcome,
        }));
    };
    let mut attempt = 0u32;
    loop {
        let result = match read_local(&job).await {
            Ok(None) => {
                tracing::warn!(key = %job.key, local = %job.local.display(), "local file vanished; upload skipped");
                report(Outcome::Vanished);
                return;
            }
            Ok(Some(data)) => operator
                .write(&job.key, data)
                .await
                .map(|_| ())
                .map_err(|source| UploadError::Store {
                    key: job.key.clone(),
                    source,
                }),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => break,
            Err(error) => {
                attempt += 1;
                let delay = backoff(attempt);
                tracing::warn!(key = %job.key, attempt, delay_ms = delay.as_millis() as u64, %error, "upload failed; retrying");
                report(Outcome::Retrying);
                tokio::time::sleep(delay).await;
            }
        }
    }
    if job.delete_after {
        let (local, spool) = (job.local.clone(), spool_dir);
        let deleted = tokio::task::spawn_blocking(move || delete_local(&local, &spool))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        if let Err(error) = deleted {
            tracing::warn!(key = %job.key, local = %job.local.display(), %error, "stored, but the local file could not be deleted");
        }
    }
    tracing::debug!(key = %job.key, attempts = attempt + 1, "stored");
    report(Outcome::Stored);
}

impl UploaderState {
    /// Starts the next job if none is in flight, answering the drains in front of it.
    fn pump(&mut self, myself: &ActorRef<UploaderMsg>) {
        while self.in_flight.is_none() {
            match self.queue.pop_front() {
                None => return,
                Some(Entry::Drain(reply)) => {
                    let _ = reply.send(());
                }
                Some(Entry::Job(job)) => {
                    let (id, key) = (self.next_job, job.key.clone());
                    self.next_job += 1;
                    let task = tokio::spawn(run_job(
                        id,
                        self.operator.clone(),
                        self.spool_dir.clone(),
                        job,
                        myself.clone(),
                    ));
                    self.in_flight = Some((id, key, task));
                }
            }
        }
    }
}

impl Actor for Uploader {
    type Msg = UploaderMsg;
    type State = UploaderState;
    type Arguments = UploaderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<UploaderMsg>,
        args: UploaderArgs,
    ) -> Result<UploaderState, ActorProcessingErr> {
        Ok(UploaderState {
            operator: args.operator,
            spool_dir: args.spool_dir,
            queue: VecDeque::new(),
            in_flight: None,
            next_job: 0,
            stats: UploaderStats::default(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<UploaderMsg>,
        state: &mut UploaderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((_, key, task)) = state.in_flight.take() {
            tracing::info!(%key, waiting = state.queue.len(), "uploader stopping; the spool keeps the files");
            task.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<UploaderMsg>,
        message: UploaderMsg,
        state: &mut UploaderState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            UploaderMsg::Enqueue(job) => {
                if let Err(error) = validate_key(&job.key) {
                    tracing::error!(key = %job.key, local = %job.local.display(), %error, "upload refused");
                    state.stats.rejected += 1;
                    return Ok(());
                }
                state.stats.queued += 1;
                state.queue.push_back(Entry::Job(job));
            }
            UploaderMsg::Drain(reply) => state.queue.push_back(Entry::Drain(reply)),
            UploaderMsg::Stats(reply) => {
                let _ = reply.send(state.stats);
            }
            UploaderMsg::Report(WorkerReport { job, key, outcome }) => {
                if state.in_flight.as_ref().map(|(id, _, _)| *id) != Some(job) {
                    tracing::warn!(%key, ?outcome, "report from a job not in flight ignored");
                    return Ok(());
                }
                match outcome {
                    Outcome::Retrying => state.stats.retries += 1,
                    Outcome::Stored | Outcome::Vanished => {
                        if matches!(outcome, Outcome::Stored) {
                            state.stats.stored += 1;
                        } else {
                            state.stats.skipped += 1;
                        }
                        state.stats.queued = state.stats.queued.saturating_sub(1);
                        state.in_flight = None;
                    }
                }
            }
        }
        state.pump(&myself);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_the_root_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "a\\b",
            "a//b",
            "a/./b",
            "a/",
            "a\0b",
        ] {
            assert!(validate_key(key).is_err(), "{key:?}");
        }
        for key in ["live/1700000000/v_seg_0001.m4s", "a..b/c", "x.flv"] {
            assert!(validate_key(key).is_ok(), "{key:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        for attempt in 1..100 {
            let d = backoff(attempt);
            let full = BACKOFF_INITIAL
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(1000) <= BACKOFF_CAP);
    }
}
