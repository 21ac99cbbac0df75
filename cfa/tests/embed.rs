#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! An embedder's view: only the `cfa` facade, no internal crate.

use cfa::{
    AuditStore, Catalog, DecisionState, Durability, Gate, JsonlStore, Kernel, KernelConfig,
    MemoryStore, PolicyAction, PolicyEngine, SequentialIds, TickClock, VerifyOptions,
};
use std::cell::Cell;
use std::sync::Arc;

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
const BLOCK: &str = "Join NFe with Clientes and persist to Silver";

fn catalog() -> Catalog {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap();
    Catalog::from_value(&v).unwrap()
}

fn kernel(store: Arc<dyn AuditStore>) -> Kernel {
    let engine = PolicyEngine::builtin("prod-v1").unwrap();
    Kernel::builder(KernelConfig::new(engine, catalog()))
        .audit(store)
        .ids(SequentialIds::new())
        .clock(TickClock::new(1_767_225_600))
        .build()
        .unwrap()
}

#[test]
fn a_decision_through_the_facade() {
    let store = Arc::new(MemoryStore::new());
    let k = kernel(store.clone());
    let ok = k.process(APPROVE);
    assert_eq!(ok.state, DecisionState::Approved);
    assert!(ok.is_executable());
    assert_eq!(
        ok.policy_result.as_ref().map(|p| p.action),
        Some(PolicyAction::Approve)
    );
    let blocked = k.process(BLOCK);
    assert_eq!(blocked.state, DecisionState::Blocked);
    assert!(
        blocked
            .fault_codes()
            .contains(&"GOVERNANCE_PII_WITHOUT_POLICY")
    );
    // Same inputs, same decision and signature hash (ids and clock injected).
    let again = kernel(Arc::new(MemoryStore::new())).process(APPROVE);
    assert_eq!(
        again
            .signature
            .as_ref()
            .map(cfa::StateSignature::signature_hash),
        ok.signature
            .as_ref()
            .map(cfa::StateSignature::signature_hash)
    );
}

#[test]
fn the_gate_refuses_blocked_work() {
    let gate = Gate::new(kernel(Arc::new(MemoryStore::new())));
    assert_eq!(gate.run(APPROVE, || 41 + 1).unwrap(), 42);
    let called = Cell::new(false);
    let err = gate.run(BLOCK, || called.set(true)).unwrap_err();
    assert!(!called.get(), "blocked work must not run");
    assert_eq!(err.state, DecisionState::Blocked);
    assert!(!err.reason.is_empty());
    assert!(err.to_string().contains("CFA blocked intent"));
    assert_eq!(err.result.state, DecisionState::Blocked);
}

#[test]
fn the_audit_chain_verifies_and_tampering_shows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = Arc::new(JsonlStore::open(&path, Durability::Always).unwrap());
    let k = kernel(store.clone());
    let a = k.process(APPROVE);
    let b = k.process(BLOCK);
    let written = (a.audit_event_hashes.len() + b.audit_event_hashes.len()) as u64;
    assert_eq!(store.len().unwrap(), written);

    let report = store.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact());
    assert_eq!(report.events, written);
    assert_eq!(Some(&report.tail_hash), b.audit_event_hashes.last());
    let from_file = cfa::audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(from_file.intact());
    drop(k);
    drop(store);

    // Change one decision in the file: verification must point at it.
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"blocked\"", "\"approved\"", 1);
    assert_ne!(text, tampered, "the log records the blocked decision");
    std::fs::write(&path, tampered).unwrap();
    let report = cfa::audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(!report.intact());
}
