//! Interop: a chain written by our `cfa` (CLI appends and cfa-kernel's
//! `policy_check` event, the one behind `policy check --audit-log`) verifies with
//! the Python reference cfa-kernel 1.1.0, installed into a cached virtualenv by
//! scripts/reference-audit-verify.sh. Fails (never skips) when Python or pip fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use cfa_audit::AuditTarget;
use cfa_kernel::{PolicyCheckRecord, record_policy_check};
use std::path::{Path, PathBuf};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/reference-audit-verify.sh")
}

fn reference_verify(chain: &Path) -> std::process::Output {
    std::process::Command::new("bash")
        .arg(script())
        .arg(chain)
        .output()
        .expect("bash must run scripts/reference-audit-verify.sh")
}

fn append(log: &Path, args: &[&str]) {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["audit", "append", "--file", log.to_str().unwrap()])
        .args(args)
        .assert()
        .code(0);
}

#[test]
fn our_chain_verifies_in_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ours.jsonl");
    for (i, action) in ["approve", "replan", "block"].iter().enumerate() {
        let record = PolicyCheckRecord {
            intent_id: cfa_test_support::REFERENCE_INTENT_ID.into(),
            action: (*action).into(),
            policy_bundle_version: "prod-v1.0".into(),
            decision_id: format!("35324dcc-4335-455e-bce2-bd72f68a6f0{i}"),
            signature_hash: "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
                .into(),
            catalog_hash: String::new(),
            policy_bundle_hash: "795df3d823b924c84b48818773b865f57cb69c724ffa9a6c89f165ce1a9c8eb8"
                .into(),
            faults: vec!["FINOPS_MISSING_TEMPORAL_PREDICATE".into()],
            interventions: vec!["Add constraints.partition_by — ção 🚀".into()],
            reasoning: format!("action={action} | replan 1/3"),
            content_hash: "c0ffee".into(),
        };
        let ts = format!("2026-11-21T20:02:5{i}.918912+00:00");
        let hash = record_policy_check(&AuditTarget::Jsonl(log.clone()), &record, &ts).unwrap();
        assert_eq!(hash.len(), 64);
    }
    append(
        &log,
        &[
            "--intent-id",
            "k",
            "--stage",
            "formalize",
            "--event-type",
            "confirmation",
            "--outcome",
            "approved",
            "--details",
            r#"{"confidence": 0.75, "n": 1e-05, "big": 1e+16, "z": {"b": [1, null, true], "a": "\u0001\u007f"}}"#,
            "--timestamp",
            "2026-11-21T20:03:00+00:00",
        ],
    );
    append(
        &log,
        &[
            "--intent-id",
            "k",
            "--stage",
            "govern",
            "--event-type",
            "decision",
            "--outcome",
            "approve",
            "--bundle-version",
            "v1.0",
            "--bundle-hash",
            "",
        ],
    );

    let ours = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["audit", "verify", "--file", log.to_str().unwrap()])
        .assert()
        .code(0);
    assert_eq!(
        String::from_utf8_lossy(&ours.get_output().stdout),
        "[OK] Chain INTACT (5 events total)\n"
    );

    let out = reference_verify(&log);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Chain INTACT (5 events total)"),
        "reference verdict: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The check can fail: a tampered copy is BROKEN for the reference too.
    let bad = dir.path().join("tampered.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &bad,
        text.replacen("\"outcome\": \"block\"", "\"outcome\": \"approve\"", 1),
    )
    .unwrap();
    let out = reference_verify(&bad);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
