#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa evaluate` runs the execute, validate and state phases through the real binary:
//! mock sandbox by default, failure policies, exit 5 for unpublished runs (B2, B6), the
//! lifecycle database (`--db`), skill state beside an unchanged decision (B1) and the
//! target lease held by another process (I8).

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn catalog() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/catalog.json")
        .to_str()
        .unwrap()
        .to_owned()
}

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    // `mock → rolled_back` below is the Unicode form; stdout is a pipe here, which
    // would otherwise select the ASCII fallback (docs/cli.md#symbols-and-colour).
    c.env("CFA_UNICODE", "1");
    c
}

/// Runs `cfa evaluate APPROVE -c catalog -f json EXTRA…`, returns (exit code, JSON).
fn eval_json(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let c = catalog();
    let mut args = vec!["evaluate", APPROVE, "-c", c.as_str(), "-f", "json"];
    args.extend_from_slice(extra);
    let out = cfa(dir).args(&args).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn phases(v: &Value) -> Vec<&str> {
    v["phases_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

fn audit_events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn default_evaluate_runs_all_five_phases_on_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = eval_json(dir.path(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(
        phases(&v),
        ["formalize", "govern", "generate", "execute", "validate"]
    );
    assert_eq!(v["execution"]["executor"], "mock");
    assert_eq!(v["execution"]["publish_state"], "published");
    assert_eq!(v["execution"]["details"]["metrics"]["rows_output"], 100_000);
    // No lifecycle database: reported, but no skill evaluated.
    assert!(v["lifecycle"]["skill_state"].is_null());

    // --sandbox none stops after static validation, and says why.
    let (code, v) = eval_json(dir.path(), &["--sandbox", "none"]);
    assert_eq!(code, 0);
    assert!(!phases(&v).contains(&"execute"));
    assert_eq!(v["phases_skipped"][0]["phase"], "execute");
    assert!(v["execution"].is_null());
}

#[test]
fn failing_load_step_under_full_rollback_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = eval_json(
        dir.path(),
        &[
            "--mock-fail-step",
            "load_target",
            "--failure-policy",
            "full_rollback",
        ],
    );
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["state"], "rolled_back");
    assert_eq!(v["execution"]["publish_state"], "rolled_back");
    assert_eq!(v["blocked_reason"], "Execution rolled back.");

    let (code, v) = eval_json(
        dir.path(),
        &[
            "--mock-fail-step",
            "load_target",
            "--failure-policy",
            "degraded_publish",
        ],
    );
    // B6: degraded is its own final state, exit 5.
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["state"], "degraded");

    let (code, v) = eval_json(dir.path(), &["--sandbox", "panic"]);
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["state"], "rolled_back");
    let codes: Vec<&str> = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"ENVIRONMENTAL_PANIC"), "{codes:?}");

    // The table shows the execution outcome.
    let c = catalog();
    let out = cfa(dir.path())
        .args([
            "evaluate",
            APPROVE,
            "-c",
            c.as_str(),
            "--mock-fail-step",
            "load_target",
            "--failure-policy",
            "full_rollback",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Execute: mock → rolled_back"), "{text}");
}

#[test]
fn db_records_executions_and_skill_promotion_never_changes_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("life.db");
    let db_s = db.to_str().unwrap();
    let mut skills = Vec::new();
    for _ in 0..4 {
        let (code, v) = eval_json(dir.path(), &["--db", db_s]);
        // B1: approved and executable on every run, whatever the skill state.
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["state"], "approved");
        assert_eq!(
            v["lifecycle"]["skill_state"],
            v["execution"]["details"]["lifecycle"]["skill_state"]
        );
        skills.push(v["lifecycle"]["skill_state"].as_str().unwrap().to_owned());
    }
    assert_eq!(skills[0], "candidate");
    assert_eq!(skills[3], "active", "{skills:?}");

    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM execution_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
    let state: String = conn
        .query_row("SELECT state FROM skill_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "active");
    // Every lease was released.
    let leases: i64 = conn
        .query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leases, 0);

    let c = catalog();
    let out = cfa(dir.path())
        .args([
            "evaluate",
            APPROVE,
            "-c",
            c.as_str(),
            "--db",
            db_s,
            "-f",
            "summary",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Skill:  active"), "{text}");
}

#[test]
fn a_lease_held_by_another_process_blocks_with_state_target_leased() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("same.db");
    let db_s = db.to_str().unwrap();
    let log = dir.path().join("audit.jsonl");
    let log_s = log.to_str().unwrap();

    // Process A runs and learns the target from its state_projected event.
    let (code, _) = eval_json(
        dir.path(),
        &[
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--lease-holder",
            "proc-a",
        ],
    );
    assert_eq!(code, 0);
    let target = audit_events(&log)
        .into_iter()
        .find(|e| e["event_type"] == "state_projected")
        .unwrap()["details"]["target_scope"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // Another process (this test) takes the target's lease.
    let life = cfa_lifecycle::LifecycleDb::open(&db).unwrap();
    life.acquire_lease(&target, "proc-a", jiff::Timestamp::now(), 3600)
        .unwrap();

    // Process B is blocked with STATE_TARGET_LEASED, and that is audited.
    let (code, v) = eval_json(
        dir.path(),
        &[
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--lease-holder",
            "proc-b",
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["state"], "blocked");
    assert_eq!(v["faults"][0]["code"], "STATE_TARGET_LEASED");
    assert_eq!(v["execution"]["details"]["executed"], false);
    assert_eq!(v["execution"]["details"]["lease_holder"], "proc-a");
    let events = audit_events(&log);
    let last = events.last().unwrap();
    assert_eq!(last["event_type"], "final_decision");
    assert_eq!(last["outcome"], "blocked");
    assert_eq!(last["details"]["faults"][0], "STATE_TARGET_LEASED");

    // The lease holder itself may still write the target; the chain stays intact.
    let (code, v) = eval_json(
        dir.path(),
        &[
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--lease-holder",
            "proc-a",
        ],
    );
    assert_eq!(code, 0, "{v}");
    cfa(dir.path())
        .args(["audit", "verify", "--file", log_s])
        .assert()
        .code(0);
    assert_eq!(life.lease(&target).unwrap(), None);
}

#[test]
fn two_processes_racing_for_one_target_one_runs_one_is_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("same.db");
    let log = dir.path().join("audit.jsonl");
    // Create the schema once, before the race.
    drop(cfa_lifecycle::LifecycleDb::open(&db).unwrap());
    let c = catalog();
    let spawn = |holder: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"))
            .current_dir(dir.path())
            .args([
                "evaluate",
                APPROVE,
                "-c",
                c.as_str(),
                "-f",
                "json",
                "--db",
                db.to_str().unwrap(),
                "--audit-log",
                log.to_str().unwrap(),
                "--lease-holder",
                holder,
                // Each run holds the lease for a while, so the other one finds it held.
                "--mock-delay-ms",
                "1500",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("proc-a"), spawn("proc-b"));
    let mut results: Vec<(i32, Value)> = [a, b]
        .into_iter()
        .map(|p| {
            let out = p.wait_with_output().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            (out.status.code().unwrap(), v)
        })
        .collect();
    results.sort_by_key(|(code, _)| *code);
    assert_eq!(results[0].0, 0, "{}", results[0].1);
    assert_eq!(results[0].1["state"], "approved");
    assert_eq!(results[1].0, 4, "{}", results[1].1);
    assert_eq!(results[1].1["state"], "blocked");
    assert_eq!(results[1].1["faults"][0]["code"], "STATE_TARGET_LEASED");

    // Both decisions are in the one audit log, and its chain is intact.
    let finals: Vec<String> = audit_events(&log)
        .into_iter()
        .filter(|e| e["event_type"] == "final_decision")
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = finals.clone();
    sorted.sort();
    assert_eq!(sorted, ["approved", "blocked"], "{finals:?}");
    cfa(dir.path())
        .args(["audit", "verify", "--file", log.to_str().unwrap()])
        .assert()
        .code(0);
    // One execution recorded, and the lease was released.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM execution_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let leases: i64 = conn
        .query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leases, 0);
}

#[test]
fn the_config_sqlite_storage_is_the_default_lifecycle_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(catalog(), dir.path().join("catalog.json")).unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: sqlite\n  path: state/cfa.db\ndefaults:\n  catalog: catalog.json\n",
    )
    .unwrap();
    for _ in 0..2 {
        let out = cfa(dir.path())
            .args(["evaluate", APPROVE, "-f", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["lifecycle"]["skill_state"], "candidate");
    }
    let conn = rusqlite::Connection::open(dir.path().join("state/cfa.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM execution_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    // The audit events went to the same database.
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    assert!(events >= 20, "{events}");
}
