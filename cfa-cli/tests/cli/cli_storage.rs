//! `cfa storage stats|cleanup|vacuum` through the real binary. Cleanup keeps the audit
//! chain verifiable from the anchor it writes, also when run twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use cfa_audit::retain::{Anchor, verify_anchored};
use cfa_audit::verify::VerifyOptions;
use cfa_audit::{AuditStore, Durability, JsonlStore, NewEvent, SqliteStore};
use cfa_lifecycle::{ExecutionRecord, LifecycleDb, time::parse};
use serde_json::Value;
use std::path::Path;

fn cfa() -> Command {
    Command::cargo_bin("cfa").unwrap()
}

fn events(store: &dyn AuditStore) {
    for d in 1..=6 {
        store
            .append(NewEvent::new(
                format!("i-{d}"),
                "policy",
                "decision",
                "approved",
                format!("2026-01-0{d}T00:00:00+00:00"),
            ))
            .unwrap();
    }
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd
        .args(["-f", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn anchor(log: &Path) -> Anchor {
    let mut p = log.as_os_str().to_owned();
    p.push(".anchor.json");
    Anchor::parse(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn location_is_required() {
    for sub in ["stats", "cleanup", "vacuum"] {
        cfa()
            .args(["storage", sub])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("--db"));
    }
    cfa()
        .args(["storage", "stats", "--db", "a.db", "--dir", "x"])
        .assert()
        .code(2);
}

#[test]
fn jsonl_cleanup_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit_main.jsonl");
    events(&JsonlStore::open(&log, Durability::Never).unwrap());
    let exec = dir.path().join("execution_main.jsonl");
    std::fs::write(
        &exec,
        "{\"signature_hash\": \"h\", \"timestamp\": \"2026-01-01T00:00:00+00:00\"}\n\
         {\"signature_hash\": \"h\", \"timestamp\": \"2026-01-09T00:00:00+00:00\"}\n",
    )
    .unwrap();
    let v = json(cfa().args(["storage", "stats", "--dir"]).arg(dir.path()));
    assert_eq!(v["backend"], "jsonl");
    assert_eq!(v["audit_events_count"], 6);
    assert_eq!(v["execution_records_count"], 2);
    assert_eq!(v["oldest_record"], "2026-01-01T00:00:00+00:00");
    assert_eq!(v["newest_record"], "2026-01-06T00:00:00+00:00");

    // A naive --before is UTC (B13): events of Jan 1-3 and one execution record go.
    cfa()
        .args(["storage", "cleanup", "--dir"])
        .arg(dir.path())
        .args(["--before", "2026-01-04T00:00:00"])
        .assert()
        .success()
        .stdout("Cleaned up 4 records before 2026-01-04T00:00:00\n");
    let a = anchor(&log);
    assert_eq!(a.size, 3);
    let r = verify_anchored(&log, &a, None, VerifyOptions::default()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, 3);
    assert_eq!(std::fs::read_to_string(&exec).unwrap().lines().count(), 1);

    // A second cleanup extends the anchor; the rest still verifies.
    let v = json(
        cfa()
            .args(["storage", "cleanup", "--dir"])
            .arg(dir.path())
            .args(["--retention", "1", "--now", "2026-01-07T00:00:00+00:00"]),
    );
    assert_eq!(v["audit_events_removed"], 2);
    assert_eq!(v["execution_records_removed"], 0);
    let a = anchor(&log);
    assert_eq!(a.size, 5);
    let r = verify_anchored(&log, &a, None, VerifyOptions::default()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, 1);

    // Nothing older: nothing removed, anchor unchanged.
    cfa()
        .args(["storage", "cleanup", "--dir"])
        .arg(dir.path())
        .args(["--before", "2026-01-02"])
        .assert()
        .success()
        .stdout("Cleaned up 0 records before 2026-01-02T00:00:00\n");
    assert_eq!(anchor(&log).size, 5);
}

#[test]
fn jsonl_cleanup_refuses_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit_main.jsonl");
    events(&JsonlStore::open(&log, Durability::Never).unwrap());
    let text = std::fs::read_to_string(&log).unwrap().replace("i-5", "i-X");
    std::fs::write(&log, &text).unwrap();
    cfa()
        .args(["storage", "cleanup", "--dir"])
        .arg(dir.path())
        .args(["--before", "2026-01-03"])
        .assert()
        .code(1);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        text,
        "nothing dropped from a broken chain"
    );
}

#[test]
fn sqlite_stats_cleanup_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    events(&SqliteStore::open(&db, Durability::Never).unwrap());
    let life = LifecycleDb::open(&db).unwrap();
    for d in [1, 8] {
        life.execution_append(&ExecutionRecord::new(
            "h",
            parse(&format!("2026-01-0{d}T00:00:00Z")).unwrap(),
        ))
        .unwrap();
    }
    drop(life);
    let v = json(cfa().args(["storage", "stats", "--db"]).arg(&db));
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["audit_events_count"], 6);
    assert_eq!(v["execution_records_count"], 2);
    assert_eq!(v["skill_records_count"], 0);
    assert_eq!(v["oldest_record"], "2026-01-01T00:00:00+00:00");

    let v = json(
        cfa()
            .args(["storage", "cleanup", "--db"])
            .arg(&db)
            .args(["--before", "2026-01-03T00:00:00Z"]),
    );
    assert_eq!(v["audit_events_removed"], 2);
    assert_eq!(v["execution_records_removed"], 1);
    assert_eq!(v["removed"], 3);
    let check = |size: u64, remaining: u64| {
        let a = anchor(&db);
        assert_eq!(a.size, size);
        let opts = VerifyOptions {
            start: Some(a.chain_start(None).unwrap()),
            ..VerifyOptions::default()
        };
        let r = SqliteStore::open_existing(&db)
            .unwrap()
            .verify(&opts)
            .unwrap();
        assert!(r.intact(), "{:?}", r.first_bad);
        assert_eq!(r.events, remaining);
        // Without the anchor the cut is visible.
        let plain = SqliteStore::open_existing(&db)
            .unwrap()
            .verify(&VerifyOptions::default())
            .unwrap();
        assert!(!plain.intact());
    };
    check(2, 4);
    let v = json(
        cfa()
            .args(["storage", "cleanup", "--db"])
            .arg(&db)
            .args(["--before", "2026-01-05"]),
    );
    assert_eq!(v["audit_events_removed"], 2);
    check(4, 2);
    // New events still chain onto the kept suffix.
    SqliteStore::open_existing(&db)
        .unwrap()
        .append(NewEvent::new(
            "i-7",
            "policy",
            "decision",
            "approved",
            "2026-01-07T00:00:00+00:00",
        ))
        .unwrap();
    check(4, 3);

    cfa()
        .args(["storage", "vacuum", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(format!("Vacuumed {}\n", db.display()));
    cfa()
        .args(["storage", "stats", "--db"])
        .arg(dir.path().join("missing.db"))
        .assert()
        .code(1);
}

#[test]
fn cleanup_retention_comes_from_the_config_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let log = data.join("audit_main.jsonl");
    events(&JsonlStore::open(&log, Durability::Never).unwrap());
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: data/audit_main.jsonl\n  retention_days: 2\n",
    )
    .unwrap();
    // Two days before Jan 7: the events of Jan 1-4 go, and the chain still verifies.
    let v = json(
        cfa()
            .current_dir(dir.path())
            .args(["storage", "cleanup", "--dir", "data"])
            .args(["--now", "2026-01-07T00:00:00+00:00"]),
    );
    assert_eq!(v["audit_events_removed"], 4);
    assert_eq!(v["before"], "2026-01-05T00:00:00+00:00");
    let a = anchor(&log);
    let r = verify_anchored(&log, &a, None, VerifyOptions::default()).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, 2);
    // The flag beats the config.
    let v = json(
        cfa()
            .current_dir(dir.path())
            .args(["storage", "cleanup", "--dir", "data", "--retention", "1"])
            .args(["--now", "2026-01-07T00:00:00+00:00"]),
    );
    assert_eq!(v["audit_events_removed"], 1);
    // A config that says something impossible is an error that removes nothing.
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  retention_days: soon\n",
    )
    .unwrap();
    cfa()
        .current_dir(dir.path())
        .args(["storage", "cleanup", "--dir", "data"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("retention_days"));
    assert_eq!(anchor(&log).size, 5);
}
