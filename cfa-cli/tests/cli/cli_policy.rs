//! The issue-2 commands through the real `cfa` binary: every command, every exit
//! code, JSON shapes, located errors, and "bad input changes nothing".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn ex(rel: &str) -> String {
    examples().join(rel).display().to_string()
}

fn json_out(args: &[&str], code: i32) -> Value {
    let out = cfa()
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

#[test]
fn approve_exits_0_with_reference_hashes() {
    let v = json_out(
        &[
            "policy",
            "check",
            "-s",
            &ex("signatures/ok.json"),
            "-p",
            "prod-v1",
            "-c",
            &ex("catalog-reference.json"),
            "-f",
            "json",
        ],
        0,
    );
    assert_eq!(v["schema_version"], "cfa.policy_check.v1");
    assert_eq!(v["action"], "approve");
    assert_eq!(v["passed"], true);
    assert_eq!(
        v["signature_hash"],
        "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
    );
    assert_eq!(
        v["catalog_hash"],
        "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347"
    );
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    assert_eq!(v["policy_bundle_hash"].as_str().unwrap().len(), 64);
    assert_eq!(v["reasoning"], "All rules passed. Execution approved.");
    assert_eq!(v["patches"], serde_json::json!([]));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        &keys[..12],
        [
            "schema_version",
            "decision_id",
            "signature_hash",
            "policy_bundle",
            "catalog_hash",
            "policy_bundle_hash",
            "action",
            "passed",
            "faults",
            "interventions",
            "reasoning",
            "audit_event_hash"
        ]
    );
}

#[test]
fn replan_exits_3_with_patches_that_fix_it() {
    let v = json_out(
        &[
            "policy",
            "check",
            "-s",
            &ex("signatures/replan_multi.json"),
            "-f",
            "json",
        ],
        3,
    );
    assert_eq!(v["action"], "replan");
    assert_eq!(
        v["reasoning"],
        "action=replan | faults=[FINOPS_MISSING_TEMPORAL_PREDICATE; FINOPS_SENSITIVE_WITHOUT_PARTITION; CONTRACT_TYPE_ENFORCEMENT_DISABLED] | replan 1/3"
    );
    let patches = v["patches"].as_array().unwrap();
    assert!(
        patches
            .iter()
            .any(|p| p["path"] == "constraints.partition_by"
                && p["value"] == serde_json::json!(["processing_date"]))
    );
    // Apply the patches and check again: now approved.
    let sig: Value =
        serde_json::from_str(&std::fs::read_to_string(ex("signatures/replan_multi.json")).unwrap())
            .unwrap();
    let patches: Vec<cfa_types::Patch> = serde_json::from_value(v["patches"].clone()).unwrap();
    let fixed = cfa_types::StateSignature::from_value(&sig)
        .unwrap()
        .apply_patches(&patches)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixed.json");
    std::fs::write(&path, serde_json::to_string(&fixed.to_value()).unwrap()).unwrap();
    cfa()
        .args(["policy", "check", "-s", path.to_str().unwrap()])
        .assert()
        .code(0);
}

#[test]
fn block_exits_4_and_exit_zero_reports_only() {
    cfa()
        .args(["policy", "check", "-s", &ex("signatures/raw_pii.json")])
        .assert()
        .code(4)
        .stdout(predicate::str::contains("Policy check BLOCK:"))
        .stdout(predicate::str::contains(
            "[critical] GOVERNANCE_PII_WITHOUT_POLICY",
        ));
    cfa()
        .args([
            "policy",
            "check",
            "-s",
            &ex("signatures/raw_pii.json"),
            "--exit-zero",
        ])
        .assert()
        .code(0);
    // --exit-code is accepted and changes nothing.
    cfa()
        .args([
            "policy",
            "check",
            "-s",
            &ex("signatures/raw_pii.json"),
            "--exit-code",
        ])
        .assert()
        .code(4);
}

#[test]
fn replan_cap_blocks() {
    let v = json_out(
        &[
            "policy",
            "check",
            "-s",
            &ex("signatures/replan_multi.json"),
            "--replan-count",
            "3",
            "-f",
            "json",
        ],
        4,
    );
    assert_eq!(v["faults"][0]["code"], "POLICY_MAX_REPLAN_EXCEEDED");
}

#[test]
fn invalid_signature_exits_1_with_paths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        r#"{"domain": " ", "intent": "x", "target_layer": "platinum", "datasets": [{"name": ""}]}"#,
    )
    .unwrap();
    cfa()
        .args(["policy", "check", "-s", p.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("StateSignature INVALID"))
        .stdout(predicate::str::contains(
            "domain: is required and must be a non-empty string",
        ))
        .stdout(predicate::str::contains(
            "target_layer: must be one of ['bronze', 'gold', 'silver']",
        ))
        .stdout(predicate::str::contains("datasets[0].name"));
    let v = json_out(
        &["signature", "validate", p.to_str().unwrap(), "-f", "json"],
        1,
    );
    assert_eq!(v["valid"], false);
    assert_eq!(v["issues"][0]["path"], "domain");
    assert_eq!(v["issues"][0]["line"], 1);
}

#[test]
fn broken_json_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.json");
    std::fs::write(&p, "{\n  \"domain\": \"d\",\n  oops\n}\n").unwrap();
    cfa()
        .args(["policy", "check", "-s", p.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("broken.json:3:3"));
}

#[test]
fn strict_catalog_mismatch_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mismatch.json");
    let mut sig: Value =
        serde_json::from_str(&std::fs::read_to_string(ex("signatures/ok.json")).unwrap()).unwrap();
    sig["datasets"][1]["classification"] = "public".into();
    std::fs::write(&p, sig.to_string()).unwrap();
    cfa()
        .args(["policy", "check", "-s", p.to_str().unwrap(), "-c", &ex("catalog.json"), "--strict"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("StateSignature/catalog mismatch"))
        .stdout(predicate::str::contains("signature.datasets[1].classification: signature says 'public' but catalog says 'sensitive'"));
    // --strict without a catalog is a usage error.
    cfa()
        .args(["policy", "check", "-s", p.to_str().unwrap(), "--strict"])
        .assert()
        .code(2);
}

#[test]
fn usage_errors_exit_2() {
    cfa().args(["policy", "check"]).assert().code(2);
    cfa()
        .args(["policy", "check", "-s", "x.json", "--no-such-flag"])
        .assert()
        .code(2);
    cfa().args(["nope"]).assert().code(2);
}

#[test]
fn unknown_bundle_name_is_an_error_not_a_label() {
    cfa()
        .args([
            "policy",
            "check",
            "-s",
            &ex("signatures/ok.json"),
            "-p",
            "prod-v9",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown policy bundle 'prod-v9'"))
        .stderr(predicate::str::contains("eu-ai-act-v1"));
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bad_yaml_bundle_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // A syntax error: the parser position is reported.
    let broken = write(
        dir.path(),
        "broken.yaml",
        "version: \"x\"\nrules:\n  - name: a\n    condition: [unclosed\n",
    );
    cfa()
        .args(["policy", "validate", &broken])
        .assert()
        .code(1)
        .stderr(predicate::str::is_match(r"broken\.yaml:\d+:\d+").unwrap());
    // A structurally invalid bundle: each issue is located at its node.
    let invalid = write(
        dir.path(),
        "invalid.yaml",
        "version: \"v\"\nrules:\n  - name: r1\n    condition: no_such_condition\n    action: replan\n    fault_code: F1\n    severity: loud\n    message: m\n",
    );
    cfa()
        .args(["policy", "validate", &invalid])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Policy bundle INVALID"))
        .stdout(predicate::str::contains(
            "policy_bundle.rules[0].condition: unknown condition 'no_such_condition'",
        ))
        .stdout(predicate::str::contains("invalid.yaml:4:16"))
        .stdout(predicate::str::contains("policy_bundle.rules[0].severity"))
        .stdout(predicate::str::contains("invalid.yaml:7:15"));
    // The same bundle given to policy check fails before any decision, with positions.
    cfa()
        .args([
            "policy",
            "check",
            "-s",
            &ex("signatures/ok.json"),
            "-p",
            &invalid,
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid.yaml:4:16"));
    // Duplicate keys are refused.
    let dup = write(
        dir.path(),
        "dup.yaml",
        "version: \"v\"\nversion: \"w\"\nrules: []\n",
    );
    cfa()
        .args(["policy", "validate", &dup])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("dup.yaml:2"));
}

#[test]
fn valid_bundles_validate() {
    let corpus =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/policy/bundles");
    for name in [
        "lakehouse-core.yaml",
        "finops-lite.json",
        "observe-only.yaml",
        "strict-contracts.yaml",
    ] {
        cfa()
            .args(["policy", "validate", corpus.join(name).to_str().unwrap()])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("Policy bundle VALID"));
    }
}

#[test]
fn catalog_validate() {
    cfa()
        .args(["catalog", "validate", &ex("catalog.json")])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Catalog VALID"));
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "cat.yaml",
        "datasets:\n  nfe:\n    size_gb: -1\n",
    );
    cfa()
        .args(["catalog", "validate", &bad])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "datasets.nfe.size_gb: must be a non-negative number",
        ))
        .stdout(predicate::str::contains("cat.yaml:3:14"));
    cfa()
        .args(["catalog", "validate", "/no/such/catalog.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read /no/such/catalog.json",
        ));
}

#[test]
fn rules_list_and_explain_honour_the_bundle() {
    cfa()
        .args(["rules", "list"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("FAMILY"))
        .stdout(predicate::str::contains("Policy bundle: v1.0  |  Rules: 7"));
    let v = json_out(&["rules", "list", "-p", "eu-ai-act-v1", "-f", "json"], 0);
    assert_eq!(v["rule_count"], 8);
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["family"].is_string())
    );
    cfa()
        .args([
            "rules",
            "explain",
            "EU_AI_ACT_ART12_RECORD_KEEPING",
            "-p",
            "eu-ai-act-v1",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Condition:   missing_merge_key"));
    // A code of another bundle is unknown here.
    cfa()
        .args(["rules", "explain", "EU_AI_ACT_ART12_RECORD_KEEPING"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Unknown fault code"));
    let v = json_out(
        &[
            "rules",
            "explain",
            "CONTRACT_MISSING_MERGE_KEY",
            "-f",
            "json",
        ],
        0,
    );
    assert_eq!(
        v["message"],
        "Write to Silver/Gold without merge_key \u{2014} direct append forbidden."
    );
}

#[test]
fn schema_commands_print_json_schemas() {
    let v = json_out(&["schema", "signature"], 0);
    assert!(v["properties"]["target_layer"].is_object(), "{v}");
    let v = json_out(&["schema", "decision"], 0);
    assert!(v["properties"]["action"].is_object(), "{v}");
}

#[test]
fn audit_log_records_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let v1 = json_out(
        &[
            "policy",
            "check",
            "-s",
            &ex("signatures/ok.json"),
            "--audit-log",
            log.to_str().unwrap(),
            "-f",
            "json",
        ],
        0,
    );
    let v2 = json_out(
        &[
            "policy",
            "check",
            "-s",
            &ex("signatures/replan_multi.json"),
            "--audit-log",
            log.to_str().unwrap(),
            "-f",
            "json",
        ],
        3,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event_hash"], v1["audit_event_hash"]);
    assert_eq!(lines[1]["previous_hash"], v1["audit_event_hash"]);
    assert_eq!(lines[1]["event_hash"], v2["audit_event_hash"]);
    assert_eq!(lines[1]["outcome"], "replan");
    assert_eq!(lines[1]["details"]["decision_id"], v2["decision_id"]);
    assert_eq!(lines[1]["details"]["content_hash"], v2["content_hash"]);
    // Invalid input records nothing.
    let bad = write(dir.path(), "bad.json", "{}");
    cfa()
        .args([
            "policy",
            "check",
            "-s",
            &bad,
            "--audit-log",
            log.to_str().unwrap(),
        ])
        .assert()
        .code(1);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
}
