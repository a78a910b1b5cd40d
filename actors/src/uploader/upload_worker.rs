//! The `UploadWorker` actor: makes one attempt at one upload at a time for the
//! [`super::Uploader`] that spawned it (linked) and reports the outcome.
//!
//! An attempt reads the spool file (in `spawn_blocking`), writes it whole to the target
//! (same key, same bytes on every attempt, so a retry is idempotent; files above
//! [`super::target::STREAM_ABOVE`] are streamed piece by piece) and, once storage has
//! confirmed, deletes the spool file and its emptied directories when the job asks. On the
//! filesystem backend a file it will delete is hard-linked into the root instead of
//! copied (see [`super::target`]). It never retries or sleeps itself: the uploader owns
//! the queue, the backoff and the retry, so a failing job frees its worker for other groups. It owns nothing durable; the
//! uploader restarts it when it fails, and the job it held is retried from the queue.
//!
//! Mailbox: at most one `Run` is outstanding per worker (the uploader sends the next one
//! after the report), so it stays at one message.

use super::target::{StorageClient, CHUNK};
use super::{UploadError, UploaderMsg};
use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The worker actor (see the module docs).
pub(crate) struct UploadWorker;

/// What a worker starts with.
pub(crate) struct UploadWorkerArgs {
    /// Its slot in the uploader's pool, echoed in every report.
    pub(crate) slot: usize,
    /// Where objects go.
    pub(crate) storage: Arc<StorageClient>,
    /// The spool root; emptied directories below it are removed.
    pub(crate) spool_dir: PathBuf,
    /// Who gets the reports.
    pub(crate) uploader: ActorRef<UploaderMsg>,
}

/// The worker's state: its arguments.
pub(crate) struct UploadWorkerState {
    args: UploadWorkerArgs,
}

/// One attempt to make.
#[derive(Debug, Clone)]
pub(crate) struct WorkerJob {
    /// The job's id in the queue.
    pub(crate) id: u64,
    /// The spool file.
    pub(crate) local: PathBuf,
    /// The object key.
    pub(crate) key: String,
    /// Delete the spool file once stored.
    pub(crate) delete_after: bool,
}

/// Messages to a worker.
#[derive(RactorMessage)]
pub(crate) enum UploadWorkerMsg {
    /// Make one attempt at this job and report.
    Run(WorkerJob),
}

/// A worker's report to its uploader (sent by the uploader's own workers only).
#[derive(Debug)]
pub struct WorkerReport {
    pub(crate) slot: usize,
    pub(crate) job: u64,
    pub(crate) outcome: Outcome,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored (and the spool file deleted if asked); the object's size.
    Stored(u64),
    /// The spool file does not exist; nothing to store.
    Vanished,
    /// The attempt failed; `storage` tells a storage failure from a local one.
    Failed { error: UploadError, storage: bool },
}

/// Reads the local file; `Ok(None)` when it does not exist.
async fn read_local(job: &WorkerJob) -> Result<Option<Bytes>, UploadError> {
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
pub(crate) fn delete_local(local: &Path, spool_dir: &Path) -> io::Result<()> {
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

/// The size of the local file; `Ok(None)` when it does not exist.
async fn local_size(job: &WorkerJob) -> Result<Option<u64>, UploadError> {
    let local = job.local.clone();
    let meta = tokio::task::spawn_blocking(move || std::fs::metadata(local))
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
    match meta {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UploadError::Read {
            key: job.key.clone(),
            local: job.local.clone(),
            source,
        }),
    }
}

/// Streams a large local file to storage, reading one [`CHUNK`] at a time off the loop.
async fn stream_file(storage: &StorageClient, job: &WorkerJob) -> Result<u64, (UploadError, bool)> {
    let read_err = |source| UploadError::Read {
        key: job.key.clone(),
        local: job.local.clone(),
        source,
    };
    let local = job.local.clone();
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(local))
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join.to_string())))
        .map_err(|e| (read_err(e), false))?;
    let file = std::sync::Arc::new(std::sync::Mutex::new(file));
    storage
        .put_chunks(&job.key, || {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    use std::io::Read;
                    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                    let mut buf = vec![0u8; CHUNK];
                    let mut filled = 0;
                    while filled < buf.len() {
                        match file.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    buf.truncate(filled);
                    Ok(Bytes::from(buf))
                })
                .await
                .unwrap_or_else(|join| Err(io::Error::other(join.to_string())))
                .map_err(read_err)
            }
        })
        .await
}

/// One attempt at `job`.
async fn attempt(storage: &StorageClient, spool_dir: &Path, job: &WorkerJob) -> Outcome {
    let failed = |error, storage| Outcome::Failed { error, storage };
    let size = match local_size(job).await {
        Ok(Some(size)) => size,
        Ok(None) => return Outcome::Vanished,
        Err(error) => return failed(error, false),
    };
    let linked = if job.delete_after {
        storage.link(&job.key, &job.local).await
    } else {
        None
    };
    let stored = if let Some(size) = linked {
        Ok(size)
    } else if storage.streams(size) {
        stream_file(storage, job).await
    } else {
        match read_local(job).await {
            Ok(Some(data)) => {
                let size = data.len() as u64;
                storage
                    .put(&job.key, data)
                    .await
                    .map(|()| size)
                    .map_err(|e| (e, true))
            }
            Ok(None) => return Outcome::Vanished,
            Err(error) => Err((error, false)),
        }
    };
    let size = match stored {
        Ok(size) => size,
        Err((error, storage)) => return failed(error, storage),
    };
    if job.delete_after {
        let (local, spool) = (job.local.clone(), spool_dir.to_path_buf());
        let deleted = tokio::task::spawn_blocking(move || delete_local(&local, &spool))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        if let Err(error) = deleted {
            tracing::warn!(key = %job.key, local = %job.local.display(), %error,
                "stored, but the spool file could not be deleted");
        }
    }
    Outcome::Stored(size)
}

impl Actor for UploadWorker {
    type Msg = UploadWorkerMsg;
    type State = UploadWorkerState;
    type Arguments = UploadWorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<UploadWorkerMsg>,
        args: UploadWorkerArgs,
    ) -> Result<UploadWorkerState, ActorProcessingErr> {
        Ok(UploadWorkerState { args })
    }

    async fn handle(
        &self,
        _myself: ActorRef<UploadWorkerMsg>,
        message: UploadWorkerMsg,
        state: &mut UploadWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let UploadWorkerMsg::Run(job) = message;
        let args = &state.args;
        let outcome = attempt(&args.storage, &args.spool_dir, &job).await;
        // The uploader may be stopping; then nobody waits for the report and the row
        // stays in the store for the next start.
        let _ = args.uploader.cast(UploaderMsg::Report(WorkerReport {
            slot: args.slot,
            job: job.id,
            outcome,
        }));
        Ok(())
    }
}
