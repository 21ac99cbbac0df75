//! The control plane as every face offers it (`cfa approvals`/`cfa kill`, the MCP
//! tools, the HTTP endpoints): the control store (the lifecycle database, read-only
//! until something is written so a decision never creates or changes the file, or the
//! PostgreSQL database of a postgres storage: [`super::control_store`]), the
//! [`ControlPlane`] decisions go through, and the operator's actions on tickets and
//! kill switches, each one SQL transaction followed by its audit event (stage
//! `control`) when an audit log is configured. JSON shapes are shared by all faces.

use super::FaceError;
use super::control_store::{ControlBackend, FaceLife};
use cfa::audit::{AuditStore, NewEvent};
use cfa::kernel::ControlPlane;
use cfa::kernel::control::{kill_event, resolution_event};
use cfa_control::approval::Ticket;
use cfa_control::{
    ControlDb, ControlError, ControlSnapshot, ControlStore, KillSwitch, Resolution, Scope,
    TicketStatus,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The control store of a face and the plane its decisions go through.
#[derive(Debug, Clone)]
pub struct ControlFace {
    store: Arc<FaceStore>,
    plane: ControlPlane,
    operator_token: Option<String>,
}

/// Where a face's tickets and switches are: the lifecycle SQLite database, read-only
/// until something is written, or the PostgreSQL database replicas share.
#[derive(Debug)]
enum FaceStore {
    Sqlite(LazyStore),
    Postgres(ControlBackend),
}

impl FaceStore {
    fn writable(&self) -> Result<&ControlBackend, ControlError> {
        match self {
            FaceStore::Sqlite(lazy) => lazy.writable(),
            FaceStore::Postgres(pg) => Ok(pg),
        }
    }
}

impl ControlStore for FaceStore {
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError> {
        match self {
            FaceStore::Sqlite(lazy) => lazy.snapshot(approval_id),
            FaceStore::Postgres(pg) => pg.snapshot(approval_id),
        }
    }

    fn open_ticket(&self, ticket: &Ticket) -> Result<(), ControlError> {
        self.writable()?.open_ticket(ticket)
    }

    fn spend_ticket(&self, id: &str, now: &str) -> Result<bool, ControlError> {
        self.writable()?.spend_ticket(id, now)
    }
}

/// The control tables of a lifecycle database that decisions only read until one of
/// them writes: a snapshot reads the database when it exists (read-only, so a
/// decision that changes nothing leaves the file untouched, and a missing file has no
/// switch engaged), and the first write (a ticket opened or spent, an operator's
/// change) opens it for writing, creating it with its lifecycle tables if missing.
/// A switch engaged by another process, even in a file created after this one
/// started, is seen on the next decision.
#[derive(Debug)]
struct LazyStore {
    path: PathBuf,
    write: OnceLock<ControlBackend>,
    read: Mutex<Option<Arc<ControlDb>>>,
}

impl LazyStore {
    /// The store for writing, opened (and created) on first use.
    fn writable(&self) -> Result<&ControlBackend, ControlError> {
        if let Some(db) = self.write.get() {
            return Ok(db);
        }
        cfa::LifecycleDb::open(&self.path).map_err(|e| ControlError::Corrupt {
            path: self.path.display().to_string(),
            what: "its lifecycle tables".into(),
            reason: e.to_string(),
        })?;
        let db = ControlDb::open(&self.path)?;
        let _ = self.write.set(ControlBackend::Sqlite(db));
        *self.read.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.write.get().ok_or(ControlError::Poisoned)
    }

    /// A snapshot: from the writable store once open, else from the existing file
    /// read-only, else empty (no file: nothing engaged, no ticket).
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError> {
        if let Some(db) = self.write.get() {
            return db.snapshot(approval_id);
        }
        let db = {
            let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
            match read.as_ref() {
                Some(db) => Arc::clone(db),
                None => {
                    if !self.path.is_file() {
                        return Ok(ControlSnapshot::default());
                    }
                    let db = Arc::new(ControlDb::open_read_only(&self.path)?);
                    *read = Some(Arc::clone(&db));
                    db
                }
            }
        };
        db.snapshot(approval_id)
    }
}

impl ControlFace {
    /// The control face of the lifecycle database at `path` (read by decisions, opened
    /// for writing, and created if missing, by the first write); tickets this face
    /// opens are requested by `requester` and live `ttl_secs`.
    pub fn open(path: &Path, requester: &str, ttl_secs: i64) -> Result<Self, FaceError> {
        let lazy = LazyStore {
            path: path.to_path_buf(),
            write: OnceLock::new(),
            read: Mutex::new(None),
        };
        Ok(Self::over(FaceStore::Sqlite(lazy), requester, ttl_secs))
    }

    /// Connects to the PostgreSQL database whose DSN is in `$dsn_env` (the control
    /// tables created if missing), shared with every replica using it; a face living
    /// [`FaceLife::LongRunning`] keeps the kill switches in memory between decisions.
    pub fn open_pg(
        dsn_env: &str,
        requester: &str,
        ttl_secs: i64,
        life: FaceLife,
    ) -> Result<Self, FaceError> {
        let db = ControlBackend::connect_pg_for(dsn_env, life).map_err(control_error)?;
        Ok(Self::over(FaceStore::Postgres(db), requester, ttl_secs))
    }

    fn over(store: FaceStore, requester: &str, ttl_secs: i64) -> Self {
        let store = Arc::new(store);
        let plane = ControlPlane::new(store.clone(), requester).ticket_ttl_secs(ttl_secs);
        Self {
            store,
            plane,
            operator_token: None,
        }
    }

    /// Changes through this face (MCP) need `token` (`None` or empty: no token).
    #[must_use]
    pub fn with_operator_token(mut self, token: Option<String>) -> Self {
        self.operator_token = token.filter(|t| !t.is_empty());
        self
    }

    /// The operator token changes need, if any.
    pub fn operator_token(&self) -> Option<&str> {
        self.operator_token.as_deref()
    }

    /// The plane decisions go through.
    pub fn plane(&self) -> &ControlPlane {
        &self.plane
    }

    /// The store, for the operator's reads and changes (a lifecycle database is opened
    /// for writing, and created if missing, on first use).
    pub fn db(&self) -> Result<&ControlBackend, FaceError> {
        self.store.writable().map_err(control_error)
    }
}

/// A control error as a face error with a stable code.
pub fn control_error(e: ControlError) -> FaceError {
    let code = match &e {
        ControlError::UnknownTicket { .. } => "unknown_ticket",
        ControlError::NotPending { .. } => "ticket_not_pending",
        ControlError::Expired { .. } => "ticket_expired",
        ControlError::BadScope { .. } => "bad_scope",
        ControlError::BadTimestamp { .. } | ControlError::Empty { .. } => "invalid_arguments",
        ControlError::NotFound { .. } => "no_control_db",
        _ => "control_error",
    };
    FaceError::new(code, e.to_string())
}

/// Appends `event` on a scoped thread of its own: a PostgreSQL chain's blocking client
/// must not run on an async worker (`cfa mcp`'s tools are synchronous calls on one).
fn append(audit: Option<&dyn AuditStore>, event: NewEvent) -> Result<String, FaceError> {
    let Some(store) = audit else {
        return Ok(String::new());
    };
    let unrecorded = |e: &dyn std::fmt::Display| {
        FaceError::new(
            "audit_error",
            format!("the change was made but could not be recorded in the audit log: {e}"),
        )
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            store
                .append(event)
                .map(|e| e.event_hash)
                .map_err(|e| unrecorded(&e))
        })
        .join()
    })
    .unwrap_or_else(|_| Err(unrecorded(&"the append panicked")))
}

/// `{"tickets": [...], "count"}`, oldest first, optionally only those with `status`.
pub fn tickets_json(db: &ControlBackend, status: Option<&str>) -> Result<Value, FaceError> {
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(TicketStatus::parse(s).ok_or_else(|| {
            FaceError::new(
                "invalid_arguments",
                format!("unknown ticket status '{s}': expected pending, granted, denied or spent"),
            )
        })?),
        None => None,
    };
    let tickets = db.tickets(status).map_err(control_error)?;
    Ok(json!({"count": tickets.len(), "tickets": tickets}))
}

/// The ticket `id` as JSON.
pub fn ticket_json(db: &ControlBackend, id: &str) -> Result<Value, FaceError> {
    match db.ticket(id.trim()).map_err(control_error)? {
        Some(t) => Ok(serde_json::to_value(t).unwrap_or(Value::Null)),
        None => Err(control_error(ControlError::UnknownTicket {
            id: id.to_owned(),
        })),
    }
}

/// Grants or denies ticket `id` at `now`, then records `approval_granted` /
/// `approval_denied`: `{"ticket": {...}, "audit_event_hash"}`.
pub fn resolve(
    db: &ControlBackend,
    audit: Option<&dyn AuditStore>,
    id: &str,
    resolution: Resolution,
    by: &str,
    note: Option<&str>,
    now: &str,
) -> Result<Value, FaceError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let ticket = db
        .resolve(id.trim(), resolution, by.trim(), note, now)
        .map_err(control_error)?;
    let hash = append(audit, resolution_event(&ticket, now))?;
    Ok(json!({"ticket": ticket, "audit_event_hash": hash}))
}

/// Engages a kill switch, then records `kill_engaged`: `{"kill": {...}, "audit_event_hash"}`.
pub fn kill(
    db: &ControlBackend,
    audit: Option<&dyn AuditStore>,
    scope: &str,
    reason: &str,
    by: &str,
    now: &str,
) -> Result<Value, FaceError> {
    let kill = KillSwitch {
        scope: Scope::parse(scope).map_err(control_error)?,
        reason: reason.trim().to_owned(),
        by: by.trim().to_owned(),
        engaged_at: now.to_owned(),
    };
    db.engage(&kill).map_err(control_error)?;
    let hash = append(audit, kill_event(&kill, true, &kill.by, now))?;
    Ok(json!({"kill": kill, "audit_event_hash": hash}))
}

/// Lifts the kill switch on `scope`, then records `kill_released`:
/// `{"released": {...}, "audit_event_hash"}`; no switch there is `not_engaged`.
pub fn unkill(
    db: &ControlBackend,
    audit: Option<&dyn AuditStore>,
    scope: &str,
    by: &str,
    now: &str,
) -> Result<Value, FaceError> {
    let scope = Scope::parse(scope).map_err(control_error)?;
    if by.trim().is_empty() {
        return Err(control_error(ControlError::Empty { what: "--by" }));
    }
    cfa_control::parse_time(now).map_err(control_error)?;
    let Some(kill) = db.release(&scope).map_err(control_error)? else {
        return Err(FaceError::new(
            "not_engaged",
            format!("no kill switch is engaged on scope '{scope}' (cfa kill --list shows them)"),
        ));
    };
    let hash = append(audit, kill_event(&kill, false, by.trim(), now))?;
    Ok(json!({"released": kill, "audit_event_hash": hash}))
}

/// `{"kills": [...], "count"}`.
pub fn kills_json(db: &ControlBackend) -> Result<Value, FaceError> {
    let kills = db.kills().map_err(control_error)?;
    Ok(json!({"count": kills.len(), "kills": kills}))
}
