//! Ω execute and validate: runs an approved [`cfa_plan::ExecutionPlan`] (and, for real
//! engines, the backend's [`cfa_codegen::GeneratedArtifact`]) through a [`Sandbox`]
//! plugin chosen by name from a [`SandboxRegistry`] (built-ins: `mock`, `panic`,
//! `postgres`), aggregates the per-step metrics correctly (B9), checks them with the
//! [`RuntimeValidator`], and applies the partial-execution failure policy with retries
//! ([`execute`]) to produce a serialisable [`ExecutionOutcome`]. It must NOT know about
//! policy rules, audit logs, state projection or lifecycle: the kernel records the
//! outcome elsewhere.

mod error;
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

pub use error::{SandboxError, SandboxFailure, UnknownSandbox};
pub use metrics::{AggregateMetrics, StepMetrics, aggregate};
pub use mock::{MockConfig, MockSandbox, StepOverride};
pub use outcome::{ExecutionOutcome, PublishState, SandboxStatus};
pub use panic_sandbox::PanicSandbox;
pub use partial::{ExecutionConfig, FailurePolicy, RetryPolicy, execute};
#[cfg(feature = "postgres")]
pub use postgres_sandbox::{PostgresConfig, PostgresSandbox};
pub use registry::{SandboxFactory, SandboxOptions, SandboxRegistry};
pub use runtime::{RuntimeThresholds, RuntimeValidation, RuntimeValidator, SchemaContract};
pub use sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus, step_failed_fault};
