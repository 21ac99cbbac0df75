//! The Ω slot the kernel calls after static validation: the [`ExecutionPhase`] trait with
//! its [`ExecutionRequest`], [`ExecutionOutcome`] and [`ExecutionError`], the one
//! [`PublishState`], the one mapping from an outcome to a [`DecisionState`]
//! ([`PublishState::decision_state`]), and which artifact a sandbox runs
//! ([`artifact_requirement`]).

use cfa_codegen::{GeneratedArtifact, Language};
use cfa_plan::ExecutionPlan;
use cfa_types::{Catalog, DecisionState, Fault, FaultSeverity, StateSignature};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened to the outputs of an execution (docs/compatibility.md#execution-outcomes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "publish_state")]
pub enum PublishState {
    /// Everything committed and published: the run goes on to VALIDATE.
    Published,
    /// Published with failed steps: final state `degraded` (docs/differences.md#b6-degraded-is-its-own-final-state).
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
    /// The reference's `publish_state` value, e.g. `"committed_not_published"`.
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

    /// True only for [`PublishState::Published`].
    pub fn is_published(&self) -> bool {
        matches!(self, PublishState::Published)
    }

    /// True when the run kept (committed) data: published, degraded or
    /// committed-not-published.
    pub fn is_committed(&self) -> bool {
        matches!(
            self,
            PublishState::Published
                | PublishState::Degraded { .. }
                | PublishState::CommittedNotPublished
        )
    }

    /// THE mapping from an execution that ended here with `faults` to the decision
    /// state (every crate asks this one function):
    ///
    /// - published: `blocked` when a fault is high or critical (runtime validation
    ///   failed), `approved_with_warnings` when any fault is above info, else `approved`;
    /// - degraded → `degraded` (B6: never approved), committed-not-published →
    ///   `partially_committed`, quarantined → `quarantined`, rolled back →
    ///   `rolled_back`;
    /// - not executed → `blocked` (fail closed, whatever the faults say).
    ///
    /// The kernel's own VALIDATE phase still has the last word on an approved run
    /// (policy warnings and replans make it `approved_with_warnings`).
    ///
    /// ```
    /// use cfa_sandbox::PublishState;
    /// use cfa_types::DecisionState;
    ///
    /// assert_eq!(PublishState::Published.decision_state(&[]), DecisionState::Approved);
    /// let degraded = PublishState::Degraded { failed_steps: vec!["join".into()] };
    /// assert_eq!(degraded.decision_state(&[]), DecisionState::Degraded);
    /// ```
    pub fn decision_state(&self, faults: &[Fault]) -> DecisionState {
        self.decision_state_of(faults.iter().map(|f| f.severity))
    }

    /// [`PublishState::decision_state`] of faults given only by their severities (what
    /// the mapping reads), so callers that adjust severities need not copy the faults.
    pub(crate) fn decision_state_of<I>(&self, severities: I) -> DecisionState
    where
        I: Iterator<Item = FaultSeverity> + Clone,
    {
        match self {
            PublishState::Published => {
                if severities.clone().any(severity_blocks) {
                    DecisionState::Blocked
                } else if severities.into_iter().any(|s| s != FaultSeverity::Info) {
                    DecisionState::ApprovedWithWarnings
                } else {
                    DecisionState::Approved
                }
            }
            PublishState::Degraded { .. } => DecisionState::Degraded,
            PublishState::CommittedNotPublished => DecisionState::PartiallyCommitted,
            PublishState::Quarantined { .. } => DecisionState::Quarantined,
            PublishState::RolledBack => DecisionState::RolledBack,
            PublishState::NotExecuted => DecisionState::Blocked,
        }
    }
}

/// True for a fault that blocks a run: high or critical severity.
pub fn is_blocking(fault: &Fault) -> bool {
    severity_blocks(fault.severity)
}

/// True for the blocking severities: high and critical.
pub(crate) fn severity_blocks(severity: FaultSeverity) -> bool {
    matches!(severity, FaultSeverity::High | FaultSeverity::Critical)
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
    /// `signature`'s `signature_hash` when the caller has it already (the kernel
    /// does); `None`: whoever needs it computes it.
    pub signature_hash: Option<&'a str>,
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

    /// The decision state of this outcome ([`PublishState::decision_state`] of its
    /// faults).
    pub fn decision_state(&self) -> DecisionState {
        self.publish_state.decision_state(&self.faults)
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
/// [`ExecutionOutcome::projection`] is set) and maps the outcome to the final decision
/// with [`ExecutionOutcome::decision_state`].
///
/// ```
/// use cfa_sandbox::{ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest};
///
/// /// Publishes everything it is handed, recording the step count.
/// struct CountSteps;
///
/// impl ExecutionPhase for CountSteps {
///     fn name(&self) -> &str {
///         "count-steps"
///     }
///     fn execute(&self, req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
///         let mut out = ExecutionOutcome::published();
///         out.details.insert("steps".into(), req.plan.steps.len().into());
///         Ok(out)
///     }
/// }
///
/// let phase: Box<dyn ExecutionPhase> = Box::new(CountSteps);
/// assert_eq!(phase.name(), "count-steps");
/// ```
pub trait ExecutionPhase: Send + Sync {
    /// A short name for audit details and error messages (e.g. `mock`).
    fn name(&self) -> &str;
    /// Runs `request`.
    fn execute(&self, request: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError>;
}

/// The one artifact a sandbox runs, when it cannot run any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactRequirement {
    /// The backend that generates it (e.g. `sql`).
    pub backend: &'static str,
    /// Its language.
    pub language: Language,
}

/// Which artifact the sandbox named `sandbox` runs: `postgres` runs the `sql` backend's
/// SQL, `spark` the `pyspark` backend's script (in its `spark` mode); every other
/// built-in (`mock`, `panic`) runs any artifact (`None`).
///
/// ```
/// use cfa_codegen::Language;
/// let pg = cfa_sandbox::artifact_requirement("postgres").unwrap();
/// assert_eq!((pg.backend, pg.language), ("sql", Language::Sql));
/// let spark = cfa_sandbox::artifact_requirement("spark").unwrap();
/// assert_eq!((spark.backend, spark.language), ("pyspark", Language::Pyspark));
/// assert!(cfa_sandbox::artifact_requirement("mock").is_none());
/// ```
pub fn artifact_requirement(sandbox: &str) -> Option<ArtifactRequirement> {
    match sandbox {
        "postgres" => Some(ArtifactRequirement {
            backend: "sql",
            language: Language::Sql,
        }),
        "spark" => Some(ArtifactRequirement {
            backend: "pyspark",
            language: Language::Pyspark,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_types::{FaultFamily, PolicyAction};

    fn fault(severity: FaultSeverity) -> Fault {
        Fault {
            code: "F".into(),
            family: FaultFamily::RuntimeBehavioral,
            severity,
            stage: "test".into(),
            message: Default::default(),
            mandatory_action: PolicyAction::Approve,
            remediation: Default::default(),
            detected_before_execution: false,
        }
    }

    /// Pins the whole outcome → decision mapping: every publish state with no fault and
    /// with one fault of every severity. Changing what a state means is one edit in
    /// [`PublishState::decision_state`] and one row here.
    #[test]
    fn the_one_outcome_to_decision_mapping() {
        use DecisionState as D;
        let states = [
            PublishState::Published,
            PublishState::Degraded {
                failed_steps: vec!["s".into()],
            },
            PublishState::CommittedNotPublished,
            PublishState::Quarantined {
                steps: vec!["s".into()],
            },
            PublishState::RolledBack,
            PublishState::NotExecuted,
        ];
        // Columns: no fault, info, warning, high, critical.
        let expected = [
            [
                D::Approved,
                D::Approved,
                D::ApprovedWithWarnings,
                D::Blocked,
                D::Blocked,
            ],
            [D::Degraded; 5],
            [D::PartiallyCommitted; 5],
            [D::Quarantined; 5],
            [D::RolledBack; 5],
            [D::Blocked; 5],
        ];
        let severities = [
            None,
            Some(FaultSeverity::Info),
            Some(FaultSeverity::Warning),
            Some(FaultSeverity::High),
            Some(FaultSeverity::Critical),
        ];
        for (state, row) in states.iter().zip(expected) {
            for (sev, want) in severities.iter().zip(row) {
                let faults: Vec<Fault> = sev.iter().map(|s| fault(*s)).collect();
                assert_eq!(state.decision_state(&faults), want, "{state:?} {sev:?}");
                let outcome = ExecutionOutcome {
                    publish_state: state.clone(),
                    faults,
                    ..ExecutionOutcome::published()
                };
                assert_eq!(outcome.decision_state(), want, "{state:?} {sev:?}");
            }
        }
    }

    #[test]
    fn publish_state_serialises_as_the_reference_does() {
        let q = PublishState::Quarantined {
            steps: vec!["load".into()],
        };
        assert_eq!(
            serde_json::to_string(&q).unwrap_or_default(),
            r#"{"publish_state":"quarantined","steps":["load"]}"#
        );
        assert_eq!(q.as_str(), "quarantined");
        assert!(!q.is_committed() && PublishState::CommittedNotPublished.is_committed());
    }
}
