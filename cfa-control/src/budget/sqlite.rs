//! [`SqliteBudgets`]: budgets and their reservations in the lifecycle SQLite database
//! (tables `budgets` and `budget_reservations`, created when missing). Every
//! reservation, reconciliation and release is one `BEGIN IMMEDIATE` transaction: the
//! write lock is taken before the window's usage is read, so processes sharing the file
//! are admitted one at a time and never overspend.

use super::rows::{
    BudgetRow, admit_lines, budget_of, settled, settled_lines, split_usage, status_of, to_i64,
    usage_of,
};
use super::{
    Budget, BudgetError, BudgetLedger, BudgetStatus, Reservation, ReserveError, ReserveRequest,
    Scope, Settlement, Usage, Window,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS budgets (
    scope TEXT PRIMARY KEY, window_secs INTEGER NOT NULL,
    limit_dbu_micros INTEGER, limit_runs INTEGER, limit_rows INTEGER,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS budget_reservations (
    reservation_id TEXT NOT NULL, scope TEXT NOT NULL, window_secs INTEGER NOT NULL,
    window_start INTEGER NOT NULL, state TEXT NOT NULL,
    dbu_micros INTEGER NOT NULL, runs INTEGER NOT NULL, rows INTEGER NOT NULL,
    intent_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, scope));
CREATE INDEX IF NOT EXISTS idx_budget_res_window
    ON budget_reservations(scope, window_secs, window_start);
";

/// Budgets in a SQLite database shared by every process that opens the same file.
#[derive(Debug)]
pub struct SqliteBudgets {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn budget_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BudgetRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl SqliteBudgets {
    /// Opens (creating if needed) the database at `path`: WAL, a 10 s busy timeout, the
    /// budget tables ensured.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BudgetError> {
        let path = path.as_ref().to_path_buf();
        let s = SqliteBudgets {
            conn: Mutex::new(Connection::open(&path).map_err(|e| store_err(&path, &e))?),
            path,
        };
        s.with(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.execute_batch(SCHEMA)
        })?;
        Ok(s)
    }

    /// Whether the file at `path` already holds the budget tables, read without writing
    /// anything (a missing file has none).
    pub fn has_tables(path: impl AsRef<Path>) -> Result<bool, BudgetError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Ok(false);
        }
        let c = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| store_err(path, &e))?;
        c.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| store_err(path, &e))?;
        c.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('budgets', 'budget_reservations')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n == 2)
        .map_err(|e| store_err(path, &e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: &rusqlite::Error) -> BudgetError {
        store_err(&self.path, e)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, BudgetError> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut c).map_err(|e| self.err(&e))
    }

    /// Sets (or replaces) the budget of its scope in one transaction; returns the
    /// previous one.
    pub fn set(&self, budget: &Budget, now_iso: &str) -> Result<Option<Budget>, BudgetError> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(&e))?;
        let old = read_budget(&tx, &budget.scope).map_err(|e| self.err(&e))??;
        let l = budget.limits;
        tx.execute(
            "INSERT INTO budgets (scope, window_secs, limit_dbu_micros, limit_runs, limit_rows, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(scope) DO UPDATE SET window_secs = ?2, limit_dbu_micros = ?3,
                 limit_runs = ?4, limit_rows = ?5, updated_at = ?6",
            params![
                budget.scope.to_string(),
                to_i64(budget.window.secs()),
                l.dbu_micros.map(to_i64),
                l.runs.map(to_i64),
                l.rows.map(to_i64),
                now_iso
            ],
        )
        .map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(old)
    }

    /// The budget of `scope`, if any.
    pub fn get(&self, scope: &Scope) -> Result<Option<Budget>, BudgetError> {
        self.with(|c| read_budget(c, scope))?
    }

    /// Removes the budget of `scope` (its reservations stay, for the record); returns
    /// it, or [`BudgetError::NotFound`].
    pub fn remove(&self, scope: &Scope) -> Result<Budget, BudgetError> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(&e))?;
        let old = read_budget(&tx, scope)
            .map_err(|e| self.err(&e))??
            .ok_or_else(|| BudgetError::NotFound(scope.to_string()))?;
        tx.execute("DELETE FROM budgets WHERE scope = ?1", [scope.to_string()])
            .map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(old)
    }

    /// Where the budget of `scope` stands at `now` (epoch seconds).
    pub fn status(&self, scope: &Scope, now: i64) -> Result<BudgetStatus, BudgetError> {
        let c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = read_budget(&c, scope)
            .map_err(|e| self.err(&e))??
            .ok_or_else(|| BudgetError::NotFound(scope.to_string()))?;
        status_of(budget, now, |s, w, start| window_usage(&c, s, w, start))
            .map_err(|e| self.err(&e))
    }

    /// Where every budget stands at `now` (epoch seconds), by scope.
    pub fn list(&self, now: i64) -> Result<Vec<BudgetStatus>, BudgetError> {
        let c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = (|| {
            let mut stmt = c.prepare(
                "SELECT scope, window_secs, limit_dbu_micros, limit_runs, limit_rows FROM budgets ORDER BY scope",
            )?;
            let rows = stmt.query_map([], budget_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })()
        .map_err(|e| self.err(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let budget = budget_of(row)?;
            out.push(
                status_of(budget, now, |s, w, start| window_usage(&c, s, w, start))
                    .map_err(|e| self.err(&e))?,
            );
        }
        Ok(out)
    }

    fn settle(
        &self,
        reservation: &Reservation,
        actual: Option<&Usage>,
    ) -> Result<Settlement, BudgetError> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(&e))?;
        let (state, amount) = settled(actual);
        tx.execute(
            "UPDATE budget_reservations SET state = ?2, dbu_micros = ?3, runs = ?4, rows = ?5
             WHERE reservation_id = ?1 AND state = 'reserved'",
            params![
                reservation.id,
                state,
                to_i64(amount.dbu_micros),
                to_i64(amount.runs),
                to_i64(amount.rows)
            ],
        )
        .map_err(|e| self.err(&e))?;
        let lines = settled_lines(reservation, amount, |s, w, start| {
            window_usage(&tx, s, w, start)
        })
        .map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(Settlement {
            id: reservation.id.clone(),
            lines,
        })
    }
}

fn store_err(path: &Path, e: &rusqlite::Error) -> BudgetError {
    BudgetError::Store {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read_budget(
    c: &Connection,
    scope: &Scope,
) -> rusqlite::Result<Result<Option<Budget>, BudgetError>> {
    let row = c
        .query_row(
            "SELECT scope, window_secs, limit_dbu_micros, limit_runs, limit_rows FROM budgets WHERE scope = ?1",
            [scope.to_string()],
            budget_row,
        )
        .optional()?;
    Ok(row.map(budget_of).transpose())
}

/// (reconciled, reserved) in one budget's window.
fn window_usage(
    c: &Connection,
    scope: &Scope,
    window: Window,
    start: i64,
) -> rusqlite::Result<(Usage, Usage)> {
    let mut stmt = c.prepare_cached(
        "SELECT state, COALESCE(SUM(dbu_micros), 0), COALESCE(SUM(runs), 0), COALESCE(SUM(rows), 0)
         FROM budget_reservations
         WHERE scope = ?1 AND window_secs = ?2 AND window_start = ?3 AND state != 'released'
         GROUP BY state",
    )?;
    let rows = stmt.query_map(
        params![scope.to_string(), to_i64(window.secs()), start],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                usage_of(r.get(1)?, r.get(2)?, r.get(3)?),
            ))
        },
    )?;
    Ok(split_usage(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

impl BudgetLedger for SqliteBudgets {
    fn reserve(&self, request: &ReserveRequest) -> Result<Reservation, ReserveError> {
        let mut c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // The write lock first, then the reads: no other process can admit in between.
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(&e))?;
        let admitted = admit_lines(
            request,
            |scope| read_budget(&tx, scope).map_err(|e| self.err(&e))?,
            |scope, window, start| {
                window_usage(&tx, scope, window, start).map_err(|e| self.err(&e))
            },
        )?;
        // Dropping the transaction rolls it back: a refusal stores nothing.
        let lines = admitted.map_err(ReserveError::Exceeded)?;
        for l in &lines {
            tx.execute(
                "INSERT INTO budget_reservations (reservation_id, scope, window_secs, window_start,
                     state, dbu_micros, runs, rows, intent_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'reserved', ?5, ?6, ?7, ?8, ?9)",
                params![
                    request.id,
                    l.budget.scope.to_string(),
                    to_i64(l.budget.window.secs()),
                    l.window_start,
                    to_i64(l.amount.dbu_micros),
                    to_i64(l.amount.runs),
                    to_i64(l.amount.rows),
                    request.intent_id,
                    request.now
                ],
            )
            .map_err(|e| self.err(&e))?;
        }
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(Reservation {
            id: request.id.clone(),
            lines,
        })
    }

    fn reconcile(
        &self,
        reservation: &Reservation,
        actual: &Usage,
    ) -> Result<Settlement, BudgetError> {
        if reservation.is_empty() {
            return Ok(Settlement {
                id: reservation.id.clone(),
                lines: Vec::new(),
            });
        }
        self.settle(reservation, Some(actual))
    }

    fn release(&self, reservation: &Reservation) -> Result<Settlement, BudgetError> {
        if reservation.is_empty() {
            return Ok(Settlement {
                id: reservation.id.clone(),
                lines: Vec::new(),
            });
        }
        self.settle(reservation, None)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::super::{Dimension, Limits, dbu_to_micros};
    use super::*;

    fn request(id: &str, dbu: f64) -> ReserveRequest {
        ReserveRequest {
            id: id.into(),
            intent_id: format!("i-{id}"),
            scopes: vec!["target:silver.t".parse().unwrap()],
            estimate: Usage::estimate(Some(dbu)).unwrap(),
            now: 1_767_225_600,
        }
    }

    #[test]
    fn set_list_reserve_reconcile_release_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("life.db");
        assert!(!SqliteBudgets::has_tables(&path).unwrap());
        let db = SqliteBudgets::open(&path).unwrap();
        assert!(SqliteBudgets::has_tables(&path).unwrap());
        let scope: Scope = "target:silver.t".parse().unwrap();
        let budget = Budget::new(
            scope.clone(),
            "24h".parse().unwrap(),
            Limits {
                dbu_micros: Some(dbu_to_micros(30.0).unwrap()),
                runs: None,
                rows: Some(500),
            },
        )
        .unwrap();
        assert_eq!(db.set(&budget, "2026-01-01T00:00:00+00:00").unwrap(), None);
        assert_eq!(db.get(&scope).unwrap(), Some(budget.clone()));

        let a = db.reserve(&request("a", 20.0)).unwrap();
        assert_eq!(a.lines.len(), 1);
        // A second handle (another process) sees the reservation.
        let other = SqliteBudgets::open(&path).unwrap();
        match other.reserve(&request("b", 20.0)) {
            Err(ReserveError::Exceeded(e)) => {
                assert_eq!(e.dimension, Dimension::Dbu);
                assert_eq!(e.remaining, 10_000_000);
            }
            r => panic!("{r:?}"),
        }
        let s = db
            .reconcile(
                &a,
                &Usage {
                    dbu_micros: 4_000_000,
                    runs: 1,
                    rows: 100,
                },
            )
            .unwrap();
        assert_eq!(s.lines[0].used.dbu_micros, 4_000_000);
        let b = other.reserve(&request("b", 20.0)).unwrap();
        let st = db.status(&scope, 1_767_225_600 + 60).unwrap();
        assert_eq!(st.spent.rows, 100);
        assert_eq!(st.reserved.dbu_micros, 20_000_000);
        other.release(&b).unwrap();
        let listed = db.list(1_767_225_600).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].remaining().dbu_micros, Some(26_000_000));
        assert_eq!(listed[0].remaining().rows, Some(400));

        // Replacing keeps the reservations; removing returns the budget.
        let wider = Budget {
            limits: Limits {
                runs: Some(1),
                ..Limits::default()
            },
            ..budget.clone()
        };
        assert_eq!(
            db.set(&wider, "2026-01-01T00:00:01+00:00").unwrap(),
            Some(budget)
        );
        assert!(
            matches!(db.reserve(&request("c", 1.0)), Err(ReserveError::Exceeded(e)) if e.dimension == Dimension::Runs)
        );
        assert_eq!(db.remove(&scope).unwrap(), wider);
        assert!(matches!(db.remove(&scope), Err(BudgetError::NotFound(_))));
        assert!(matches!(
            db.status(&scope, 0),
            Err(BudgetError::NotFound(_))
        ));
        // No budget: nothing applies.
        assert!(db.reserve(&request("d", 1e6)).unwrap().is_empty());
    }

    #[test]
    fn threads_racing_on_separate_connections_never_overspend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db");
        let db = SqliteBudgets::open(&path).unwrap();
        let scope: Scope = "target:silver.t".parse().unwrap();
        db.set(
            &Budget::new(
                scope.clone(),
                "24h".parse().unwrap(),
                Limits {
                    runs: Some(5),
                    ..Limits::default()
                },
            )
            .unwrap(),
            "2026-01-01T00:00:00+00:00",
        )
        .unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mine = SqliteBudgets::open(&path).unwrap();
                    mine.reserve(&request(&format!("r{i}"), 0.0)).is_ok()
                })
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(ok, 5);
        assert_eq!(db.status(&scope, 1_767_225_600).unwrap().reserved.runs, 5);
    }
}
