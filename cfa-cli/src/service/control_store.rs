//! Where the control plane's state lives for every face: the lifecycle SQLite
//! database (`--db`/`--control-db`/`--lifecycle-db`, or a sqlite `storage` in
//! `cfa.yaml`) or, when the storage backend is PostgreSQL (`storage: {backend:
//! postgres, dsn_env: NAME}`, or `--audit-pg-env NAME` on `cfa serve`/`cfa mcp`), the
//! same PostgreSQL database as the audit chain, so every replica sees the same kill
//! switches, tickets and budgets. [`ControlBackend`] (tickets and switches) and
//! [`BudgetBackend`] (budgets) offer one set of operations over either store, so the
//! faces never branch on the backend; [`pg_env`] is the one place that decides.
//! A flag naming a file always wins over the config. The DSN is read from the
//! environment only and never printed: stores name the server `user@host:port/db`.

use super::FaceError;
use crate::settings::{Origin, Settings};
use cfa_control::budget::{
    Budget, BudgetError, BudgetLedger, BudgetStatus, PgBudgets, Reservation, ReserveError,
    ReserveRequest, Scope as BudgetScope, Settlement, SqliteBudgets, Usage,
};
use cfa_control::{
    ControlDb, ControlError, ControlSnapshot, ControlStore, KillSwitch, PgControl, Resolution,
    Scope, Ticket, TicketStatus,
};
use std::sync::Arc;

/// The environment variable holding the PostgreSQL DSN when the settings put the
/// state in PostgreSQL: the config's `storage` is postgres and no flag named a
/// database file (`state_db` from a flag wins).
pub fn pg_env(settings: &Settings) -> Option<String> {
    if matches!(settings.state_db.origin, Origin::Flag(_)) {
        return None;
    }
    let storage = &settings.config.as_ref()?.storage;
    (storage.backend == "postgres")
        .then(|| storage.dsn_env.clone())
        .flatten()
}

/// How long a face lives, which decides how it reads PostgreSQL kill switches: a
/// long-running face (`cfa serve`, `cfa mcp`) keeps them in memory between decisions,
/// dropped on every change by `LISTEN`/`NOTIFY` ([`PgControl::watching`]); a one-shot
/// command reads them once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceLife {
    /// One decision or command, then the process ends.
    OneShot,
    /// A server answering decisions until it is stopped.
    LongRunning,
}

/// Tickets and kill switches, in SQLite or PostgreSQL.
#[derive(Debug)]
pub enum ControlBackend {
    /// The lifecycle SQLite database.
    Sqlite(ControlDb),
    /// The PostgreSQL database replicas share.
    Postgres(PgControl),
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            ControlBackend::Sqlite($s) => $e,
            ControlBackend::Postgres($s) => $e,
        }
    };
}

impl ControlBackend {
    /// Connects to the PostgreSQL database whose DSN is in `$dsn_env`.
    pub fn connect_pg(dsn_env: &str) -> Result<Self, ControlError> {
        PgControl::connect_env(dsn_env).map(ControlBackend::Postgres)
    }

    /// [`ControlBackend::connect_pg`] for a face living `life`.
    pub fn connect_pg_for(dsn_env: &str, life: FaceLife) -> Result<Self, ControlError> {
        let pg = PgControl::connect_env(dsn_env)?;
        Ok(ControlBackend::Postgres(match life {
            FaceLife::OneShot => pg,
            FaceLife::LongRunning => pg.watching(),
        }))
    }

    /// Engages (or re-engages) a kill switch.
    pub fn engage(&self, kill: &KillSwitch) -> Result<(), ControlError> {
        both!(self, s => s.engage(kill))
    }

    /// Lifts the switch on `scope` (`None`: none was engaged).
    pub fn release(&self, scope: &Scope) -> Result<Option<KillSwitch>, ControlError> {
        both!(self, s => s.release(scope))
    }

    /// Every engaged switch, by scope.
    pub fn kills(&self) -> Result<Vec<KillSwitch>, ControlError> {
        both!(self, s => s.kills())
    }

    /// The ticket `id`, if any.
    pub fn ticket(&self, id: &str) -> Result<Option<Ticket>, ControlError> {
        both!(self, s => s.ticket(id))
    }

    /// Every ticket (or those with `status`), oldest first.
    pub fn tickets(&self, status: Option<TicketStatus>) -> Result<Vec<Ticket>, ControlError> {
        both!(self, s => s.tickets(status))
    }

    /// Grants or denies a pending ticket.
    pub fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        note: Option<&str>,
        now: &str,
    ) -> Result<Ticket, ControlError> {
        both!(self, s => s.resolve(id, resolution, by, note, now))
    }
}

impl ControlStore for ControlBackend {
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError> {
        both!(self, s => s.snapshot(approval_id))
    }

    fn open_ticket(&self, ticket: &Ticket) -> Result<(), ControlError> {
        both!(self, s => s.open_ticket(ticket))
    }

    fn spend_ticket(&self, id: &str, now: &str) -> Result<bool, ControlError> {
        both!(self, s => s.spend_ticket(id, now))
    }
}

/// Budgets, in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum BudgetBackend {
    /// The lifecycle SQLite database.
    Sqlite(Arc<SqliteBudgets>),
    /// The PostgreSQL database replicas share.
    Postgres(Arc<PgBudgets>),
}

macro_rules! budgets {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            BudgetBackend::Sqlite($s) => $e,
            BudgetBackend::Postgres($s) => $e,
        }
    };
}

impl BudgetBackend {
    /// Connects to the PostgreSQL database whose DSN is in `$dsn_env`.
    pub fn connect_pg(dsn_env: &str) -> Result<Self, FaceError> {
        PgBudgets::connect_env(dsn_env)
            .map(|b| BudgetBackend::Postgres(Arc::new(b)))
            .map_err(|e| super::budget::face_error(&e))
    }

    /// Sets (or replaces) a budget; the previous one.
    pub fn set(&self, budget: &Budget, now_iso: &str) -> Result<Option<Budget>, BudgetError> {
        budgets!(self, s => s.set(budget, now_iso))
    }

    /// Removes the budget of `scope`.
    pub fn remove(&self, scope: &BudgetScope) -> Result<Budget, BudgetError> {
        budgets!(self, s => s.remove(scope))
    }

    /// Where the budget of `scope` stands at `now`.
    pub fn status(&self, scope: &BudgetScope, now: i64) -> Result<BudgetStatus, BudgetError> {
        budgets!(self, s => s.status(scope, now))
    }

    /// Where every budget stands at `now`.
    pub fn list(&self, now: i64) -> Result<Vec<BudgetStatus>, BudgetError> {
        budgets!(self, s => s.list(now))
    }

    /// The ledger a kernel charges.
    pub fn ledger(&self) -> Arc<dyn BudgetLedger> {
        match self {
            BudgetBackend::Sqlite(s) => Arc::clone(s) as Arc<dyn BudgetLedger>,
            BudgetBackend::Postgres(s) => Arc::clone(s) as Arc<dyn BudgetLedger>,
        }
    }
}

impl BudgetLedger for BudgetBackend {
    fn reserve(&self, request: &ReserveRequest) -> Result<Reservation, ReserveError> {
        budgets!(self, s => s.reserve(request))
    }

    fn reconcile(
        &self,
        reservation: &Reservation,
        actual: &Usage,
    ) -> Result<Settlement, BudgetError> {
        budgets!(self, s => s.reconcile(reservation, actual))
    }

    fn release(&self, reservation: &Reservation) -> Result<Settlement, BudgetError> {
        budgets!(self, s => s.release(reservation))
    }
}

/// Where an operator command finds the control state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A lifecycle SQLite database file.
    File(std::path::PathBuf),
    /// The PostgreSQL database whose DSN is in this environment variable.
    Postgres(String),
}

impl StateLocation {
    /// The state of `settings`: PostgreSQL when [`pg_env`] says so, else the state
    /// database file (`None`: neither is configured).
    pub fn of(settings: &Settings) -> Option<Self> {
        match pg_env(settings) {
            Some(env) => Some(StateLocation::Postgres(env)),
            None => settings.state_db.value.clone().map(StateLocation::File),
        }
    }
}

/// The PostgreSQL audit chain a change is recorded in, when the settings' audit store
/// is postgres (`None` otherwise: the caller opens file stores its own way).
pub fn pg_audit(settings: &Settings) -> Result<Option<Box<dyn cfa::AuditStore>>, miette::Report> {
    match settings.audit() {
        Some(location) if location.pg_env().is_some() => Ok(Some(
            location.open_audit(&settings.registry, cfa::audit::Durability::Always)?,
        )),
        _ => Ok(None),
    }
}

impl crate::control_cmd::ControlArgs {
    /// The control face of a long-running face: the lifecycle database `db` as the
    /// settings resolved it when there is one, else the PostgreSQL database of `pg_env`
    /// (the face's postgres storage: every replica then checks the same switches and
    /// tickets), else none. A face living `life` [`FaceLife::LongRunning`] keeps the
    /// PostgreSQL switches in memory between decisions.
    pub fn open_or_pg(
        &self,
        db: &crate::settings::Resolved<Option<std::path::PathBuf>>,
        requester: &str,
        pg_env: Option<&str>,
        life: FaceLife,
    ) -> Result<Option<super::control::ControlFace>, miette::Report> {
        match (&db.value, pg_env) {
            (None, Some(env)) => {
                super::control::ControlFace::open_pg(env, requester, self.ticket_ttl, life)
                    .map(Some)
                    .map_err(|e| miette::Report::msg(e.message))
            }
            _ => self.open(db, requester),
        }
    }
}

impl crate::face_flags::FaceSettings {
    /// The PostgreSQL budgets of a face whose storage is postgres and that has no
    /// lifecycle database file (a file named by a flag or the config wins).
    pub fn pg_budgets(&self) -> Result<Option<BudgetBackend>, miette::Report> {
        match (&self.lifecycle_db, &self.audit_pg_env) {
            (None, Some(env)) => BudgetBackend::connect_pg(env)
                .map(Some)
                .map_err(|e| miette::Report::msg(e.message)),
            _ => Ok(None),
        }
    }
}
