#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Messages where users stumble, through the real binary: evaluating with no catalog,
//! `policy check`'s replan counter, and `--sandbox panic` on any plan.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn ex(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
        .to_str()
        .unwrap()
        .to_owned()
}

/// A command run in an empty temp dir (no config is discovered above /tmp).
fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    c
}

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
/// Approved under prod-v1, and its plan has no `extract_nfe` step.
const CLIENTES_ONLY: &str = "load clientes daily into silver, anonymize pii";

#[test]
fn evaluate_without_a_catalog_says_no_catalog_was_loaded() {
    let dir = tempfile::tempdir().unwrap();
    // JSON: still a block (exit 4), and the reason names the missing catalog.
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE, "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "blocked");
    let reason = v["blocked_reason"].as_str().unwrap();
    assert!(reason.starts_with("no catalog loaded"), "{reason}");
    assert!(
        reason.contains("-c") && reason.contains("cfa init"),
        "{reason}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no catalog loaded"), "{stderr}");
    // The table and the summary say it too.
    for format in ["table", "summary"] {
        let out = cfa(dir.path())
            .args(["evaluate", APPROVE, "-f", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("no catalog loaded"), "{format}: {text}");
    }
    // resolve warns on stderr.
    let out = cfa(dir.path()).args(["resolve", APPROVE]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no catalog loaded"),
        "{out:?}"
    );
    // With a catalog nothing of the kind is said.
    let out = cfa(dir.path())
        .args([
            "evaluate",
            "Join NFe with Clientes and persist to Silver",
            "-c",
            &ex("catalog.json"),
            "-p",
            "prod-v1",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !v["blocked_reason"]
            .as_str()
            .unwrap()
            .contains("no catalog loaded")
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no catalog loaded"));
}

#[test]
fn policy_check_text_and_json_agree_on_the_replan_counter() {
    let dir = tempfile::tempdir().unwrap();
    let sig = ex("signatures/replan_multi.json");
    for count in ["0", "2"] {
        let out = cfa(dir.path())
            .args([
                "policy",
                "check",
                "-s",
                &sig,
                "--replan-count",
                count,
                "-f",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let json_count = v["replan_count"].as_u64().unwrap();
        assert_eq!(json_count.to_string(), count);
        let out = cfa(dir.path())
            .args(["policy", "check", "-s", &sig, "--replan-count", count])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("replan_count:"))
            .unwrap_or_else(|| panic!("no replan_count line: {text}"));
        let shown = line.split_whitespace().nth(1).unwrap();
        assert_eq!(shown, count, "{text}");
        let attempt = json_count + 1;
        assert!(line.contains(&format!("attempt {attempt} of 3")), "{line}");
        // The reasoning stays the engine's text, as in the JSON.
        assert!(text.contains(v["reasoning"].as_str().unwrap()), "{text}");
    }
}

#[test]
fn the_panic_sandbox_interrupts_a_plan_without_extract_nfe() {
    let dir = tempfile::tempdir().unwrap();
    let c = ex("catalog.json");
    let base = [
        "evaluate",
        CLIENTES_ONLY,
        "-c",
        &c,
        "-p",
        "prod-v1",
        "-f",
        "json",
    ];
    // The mock publishes this plan, which has no `extract_nfe` step.
    let out = cfa(dir.path()).args(base).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["execution"]["details"]["committed_steps"]
        .as_array()
        .unwrap();
    assert!(!steps.is_empty());
    assert!(!steps.iter().any(|s| s == "extract_nfe"), "{steps:?}");
    let first = steps[0].as_str().unwrap().to_owned();
    // The panic sandbox interrupts its first step: nothing published.
    let out = cfa(dir.path())
        .args(base)
        .args(["--sandbox", "panic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "rolled_back", "{v}");
    let faults = v["faults"].as_array().unwrap();
    let panic = faults
        .iter()
        .find(|f| f["code"] == "ENVIRONMENTAL_PANIC")
        .unwrap_or_else(|| panic!("{faults:?}"));
    assert!(
        panic["message"].as_str().unwrap().contains(&first),
        "{panic}"
    );
    assert!(
        v["execution"]["details"]["committed_steps"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A named step is the one interrupted.
    let out = cfa(dir.path())
        .args(base)
        .args(["--sandbox", "panic", "--panic-step", "load_target"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "rolled_back", "{v}");
    assert!(
        v["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("'load_target'")),
        "{v}"
    );
    // A named step the plan lacks never lets the run publish.
    let out = cfa(dir.path())
        .args(base)
        .args(["--sandbox", "panic", "--panic-step", "no_such_step"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["blocked_reason"]
            .as_str()
            .unwrap()
            .contains("'no_such_step', is not in the plan"),
        "{v}"
    );
}

/// `cfa mcp` in `dir` with `extra` flags: initialize, then one `cfa_evaluate_intent`
/// call; returns the call's structured result.
fn mcp_evaluate(dir: &Path, extra: &[&str], intent: &str) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"))
        .current_dir(dir)
        .arg("mcp")
        .args(extra)
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_POLICY_BUNDLE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "trust", "version": "1"}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "cfa_evaluate_intent", "arguments": {"intent": intent}}}),
    ];
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let answer: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["id"] == 2)
        .unwrap_or_else(|| panic!("no answer: {text}"));
    answer["result"]["structuredContent"].clone()
}

#[test]
fn mcp_evaluate_without_a_catalog_says_no_catalog_was_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let s = mcp_evaluate(dir.path(), &[], APPROVE);
    assert_eq!(s["state"], "blocked", "{s}");
    let reason = s["blocked_reason"].as_str().unwrap();
    assert!(reason.starts_with("no catalog loaded"), "{reason}");
    assert!(reason.contains("--catalog"), "{reason}");
    let c = ex("catalog.json");
    let s = mcp_evaluate(dir.path(), &["-c", &c], "make me a sandwich");
    assert_eq!(s["state"], "blocked", "{s}");
    assert!(
        !s["blocked_reason"]
            .as_str()
            .unwrap()
            .contains("no catalog loaded"),
        "{s}"
    );
}
