//! State and lifecycle: the [`StateStore`] the execute slot projects outcomes into
//! (current state per dataset plus a bounded history; [`MemoryStateStore`] in memory,
//! [`LifecycleDb`] in SQLite), execution records, the lifecycle indices, the skill
//! promotion state machine (reported beside a decision, never changing it), and
//! per-target leases behind [`LeaseStore`]. Re-exported from cfa-lifecycle.
//!
//! ```
//! use cfa::lifecycle::{DEFAULT_HISTORY_CAP, MemoryStateStore};
//!
//! let store = MemoryStateStore::new(DEFAULT_HISTORY_CAP);
//! assert_eq!(store.cap(), DEFAULT_HISTORY_CAP);
//! ```

/// Target leases in a PostgreSQL database every replica shares (feature `postgres`).
#[cfg(feature = "postgres")]
pub use cfa_lifecycle::PgLeases;
pub use cfa_lifecycle::{
    DEFAULT_HISTORY_CAP, DatasetMetrics, DatasetState, ExecutionClock, ExecutionRecord,
    ExecutionService, HistoryEntry, IndexCalculator, IndexScores, Lease, LeaseHeld, LeasePolicy,
    LeaseStore, LifecycleError, LifecycleExecution, MemoryStateStore, Projection, ProjectionInput,
    ProjectionType, PromotionEngine, PromotionPolicy, ServiceError, ServiceRequest, ServiceResult,
    SkillRecord, SkillState, StateStore, Transition, lease_fault, project, version_id_for,
};
/// The SQLite lifecycle database (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use cfa_lifecycle::{LifecycleDb, SCHEMA_VERSION};

/// Timestamps as the lifecycle records write and read them.
pub mod time {
    pub use cfa_lifecycle::time::{isoformat, minus_days, parse};
}
