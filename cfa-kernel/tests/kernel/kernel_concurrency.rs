#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! One kernel shared by many threads: every decision correct, one verifiable chain.

use crate::common;

use cfa_audit::{AuditStore, Durability, JsonlStore, VerifyOptions};
use cfa_kernel::{Kernel, SequentialIds, TickClock};
use cfa_types::DecisionState;
use common::*;
use std::sync::Arc;

#[test]
fn kernel_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kernel>();
    assert_send_sync::<cfa_kernel::Gate<Arc<Kernel>>>();
}

#[test]
fn eight_threads_share_one_kernel_and_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store: Arc<dyn AuditStore> = Arc::new(JsonlStore::open(&path, Durability::Never).unwrap());
    let kernel = Arc::new(
        Kernel::builder(config("prod-v1"))
            .audit(store.clone())
            .ids(SequentialIds::new())
            .clock(TickClock::new(1_767_225_600))
            .build()
            .unwrap(),
    );
    let intents = [
        (APPROVE, DecisionState::Approved),
        (REPLAN, DecisionState::ApprovedWithWarnings),
        (BLOCK, DecisionState::Blocked),
        (UNGROUNDED, DecisionState::Blocked),
    ];
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let kernel = Arc::clone(&kernel);
            std::thread::spawn(move || {
                let mut events = 0usize;
                let mut ids = Vec::new();
                for i in 0..200 {
                    let (intent, want) = intents[(t + i) % intents.len()];
                    let r = kernel.process(intent);
                    assert_eq!(r.state, want, "{intent}: {}", r.blocked_reason);
                    assert!(!r.audit_event_hashes.is_empty());
                    events += r.audit_event_hashes.len();
                    ids.push(r.intent_id);
                }
                (events, ids)
            })
        })
        .collect();
    let mut total = 0;
    let mut all_ids = Vec::new();
    for h in handles {
        let (e, ids) = h.join().unwrap();
        total += e;
        all_ids.extend(ids);
    }
    all_ids.sort();
    all_ids.dedup();
    assert_eq!(all_ids.len(), 1600, "intent ids must be unique");
    store.flush().unwrap();
    assert_eq!(store.len().unwrap(), total as u64);
    let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, total as u64);
}
