//! Σ state and lifecycle: projects execution outcomes into a context registry behind the
//! [`StateStore`] trait (current state per dataset plus a bounded history; memory and
//! SQLite stores), records [`ExecutionRecord`]s, computes the lifecycle indices
//! (IFo/IFs/IFg/IDI) and runs the skill promotion state machine, and holds per-target
//! leases so only one kernel writes a target at a time (invariant I8). Time is always
//! injected. It must NOT know about policy rules, code generation or the audit chain, and
//! promotion never changes a decision (B1): the kernel reports `skill_state` beside it.

mod db;
mod error;
mod indices;
mod lease;
mod projection;
mod promotion;
mod record;
mod service;
mod store;
pub mod time;

pub use db::{LifecycleDb, SCHEMA_VERSION};
pub use error::LifecycleError;
pub use indices::{IndexCalculator, IndexScores};
pub use lease::{Lease, LeaseHeld, lease_fault};
pub use projection::{
    DatasetMetrics, DatasetState, HistoryEntry, Projection, ProjectionInput, ProjectionType,
    project,
};
pub use promotion::{PromotionEngine, PromotionPolicy, SkillRecord, SkillState, Transition};
pub use record::ExecutionRecord;
pub use service::{ExecutionService, ServiceError, ServiceRequest, ServiceResult, final_state};
pub use store::{DEFAULT_HISTORY_CAP, MemoryStateStore, StateStore};
