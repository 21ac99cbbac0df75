//! The [`Sandbox`] trait: a plugin that opens one run ([`SandboxRun`]) per execution,
//! executes steps one at a time (so partial execution and retries work per step), and
//! commits or rolls the run back as a whole.

use crate::error::SandboxError;
use crate::metrics::StepMetrics;
use cfa_codegen::GeneratedArtifact;
use cfa_plan::{ExecutionPlan, PlanStep};
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction, StateSignature};
use serde::{Deserialize, Serialize};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed (retryable).
    Failed,
    /// The environment failed under it (panic: not retried).
    Interrupted,
}

/// The result of one step attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Step id.
    pub step_id: String,
    /// How it ended.
    pub status: StepStatus,
    /// What it measured (zero when it did not succeed).
    pub metrics: StepMetrics,
    /// Why it failed, when it did.
    pub fault: Option<Fault>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl StepResult {
    /// A succeeded step.
    pub fn succeeded(step_id: &str, metrics: StepMetrics, attempt: u32) -> Self {
        StepResult {
            step_id: step_id.to_owned(),
            status: StepStatus::Succeeded,
            metrics,
            fault: None,
            attempt,
        }
    }

    /// A failed (or interrupted) step.
    pub fn failed(step_id: &str, status: StepStatus, fault: Fault, attempt: u32) -> Self {
        StepResult {
            step_id: step_id.to_owned(),
            status,
            metrics: StepMetrics::default(),
            fault: Some(fault),
            attempt,
        }
    }
}

/// `RUNTIME_STEP_FAILED` (high, runtime family, stage `sandbox`), naming the step.
pub fn step_failed_fault(step_id: &str, reason: &str) -> Fault {
    Fault {
        code: "RUNTIME_STEP_FAILED".into(),
        family: FaultFamily::RuntimeBehavioral,
        severity: FaultSeverity::High,
        stage: "sandbox".into(),
        message: format!("Step '{step_id}' failed: {reason}").into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![format!(
            "Inspect the failure of step '{step_id}' and re-run the intent"
        )]
        .into(),
        detected_before_execution: false,
    }
}

/// Everything a sandbox may need about the run.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The plan.
    pub plan: &'a ExecutionPlan,
    /// The generated artifact (required by real engines such as `postgres`).
    pub artifact: Option<&'a GeneratedArtifact>,
    /// The approved signature.
    pub signature: &'a StateSignature,
}

/// One open run of a sandbox (for a transactional engine: one open transaction).
pub trait SandboxRun {
    /// Environment faults right now (checked before every step); empty when healthy.
    fn check_environment(&mut self) -> Vec<Fault> {
        Vec::new()
    }
    /// Executes one step; `attempt` is 1 for the first try. Never panics: failures are
    /// returned as a failed or interrupted [`StepResult`].
    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult;
    /// Makes the run's effects durable.
    fn commit(self: Box<Self>) -> Result<(), SandboxError>;
    /// Discards every effect of the run.
    fn rollback(self: Box<Self>) -> Result<(), SandboxError>;
}

/// An execution engine plugin.
pub trait Sandbox: Send + Sync {
    /// Registry name.
    fn name(&self) -> &str;
    /// Environment faults before anything starts; empty when healthy.
    fn check_environment(&self) -> Vec<Fault>;
    /// Opens a run for `ctx` (for `postgres`: `BEGIN`).
    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError>;
}
