//! `cfa lifecycle evaluate|list` through the real binary, against hand-computed indices.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use cfa_lifecycle::{ExecutionRecord, LifecycleDb, time::parse};
use serde_json::Value;

const H: &str = "0123456789abcdef0123456789abcdef";
const D: &str = "fedcba9876543210fedcba9876543210";

fn cfa() -> Command {
    Command::cargo_bin("cfa").unwrap()
}

/// Runs `cmd`, which must succeed, and parses its stdout as JSON.
fn stdout_json(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap()
}

fn seed(path: &std::path::Path) {
    let db = LifecycleDb::open(path).unwrap();
    for d in 1..=4 {
        let ts = parse(&format!("2026-01-0{d}T10:00:00Z")).unwrap();
        db.execution_append(&ExecutionRecord {
            duration_seconds: 12.5,
            cost_dbu: 5.0,
            ..ExecutionRecord::new(H, ts)
        })
        .unwrap();
        // A drifting skill: half of its runs replanned.
        db.execution_append(&ExecutionRecord {
            replanned: d % 2 == 0,
            ..ExecutionRecord::new(D, ts)
        })
        .unwrap();
    }
}

#[test]
fn evaluate_promotes_and_flags_drift() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    seed(&db);
    let out = cfa()
        .args(["lifecycle", "evaluate", "--db"])
        .arg(&db)
        .args(["--window", "30", "--now", "2026-01-05T00:00:00"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "Lifecycle evaluation (2 skills, 30d window):\n\
         \x20 0123456789ab  state=active  IFo=0.86 IFs=1.00 IFg=1.00 IDI=1.00  execs=4 [PROMOTE]\n\
         \x20 fedcba987654  state=candidate  IFo=1.00 IFs=0.50 IFg=1.00 IDI=0.50  execs=4 [DRIFT]\n"
    );
    // The promotion was persisted; list shows the transition.
    let out = cfa()
        .args(["lifecycle", "list", "--db"])
        .arg(&db)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("Lifecycle skills (2):\n"), "{text}");
    assert!(
        text.contains("  0123456789ab  state=active  transitions=1  Promotion gate passed\n"),
        "{text}"
    );
    assert!(
        text.contains("  fedcba987654  state=candidate  transitions=0  \n"),
        "{text}"
    );

    // JSON, rounded to 3 decimals; a narrow window sees fewer executions.
    let v = stdout_json(
        cfa()
            .args(["lifecycle", "evaluate", "--db"])
            .arg(&db)
            .args([
                "--window",
                "2",
                "--now",
                "2026-01-05T00:00:00Z",
                "-f",
                "json",
            ]),
    );
    assert_eq!(v["window_days"], 2);
    let s = &v["skills"][0];
    assert_eq!(s["signature_hash"], H);
    assert_eq!(s["ifo"], 0.863);
    assert_eq!(s["execution_count"], 2);
    assert_eq!(s["state"], "active");
    assert_eq!(s["flags"], serde_json::json!(["PROMOTE"]));
}

#[test]
fn missing_database_and_bad_time_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    cfa()
        .args(["lifecycle", "evaluate", "--db"])
        .arg(dir.path().join("nope.db"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("state database not found"));
    let db = dir.path().join("cfa.db");
    seed(&db);
    cfa()
        .args(["lifecycle", "evaluate", "--db"])
        .arg(&db)
        .args(["--now", "yesterday"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--now"));
}

#[test]
fn promotion_thresholds_and_window_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    seed(&dir.path().join("state.db"));
    // The database is the config's sqlite storage. IFo 0.86 passes the default 0.75 but
    // not a configured 0.9; the window is 2 days.
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: sqlite\n  path: state.db\nlifecycle:\n  promotion:\n    evaluation_window_days: 2\n    ifo_threshold: 0.9\n    min_executions: 2\n",
    )
    .unwrap();
    let v = stdout_json(cfa().current_dir(dir.path()).args([
        "lifecycle",
        "evaluate",
        "--now",
        "2026-01-05T00:00:00Z",
        "-f",
        "json",
    ]));
    assert_eq!(v["window_days"], 2);
    let s = &v["skills"][0];
    assert_eq!(s["signature_hash"], H);
    assert_eq!(s["execution_count"], 2);
    assert_eq!(s["state"], "candidate");
    assert_eq!(s["flags"], serde_json::json!([]));
    let out = cfa()
        .current_dir(dir.path())
        .args(["lifecycle", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8_lossy(&out).starts_with("Lifecycle skills (2):"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // Out-of-range thresholds are refused, naming the key.
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "lifecycle:\n  promotion:\n    ifs_threshold: 1.5\n",
    )
    .unwrap();
    let out = cfa()
        .current_dir(dir.path())
        .args(["lifecycle", "evaluate"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8_lossy(&out).contains("lifecycle.promotion.ifs_threshold"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
