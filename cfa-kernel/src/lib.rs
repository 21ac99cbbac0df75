//! The CFA kernel: it owns the governed flow — formalize (catalog, normalisation,
//! grounding, confirmation), govern (policy and the bounded replan loop that applies
//! the bundle's own patches), generate (plan, code, static validation), calling the
//! pluggable execute slot ([`ExecutionPhase`]; an approved run is first charged to
//! the budgets of a `cfa_control::budget::BudgetLedger` when one is given) and the final decision — writing one
//! hash-chained audit event per step and failing closed on every error; the audited
//! policy check of a ready signature ([`PolicyCheck`]: the one route every face's
//! stand-alone decision and its `policy_check` event take); the [`storage`] registry
//! that opens audit and state stores by backend name (their formats live in cfa-audit
//! and cfa-lifecycle); plus [`Gate`] and the [`testing`] helpers. It holds only trait objects (`Normalizer`,
//! `ConfirmationHandler`, `Planner`, `Backend`, `AuditStore`, [`IdSource`], `Clock`,
//! [`ExecutionPhase`], `BudgetLedger`). The execute slot's types and the mapping of an execution
//! outcome to a decision state are cfa-sandbox's (re-exported here); the
//! lifecycle-backed phase is cfa-lifecycle's [`LifecycleExecution`]. The [`control`]
//! hook applies the operator's control plane (cfa-control: kill switches, approval
//! tickets) after the policy's decision, through the `ControlStore` trait. It must NOT know
//! file formats, storage engines (SQLite and PostgreSQL are opt-in features of the
//! crates below it: `sqlite`, `postgres`), sandbox engines (only
//! [`testing::mock_execution`] names the built-in `mock`), the CLI or any server: ids
//! and timestamps are injected.
//!
//! ```
//! use cfa_kernel::{Kernel, KernelConfig, PublishState, SequentialIds, TickClock, testing};
//! use cfa_lifecycle::MemoryStateStore;
//! use cfa_types::{Catalog, DecisionState};
//! use std::sync::Arc;
//!
//! let catalog: serde_json::Value =
//!     serde_json::from_str(include_str!("../../examples/catalog.json"))?;
//! let config = KernelConfig::new(cfa_policy::PolicyEngine::default(), Catalog::from_value(&catalog)?);
//! let state = Arc::new(MemoryStateStore::new(cfa_lifecycle::DEFAULT_HISTORY_CAP));
//! let kernel = Kernel::builder(config)
//!     .ids(SequentialIds::new())
//!     .clock(TickClock::new(1_767_225_600))
//!     .executor(testing::mock_execution(state)?)
//!     .build()?;
//! let r = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
//! assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
//! assert_eq!(r.execution.as_ref().map(|e| &e.publish_state), Some(&PublishState::Published));
//! testing::assert_audit_intact(kernel.audit_store().as_ref(), &r)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod config;
pub mod control;
mod error;
pub mod faults;
mod gate;
mod ids;
mod kernel;
pub mod replay;
mod result;
mod run;
pub mod storage;
pub mod testing;

/// The lifecycle-backed execution phase (cfa-lifecycle's), re-exported for callers;
/// [`SandboxExecution`] is its former name.
pub use cfa_lifecycle::{
    ExecutionClock, LifecycleExecution, LifecycleExecution as SandboxExecution, version_id_for,
};
/// The execute slot's types, owned by cfa-sandbox (one definition for every crate).
pub use cfa_sandbox::{
    ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, PublishState,
};
pub use check::{CheckError, Decision, PolicyCheck, PolicyCheckRecord, record_policy_check};
pub use config::{Grounding, KernelConfig, Phases};
pub use control::ControlPlane;
pub use error::BuildError;
pub use gate::{Gate, GateError};
pub use ids::{IdKind, IdSource, SequentialIds, TickClock, UuidIds};
pub use kernel::{Kernel, KernelBuilder, SharedConfirmation, SharedNormalizer};
pub use result::{
    ArtifactSummary, ExecutionSummary, KernelResult, Phase, PhaseSkip, ReplanAttempt,
    ResolutionSummary,
};
pub use storage::{StorageBackend, StorageError, StorageRegistry, StoreKind, StoreRequest};
