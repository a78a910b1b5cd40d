//! The node's state store: one SQLite database at `{data.dir}/state.sqlite3` that holds
//! what must survive a crash of the process. Today that is the durable upload queue (the
//! `uploads` table); the hook connector's outbox and other node state add their own
//! tables through [`MIGRATIONS`].
//!
//! Durability: the database runs in WAL mode with `synchronous = NORMAL`. A committed
//! transaction is in the WAL file (in the OS page cache) when the call returns, so it
//! survives `kill -9` of the process; after a power loss or OS crash the last few
//! transactions may be rolled back, but the database is never corrupted. That matches the
//! spool, whose files are fsynced per fragment: losing the row of a file that is still in
//! the spool is repaired by spool recovery at the next start.
//!
//! Every call blocks (SQLite does disk I/O). Call them from `tokio::task::spawn_blocking`
//! or from a dedicated thread, never on an actor's loop. A [`StateStore`] is one
//! connection (`Send`, not `Sync`); several connections to the same file may be open at
//! once (writers wait up to [`BUSY_TIMEOUT`] for each other).
//!
//! Schema versions: `PRAGMA user_version` is the number of [`MIGRATIONS`] applied. Opening
//! a database applies the missing ones in one transaction each; a database written by a
//! newer recnode (a higher version) is refused rather than misread.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a write waits for another connection's write to finish.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one step per entry; entry `i` takes the database from version `i` to
/// `i + 1`. Append only: a released step is never edited.
pub const MIGRATIONS: &[&str] = &[
    // 1: the durable upload queue. `id` is the job's identity (assigned when the local
    // path was first enqueued), `seq` its place in the queue (bumped when the same local
    // path is enqueued again while waiting). `local` is the spool path's bytes.
    "CREATE TABLE uploads (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        local BLOB NOT NULL,
        key TEXT NOT NULL,
        delete_after INTEGER NOT NULL,
        enqueued_at_ms INTEGER NOT NULL
    );
    CREATE INDEX uploads_by_seq ON uploads (seq);
    CREATE INDEX uploads_by_local ON uploads (local);",
    // 2: the hook connector (`crate::hooks::outbox`). `hook_outbox` holds every emitted
    // event (`seq` gapless per node, `body` the encoded HookEvent) until every endpoint
    // has it; `hook_endpoints` the registered endpoints and how far each got
    // (`acked_seq`); `hook_dead_letters` what an endpoint could not take within
    // `max_age` (`replay_at_ms` set while it is being replayed); `hook_meta` the next
    // seq and the outbox's random id prefix.
    "CREATE TABLE hook_outbox (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE hook_endpoints (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        format TEXT NOT NULL,
        events TEXT NOT NULL,
        source TEXT NOT NULL,
        disabled TEXT,
        acked_seq INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE hook_dead_letters (
        endpoint_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL,
        dead_at_ms INTEGER NOT NULL,
        replay_at_ms INTEGER,
        PRIMARY KEY (endpoint_id, seq)
    );
    CREATE TABLE hook_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
];

/// Why a state store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// The database file could not be opened or configured.
    #[error("opening the state store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer recnode.
    #[error(
        "the state store {} has schema version {found}, newer than this recnode's {supported}",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A schema migration failed (the database keeps the version before it).
    #[error("migrating the state store {} to version {version}: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version being created.
        version: u32,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A read or write failed.
    #[error("state store {} ({what}): {source}", path.display())]
    Query {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// One row of the `uploads` table: a file waiting to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// The job's identity, assigned at its first enqueue.
    pub id: u64,
    /// Its place in the queue (later enqueues of the same waiting path raise it).
    pub seq: u64,
    /// The spool file.
    pub local: PathBuf,
    /// The object key.
    pub key: String,
    /// Delete the spool file once stored.
    pub delete_after: bool,
    /// When the job was first enqueued (unix ms).
    pub enqueued_at_ms: u64,
}

/// A change to the `uploads` table, applied in batches by [`StateStore::apply_uploads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOp {
    /// Inserts the row, or replaces the row with the same id.
    Put(UploadRow),
    /// Deletes the row with this id (nothing if there is none).
    Delete(u64),
}

/// A file to enqueue with [`StateStore::enqueue_uploads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// The spool file.
    pub local: PathBuf,
    /// The object key.
    pub key: String,
    /// Delete the spool file once stored.
    pub delete_after: bool,
}

/// One connection to the node's state store (see the module docs).
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// SQLite integers are i64; ids, seqs and times stay far below `i64::MAX`.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl StateStore {
    /// Opens (creating if needed) the database at `path`, switches it to WAL mode with
    /// `synchronous = NORMAL` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<StateStore, StateStoreError> {
        let open_err = |source| StateStoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // `journal_mode` answers with the mode in force; WAL persists in the file.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "state store is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        let mut store = StateStore {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn query_err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> StateStoreError {
        let path = self.path.clone();
        move |source| StateStoreError::Query { path, what, source }
    }

    /// The schema version of the database (the number of [`MIGRATIONS`] applied).
    pub fn schema_version(&self) -> Result<u32, StateStoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get::<_, u32>(0))
            .map_err(self.query_err("reading the schema version"))
    }

    fn migrate(&mut self) -> Result<(), StateStoreError> {
        let supported = MIGRATIONS.len() as u32;
        let found = self.schema_version()?;
        if found > supported {
            return Err(StateStoreError::TooNew {
                path: self.path.clone(),
                found,
                supported,
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as u32 + 1;
            let path = self.path.clone();
            let err = move |source| StateStoreError::Migrate {
                path,
                version,
                source,
            };
            let tx = self.conn.transaction().map_err(err.clone())?;
            tx.execute_batch(step).map_err(err.clone())?;
            tx.pragma_update(None, "user_version", version)
                .map_err(err.clone())?;
            tx.commit().map_err(err)?;
            tracing::info!(path = %self.path.display(), version, "state store schema migrated");
        }
        Ok(())
    }

    /// Applies `ops` in order, in one transaction (a group commit): either all of them
    /// are durable when this returns `Ok`, or none is.
    pub fn apply_uploads(&mut self, ops: &[UploadOp]) -> Result<(), StateStoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let err = self.query_err("writing upload jobs");
        let result = (|| {
            let tx = self.conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO uploads (id, seq, local, key, delete_after, enqueued_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut delete = tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?;
                for op in ops {
                    match op {
                        UploadOp::Put(row) => {
                            put.execute(params![
                                to_sql(row.id),
                                to_sql(row.seq),
                                path_bytes(&row.local),
                                row.key,
                                row.delete_after,
                                to_sql(row.enqueued_at_ms),
                            ])?;
                        }
                        UploadOp::Delete(id) => {
                            delete.execute(params![to_sql(*id)])?;
                        }
                    }
                }
            }
            tx.commit()
        })();
        result.map_err(err)
    }

    /// Every waiting upload, in queue order (`seq`).
    pub fn pending_uploads(&self) -> Result<Vec<UploadRow>, StateStoreError> {
        let err = self.query_err("reading upload jobs");
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT id, seq, local, key, delete_after, enqueued_at_ms FROM uploads ORDER BY seq, id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(UploadRow {
                    id: from_sql(row.get(0)?),
                    seq: from_sql(row.get(1)?),
                    local: path_from_bytes(row.get(2)?),
                    key: row.get(3)?,
                    delete_after: row.get(4)?,
                    enqueued_at_ms: from_sql(row.get(5)?),
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        result.map_err(err)
    }

    /// Enqueues `uploads` at the tail of the queue in one transaction, the way the
    /// uploader treats an `Enqueue`: a local path that already has rows keeps the
    /// identity of its oldest row, takes the new key and `delete_after`, and moves to the
    /// tail (its other rows are merged into it). Used by spool recovery, before the
    /// uploader starts; returns the rows as stored.
    pub fn enqueue_uploads(
        &mut self,
        uploads: &[NewUpload],
        now_ms: u64,
    ) -> Result<Vec<UploadRow>, StateStoreError> {
        let err = self.query_err("enqueueing upload jobs");
        let result = (|| {
            let tx = self.conn.transaction()?;
            let mut next = next_number(&tx)?;
            let mut rows = Vec::with_capacity(uploads.len());
            {
                let mut find = tx.prepare_cached(
                    "SELECT min(id), min(enqueued_at_ms) FROM uploads WHERE local = ?1",
                )?;
                let mut remove = tx.prepare_cached("DELETE FROM uploads WHERE local = ?1")?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO uploads (id, seq, local, key, delete_after, enqueued_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for upload in uploads {
                    let local = path_bytes(&upload.local);
                    let existing: Option<(i64, i64)> = find
                        .query_row(params![local], |row| {
                            Ok(row.get::<_, Option<i64>>(0)?.zip(row.get(1)?))
                        })
                        .optional()?
                        .flatten();
                    let seq = next;
                    next += 1;
                    let (id, enqueued_at_ms) = match existing {
                        Some((id, at)) => {
                            remove.execute(params![local])?;
                            (from_sql(id), from_sql(at))
                        }
                        None => (seq, now_ms),
                    };
                    insert.execute(params![
                        to_sql(id),
                        to_sql(seq),
                        local,
                        upload.key,
                        upload.delete_after,
                        to_sql(enqueued_at_ms),
                    ])?;
                    rows.push(UploadRow {
                        id,
                        seq,
                        local: upload.local.clone(),
                        key: upload.key.clone(),
                        delete_after: upload.delete_after,
                        enqueued_at_ms,
                    });
                }
            }
            tx.commit()?;
            Ok(rows)
        })();
        result.map_err(err)
    }
}

/// The next unused id/seq number: above every id and seq in the table.
fn next_number(tx: &Transaction<'_>) -> Result<u64, rusqlite::Error> {
    let max: Option<i64> =
        tx.query_row("SELECT max(max(id), max(seq)) FROM uploads", [], |row| {
            row.get(0)
        })?;
    Ok(max.map_or(1, |m| from_sql(m) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, seq: u64, local: &str) -> UploadRow {
        UploadRow {
            id,
            seq,
            local: PathBuf::from(local),
            key: format!("k/{local}"),
            delete_after: true,
            enqueued_at_ms: 1_700_000_000_000 + id,
        }
    }

    #[test]
    fn a_new_store_is_at_the_latest_schema_version_in_wal_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.sqlite3");
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as u32);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Reopening applies nothing and keeps the version.
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as u32);
    }

    #[test]
    fn a_store_from_a_newer_recnode_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.sqlite3");
        let store = StateStore::open(&path).unwrap();
        store
            .conn
            .pragma_update(None, "user_version", 99u32)
            .unwrap();
        drop(store);
        match StateStore::open(&path) {
            Err(StateStoreError::TooNew { found: 99, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batches_apply_in_order_and_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.sqlite3");
        let mut store = StateStore::open(&path).unwrap();
        store
            .apply_uploads(&[
                UploadOp::Put(row(1, 1, "a")),
                UploadOp::Put(row(2, 2, "b")),
                UploadOp::Put(row(3, 3, "c")),
                UploadOp::Delete(2),
                // `a` moved to the tail.
                UploadOp::Put(row(1, 4, "a")),
            ])
            .unwrap();
        drop(store);
        let store = StateStore::open(&path).unwrap();
        let rows = store.pending_uploads().unwrap();
        assert_eq!(rows, vec![row(3, 3, "c"), row(1, 4, "a")]);
    }

    #[test]
    fn enqueue_moves_a_known_local_path_to_the_tail_keeping_its_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(&tmp.path().join("state.sqlite3")).unwrap();
        let mut first = row(5, 5, "init");
        first.delete_after = false;
        store
            .apply_uploads(&[UploadOp::Put(first), UploadOp::Put(row(6, 6, "seg"))])
            .unwrap();
        let new = |local: &str| NewUpload {
            local: PathBuf::from(local),
            key: format!("k/{local}"),
            delete_after: true,
        };
        let rows = store
            .enqueue_uploads(&[new("init"), new("other")], 42)
            .unwrap();
        assert_eq!(rows[0].id, 5);
        assert_eq!(rows[0].seq, 7);
        assert!(rows[0].delete_after);
        assert_eq!(
            (rows[1].id, rows[1].seq, rows[1].enqueued_at_ms),
            (8, 8, 42)
        );
        let pending: Vec<(u64, u64)> = store
            .pending_uploads()
            .unwrap()
            .iter()
            .map(|r| (r.id, r.seq))
            .collect();
        assert_eq!(pending, vec![(6, 6), (5, 7), (8, 8)]);
    }
}
