//! Every command that takes a bundle, catalog, audit log or database takes it from
//! `cfa.yaml` when no flag does, and the flag still wins (one settings layer: flag >
//! `$CFA_POLICY_BUNDLE` > config > default). One test per command, through the binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support;
use assert_cmd::Command;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir).env_remove("CFA_POLICY_BUNDLE");
    c
}

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
}

/// A directory after `cfa init`: bundle policies/prod-v1.yaml (prod-v1.0), catalog
/// catalog.json, jsonl storage at .cfa/audit.jsonl.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).arg("init").assert().code(0);
    dir
}

fn run_json(cmd: &mut Command, code: i32) -> Value {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn status_rules_list_and_policy_check_report_the_same_bundle_after_init() {
    let dir = initialised();
    let status = run_json(cfa(dir.path()).args(["status", "-f", "json"]), 0);
    let rules = run_json(cfa(dir.path()).args(["rules", "list", "-f", "json"]), 0);
    let check = run_json(
        cfa(dir.path())
            .args(["policy", "check", "-f", "json", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_eq!(status["resolved"]["policy_bundle"]["version"], "prod-v1.0");
    assert_eq!(status["settings"]["policy_bundle"]["version"], "prod-v1.0");
    assert_eq!(rules["policy_bundle"], "prod-v1.0");
    assert_eq!(check["policy_bundle"], "prod-v1.0");
}

#[test]
fn status_shows_each_setting_and_where_it_came_from() {
    let dir = initialised();
    let v = run_json(cfa(dir.path()).args(["status", "-f", "json"]), 0);
    let s = &v["settings"];
    assert_eq!(s["policy_bundle"]["from"]["kind"], "config");
    assert_eq!(s["policy_bundle"]["from"]["name"], "defaults.policy_bundle");
    assert_eq!(s["catalog"]["from"]["name"], "defaults.catalog");
    assert_eq!(s["audit"]["value"]["backend"], "jsonl");
    assert!(
        s["audit"]["value"]["path"]
            .as_str()
            .unwrap()
            .ends_with(".cfa/audit.jsonl")
    );
    assert_eq!(s["state_db"]["from"]["kind"], "default");
    let text = cfa(dir.path()).arg("status").output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("bundle: prod-v1.0 (from cfa.yaml defaults.policy_bundle)"),
        "{text}"
    );
    // The environment beats the config, and status says so.
    let v = run_json(
        cfa(dir.path())
            .env("CFA_POLICY_BUNDLE", "lgpd-v1")
            .args(["status", "-f", "json"]),
        0,
    );
    assert_eq!(v["settings"]["policy_bundle"]["version"], "lgpd-v1.0");
    assert_eq!(v["settings"]["policy_bundle"]["from"]["kind"], "env");
    // Without a config every setting is a default.
    let empty = tempfile::tempdir().unwrap();
    let v = run_json(cfa(empty.path()).args(["status", "-f", "json"]), 0);
    if v["config_found"] == false {
        assert_eq!(v["settings"]["policy_bundle"]["from"]["kind"], "default");
    }
}

#[test]
fn policy_check_takes_bundle_catalog_and_audit_log_from_the_config() {
    let dir = initialised();
    let sig = example("signatures/ok.json");
    let log = dir.path().join(".cfa/audit.jsonl");
    let v = run_json(
        cfa(dir.path())
            .args(["policy", "check", "-f", "json", "-s"])
            .arg(&sig),
        0,
    );
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    assert_ne!(v["catalog_hash"], "", "the config's catalog was loaded");
    assert_ne!(v["audit_event_hash"], "");
    assert_eq!(log_lines(&log), 1, "the decision went to the config's log");
    // Flags win.
    let other = dir.path().join("other.jsonl");
    let v = run_json(
        cfa(dir.path())
            .args(["policy", "check", "-f", "json", "-p", "default", "-s"])
            .arg(&sig)
            .arg("--audit-log")
            .arg(&other),
        0,
    );
    assert_eq!(v["policy_bundle"], "v1.0");
    assert_eq!((log_lines(&log), log_lines(&other)), (1, 1));
}

#[test]
fn generate_decides_under_the_configs_bundle() {
    let dir = initialised();
    let v = run_json(
        cfa(dir.path())
            .args(["generate", "-b", "pyspark", "-o", "out", "-f", "json", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_eq!(v["decision"]["policy_bundle"], "prod-v1.0");
    assert_ne!(v["decision"]["catalog_hash"], "");
    let v = run_json(
        cfa(dir.path())
            .args(["generate", "-b", "pyspark", "-o", "out2", "-f", "json"])
            .args(["-p", "finops-strict-v1", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_eq!(v["decision"]["policy_bundle"], "finops-strict-v1.0");
}

#[test]
fn policy_check_strict_takes_the_configs_catalog() {
    let dir = initialised();
    let v = run_json(
        cfa(dir.path())
            .args(["policy", "check", "--strict", "-f", "json", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_ne!(v["catalog_hash"], "", "{v}");
    // No flag and no config: a usage error that says where a catalog comes from.
    let bare = tempfile::tempdir().unwrap();
    cfa(bare.path())
        .args(["policy", "check", "--strict", "-s"])
        .arg(example("signatures/ok.json"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("-c/--catalog"))
        .stderr(predicates::str::contains("defaults.catalog"));
}

#[test]
fn generate_takes_its_backend_from_the_config_unless_told() {
    let dir = initialised(); // defaults.backend: pyspark
    let v = run_json(
        cfa(dir.path())
            .args(["generate", "-o", "out", "-f", "json", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_eq!(v["backend"], "pyspark", "{v}");
    let v = run_json(
        cfa(dir.path())
            .args(["generate", "-b", "sql", "-o", "out2", "-f", "json", "-s"])
            .arg(example("signatures/ok.json")),
        0,
    );
    assert_eq!(v["backend"], "sql", "{v}");
    // No flag and no config: a usage error that says how to name one; nothing written.
    let bare = tempfile::tempdir().unwrap();
    cfa(bare.path())
        .args(["generate", "-o", "out", "-s"])
        .arg(example("signatures/ok.json"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("-b/--backend"))
        .stderr(predicates::str::contains("defaults.backend"));
    assert!(!bare.path().join("out").exists());
}

#[test]
fn evaluate_takes_bundle_catalog_and_log_from_the_config() {
    let dir = initialised();
    let v = run_json(cfa(dir.path()).args(["evaluate", APPROVE, "-f", "json"]), 0);
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    let log = dir.path().join(".cfa/audit.jsonl");
    assert_eq!(
        log_lines(&log),
        v["audit_event_hashes"].as_array().unwrap().len()
    );
    let v = run_json(
        cfa(dir.path()).args(["evaluate", APPROVE, "-f", "json", "-p", "lgpd-v1"]),
        0,
    );
    assert_eq!(v["policy_bundle"], "lgpd-v1.0");
}

#[test]
fn resolve_grounds_against_the_configs_catalog() {
    let dir = initialised();
    let v = run_json(cfa(dir.path()).args(["resolve", APPROVE]), 0);
    let names: Vec<&str> = v["signature"]["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nfe", "clientes"]);
    std::fs::write(dir.path().join("none.json"), r#"{"datasets": {}}"#).unwrap();
    let v = run_json(
        cfa(dir.path()).args(["resolve", APPROVE, "-c", "none.json"]),
        0,
    );
    assert_ne!(
        v["signature"]["datasets"].as_array().map(Vec::len),
        Some(2),
        "the flag's empty catalog grounds nothing: {v}"
    );
}

#[test]
fn rules_list_and_explain_use_the_configs_bundle_unless_told() {
    let dir = initialised();
    let list = |extra: &[&str], env: Option<&str>| {
        let mut c = cfa(dir.path());
        if let Some(e) = env {
            c.env("CFA_POLICY_BUNDLE", e);
        }
        run_json(c.args(["rules", "list", "-f", "json"]).args(extra), 0)["policy_bundle"].clone()
    };
    assert_eq!(list(&[], None), "prod-v1.0");
    assert_eq!(list(&["-p", "default"], None), "v1.0");
    assert_eq!(list(&[], Some("lgpd-v1")), "lgpd-v1.0");
    assert_eq!(
        list(&["-p", "finops-strict-v1"], Some("lgpd-v1")),
        "finops-strict-v1.0"
    );
    // explain finds a code only the config's bundle has.
    let codes: Vec<String> = run_json(
        cfa(dir.path()).args(["rules", "list", "-f", "json", "-p", "lgpd-v1"]),
        0,
    )["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fault_code"].as_str().unwrap().to_owned())
        .collect();
    let lgpd_only = codes
        .iter()
        .find(|c| c.contains("LGPD"))
        .expect("lgpd-v1 has an LGPD code")
        .clone();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: .cfa/audit.jsonl\ndefaults:\n  policy_bundle: lgpd-v1\n",
    )
    .unwrap();
    cfa(dir.path())
        .args(["rules", "explain", &lgpd_only])
        .assert()
        .code(0);
    cfa(dir.path())
        .args(["rules", "explain", &lgpd_only, "-p", "default"])
        .assert()
        .code(1);
}

#[test]
fn audit_commands_read_the_log_the_config_names() {
    let dir = initialised();
    let log = dir.path().join(".cfa/audit.jsonl");
    for i in 0..2 {
        cfa(dir.path())
            .args(["audit", "append", "--intent-id", &format!("i-{i}")])
            .args([
                "--stage",
                "policy",
                "--event-type",
                "decision",
                "--outcome",
                "approve",
            ])
            .assert()
            .code(0);
    }
    assert_eq!(log_lines(&log), 2, "append wrote to the config's log");
    let v = run_json(cfa(dir.path()).args(["audit", "verify", "-f", "json"]), 0);
    assert_eq!(v["total_events"], 2, "{v}");
    let v = run_json(
        cfa(dir.path()).args(["audit", "show", "-i", "i-1", "-f", "json"]),
        0,
    );
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    cfa(dir.path())
        .args(["audit", "repair"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("no torn tail"));
    // --file beats the config.
    let missing = dir.path().join("missing.jsonl");
    cfa(dir.path())
        .args(["audit", "verify", "--file"])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("missing.jsonl"));
    // An explicit --config wins over the discovered one.
    let alt = dir.path().join("alt.yaml");
    std::fs::write(&alt, "storage:\n  backend: jsonl\n  path: alt.jsonl\n").unwrap();
    cfa(dir.path())
        .args(["audit", "append", "--intent-id", "x", "--stage", "s"])
        .args(["--event-type", "e", "--outcome", "o", "--config"])
        .arg(&alt)
        .assert()
        .code(0);
    assert_eq!(log_lines(&dir.path().join("alt.jsonl")), 1);
    assert_eq!(log_lines(&log), 2);
}

#[test]
fn storage_commands_use_the_configs_jsonl_log() {
    let dir = initialised();
    cfa(dir.path())
        .args(["evaluate", APPROVE, "-f", "json"])
        .assert()
        .code(0);
    let log = dir.path().join(".cfa/audit.jsonl");
    let n = log_lines(&log);
    assert!(n > 0);
    let v = run_json(cfa(dir.path()).args(["storage", "stats", "-f", "json"]), 0);
    assert_eq!(v["backend"], "jsonl");
    assert_eq!(v["audit_events_count"], n);
    let v = run_json(cfa(dir.path()).args(["storage", "vacuum", "-f", "json"]), 0);
    assert_eq!(v["backend"], "jsonl");
    let v = run_json(
        cfa(dir.path()).args(["storage", "cleanup", "-f", "json", "--before", "2000-01-01"]),
        0,
    );
    assert_eq!(v["audit_events_removed"], 0);
    // --dir beats the config.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let v = run_json(
        cfa(dir.path())
            .args(["storage", "stats", "-f", "json", "--dir"])
            .arg(&data),
        0,
    );
    assert_eq!(v["audit_events_count"], 0);
}

#[test]
fn lifecycle_and_storage_use_a_sqlite_storage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: sqlite\n  path: state/cfa.db\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let db = dir.path().join("state/cfa.db");
    drop(cfa_lifecycle::LifecycleDb::open(&db).unwrap());
    let v = run_json(cfa(dir.path()).args(["lifecycle", "list", "-f", "json"]), 0);
    assert_eq!(v["skills"], json!([]));
    cfa(dir.path())
        .args(["lifecycle", "evaluate", "-f", "json"])
        .assert()
        .code(0);
    let v = run_json(cfa(dir.path()).args(["storage", "stats", "-f", "json"]), 0);
    assert_eq!(v["backend"], "sqlite");
    // --db beats the config.
    cfa(dir.path())
        .args(["lifecycle", "list", "--db", "elsewhere.db"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("elsewhere.db"));
}

/// `cfa serve --port 0` in `dir` (no bundle or token from the environment).
fn serve(dir: &Path, extra: &[&str]) -> support::Served {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .args(["serve", "--port", "0"])
        .args(extra)
        .stderr(std::process::Stdio::null());
    support::spawn_served(cmd)
}

#[test]
fn serve_takes_its_bundle_from_the_config() {
    let dir = initialised();
    let server = serve(dir.path(), &[]);
    let (_, v) = support::http(&server.addr, "GET", "/v1/rules", "");
    drop(server);
    assert_eq!(v["policy_bundle"], "prod-v1.0", "{v}");
    let server = serve(dir.path(), &["--policy-bundle", "lgpd-v1"]);
    let (_, v) = support::http(&server.addr, "GET", "/v1/rules", "");
    drop(server);
    assert_eq!(v["policy_bundle"], "lgpd-v1.0", "{v}");
}

/// Runs `cfa mcp` in `dir`, calls `cfa_describe_rules`, returns its structured content.
fn mcp_rules(dir: &Path, extra: &[&str]) -> Value {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_MCP_API_KEY")
        .arg("mcp")
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    let mut read = || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}));
    read();
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "cfa_describe_rules", "arguments": {}}}));
    let r = read();
    drop(stdin);
    child.wait().unwrap();
    r["result"]["structuredContent"].clone()
}

#[test]
fn mcp_takes_its_bundle_from_the_config() {
    let dir = initialised();
    assert_eq!(mcp_rules(dir.path(), &[])["policy_bundle"], "prod-v1.0");
    assert_eq!(
        mcp_rules(dir.path(), &["-p", "lgpd-v1"])["policy_bundle"],
        "lgpd-v1.0"
    );
    assert_eq!(
        mcp_rules(dir.path(), &["--policy-bundle", "finops-strict-v1"])["policy_bundle"],
        "finops-strict-v1.0"
    );
}
