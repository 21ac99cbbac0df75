//! Helpers for users' own tests: decide an intent on a fresh in-memory kernel and
//! assert on the decision and on the real audit chain.

use crate::config::KernelConfig;
use crate::ids::{SequentialIds, TickClock};
use crate::kernel::Kernel;
use crate::result::KernelResult;
use cfa_audit::{AuditStore, MemoryStore, VerifyOptions};
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
