//! `Gate`: run a piece of work only when the kernel approves the intent behind it.

use crate::kernel::Kernel;
use crate::result::KernelResult;
use cfa_types::{DecisionState, Fault};

/// Why a gate refused to run the work. The reason is never empty.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("CFA blocked intent '{intent}' ({state}): {reason}")]
pub struct GateError {
    /// The intent text (first 80 chars).
    pub intent: String,
    /// The final state.
    pub state: DecisionState,
    /// The blocked reason.
    pub reason: String,
    /// Every fault of the decision.
    pub faults: Vec<Fault>,
    /// The whole decision.
    pub result: Box<KernelResult>,
}

/// Wraps a kernel so that work runs only after an executable decision.
///
/// ```
/// use cfa_kernel::{Gate, Kernel, KernelConfig};
/// use cfa_types::Catalog;
///
/// let catalog: serde_json::Value =
///     serde_json::from_str(include_str!("../../examples/catalog.json"))?;
/// let config = KernelConfig::new(cfa_policy::PolicyEngine::default(), Catalog::from_value(&catalog)?);
/// let gate = Gate::new(Kernel::builder(config).build()?);
///
/// let rows = gate.run("Join nfe with clientes daily, anonymize pii, into silver", || 42)?;
/// assert_eq!(rows, 42);
///
/// let mut ran = false;
/// let refused = gate.run("do something with unknown table", || ran = true);
/// assert!(refused.is_err() && !ran, "blocked work never runs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Gate<K = Kernel> {
    kernel: K,
}

impl<K: std::borrow::Borrow<Kernel>> Gate<K> {
    /// A gate over `kernel` (owned, borrowed or in an `Arc`).
    pub fn new(kernel: K) -> Self {
        Gate { kernel }
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        self.kernel.borrow()
    }

    /// Decides `intent`: the decision when it is executable, else a [`GateError`].
    pub fn decide(&self, intent: &str) -> Result<KernelResult, GateError> {
        let result = self.kernel().process(intent);
        if result.is_executable() {
            return Ok(result);
        }
        let reason = if result.blocked_reason.is_empty() {
            format!("the decision is {} and not executable", result.state)
        } else {
            result.blocked_reason.clone()
        };
        Err(GateError {
            intent: intent.chars().take(80).collect(),
            state: result.state,
            reason,
            faults: result.faults.clone(),
            result: Box::new(result),
        })
    }

    /// Decides `intent`; runs `work` only when the decision is executable (approved or
    /// approved with warnings). Otherwise returns a [`GateError`] with the reason and
    /// faults; `work` is not called.
    pub fn run<T>(&self, intent: &str, work: impl FnOnce() -> T) -> Result<T, GateError> {
        self.decide(intent).map(|_| work())
    }

    /// Like [`Gate::run`], passing the decision to `work`.
    pub fn run_with<T>(
        &self,
        intent: &str,
        work: impl FnOnce(&KernelResult) -> T,
    ) -> Result<T, GateError> {
        self.decide(intent).map(|r| work(&r))
    }
}
