//! Partial execution (docs/compatibility.md#execution-outcomes): runs the plan's steps in topological order
//! through a sandbox run, retries failed steps, validates the aggregate at runtime and
//! applies the failure policy. The run is committed only when the outcome keeps data
//! (published, committed_not_published, degraded) and runtime validation did not fail;
//! otherwise it is rolled back.

use crate::error::SandboxError;
use crate::execution::PublishState;
use crate::metrics::aggregate;
use crate::outcome::{RunOutcome, SandboxStatus, failed_steps};
use crate::runtime::RuntimeValidator;
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus};
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};
use serde::{Deserialize, Serialize};

/// What to do when a run cannot be published as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Roll everything back.
    FullRollback,
    /// Quarantine the failed steps (the default).
    #[default]
    SelectiveQuarantine,
    /// Commit the successful steps, publish nothing.
    PartialCommitNoPublish,
    /// Publish what succeeded as `degraded` (B6: never `approved`).
    DegradedPublish,
}

impl FailurePolicy {
    /// Parses the serialised value, e.g. `selective_quarantine`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full_rollback" => Some(FailurePolicy::FullRollback),
            "selective_quarantine" => Some(FailurePolicy::SelectiveQuarantine),
            "partial_commit_no_publish" => Some(FailurePolicy::PartialCommitNoPublish),
            "degraded_publish" => Some(FailurePolicy::DegradedPublish),
            _ => None,
        }
    }
}

/// Retry of failed steps (only failed steps are re-run; successful ones are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts per step, the first included (3).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3 }
    }
}

/// How [`execute`] behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionConfig {
    /// Failure policy.
    pub failure_policy: FailurePolicy,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Runtime validator.
    pub validator: RuntimeValidator,
    /// When the validator has no schema contract, check the one the plan implies
    /// ([`crate::SchemaContract::from_plan`]); on by default so the schema checks are
    /// never vacuous (B9).
    pub schema_from_plan: bool,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            failure_policy: FailurePolicy::default(),
            retry: RetryPolicy::default(),
            validator: RuntimeValidator::default(),
            schema_from_plan: true,
        }
    }
}

fn degraded_fault(failed: usize, total: usize) -> Fault {
    Fault {
        code: "PARTIAL_DEGRADED_PUBLISH".into(),
        family: FaultFamily::RuntimeBehavioral,
        severity: FaultSeverity::Warning,
        stage: "partial_execution".into(),
        message: format!("Published in degraded mode: {failed} of {total} steps failed").into(),
        mandatory_action: PolicyAction::Approve,
        remediation: vec!["Re-run the failed steps before relying on the output"].into(),
        detected_before_execution: false,
    }
}

fn finish_fault(code: &str, e: &SandboxError) -> Fault {
    Fault {
        code: code.into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: "sandbox".into(),
        message: e.to_string().into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec!["Check the execution environment"].into(),
        detected_before_execution: false,
    }
}

/// The ids of `order`, in order.
fn step_ids(order: &[&cfa_plan::PlanStep]) -> Vec<String> {
    order.iter().map(|s| s.id.clone()).collect()
}

struct Steps {
    results: Vec<StepResult>,
    faults: Vec<Fault>,
    retries: u32,
    status: SandboxStatus,
}

fn run_steps(run: &mut dyn SandboxRun, order: &[&cfa_plan::PlanStep], max_attempts: u32) -> Steps {
    let mut s = Steps {
        results: Vec::with_capacity(order.len()),
        faults: Vec::new(),
        retries: 0,
        status: SandboxStatus::Completed,
    };
    'steps: for step in order {
        let env = run.check_environment();
        if !env.is_empty() {
            s.faults.extend(env);
            s.status = SandboxStatus::Panic;
            break;
        }
        let mut attempt = 1;
        loop {
            let mut r = run.execute_step(step, attempt);
            match r.status {
                StepStatus::Succeeded => {
                    s.results.push(r);
                    break;
                }
                StepStatus::Interrupted => {
                    s.faults.extend(r.fault.clone());
                    s.results.push(r);
                    s.status = SandboxStatus::Panic;
                    break 'steps;
                }
                StepStatus::Failed => {
                    s.faults.extend(r.fault.clone());
                    if attempt < max_attempts.max(1) {
                        attempt += 1;
                        s.retries += 1;
                        continue;
                    }
                    r.attempt = attempt;
                    s.results.push(r);
                    s.status = SandboxStatus::Partial;
                    break 'steps;
                }
            }
        }
    }
    s
}

/// Partial execution (the reference's `PartialExecutionManager`): runs `ctx.plan`
/// through `sandbox` with `config` — failure policy, retries, runtime validation.
/// Errors only when the plan cannot be ordered or the sandbox cannot start; every step,
/// validation, commit or rollback failure is reported inside the outcome.
#[doc(alias = "PartialExecution")]
#[doc(alias = "PartialExecutionManager")]
pub fn execute(
    sandbox: &dyn Sandbox,
    ctx: &RunContext<'_>,
    config: &ExecutionConfig,
) -> Result<RunOutcome, SandboxError> {
    let order = ctx
        .plan
        .topological_order()
        .map_err(|e| SandboxError::Plan(e.to_string()))?;
    let mut outcome = RunOutcome {
        sandbox: sandbox.name().to_owned(),
        sandbox_status: SandboxStatus::Panic,
        publish_state: PublishState::RolledBack,
        step_results: Vec::new(),
        metrics: aggregate(ctx.plan, &[]),
        runtime_validation: None,
        runtime_faults: Vec::new(),
        retries: 0,
        quarantined_steps: Vec::new(),
        committed_steps: Vec::new(),
        skipped_steps: Vec::new(),
    };
    let env = sandbox.check_environment();
    if !env.is_empty() {
        outcome.runtime_faults = env;
        outcome.skipped_steps = step_ids(&order);
        return Ok(outcome);
    }
    let mut run = sandbox.begin(ctx)?;
    let steps = run_steps(run.as_mut(), &order, config.retry.max_attempts);
    outcome.sandbox_status = steps.status;
    outcome.retries = steps.retries;
    outcome.runtime_faults = steps.faults;
    outcome.metrics = aggregate(ctx.plan, &steps.results);
    let succeeded: Vec<String> = steps
        .results
        .iter()
        .filter(|r| r.status == StepStatus::Succeeded)
        .map(|r| r.step_id.clone())
        .collect();
    let failed: Vec<String> = steps
        .results
        .iter()
        .filter(|r| r.status != StepStatus::Succeeded)
        .map(|r| r.step_id.clone())
        .collect();
    outcome.skipped_steps = order
        .iter()
        .skip(steps.results.len())
        .map(|s| s.id.clone())
        .collect();
    outcome.step_results = steps.results;
    let mut keep = false;
    match steps.status {
        SandboxStatus::Panic => outcome.publish_state = PublishState::RolledBack,
        SandboxStatus::Completed => {
            let v = if config.schema_from_plan && config.validator.schema.is_none() {
                // The plan's contract, read from the plan (no validator copy).
                config
                    .validator
                    .validate_with_plan(ctx.plan, &outcome.metrics, Some(ctx.signature))
            } else {
                config
                    .validator
                    .validate(&outcome.metrics, Some(ctx.signature))
            };
            outcome.runtime_validation = Some(v.passed);
            outcome.runtime_faults.extend(v.faults);
            if v.passed {
                outcome.publish_state = PublishState::Published;
                keep = true;
            } else {
                outcome.publish_state = match config.failure_policy {
                    FailurePolicy::FullRollback => PublishState::RolledBack,
                    FailurePolicy::SelectiveQuarantine => {
                        outcome.quarantined_steps = step_ids(&order);
                        PublishState::Quarantined { steps: Vec::new() }
                    }
                    FailurePolicy::PartialCommitNoPublish => PublishState::CommittedNotPublished,
                    FailurePolicy::DegradedPublish => PublishState::Degraded {
                        failed_steps: Vec::new(),
                    },
                };
            }
        }
        SandboxStatus::Partial => {
            let any_ok = !succeeded.is_empty();
            outcome.publish_state = match config.failure_policy {
                FailurePolicy::FullRollback => {
                    outcome.quarantined_steps = step_ids(&order);
                    PublishState::RolledBack
                }
                FailurePolicy::SelectiveQuarantine if any_ok => {
                    outcome.quarantined_steps.clone_from(&failed);
                    PublishState::Quarantined { steps: Vec::new() }
                }
                FailurePolicy::PartialCommitNoPublish => {
                    outcome.quarantined_steps.clone_from(&failed);
                    keep = any_ok;
                    PublishState::CommittedNotPublished
                }
                FailurePolicy::DegradedPublish if any_ok => {
                    outcome.quarantined_steps.clone_from(&failed);
                    outcome.runtime_faults.push(degraded_fault(
                        failed.len() + outcome.skipped_steps.len(),
                        order.len(),
                    ));
                    keep = true;
                    PublishState::Degraded {
                        failed_steps: Vec::new(),
                    }
                }
                FailurePolicy::SelectiveQuarantine | FailurePolicy::DegradedPublish => {
                    PublishState::RolledBack
                }
            };
        }
    }
    if keep {
        match run.commit() {
            Ok(()) => outcome.committed_steps = succeeded,
            Err(e) => {
                outcome
                    .runtime_faults
                    .push(finish_fault("SANDBOX_COMMIT_FAILED", &e));
                outcome.publish_state = PublishState::RolledBack;
            }
        }
    } else if let Err(e) = run.rollback() {
        outcome
            .runtime_faults
            .push(finish_fault("SANDBOX_ROLLBACK_FAILED", &e));
    }
    // The step lists of the final state, now that the commit is known.
    outcome.publish_state =
        match std::mem::replace(&mut outcome.publish_state, PublishState::RolledBack) {
            PublishState::Quarantined { .. } => PublishState::Quarantined {
                steps: outcome.quarantined_steps.clone(),
            },
            PublishState::Degraded { .. } => PublishState::Degraded {
                failed_steps: failed_steps(&outcome.step_results, &outcome.committed_steps),
            },
            other => other,
        };
    Ok(outcome)
}
