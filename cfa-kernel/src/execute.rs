//! The Ω slot: how execution, runtime validation and state projection plug into the
//! kernel after static validation. The kernel knows only this trait; sandboxes and
//! state stores live in other crates and implement it.

use cfa_codegen::GeneratedArtifact;
use cfa_plan::ExecutionPlan;
use cfa_types::{Catalog, Fault, StateSignature};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened to the outputs of an execution (reference.md §8.1 EXECUTE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "publish_state")]
pub enum PublishState {
    /// Everything committed and published: the run goes on to VALIDATE.
    Published,
    /// Published with failed steps: final state `degraded` (design.md B6).
    Degraded {
        /// Ids of the failed steps.
        failed_steps: Vec<String>,
    },
    /// Some steps committed, nothing published: final state `partially_committed`.
    CommittedNotPublished,
    /// Failed steps were quarantined: final state `quarantined`.
    Quarantined {
        /// Ids of the quarantined steps.
        steps: Vec<String>,
    },
    /// Everything was rolled back: final state `rolled_back`.
    RolledBack,
    /// Nothing ran and nothing was written (for example another intent holds the
    /// target's lease). The outcome's faults say why; the kernel blocks with them.
    NotExecuted,
}

impl PublishState {
    /// The reference's `publish_state` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            PublishState::Published => "published",
            PublishState::Degraded { .. } => "degraded",
            PublishState::CommittedNotPublished => "committed_not_published",
            PublishState::Quarantined { .. } => "quarantined",
            PublishState::RolledBack => "rolled_back",
            PublishState::NotExecuted => "not_executed",
        }
    }
}

/// Everything an execution phase is handed. All of it has been approved by policy
/// and has passed static validation.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionRequest<'a> {
    /// The kernel's intent id.
    pub intent_id: &'a str,
    /// The decision id.
    pub decision_id: &'a str,
    /// The governed signature (after replans).
    pub signature: &'a StateSignature,
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The plan.
    pub plan: &'a ExecutionPlan,
    /// The statically validated artifact.
    pub artifact: &'a GeneratedArtifact,
    /// Replans the decision needed (lifecycle records count them).
    pub replan_count: u32,
    /// Faults of the final policy evaluation (warnings of an approved decision).
    pub policy_faults: &'a [Fault],
}

/// What an execution phase reports back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionOutcome {
    /// Publish state of the outputs.
    pub publish_state: PublishState,
    /// Runtime validation faults. High or critical faults block the run
    /// (`Runtime validation failed: CODES`); warnings make it `approved_with_warnings`.
    /// With [`PublishState::NotExecuted`] they say why nothing ran (`Execution refused:
    /// CODES`; with no fault the kernel still blocks, with `KERNEL_EXECUTION_FAILED`).
    pub faults: Vec<Fault>,
    /// Extra details for the `execution_completed` audit event (rows, cost, duration…).
    pub details: Map<String, Value>,
    /// When the outputs were projected into state: details of the `state_projected`
    /// audit event (snapshot version, datasets updated…). `None` skips that event.
    pub projection: Option<Map<String, Value>>,
}

impl ExecutionOutcome {
    /// A clean, published run with no details.
    pub fn published() -> Self {
        ExecutionOutcome {
            publish_state: PublishState::Published,
            faults: Vec::new(),
            details: Map::new(),
            projection: None,
        }
    }
}

/// An execution phase that could not run at all (the kernel blocks with
/// `KERNEL_EXECUTION_FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("execution phase '{phase}' failed: {message}")]
pub struct ExecutionError {
    /// The phase implementation's name.
    pub phase: String,
    /// What failed.
    pub message: String,
}

/// Executes an approved, statically validated artifact, validates it at run time and
/// optionally projects its outputs into state. Implementations must be thread-safe
/// (one kernel serves many threads) and must not panic; a panic is caught anyway and
/// blocks the run. The kernel emits `execution_completed` (and `state_projected` when
/// [`ExecutionOutcome::projection`] is set) and maps the publish state to the final
/// decision.
pub trait ExecutionPhase: Send + Sync {
    /// A short name for audit details and error messages (e.g. `mock`).
    fn name(&self) -> &str;
    /// Runs `request`.
    fn execute(&self, request: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError>;
}
