#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa demo` through the real binary: decisions explained, chain verified, stable text.

use assert_cmd::Command;

fn demo(dir: &std::path::Path) -> String {
    let out = Command::cargo_bin("cfa")
        .unwrap()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        // The assertions are on the Unicode symbols; stdout is a pipe here, which would
        // otherwise select the ASCII fallback (docs/cli.md#symbols-and-colour).
        .env("CFA_UNICODE", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn demo_explains_approve_replan_and_block_and_verifies_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo(dir.path());
    assert!(text.contains("Decision:       ✓ approved"), "{text}");
    assert!(text.contains("Decision:       ⚠ approved_with_warnings"));
    assert!(text.contains("set constraints.partition_by = [\"processing_date\"]"));
    assert!(text.contains("GOVERNANCE_PII_WITHOUT_POLICY"));
    assert!(text.contains("NORMALIZATION_NO_CATALOG_DATASET_MATCH"));
    assert_eq!(text.matches("Decision:       ✗ blocked").count(), 2);
    assert!(text.contains("INTACT"));
    // Approved work runs on the mock sandbox; the last request is rolled back.
    assert_eq!(text.matches("Executed:       mock → published").count(), 2);
    assert!(text.contains("5. the same request, when its load step fails while running"));
    assert!(text.contains("Decision:       ↩ rolled_back"));
    assert!(text.contains("Executed:       mock → rolled_back"));
    assert!(text.contains("under the full_rollback policy everything the run wrote was undone"));
    assert!(text.contains("RUNTIME_STEP_FAILED: Step 'load_target' failed"));
    // Blocked requests never reach execution.
    assert_eq!(text.matches("Executed:").count(), 3);
    // the log it verified is real
    let log = dir.path().join("audit.jsonl");
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(text.contains(&format!("Audit chain:    {lines} events")));
    Command::cargo_bin("cfa")
        .unwrap()
        .args(["audit", "verify", "--file", log.to_str().unwrap()])
        .assert()
        .code(0);
}

#[test]
fn demo_text_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let strip = |t: String, d: &std::path::Path| t.replace(d.to_str().unwrap(), "DIR");
    assert_eq!(
        strip(demo(a.path()), a.path()),
        strip(demo(b.path()), b.path())
    );
    // and without --dir it runs in a temporary directory
    Command::cargo_bin("cfa")
        .unwrap()
        .arg("demo")
        .assert()
        .code(0);
}

#[test]
fn demo_json_carries_the_runs_and_the_verified_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("cfa")
        .unwrap()
        .args(["demo", "-f", "json", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let states: Vec<&str> = runs.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"approved"), "{states:?}");
    assert!(states.contains(&"blocked"), "{states:?}");
    // The chain the JSON reports is the log on disk: every run's events, verified.
    let written: u64 = runs
        .iter()
        .map(|r| r["audit_events"].as_u64().unwrap())
        .sum();
    assert_eq!(v["audit"]["events"].as_u64(), Some(written));
    assert_eq!(v["audit"]["intact"], true);
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(log.lines().count() as u64, written);
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(v["audit"]["tail_hash"], last["event_hash"]);
}
