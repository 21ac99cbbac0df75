//! The governed flow in depth: the kernel, its configuration and builder, the full shape
//! of a [`KernelResult`] (phases, skips, replans, summaries), the execute slot the kernel
//! calls after static validation, id sources, and the kernel's own fault codes. Everything
//! here is re-exported from cfa-kernel.
//!
//! ```
//! use cfa::kernel::{Kernel, KernelConfig, Phase};
//!
//! // The default config grounds in an empty catalog, so every intent blocks in formalize.
//! let kernel = Kernel::builder(KernelConfig::default()).build()?;
//! let r = kernel.process("Join nfe with clientes into silver");
//! assert!(!r.is_executable());
//! assert_eq!(r.phases_run.first(), Some(&Phase::Formalize));
//! # Ok::<(), cfa::BuildError>(())
//! ```

pub use cfa_kernel::{
    ArtifactSummary, BuildError, ExecutionSummary, Gate, GateError, Grounding, Kernel,
    KernelBuilder, KernelConfig, KernelResult, Phase, PhaseSkip, Phases, ReplanAttempt,
    ResolutionSummary, SharedConfirmation, SharedNormalizer,
};
// The execute slot (see also [`crate::execute`]).
pub use cfa_kernel::{
    ExecutionClock, ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest,
    LifecycleExecution, PublishState, SandboxExecution, version_id_for,
};
// The control plane's hook after the policy (kill switches, approval tickets).
pub use cfa_kernel::{ControlPlane, control};
// The audited policy check of a ready signature.
pub use cfa_kernel::{CheckError, Decision, PolicyCheck, PolicyCheckRecord, record_policy_check};

// The storage registry: audit and state stores opened by backend name (built-ins
// `jsonl`, `memory`, and `sqlite` with feature `sqlite`), plugins registered by name.
pub use cfa_kernel::{IdKind, IdSource, SequentialIds, TickClock, UuidIds};
pub use cfa_kernel::{StorageBackend, StorageError, StorageRegistry, StoreKind, StoreRequest};

/// Re-evaluating recorded decisions (backtests) and comparing bundles (shadow mode).
pub mod replay {
    pub use cfa_kernel::replay::{
        CATALOGS, RecordedDecision, Replayed, SIGNATURES, flipped, record_inputs, replay,
    };
}

/// The fault codes the kernel itself raises (a phase that failed closed), and the
/// helpers that build those faults.
pub mod faults {
    pub use cfa_kernel::faults::{
        AUDIT_WRITE_FAILED, CATALOG_INVALID, CODEGEN_FAILED, CONFIRMATION_FAILED, EXECUTION_FAILED,
        NORMALIZER_FAILED, PLANNER_FAILED, POLICY_FAILED, REPLAN_PATCH_FAILED, catalog_invalid,
        kernel_fault,
    };
}
