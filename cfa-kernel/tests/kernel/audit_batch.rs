//! The kernel writes a run's audit events in batches: everything decided so far is in
//! the log before the execute slot runs, and a failed pre-execution write means
//! nothing runs and nothing is approved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use cfa_audit::{AuditError, AuditEvent, AuditStore, MemoryStore, NewEvent};
use cfa_audit::{VerifyOptions, VerifyReport};
use cfa_kernel::testing;
use cfa_kernel::{ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, Kernel};
use cfa_types::DecisionState;
use common::*;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Records which event types the log held when execution started.
struct Snooping {
    store: Arc<dyn AuditStore>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ExecutionPhase for Snooping {
    fn name(&self) -> &str {
        "snoop"
    }
    fn execute(&self, _req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        *self.seen.lock().unwrap() = types(self.store.as_ref());
        Ok(ExecutionOutcome::published())
    }
}

#[test]
fn decision_events_reach_the_log_before_execution() {
    let store: Arc<dyn AuditStore> = Arc::new(MemoryStore::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let k = Kernel::builder(config("prod-v1"))
        .audit(store.clone())
        .ids(cfa_kernel::SequentialIds::new())
        .executor(Snooping {
            store: store.clone(),
            seen: seen.clone(),
        })
        .build()
        .unwrap();
    let r = k.process(APPROVE);
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    testing::assert_audit_intact(store.as_ref(), &r).unwrap();
    let before = seen.lock().unwrap().clone();
    assert_eq!(before.last().map(String::as_str), Some("static_validation"));
    assert!(before.contains(&"policy_evaluation".to_owned()));
    let all = types(store.as_ref());
    assert_eq!(all[..before.len()], before[..]);
    assert_eq!(all.last().map(String::as_str), Some("final_decision"));
    assert_eq!(r.audit_event_hashes.len(), all.len());
}

/// A store that refuses every write.
struct Refusing(MemoryStore);

impl AuditStore for Refusing {
    fn append(&self, _event: NewEvent) -> Result<AuditEvent, AuditError> {
        Err(cfa_audit::error::IoError::new(
            "/audit.jsonl",
            "write",
            std::io::Error::other("read-only file system"),
        )
        .into())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        self.0.tail_hash()
    }
    fn len(&self) -> Result<u64, AuditError> {
        self.0.len()
    }
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        self.0.scan(visit)
    }
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        self.0.verify(opts)
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

struct MustNotRun(Arc<AtomicBool>);

impl ExecutionPhase for MustNotRun {
    fn name(&self) -> &str {
        "must-not-run"
    }
    fn execute(&self, _req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        self.0.store(true, Ordering::SeqCst);
        Ok(ExecutionOutcome::published())
    }
}

#[test]
fn unaudited_decisions_never_execute() {
    let ran = Arc::new(AtomicBool::new(false));
    let k = Kernel::builder(config("prod-v1"))
        .audit(Arc::new(Refusing(MemoryStore::new())))
        .ids(cfa_kernel::SequentialIds::new())
        .executor(MustNotRun(ran.clone()))
        .build()
        .unwrap();
    let r = k.process(APPROVE);
    assert!(
        !ran.load(Ordering::SeqCst),
        "executed without an audit trail"
    );
    testing::assert_blocked_with(&r, "KERNEL_AUDIT_WRITE_FAILED").unwrap();
    assert!(r.execution.is_none());
    assert!(r.audit_event_hashes.is_empty());
    assert!(
        r.blocked_reason.contains("read-only"),
        "{}",
        r.blocked_reason
    );
}
