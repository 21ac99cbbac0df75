//! [`LifecycleDb`]: the SQLite store (rusqlite, WAL) with the reference tables of
//! docs/compatibility.md#storage (`_schema`, `audit_events`, `execution_records`, `skill_records`,
//! `context_state`, `metrics`) plus `leases`. It is a [`StateStore`] (context keys
//! `dataset:{name}`, `_version_id`, and `_history:{seq}` for a bounded history), the
//! record/skill store of the promotion engine, and the lease table of invariant I8.

use crate::error::LifecycleError;
use crate::lease::{Lease, LeaseHeld, LeaseStore};
use crate::projection::{DatasetState, HistoryEntry};
use crate::promotion::{SkillRecord, SkillState, Transition};
use crate::record::ExecutionRecord;
use crate::store::{DEFAULT_HISTORY_CAP, StateStore};
use crate::time::{isoformat, parse};
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Schema version written into `_schema`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, intent_id TEXT NOT NULL, stage TEXT NOT NULL,
    event_type TEXT NOT NULL, outcome TEXT NOT NULL, policy_bundle_version TEXT NOT NULL DEFAULT '',
    details_json TEXT NOT NULL DEFAULT '{}', timestamp TEXT NOT NULL,
    event_hash TEXT NOT NULL DEFAULT '', previous_hash TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS idx_audit_intent ON audit_events(intent_id);
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events(timestamp);
CREATE TABLE IF NOT EXISTS execution_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, signature_hash TEXT NOT NULL, timestamp TEXT NOT NULL,
    success INTEGER NOT NULL DEFAULT 1, replanned INTEGER NOT NULL DEFAULT 0,
    cost_dbu REAL NOT NULL DEFAULT 0.0, duration_seconds REAL NOT NULL DEFAULT 0.0,
    faults_json TEXT NOT NULL DEFAULT '[]', schema_match INTEGER NOT NULL DEFAULT 1,
    pii_exposure INTEGER NOT NULL DEFAULT 0, policy_compliant INTEGER NOT NULL DEFAULT 1,
    layer_adherent INTEGER NOT NULL DEFAULT 1, max_expected_duration REAL NOT NULL DEFAULT 300.0,
    max_expected_cost REAL NOT NULL DEFAULT 50.0);
CREATE INDEX IF NOT EXISTS idx_exec_sig_hash ON execution_records(signature_hash);
CREATE INDEX IF NOT EXISTS idx_exec_timestamp ON execution_records(timestamp);
CREATE TABLE IF NOT EXISTS skill_records (
    signature_hash TEXT PRIMARY KEY, state TEXT NOT NULL DEFAULT 'candidate',
    generation_metadata_json TEXT NOT NULL DEFAULT '{}', last_evaluation TEXT,
    demotion_reason TEXT NOT NULL DEFAULT '', consecutive_inactive_windows INTEGER NOT NULL DEFAULT 0,
    history_json TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS context_state (
    key TEXT PRIMARY KEY, value_json TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS metrics (
    metric_key TEXT PRIMARY KEY, metric_type TEXT NOT NULL DEFAULT 'counter', value REAL NOT NULL DEFAULT 0.0,
    labels_json TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS leases (
    target TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at TEXT NOT NULL, expires_at TEXT NOT NULL);
";

/// The tables a lifecycle database must already have before a reader or an
/// evaluation touches it (a file without them is someone else's database).
const REQUIRED_TABLES: [&str; 2] = ["execution_records", "skill_records"];

/// Opens `path` read-only, without creating it, and checks that it is a SQLite
/// database with the lifecycle tables. Nothing is written: no journal mode change, no
/// schema, and `query_only` refuses any statement that would write.
fn open_checked_read_only(path: &Path) -> Result<Connection, LifecycleError> {
    let shown = path.display().to_string();
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(LifecycleError::NotFound { path: shown });
    }
    let err = |e| LifecycleError::Sqlite {
        path: shown.clone(),
        source: e,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(err)?;
    let tables = table_names(&conn).map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => LifecycleError::Foreign {
            path: shown.clone(),
            reason: "it is not a SQLite database".into(),
        },
        _ => err(e),
    })?;
    let missing: Vec<&str> = REQUIRED_TABLES
        .iter()
        .copied()
        .filter(|t| !tables.iter().any(|have| have == t))
        .collect();
    if !missing.is_empty() {
        return Err(LifecycleError::Foreign {
            path: shown,
            reason: format!("it has no {} table", missing.join(" or ")),
        });
    }
    conn.pragma_update(None, "query_only", "ON").map_err(err)?;
    Ok(conn)
}

fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The SQLite lifecycle/state store.
#[derive(Debug)]
pub struct LifecycleDb {
    conn: Mutex<Connection>,
    path: PathBuf,
    history_cap: usize,
}

const HISTORY_PREFIX: &str = "_history:";

impl LifecycleDb {
    /// Opens (creating if needed) the database at `path`: WAL, `foreign_keys=ON`, a 10 s
    /// busy timeout, every table ensured, history capped at [`DEFAULT_HISTORY_CAP`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LifecycleError> {
        let path = path.as_ref().to_path_buf();
        let err = |e| LifecycleError::Sqlite {
            path: path.display().to_string(),
            source: e,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute(
            "INSERT OR IGNORE INTO _schema (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .map_err(err)?;
        Ok(LifecycleDb {
            conn: Mutex::new(conn),
            path,
            history_cap: DEFAULT_HISTORY_CAP,
        })
    }

    /// Opens an existing lifecycle database for reading only: it is never created,
    /// migrated or switched to WAL, and every write through it fails. A missing file is
    /// [`LifecycleError::NotFound`]; a file that is not SQLite, or lacks the lifecycle
    /// tables, is [`LifecycleError::Foreign`]. The file is left byte-identical.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, LifecycleError> {
        let path = path.as_ref().to_path_buf();
        let conn = open_checked_read_only(&path)?;
        Ok(LifecycleDb {
            conn: Mutex::new(conn),
            path,
            history_cap: DEFAULT_HISTORY_CAP,
        })
    }

    /// Opens an existing lifecycle database for reading and writing, like
    /// [`LifecycleDb::open`], but only after checking (read-only) that the file exists
    /// and is a lifecycle database: a missing, empty or foreign file is refused with
    /// the errors of [`LifecycleDb::open_read_only`] and left untouched.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, LifecycleError> {
        let path = path.as_ref();
        drop(open_checked_read_only(path)?);
        Self::open(path)
    }

    /// Sets the history cap (at least 1).
    #[must_use]
    pub fn with_history_cap(mut self, cap: usize) -> Self {
        self.history_cap = cap.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, e: rusqlite::Error) -> LifecycleError {
        LifecycleError::Sqlite {
            path: self.path.display().to_string(),
            source: e,
        }
    }

    fn corrupt(&self, what: &str, reason: impl std::fmt::Display) -> LifecycleError {
        LifecycleError::Corrupt {
            path: self.path.display().to_string(),
            what: what.to_owned(),
            reason: reason.to_string(),
        }
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, LifecycleError> {
        self.conn.lock().map_err(|_| LifecycleError::Poisoned)
    }

    // ---- execution records -------------------------------------------------------

    /// Appends one record.
    pub fn execution_append(&self, r: &ExecutionRecord) -> Result<(), LifecycleError> {
        let faults =
            serde_json::to_string(&r.faults).map_err(|e| self.corrupt("faults_json", e))?;
        self.conn()?
            .execute(
                "INSERT INTO execution_records (signature_hash, timestamp, success, replanned, cost_dbu, \
                 duration_seconds, faults_json, schema_match, pii_exposure, policy_compliant, layer_adherent, \
                 max_expected_duration, max_expected_cost) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![
                    r.signature_hash,
                    isoformat(r.timestamp),
                    r.success,
                    r.replanned,
                    r.cost_dbu,
                    r.duration_seconds,
                    faults,
                    r.schema_match,
                    r.pii_exposure,
                    r.policy_compliant,
                    r.layer_adherent,
                    r.max_expected_duration,
                    r.max_expected_cost
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Every record (oldest first); `signature_hash` narrows to one skill.
    pub fn execution_load(
        &self,
        signature_hash: Option<&str>,
    ) -> Result<Vec<ExecutionRecord>, LifecycleError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT signature_hash, timestamp, success, replanned, cost_dbu, duration_seconds, faults_json, \
                 schema_match, pii_exposure, policy_compliant, layer_adherent, max_expected_duration, \
                 max_expected_cost FROM execution_records WHERE ?1 IS NULL OR signature_hash = ?1 ORDER BY id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([signature_hash], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, f64>(4)?,
                    row.get::<_, f64>(5)?,
                    row.get::<_, String>(6)?,
                    [
                        row.get::<_, bool>(7)?,
                        row.get::<_, bool>(8)?,
                        row.get::<_, bool>(9)?,
                        row.get::<_, bool>(10)?,
                    ],
                    row.get::<_, f64>(11)?,
                    row.get::<_, f64>(12)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, ts, success, replanned, cost, dur, faults, flags, max_d, max_c) =
                row.map_err(|e| self.sql(e))?;
            let [schema_match, pii_exposure, policy_compliant, layer_adherent] = flags;
            let timestamp =
                parse(&ts).ok_or_else(|| self.corrupt("execution_records.timestamp", &ts))?;
            let faults: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&faults)
                .map_err(|e| self.corrupt("execution_records.faults_json", e))?
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect();
            out.push(ExecutionRecord {
                signature_hash: hash,
                timestamp,
                success,
                replanned,
                cost_dbu: cost,
                duration_seconds: dur,
                faults,
                schema_match,
                pii_exposure,
                policy_compliant,
                layer_adherent,
                max_expected_duration: max_d,
                max_expected_cost: max_c,
            });
        }
        Ok(out)
    }

    // ---- skills ------------------------------------------------------------------

    /// Inserts or replaces a skill.
    pub fn skill_upsert(&self, s: &SkillRecord) -> Result<(), LifecycleError> {
        let meta = serde_json::to_string(&s.generation_metadata)
            .map_err(|e| self.corrupt("generation_metadata_json", e))?;
        let hist =
            serde_json::to_string(&s.history).map_err(|e| self.corrupt("history_json", e))?;
        self.conn()?
            .execute(
                "INSERT OR REPLACE INTO skill_records (signature_hash, state, generation_metadata_json, \
                 last_evaluation, demotion_reason, consecutive_inactive_windows, history_json) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![
                    s.signature_hash,
                    s.state.as_str(),
                    meta,
                    s.last_evaluation,
                    s.demotion_reason,
                    s.consecutive_inactive_windows,
                    hist
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Every skill, by signature hash.
    pub fn skill_load_all(&self) -> Result<Vec<SkillRecord>, LifecycleError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT signature_hash, state, generation_metadata_json, last_evaluation, demotion_reason, \
                 consecutive_inactive_windows, history_json FROM skill_records ORDER BY signature_hash",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, state, meta, last, reason, inactive, hist) = row.map_err(|e| self.sql(e))?;
            out.push(SkillRecord {
                state: SkillState::parse(&state)
                    .ok_or_else(|| self.corrupt("skill_records.state", &state))?,
                generation_metadata: serde_json::from_str(&meta)
                    .map_err(|e| self.corrupt("skill_records.generation_metadata_json", e))?,
                last_evaluation: last,
                demotion_reason: reason,
                consecutive_inactive_windows: inactive,
                history: serde_json::from_str::<Vec<Transition>>(&hist)
                    .map_err(|e| self.corrupt("skill_records.history_json", e))?,
                signature_hash: hash,
            });
        }
        Ok(out)
    }

    // ---- leases ------------------------------------------------------------------

    /// Atomically (`BEGIN IMMEDIATE`) takes the lease on `target` for `holder` until
    /// `now + ttl_secs`. A live lease of another holder is refused with [`LeaseHeld`];
    /// an expired one is taken over; the same holder renews.
    pub fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT holder, expires_at FROM leases WHERE target = ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        if let Some((h, exp)) = current {
            let live = parse(&exp).is_none_or(|e| e > now);
            if live && h != holder {
                return Err(LeaseHeld {
                    target: target.to_owned(),
                    holder: h,
                    expires_at: exp,
                }
                .into());
            }
        }
        let expires = now
            .checked_add(jiff::SignedDuration::from_secs(i64::from(ttl_secs)))
            .unwrap_or(Timestamp::MAX);
        let lease = Lease {
            target: target.to_owned(),
            holder: holder.to_owned(),
            acquired_at: isoformat(now),
            expires_at: isoformat(expires),
        };
        tx.execute(
            "INSERT OR REPLACE INTO leases (target, holder, acquired_at, expires_at) VALUES (?1,?2,?3,?4)",
            params![lease.target, lease.holder, lease.acquired_at, lease.expires_at],
        )
        .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(lease)
    }

    /// Releases `holder`'s lease on `target`; false when it did not hold it.
    pub fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError> {
        let n = self
            .conn()?
            .execute(
                "DELETE FROM leases WHERE target = ?1 AND holder = ?2",
                [target, holder],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// The lease on `target`, live or not.
    pub fn lease(&self, target: &str) -> Result<Option<Lease>, LifecycleError> {
        self.conn()?
            .query_row(
                "SELECT target, holder, acquired_at, expires_at FROM leases WHERE target = ?1",
                [target],
                |r| {
                    Ok(Lease {
                        target: r.get(0)?,
                        holder: r.get(1)?,
                        acquired_at: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    // ---- context state -----------------------------------------------------------

    fn get_key(&self, conn: &Connection, key: &str) -> Result<Option<String>, LifecycleError> {
        conn.query_row(
            "SELECT value_json FROM context_state WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.sql(e))
    }
}

fn put(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO context_state (key, value_json, updated_at) VALUES (?1, ?2, datetime('now')) \
         ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at",
        [key, value],
    )
}

impl StateStore for LifecycleDb {
    fn set_dataset_state(
        &self,
        name: &str,
        state: &DatasetState,
        version_id: &str,
    ) -> Result<(), LifecycleError> {
        let json = serde_json::to_string(state).map_err(|e| self.corrupt("context_state", e))?;
        let version =
            serde_json::to_string(version_id).map_err(|e| self.corrupt("context_state", e))?;
        let mut conn = self.conn()?;
        // `BEGIN IMMEDIATE`: the write lock is taken (waiting out the busy timeout)
        // before anything is read. A deferred transaction that reads first cannot wait
        // for the lock later: under WAL, another process's commit in between fails the
        // upgrade at once with `database is locked`.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        put(&tx, &format!("dataset:{name}"), &json).map_err(|e| self.sql(e))?;
        put(&tx, "_version_id", &version).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))
    }

    fn dataset_state(&self, name: &str) -> Result<Option<DatasetState>, LifecycleError> {
        let conn = self.conn()?;
        match self.get_key(&conn, &format!("dataset:{name}"))? {
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| self.corrupt(&format!("context_state dataset:{name}"), e)),
            None => Ok(None),
        }
    }

    fn version_id(&self) -> Result<String, LifecycleError> {
        let conn = self.conn()?;
        match self.get_key(&conn, "_version_id")? {
            Some(v) => {
                serde_json::from_str(&v).map_err(|e| self.corrupt("context_state _version_id", e))
            }
            None => Ok("v_initial".into()),
        }
    }

    fn record_execution(&self, entry: &HistoryEntry) -> Result<(), LifecycleError> {
        let json = serde_json::to_string(entry).map_err(|e| self.corrupt("context_state", e))?;
        let mut conn = self.conn()?;
        // `BEGIN IMMEDIATE`: the write lock is taken (waiting out the busy timeout)
        // before anything is read. A deferred transaction that reads first cannot wait
        // for the lock later: under WAL, another process's commit in between fails the
        // upgrade at once with `database is locked`.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let seq: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(CAST(substr(key, 10) AS INTEGER)), 0) FROM context_state WHERE key >= '_history:' AND key < '_history;'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        let next = seq + 1;
        put(&tx, &format!("{HISTORY_PREFIX}{next:020}"), &json).map_err(|e| self.sql(e))?;
        let keep_from = next - i64::try_from(self.history_cap).unwrap_or(i64::MAX) + 1;
        if keep_from > 1 {
            tx.execute(
                "DELETE FROM context_state WHERE key >= '_history:' AND key < ?1",
                [format!("{HISTORY_PREFIX}{keep_from:020}")],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    fn recent_history(&self, limit: usize) -> Result<Vec<HistoryEntry>, LifecycleError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT value_json FROM context_state WHERE key >= '_history:' AND key < '_history;' ORDER BY key DESC LIMIT ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for v in rows {
            let v = v.map_err(|e| self.sql(e))?;
            out.push(
                serde_json::from_str(&v).map_err(|e| self.corrupt("context_state history", e))?,
            );
        }
        out.reverse();
        Ok(out)
    }

    fn history_len(&self) -> Result<usize, LifecycleError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM context_state WHERE key >= '_history:' AND key < '_history;'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl LeaseStore for LifecycleDb {
    fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError> {
        LifecycleDb::acquire_lease(self, target, holder, now, ttl_secs)
    }

    fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError> {
        LifecycleDb::release_lease(self, target, holder)
    }
}
