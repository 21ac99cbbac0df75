#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa evaluate` and `cfa resolve` through the real binary: exit codes (docs/differences.md#b2-fail-closed),
//! JSON shape, aligned table.

use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.json")
}

/// A command run in an empty temp dir (no config is discovered above /tmp).
fn cfa(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    // The symbol assertions below are the Unicode forms; stdout is a pipe here, which
    // would otherwise select the ASCII fallback (docs/cli.md#symbols-and-colour).
    c.env("CFA_UNICODE", "1");
    c
}

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
const BLOCK: &str = "Join NFe with Clientes and persist to Silver";

#[test]
fn evaluate_exit_codes_follow_design_b2() {
    let dir = tempfile::tempdir().unwrap();
    let c = catalog();
    let c = c.to_str().unwrap();
    cfa(dir.path())
        .args(["evaluate", APPROVE, "-c", c, "-p", "prod-v1"])
        .assert()
        .code(0);
    cfa(dir.path())
        .args([
            "evaluate",
            "ingest nfe raw into bronze",
            "-c",
            c,
            "-p",
            "prod-v1",
        ])
        .assert()
        .code(0);
    cfa(dir.path())
        .args(["evaluate", BLOCK, "-c", c, "-p", "prod-v1"])
        .assert()
        .code(4);
    cfa(dir.path())
        .args(["evaluate", BLOCK, "-c", c, "-p", "prod-v1", "--exit-zero"])
        .assert()
        .code(0);
    cfa(dir.path())
        .args(["evaluate", BLOCK, "-c", c, "--exit-code"])
        .assert()
        .code(4);
    // missing catalog file: invalid input
    cfa(dir.path())
        .args(["evaluate", APPROVE, "-c", "nope.json"])
        .assert()
        .code(1);
    // unknown bundle name: invalid input
    cfa(dir.path())
        .args(["evaluate", APPROVE, "-c", c, "-p", "nope-v9"])
        .assert()
        .code(1);
    // usage error
    cfa(dir.path())
        .args(["evaluate", APPROVE, "--no-such-flag"])
        .assert()
        .code(2);
    cfa(dir.path())
        .args(["evaluate", APPROVE, "--strict", "--lenient"])
        .assert()
        .code(2);
}

#[test]
fn no_catalog_blocks_unless_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "blocked");
    assert_eq!(
        v["faults"][0]["code"],
        "NORMALIZATION_NO_CATALOG_DATASET_MATCH"
    );
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE, "--lenient", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        !codes.contains(&"NORMALIZATION_NO_CATALOG_DATASET_MATCH"),
        "{codes:?}"
    );
}

#[test]
fn json_output_carries_the_whole_result_and_audit_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = cfa(dir.path())
        .args([
            "evaluate",
            "ingest nfe raw into bronze",
            "-c",
            catalog().to_str().unwrap(),
            "-p",
            "prod-v1",
            "--format",
            "json",
            "--audit-log",
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intent"], "ingest nfe raw into bronze");
    assert_eq!(v["state"], "approved_with_warnings");
    assert_eq!(v["replan_count"], 1);
    assert_eq!(
        v["replan_history"][0]["applied_patches"][0]["path"],
        "constraints.partition_by"
    );
    assert_eq!(
        v["signature"]["constraints"]["partition_by"][0],
        "processing_date"
    );
    assert!(v["resolution"]["confidence"].is_number());
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    assert_eq!(v["policy_bundle_hash"].as_str().unwrap().len(), 64);
    let hashes = v["audit_event_hashes"].as_array().unwrap();
    assert!(hashes.len() >= 9);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), hashes.len());
    Command::cargo_bin("cfa")
        .unwrap()
        .args(["audit", "verify", "--file", log.to_str().unwrap()])
        .assert()
        .code(0);
}

#[test]
fn table_output_is_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args([
            "evaluate",
            BLOCK,
            "-c",
            catalog().to_str().unwrap(),
            "-p",
            "prod-v1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with('┌') && lines[0].contains(" CFA Evaluation Result "));
    assert!(lines.last().unwrap().starts_with('└'));
    let w = lines[0].chars().count();
    for l in &lines {
        assert_eq!(l.chars().count(), w, "misaligned row: {l:?}");
    }
    assert!(text.contains("GOVERNANCE_PII_WITHOUT_POLICY"));
    assert!(text.contains("✗ blocked"));
}

#[test]
fn summary_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let txt = dir.path().join("r.txt");
    let c = catalog();
    let out = cfa(dir.path())
        .args([
            "evaluate",
            APPROVE,
            "-c",
            c.to_str().unwrap(),
            "-f",
            "summary",
            "-o",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("✓  CFA: APPROVED"), "{text}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["state"], "approved");
    cfa(dir.path())
        .args([
            "evaluate",
            BLOCK,
            "-c",
            c.to_str().unwrap(),
            "-o",
            txt.to_str().unwrap(),
        ])
        .assert()
        .code(4);
    assert!(
        std::fs::read_to_string(&txt)
            .unwrap()
            .contains("CFA: BLOCKED")
    );
}

#[test]
fn resolve_prints_signature_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["resolve", BLOCK, "-c", catalog().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature"]["target_layer"], "silver");
    assert_eq!(v["signature"]["datasets"][0]["name"], "nfe");
    assert_eq!(v["resolution"]["confidence"], 0.75);
    assert_eq!(v["resolution"]["confirmation_mode"], "hard");
    let out = cfa(dir.path())
        .args([
            "resolve",
            "juntar nfe com clientes na camada ouro",
            "-c",
            catalog().to_str().unwrap(),
            "--normalizer",
            "rule-based-pt",
            "-f",
            "summary",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Datasets:    nfe, clientes"), "{text}");
}

#[test]
fn keyword_packs_extend_the_normaliser_and_bad_packs_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack.yaml");
    std::fs::write(&pack, "name: finance\ndomains:\n  finance: [invoice]\n").unwrap();
    let out = cfa(dir.path())
        .args([
            "resolve",
            "ingest invoice data from nfe",
            "-c",
            catalog().to_str().unwrap(),
            "--keywords",
            pack.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature"]["domain"], "finance");
    std::fs::write(&pack, "nonsense: 1\n").unwrap();
    cfa(dir.path())
        .args([
            "evaluate",
            APPROVE,
            "-c",
            catalog().to_str().unwrap(),
            "--keywords",
            pack.to_str().unwrap(),
        ])
        .assert()
        .code(1);
}
