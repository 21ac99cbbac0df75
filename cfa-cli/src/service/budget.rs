//! Budgets for every face (`cfa budget`, `GET/PUT /v1/budgets`, `cfa_budget_status`):
//! the lifecycle database's budget tables (cfa-control's [`SqliteBudgets`]) or, with a
//! postgres storage, the PostgreSQL database's ([`BudgetBackend`] either way), the JSON
//! documents the faces answer with, and changes written with their `control` audit
//! event (`budget_set`, `budget_removed`). A change whose event cannot be written is
//! undone: nothing changes unaudited when an audit log is configured.

use super::control_store::BudgetBackend;
use super::error::FaceError;
use cfa::AuditStore;
use cfa::audit::NewEvent;
use cfa_control::budget::{
    Budget, BudgetError, BudgetStatus, Dimension, Limits, Scope, SqliteBudgets, Window,
    dbu_to_micros, iso_of, micros_as_dbu,
};
use serde_json::{Map, Value, json};
use std::path::Path;

/// The error of a budget store failure or bad input, with a stable code.
pub fn face_error(e: &BudgetError) -> FaceError {
    let code = match e {
        BudgetError::Invalid(_) => "invalid_budget",
        BudgetError::NotFound(_) => "budget_not_found",
        BudgetError::Store { .. } => "budget_store_error",
    };
    FaceError::new(code, e.to_string())
}

/// Opens the budget tables of the lifecycle database at `db` (created when missing).
pub fn open(db: &Path) -> Result<BudgetBackend, FaceError> {
    SqliteBudgets::open(db)
        .map(|b| BudgetBackend::Sqlite(std::sync::Arc::new(b)))
        .map_err(|e| face_error(&e))
}

/// Opens an existing database only (the read routes never create a file).
pub fn open_existing(db: &Path) -> Result<BudgetBackend, FaceError> {
    if !db.is_file() {
        return Err(FaceError::new(
            "no_lifecycle_db",
            format!("lifecycle database not found: {}", db.display()),
        ));
    }
    open(db)
}

/// The ledger the faces' kernels charge: the budgets of the lifecycle database at `db`,
/// when one is configured (`None` without one). A database nobody has set a budget in
/// yet is left untouched (the faces open it read-only) until one is set, by this
/// process or another: from then on every run is charged, without a restart.
pub fn face_ledger(
    db: Option<&Path>,
) -> Result<Option<std::sync::Arc<dyn cfa_control::budget::BudgetLedger>>, miette::Report> {
    let Some(db) = db else {
        return Ok(None);
    };
    let lazy = LazyLedger {
        path: db.to_path_buf(),
        ledger: std::sync::OnceLock::new(),
    };
    // An unreadable database is an error now, not at the first run.
    lazy.ledger().map_err(|e| miette::miette!("{e}"))?;
    Ok(Some(std::sync::Arc::new(lazy)))
}

/// The budgets of a lifecycle database, opened for writing once its budget tables
/// exist: until then a run reserves nothing (no budget applies) and nothing is written.
struct LazyLedger {
    path: std::path::PathBuf,
    ledger: std::sync::OnceLock<SqliteBudgets>,
}

impl LazyLedger {
    /// The ledger once a budget table exists (`None` before).
    fn ledger(&self) -> Result<Option<&SqliteBudgets>, BudgetError> {
        if let Some(l) = self.ledger.get() {
            return Ok(Some(l));
        }
        if !SqliteBudgets::has_tables(&self.path)? {
            return Ok(None);
        }
        let opened = SqliteBudgets::open(&self.path)?;
        let _ = self.ledger.set(opened);
        Ok(self.ledger.get())
    }

    /// The ledger a reservation with lines was made in.
    fn holding(&self) -> Result<&SqliteBudgets, BudgetError> {
        self.ledger()?.ok_or_else(|| {
            BudgetError::Invalid(format!(
                "{}: the budget tables of a reservation are gone",
                self.path.display()
            ))
        })
    }
}

impl cfa_control::budget::BudgetLedger for LazyLedger {
    fn reserve(
        &self,
        request: &cfa_control::budget::ReserveRequest,
    ) -> Result<cfa_control::budget::Reservation, cfa_control::budget::ReserveError> {
        match self.ledger()? {
            Some(l) => l.reserve(request),
            None => Ok(cfa_control::budget::Reservation {
                id: request.id.clone(),
                lines: Vec::new(),
            }),
        }
    }

    fn reconcile(
        &self,
        reservation: &cfa_control::budget::Reservation,
        actual: &cfa_control::budget::Usage,
    ) -> Result<cfa_control::budget::Settlement, BudgetError> {
        if reservation.is_empty() {
            return Ok(cfa_control::budget::Settlement {
                id: reservation.id.clone(),
                lines: Vec::new(),
            });
        }
        self.holding()?.reconcile(reservation, actual)
    }

    fn release(
        &self,
        reservation: &cfa_control::budget::Reservation,
    ) -> Result<cfa_control::budget::Settlement, BudgetError> {
        if reservation.is_empty() {
            return Ok(cfa_control::budget::Settlement {
                id: reservation.id.clone(),
                lines: Vec::new(),
            });
        }
        self.holding()?.release(reservation)
    }
}

/// The ledger of a face: the PostgreSQL budgets `pg` when given, else those of the
/// lifecycle database `db` ([`face_ledger`]).
pub fn face_ledger_with(
    pg: Option<&BudgetBackend>,
    db: Option<&Path>,
) -> Result<Option<std::sync::Arc<dyn cfa_control::budget::BudgetLedger>>, miette::Report> {
    match pg {
        Some(b) => Ok(Some(b.ledger())),
        None => face_ledger(db),
    }
}

/// Opens an existing database to read its budgets; `None` when no budget was ever set in
/// it (then nothing is written to it).
pub fn open_for_read(db: &Path) -> Result<Option<BudgetBackend>, FaceError> {
    if db.is_file() && !SqliteBudgets::has_tables(db).map_err(|e| face_error(&e))? {
        return Ok(None);
    }
    open_existing(db).map(Some)
}

/// `{"budgets": [status…]}` of every budget at `now` (epoch seconds).
pub fn list_document(db: &BudgetBackend, now: i64) -> Result<Value, FaceError> {
    let all = db.list(now).map_err(|e| face_error(&e))?;
    Ok(json!({
        "now": iso_of(now),
        "budgets": all.iter().map(BudgetStatus::document).collect::<Vec<_>>(),
    }))
}

/// What the faces' status tools answer: one budget's `{"now", "budget"}` with `scope`,
/// else every budget's `{"now", "budgets": […]}`, read from the database at `db_path`.
pub fn status_document(db_path: &Path, scope: Option<&str>, now: i64) -> Result<Value, FaceError> {
    if db_path.is_file() && !SqliteBudgets::has_tables(db_path).map_err(|e| face_error(&e))? {
        // No budget was ever set in it: nothing to show, and nothing is written.
        return match scope {
            None => Ok(json!({"now": iso_of(now), "budgets": []})),
            Some(s) => {
                let scope: Scope = s.parse().map_err(|e| face_error(&e))?;
                Err(face_error(&BudgetError::NotFound(scope.to_string())))
            }
        };
    }
    status_document_of(&open_existing(db_path)?, scope, now)
}

/// [`status_document`] of an open store.
pub fn status_document_of(
    db: &BudgetBackend,
    scope: Option<&str>,
    now: i64,
) -> Result<Value, FaceError> {
    match scope {
        None => list_document(db, now),
        Some(s) => {
            let scope: Scope = s.parse().map_err(|e| face_error(&e))?;
            let st = db.status(&scope, now).map_err(|e| face_error(&e))?;
            Ok(json!({"now": iso_of(now), "budget": st.document()}))
        }
    }
}

/// The caps of a budget as JSON (DBU as numbers of DBU, absent caps `null`).
pub fn limits_json(l: &Limits) -> Value {
    let mut m = Map::new();
    for d in Dimension::ALL {
        let v = match (d, l.get(d)) {
            (_, None) => Value::Null,
            (Dimension::Dbu, Some(n)) => Value::from(micros_as_dbu(n)),
            (_, Some(n)) => Value::from(n),
        };
        m.insert(d.as_str().into(), v);
    }
    Value::Object(m)
}

/// A budget from the faces' parts (`--dbu/--runs/--rows`, or the JSON body's).
pub fn budget_of(
    scope: &str,
    window: &str,
    dbu: Option<f64>,
    runs: Option<u64>,
    rows: Option<u64>,
) -> Result<Budget, FaceError> {
    let parts = || -> Result<Budget, BudgetError> {
        let scope: Scope = scope.parse()?;
        let window: Window = window.parse()?;
        let limits = Limits {
            dbu_micros: dbu.map(dbu_to_micros).transpose()?,
            runs,
            rows,
        };
        Budget::new(scope, window, limits)
    };
    parts().map_err(|e| face_error(&e))
}

fn budget_json(b: &Budget) -> Value {
    json!({"scope": b.scope.to_string(), "window": b.window.to_string(), "limits": limits_json(&b.limits)})
}

/// Sets `budget` (by `by`, at `now` epoch seconds) and records `budget_set` in `audit`;
/// returns the previous budget. When the event cannot be written the change is undone.
pub fn set_audited(
    db: &BudgetBackend,
    budget: &Budget,
    by: &str,
    now: i64,
    audit: Option<&dyn AuditStore>,
) -> Result<Option<Budget>, FaceError> {
    let at = iso_of(now);
    let previous = db.set(budget, &at).map_err(|e| face_error(&e))?;
    let event = NewEvent::new(
        format!("budget:{}", budget.scope),
        "control",
        "budget_set",
        "set",
        at.clone(),
    )
    .detail("scope", budget.scope.to_string())
    .detail("window", budget.window.to_string())
    .detail("limits", limits_json(&budget.limits))
    .detail(
        "previous",
        previous.as_ref().map_or(Value::Null, budget_json),
    )
    .detail("by", by);
    if let Some(store) = audit
        && let Err(e) = store.append(event).and_then(|_| store.flush())
    {
        let undo = match &previous {
            Some(p) => db.set(p, &at).map(|_| ()),
            None => db.remove(&budget.scope).map(|_| ()),
        };
        let undone = if undo.is_ok() {
            "the change was undone"
        } else {
            "undoing the change failed too"
        };
        return Err(FaceError::new(
            "audit_error",
            format!("cannot record budget_set in the audit log ({e}); {undone}"),
        ));
    }
    Ok(previous)
}

/// Removes the budget of `scope` and records `budget_removed` in `audit`; returns it.
/// When the event cannot be written the budget is put back.
pub fn remove_audited(
    db: &BudgetBackend,
    scope: &Scope,
    by: &str,
    now: i64,
    audit: Option<&dyn AuditStore>,
) -> Result<Budget, FaceError> {
    let at = iso_of(now);
    let old = db.remove(scope).map_err(|e| face_error(&e))?;
    let event = NewEvent::new(
        format!("budget:{scope}"),
        "control",
        "budget_removed",
        "removed",
        at.clone(),
    )
    .detail("scope", scope.to_string())
    .detail("previous", budget_json(&old))
    .detail("by", by);
    if let Some(store) = audit
        && let Err(e) = store.append(event).and_then(|_| store.flush())
    {
        let undone = if db.set(&old, &at).is_ok() {
            "the budget was put back"
        } else {
            "putting the budget back failed too"
        };
        return Err(FaceError::new(
            "audit_error",
            format!("cannot record budget_removed in the audit log ({e}); {undone}"),
        ));
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa::MemoryStore;

    #[test]
    fn set_is_audited_and_bad_input_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir.path().join("b.db")).unwrap();
        let audit = MemoryStore::new();
        let b = budget_of("domain:finance", "24h", Some(10.0), None, None).unwrap();
        let prev = set_audited(&db, &b, "ops", 0, Some(&audit)).unwrap();
        assert!(prev.is_none());
        assert_eq!(audit.len().ok(), Some(1));
        let e = budget_of("finance", "24h", None, Some(1), None).err();
        assert_eq!(e.map(|e| e.code), Some("invalid_budget"));
        let e = budget_of("domain:x", "24h", None, None, None).err();
        assert_eq!(e.map(|e| e.code), Some("invalid_budget"));
        let doc = list_document(&db, 0).unwrap();
        assert_eq!(doc["budgets"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["budgets"][0]["limits"]["dbu"], 10.0);
    }
}
