//! Ω execute and validate. It owns the execute slot the kernel calls — the
//! [`ExecutionPhase`] trait with its [`ExecutionRequest`], [`ExecutionOutcome`] and
//! [`ExecutionError`], the one [`PublishState`], the one mapping from an outcome to a
//! decision state ([`PublishState::decision_state`]) and the rule of which artifact a
//! sandbox runs ([`artifact_requirement`]) — and the engines behind it: it runs an
//! approved [`cfa_plan::ExecutionPlan`] (and, for real engines, the backend's
//! [`GeneratedArtifact`]) through a [`Sandbox`] plugin chosen by name from a
//! [`SandboxRegistry`] (built-ins: `mock`, `panic`, `spark` — the PySpark backend's
//! spark-mode script on a local Spark session through a virtualenv's python — and
//! `postgres` with the `postgres` feature), aggregates the per-step metrics correctly (B9), checks them with the
//! [`RuntimeValidator`], and applies the partial-execution failure policy with retries
//! ([`execute`]) to produce a serialisable [`RunOutcome`]; with `postgres`, it can also
//! tell whether a DSN reaches a server at all (`probe_postgres`). It must NOT know about policy
//! rules, audit logs, state projection, leases or lifecycle: an [`ExecutionPhase`]
//! implementation (cfa-lifecycle's) records the outcome elsewhere.
//!
//! ```
//! use cfa_plan::{ExecutionPlanner, Planner};
//! use cfa_sandbox::{ExecutionConfig, PublishState, RunContext, SandboxOptions, SandboxRegistry};
//! use cfa_types::{DecisionState, StateSignature};
//!
//! let signature = StateSignature::from_value(&serde_json::json!({
//!     "domain": "fiscal", "intent": "persist", "target_layer": "silver",
//!     "datasets": [{"name": "nfe", "size_gb": 1, "partition_column": "processing_date",
//!                   "merge_keys": ["nfe_id"]}],
//!     "constraints": {"merge_key_required": true, "partition_by": ["processing_date"]}
//! }))?;
//! let plan = ExecutionPlanner::default().plan(&signature, None)?;
//! let sandbox = SandboxRegistry::with_builtins().create("mock", &SandboxOptions::default())?;
//! let ctx = RunContext { plan: &plan, artifact: None, signature: &signature };
//! let run = cfa_sandbox::execute(sandbox.as_ref(), &ctx, &ExecutionConfig::default())?;
//! assert_eq!(run.publish_state, PublishState::Published);
//! assert_eq!(run.decision_state(), DecisionState::Approved);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod execution;
mod metrics;
mod mock;
mod outcome;
mod panic_sandbox;
mod partial;
#[cfg(feature = "postgres")]
mod postgres_sandbox;
mod registry;
mod runtime;
mod sandbox;
mod spark_sandbox;

/// The artifact an [`ExecutionRequest`] carries (the generate phase's output), so that
/// execution phases can hand it on without depending on the code generators.
pub use cfa_codegen::GeneratedArtifact;
pub use error::{SandboxError, SandboxFailure, UnknownSandbox};
pub use execution::{
    ArtifactRequirement, ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest,
    PublishState, artifact_requirement, is_blocking,
};
pub use metrics::{AggregateMetrics, StepMetrics, aggregate};
pub use mock::{MockConfig, MockSandbox, StepOverride};
pub use outcome::{RunOutcome, SandboxStatus};
pub use panic_sandbox::PanicSandbox;
pub use partial::{ExecutionConfig, FailurePolicy, RetryPolicy, execute};
#[cfg(feature = "postgres")]
pub use postgres_sandbox::{PostgresConfig, PostgresSandbox, probe as probe_postgres};
pub use registry::{SandboxFactory, SandboxOptions, SandboxRegistry, SparkOptions};
pub use runtime::{RuntimeThresholds, RuntimeValidation, RuntimeValidator, SchemaContract};
pub use sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus, step_failed_fault};
pub use spark_sandbox::{SPARK_PYTHON_ENV, SparkConfig, SparkReport, SparkSandbox};
