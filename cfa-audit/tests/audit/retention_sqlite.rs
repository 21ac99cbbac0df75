//! Anchored retention (drop a prefix, keep verification possible) and SQLite
//! compatibility with databases laid out like the reference's `audit_events` table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use cfa_audit::checkpoint::{create_checkpoint, verify_with_checkpoint};
use cfa_audit::retain::{Anchor, retain_suffix, verify_anchored};
use cfa_audit::verify::BadReason;
use cfa_audit::{
    AuditEvent, AuditStore, AuditTarget, Durability, JsonlStore, NewEvent, SignerKey, SqliteStore,
    VerifyOptions,
};

fn event(i: u64) -> NewEvent {
    NewEvent::new(
        "i",
        "s",
        "e",
        "ok",
        format!("2026-01-01T00:00:{:02}+00:00", i % 60),
    )
    .detail("n", i)
}

#[test]
fn retained_suffix_verifies_from_its_anchor_and_keeps_growing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&log, Durability::Never).unwrap();
    for i in 0..25 {
        store.append(event(i)).unwrap();
    }
    let key = SignerKey::from_seed("retain.test/log", [5; 32]).unwrap();
    let target = AuditTarget::Jsonl(log.clone());
    let (full_cp, full_note) = create_checkpoint(&target, "retain.test/log", &key, false).unwrap();
    let anchor_path = dir.path().join("anchor.json");
    let anchor = retain_suffix(&log, 10, &anchor_path, Some((&key, "retain.test/log"))).unwrap();
    assert_eq!(anchor.size, 10);

    // Plain verification from genesis now fails (the first kept event is not genesis) …
    let plain = cfa_audit::verify_file(&log, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(plain.events, 15);
    assert!(matches!(
        plain.first_bad.unwrap().reason,
        BadReason::LinkBroken { .. }
    ));
    // … and verification from the anchor succeeds, with the full history's Merkle root.
    let anchor = Anchor::parse(&std::fs::read_to_string(&anchor_path).unwrap()).unwrap();
    let opts = VerifyOptions {
        merkle: true,
        ..VerifyOptions::default()
    };
    let r = verify_anchored(&log, &anchor, Some(&key.verifier()), opts.clone()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.tree.as_ref().unwrap().size(), 25);
    assert_eq!(r.tree.as_ref().unwrap().root(), full_cp.root);

    // The log keeps growing after retention, still anchored; the store re-reads the tail.
    store.append(event(25)).unwrap();
    let r = verify_anchored(&log, &anchor, Some(&key.verifier()), opts.clone()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, 16);

    // Tampering with the kept part is still caught.
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replacen("\"n\": 12", "\"n\": 13", 1);
    std::fs::write(&log, text).unwrap();
    let r = verify_anchored(&log, &anchor, Some(&key.verifier()), opts).unwrap();
    assert_eq!(r.first_bad.unwrap().index, 2);

    // A forged anchor (another key) is rejected.
    let other = SignerKey::from_seed("retain.test/log", [6; 32]).unwrap();
    assert!(anchor.chain_start(Some(&other.verifier())).is_err());
    let _ = full_note;
}

#[test]
fn reference_layout_database_verifies_and_tampering_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    // Create the schema and rows the way the reference does (details_json unsorted,
    // json.dumps default separators), from the reference-written chain_1000.
    drop(SqliteStore::open(&db, Durability::Never).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let bytes = common::build_file("chain_1000.jsonl");
    let text = String::from_utf8(bytes).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for line in text.lines() {
        let e = AuditEvent::from_jsonl_line(line).unwrap();
        tx.execute(
            "INSERT INTO audit_events (intent_id, stage, event_type, outcome, policy_bundle_version, \
             details_json, timestamp, event_hash, previous_hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            rusqlite::params![e.intent_id, e.stage, e.event_type, e.outcome, e.policy_bundle_version,
                e.details_json(), e.timestamp, e.event_hash, e.previous_hash],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let store = SqliteStore::open(&db, Durability::Always).unwrap();
    let r = store.verify(&VerifyOptions::default()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, 1000);
    // Our appends continue the reference chain.
    let e = store.append(event(1)).unwrap();
    assert_eq!(e.previous_hash, r.tail_hash);
    // Checkpoints work over SQLite too.
    let key = SignerKey::from_seed("db.test/log", [9; 32]).unwrap();
    let target = AuditTarget::Sqlite(db.clone());
    let (_, note) = create_checkpoint(&target, "db.test/log", &key, false).unwrap();
    let check = verify_with_checkpoint(
        &target,
        &note,
        &key.verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(check.problem.is_none());
    conn.execute(
        "UPDATE audit_events SET outcome = 'block' WHERE id = 538",
        [],
    )
    .unwrap();
    let r = store.verify(&VerifyOptions::default()).unwrap();
    let bad = r.first_bad.unwrap();
    assert_eq!((bad.index, bad.line), (537, 538));
    assert!(matches!(bad.reason, BadReason::HashMismatch { .. }));
    // Deleting the newest rows is invisible to the chain and caught by the checkpoint.
    conn.execute(
        "UPDATE audit_events SET outcome = 'approved' WHERE id = 538",
        [],
    )
    .unwrap();
    let original = AuditEvent::from_jsonl_line(text.lines().nth(537).unwrap()).unwrap();
    conn.execute(
        "UPDATE audit_events SET outcome = ?1 WHERE id = 538",
        [original.outcome],
    )
    .unwrap();
    assert!(store.verify(&VerifyOptions::default()).unwrap().intact());
    conn.execute("DELETE FROM audit_events WHERE id > 990", [])
        .unwrap();
    assert!(store.verify(&VerifyOptions::default()).unwrap().intact());
    let check = verify_with_checkpoint(
        &target,
        &note,
        &key.verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(check.problem.unwrap().contains("events were removed"));
}
