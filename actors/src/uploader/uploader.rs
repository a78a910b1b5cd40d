//! The [`Uploader`] actor: owns the node's durable upload queue and supervises the pool
//! of `UploadWorker`s that drain it.
//!
//! - **Durable first.** Each `Enqueue` becomes a row in the state store (`uploads`) before
//!   the job may start. Rows are written by a dedicated thread that commits everything
//!   waiting in one transaction (group commit), so 300 streams enqueueing a few files every
//!   2 s cost a few commits per second, and the actor's loop never touches SQLite. At start
//!   the rows left by the previous process are loaded, in order, and uploaded first.
//! - **Dispatch** follows the queue's ordering rule ([`super::queue`]): per record dir, a
//!   manifest or session.json starts only after every job enqueued before it is stored;
//!   everything else runs in parallel on up to `concurrency` workers.
//! - **Retries** never end. A failed job backs off (exponential, jitter, capped at
//!   `max_backoff`) in the queue, not in a worker, so other groups keep moving. While
//!   storage itself fails, the uploader sends one probe at a time, at the backoff of the
//!   consecutive failures, instead of hammering it with every queued job; the first
//!   success resumes full concurrency. Each storage success or failure goes to
//!   [`StorageHealth`]; local read errors do not (they are not storage's fault).
//! - **Done** means stored, then the spool file deleted (if asked), then the row deleted.
//!   A crash in between uploads the same bytes again or finds the file gone; both are safe.
//!
//! Supervision: the workers are linked children. A worker that fails is restarted at
//! once and its job retried with backoff; more than [`WORKER_RESTARTS`] restarts within
//! [`WORKER_RESTART_WINDOW`] is a bug, and the uploader then fails itself, which the
//! node supervisor escalates. The uploader itself is restarted only with the node.
//!
//! Mailbox: unbounded, as ractor's are. It receives one small message per file (a path
//! and a key, never media), one report per attempt and one commit notice per batch. The
//! loop does O(log n) work per message and no I/O, so it drains far faster than
//! recorders produce (hundreds of files per second at 300 streams); a backlog during a
//! storage outage lives in the queue (memory + SQLite), not in the mailbox.

use super::queue::{backoff, UploadQueue};
use super::target::StorageClient;
use super::upload_worker::{Outcome, UploadWorker, UploadWorkerArgs, UploadWorkerMsg, WorkerJob};
use super::{StorageHealth, UploadSettings, UploaderMsg};
use crate::state_store::{StateStore, StateStoreError, UploadOp};
use opendal::Operator;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use super::upload_worker::WorkerReport;

/// More worker restarts than this within [`WORKER_RESTART_WINDOW`] fail the uploader.
pub const WORKER_RESTARTS: usize = 5;
/// The window of [`WORKER_RESTARTS`].
pub const WORKER_RESTART_WINDOW: Duration = Duration::from_secs(10);
/// The most operations one state-store transaction takes.
const MAX_BATCH: usize = 4096;
/// The longest wait between two attempts to commit a batch that failed.
const STORE_RETRY_CAP: Duration = Duration::from_secs(5);

/// The uploader actor (see the module docs).
pub struct Uploader;

/// What the uploader starts with.
pub struct UploaderArgs {
    /// The pool size, the backoff cap and where objects go.
    pub settings: UploadSettings,
    /// The local spool root; emptied directories below it are removed after uploads.
    pub spool_dir: PathBuf,
    /// The node's state store (`{data.dir}/state.sqlite3`), created if missing.
    pub state_db: PathBuf,
    /// Told about every storage success and failure.
    pub health: StorageHealth,
    /// Where `upload.stored` and `upload.retrying` hook events go.
    pub hooks: crate::hooks::HookEmitter,
}

/// The uploader's counters and queue gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploaderStats {
    /// The queue length: jobs committed to the store and not finished (waiting or in flight).
    pub queued: u64,
    /// Jobs being uploaded now.
    pub in_flight: u64,
    /// How long the oldest unfinished job has been waiting since it was first enqueued.
    pub oldest_pending_age: Option<Duration>,
    /// Jobs whose object storage confirmed, since the uploader started.
    pub stored: u64,
    /// Bytes of those objects.
    pub bytes_stored: u64,
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
    /// The HTTP client for the presigned mode could not be built.
    #[error("building the HTTP client: {0}")]
    HttpClient(String),
    /// The presign service did not answer with a usable request (includes its HTTP status).
    #[error("presigning {key} at {url}: {message}")]
    Presign {
        /// The object key.
        key: String,
        /// The presign service.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Sending the object to the presigned URL failed (includes the HTTP status).
    #[error("storing {key} through its presigned URL: {message}")]
    PresignedWrite {
        /// The object key.
        key: String,
        /// What went wrong (never the signed URL itself).
        message: String,
    },
    /// The state store could not be opened or read.
    #[error(transparent)]
    StateStore(#[from] StateStoreError),
    /// The state store's writer thread could not be started.
    #[error("starting the state store writer thread: {0}")]
    WriterThread(#[source] io::Error),
    /// The actor could not be spawned.
    #[error("starting the uploader: {0}")]
    Spawn(#[from] ractor::SpawnErr),
}

/// Messages the uploader sends itself (not for other callers).
#[derive(Debug)]
pub struct UploaderEvent(Event);

#[derive(Debug)]
enum Event {
    /// The writer thread committed every operation up to this ticket.
    Committed(u64),
    /// A backoff or probe time has come.
    Wake,
}

/// One operation for the writer thread.
struct Pending {
    ticket: u64,
    op: UploadOp,
}

/// One slot of the worker pool.
struct Slot {
    worker: ActorRef<UploadWorkerMsg>,
    /// False from a failed send until the worker is restarted.
    alive: bool,
    /// The job the worker has, if any.
    job: Option<u64>,
}

/// A `Drain` waiting for its jobs (see [`UploaderState::answer_drains`]).
struct Drain {
    upto: u64,
    ticket: Option<u64>,
    reply: RpcReplyPort<()>,
}

/// Storage is failing: one probe at a time, at `next_probe` at the earliest.
struct Outage {
    failures: u32,
    next_probe: Instant,
}

/// The uploader's state: the queue, the pool, the store writer and the counters.
pub struct UploaderState {
    queue: UploadQueue,
    storage: std::sync::Arc<StorageClient>,
    spool_dir: PathBuf,
    max_backoff: Duration,
    health: StorageHealth,
    hooks: crate::hooks::HookEmitter,
    slots: Vec<Slot>,
    restarts: VecDeque<Instant>,
    writer: mpsc::Sender<Pending>,
    /// Tickets sent to the writer and not yet committed, with the new job each creates.
    uncommitted: VecDeque<(u64, Option<u64>)>,
    next_ticket: u64,
    /// Every ticket up to this one is committed.
    committed_upto: u64,
    /// Open drains: the last job id each waits for, and once those are done, the ticket
    /// whose commit (of their row deletions) it then waits for.
    drains: Vec<Drain>,
    outage: Option<Outage>,
    /// The earliest pending wake-up.
    wake_at: Option<Instant>,
    stats: UploaderStats,
    stopping: bool,
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

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The writer thread: commits whatever has arrived in one transaction, retrying a failed
/// commit with backoff, and tells the uploader up to which ticket rows are durable. Ends
/// when the uploader drops its sender (or is gone).
fn write_loop(mut store: StateStore, rx: mpsc::Receiver<Pending>, uploader: ActorRef<UploaderMsg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let upto = batch.last().map_or(0, |p| p.ticket);
        let ops: Vec<UploadOp> = batch.into_iter().map(|p| p.op).collect();
        let mut attempt = 0;
        while let Err(error) = store.apply_uploads(&ops) {
            attempt += 1;
            let delay = backoff(attempt, STORE_RETRY_CAP);
            tracing::error!(%error, ops = ops.len(), attempt, delay_ms = delay.as_millis() as u64,
                "upload queue not saved; retrying (new uploads wait until it is)");
            if matches!(
                uploader.get_status(),
                ractor::ActorStatus::Stopping | ractor::ActorStatus::Stopped
            ) {
                return;
            }
            std::thread::sleep(delay);
        }
        if uploader
            .cast(UploaderMsg::Internal(UploaderEvent(Event::Committed(upto))))
            .is_err()
        {
            // The uploader stopped; what is committed is loaded by the next one.
            return;
        }
    }
}

impl UploaderState {
    /// Sends one operation to the writer thread; `new` is the job it creates, if any.
    fn persist(&mut self, op: UploadOp, new: Option<u64>) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.uncommitted.push_back((ticket, new));
        if self.writer.send(Pending { ticket, op }).is_err() {
            // Only after the thread died (it never panics on its own; a panic in SQLite
            // would be a bug). Without it nothing new becomes durable.
            tracing::error!("the state store writer is gone; new uploads cannot be saved");
        }
    }

    fn committed(&mut self, upto: u64) {
        self.committed_upto = self.committed_upto.max(upto);
        let now = Instant::now();
        while let Some(&(ticket, new)) = self.uncommitted.front() {
            if ticket > upto {
                break;
            }
            self.uncommitted.pop_front();
            if let Some(id) = new {
                self.queue.persisted(id, now);
            }
        }
    }

    /// Starts what may start, answers finished drains and sets the next wake-up.
    fn pump(&mut self, myself: &ActorRef<UploaderMsg>) {
        let now = Instant::now();
        if !self.stopping {
            while let Some(slot) = self.slots.iter().position(|s| s.job.is_none() && s.alive) {
                if let Some(outage) = &self.outage {
                    // One probe at a time while storage fails.
                    if self.queue.in_flight() > 0 || now < outage.next_probe {
                        break;
                    }
                }
                let Some(job) = self.queue.start_next(now) else {
                    break;
                };
                let run = WorkerJob {
                    id: job.row.id,
                    local: job.row.local.clone(),
                    key: job.row.key.clone(),
                    delete_after: job.row.delete_after,
                };
                let id = run.id;
                if self.slots[slot]
                    .worker
                    .cast(UploadWorkerMsg::Run(run))
                    .is_err()
                {
                    // The worker is stopping; its supervision event restarts it.
                    self.queue.fail(id, now, self.max_backoff);
                    self.slots[slot].alive = false;
                    continue;
                }
                self.slots[slot].job = Some(id);
            }
        }
        self.answer_drains();
        self.schedule_wake(myself, now);
    }

    /// Answers the drains whose jobs are all done and whose rows are deleted from the
    /// store, so that after a drain the queue in the store is as empty as in memory.
    fn answer_drains(&mut self) {
        let last_sent = self.next_ticket - 1;
        for drain in &mut self.drains {
            if drain.ticket.is_none() && self.queue.done_up_to(drain.upto) {
                drain.ticket = Some(last_sent);
            }
        }
        let committed = self.committed_upto;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.drains)
            .into_iter()
            .partition(|d| d.ticket.is_some_and(|t| t <= committed));
        self.drains = waiting;
        for drain in done {
            let _ = drain.reply.send(());
        }
    }

    /// Arranges a `Wake` for when the next job could start, if that is in the future:
    /// a backoff ending, or the next probe while storage fails. (A job that could start
    /// now but did not waits for a busy worker, whose report pumps again.)
    fn schedule_wake(&mut self, myself: &ActorRef<UploaderMsg>, now: Instant) {
        let job_at = if self.queue.has_ready(now) {
            Some(now)
        } else {
            self.queue.next_due()
        };
        let due = match (&self.outage, job_at) {
            (_, None) => return,
            (Some(outage), Some(at)) => at.max(outage.next_probe),
            (None, Some(at)) => at,
        };
        if due <= now || self.wake_at.is_some_and(|at| at <= due) {
            return;
        }
        self.wake_at = Some(due);
        let delay = due.saturating_duration_since(now);
        drop(myself.send_after(delay, || UploaderMsg::Internal(UploaderEvent(Event::Wake))));
    }

    fn report(&mut self, report: WorkerReport) {
        let Some(slot) = self.slots.get_mut(report.slot) else {
            return;
        };
        if slot.job != Some(report.job) {
            tracing::warn!(
                job = report.job,
                slot = report.slot,
                "report for a job the slot does not hold ignored"
            );
            return;
        }
        slot.job = None;
        let now = Instant::now();
        let (key, enqueued_at_ms) = self
            .queue
            .get(report.job)
            .map(|j| (j.row.key.clone(), j.row.enqueued_at_ms))
            .unwrap_or_default();
        let attempts = self.queue.get(report.job).map_or(0, |j| j.attempts);
        match report.outcome {
            Outcome::Stored(bytes) => {
                self.stats.stored += 1;
                self.stats.bytes_stored += bytes;
                self.health.report_ok();
                if let Some(outage) = self.outage.take() {
                    tracing::info!(failures = outage.failures, "storage accepts writes again");
                }
                self.queue.finish(report.job);
                self.persist(UploadOp::Delete(report.job), None);
                let latency_ms = unix_ms().saturating_sub(enqueued_at_ms);
                self.hooks.emit_nowait(crate::hooks::events::upload_stored(
                    &key,
                    bytes,
                    attempts + 1,
                    latency_ms,
                ));
                tracing::debug!(%key, bytes, "stored");
            }
            Outcome::Vanished => {
                self.stats.skipped += 1;
                let local = self.queue.get(report.job).map(|j| j.row.local.clone());
                tracing::warn!(%key, local = ?local, "local file vanished; upload skipped");
                self.queue.finish(report.job);
                self.persist(UploadOp::Delete(report.job), None);
            }
            Outcome::Failed { error, storage } => {
                self.stats.retries += 1;
                let delay = self.queue.fail(report.job, now, self.max_backoff);
                let attempts = self.queue.get(report.job).map_or(0, |j| j.attempts);
                if storage {
                    self.health.report_error(&error);
                    let failures = self.outage.as_ref().map_or(0, |o| o.failures) + 1;
                    let wait = backoff(failures, self.max_backoff);
                    if failures == 1 {
                        tracing::warn!(%key, %error, "storage write failed; probing before sending more");
                    }
                    self.outage = Some(Outage {
                        failures,
                        next_probe: now + wait,
                    });
                }
                tracing::warn!(%key, attempts, retry_in_ms = delay.as_millis() as u64, %error, "upload failed; will retry");
                self.hooks
                    .emit_nowait(crate::hooks::events::upload_retrying(
                        &key,
                        attempts,
                        &error.to_string(),
                        delay.as_millis() as u64,
                        self.queue.queued() as u64,
                    ));
            }
        }
    }

    fn worker_args(&self, slot: usize, myself: &ActorRef<UploaderMsg>) -> UploadWorkerArgs {
        UploadWorkerArgs {
            slot,
            storage: self.storage.clone(),
            spool_dir: self.spool_dir.clone(),
            uploader: myself.clone(),
        }
    }

    fn slot_of(&self, id: ActorId) -> Option<usize> {
        self.slots.iter().position(|s| s.worker.get_id() == id)
    }
}

impl Actor for Uploader {
    type Msg = UploaderMsg;
    type State = UploaderState;
    type Arguments = UploaderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<UploaderMsg>,
        args: UploaderArgs,
    ) -> Result<UploaderState, ActorProcessingErr> {
        let storage = std::sync::Arc::new(StorageClient::new(args.settings.target)?);
        let db = args.state_db.clone();
        let (store, rows) = tokio::task::spawn_blocking(move || {
            let store = StateStore::open(&db)?;
            let rows = store.pending_uploads()?;
            Ok::<_, StateStoreError>((store, rows))
        })
        .await
        .map_err(|e| format!("opening the state store: {e}"))?
        .map_err(UploadError::from)?;
        let now = Instant::now();
        let (rows, bad): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|r| validate_key(&r.key).is_ok());
        let loaded = rows.len();
        let queue = UploadQueue::load(rows, now);

        let (tx, rx) = mpsc::channel();
        let me = myself.clone();
        std::thread::Builder::new()
            .name("recnode-state-store".into())
            .spawn(move || write_loop(store, rx, me))
            .map_err(UploadError::WriterThread)?;

        let mut state = UploaderState {
            queue,
            storage,
            spool_dir: args.spool_dir,
            max_backoff: args.settings.max_backoff.max(Duration::from_millis(1)),
            health: args.health,
            hooks: args.hooks,
            slots: Vec::new(),
            restarts: VecDeque::new(),
            writer: tx,
            uncommitted: VecDeque::new(),
            next_ticket: 1,
            committed_upto: 0,
            drains: Vec::new(),
            outage: None,
            wake_at: None,
            stats: UploaderStats::default(),
            stopping: false,
        };
        for row in bad {
            tracing::error!(key = %row.key, local = %row.local.display(), "stored upload job with an unsafe key dropped");
            state.persist(UploadOp::Delete(row.id), None);
        }
        for slot in 0..args.settings.concurrency.max(1) {
            let (worker, _) = Actor::spawn_linked(
                None,
                UploadWorker,
                state.worker_args(slot, &myself),
                myself.get_cell(),
            )
            .await?;
            state.slots.push(Slot {
                worker,
                alive: true,
                job: None,
            });
        }
        if loaded > 0 {
            tracing::info!(jobs = loaded, "upload queue reloaded from the state store");
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<UploaderMsg>,
        state: &mut UploaderState,
    ) -> Result<(), ActorProcessingErr> {
        state.pump(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<UploaderMsg>,
        state: &mut UploaderState,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        let queued = state.queue.queued();
        if queued > 0 {
            tracing::info!(
                queued,
                in_flight = state.queue.in_flight(),
                "uploader stopping; the queue stays in the state store and the files in the spool"
            );
        }
        for slot in &state.slots {
            slot.worker.stop(Some("uploader stopping".into()));
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
                } else {
                    let e = state.queue.enqueue(
                        job.local,
                        job.key,
                        job.delete_after,
                        unix_ms(),
                        Instant::now(),
                    );
                    let new = e.new.then_some(e.row.id);
                    state.persist(UploadOp::Put(e.row), new);
                }
            }
            UploaderMsg::Drain(reply) => {
                state.drains.push(Drain {
                    upto: state.queue.last_id(),
                    ticket: None,
                    reply,
                });
            }
            UploaderMsg::Stats(reply) => {
                let mut stats = state.stats;
                stats.queued = state.queue.queued() as u64;
                stats.in_flight = state.queue.in_flight() as u64;
                stats.oldest_pending_age = state
                    .queue
                    .oldest_enqueued_ms()
                    .map(|at| Duration::from_millis(unix_ms().saturating_sub(at)));
                let _ = reply.send(stats);
            }
            UploaderMsg::Report(report) => state.report(report),
            UploaderMsg::Internal(UploaderEvent(event)) => match event {
                Event::Committed(upto) => state.committed(upto),
                Event::Wake => {
                    if state.wake_at.is_some_and(|at| at <= Instant::now()) {
                        state.wake_at = None;
                    }
                }
            },
        }
        state.pump(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<UploaderMsg>,
        event: SupervisionEvent,
        state: &mut UploaderState,
    ) -> Result<(), ActorProcessingErr> {
        let (id, why) = match &event {
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell.get_id(), reason.clone().unwrap_or_default())
            }
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let Some(slot) = state.slot_of(id) else {
            return Ok(());
        };
        let now = Instant::now();
        if let Some(job) = state.slots[slot].job.take() {
            let key = state.queue.get(job).map(|j| j.row.key.clone());
            state.stats.retries += 1;
            let delay = state.queue.fail(job, now, state.max_backoff);
            tracing::error!(slot, key = ?key, retry_in_ms = delay.as_millis() as u64, reason = %why,
                "upload worker failed; its job will be retried");
        }
        state.restarts.push_back(now);
        while state
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > WORKER_RESTART_WINDOW)
        {
            state.restarts.pop_front();
        }
        if state.restarts.len() > WORKER_RESTARTS {
            return Err(format!(
                "upload workers restarted more than {WORKER_RESTARTS} times in {WORKER_RESTART_WINDOW:?}; last: {why}"
            )
            .into());
        }
        let (worker, _) = Actor::spawn_linked(
            None,
            UploadWorker,
            state.worker_args(slot, &myself),
            myself.get_cell(),
        )
        .await?;
        state.slots[slot].worker = worker;
        state.slots[slot].alive = true;
        tracing::warn!(slot, "upload worker restarted");
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
}
