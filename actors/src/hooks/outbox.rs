//! The durable hook outbox in the node's state store (tables of migration 2 in
//! [`crate::state_store::MIGRATIONS`]: `hook_outbox`, `hook_endpoints`,
//! `hook_dead_letters`, `hook_meta`).
//!
//! **One writer.** A dedicated thread owns the only writing connection. It blocks for a
//! command, takes every command already waiting (up to [`MAX_BATCH`] emits), and commits
//! the emits and acknowledgements in one transaction (group commit): each event gets the
//! next gapless `seq` and the id `msg_{prefix}_{seq}` (the prefix is random per outbox, so
//! ids stay unique even if a data dir is wiped), is encoded and inserted. Only after the
//! commit are the emitters answered and the readers woken ([`Outbox::subscribe`]).
//! Rarer changes (endpoints, dead letters, replays) run as closures on the same thread,
//! after the batch's commit. With WAL and `synchronous = NORMAL`, a committed event
//! survives `kill -9` of the process (see [`crate::state_store`]).
//!
//! **Readers** (deliverers, the SSE stream, the API) use a small pool of read-only
//! connections from `spawn_blocking`; WAL lets them read while the writer writes.
//!
//! **Compaction** (on the writer thread, at most once per [`COMPACT_EVERY`] or
//! [`COMPACT_AFTER_EMITS`] emits) deletes the events every enabled endpoint has
//! acknowledged, except the newest `retain_events`, which stay for replay. Disabled
//! endpoints do not hold events back; dead letters are copies and are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use recnode_proto::hook::v1::HookEvent;
use recnode_proto::Message as _;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{oneshot, watch};

use super::now_ms;
use crate::state_store::{StateStore, StateStoreError, BUSY_TIMEOUT};

/// The most emits committed in one transaction.
pub const MAX_BATCH: usize = 8192;
/// Compaction runs at most this often…
pub const COMPACT_EVERY: Duration = Duration::from_millis(500);
/// …or after this many emits, whichever comes first.
pub const COMPACT_AFTER_EMITS: u64 = 20_000;
/// Read-only connections kept for reuse.
const READ_POOL: usize = 8;

/// Why an outbox call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    /// The state store could not be opened or migrated.
    #[error("hook outbox: {0}")]
    Open(String),
    /// A query or commit failed.
    #[error("hook outbox {} ({what}): {message}", path.display())]
    Query {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The writer thread has stopped (the outbox was closed).
    #[error("hook outbox is closed")]
    Closed,
}

impl From<StateStoreError> for OutboxError {
    fn from(e: StateStoreError) -> Self {
        OutboxError::Open(e.to_string())
    }
}

/// One event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its per-node sequence number.
    pub seq: u64,
    /// Its unique id (`webhook-id`).
    pub id: String,
    /// When it was raised (unix ms).
    pub ts_ms: u64,
    /// Its dotted type (`record.started`).
    pub kind: String,
    /// The encoded `HookEvent` (with `id` and `seq` set).
    pub body: Bytes,
}

impl StoredEvent {
    /// The decoded event.
    pub fn decode(&self) -> Result<HookEvent, recnode_proto::prost::DecodeError> {
        HookEvent::decode(self.body.as_ref())
    }
}

/// An event an endpoint could not take within `max_age`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The event.
    pub event: StoredEvent,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it became a dead letter (unix ms).
    pub dead_at_ms: u64,
    /// When a replay of it started (unix ms), while it is being replayed.
    pub replay_at_ms: Option<u64>,
}

/// A registered endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    /// Its id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// Its secret (`whsec_…`).
    pub secret: String,
    /// `protobuf` or `json`.
    pub format: String,
    /// Its filter patterns.
    pub events: Vec<String>,
    /// `config` or `api`.
    pub source: String,
    /// Why it is disabled (it answered 410 Gone), if it is.
    pub disabled: Option<String>,
    /// Every event up to this seq is delivered, filtered out or a dead letter.
    pub acked_seq: u64,
    /// When it was registered (unix ms).
    pub created_at_ms: u64,
}

/// Sizes of the outbox, for tests, the benchmark and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStats {
    /// The last committed seq (0 before the first event).
    pub last_seq: u64,
    /// Events in the outbox.
    pub events: u64,
    /// The oldest seq still in the outbox.
    pub first_seq: Option<u64>,
    /// Dead letters of all endpoints.
    pub dead_letters: u64,
    /// Size of the database file, in bytes.
    pub db_bytes: u64,
    /// Size of its write-ahead log, in bytes.
    pub wal_bytes: u64,
}

/// What the writer keeps in memory about an endpoint, for compaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    pub acked: u64,
    pub enabled: bool,
}

/// The writer thread's state, handed to closures run on it.
pub(crate) struct WriterState {
    /// The seq the next event gets.
    pub next_seq: u64,
    /// Every endpoint's progress.
    pub endpoints: HashMap<String, Cursor>,
    prefix: String,
    retain: u64,
    compacted_through: u64,
    last_compaction: Instant,
    emitted_since_compaction: u64,
    committed: watch::Sender<u64>,
}

impl WriterState {
    /// The last committed seq.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

type Exec = Box<dyn FnOnce(&mut Connection, &mut WriterState) + Send>;

/// One emit waiting for the writer.
pub(crate) struct EmitCmd {
    pub event: HookEvent,
    pub reply: Option<oneshot::Sender<Result<(u64, String), OutboxError>>>,
}

// Emits are the hot path and by far the most common command: boxing them would cost
// an allocation per event to save memory on the rare others.
#[allow(clippy::large_enum_variant)]
pub(crate) enum WriterCmd {
    Emit(EmitCmd),
    Ack(Arc<str>, u64),
    Exec(Exec),
    Close(oneshot::Sender<()>),
}

struct Inner {
    tx: mpsc::Sender<WriterCmd>,
    committed: watch::Receiver<u64>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

/// A handle to a node's outbox (cheap to clone). See the module docs.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn read_meta(conn: &Connection, key: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.query_row(
        "SELECT value FROM hook_meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )
    .optional()
}

fn event_from_row(row: &rusqlite::Row<'_>) -> Result<StoredEvent, rusqlite::Error> {
    Ok(StoredEvent {
        seq: from_sql(row.get(0)?),
        id: row.get(1)?,
        ts_ms: from_sql(row.get(2)?),
        kind: row.get(3)?,
        body: Bytes::from(row.get::<_, Vec<u8>>(4)?),
    })
}

fn dead_letter_from_row(row: &rusqlite::Row<'_>) -> Result<DeadLetter, rusqlite::Error> {
    Ok(DeadLetter {
        event: event_from_row(row)?,
        attempts: row.get::<_, i64>(5)?.clamp(0, i64::from(u32::MAX)) as u32,
        error: row.get(6)?,
        dead_at_ms: from_sql(row.get(7)?),
        replay_at_ms: row.get::<_, Option<i64>>(8)?.map(from_sql),
    })
}

const DEAD_LETTER_COLUMNS: &str =
    "seq, id, ts_ms, kind, body, attempts, error, dead_at_ms, replay_at_ms";

impl Outbox {
    /// Opens the outbox in the state store at `path` (creating and migrating it as
    /// needed) and starts its writer thread. Blocking: call from `spawn_blocking` or
    /// before the runtime's hot path.
    pub fn open(path: &Path, retain_events: u64) -> Result<Outbox, OutboxError> {
        // Applies the schema (the state store owns the migrations), then lets go.
        drop(StateStore::open(path)?);
        let query = |what: &'static str| {
            let path = path.to_path_buf();
            move |e: rusqlite::Error| OutboxError::Query {
                path,
                what,
                message: e.to_string(),
            }
        };
        let conn = open_connection(path).map_err(query("opening the writer"))?;
        // Keep the WAL from growing past 16 MiB after checkpoints.
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)
            .map_err(query("configuring the writer"))?;
        let prefix = match read_meta(&conn, "id_prefix").map_err(query("reading meta"))? {
            Some(prefix) => prefix,
            None => {
                let prefix = format!("{:016x}", fastrand::u64(..));
                conn.execute(
                    "INSERT INTO hook_meta (key, value) VALUES ('id_prefix', ?1)",
                    params![prefix],
                )
                .map_err(query("writing meta"))?;
                prefix
            }
        };
        let stored_next: u64 = read_meta(&conn, "next_seq")
            .map_err(query("reading meta"))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let max_seq: Option<i64> = conn
            .query_row("SELECT max(seq) FROM hook_outbox", [], |r| r.get(0))
            .map_err(query("reading the last seq"))?;
        let next_seq = stored_next.max(max_seq.map_or(1, |m| from_sql(m) + 1));
        let mut endpoints = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT id, acked_seq, disabled IS NULL FROM hook_endpoints")
                .map_err(query("reading endpoints"))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        Cursor {
                            acked: from_sql(row.get(1)?),
                            enabled: row.get(2)?,
                        },
                    ))
                })
                .map_err(query("reading endpoints"))?;
            for row in rows {
                let (id, cursor) = row.map_err(query("reading endpoints"))?;
                endpoints.insert(id, cursor);
            }
        }
        let first: Option<i64> = conn
            .query_row("SELECT min(seq) FROM hook_outbox", [], |r| r.get(0))
            .map_err(query("reading the first seq"))?;
        let (committed_tx, committed_rx) = watch::channel(next_seq - 1);
        let state = WriterState {
            next_seq,
            endpoints,
            prefix,
            retain: retain_events,
            compacted_through: first.map_or(next_seq - 1, |f| from_sql(f).saturating_sub(1)),
            last_compaction: Instant::now(),
            emitted_since_compaction: 0,
            committed: committed_tx,
        };
        let (tx, rx) = mpsc::channel();
        let writer_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("hook-outbox".into())
            .spawn(move || run_writer(conn, state, rx, writer_path))
            .map_err(|e| OutboxError::Open(format!("cannot start the writer thread: {e}")))?;
        Ok(Outbox {
            inner: Arc::new(Inner {
                tx,
                committed: committed_rx,
                path: path.to_path_buf(),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<WriterCmd> {
        self.inner.tx.clone()
    }

    /// The last committed seq, updated after every commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.committed.clone()
    }

    /// The last committed seq now.
    pub fn last_seq(&self) -> u64 {
        *self.inner.committed.borrow()
    }

    /// Records that `endpoint` has every event up to `seq` (coalesced into the next
    /// commit; at least once: a lost ack means a redelivery with the same id).
    pub fn ack(&self, endpoint: &Arc<str>, seq: u64) {
        let _ = self.inner.tx.send(WriterCmd::Ack(endpoint.clone(), seq));
    }

    /// Runs `f` on the writer thread, in its own transaction, and returns its result.
    pub(crate) async fn exec<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut WriterState) -> Result<T, rusqlite::Error>
            + Send
            + 'static,
    ) -> Result<T, OutboxError> {
        let (reply, rx) = oneshot::channel();
        let path = self.inner.path.clone();
        let exec: Exec = Box::new(move |conn, state| {
            let result = (|| {
                let tx = conn.transaction()?;
                let value = f(&tx, state)?;
                tx.commit()?;
                Ok(value)
            })();
            let _ = reply.send(result.map_err(|e: rusqlite::Error| OutboxError::Query {
                path,
                what,
                message: e.to_string(),
            }));
        });
        self.inner
            .tx
            .send(WriterCmd::Exec(exec))
            .map_err(|_| OutboxError::Closed)?;
        rx.await.map_err(|_| OutboxError::Closed)?
    }

    /// Runs `f` on a read-only connection in `spawn_blocking`.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < READ_POOL {
                    pool.push(conn);
                }
            }
            result
        });
        let path = self.inner.path.clone();
        match task.await {
            Ok(result) => result.map_err(|e| OutboxError::Query {
                path,
                what,
                message: e.to_string(),
            }),
            Err(e) => Err(OutboxError::Query {
                path,
                what,
                message: format!("reader task failed: {e}"),
            }),
        }
    }

    /// Up to `limit` events with a seq above `after`, in seq order.
    pub async fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, OutboxError> {
        self.read("reading events", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, id, ts_ms, kind, body FROM hook_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![to_sql(after), limit as i64], event_from_row)?;
            rows.collect()
        })
        .await
    }

    /// The oldest seq in the outbox (`None` when it is empty).
    pub async fn first_seq(&self) -> Result<Option<u64>, OutboxError> {
        self.read("reading the first seq", |conn| {
            conn.query_row("SELECT min(seq) FROM hook_outbox", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(from_sql))
        })
        .await
    }

    /// Every registered endpoint, by id.
    pub async fn endpoints(&self) -> Result<Vec<EndpointRow>, OutboxError> {
        self.read("reading endpoints", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, url, secret, format, events, source, disabled, acked_seq, created_at_ms
                 FROM hook_endpoints ORDER BY id",
            )?;
            let rows = stmt.query_map([], |row| {
                let events: String = row.get(4)?;
                Ok(EndpointRow {
                    id: row.get(0)?,
                    url: row.get(1)?,
                    secret: row.get(2)?,
                    format: row.get(3)?,
                    events: serde_json::from_str(&events).unwrap_or_default(),
                    source: row.get(5)?,
                    disabled: row.get(6)?,
                    acked_seq: from_sql(row.get(7)?),
                    created_at_ms: from_sql(row.get(8)?),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Up to `limit` dead letters of `endpoint` from seq `after` on, in seq order;
    /// `replaying` selects those being replayed (true) or those waiting (false).
    pub async fn dead_letters(
        &self,
        endpoint: &str,
        after: u64,
        limit: usize,
        replaying: Option<bool>,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let endpoint = endpoint.to_string();
        self.read("reading dead letters", move |conn| {
            let filter = match replaying {
                None => "",
                Some(true) => "AND replay_at_ms IS NOT NULL",
                Some(false) => "AND replay_at_ms IS NULL",
            };
            let sql = format!(
                "SELECT {DEAD_LETTER_COLUMNS} FROM hook_dead_letters
                 WHERE endpoint_id = ?1 AND seq > ?2 {filter} ORDER BY seq LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![endpoint, to_sql(after), limit as i64],
                dead_letter_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    /// Dead letters per endpoint id.
    pub async fn dead_letter_counts(&self) -> Result<HashMap<String, u64>, OutboxError> {
        self.read("counting dead letters", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT endpoint_id, count(*) FROM hook_dead_letters GROUP BY endpoint_id",
            )?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, from_sql(row.get(1)?))))?;
            rows.collect()
        })
        .await
    }

    /// Sizes of the outbox and its files.
    pub async fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let last_seq = self.last_seq();
        let path = self.inner.path.clone();
        let mut stats = self
            .read("measuring the outbox", move |conn| {
                let (events, first): (i64, Option<i64>) =
                    conn.query_row("SELECT count(*), min(seq) FROM hook_outbox", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let dead: i64 =
                    conn.query_row("SELECT count(*) FROM hook_dead_letters", [], |r| r.get(0))?;
                Ok(OutboxStats {
                    last_seq,
                    events: from_sql(events),
                    first_seq: first.map(from_sql),
                    dead_letters: from_sql(dead),
                    db_bytes: 0,
                    wal_bytes: 0,
                })
            })
            .await?;
        stats.db_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.into_os_string();
        wal.push("-wal");
        stats.wal_bytes = std::fs::metadata(PathBuf::from(wal))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(stats)
    }

    /// Commits what is queued, stops the writer thread and waits for it; later emits
    /// fail with [`OutboxError::Closed`].
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.inner.tx.send(WriterCmd::Close(done)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The writer thread: group commits until closed or every sender is gone.
fn run_writer(
    mut conn: Connection,
    mut state: WriterState,
    rx: mpsc::Receiver<WriterCmd>,
    path: PathBuf,
) {
    let mut emits: Vec<EmitCmd> = Vec::with_capacity(MAX_BATCH);
    let mut acks: HashMap<Arc<str>, u64> = HashMap::new();
    let mut execs: Vec<Exec> = Vec::new();
    loop {
        // Wake up now and then even when idle, so compaction catches up with acks.
        let first = match rx.recv_timeout(COMPACT_EVERY) {
            Ok(cmd) => cmd,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                compact_if_due(&conn, &mut state, &path);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut close = None;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                WriterCmd::Emit(emit) => emits.push(emit),
                WriterCmd::Ack(endpoint, seq) => {
                    let entry = acks.entry(endpoint).or_insert(seq);
                    *entry = (*entry).max(seq);
                }
                WriterCmd::Exec(exec) => execs.push(exec),
                WriterCmd::Close(done) => {
                    close = Some(done);
                    break;
                }
            }
            if emits.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !emits.is_empty() || !acks.is_empty() {
            commit_batch(&mut conn, &mut state, &mut emits, &mut acks, &path);
        }
        for exec in execs.drain(..) {
            exec(&mut conn, &mut state);
        }
        compact_if_due(&conn, &mut state, &path);
        if let Some(done) = close {
            let _ = done.send(());
            break;
        }
    }
    tracing::debug!(path = %path.display(), "hook outbox writer stopped");
}

fn commit_batch(
    conn: &mut Connection,
    state: &mut WriterState,
    emits: &mut Vec<EmitCmd>,
    acks: &mut HashMap<Arc<str>, u64>,
    path: &Path,
) {
    let first_seq = state.next_seq;
    let result = (|| -> Result<Vec<(u64, String)>, rusqlite::Error> {
        let tx = conn.transaction()?;
        let mut assigned = Vec::with_capacity(emits.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO hook_outbox (seq, id, ts_ms, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut buf = Vec::with_capacity(256);
            for (i, emit) in emits.iter_mut().enumerate() {
                let seq = first_seq + i as u64;
                let id = format!("msg_{}_{seq}", state.prefix);
                emit.event.seq = seq;
                emit.event.id.clone_from(&id);
                buf.clear();
                // Encoding into a Vec cannot run out of space.
                emit.event
                    .encode(&mut buf)
                    .expect("a Vec grows to fit the encoding");
                insert.execute(params![
                    to_sql(seq),
                    id,
                    to_sql(emit.event.ts),
                    emit.event.event_type(),
                    buf
                ])?;
                assigned.push((seq, id));
            }
            if !emits.is_empty() {
                tx.execute(
                    "INSERT INTO hook_meta (key, value) VALUES ('next_seq', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![(first_seq + emits.len() as u64).to_string()],
                )?;
            }
            let mut ack = tx.prepare_cached(
                "UPDATE hook_endpoints SET acked_seq = max(acked_seq, ?2) WHERE id = ?1",
            )?;
            for (endpoint, seq) in acks.iter() {
                ack.execute(params![endpoint.as_ref(), to_sql(*seq)])?;
            }
        }
        tx.commit()?;
        Ok(assigned)
    })();
    match result {
        Ok(assigned) => {
            state.next_seq = first_seq + assigned.len() as u64;
            state.emitted_since_compaction += assigned.len() as u64;
            for (endpoint, seq) in acks.drain() {
                if let Some(cursor) = state.endpoints.get_mut(endpoint.as_ref()) {
                    cursor.acked = cursor.acked.max(seq);
                }
            }
            // Published before the emitters hear back, so a caller whose emit resolved
            // sees its event in `last_seq` (and `wait_delivered` waits for it).
            state.committed.send_replace(state.next_seq - 1);
            for (emit, assigned) in emits.drain(..).zip(assigned) {
                if let Some(reply) = emit.reply {
                    let _ = reply.send(Ok(assigned));
                }
            }
        }
        Err(e) => {
            tracing::error!(path = %path.display(), events = emits.len(), "hook outbox commit failed: {e}");
            acks.clear();
            for emit in emits.drain(..) {
                if let Some(reply) = emit.reply {
                    let _ = reply.send(Err(OutboxError::Query {
                        path: path.to_path_buf(),
                        what: "committing events",
                        message: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// The seq up to which events may be deleted: every enabled endpoint has them, and they
/// are older than the newest `retain` events.
pub(crate) fn compaction_bound(state: &WriterState) -> u64 {
    let last = state.last_seq();
    let acked = state
        .endpoints
        .values()
        .filter(|c| c.enabled)
        .map(|c| c.acked)
        .min()
        .unwrap_or(last);
    acked.min(last.saturating_sub(state.retain))
}

fn compact_if_due(conn: &Connection, state: &mut WriterState, path: &Path) {
    if state.emitted_since_compaction < COMPACT_AFTER_EMITS
        && state.last_compaction.elapsed() < COMPACT_EVERY
    {
        return;
    }
    state.last_compaction = Instant::now();
    state.emitted_since_compaction = 0;
    let bound = compaction_bound(state);
    if bound <= state.compacted_through {
        return;
    }
    match conn.execute(
        "DELETE FROM hook_outbox WHERE seq <= ?1",
        params![to_sql(bound)],
    ) {
        Ok(deleted) => {
            state.compacted_through = bound;
            tracing::trace!(deleted, through = bound, "hook outbox compacted");
        }
        Err(e) => tracing::warn!(path = %path.display(), "hook outbox compaction failed: {e}"),
    }
}

/// Writer-thread operations on endpoints and dead letters (run through [`Outbox::exec`]).
pub(crate) mod ops {
    use super::*;
    use crate::hooks::config::ValidEndpoint;

    /// Whether an endpoint was added, or one with the same id exists.
    pub(crate) enum Created {
        Added(EndpointRow),
        Exists,
    }

    fn row_of(endpoint: &ValidEndpoint, source: &str, acked_seq: u64, now: u64) -> EndpointRow {
        EndpointRow {
            id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            secret: endpoint.secret.clone(),
            format: endpoint.format.as_str().to_string(),
            events: endpoint.events.clone(),
            source: source.to_string(),
            disabled: None,
            acked_seq,
            created_at_ms: now,
        }
    }

    fn insert(tx: &rusqlite::Transaction<'_>, row: &EndpointRow) -> Result<(), rusqlite::Error> {
        tx.execute(
            "INSERT INTO hook_endpoints
             (id, url, secret, format, events, source, disabled, acked_seq, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)",
            params![
                row.id,
                row.url,
                row.secret,
                row.format,
                serde_json::to_string(&row.events).unwrap_or_else(|_| "[]".into()),
                row.source,
                to_sql(row.acked_seq),
                to_sql(row.created_at_ms),
            ],
        )?;
        Ok(())
    }

    /// Registers an API endpoint; it receives events emitted from now on.
    pub(crate) fn create(
        tx: &rusqlite::Transaction<'_>,
        state: &mut WriterState,
        endpoint: &ValidEndpoint,
    ) -> Result<Created, rusqlite::Error> {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM hook_endpoints WHERE id = ?1",
                params![endpoint.id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(Created::Exists);
        }
        let row = row_of(endpoint, "api", state.last_seq(), now_ms());
        insert(tx, &row)?;
        state.endpoints.insert(
            row.id.clone(),
            Cursor {
                acked: row.acked_seq,
                enabled: true,
            },
        );
        Ok(Created::Added(row))
    }

    /// Makes the config endpoints those of `endpoints`: adds new ones (from the next
    /// event on), updates changed ones (re-enabling them), removes those no longer
    /// configured (with their dead letters). API endpoints are left alone.
    pub(crate) fn sync_config(
        tx: &rusqlite::Transaction<'_>,
        state: &mut WriterState,
        endpoints: &[ValidEndpoint],
    ) -> Result<(), rusqlite::Error> {
        let mut keep = Vec::new();
        for endpoint in endpoints {
            keep.push(endpoint.id.clone());
            let events = serde_json::to_string(&endpoint.events).unwrap_or_else(|_| "[]".into());
            let current: Option<(String, String, String, String, String)> = tx
                .query_row(
                    "SELECT url, secret, format, events, source FROM hook_endpoints WHERE id = ?1",
                    params![endpoint.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            match current {
                None => {
                    let row = row_of(endpoint, "config", state.last_seq(), now_ms());
                    insert(tx, &row)?;
                    state.endpoints.insert(
                        row.id.clone(),
                        Cursor {
                            acked: row.acked_seq,
                            enabled: true,
                        },
                    );
                }
                Some((url, secret, format, old_events, source)) => {
                    let same = url == endpoint.url
                        && secret == endpoint.secret
                        && format == endpoint.format.as_str()
                        && old_events == events
                        && source == "config";
                    if !same {
                        tx.execute(
                            "UPDATE hook_endpoints SET url = ?2, secret = ?3, format = ?4,
                             events = ?5, source = 'config', disabled = NULL WHERE id = ?1",
                            params![
                                endpoint.id,
                                endpoint.url,
                                endpoint.secret,
                                endpoint.format.as_str(),
                                events
                            ],
                        )?;
                        if let Some(cursor) = state.endpoints.get_mut(&endpoint.id) {
                            cursor.enabled = true;
                        }
                    }
                }
            }
        }
        let stale: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM hook_endpoints WHERE source = 'config'")?;
            let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
            ids.collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|id| !keep.contains(id))
                .collect()
        };
        for id in stale {
            delete(tx, state, &id)?;
        }
        Ok(())
    }

    /// Removes an endpoint and its dead letters; false if there was none.
    pub(crate) fn delete(
        tx: &rusqlite::Transaction<'_>,
        state: &mut WriterState,
        id: &str,
    ) -> Result<bool, rusqlite::Error> {
        tx.execute(
            "DELETE FROM hook_dead_letters WHERE endpoint_id = ?1",
            params![id],
        )?;
        let deleted = tx.execute("DELETE FROM hook_endpoints WHERE id = ?1", params![id])?;
        state.endpoints.remove(id);
        Ok(deleted > 0)
    }

    /// Marks an endpoint disabled (it answered 410 Gone).
    pub(crate) fn disable(
        tx: &rusqlite::Transaction<'_>,
        state: &mut WriterState,
        id: &str,
        reason: &str,
    ) -> Result<(), rusqlite::Error> {
        tx.execute(
            "UPDATE hook_endpoints SET disabled = ?2 WHERE id = ?1",
            params![id, reason],
        )?;
        if let Some(cursor) = state.endpoints.get_mut(id) {
            cursor.enabled = false;
        }
        Ok(())
    }

    /// Moves an event to the endpoint's dead letters and moves its cursor past it.
    pub(crate) fn bury(
        tx: &rusqlite::Transaction<'_>,
        state: &mut WriterState,
        endpoint: &str,
        event: &StoredEvent,
        attempts: u32,
        error: &str,
    ) -> Result<(), rusqlite::Error> {
        tx.execute(
            "INSERT OR REPLACE INTO hook_dead_letters
             (endpoint_id, seq, id, ts_ms, kind, body, attempts, error, dead_at_ms, replay_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
            params![
                endpoint,
                to_sql(event.seq),
                event.id,
                to_sql(event.ts_ms),
                event.kind,
                event.body.as_ref(),
                attempts,
                error,
                to_sql(now_ms()),
            ],
        )?;
        tx.execute(
            "UPDATE hook_endpoints SET acked_seq = max(acked_seq, ?2) WHERE id = ?1",
            params![endpoint, to_sql(event.seq)],
        )?;
        if let Some(cursor) = state.endpoints.get_mut(endpoint) {
            cursor.acked = cursor.acked.max(event.seq);
        }
        Ok(())
    }

    /// Marks every waiting dead letter of `endpoint` for replay; returns how many.
    pub(crate) fn replay(
        tx: &rusqlite::Transaction<'_>,
        endpoint: &str,
    ) -> Result<u64, rusqlite::Error> {
        let n = tx.execute(
            "UPDATE hook_dead_letters SET replay_at_ms = ?2
             WHERE endpoint_id = ?1 AND replay_at_ms IS NULL",
            params![endpoint, to_sql(now_ms())],
        )?;
        Ok(n as u64)
    }

    /// A replayed dead letter was delivered: forget it.
    pub(crate) fn replayed(
        tx: &rusqlite::Transaction<'_>,
        endpoint: &str,
        seq: u64,
    ) -> Result<(), rusqlite::Error> {
        tx.execute(
            "DELETE FROM hook_dead_letters WHERE endpoint_id = ?1 AND seq = ?2",
            params![endpoint, to_sql(seq)],
        )?;
        Ok(())
    }

    /// A replay failed for `max_age` again: back to waiting.
    pub(crate) fn rebury(
        tx: &rusqlite::Transaction<'_>,
        endpoint: &str,
        seq: u64,
        attempts: u32,
        error: &str,
    ) -> Result<(), rusqlite::Error> {
        tx.execute(
            "UPDATE hook_dead_letters SET replay_at_ms = NULL, attempts = attempts + ?3,
             error = ?4, dead_at_ms = ?5 WHERE endpoint_id = ?1 AND seq = ?2",
            params![endpoint, to_sql(seq), attempts, error, to_sql(now_ms())],
        )?;
        Ok(())
    }
}
