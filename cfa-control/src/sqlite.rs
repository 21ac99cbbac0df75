//! [`ControlDb`]: the control tables in the lifecycle SQLite database
//! (`control_kills`, `control_tickets`), shared by every process that opens the same
//! file. Every change is one SQL transaction; readers opened with
//! [`ControlDb::open_read_only`] never create or change the file.
//!
//! The kill switches are read on every decision. They are cached per connection and
//! re-read only when `PRAGMA data_version` says another connection committed since
//! (or this one wrote), so an unchanged store costs one pragma per decision.

use crate::approval::{Resolution, Ticket, TicketStatus};
use crate::error::ControlError;
use crate::kill::{KillSwitch, Scope};
use crate::rows::{
    KillRow, TICKET_COLUMNS, TicketRow, check_engage, check_resolve_args, fault_codes_json,
    kill_of, resolved_status,
};
use crate::snapshot::{ControlSnapshot, ControlStore};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS control_kills (
    scope TEXT PRIMARY KEY, reason TEXT NOT NULL, engaged_by TEXT NOT NULL, engaged_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS control_tickets (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, intent_id TEXT NOT NULL, content_hash TEXT NOT NULL,
    policy_bundle_hash TEXT NOT NULL, policy_bundle TEXT NOT NULL, requester TEXT NOT NULL,
    reason TEXT NOT NULL, fault_codes_json TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, decided_by TEXT, decided_at TEXT, note TEXT, spent_at TEXT);
CREATE INDEX IF NOT EXISTS idx_control_tickets_status ON control_tickets(status);
";

/// The control store in a SQLite database file.
#[derive(Debug)]
pub struct ControlDb {
    inner: Mutex<Inner>,
    path: PathBuf,
    read_only: bool,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// `(data_version, switches)` as last read.
    kills: Option<(i64, Vec<KillSwitch>)>,
}

impl ControlDb {
    /// Opens (creating if needed) the database at `path` for reading and writing: WAL,
    /// a 10 s busy timeout, the control tables ensured.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ControlError> {
        let path = path.as_ref().to_path_buf();
        let err = sql_err(&path);
        let conn = Connection::open(&path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.execute_batch(SCHEMA).map_err(&err)?;
        drop(err);
        Ok(ControlDb {
            inner: Mutex::new(Inner { conn, kills: None }),
            path,
            read_only: false,
        })
    }

    /// Opens an existing database for reading only: never created, migrated or
    /// switched to WAL. A missing file is [`ControlError::NotFound`]; a database without
    /// the control tables reads as empty.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, ControlError> {
        let path = path.as_ref().to_path_buf();
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(ControlError::NotFound {
                path: path.display().to_string(),
            });
        }
        let err = sql_err(&path);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&err)?;
        conn.pragma_update(None, "query_only", true).map_err(&err)?;
        drop(err);
        Ok(ControlDb {
            inner: Mutex::new(Inner { conn, kills: None }),
            path,
            read_only: true,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, ControlError> {
        self.inner.lock().map_err(|_| ControlError::Poisoned)
    }

    fn sql(&self, e: rusqlite::Error) -> ControlError {
        sql_err(&self.path)(e)
    }

    /// Whether the control tables exist (a read-only store over a database without
    /// them reads as empty).
    fn has_tables(&self, conn: &Connection) -> Result<bool, ControlError> {
        if !self.read_only {
            return Ok(true);
        }
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('control_kills', 'control_tickets')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(n == 2)
    }

    // ---- kill switches ----------------------------------------------------------

    /// Engages (or re-engages, replacing reason and operator) the switch on its scope.
    pub fn engage(&self, kill: &KillSwitch) -> Result<(), ControlError> {
        check_engage(kill)?;
        let mut g = self.lock()?;
        g.conn
            .execute(
                "INSERT INTO control_kills (scope, reason, engaged_by, engaged_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(scope) DO UPDATE SET reason = excluded.reason, engaged_by = excluded.engaged_by, engaged_at = excluded.engaged_at",
                params![kill.scope.to_string(), kill.reason, kill.by, kill.engaged_at],
            )
            .map_err(|e| self.sql(e))?;
        g.kills = None;
        Ok(())
    }

    /// Lifts the switch on `scope`: the switch that was engaged, or `None` (nothing changed).
    pub fn release(&self, scope: &Scope) -> Result<Option<KillSwitch>, ControlError> {
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let key = scope.to_string();
        let found = tx
            .query_row(
                "SELECT scope, reason, engaged_by, engaged_at FROM control_kills WHERE scope = ?1",
                [&key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some(row) = found else {
            return Ok(None);
        };
        tx.execute("DELETE FROM control_kills WHERE scope = ?1", [&key])
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        g.kills = None;
        self.kill_of(row).map(Some)
    }

    fn kill_of(&self, row: KillRow) -> Result<KillSwitch, ControlError> {
        kill_of(&self.path.display().to_string(), row)
    }

    /// Every engaged switch, ordered by scope (cached until the database changes).
    pub fn kills(&self) -> Result<Vec<KillSwitch>, ControlError> {
        let mut g = self.lock()?;
        self.kills_locked(&mut g)
    }

    fn kills_locked(&self, g: &mut Inner) -> Result<Vec<KillSwitch>, ControlError> {
        let version: i64 = g
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if let Some((v, kills)) = &g.kills
            && *v == version
        {
            return Ok(kills.clone());
        }
        let kills = if self.has_tables(&g.conn)? {
            let mut stmt = g
                .conn
                .prepare_cached(
                    "SELECT scope, reason, engaged_by, engaged_at FROM control_kills ORDER BY scope",
                )
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(|e| self.sql(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.sql(e))?;
            drop(stmt);
            rows.into_iter()
                .map(|row| self.kill_of(row))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        g.kills = Some((version, kills.clone()));
        Ok(kills)
    }

    // ---- tickets ----------------------------------------------------------------

    /// The ticket with `id`, if any.
    pub fn ticket(&self, id: &str) -> Result<Option<Ticket>, ControlError> {
        let g = self.lock()?;
        self.ticket_on(&g.conn, id)
    }

    fn ticket_on(&self, conn: &Connection, id: &str) -> Result<Option<Ticket>, ControlError> {
        if !self.has_tables(conn)? {
            return Ok(None);
        }
        let sql = format!("SELECT {TICKET_COLUMNS} FROM control_tickets WHERE id = ?1");
        let raw = conn
            .query_row(&sql, [id], read_ticket)
            .optional()
            .map_err(|e| self.sql(e))?;
        raw.map(|r| r.into_ticket(&self.path.display().to_string()))
            .transpose()
    }

    /// Every ticket (or those with `status`), oldest first.
    pub fn tickets(&self, status: Option<TicketStatus>) -> Result<Vec<Ticket>, ControlError> {
        let g = self.lock()?;
        if !self.has_tables(&g.conn)? {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM control_tickets WHERE (?1 IS NULL OR status = ?1) ORDER BY created_at, id"
        );
        let mut stmt = g.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([status.map(TicketStatus::as_str)], read_ticket)
            .map_err(|e| self.sql(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        let store = self.path.display().to_string();
        rows.into_iter().map(|r| r.into_ticket(&store)).collect()
    }

    /// Grants or denies the pending ticket `id` at `now`, in one transaction, and
    /// returns it as stored. An unknown, no longer pending or expired ticket is an
    /// error and nothing changes.
    pub fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        note: Option<&str>,
        now: &str,
    ) -> Result<Ticket, ControlError> {
        check_resolve_args(by, now)?;
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let status = resolved_status(id, self.ticket_on(&tx, id)?, resolution, now)?;
        tx.execute(
            "UPDATE control_tickets SET status = ?2, decided_by = ?3, decided_at = ?4, note = ?5 WHERE id = ?1 AND status = 'pending'",
            params![id, status.as_str(), by, now, note],
        )
        .map_err(|e| self.sql(e))?;
        let stored = self
            .ticket_on(&tx, id)?
            .ok_or_else(|| ControlError::UnknownTicket { id: id.to_owned() })?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(stored)
    }
}

impl ControlStore for ControlDb {
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError> {
        let mut g = self.lock()?;
        let kills = self.kills_locked(&mut g)?;
        let tickets = match approval_id {
            Some(id) => self.ticket_on(&g.conn, id)?.into_iter().collect(),
            None => Vec::new(),
        };
        Ok(ControlSnapshot { kills, tickets })
    }

    fn open_ticket(&self, t: &Ticket) -> Result<(), ControlError> {
        let codes = fault_codes_json(t);
        let g = self.lock()?;
        let done = g.conn.execute(
            &format!(
                "INSERT INTO control_tickets ({TICKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ),
            params![
                t.id,
                t.status.as_str(),
                t.intent_id,
                t.content_hash,
                t.policy_bundle_hash,
                t.policy_bundle,
                t.requester,
                t.reason,
                codes,
                t.created_at,
                t.expires_at,
                t.decided_by,
                t.decided_at,
                t.note,
                t.spent_at
            ],
        );
        match done {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(ControlError::DuplicateTicket { id: t.id.clone() })
            }
            Err(e) => Err(self.sql(e)),
        }
    }

    fn spend_ticket(&self, id: &str, now: &str) -> Result<bool, ControlError> {
        let g = self.lock()?;
        let n = g
            .conn
            .execute(
                "UPDATE control_tickets SET status = 'spent', spent_at = ?2 WHERE id = ?1 AND status = 'granted'",
                params![id, now],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n == 1)
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> ControlError + '_ {
    move |source| ControlError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// A `control_tickets` row, columns in [`TICKET_COLUMNS`] order.
fn read_ticket(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRow> {
    Ok(TicketRow {
        id: r.get(0)?,
        status: r.get(1)?,
        intent_id: r.get(2)?,
        content_hash: r.get(3)?,
        policy_bundle_hash: r.get(4)?,
        policy_bundle: r.get(5)?,
        requester: r.get(6)?,
        reason: r.get(7)?,
        fault_codes_json: r.get(8)?,
        created_at: r.get(9)?,
        expires_at: r.get(10)?,
        decided_by: r.get(11)?,
        decided_at: r.get(12)?,
        note: r.get(13)?,
        spent_at: r.get(14)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn ticket(id: &str) -> Ticket {
        Ticket {
            id: id.into(),
            status: TicketStatus::Pending,
            intent_id: "i".into(),
            content_hash: "c".into(),
            policy_bundle_hash: "b".into(),
            policy_bundle: "v".into(),
            requester: "r".into(),
            reason: "GOLD: needs approval".into(),
            fault_codes: vec!["GOLD".into()],
            created_at: "2026-01-01T00:00:00+00:00".into(),
            expires_at: "2026-01-02T00:00:00+00:00".into(),
            decided_by: None,
            decided_at: None,
            note: None,
            spent_at: None,
        }
    }

    const T1: &str = "2026-01-01T01:00:00+00:00";

    #[test]
    fn tickets_round_trip_and_spend_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = ControlDb::open(dir.path().join("c.db")).unwrap();
        db.open_ticket(&ticket("t1")).unwrap();
        assert!(matches!(
            db.open_ticket(&ticket("t1")),
            Err(ControlError::DuplicateTicket { .. })
        ));
        assert_eq!(db.ticket("t1").unwrap().unwrap(), ticket("t1"));
        // not granted yet: nothing to spend
        assert!(!db.spend_ticket("t1", T1).unwrap());
        let t = db
            .resolve("t1", Resolution::Grant, "ana", Some("ok"), T1)
            .unwrap();
        assert_eq!(t.status, TicketStatus::Granted);
        assert_eq!(t.decided_by.as_deref(), Some("ana"));
        assert_eq!(t.note.as_deref(), Some("ok"));
        assert!(matches!(
            db.resolve("t1", Resolution::Deny, "ana", None, T1),
            Err(ControlError::NotPending { .. })
        ));
        assert!(db.spend_ticket("t1", T1).unwrap());
        assert!(!db.spend_ticket("t1", T1).unwrap());
        assert_eq!(
            db.ticket("t1").unwrap().unwrap().status,
            TicketStatus::Spent
        );
        assert_eq!(db.tickets(Some(TicketStatus::Spent)).unwrap().len(), 1);
        assert!(db.tickets(Some(TicketStatus::Pending)).unwrap().is_empty());
    }

    #[test]
    fn resolving_refuses_unknown_expired_and_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let db = ControlDb::open(dir.path().join("c.db")).unwrap();
        db.open_ticket(&ticket("t1")).unwrap();
        assert!(matches!(
            db.resolve("nope", Resolution::Grant, "ana", None, T1),
            Err(ControlError::UnknownTicket { .. })
        ));
        assert!(matches!(
            db.resolve("t1", Resolution::Grant, " ", None, T1),
            Err(ControlError::Empty { .. })
        ));
        assert!(matches!(
            db.resolve(
                "t1",
                Resolution::Grant,
                "ana",
                None,
                "2026-01-03T00:00:00+00:00"
            ),
            Err(ControlError::Expired { .. })
        ));
        assert_eq!(
            db.ticket("t1").unwrap().unwrap().status,
            TicketStatus::Pending
        );
    }

    #[test]
    fn kills_are_seen_by_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = ControlDb::open(&path).unwrap();
        let reader = ControlDb::open(&path).unwrap();
        assert!(reader.kills().unwrap().is_empty());
        let k = KillSwitch {
            scope: Scope::Domain("fiscal".into()),
            reason: "incident".into(),
            by: "ana".into(),
            engaged_at: T1.into(),
        };
        writer.engage(&k).unwrap();
        assert_eq!(reader.kills().unwrap(), vec![k.clone()]);
        assert_eq!(writer.release(&k.scope).unwrap(), Some(k.clone()));
        assert_eq!(writer.release(&k.scope).unwrap(), None);
        assert!(reader.kills().unwrap().is_empty());
        assert!(writer.kills().unwrap().is_empty());
    }

    #[test]
    fn read_only_never_creates_and_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        assert!(matches!(
            ControlDb::open_read_only(&path),
            Err(ControlError::NotFound { .. })
        ));
        assert!(!path.exists());
        // a database without the control tables reads as empty
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE other (x INTEGER);")
            .unwrap();
        let ro = ControlDb::open_read_only(&path).unwrap();
        assert!(ro.kills().unwrap().is_empty());
        assert!(ro.tickets(None).unwrap().is_empty());
        assert_eq!(ro.snapshot(Some("t")).unwrap(), ControlSnapshot::default());
    }
}
