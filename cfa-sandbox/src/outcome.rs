//! The outcome of one governed execution.

use crate::metrics::AggregateMetrics;
use crate::sandbox::StepResult;
use cfa_types::{DecisionState, Fault};
use serde::{Deserialize, Serialize};

/// How the sandbox run itself ended, before runtime validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    /// Every step succeeded.
    Completed,
    /// A step failed (execution stopped there).
    Partial,
    /// The environment failed (interrupted step or failed environment check).
    Panic,
}

/// What happened to the run's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// Committed and published.
    Published,
    /// Nothing kept.
    RolledBack,
    /// Failed steps (or everything) quarantined; nothing published.
    Quarantined,
    /// Successful steps committed, nothing published.
    CommittedNotPublished,
    /// Published with failed steps (design.md B6: its own final state).
    Degraded,
}

impl PublishState {
    /// The serialised value, e.g. `"committed_not_published"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PublishState::Published => "published",
            PublishState::RolledBack => "rolled_back",
            PublishState::Quarantined => "quarantined",
            PublishState::CommittedNotPublished => "committed_not_published",
            PublishState::Degraded => "degraded",
        }
    }

    /// The decision state the kernel reports for an approved run that ended here
    /// (`approved_with_warnings` is the kernel's to choose for a published run).
    pub const fn decision_state(self) -> DecisionState {
        match self {
            PublishState::Published => DecisionState::Approved,
            PublishState::RolledBack => DecisionState::RolledBack,
            PublishState::Quarantined => DecisionState::Quarantined,
            PublishState::CommittedNotPublished => DecisionState::PartiallyCommitted,
            PublishState::Degraded => DecisionState::Degraded,
        }
    }

    /// True only for [`PublishState::Published`].
    pub const fn is_published(self) -> bool {
        matches!(self, PublishState::Published)
    }
}

/// The outcome of [`crate::execute`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionOutcome {
    /// Sandbox name.
    pub sandbox: String,
    /// How the sandbox run ended before validation.
    pub sandbox_status: SandboxStatus,
    /// What happened to the output.
    pub publish_state: PublishState,
    /// The final result of every executed step, in execution order.
    pub step_results: Vec<StepResult>,
    /// Aggregated metrics (B9).
    pub metrics: AggregateMetrics,
    /// Whether runtime validation ran, and whether it passed.
    pub runtime_validation: Option<bool>,
    /// Sandbox faults (every failed attempt), environment faults, runtime faults and
    /// `PARTIAL_DEGRADED_PUBLISH`, in the order they happened.
    pub runtime_faults: Vec<Fault>,
    /// Retry attempts made (0 when nothing was retried).
    pub retries: u32,
    /// Steps quarantined.
    pub quarantined_steps: Vec<String>,
    /// Steps whose effects were committed (empty when the run was rolled back).
    pub committed_steps: Vec<String>,
    /// Steps that never ran (after a failure or a panic).
    pub skipped_steps: Vec<String>,
}

impl ExecutionOutcome {
    /// The decision state for the kernel (see [`PublishState::decision_state`]).
    pub fn decision_state(&self) -> DecisionState {
        self.publish_state.decision_state()
    }
}
