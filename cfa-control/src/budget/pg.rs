//! [`PgBudgets`]: budgets and their reservations in PostgreSQL (feature `postgres`),
//! tables `cfa_budgets` and `cfa_budget_reservations`, with the semantics of the
//! SQLite store (the arithmetic, row conversions and the steps of a reservation are
//! shared in `rows`). A reservation is one transaction that first locks the budget
//! rows of its scopes (`SELECT … FOR UPDATE`, in scope order so sessions never
//! deadlock), then reads each window's usage (READ COMMITTED: after the lock, what the
//! previous holder committed) and inserts its lines: sessions charging one budget are
//! admitted one at a time and never overspend.

use super::rows::{
    BudgetRow, admit_lines, budget_of, settled, settled_lines, split_usage, status_of, to_i64,
    usage_of,
};
use super::{
    Budget, BudgetError, BudgetLedger, BudgetStatus, Reservation, ReserveError, ReserveRequest,
    Scope, Settlement, Usage, Window,
};
use crate::pg::{PgFailure, PgPool, dsn_from_env};
use postgres::{GenericClient, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cfa_budgets (
    scope text PRIMARY KEY, window_secs bigint NOT NULL,
    limit_dbu_micros bigint, limit_runs bigint, limit_rows bigint,
    updated_at text NOT NULL);
CREATE TABLE IF NOT EXISTS cfa_budget_reservations (
    reservation_id text NOT NULL, scope text NOT NULL, window_secs bigint NOT NULL,
    window_start bigint NOT NULL, state text NOT NULL,
    dbu_micros bigint NOT NULL, runs bigint NOT NULL, rows bigint NOT NULL,
    intent_id text NOT NULL, created_at bigint NOT NULL,
    PRIMARY KEY (reservation_id, scope));
CREATE INDEX IF NOT EXISTS cfa_budget_reservations_window
    ON cfa_budget_reservations(scope, window_secs, window_start);
";

const BUDGET_COLUMNS: &str = "scope, window_secs, limit_dbu_micros, limit_runs, limit_rows";

/// Budgets in a PostgreSQL database shared by replicas.
#[derive(Debug)]
pub struct PgBudgets {
    conn: PgPool,
}

fn budget_row(r: &Row) -> Result<BudgetRow, postgres::Error> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
    ))
}

/// The row of `scope` (`lock`: `FOR UPDATE`, inside a transaction).
fn read_row(
    c: &mut impl GenericClient,
    scope: &Scope,
    lock: bool,
) -> Result<Option<BudgetRow>, postgres::Error> {
    let sql = format!(
        "SELECT {BUDGET_COLUMNS} FROM cfa_budgets WHERE scope = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&scope.to_string()])?
        .as_ref()
        .map(budget_row)
        .transpose()
}

/// (reconciled, reserved) in one budget's window.
fn window_usage(
    c: &mut impl GenericClient,
    scope: &Scope,
    window: Window,
    start: i64,
) -> Result<(Usage, Usage), postgres::Error> {
    let rows = c.query(
        "SELECT state, COALESCE(SUM(dbu_micros), 0)::bigint, COALESCE(SUM(runs), 0)::bigint,
                COALESCE(SUM(rows), 0)::bigint
         FROM cfa_budget_reservations
         WHERE scope = $1 AND window_secs = $2 AND window_start = $3 AND state != 'released'
         GROUP BY state",
        &[&scope.to_string(), &to_i64(window.secs()), &start],
    )?;
    let groups = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0)?,
                usage_of(r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
            ))
        })
        .collect::<Result<Vec<_>, postgres::Error>>()?;
    Ok(split_usage(groups))
}

impl PgBudgets {
    /// Connects to the database `dsn` names and creates the budget tables if missing.
    pub fn connect(dsn: &str) -> Result<Self, BudgetError> {
        Ok(PgBudgets {
            conn: crate::pg::connect(dsn, SCHEMA).map_err(store_err)?,
        })
    }

    /// Connects to the database whose DSN is in the environment variable `name`.
    pub fn connect_env(name: &str) -> Result<Self, BudgetError> {
        Self::connect(&dsn_from_env(name).map_err(store_err)?)
    }

    /// The server as `user@host:port/dbname` (never the password).
    pub fn database(&self) -> &str {
        self.conn.database()
    }

    /// Runs `f`; a database error is a store error, a refusal comes back as it is.
    fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<Result<T, BudgetError>, postgres::Error> + Send,
    ) -> Result<T, BudgetError> {
        self.conn.run(f).map_err(store_err)?
    }

    /// Sets (or replaces) the budget of its scope in one transaction; returns the
    /// previous one.
    pub fn set(&self, budget: &Budget, now_iso: &str) -> Result<Option<Budget>, BudgetError> {
        let l = budget.limits;
        let scope = budget.scope.to_string();
        self.run(|c| {
            let mut tx = c.transaction()?;
            let old = read_row(&mut tx, &budget.scope, true)?;
            tx.execute(
                "INSERT INTO cfa_budgets (scope, window_secs, limit_dbu_micros, limit_runs, limit_rows, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (scope) DO UPDATE SET window_secs = EXCLUDED.window_secs,
                     limit_dbu_micros = EXCLUDED.limit_dbu_micros, limit_runs = EXCLUDED.limit_runs,
                     limit_rows = EXCLUDED.limit_rows, updated_at = EXCLUDED.updated_at",
                &[
                    &scope,
                    &to_i64(budget.window.secs()),
                    &l.dbu_micros.map(to_i64),
                    &l.runs.map(to_i64),
                    &l.rows.map(to_i64),
                    &now_iso,
                ],
            )?;
            tx.commit()?;
            Ok(old.map(budget_of).transpose())
        })
    }

    /// The budget of `scope`, if any.
    pub fn get(&self, scope: &Scope) -> Result<Option<Budget>, BudgetError> {
        self.run(|c| Ok(read_row(c, scope, false)?.map(budget_of).transpose()))
    }

    /// Removes the budget of `scope` (its reservations stay, for the record); returns
    /// it, or [`BudgetError::NotFound`].
    pub fn remove(&self, scope: &Scope) -> Result<Budget, BudgetError> {
        let key = scope.to_string();
        let row = self.run(|c| {
            let sql =
                format!("DELETE FROM cfa_budgets WHERE scope = $1 RETURNING {BUDGET_COLUMNS}");
            Ok(Ok(c
                .query_opt(&sql, &[&key])?
                .as_ref()
                .map(budget_row)
                .transpose()?))
        })?;
        budget_of(row.ok_or(BudgetError::NotFound(key))?)
    }

    /// Where the budget of `scope` stands at `now` (epoch seconds).
    pub fn status(&self, scope: &Scope, now: i64) -> Result<BudgetStatus, BudgetError> {
        self.run(|c| {
            let Some(row) = read_row(c, scope, false)? else {
                return Ok(Err(BudgetError::NotFound(scope.to_string())));
            };
            let budget = match budget_of(row) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            status_of(budget, now, |s, w, start| window_usage(c, s, w, start)).map(Ok)
        })
    }

    /// Where every budget stands at `now` (epoch seconds), by scope.
    pub fn list(&self, now: i64) -> Result<Vec<BudgetStatus>, BudgetError> {
        self.run(|c| {
            let sql = format!("SELECT {BUDGET_COLUMNS} FROM cfa_budgets ORDER BY scope");
            let rows = c
                .query(&sql, &[])?
                .iter()
                .map(budget_row)
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let budget = match budget_of(row) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(e)),
                };
                out.push(status_of(budget, now, |s, w, start| {
                    window_usage(c, s, w, start)
                })?);
            }
            Ok(Ok(out))
        })
    }

    fn settle(
        &self,
        reservation: &Reservation,
        actual: Option<&Usage>,
    ) -> Result<Settlement, BudgetError> {
        if reservation.is_empty() {
            return Ok(Settlement {
                id: reservation.id.clone(),
                lines: Vec::new(),
            });
        }
        let (state, amount) = settled(actual);
        let lines = self.run(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "UPDATE cfa_budget_reservations SET state = $2, dbu_micros = $3, runs = $4, rows = $5
                 WHERE reservation_id = $1 AND state = 'reserved'",
                &[
                    &reservation.id,
                    &state,
                    &to_i64(amount.dbu_micros),
                    &to_i64(amount.runs),
                    &to_i64(amount.rows),
                ],
            )?;
            let lines = settled_lines(reservation, amount, |s, w, start| {
                window_usage(&mut tx, s, w, start)
            })?;
            tx.commit()?;
            Ok(Ok(lines))
        })?;
        Ok(Settlement {
            id: reservation.id.clone(),
            lines,
        })
    }
}

fn store_err(f: PgFailure) -> BudgetError {
    BudgetError::Store {
        path: format!("postgres {}", f.database),
        message: f.message,
    }
}

impl BudgetLedger for PgBudgets {
    fn reserve(&self, request: &ReserveRequest) -> Result<Reservation, ReserveError> {
        let mut scopes: Vec<String> = request.scopes.iter().map(Scope::to_string).collect();
        scopes.sort();
        scopes.dedup();
        let lines = self.run(|c| {
            let mut tx = c.transaction()?;
            // The row locks first, in scope order, then the reads: no other session
            // can admit against these budgets until this transaction ends.
            let sql = format!(
                "SELECT {BUDGET_COLUMNS} FROM cfa_budgets WHERE scope = ANY($1) ORDER BY scope FOR UPDATE"
            );
            let locked = tx
                .query(&sql, &[&scopes])?
                .iter()
                .map(budget_row)
                .collect::<Result<Vec<_>, _>>()?;
            let mut budgets = Vec::with_capacity(locked.len());
            for row in locked {
                match budget_of(row) {
                    Ok(b) => budgets.push(b),
                    Err(e) => return Ok(Err(e)),
                }
            }
            let admitted = admit_lines(
                request,
                |scope| Ok::<_, postgres::Error>(budgets.iter().find(|b| &b.scope == scope).cloned()),
                |scope, window, start| window_usage(&mut tx, scope, window, start),
            )?;
            let lines = match admitted {
                Ok(lines) => lines,
                // Dropping the transaction rolls it back: a refusal stores nothing.
                Err(exceeded) => return Ok(Ok(Err(exceeded))),
            };
            for l in &lines {
                tx.execute(
                    "INSERT INTO cfa_budget_reservations (reservation_id, scope, window_secs, window_start,
                         state, dbu_micros, runs, rows, intent_id, created_at)
                     VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7, $8, $9)",
                    &[
                        &request.id,
                        &l.budget.scope.to_string(),
                        &to_i64(l.budget.window.secs()),
                        &l.window_start,
                        &to_i64(l.amount.dbu_micros),
                        &to_i64(l.amount.runs),
                        &to_i64(l.amount.rows),
                        &request.intent_id,
                        &request.now,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(Ok(Ok(lines)))
        })?;
        Ok(Reservation {
            id: request.id.clone(),
            lines: lines.map_err(ReserveError::Exceeded)?,
        })
    }

    fn reconcile(
        &self,
        reservation: &Reservation,
        actual: &Usage,
    ) -> Result<Settlement, BudgetError> {
        self.settle(reservation, Some(actual))
    }

    fn release(&self, reservation: &Reservation) -> Result<Settlement, BudgetError> {
        self.settle(reservation, None)
    }
}
