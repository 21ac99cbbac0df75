//! The `panic` sandbox: another sandbox (the mock by default) except that one chosen step
//! is interrupted by an environmental fault (`ENVIRONMENTAL_PANIC`, critical) — before
//! it runs, or after it ran (`after_step`, e.g. a node lost after a real write, to prove
//! the write is rolled back).
//!
//! It always interrupts something: the registry's default step (`extract_nfe`, the
//! reference's) stands in for "the plan's first step" when the plan has no step of
//! that name, and a step named on purpose that the plan lacks fails the run at its
//! start instead of letting it publish.

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
    /// When the plan has no `panic_on_step`, interrupt the plan's first step (the
    /// default step); when false, a missing step fails the run as it begins.
    pub first_step_when_absent: bool,
    /// The sandbox that runs every step (the mock by default).
    pub inner: Box<dyn Sandbox>,
}

impl std::fmt::Debug for PanicSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanicSandbox")
            .field("panic_on_step", &self.panic_on_step)
            .field("panic_reason", &self.panic_reason)
            .field("after_step", &self.after_step)
            .field("first_step_when_absent", &self.first_step_when_absent)
            .field("inner", &self.inner.name())
            .finish()
    }
}

impl Default for PanicSandbox {
    /// The registry's factory: panics on `extract_nfe` with `cluster_node_lost`, or
    /// on the plan's first step when it has no `extract_nfe`.
    fn default() -> Self {
        let mut p = PanicSandbox::new("extract_nfe", "cluster_node_lost");
        p.first_step_when_absent = true;
        p
    }
}

impl PanicSandbox {
    /// Panics on `step` with `reason`.
    pub fn new(step: &str, reason: &str) -> Self {
        PanicSandbox {
            panic_on_step: step.to_owned(),
            panic_reason: reason.to_owned(),
            after_step: false,
            first_step_when_absent: false,
            inner: Box::new(MockSandbox::default()),
        }
    }

    /// Panics on `step` of `inner`, after the step ran.
    pub fn after_step_of(inner: Box<dyn Sandbox>, step: &str, reason: &str) -> Self {
        PanicSandbox {
            panic_on_step: step.to_owned(),
            panic_reason: reason.to_owned(),
            after_step: true,
            first_step_when_absent: false,
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
        message: format!("Environmental panic during step '{step}': {reason}").into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec!["Check the execution environment and re-run the intent"].into(),
        detected_before_execution: false,
    }
}

struct PanicRun<'a> {
    after: bool,
    step: String,
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
        let step = if ctx.plan.step(&self.panic_on_step).is_some() {
            self.panic_on_step.clone()
        } else if let Some(first) = ctx
            .plan
            .steps
            .first()
            .filter(|_| self.first_step_when_absent)
        {
            first.id.clone()
        } else {
            let steps: Vec<&str> = ctx.plan.steps.iter().map(|s| s.id.as_str()).collect();
            return Err(SandboxError::failure(
                "panic",
                "begin",
                format!(
                    "the step to interrupt, '{}', is not in the plan (steps: {})",
                    self.panic_on_step,
                    steps.join(", ")
                ),
            ));
        };
        Ok(Box::new(PanicRun {
            after: self.after_step,
            step,
            reason: &self.panic_reason,
            inner: self.inner.begin(ctx)?,
        }))
    }
}
