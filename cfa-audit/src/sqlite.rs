//! The SQLite store: the reference's `audit_events` table and `_schema` table (WAL),
//! so databases written by either implementation open and verify in the other.
//! Appends run in `BEGIN IMMEDIATE` transactions: the tail hash is read and the row
//! inserted under SQLite's write lock, so several processes form one chain. Concurrent
//! appenders of one store are group-committed (see [`crate::QueuedAppend`]): one transaction
//! (one commit, one sync) per group.

use crate::error::{AuditError, ForeignStoreError, SqliteError};
use crate::event::{AuditEvent, NewEvent};
use crate::group::{
    GroupQueue, LeadGuard, Request, Role, Woken, complete_all, deliver, deliver_hashes,
};
use crate::prepared::{PreparedEvent, Sealed};
use crate::store::{AuditStore, Durability};
use crate::verify::{BadReason, ChainState, VerifyOptions, VerifyReport, check_event};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _schema (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    policy_bundle_version TEXT NOT NULL DEFAULT '',
    details_json TEXT NOT NULL DEFAULT '{}',
    timestamp TEXT NOT NULL,
    event_hash TEXT NOT NULL DEFAULT '',
    previous_hash TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idx_audit_intent ON audit_events(intent_id);
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events(timestamp);
INSERT OR IGNORE INTO _schema (version) VALUES (1);
";

const SELECT_ALL: &str = "SELECT id, intent_id, stage, event_type, outcome, policy_bundle_version, \
     details_json, timestamp, event_hash, previous_hash FROM audit_events ORDER BY id";

/// A SQLite audit store (the reference's `audit_events` table).
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    group: GroupQueue,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating tables if needed) the database at `path`, in WAL mode.
    /// Durability maps to `synchronous`: always → FULL, batch → NORMAL (WAL group
    /// commit), never → OFF.
    pub fn open(path: impl Into<PathBuf>, durability: Durability) -> Result<Self, AuditError> {
        let path = path.into();
        let err = |source| {
            AuditError::from(SqliteError {
                path: path.clone(),
                source,
            })
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(120)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let sync = match durability {
            Durability::Always => "FULL",
            Durability::Batch(_) => "NORMAL",
            Durability::Never => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(err)?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE;{SCHEMA}COMMIT;"))
            .map_err(err)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            group: GroupQueue::default(),
        })
    }

    /// Opens an existing audit database for reading and writing (never creates it): a
    /// missing, empty or foreign file is refused, untouched, with the errors of
    /// [`SqliteStore::open_read_only`]; an audit database is then opened as by
    /// [`SqliteStore::open`] with [`Durability::Always`].
    pub fn open_existing(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        drop(Self::open_read_only(&path)?);
        Self::open(path, Durability::Always)
    }

    /// Opens an existing database for reading and verification only: it is never
    /// created, migrated or switched to WAL, and `query_only` refuses any write. A
    /// missing path is an I/O "no such file" error; a file that is not SQLite, or has
    /// no `audit_events` table, is [`ForeignStoreError`]. The file is left unchanged.
    pub fn open_read_only(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(crate::error::IoError::new(
                &path,
                "open",
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            )
            .into());
        }
        let err = |source| {
            AuditError::from(SqliteError {
                path: path.clone(),
                source,
            })
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(120)).map_err(err)?;
        let has_events = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => ForeignStoreError {
                    path: path.clone(),
                    reason: "it is not a SQLite database".into(),
                }
                .into(),
                _ => err(e),
            })?;
        if has_events == 0 {
            return Err(ForeignStoreError {
                path,
                reason: "it has no audit_events table".into(),
            }
            .into());
        }
        conn.pragma_update(None, "query_only", "ON").map_err(err)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            group: GroupQueue::default(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> AuditError {
        SqliteError {
            path: self.path.clone(),
            source,
        }
        .into()
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn each_row(
        &self,
        visit: &mut dyn FnMut(u64, Result<AuditEvent, BadReason>) -> ControlFlow<()>,
    ) -> Result<(), AuditError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(SELECT_ALL).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let get = |i: usize| row.get::<_, String>(i);
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let details_json = get(6).map_err(|e| self.err(e))?;
            let event = match crate::event::parse_json_strict(&details_json) {
                Ok(Value::Object(details)) => Ok(AuditEvent {
                    intent_id: get(1).map_err(|e| self.err(e))?,
                    stage: get(2).map_err(|e| self.err(e))?,
                    event_type: get(3).map_err(|e| self.err(e))?,
                    outcome: get(4).map_err(|e| self.err(e))?,
                    policy_bundle_version: get(5).map_err(|e| self.err(e))?,
                    details,
                    timestamp: get(7).map_err(|e| self.err(e))?,
                    event_hash: get(8).map_err(|e| self.err(e))?,
                    previous_hash: get(9).map_err(|e| self.err(e))?,
                }),
                Ok(_) => Err(BadReason::InvalidField {
                    key: "details_json".into(),
                    expected: "a JSON object".into(),
                }),
                Err(crate::event::EventShapeError::Unparsable(e)) => Err(BadReason::Unparsable {
                    message: format!("details_json: {e}"),
                }),
                Err(crate::event::EventShapeError::DuplicateKey { key, path }) => {
                    Err(BadReason::DuplicateKey {
                        key,
                        path: if path.is_empty() {
                            "details".to_owned()
                        } else {
                            format!("details.{path}")
                        },
                    })
                }
                Err(other) => Err(other.into()),
            };
            if visit(u64::try_from(id).unwrap_or(0), event).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `events` and waits until they are committed (leading the group when no
    /// one else does).
    fn commit(&self, events: Vec<PreparedEvent>) -> crate::group::Outcome {
        let (slot, role) = self.group.join(events);
        if let Role::Follow = role
            && let Woken::Done(outcome) = slot.wait()
        {
            return outcome;
        }
        let mut guard = LeadGuard::new(&self.group, &self.path);
        let inserted = self.insert_group(&mut guard.group);
        complete_all(&guard.group, inserted.0, inserted.1);
        guard.group.clear();
        self.group.hand_over();
        match slot.wait() {
            Woken::Done(outcome) => outcome,
            Woken::Lead => Err(self.err(rusqlite::Error::QueryReturnedNoRows)),
        }
    }

    /// Inserts the requests of `group` in order in one `BEGIN IMMEDIATE` transaction:
    /// their sealed events, and `Ok` once committed (else nothing was inserted).
    fn insert_group(&self, group: &mut [Request]) -> (Vec<Vec<Sealed>>, Result<(), AuditError>) {
        let mut sealed = Vec::with_capacity(group.len());
        let result = (|| {
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let mut prev: String = tx
                .query_row(
                    "SELECT event_hash FROM audit_events ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?
                .unwrap_or_default();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO audit_events (intent_id, stage, event_type, outcome, policy_bundle_version, \
                         details_json, timestamp, event_hash, previous_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(|e| self.err(e))?;
                for request in group.iter_mut() {
                    let mut mine = Vec::with_capacity(request.events.len());
                    for event in std::mem::take(&mut request.events) {
                        // Prepared before queueing: only the hash's end is computed here.
                        let hash = event.event_hash(&prev);
                        let details_json = event.details_json().to_owned();
                        let e = event.into_event(hash, &prev).map_err(|e| {
                            AuditError::from(crate::error::InvalidEventError {
                                source_name: self.path.display().to_string(),
                                reason: format!("a prepared event does not read back: {e}"),
                            })
                        })?;
                        stmt.execute(params![
                            e.intent_id,
                            e.stage,
                            e.event_type,
                            e.outcome,
                            e.policy_bundle_version,
                            details_json,
                            e.timestamp,
                            e.event_hash,
                            e.previous_hash
                        ])
                        .map_err(|e| self.err(e))?;
                        prev.clone_from(&e.event_hash);
                        mine.push(Sealed::Event(Box::new(e)));
                    }
                    sealed.push(mine);
                }
            }
            tx.commit().map_err(|e| self.err(e))
        })();
        (sealed, result)
    }
}

impl AuditStore for SqliteStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let mut out = Vec::with_capacity(1);
        self.append_batch(vec![event], &mut out)?;
        out.pop()
            .ok_or_else(|| self.err(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Group commit: whichever appender leads inserts everything queued (each call's
    /// events contiguous, in order) in one transaction.
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        // Prepared before joining the queue: the leader only finishes the hashes.
        let events = events.into_iter().map(NewEvent::prepare).collect();
        deliver(self.commit(events), written)
    }

    /// [`SqliteStore::append_batch`] of events prepared by the caller.
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        deliver_hashes(self.commit(events), hashes)
    }

    fn tail_hash(&self) -> Result<String, AuditError> {
        self.conn()
            .query_row(
                "SELECT event_hash FROM audit_events ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    fn len(&self) -> Result<u64, AuditError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        let mut failure: Option<AuditError> = None;
        let path = self.path.display().to_string();
        self.each_row(&mut |id, ev| match ev {
            Ok(e) => visit(e),
            Err(reason) => {
                failure = Some(
                    crate::error::InvalidEventError {
                        source_name: path.clone(),
                        reason: format!("row {id}: {reason}"),
                    }
                    .into(),
                );
                ControlFlow::Break(())
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let mut st = ChainState::new(opts);
        let intent = opts.intent_id.clone();
        self.each_row(&mut |id, ev| {
            if st.broken() {
                st.skip();
                return ControlFlow::Continue(());
            }
            match ev {
                Ok(e) => {
                    let c = check_event(&e, intent.as_deref());
                    st.feed(id, 0, Ok(c));
                }
                Err(r) => st.feed(id, 0, Err(r)),
            }
            ControlFlow::Continue(())
        })?;
        Ok(st.finish(false))
    }

    fn flush(&self) -> Result<(), AuditError> {
        self.conn()
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
            .map_err(|e| self.err(e))
    }
}
