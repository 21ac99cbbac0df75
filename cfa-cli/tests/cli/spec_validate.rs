#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa validate --spec` and `cfa taxonomy` through the real binary, on the example spec
//! (examples/specs/pii-join.yaml, whose `context.catalog` is examples/catalog.json).

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn spec() -> String {
    root()
        .join("examples/specs/pii-join.yaml")
        .display()
        .to_string()
}

/// `cfa` in an empty directory (no config is discovered from it).
/// `cfa` in `dir`, with the symbols forced (stdout is a pipe here; see
/// docs/cli.md#symbols-and-colour): the reference's lines use ✓ and ✗.
fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir).env("CFA_UNICODE", "1");
    c
}

/// Exit code, stdout, and stderr with miette's wrapping undone (one space between words).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cfa(dir).args(args).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap().replace('│', " ");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        err.split_whitespace().collect::<Vec<_>>().join(" "),
    )
}

#[test]
fn piped_output_falls_back_to_ascii_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec();
    let ok = "Join nfe with clientes daily, anonymize pii, into silver";
    let out = Command::cargo_bin("cfa")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("CFA_UNICODE")
        .args(["validate", "-s", &s, "-i", ok])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("[OK] PASSED  | approved | {ok}\n")
    );
    // --ascii wins over CFA_UNICODE=1
    let out = cfa(dir.path())
        .args([
            "validate",
            "--ascii",
            "-s",
            &s,
            "-i",
            "Join nfe with clientes and persist to silver",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("[XX] BLOCKED | action=block"), "{text}");
}

#[test]
fn passed_and_blocked_lines_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec();
    let ok = "Join nfe with clientes daily, anonymize pii, into silver";
    let (code, out, err) = run(dir.path(), &["validate", "-s", &s, "-i", ok]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("✓ PASSED  | approved | {ok}\n"));

    // block: the spec's block rule is among the faults of a terminal block
    let (code, out, _) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            &s,
            "-i",
            "Join nfe with clientes and persist to silver",
        ],
    );
    assert_eq!(code, 4);
    assert!(
        out.starts_with("✗ BLOCKED | action=block | faults=["),
        "{out}"
    );
    assert!(out.contains("BEHAVIOR_RAW_PII_IN_PROTECTED_LAYER"), "{out}");
    assert!(out.trim_end().ends_with("| TERMINAL"), "{out}");
    // a block the default rules would not make: only the spec's gold rule fires
    let (code, out, _) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            &s,
            "-i",
            "Join nfe with clientes daily, anonymize pii, into gold",
        ],
    );
    assert_eq!(code, 4);
    assert_eq!(
        out,
        "✗ BLOCKED | action=block | faults=[BEHAVIOR_GOLD_WITHOUT_APPROVAL] | TERMINAL\n"
    );
    // --exit-code changes nothing; --exit-zero reports without failing
    let (code, _, _) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            &s,
            "-i",
            "Copy clientes into gold",
            "--exit-code",
        ],
    );
    assert_eq!(code, 4);
    let (code, out, _) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            &s,
            "-i",
            "Copy clientes into gold",
            "--exit-zero",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("✗ BLOCKED | "), "{out}");
    // the intent is cut at 60 characters, as the reference does
    let long = format!(
        "Join nfe with clientes daily, anonymize pii, into silver {}",
        "x".repeat(80)
    );
    let (_, out, _) = run(dir.path(), &["validate", "-s", &s, "-i", &long]);
    let shown = out.trim_end().rsplit(" | ").next().unwrap();
    assert_eq!(shown.chars().count(), 60, "{out}");
}

#[test]
fn warn_reports_a_warning_and_warnings_blocking_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec();
    let intent = "Load produtos into bronze";
    let (code, out, _) = run(
        dir.path(),
        &["validate", "-s", &s, "-i", intent, "-f", "json"],
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["state"], "approved_with_warnings");
    let faults = v["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["code"], "BEHAVIOR_UNPARTITIONED_BRONZE_LOAD");
    assert_eq!(faults[0]["severity"], "warning");
    assert_eq!(v["spec"]["name"], "pii-join");
    assert_eq!(v["spec"]["rules_added"].as_array().unwrap().len(), 4);
    assert_eq!(v["policy_bundle"], "v1.0+spec:pii-join");
    let (code, out, _) = run(
        dir.path(),
        &["validate", "-s", &s, "-i", intent, "--warnings-blocking"],
    );
    assert_eq!(code, 4);
    assert_eq!(out, "✗ BLOCKED | Warnings treated as blocking (config).\n");
}

#[test]
fn replan_applies_the_conditions_fix() {
    let dir = tempfile::tempdir().unwrap();
    // a bundle with no partition rule: the spec's replan rule alone asks for the filter
    std::fs::write(
        dir.path().join("gold-only.yaml"),
        "version: gold-only\nrules:\n  - name: gold_needs_approval\n    condition: unauthorized_gold_write\n    action: block\n    fault_code: ACME_GOLD\n    severity: critical\n    message: Gold needs an approval.\n",
    )
    .unwrap();
    let s = spec();
    let (code, out, err) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            &s,
            "-i",
            "Join nfe with clientes, anonymize pii, into silver",
            "-p",
            "gold-only.yaml",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "approved_with_warnings");
    assert_eq!(v["replan_count"], 1);
    let h = &v["replan_history"][0];
    assert_eq!(
        h["fault_codes"],
        serde_json::json!(["BEHAVIOR_UNPARTITIONED_LARGE_SCAN"])
    );
    assert_eq!(h["applied_patches"][0]["path"], "constraints.partition_by");
    assert_eq!(
        v["signature"]["constraints"]["partition_by"],
        serde_json::json!(["processing_date"])
    );
    assert_eq!(v["spec"]["base_policy_bundle"], "gold-only");

    // a replan whose condition has no automatic fix blocks, saying so
    std::fs::write(
        dir.path().join("manual.yaml"),
        "behavior:\n  name: manual\n  failure_modes:\n    - code: small_scan\n      label: Small scan\n      description: even small tables need a filter\n      condition: missing_partition\n      min_size_gb: 0.01\n      action: replan\ncontext:\n  catalog: ".to_owned()
            + &root().join("examples/catalog.json").display().to_string()
            + "\n",
    )
    .unwrap();
    let (code, out, _) = run(
        dir.path(),
        &[
            "validate",
            "-s",
            "manual.yaml",
            "-i",
            "Load produtos into bronze",
        ],
    );
    assert_eq!(code, 4);
    assert!(
        out.starts_with(
            "✗ BLOCKED | Replan needs a manual change, no automatic fix exists: BEHAVIOR_SMALL_SCAN"
        ),
        "{out}"
    );
}

#[test]
fn an_unknown_condition_is_a_load_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "behavior:\n  name: bad\n  failure_modes:\n    - code: a\n      label: A\n      description: D\n      condition: pii_anywhere\n      action: explode\n",
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["validate", "-s", "bad.yaml", "-i", "x"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains("Error loading spec bad.yaml"), "{err}");
    assert!(
        err.contains(
            "bad.yaml:7:18: behavior.failure_modes[0].condition: unknown condition 'pii_anywhere'"
        ),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:8:15: behavior.failure_modes[0].action"),
        "{err}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["validate", "-s", "bad.yaml", "-i", "x", "-f", "json"],
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "invalid_spec");
    assert_eq!(v["error"]["issues"][0]["line"], 7);
    assert_eq!(v["error"]["issues"][0]["column"], 18);
    assert_eq!(
        v["error"]["issues"][1]["path"],
        "behavior.failure_modes[0].action"
    );
    // a YAML syntax error is located too; taxonomy reports the same errors
    std::fs::write(dir.path().join("broken.yaml"), "behavior: [1,\n").unwrap();
    let (code, _, err) = run(dir.path(), &["taxonomy", "generate", "-s", "broken.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.yaml:1:11"), "{err}");
    let (code, _, err) = run(
        dir.path(),
        &["taxonomy", "test-intents", "-s", "missing.yaml"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read missing.yaml"), "{err}");
}

#[test]
fn taxonomy_generate_prints_or_saves() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec();
    let (code, out, _) = run(dir.path(), &["taxonomy", "generate", "-s", &s]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let cats = v["taxonomy"]["categories"].as_array().unwrap();
    let names: Vec<&str> = cats.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["governance", "finops"]);
    assert_eq!(v["taxonomy"]["context"]["domain"], "fiscal");
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[1]["name"], "behavior_spec_unpartitioned_large_scan");
    assert_eq!(rules[1]["severity"], "high"); // medium → high
    assert_eq!(rules[1]["min_size_gb"], 100.0);
    assert_eq!(rules[3]["action"], "approve"); // warn
    assert_eq!(rules[3]["severity"], "warning");

    // the rules paste into a bundle that `cfa policy validate` accepts
    let bundle = serde_json::json!({"version": "from-spec", "rules": v["rules"]});
    std::fs::write(dir.path().join("b.json"), bundle.to_string()).unwrap();
    let (code, out, _) = run(dir.path(), &["policy", "validate", "b.json"]);
    assert_eq!(code, 0, "{out}");

    let (code, out, _) = run(
        dir.path(),
        &["taxonomy", "generate", "-s", &s, "-o", "t.json"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Taxonomy saved to t.json\n  Categories: 2\n  Rules:      4\n"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("t.json")).unwrap()).unwrap();
    assert_eq!(saved, v);
    // nothing half-written: no temporary file is left beside it
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    // an output in a missing directory fails and writes nothing
    let (code, _, err) = run(
        dir.path(),
        &["taxonomy", "generate", "-s", &s, "-o", "no/such/dir/t.json"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot write"), "{err}");
}

#[test]
fn test_intents_are_capped_per_category() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec();
    // the spec's generate.test_intents (3) per category, two categories
    let (code, out, _) = run(dir.path(), &["taxonomy", "test-intents", "-s", &s]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        lines[0],
        "Join raw pii in protected layer with PII columns and persist to silver #raw_pii_in_protected_layer#1"
    );
    assert!(
        lines[1].ends_with("persist to gold #gold_without_approval#1"),
        "{out}"
    );
    assert!(lines[2].ends_with("#raw_pii_in_protected_layer#2"), "{out}");
    assert!(
        lines[4].contains("into bronze #unpartitioned_bronze_load#1"),
        "{out}"
    );
    // -f json: the same intents, in order
    let (code, json_out, _) = run(
        dir.path(),
        &["taxonomy", "test-intents", "-s", &s, "-f", "json"],
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    let listed: Vec<&str> = v["intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(listed, lines);
    // -n 1: one per category; -n 50: still at most 3 per category
    let (_, out, _) = run(
        dir.path(),
        &["taxonomy", "test-intents", "-s", &s, "-n", "1"],
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let (_, out, _) = run(
        dir.path(),
        &["taxonomy", "test-intents", "-s", &s, "-n", "50"],
    );
    assert_eq!(out.lines().count(), 6, "{out}");
    let (code, _, err) = run(
        dir.path(),
        &["taxonomy", "test-intents", "-s", &s, "-n", "0"],
    );
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = run(
        dir.path(),
        &[
            "taxonomy",
            "test-intents",
            "-s",
            &s,
            "-n",
            "2",
            "-o",
            "i.txt",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "4 test intents saved to i.txt\n");
    let saved = std::fs::read_to_string(dir.path().join("i.txt")).unwrap();
    assert_eq!(saved.lines().count(), 4);
    assert!(
        saved
            .lines()
            .all(|l| l.rsplit('#').next().unwrap().parse::<u32>().is_ok())
    );
}
