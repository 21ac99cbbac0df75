//! Σ state and lifecycle: projects sandbox run outcomes into a context registry behind
//! the [`StateStore`] trait (current state per dataset plus a bounded history; memory
//! store, and the SQLite [`LifecycleDb`] with the `sqlite` feature), records
//! [`ExecutionRecord`]s, computes the lifecycle indices (IFo/IFs/IFg/IDI) and runs the
//! skill promotion state machine, and holds per-target leases so only one kernel writes
//! a target at a time (invariant I8) behind the [`LeaseStore`] trait (the lifecycle
//! database's table; with the `postgres` feature also a PostgreSQL database every
//! replica sees, `PgLeases`). It fills cfa-sandbox's execute slot with
//! [`LifecycleExecution`]: the sandbox runs the artifact and maps the outcome to a
//! decision, the lifecycle adds lease, projection and skill around it. Time is always
//! injected (formatted by cfa-types' one ISO formatter). It must NOT know about policy
//! rules, code generation (the artifact is handed on untouched, as
//! [`cfa_sandbox::GeneratedArtifact`]), the audit chain or how a run maps to a decision,
//! and promotion never changes a decision (B1): the kernel reports `skill_state` beside
//! it.
//!
//! ```
//! use cfa_lifecycle::{MemoryStateStore, StateStore};
//!
//! let store = MemoryStateStore::new(cfa_lifecycle::DEFAULT_HISTORY_CAP);
//! assert_eq!(store.version_id()?, "v_initial");
//! let at = cfa_lifecycle::time::parse("2026-01-05 10:00:00").unwrap_or(jiff::Timestamp::UNIX_EPOCH);
//! assert_eq!(cfa_lifecycle::time::isoformat(at), "2026-01-05T10:00:00+00:00");
//! # Ok::<(), cfa_lifecycle::LifecycleError>(())
//! ```

#[cfg(feature = "sqlite")]
mod db;
mod error;
mod execution;
mod indices;
mod lease;
#[cfg(feature = "postgres")]
mod pg_lease;
mod projection;
mod promotion;
mod record;
mod service;
mod store;
pub mod time;

#[cfg(feature = "sqlite")]
pub use db::{LifecycleDb, SCHEMA_VERSION};
pub use error::LifecycleError;
pub use execution::{ExecutionClock, LifecycleExecution, version_id_for};
pub use indices::{IndexCalculator, IndexScores};
pub use lease::{Lease, LeaseHeld, LeasePolicy, LeaseStore, lease_fault};
#[cfg(feature = "postgres")]
pub use pg_lease::PgLeases;
pub use projection::{
    DatasetMetrics, DatasetState, HistoryEntry, Projection, ProjectionInput, ProjectionType,
    project,
};
pub use promotion::{PromotionEngine, PromotionPolicy, SkillRecord, SkillState, Transition};
pub use record::ExecutionRecord;
pub use service::{ExecutionService, ServiceError, ServiceRequest, ServiceResult};
pub use store::{DEFAULT_HISTORY_CAP, MemoryStateStore, StateStore};
