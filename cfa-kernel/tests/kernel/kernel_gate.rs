#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `Gate` and the `testing` helpers.

use crate::common;

use cfa_audit::{AuditStore, Durability, JsonlStore};
use cfa_kernel::{Gate, Grounding, Kernel, SequentialIds, testing};
use cfa_types::DecisionState;
use common::*;
use std::cell::Cell;
use std::sync::Arc;

#[test]
fn gate_runs_work_only_for_executable_decisions() {
    let (k, _) = kernel("prod-v1");
    let gate = Gate::new(k);
    assert_eq!(gate.run(APPROVE, || 41 + 1).unwrap(), 42);
    // approved with warnings is executable too, every time (docs/differences.md#b1-lifecycle-never-changes-a-decision: no promotion lock-out)
    for _ in 0..4 {
        assert!(gate.run(REPLAN, || ()).is_ok());
    }
    let called = Cell::new(false);
    let err = gate.run(BLOCK, || called.set(true)).unwrap_err();
    assert!(!called.get());
    assert_eq!(err.state, DecisionState::Blocked);
    assert!(!err.reason.is_empty());
    assert!(
        err.faults
            .iter()
            .any(|f| f.code == "GOVERNANCE_PII_WITHOUT_POLICY")
    );
    assert!(err.to_string().contains("CFA blocked intent"));
    let seen = gate.run_with(REPLAN, |r| r.replan_count).unwrap();
    assert_eq!(seen, 1);
}

#[test]
fn gate_over_a_shared_kernel() {
    let (k, _) = kernel("prod-v1");
    let k = Arc::new(k);
    let gate = Gate::new(Arc::clone(&k));
    let err = gate.run(UNGROUNDED, || ()).unwrap_err();
    assert!(
        err.reason
            .contains("NORMALIZATION_NO_CATALOG_DATASET_MATCH")
    );
}

#[test]
fn testing_helpers_decide_and_check() {
    let ev = testing::evaluate(APPROVE, config("prod-v1")).unwrap();
    testing::assert_approved(&ev.result).unwrap();
    testing::assert_audit_intact(ev.audit.as_ref(), &ev.result).unwrap();
    assert!(testing::assert_blocked_with(&ev.result, "X").is_err());

    let ev = testing::evaluate(BLOCK, config("prod-v1")).unwrap();
    assert!(testing::assert_approved(&ev.result).is_err());
    testing::assert_blocked_with(&ev.result, "GOVERNANCE_PII_WITHOUT_POLICY").unwrap();
    let e = testing::assert_blocked_with(&ev.result, "NOT_THERE").unwrap_err();
    assert!(e.contains("without fault NOT_THERE"));

    let mut bad = config("prod-v1");
    bad.backend = "nope".into();
    assert!(testing::evaluate(APPROVE, bad).is_err());
    let mut lenient = config("prod-v1");
    lenient.grounding = Grounding::Lenient;
    assert!(testing::evaluate(UNGROUNDED, lenient).is_ok());
}

#[test]
fn assert_audit_intact_really_verifies_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let store: Arc<dyn AuditStore> = Arc::new(JsonlStore::open(&path, Durability::Always).unwrap());
    let k = Kernel::builder(config("prod-v1"))
        .audit(store.clone())
        .ids(SequentialIds::new())
        .build()
        .unwrap();
    let r = k.process(APPROVE);
    testing::assert_audit_intact(store.as_ref(), &r).unwrap();
    drop(k);
    drop(store);
    // tamper with one event's outcome in the middle of the chain
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"outcome\": \"approve\"", "\"outcome\": \"block\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&path, tampered).unwrap();
    let reopened = JsonlStore::open(&path, Durability::Always).unwrap();
    let err = testing::assert_audit_intact(&reopened, &r).unwrap_err();
    assert!(err.contains("broken"), "{err}");

    // a result whose events are not in the store is refused too
    let other = JsonlStore::open(dir.path().join("b.jsonl"), Durability::Never).unwrap();
    assert!(testing::assert_audit_intact(&other, &r).is_err());
}
