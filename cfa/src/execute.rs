//! Execution: the [`Sandbox`] plugins chosen by name from a [`SandboxRegistry`]
//! (built-ins: `mock`, `panic`, `postgres`), the partial-execution failure policy with
//! retries ([`execute()`]), runtime validation of the metrics ([`RuntimeValidator`]), and
//! the kernel's execute slot ([`ExecutionPhase`], with [`SandboxExecution`] bridging it
//! to a sandbox and a lifecycle [`StateStore`](crate::StateStore)). Sandbox items are
//! re-exported from cfa-sandbox; the slot's types from cfa-kernel.
//!
//! ```
//! use cfa::execute::{SandboxOptions, SandboxRegistry};
//!
//! let registry = SandboxRegistry::with_builtins();
//! let mock = registry.create("mock", &SandboxOptions::default())?;
//! assert_eq!(mock.name(), "mock");
//! # Ok::<(), cfa::execute::SandboxError>(())
//! ```

pub use cfa_sandbox::{
    AggregateMetrics, ExecutionConfig, FailurePolicy, MockConfig, MockSandbox, PanicSandbox,
    PostgresConfig, PostgresSandbox, RetryPolicy, RunContext, RuntimeThresholds, RuntimeValidation,
    RuntimeValidator, Sandbox, SandboxError, SandboxFactory, SandboxFailure, SandboxOptions,
    SandboxRegistry, SandboxRun, SandboxStatus, SchemaContract, StepMetrics, StepOverride,
    StepResult, StepStatus, UnknownSandbox, aggregate, execute, step_failed_fault,
};
// The kernel's execute slot: what the kernel hands an execution phase and gets back.
pub use cfa_kernel::{
    ExecutionClock, ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest,
    PublishState, SandboxExecution, version_id_for,
};
