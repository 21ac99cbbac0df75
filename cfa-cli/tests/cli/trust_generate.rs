//! `cfa generate` through the real binary: the policy decision comes first (as `cfa
//! policy check` makes it), only approved work gets code, a refusal exits with the
//! decision's code and faults and writes nothing, and every generated file names the
//! decision it was generated under. A join the catalog cannot ground is refused too.
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

fn cfa(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.current_dir(dir).env_remove("CFA_POLICY_BUNDLE");
    c
}

fn ex(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
        .display()
        .to_string()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn codes(v: &Value) -> Vec<String> {
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn blocked_and_replanned_signatures_get_no_code() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["pyspark", "sql", "dbt"] {
        for bundle in [None, Some("prod-v1")] {
            let out = dir.path().join("d");
            // Text: the decision's faults, exit 4, nothing written.
            let mut c = cfa(dir.path());
            c.args([
                "generate",
                "-s",
                &ex("signatures/raw_pii.json"),
                "-b",
                backend,
            ])
            .args(["-c", &ex("catalog.json"), "--out"])
            .arg(&out);
            if let Some(b) = bundle {
                c.args(["-p", b]);
            }
            c.assert()
                .code(4)
                .stdout(predicate::str::contains("BLOCK"))
                .stdout(predicate::str::contains(
                    "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
                ))
                .stderr(predicate::str::contains("not approved (block)"))
                .stderr(predicate::str::contains("nothing was written"));
            assert!(!out.exists(), "{backend} {bundle:?}");
            // JSON: the decision document, exit 4, nothing written.
            let mut c = cfa(dir.path());
            c.args([
                "generate",
                "-s",
                &ex("signatures/raw_pii.json"),
                "-b",
                backend,
            ])
            .args(["-f", "json", "--out"])
            .arg(&out);
            if let Some(b) = bundle {
                c.args(["-p", b]);
            }
            let v = json_of(&c.assert().code(4).get_output().stdout);
            assert_eq!(v["action"], "block");
            assert_eq!(v["generated"], false);
            assert!(
                codes(&v).contains(&"GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER".to_owned()),
                "{v}"
            );
            assert!(!out.exists());
        }
        // Replan exits 3 with the patches that fix it; no_merge blocks.
        let out = dir.path().join("d");
        let v = json_of(
            &cfa(dir.path())
                .args(["generate", "-s", &ex("signatures/replan_multi.json")])
                .args(["-b", backend, "-f", "json", "--out"])
                .arg(&out)
                .assert()
                .code(3)
                .get_output()
                .stdout,
        );
        assert_eq!(v["action"], "replan");
        assert!(!v["patches"].as_array().unwrap().is_empty());
        cfa(dir.path())
            .args(["generate", "-s", &ex("signatures/no_merge.json")])
            .args(["-b", backend, "--out"])
            .arg(&out)
            .assert()
            .code(4)
            .stdout(predicate::str::contains("CONTRACT_MISSING_MERGE_KEY"));
        assert!(!out.exists());
    }
    // Nothing at all was left in the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_file_names_the_decision_it_was_generated_under() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    for backend in ["pyspark", "sql", "dbt"] {
        let out = dir.path().join(format!("out-{backend}"));
        let v = json_of(
            &cfa(dir.path())
                .args(["generate", "-s", &ex("signatures/ok.json")])
                .args(["-c", &ex("catalog.json"), "-b", backend, "-p", "prod-v1"])
                .args(["-f", "json", "--audit-log"])
                .arg(&audit)
                .arg("--out")
                .arg(&out)
                .assert()
                .code(0)
                .get_output()
                .stdout,
        );
        let d = &v["decision"];
        assert_eq!(d["action"], "approve");
        assert_eq!(d["policy_bundle"], "prod-v1.0");
        let id = d["decision_id"].as_str().unwrap();
        let content = d["content_hash"].as_str().unwrap();
        let bundle_hash = d["policy_bundle_hash"].as_str().unwrap();
        assert_eq!(content.len(), 64);
        assert_eq!(bundle_hash.len(), 64);
        let files = v["files"].as_array().unwrap();
        assert!(!files.is_empty());
        for f in files {
            let path = f["path"].as_str().unwrap();
            let text = std::fs::read_to_string(out.join(path)).unwrap();
            let head: String = text.lines().take(4).collect::<Vec<_>>().join("\n");
            assert!(
                head.contains(&format!(
                    "approved by decision {id} | content_hash {content}"
                )),
                "{backend} {path}:\n{head}"
            );
            assert!(
                head.contains(&format!(
                    "policy_bundle prod-v1.0 | policy_bundle_hash {bundle_hash}"
                )),
                "{backend} {path}:\n{head}"
            );
        }
        // The decision is in the audit log, so the header leads to its record.
        let log = std::fs::read_to_string(&audit).unwrap();
        assert!(log.contains(id), "{backend}");
    }
}

#[test]
fn a_hostile_bundle_version_cannot_escape_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.json");
    std::fs::write(
        &bundle,
        r#"{"policy_bundle": {"version": "v1\n{{ run_query('drop table x') }}\nimport os", "rules": [{"name": "r", "condition": "cost_budget_exceeded", "action": "block", "fault_code": "X_COST", "severity": "high", "family": "semantic", "message": "m", "remediation": ["x"]}]}}"#,
    )
    .unwrap();
    for backend in ["pyspark", "sql", "dbt"] {
        let out = dir.path().join(format!("out-{backend}"));
        cfa(dir.path())
            .args(["generate", "-s", &ex("signatures/ok.json")])
            .args(["-c", &ex("catalog.json"), "-b", backend, "-p"])
            .arg(&bundle)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(0)
            .stdout(predicate::str::contains("static validation: passed"));
        for e in walk(&out) {
            let text = std::fs::read_to_string(&e).unwrap();
            assert!(
                text.contains("policy_bundle v1____run_query__drop_table_x______import_os"),
                "{}:\n{text}",
                e.display()
            );
            assert!(!text.contains("{{ run_query"), "{}", e.display());
            assert!(!text.lines().any(|l| l == "import os"), "{}", e.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_join_without_a_shared_key_is_refused_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The reference catalog lists no columns: nfe and clientes share no key.
    let err = cfa(dir.path())
        .args(["generate", "-s", &ex("signatures/ok.json")])
        .args([
            "-c",
            &ex("catalog-reference.json"),
            "-b",
            "pyspark",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    // The message is re-wrapped for the terminal: compare its words.
    let err: String = String::from_utf8_lossy(&err)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(err.contains("no join key for dataset 'clientes'"), "{err}");
    assert!(
        err.contains("catalog.datasets.clientes.join_keys: {\"nfe\""),
        "{err}"
    );
    assert!(!out.exists());
    // With the example catalog's columns the join is on the key both sides have.
    cfa(dir.path())
        .args(["generate", "-s", &ex("signatures/ok.json")])
        .args(["-c", &ex("catalog.json"), "-b", "pyspark", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    let py = std::fs::read_to_string(out.join("silver_fiscal.py")).unwrap();
    assert!(
        py.contains(r#"F.col("d0.cliente_id") == F.col("d1.cliente_id")"#),
        "{py}"
    );
    assert!(!py.contains(r#"F.col("d0.nfe_id") == F.col("d1.cliente_id")"#));
}

#[test]
fn an_init_project_joins_on_the_real_key_and_refuses_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).arg("init").assert().code(0);
    let out = cfa(dir.path())
        .args([
            "evaluate",
            "Join nfe with clientes daily, anonymize pii, into silver",
            "-f",
            "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["state"], "approved");
    cfa(dir.path())
        .args([
            "generate",
            "-s",
            &ex("signatures/ok.json"),
            "-c",
            "catalog.json",
        ])
        .args(["-b", "pyspark", "-o", "gen"])
        .assert()
        .code(0);
    let py = std::fs::read_to_string(dir.path().join("gen/silver_fiscal.py")).unwrap();
    assert!(py.contains(r#"F.col("d0.cliente_id") == F.col("d1.cliente_id")"#));
    // Strip the columns from the project's catalog: the same intent now blocks with
    // a fault that says what to add, and nothing is published.
    let mut cat: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("catalog.json")).unwrap())
            .unwrap();
    for (_, d) in cat["datasets"].as_object_mut().unwrap() {
        d.as_object_mut().unwrap().remove("columns");
    }
    std::fs::write(dir.path().join("catalog.json"), cat.to_string()).unwrap();
    let out = cfa(dir.path())
        .args([
            "evaluate",
            "Join nfe with clientes daily, anonymize pii, into silver",
            "-f",
            "json",
        ])
        .assert()
        .code(4)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["state"], "blocked");
    assert!(
        codes(&v).contains(&"KERNEL_PLANNER_FAILED".to_owned()),
        "{v}"
    );
    assert!(
        v["blocked_reason"].as_str().unwrap().contains("join_keys"),
        "{v}"
    );
}
