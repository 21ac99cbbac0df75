//! Shadow mode at the right depth and governed runs replayable, through the real
//! binary: under an engaged kill switch the same bundle as shadow is never a flip
//! (`cfa evaluate`, `cfa policy check`, `cfa serve` /metrics), while a real rule change
//! still flips; `cfa evaluate` runs store their signatures beside the log, so `cfa
//! policy backtest` finds exactly the runs a changed rule flips, with inclusion proofs
//! that verify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{http, spawn_served};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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

fn intent(layer: &str) -> String {
    format!("Join nfe with clientes daily, anonymize pii, into {layer}")
}

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn flips(log: &Path) -> Vec<Value> {
    events(log)
        .into_iter()
        .filter(|e| e["event_type"] == "shadow_flip")
        .collect()
}

/// Engages the kill switch on every scope of the control database `db`.
fn kill_all(db: &Path) {
    let out = cfa()
        .args([
            "kill",
            "--scope",
            "*",
            "--reason",
            "incident 9",
            "--by",
            "ana",
        ])
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cfa evaluate INTENT -p prod-v1 -f json` into `log` (and through `control`, with a
/// `shadow`, when given).
fn evaluate(
    dir: &Path,
    layer: &str,
    log: &str,
    control: Option<&Path>,
    shadow: Option<&str>,
) -> Output {
    let mut c = cfa();
    c.current_dir(dir)
        .args(["evaluate", &intent(layer), "-f", "json", "-p", "prod-v1"])
        .args(["--audit-log", log, "-c"])
        .arg(examples().join("catalog.json"));
    if let Some(db) = control {
        c.arg("--control-db").arg(db);
    }
    if let Some(s) = shadow {
        c.args(["--shadow-bundle", s]);
    }
    c.output().unwrap()
}

#[test]
fn a_kill_switch_is_no_flip_but_a_rule_change_still_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    kill_all(&db);
    // The same bundle as shadow: the run is killed, the bundles agree, no flip.
    let out = evaluate(
        dir.path(),
        "silver",
        "same.jsonl",
        Some(&db),
        Some("prod-v1"),
    );
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"KILL_SWITCH_ENGAGED"), "{codes:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("shadow:"), "{err}");
    assert!(flips(&dir.path().join("same.jsonl")).is_empty());

    // lgpd-v1 blocks a gold write prod-v1 approves: a flip, from the bundle's own
    // approve (not the kill switch's block).
    let out = evaluate(dir.path(), "gold", "rule.jsonl", Some(&db), Some("lgpd-v1"));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shadow: lgpd-v1.0 would block [LGPD_GOLD_WRITE_WITHOUT_APPROVAL]")
            && err.contains("the enforcing bundle decided approve"),
        "{err}"
    );
    let f = flips(&dir.path().join("rule.jsonl"));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["details"]["enforcing_action"], "approve");
    assert_eq!(f[0]["details"]["enforcing_faults"], serde_json::json!([]));
    assert_eq!(f[0]["details"]["candidate_action"], "block");

    // `cfa policy check` under the switch, the same bundle as shadow: no flip either.
    let out = cfa()
        .current_dir(dir.path())
        .args([
            "policy",
            "check",
            "-f",
            "json",
            "--audit-log",
            "check.jsonl",
        ])
        .args(["--shadow-bundle", "default", "--control-db"])
        .arg(&db)
        .arg("-s")
        .arg(examples().join("signatures/ok.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["action"], "block");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("shadow:"));
    let log = dir.path().join("check.jsonl");
    assert!(!events(&log).is_empty());
    assert!(flips(&log).is_empty());
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

#[test]
fn serve_counts_only_bundle_flips_under_a_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    kill_all(&db);
    let mut cmd = cfa();
    cmd.current_dir(dir.path())
        .args(["serve", "--port", "0", "--audit-log", "audit.jsonl"])
        .args(["--shadow-bundle", "finops-strict-v1", "--control-db"])
        .arg(&db)
        .stderr(Stdio::null());
    let server = spawn_served(cmd);
    // ok.json: both bundles agree (approve); zero_cost.json: the default rules block,
    // finops-strict-v1 approves. The kill switch blocks both.
    for name in ["ok.json", "zero_cost.json"] {
        let body = std::fs::read_to_string(examples().join("signatures").join(name)).unwrap();
        let (status, v) = http(&server.addr, "POST", "/v1/decisions", &body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["action"], "block", "{name}: {v}");
        assert_eq!(v["control"]["status"], "killed", "{v}");
    }
    let text = metrics(&server.addr);
    assert!(
        text.lines().any(|l| l == "cfa_shadow_decisions_total 2"),
        "{text}"
    );
    let flip_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cfa_shadow_flips_total{"))
        .collect();
    assert_eq!(
        flip_lines,
        ["cfa_shadow_flips_total{from=\"block\",to=\"approve\"} 1"],
        "{text}"
    );
    drop(server);
    let f = flips(&dir.path().join("audit.jsonl"));
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0]["details"]["enforcing_faults"],
        serde_json::json!(["FINOPS_INVALID_COST_CEILING"]),
        "{}",
        f[0]
    );
}

#[test]
fn backtest_replays_governed_runs_and_finds_the_flipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for layer in ["silver", "gold", "silver", "gold"] {
        let out = evaluate(dir.path(), layer, "audit.jsonl", None, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        runs.push((layer, v["decision_id"].as_str().unwrap().to_owned()));
    }
    let log = dir.path().join("audit.jsonl");
    let backtest = |bundle: &str| {
        let out = cfa()
            .args([
                "policy", "backtest", "--bundle", bundle, "-f", "json", "--log",
            ])
            .arg(&log)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    // The bundle that decided replays every run unchanged.
    let (code, v) = backtest("prod-v1");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["decisions"].clone(), v["unchanged"].clone()),
        (4.into(), 4.into()),
        "{v}"
    );
    assert_eq!(v["not_replayable"], 0, "{v}");
    // lgpd-v1 flips exactly the two gold runs.
    let (code, v) = backtest("lgpd-v1");
    assert_eq!(code, Some(7), "{v}");
    assert_eq!(v["changed"], 2, "{v}");
    assert_eq!(v["unchanged"], 2, "{v}");
    let changed: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["decision_id"].as_str().unwrap())
        .collect();
    let gold: Vec<&str> = runs
        .iter()
        .filter(|(l, _)| *l == "gold")
        .map(|(_, id)| id.as_str())
        .collect();
    assert_eq!(changed, gold);
    for c in v["changes"].as_array().unwrap() {
        assert_eq!(c["stage"], "govern");
        assert_eq!(c["old"]["action"], "approve");
        assert_eq!(c["new"]["action"], "block");
        assert_eq!(
            c["new"]["faults"],
            serde_json::json!(["LGPD_GOLD_WRITE_WITHOUT_APPROVAL"])
        );
        assert_eq!(c["proof"]["verified"], true, "{c}");
        assert_eq!(c["proof"]["tree_size"], v["tree_size"]);
        // The event the proof names is the run's policy evaluation in the log.
        let ev = &events(&log)[c["index"].as_u64().unwrap() as usize];
        assert_eq!(ev["event_hash"], c["event_hash"]);
        assert_eq!(ev["event_type"], "policy_evaluation");
        assert_eq!(ev["details"]["decision_id"], c["decision_id"]);
    }
}
