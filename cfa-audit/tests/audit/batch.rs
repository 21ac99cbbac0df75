//! `append_batch`: one write per batch, yet the same chain as event-by-event appends,
//! in every store; the JSONL tail cache notices other writers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::{
    AuditEvent, AuditStore, Durability, JsonlStore, MemoryStore, NewEvent, SqliteStore,
    VerifyOptions,
};

fn events(run: usize, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            NewEvent::new(
                format!("intent-{run}"),
                "formalize",
                format!("step_{i}"),
                "ok",
                format!("2026-01-01T00:00:{i:02}+00:00"),
            )
            .detail("i", i as u64)
        })
        .collect()
}

fn hashes(v: &[AuditEvent]) -> Vec<String> {
    v.iter().map(|e| e.event_hash.clone()).collect()
}

/// Appends 3 batches of 4 events, returns the sealed events.
fn batched(store: &dyn AuditStore) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    for run in 0..3 {
        store.append_batch(events(run, 4), &mut out).unwrap();
    }
    out
}

fn one_by_one(store: &dyn AuditStore) -> Vec<AuditEvent> {
    (0..3)
        .flat_map(|run| events(run, 4))
        .map(|e| store.append(e).unwrap())
        .collect()
}

#[test]
fn batches_chain_exactly_like_single_appends_in_every_store() {
    let reference = hashes(&one_by_one(&MemoryStore::new()));
    assert_eq!(reference.len(), 12);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = JsonlStore::open(dir.path().join("a.jsonl"), Durability::Always).unwrap();
    let sqlite = SqliteStore::open(dir.path().join("a.db"), Durability::Always).unwrap();
    let mem = MemoryStore::new();
    for store in [&jsonl as &dyn AuditStore, &sqlite, &mem] {
        let got = batched(store);
        assert_eq!(hashes(&got), reference);
        assert_eq!(store.len().unwrap(), 12);
        assert_eq!(store.tail_hash().unwrap(), reference[11]);
        assert!(store.verify(&VerifyOptions::default()).unwrap().intact());
    }
    // An empty batch writes nothing.
    let mut out = Vec::new();
    jsonl.append_batch(Vec::new(), &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(jsonl.len().unwrap(), 12);
}

#[test]
fn jsonl_tail_cache_sees_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.jsonl");
    let a = JsonlStore::open(&path, Durability::Never).unwrap();
    let b = JsonlStore::open(&path, Durability::Never).unwrap();
    let mut out = Vec::new();
    for run in 0..6 {
        let store = if run % 3 == 0 { &b } else { &a };
        store.append_batch(events(run, 3), &mut out).unwrap();
    }
    // An append by a third party (a raw line from another tool) is chained after too.
    let c = JsonlStore::open(&path, Durability::Never).unwrap();
    let extra = c.append(events(9, 1).remove(0)).unwrap();
    let last = a.append(events(10, 1).remove(0)).unwrap();
    assert_eq!(last.previous_hash, extra.event_hash);
    assert_eq!(out[3].previous_hash, out[2].event_hash);
    let report = a.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, 20);
}
