#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa init`, config discovery from nested directories, flags beating config, `cfa status`.

use assert_cmd::Command;
use serde_json::Value;

fn cfa(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    c
}

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

#[test]
fn init_writes_real_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).args(["init"]).assert().code(0);
    let cfg = std::fs::read_to_string(dir.path().join("cfa.yaml")).unwrap();
    assert!(cfg.contains("policy_bundle: policies/prod-v1.yaml"));
    let cat: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("catalog.json")).unwrap())
            .unwrap();
    assert!(cat["datasets"]["nfe"].is_object());
    let bundle = std::fs::read_to_string(dir.path().join("policies/prod-v1.yaml")).unwrap();
    assert!(bundle.contains("policy_bundle:") && !bundle.trim_start().starts_with('{'));
    cfa(dir.path())
        .args(["policy", "validate", "policies/prod-v1.yaml"])
        .assert()
        .code(0);

    // refusal writes nothing
    std::fs::write(dir.path().join("cfa.yaml"), "version: '1.0'\n").unwrap();
    std::fs::remove_file(dir.path().join("catalog.json")).unwrap();
    cfa(dir.path()).args(["init"]).assert().code(1);
    assert!(!dir.path().join("catalog.json").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cfa.yaml")).unwrap(),
        "version: '1.0'\n"
    );
    cfa(dir.path()).args(["init", "--force"]).assert().code(0);
    assert!(dir.path().join("catalog.json").exists());
}

#[test]
fn config_is_discovered_from_a_nested_directory_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path())
        .args(["init", "--dir", dir.path().to_str().unwrap()])
        .assert()
        .code(0);
    let nested = dir.path().join("a/b/c");
    std::fs::create_dir_all(&nested).unwrap();
    // catalog + bundle + jsonl storage come from the config two levels up
    let out = cfa(&nested)
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
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    assert_eq!(v["artifact"]["backend"], "pyspark");
    let log = dir.path().join(".cfa/audit.jsonl");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        v["audit_event_hashes"].as_array().unwrap().len()
    );
    // explicit flags beat the config
    let out = cfa(&nested)
        .args(["evaluate", APPROVE, "-f", "json", "-p", "default"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy_bundle"], "v1.0");
    let out = cfa(&nested)
        .args(["evaluate", APPROVE, "-b", "cobol"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cobol"));
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("c.json"), "{\"datasets\": {}}").unwrap();
    let out = cfa(&nested)
        .args([
            "evaluate",
            APPROVE,
            "-f",
            "json",
            "-c",
            empty.path().join("c.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));

    // an explicit missing config is an error
    cfa(&nested)
        .args(["evaluate", APPROVE, "--config", "missing.yaml"])
        .assert()
        .code(1);
}

#[test]
fn status_shows_what_the_config_resolves_to() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path()).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("no config found")
    );
    cfa(dir.path()).args(["init"]).assert().code(0);
    let nested = dir.path().join("x");
    std::fs::create_dir_all(&nested).unwrap();
    let out = cfa(&nested)
        .args(["status", "-f", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config_found"], true);
    assert_eq!(v["resolved"]["policy_bundle"]["version"], "prod-v1.0");
    assert_eq!(v["resolved"]["catalog"]["datasets"][0], "nfe");
    assert_eq!(v["resolved"]["storage"]["backend"], "jsonl");
    let out = cfa(&nested).args(["status"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("version prod-v1.0  (7 rules)"), "{text}");
}
