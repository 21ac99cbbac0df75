//! The `panic` sandbox: another sandbox (the mock by default) except that one chosen step
//! is interrupted by an environmental fault (`ENVIRONMENTAL_PANIC`, critical) — before
//! it runs, or after it ran (`after_step`, e.g. a node lost after a real write, to prove
//! the write is rolled back).

use crate::error::SandboxError;
use crate::mock::MockSandbox;
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus};
use cfa_plan::PlanStep;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};

/// The panic sandbox.
pub struct PanicSandbox {
    /// The step that is interrupted.
    pub panic_on_step: String,
    /// Why (`cluster_node_lost`).
    pub panic_reason: String,
    /// Interrupt after the step ran (its effects exist) instead of before.
    pub after_step: bool,
    /// The sandbox that runs every step (the mock by default).
    pub inner: Box<dyn Sandbox>,
}

impl std::fmt::Debug for PanicSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanicSandbox")
            .field("panic_on_step", &self.panic_on_step)
            .field("panic_reason", &self.panic_reason)
            .field("after_step", &self.after_step)
            .field("inner", &self.inner.name())
            .finish()
    }
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
            after_step: false,
            inner: Box::new(MockSandbox::default()),
        }
    }

    /// Panics on `step` of `inner`, after the step ran.
    pub fn after_step_of(inner: Box<dyn Sandbox>, step: &str, reason: &str) -> Self {
        PanicSandbox {
            panic_on_step: step.to_owned(),
            panic_reason: reason.to_owned(),
            after_step: true,
            inner,
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
    after: bool,
    step: &'a str,
    reason: &'a str,
    inner: Box<dyn SandboxRun + 'a>,
}

impl SandboxRun for PanicRun<'_> {
    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult {
        if step.id == self.step {
            if self.after {
                let _ran = self.inner.execute_step(step, attempt);
            }
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
            after: self.after_step,
            step: &self.panic_on_step,
            reason: &self.panic_reason,
            inner: self.inner.begin(ctx)?,
        }))
    }
}
