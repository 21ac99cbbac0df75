//! Execution: the [`Sandbox`] plugins chosen by name from a [`SandboxRegistry`]
//! (built-ins: `mock`, `panic`, `spark`, `postgres`), the partial-execution failure policy with
//! retries ([`execute()`]), runtime validation of the metrics ([`RuntimeValidator`]), and
//! the kernel's execute slot ([`ExecutionPhase`], with [`SandboxExecution`] bridging it
//! to a sandbox and a lifecycle [`StateStore`](crate::StateStore)). Sandbox items are
//! re-exported from cfa-sandbox; the slot's types are cfa-sandbox's too; [`LifecycleExecution`] is cfa-lifecycle's.
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
    RetryPolicy, RunContext, RuntimeThresholds, RuntimeValidation, RuntimeValidator, Sandbox,
    SandboxError, SandboxFactory, SandboxFailure, SandboxOptions, SandboxRegistry, SandboxRun,
    SandboxStatus, SchemaContract, StepMetrics, StepOverride, StepResult, StepStatus,
    UnknownSandbox, aggregate, execute, step_failed_fault,
};
/// The PostgreSQL sandbox (feature `postgres`), and `probe_postgres`: does a DSN reach a
/// server within a timeout (`cfa doctor`).
#[cfg(feature = "postgres")]
pub use cfa_sandbox::{PostgresConfig, PostgresSandbox, probe_postgres};
/// The Spark sandbox: the PySpark backend's spark-mode script on a local Spark session.
pub use cfa_sandbox::{SPARK_PYTHON_ENV, SparkConfig, SparkOptions, SparkReport, SparkSandbox};
// The execute slot: what the kernel hands an execution phase and gets back, the one
// mapping of an outcome to a decision state, and which artifact a sandbox runs.
pub use cfa_sandbox::{
    ArtifactRequirement, ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest,
    PublishState, RunOutcome, artifact_requirement, is_blocking,
};
// The lifecycle-backed execution phase that fills the slot.
pub use cfa_kernel::{ExecutionClock, LifecycleExecution, SandboxExecution, version_id_for};
