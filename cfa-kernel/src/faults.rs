//! Faults the kernel itself raises when a phase fails (fail closed, docs/architecture.md#fail-closed), and
//! the catalog fault of strict mode (docs/compatibility.md#catalog).

use crate::result::Phase;
use cfa_types::validate::Issue;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};

/// The catalog failed strict validation.
pub const CATALOG_INVALID: &str = "CATALOG_INVALID";
/// The normaliser returned an error or panicked.
pub const NORMALIZER_FAILED: &str = "KERNEL_NORMALIZER_FAILED";
/// The confirmation handler panicked.
pub const CONFIRMATION_FAILED: &str = "KERNEL_CONFIRMATION_FAILED";
/// Policy evaluation panicked (a plugin condition).
pub const POLICY_FAILED: &str = "KERNEL_POLICY_FAILED";
/// A replan's patches could not be applied.
pub const REPLAN_PATCH_FAILED: &str = "KERNEL_REPLAN_PATCH_FAILED";
/// The planner returned an error or panicked.
pub const PLANNER_FAILED: &str = "KERNEL_PLANNER_FAILED";
/// The backend failed to generate or validate code, or panicked.
pub const CODEGEN_FAILED: &str = "KERNEL_CODEGEN_FAILED";
/// The execution phase returned an error or panicked.
pub const EXECUTION_FAILED: &str = "KERNEL_EXECUTION_FAILED";
/// The budget store failed (read or write) while charging a run.
pub const BUDGET_FAILED: &str = "KERNEL_BUDGET_FAILED";
/// An audit event could not be written: nothing unaudited is ever approved.
pub const AUDIT_WRITE_FAILED: &str = "KERNEL_AUDIT_WRITE_FAILED";

/// A critical, blocking fault raised by the kernel for `phase`.
pub fn kernel_fault(code: &str, phase: Phase, message: String, remediation: &str) -> Fault {
    Fault {
        code: code.into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: phase.as_str().into(),
        message: message.into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![remediation].into(),
        detected_before_execution: phase != Phase::Execute,
    }
}

/// `CATALOG_INVALID` with the reference's texts: a fixed first remediation, then the
/// first 5 issues.
pub fn catalog_invalid(issues: &[Issue]) -> Fault {
    let mut remediation =
        vec!["Fix the catalog structure before evaluating governed transitions.".to_owned()];
    remediation.extend(issues.iter().take(5).map(ToString::to_string));
    Fault {
        code: CATALOG_INVALID.into(),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::Critical,
        stage: "catalog_validation".into(),
        message: "Catalog validation failed.".into(),
        mandatory_action: PolicyAction::Block,
        remediation: remediation.into(),
        detected_before_execution: true,
    }
}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs a plugin call, turning a panic into an error message (`panicked: …`).
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|p| format!("panicked: {}", panic_message(p.as_ref())))
}

/// [`guarded`] for a fallible plugin call: a panic or an error both become the
/// error message.
pub fn guarded_try<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    guarded(f).and_then(|res| res.map_err(|e| e.to_string()))
}
