//! The record of one sandbox run ([`RunOutcome`]) and what of it the kernel sees
//! ([`RunOutcome::phase_faults`], [`RunOutcome::phase_details`]).

use crate::execution::{PublishState, is_blocking};
use crate::metrics::AggregateMetrics;
use crate::sandbox::StepResult;
use cfa_types::{DecisionState, Fault, FaultSeverity};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::OnceLock;

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

impl SandboxStatus {
    /// The serialised value (`completed`, `partial`, `panic`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SandboxStatus::Completed => "completed",
            SandboxStatus::Partial => "partial",
            SandboxStatus::Panic => "panic",
        }
    }
}

/// `items` as a JSON array of strings.
/// A map of `keys` in that order, every value `null`, with room for `capacity` keys:
/// the template [`filled`] copies (built once per process by its callers).
pub(crate) fn keyed(capacity: usize, keys: &[&str]) -> Map<String, Value> {
    let mut m = Map::with_capacity(capacity.max(keys.len()));
    for key in keys {
        m.insert((*key).to_owned(), Value::Null);
    }
    m
}

/// A copy of `template` (from [`keyed`]) with `values` in its keys' order: the map
/// `insert` would give for the same keys and values, without hashing the keys again
/// (a copy keeps the template's hashes). `N` is the template's length, which
/// [`keyed`]'s callers fix with their key list.
pub(crate) fn filled<const N: usize>(
    template: &Map<String, Value>,
    values: [Value; N],
) -> Map<String, Value> {
    debug_assert_eq!(template.len(), N, "one value a key");
    let mut m = template.clone();
    for (slot, value) in m.values_mut().zip(values) {
        *slot = value;
    }
    m
}

fn str_array(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// The outcome of [`crate::execute`]: everything the run did, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Sandbox name.
    pub sandbox: String,
    /// How the sandbox run ended before validation.
    pub sandbox_status: SandboxStatus,
    /// What happened to the output (never [`PublishState::NotExecuted`]: a run that
    /// could not start is an error of [`crate::execute`]).
    #[serde(flatten)]
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

impl RunOutcome {
    /// The run's faults as the execution phase reports them. A published run passed
    /// runtime validation (it is rolled back otherwise), so its high or critical faults
    /// come from attempts that were retried successfully: they are reported as warnings
    /// (the run is `approved_with_warnings`, not blocked). Other runs keep theirs.
    pub fn phase_faults(&self) -> Vec<Fault> {
        let published = self.publish_state.is_published();
        self.runtime_faults
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.severity = phase_severity(published, &f);
                f
            })
            .collect()
    }

    /// The decision state of this run ([`PublishState::decision_state`] of
    /// [`RunOutcome::phase_faults`]), read from the phase severities without copying
    /// the faults.
    pub fn decision_state(&self) -> DecisionState {
        let published = self.publish_state.is_published();
        self.publish_state.decision_state_of(
            self.runtime_faults
                .iter()
                .map(move |f| phase_severity(published, f)),
        )
    }

    /// The `execution_completed` details of this run: `executed`, `sandbox`,
    /// `sandbox_status`, `retries`, `metrics`, `runtime_validation`, `committed_steps`,
    /// `skipped_steps` and `final_state` ([`RunOutcome::decision_state`]), in that
    /// order.
    pub fn phase_details(&self) -> Map<String, Value> {
        static KEYS: OnceLock<Map<String, Value>> = OnceLock::new();
        // Room for one more key (the lifecycle adds its own) without regrowing.
        let keys = KEYS.get_or_init(|| {
            keyed(
                10,
                &[
                    "executed",
                    "sandbox",
                    "sandbox_status",
                    "retries",
                    "metrics",
                    "runtime_validation",
                    "committed_steps",
                    "skipped_steps",
                    "final_state",
                ],
            )
        });
        filled(
            keys,
            [
                Value::Bool(true),
                Value::from(self.sandbox.as_str()),
                Value::from(self.sandbox_status.as_str()),
                Value::from(self.retries),
                self.metrics.snapshot(),
                self.runtime_validation.map_or(Value::Null, Value::Bool),
                str_array(&self.committed_steps),
                str_array(&self.skipped_steps),
                Value::from(self.decision_state().as_str()),
            ],
        )
    }
}

/// The severity `fault` is reported with ([`RunOutcome::phase_faults`]): blocking
/// faults of a published run become warnings.
fn phase_severity(published: bool, fault: &Fault) -> FaultSeverity {
    if published && is_blocking(fault) {
        FaultSeverity::Warning
    } else {
        fault.severity
    }
}

/// The ids of the steps that did not succeed and were not committed, in execution
/// order, each once (the `failed_steps` of [`PublishState::Degraded`]).
pub(crate) fn failed_steps(results: &[StepResult], committed: &[String]) -> Vec<String> {
    let mut failed: Vec<String> = Vec::new();
    for s in results {
        if s.status != crate::sandbox::StepStatus::Succeeded && !failed.contains(&s.step_id) {
            failed.push(s.step_id.clone());
        }
    }
    failed.retain(|id| !committed.contains(id));
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fault(code: &str, severity: FaultSeverity) -> Fault {
        Fault {
            code: code.into(),
            family: cfa_types::FaultFamily::RuntimeBehavioral,
            severity,
            stage: "runtime_validation".into(),
            message: "m".into(),
            mandatory_action: cfa_types::PolicyAction::Approve,
            remediation: Default::default(),
            detected_before_execution: false,
        }
    }

    #[test]
    fn decision_state_is_the_mapping_of_the_phase_faults() {
        let states = [
            PublishState::Published,
            PublishState::RolledBack,
            PublishState::CommittedNotPublished,
            PublishState::Quarantined {
                steps: vec!["a".into()],
            },
            PublishState::Degraded {
                failed_steps: vec!["a".into()],
            },
        ];
        let severities = [
            FaultSeverity::Info,
            FaultSeverity::Warning,
            FaultSeverity::High,
            FaultSeverity::Critical,
        ];
        let mut fault_sets: Vec<Vec<Fault>> = vec![Vec::new()];
        for a in severities {
            fault_sets.push(vec![fault("A", a)]);
            for b in severities {
                fault_sets.push(vec![fault("A", a), fault("B", b)]);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for state in &states {
            for faults in &fault_sets {
                let outcome = RunOutcome {
                    sandbox: "mock".into(),
                    sandbox_status: SandboxStatus::Completed,
                    publish_state: state.clone(),
                    step_results: Vec::new(),
                    metrics: AggregateMetrics::default(),
                    runtime_validation: Some(true),
                    runtime_faults: faults.clone(),
                    retries: 0,
                    quarantined_steps: Vec::new(),
                    committed_steps: Vec::new(),
                    skipped_steps: Vec::new(),
                };
                let expected = outcome
                    .publish_state
                    .decision_state(&outcome.phase_faults());
                assert_eq!(outcome.decision_state(), expected, "{state:?} {faults:?}");
                seen.insert(expected.as_str());
            }
        }
        // Every branch of the mapping was exercised.
        for s in [
            "approved",
            "approved_with_warnings",
            "rolled_back",
            "partially_committed",
            "quarantined",
            "degraded",
        ] {
            assert!(seen.contains(s), "{s}");
        }
    }

    #[test]
    fn status_strings_are_the_serialised_values() {
        for s in [
            SandboxStatus::Completed,
            SandboxStatus::Partial,
            SandboxStatus::Panic,
        ] {
            assert_eq!(json!(s), Value::from(s.as_str()));
        }
    }
}
