//! Helpers for users' own tests: decide an intent on a fresh in-memory kernel, assert
//! on the decision and on the real audit chain, run approved work on the mock sandbox,
//! and read the process's resident memory for soak tests.

use crate::config::KernelConfig;
use crate::ids::{SequentialIds, TickClock};
use crate::kernel::Kernel;
use crate::result::KernelResult;
use cfa_audit::{AuditStore, MemoryStore, VerifyOptions};
use cfa_lifecycle::{
    ExecutionClock, ExecutionService, LifecycleExecution, PromotionEngine, PromotionPolicy,
    StateStore,
};
use cfa_sandbox::{ExecutionConfig, SandboxError, SandboxOptions, SandboxRegistry};
use cfa_types::DecisionState;
use std::sync::Arc;

/// A decision together with the store its audit events went to.
#[derive(Debug)]
pub struct Evaluation {
    /// The decision.
    pub result: KernelResult,
    /// The in-memory audit store of the fresh kernel.
    pub audit: Arc<MemoryStore>,
}

/// Decides `intent` on a fresh kernel built from `config` (in-memory audit store,
/// sequential ids, a deterministic clock, no execution phase). Returns the decision,
/// or the kernel build error's message.
pub fn evaluate(intent: &str, config: KernelConfig) -> Result<Evaluation, String> {
    let audit = Arc::new(MemoryStore::new());
    let store: Arc<dyn AuditStore> = audit.clone();
    let kernel = Kernel::builder(config)
        .audit(store)
        .ids(SequentialIds::new())
        .clock(TickClock::new(1_767_225_600))
        .build()
        .map_err(|e| e.to_string())?;
    let result = kernel.process(intent);
    Ok(Evaluation { result, audit })
}

/// Checks that `result` is executable (approved or approved with warnings).
pub fn assert_approved(result: &KernelResult) -> Result<(), String> {
    if result.is_executable() {
        Ok(())
    } else {
        Err(format!(
            "expected an approved decision, got {} ({}); faults: {:?}",
            result.state,
            result.blocked_reason,
            result.fault_codes()
        ))
    }
}

/// Checks that `result` is blocked and carries the fault `code`.
pub fn assert_blocked_with(result: &KernelResult, code: &str) -> Result<(), String> {
    if result.state != DecisionState::Blocked {
        return Err(format!("expected a blocked decision, got {}", result.state));
    }
    if result.fault_codes().contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "blocked ({}), but without fault {code}; faults: {:?}",
            result.blocked_reason,
            result.fault_codes()
        ))
    }
}

/// Verifies the whole chain of `store` (every hash and link), and that every event
/// hash of `result` is in it, in order.
pub fn assert_audit_intact(store: &dyn AuditStore, result: &KernelResult) -> Result<(), String> {
    let report = store
        .verify(&VerifyOptions::default())
        .map_err(|e| format!("audit chain could not be read: {e}"))?;
    if let Some(bad) = report.first_bad {
        return Err(format!(
            "audit chain broken at event {}: {}",
            bad.index, bad.reason
        ));
    }
    let mut wanted = result.audit_event_hashes.iter().peekable();
    store
        .scan(&mut |ev| {
            if wanted.peek().is_some_and(|h| **h == ev.event_hash) {
                wanted.next();
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| format!("audit chain could not be read: {e}"))?;
    match wanted.next() {
        None if !result.audit_event_hashes.is_empty() => Ok(()),
        None => Err("the decision recorded no audit event".to_owned()),
        Some(h) => Err(format!(
            "audit event {h} of the decision is not in the chain"
        )),
    }
}

/// An execution phase on the built-in `mock` sandbox (default execution config: runtime
/// validation, selective quarantine, three attempts) that projects into `store`, with no
/// lifecycle database (no leases, no skills) and every record stamped 2026-01-01T00:00:00Z.
pub fn mock_execution(store: Arc<dyn StateStore>) -> Result<LifecycleExecution, SandboxError> {
    let mut service = ExecutionService::new(
        SandboxRegistry::with_builtins().create("mock", &SandboxOptions::default())?,
        ExecutionConfig::default(),
        store,
    );
    service.engine = PromotionEngine::new(PromotionPolicy::default(), "testing");
    "testing".clone_into(&mut service.holder);
    let at = jiff::Timestamp::from_second(1_767_225_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let clock: ExecutionClock = Box::new(move || at);
    Ok(LifecycleExecution::new(service, clock))
}

/// The process's resident set size in kB (`VmRSS` of `/proc/self/status`); `None` where
/// procfs is not available.
pub fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
