//! The `panic` sandbox: the mock, except that one chosen step is interrupted by an
//! environmental fault (`ENVIRONMENTAL_PANIC`, critical).

use crate::error::SandboxError;
use crate::mock::MockSandbox;
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus};
use cfa_plan::PlanStep;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};

/// The panic sandbox.
#[derive(Debug, Clone)]
pub struct PanicSandbox {
    /// The step that is interrupted.
    pub panic_on_step: String,
    /// Why (`cluster_node_lost`).
    pub panic_reason: String,
    /// The mock used for every other step.
    pub inner: MockSandbox,
}

impl Default for PanicSandbox {
    /// The registry's factory: panics on `extract_nfe` with `cluster_node_lost`.
    fn default() -> Self {
        PanicSandbox::new("extract_nfe", "cluster_node_lost")
    }
}

impl PanicSandbox {
    /// Panics on `step` with `reason`.
    pub fn new(step: &str, reason: &str) -> Self {
        PanicSandbox {
            panic_on_step: step.to_owned(),
            panic_reason: reason.to_owned(),
            inner: MockSandbox::default(),
        }
    }
}

/// `ENVIRONMENTAL_PANIC` naming the step and the reason.
fn panic_fault(step: &str, reason: &str) -> Fault {
    Fault {
        code: "ENVIRONMENTAL_PANIC".into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: "sandbox".into(),
        message: format!("Environmental panic during step '{step}': {reason}"),
        mandatory_action: PolicyAction::Block,
        remediation: vec!["Check the execution environment and re-run the intent".into()],
        detected_before_execution: false,
    }
}

struct PanicRun<'a> {
    step: &'a str,
    reason: &'a str,
    inner: Box<dyn SandboxRun + 'a>,
}

impl SandboxRun for PanicRun<'_> {
    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult {
        if step.id == self.step {
            return StepResult::failed(
                &step.id,
                StepStatus::Interrupted,
                panic_fault(&step.id, self.reason),
                attempt,
            );
        }
        self.inner.execute_step(step, attempt)
    }

    fn commit(self: Box<Self>) -> Result<(), SandboxError> {
        self.inner.commit()
    }

    fn rollback(self: Box<Self>) -> Result<(), SandboxError> {
        self.inner.rollback()
    }
}

impl Sandbox for PanicSandbox {
    fn name(&self) -> &str {
        "panic"
    }

    fn check_environment(&self) -> Vec<Fault> {
        Vec::new()
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        Ok(Box::new(PanicRun {
            step: &self.panic_on_step,
            reason: &self.panic_reason,
            inner: self.inner.begin(ctx)?,
        }))
    }
}
