//! Shadow mode through the real binary: `cfa serve --shadow-bundle` answers exactly as
//! without it, audits each flip (`shadow_flip`, stage `shadow`) in the chain and counts
//! decisions and flips in `/metrics`; `cfa policy check` and `cfa evaluate` with
//! `--shadow-bundle` keep their output and exit code and record the flip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Served, http, spawn_served};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn cfa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "warn");
    c
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The example signatures; against finops-strict-v1 as candidate, three of the five
/// flip (raw_pii block -> replan, replan_multi replan -> block, zero_cost block -> approve).
const SIGNATURES: [&str; 5] = [
    "no_merge.json",
    "ok.json",
    "raw_pii.json",
    "replan_multi.json",
    "zero_cost.json",
];

fn serve(dir: &Path, shadow: bool) -> Served {
    let mut cmd = cfa();
    cmd.current_dir(dir)
        .args(["serve", "--port", "0", "--audit-log", "audit.jsonl"])
        .stderr(Stdio::null());
    if shadow {
        cmd.args(["--shadow-bundle", "finops-strict-v1"]);
    }
    spawn_served(cmd)
}

fn metrics(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn verify(log: &Path) {
    let out = cfa()
        .args(["audit", "verify", "--file"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// What identifies the answer, without the per-request ids.
fn answer(v: &Value) -> Value {
    serde_json::json!({"action": v["action"], "decision": v["decision"],
                       "content_hash": v["content_hash"], "policy_bundle": v["policy_bundle"]})
}

#[test]
fn serve_answers_unchanged_audits_and_counts_flips() {
    let (plain_dir, shadow_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = serve(plain_dir.path(), false);
    let shadowed = serve(shadow_dir.path(), true);
    for name in SIGNATURES {
        let body = std::fs::read_to_string(examples().join("signatures").join(name)).unwrap();
        let (s1, a) = http(&plain.addr, "POST", "/v1/decisions", &body);
        let (s2, b) = http(&shadowed.addr, "POST", "/v1/decisions", &body);
        assert_eq!((s1, s2), (200, 200), "{name}: {a} {b}");
        assert_eq!(
            answer(&a),
            answer(&b),
            "{name}: the shadow changed the answer"
        );
    }
    let text = metrics(&shadowed.addr);
    assert_eq!(sample(&text, "cfa_shadow_decisions_total"), 5.0);
    for (from, to) in [
        ("block", "replan"),
        ("replan", "block"),
        ("block", "approve"),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("cfa_shadow_flips_total{{from=\"{from}\",to=\"{to}\"}}")
            ),
            1.0,
            "{text}"
        );
    }
    assert!(!metrics(&plain.addr).contains("cfa_shadow"));
    drop((plain, shadowed));

    let log = shadow_dir.path().join("audit.jsonl");
    verify(&log);
    let all = events(&log);
    let flips: Vec<&Value> = all.iter().filter(|e| e["stage"] == "shadow").collect();
    assert_eq!(all.len(), 5 + 3);
    assert_eq!(flips.len(), 3);
    for f in &flips {
        assert_eq!(f["event_type"], "shadow_flip");
        assert_eq!(f["details"]["candidate_bundle"], "finops-strict-v1.0");
        assert_ne!(f["details"]["enforcing_action"], Value::Null);
        assert_eq!(f["outcome"], f["details"]["candidate_action"]);
    }
    let f = flips
        .iter()
        .find(|f| f["details"]["enforcing_action"] == "replan")
        .unwrap();
    assert_eq!(f["details"]["candidate_action"], "block");
    assert_eq!(
        f["details"]["candidate_faults"],
        serde_json::json!([
            "FINOPS_MISSING_TEMPORAL_PREDICATE",
            "FINOPS_SENSITIVE_WITHOUT_PARTITION"
        ])
    );
    // The plain server's log has no shadow events.
    assert!(
        events(&plain_dir.path().join("audit.jsonl"))
            .iter()
            .all(|e| e["stage"] == "policy_check")
    );
}

#[test]
fn policy_check_with_a_shadow_keeps_output_and_exit_and_records_the_flip() {
    let dir = tempfile::tempdir().unwrap();
    let sig = examples().join("signatures/zero_cost.json");
    let run = |shadow: bool, log: &str| {
        let mut c = cfa();
        c.current_dir(dir.path())
            .args(["policy", "check", "-f", "json", "--audit-log", log, "-s"])
            .arg(&sig);
        if shadow {
            c.args(["--shadow-bundle", "finops-strict-v1"]);
        }
        c.output().unwrap()
    };
    let (a, b) = (run(false, "a.jsonl"), run(true, "b.jsonl"));
    assert_eq!(a.status.code(), Some(4));
    assert_eq!(b.status.code(), Some(4));
    let (va, vb): (Value, Value) = (
        serde_json::from_slice(&a.stdout).unwrap(),
        serde_json::from_slice(&b.stdout).unwrap(),
    );
    assert_eq!(va["action"], vb["action"]);
    assert_eq!(va["faults"], vb["faults"]);
    assert_eq!(va["reasoning"], vb["reasoning"]);
    let err = String::from_utf8(b.stderr).unwrap();
    assert!(
        err.contains("shadow: finops-strict-v1.0 would approve"),
        "{err}"
    );
    let log = dir.path().join("b.jsonl");
    verify(&log);
    let ev = events(&log);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["event_type"], "shadow_flip");
    assert_eq!(ev[1]["details"]["decision_id"], vb["decision_id"]);
    assert_eq!(ev[1]["details"]["enforcing_action"], "block");
    assert_eq!(events(&dir.path().join("a.jsonl")).len(), 1);
    // A candidate that cannot be loaded is an error before anything is decided.
    let out = cfa()
        .current_dir(dir.path())
        .args(["policy", "check", "--shadow-bundle", "nope.yaml", "-s"])
        .arg(&sig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn evaluate_with_a_shadow_keeps_the_result_and_records_the_flip() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = examples().join("catalog.json");
    // Approved by prod-v1; lgpd-v1 blocks a gold write without an approval.
    let intent = "Join nfe with clientes daily, anonymize pii, into gold";
    let run = |shadow: Option<&str>, log: &str| {
        let mut c = cfa();
        c.current_dir(dir.path())
            .args([
                "evaluate",
                intent,
                "-f",
                "json",
                "-p",
                "prod-v1",
                "--audit-log",
                log,
                "-c",
            ])
            .arg(&catalog);
        if let Some(s) = shadow {
            c.args(["--shadow-bundle", s]);
        }
        c.output().unwrap()
    };
    let (a, b) = (run(None, "a.jsonl"), run(Some("lgpd-v1"), "b.jsonl"));
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(b.status.code(), Some(0));
    let strip = |out: &[u8]| {
        let v: Value = serde_json::from_slice(out).unwrap();
        (
            v["state"].clone(),
            v["faults"].clone(),
            v["signature_hash"].clone(),
        )
    };
    assert_eq!(strip(&a.stdout), strip(&b.stdout));
    let err = String::from_utf8(b.stderr).unwrap();
    assert!(
        err.contains("shadow: lgpd-v1.0 would block [LGPD_GOLD_WRITE_WITHOUT_APPROVAL]"),
        "{err}"
    );
    let (ea, eb) = (
        events(&dir.path().join("a.jsonl")),
        events(&dir.path().join("b.jsonl")),
    );
    verify(&dir.path().join("b.jsonl"));
    assert_eq!(eb.len(), ea.len() + 1);
    let flip = eb.last().unwrap();
    assert_eq!(flip["event_type"], "shadow_flip");
    assert_eq!(flip["details"]["enforcing_action"], "approve");
    assert_eq!(flip["details"]["candidate_action"], "block");
    // The same bundle as candidate agrees: nothing extra is written.
    let c = run(Some("prod-v1"), "c.jsonl");
    assert_eq!(c.status.code(), Some(0));
    assert_eq!(events(&dir.path().join("c.jsonl")).len(), ea.len());
}

#[test]
fn mcp_decisions_keep_their_answer_and_record_the_flip() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = cfa()
        .current_dir(dir.path())
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_MCP_RATE_LIMIT")
        .args([
            "mcp",
            "--audit-log",
            "audit.jsonl",
            "--shadow-bundle",
            "finops-strict-v1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}}),
    );
    let _ = lines.next().unwrap().unwrap();
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let sig: Value = serde_json::from_str(
        &std::fs::read_to_string(examples().join("signatures/zero_cost.json")).unwrap(),
    )
    .unwrap();
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "cfa_evaluate_signature", "arguments": {"signature": sig}}}),
    );
    let reply: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    // The enforcing default rules block a zero cost ceiling; the candidate would approve.
    assert_eq!(
        reply["result"]["structuredContent"]["action"], "block",
        "{reply}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let log = dir.path().join("audit.jsonl");
    verify(&log);
    let ev = events(&log);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["stage"], "policy_check");
    assert_eq!(ev[1]["event_type"], "shadow_flip");
    assert_eq!(ev[1]["details"]["candidate_action"], "approve");
    assert_eq!(
        ev[1]["details"]["decision_id"],
        reply["result"]["structuredContent"]["decision_id"]
    );
}
