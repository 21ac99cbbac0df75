//! The CFA kernel: it owns the governed flow — formalize (catalog, normalisation,
//! grounding, confirmation), govern (policy and the bounded replan loop that applies
//! the bundle's own patches), generate (plan, code, static validation), the pluggable
//! execute slot ([`ExecutionPhase`]) and the final decision — writing one hash-chained
//! audit event per step and failing closed on every error; the audited policy check of
//! a ready signature ([`PolicyCheck`]: the one route every face's stand-alone decision
//! and its `policy_check` event take); the [`storage`] registry that opens audit and
//! state stores by backend name (their formats live in cfa-audit and cfa-lifecycle);
//! plus [`Gate`] and the [`testing`] helpers. It holds only trait objects
//! (`Normalizer`, `ConfirmationHandler`, `Planner`, `Backend`, `AuditStore`,
//! [`IdSource`], `Clock`, [`ExecutionPhase`]); only [`SandboxExecution`] bridges that
//! slot to cfa-sandbox and cfa-lifecycle. It must NOT know file formats, the CLI or any
//! server: ids and timestamps are injected.

mod check;
mod config;
mod error;
mod execute;
mod execution_adapter;
pub mod faults;
mod gate;
mod ids;
mod kernel;
mod result;
mod run;
pub mod storage;
pub mod testing;

pub use check::{CheckError, Decision, PolicyCheck, PolicyCheckRecord, record_policy_check};
pub use config::{Grounding, KernelConfig, Phases};
pub use error::BuildError;
pub use execute::{
    ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, PublishState,
};
pub use execution_adapter::{ExecutionClock, SandboxExecution, version_id_for};
pub use gate::{Gate, GateError};
pub use ids::{IdKind, IdSource, SequentialIds, TickClock, UuidIds};
pub use kernel::{Kernel, KernelBuilder, SharedConfirmation, SharedNormalizer};
pub use result::{
    ArtifactSummary, ExecutionSummary, KernelResult, Phase, PhaseSkip, ReplanAttempt,
    ResolutionSummary,
};
pub use storage::{StorageBackend, StorageError, StorageRegistry, StoreKind, StoreRequest};
