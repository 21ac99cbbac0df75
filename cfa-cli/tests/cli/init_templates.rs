#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa init --dir .cfa`, `--template` and `--list` through the real binary; each
//! template's commands are run as written (the scripts with `sh`, the workflow's `run:`
//! lines, the MCP config's command) with the built `cfa` first on the PATH.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    c
}

/// PATH with the built `cfa` first.
fn path_with_cfa() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cfa"));
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `sh -c line` from `dir` with the built `cfa` on the PATH: (code, stdout, stderr).
fn sh(dir: &Path, line: &str) -> (i32, String, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path_with_cfa())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn raw_pii_signature() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/signatures/raw_pii.json"),
    )
    .unwrap()
}

#[test]
fn list_and_unknown_template() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path()).args(["init", "--list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for name in ["ci-gate", "dbt", "mcp"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{text}"
        );
    }
    let out = cfa(dir.path())
        .args(["init", "-t", "fastapi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown template 'fastapi'"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // a template never goes into a .cfa directory
    let out = cfa(dir.path())
        .args(["init", "-t", "dbt", "--dir", ".cfa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join(".cfa").exists());
}

#[test]
fn dot_cfa_layout_is_found_by_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["init", "--dir", ".cfa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CFA initialized in .cfa/\n"), "{text}");
    let d = dir.path().join(".cfa");
    for f in [
        "config.yaml",
        "catalog.json",
        "policies/prod-v1.yaml",
        ".gitignore",
    ] {
        assert!(d.join(f).is_file(), "{f}");
    }
    assert!(!dir.path().join("cfa.yaml").exists());
    let ignore = std::fs::read_to_string(d.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "audit.jsonl"), "{ignore}");
    assert!(!ignore.lines().any(|l| l == "*"), "{ignore}");
    // discovery finds .cfa/config.yaml from the project and from below it; its paths
    // are relative to the file
    let nested = dir.path().join("src/jobs");
    std::fs::create_dir_all(&nested).unwrap();
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
    let log = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert_eq!(
        log.lines().count(),
        v["audit_event_hashes"].as_array().unwrap().len()
    );
    // and it refuses to overwrite, as the plain layout does
    let out = cfa(dir.path())
        .args(["init", "--dir", ".cfa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ci_gate_template_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["init", "-t", "ci-gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let p = dir.path();
    assert!(p.join("cfa.yaml").is_file());
    // the workflow's own `run:` lines, except installing cfa (already on the PATH)
    let wf = std::fs::read_to_string(p.join(".github/workflows/cfa-gate.yml")).unwrap();
    let wf = cfa::policy::yaml::parse_value(&wf).unwrap();
    let steps = wf["jobs"]["gate"]["steps"].as_array().unwrap();
    let runs: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .filter(|r| !r.contains("cargo install"))
        .collect();
    assert_eq!(runs, ["sh scripts/cfa-gate.sh"]);
    for line in &runs {
        let (code, out, err) = sh(p, line);
        assert_eq!(code, 0, "{line}: {out}{err}");
        assert!(
            out.contains("Policy check APPROVE: signatures/nfe_daily.json"),
            "{out}"
        );
        assert!(out.contains("Chain INTACT"), "{out}");
    }
    // a signature the bundle blocks fails the gate with the block's exit code
    std::fs::write(p.join("signatures/raw_pii.json"), raw_pii_signature()).unwrap();
    let (code, out, _) = sh(p, runs[0]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("Policy check BLOCK: signatures/raw_pii.json"),
        "{out}"
    );
}

#[test]
fn dbt_template_generates_only_approved_projects() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["init", "-t", "dbt", "--dir", "proj"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let p = dir.path().join("proj");
    let (code, out, err) = sh(&p, "sh scripts/cfa-dbt.sh");
    assert_eq!(code, 0, "{out}{err}");
    let project = p.join("dbt/nfe_daily");
    assert!(project.join("dbt_project.yml").is_file(), "{out}");
    assert!(project.join("models/schema.yml").is_file(), "{out}");
    // a blocked signature stops the script and gets no project
    std::fs::remove_dir_all(p.join("dbt")).unwrap();
    std::fs::write(p.join("signatures/a_raw_pii.json"), raw_pii_signature()).unwrap();
    let (code, _, _) = sh(&p, "sh scripts/cfa-dbt.sh");
    assert_eq!(code, 4);
    assert!(!p.join("dbt/a_raw_pii").exists());
}

#[test]
fn mcp_template_command_serves_the_projects_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = cfa(dir.path())
        .args(["init", "-t", "mcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let conf: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".mcp.json")).unwrap())
            .unwrap();
    let server = &conf["mcpServers"]["cfa"];
    assert_eq!(server["command"], "cfa");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // the command as the client runs it: `cfa` looked up on the PATH, from the project
    let mut child = std::process::Command::new("cfa")
        .args(&args)
        .current_dir(dir.path())
        .env("PATH", path_with_cfa())
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_MCP_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut call = |v: Value| -> Option<Value> {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
        v.get("id")?;
        Some(serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
    };
    let init = call(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}}))
    .unwrap();
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    call(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let rules = call(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "cfa_describe_rules", "arguments": {}}}))
    .unwrap();
    assert_eq!(
        rules["result"]["structuredContent"]["policy_bundle"], "prod-v1.0",
        "{rules}"
    );
    let eval = call(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "cfa_evaluate_intent", "arguments": {"intent": APPROVE}}}))
    .unwrap();
    assert_eq!(eval["result"]["isError"], false, "{eval}");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    // the server wrote its decision to the project's audit log (cfa.yaml's storage)
    assert!(dir.path().join(".cfa/audit.jsonl").is_file());
    // MCP.md's try-it-by-hand line, as written
    let readme = std::fs::read_to_string(dir.path().join("MCP.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("printf "))
        .unwrap()
        .trim();
    let (code, out, err) = sh(dir.path(), line);
    assert_eq!(code, 0, "{err}");
    let init: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "cfa-mcp", "{out}");
}

#[test]
fn templates_refuse_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).args(["init"]).assert().code(0);
    // the base files exist: a template on top refuses, and writes none of its own
    let out = cfa(dir.path())
        .args(["init", "-t", "ci-gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("scripts").exists());
    cfa(dir.path())
        .args(["init", "-t", "ci-gate", "--force"])
        .assert()
        .code(0);
    assert!(dir.path().join("scripts/cfa-gate.sh").is_file());
}
