#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Control state in PostgreSQL through the real binary, on a throwaway PostgreSQL 15
//! cluster (skipped by the quick profile; `cargo xtask ci` runs it). With `storage:
//! {backend: postgres, dsn_env: …}` in cfa.yaml and the DSN only in the environment:
//! `cfa kill` blocks the decisions of a `cfa serve` running in another process (once
//! the change's notification reaches its cached switches) with
//! KILL_SWITCH_ENGAGED; the HTTP (`/v1/kills`, `/v1/budgets`) and MCP
//! (`cfa_kill_switch`, `cfa_budget_status`) faces read the same database; `cfa budget`
//! and `cfa approvals` work on it; every change is one event in the PostgreSQL audit
//! chain; the DSN's password reaches no output, log or audit detail. One cluster, so
//! one test.

use crate::support::{cfa_with_dsn, http, outcome, pg_project, spawn_served};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ENV: &str = "CFA_TEST_CONTROL_PG";
const SECRET: &str = "ctl-s3cret-never-shown";

fn cfa(dir: &Path, dsn: &str) -> Command {
    cfa_with_dsn(dir, ENV, dsn, "info")
}

/// (exit code, stdout, stderr) of `cfa ARGS`.
fn run(dir: &Path, dsn: &str, args: &[&str]) -> (i32, String, String) {
    let r = outcome(cfa(dir, dsn).args(args));
    assert!(
        !r.1.contains(SECRET) && !r.2.contains(SECRET),
        "{args:?}: {r:?}"
    );
    r
}

fn decision_codes(v: &Value) -> Vec<String> {
    v["decision"]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The structured results of `calls` (tool name, arguments) through one `cfa mcp`.
fn mcp(dir: &Path, dsn: &str, calls: &[(&str, Value)]) -> Vec<Value> {
    let mut child = cfa(dir, dsn)
        .arg("mcp")
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_MCP_RATE_LIMIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut msgs = vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "t", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    for (i, (name, args)) in calls.iter().enumerate() {
        msgs.push(
            json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                         "params": {"name": name, "arguments": args}}),
        );
    }
    for msg in msgs {
        writeln!(stdin, "{msg}").unwrap();
    }
    stdin.flush().unwrap();
    let mut results = vec![Value::Null; calls.len()];
    let mut left = calls.len();
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(id) = v["id"].as_u64().filter(|id| *id >= 1) {
            results[usize::try_from(id).unwrap() - 1] = v["result"].clone();
            left -= 1;
            if left == 0 {
                break;
            }
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains(SECRET), "{log}");
    results
}

/// The server's decision on `sig` once it is `action` (a change made by another
/// process reaches the server's cached switches with its notification); fails after
/// ten seconds.
fn decide_until(addr: &str, sig: &str, action: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, v) = http(addr, "POST", "/v1/decisions", sig);
        assert_eq!(status, 200, "{v}");
        if v["action"] == action {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} after 10 s: {v}",
            v["action"]
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_kill_in_postgres_stops_every_process_and_the_faces_share_the_state() {
    let (pg, dir, dsn) = pg_project("ctl", SECRET, ENV);
    let d = dir.path();
    let sig = cfa_test_support::ok_signature().to_string();

    // --- a server, configured by cfa.yaml only ---------------------------------------
    let server_log = d.join("serve.log");
    let mut cmd = cfa(d, &dsn);
    cmd.args(["serve", "--port", "0"])
        .stderr(std::fs::File::create(&server_log).unwrap());
    let served = spawn_served(cmd);
    let addr = served.addr.as_str();
    let (status, v) = http(addr, "POST", "/v1/decisions", &sig);
    assert_eq!(
        (status, v["action"].clone()),
        (200, json!("approve")),
        "{v}"
    );
    assert!(v.get("control").is_none(), "{v}");

    // --- another process engages the switch: the server's next decision is blocked ---
    let (code, out, err) = run(
        d,
        &dsn,
        &[
            "kill",
            "--scope",
            "*",
            "--reason",
            "incident 42",
            "--by",
            "ana",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let kill: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(kill["kill"]["scope"], "*", "{kill}");
    assert_eq!(
        kill["audit_event_hash"].as_str().map(str::len),
        Some(64),
        "{kill}"
    );
    // The server keeps the switches in memory, dropped by the change's notification:
    // the switch arrives once that is delivered (well under a second).
    let v = decide_until(addr, &sig, "block");
    assert_eq!(decision_codes(&v), ["KILL_SWITCH_ENGAGED"]);
    assert_eq!(v["control"]["kill"]["by"], "ana", "{v}");
    // So are `cfa policy check` and `cfa evaluate` configured by the same cfa.yaml.
    let sig_file = d.join("sig.json");
    std::fs::write(&sig_file, &sig).unwrap();
    let (code, out, err) = run(
        d,
        &dsn,
        &[
            "policy",
            "check",
            "--signature",
            sig_file.to_str().unwrap(),
            "-f",
            "json",
        ],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("KILL_SWITCH_ENGAGED"), "{out}{err}");
    let (code, out, err) = run(
        d,
        &dsn,
        &[
            "evaluate",
            "Join nfe with clientes daily, anonymize pii, into silver",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.json"),
            "-f",
            "json",
        ],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("KILL_SWITCH_ENGAGED"), "{out}{err}");
    // The HTTP face reads the same switches.
    let (status, v) = http(addr, "GET", "/v1/kills", "");
    assert_eq!((status, v["count"].clone()), (200, json!(1)), "{v}");

    // --- MCP reads and changes the same state ----------------------------------------
    // (one session per step: a session may run its calls concurrently)
    let r = mcp(d, &dsn, &[("cfa_kill_switch", json!({"action": "list"}))]);
    assert_eq!(r[0]["structuredContent"]["count"], 1, "{}", r[0]);
    let signature: Value = serde_json::from_str(&sig).unwrap();
    let r = mcp(
        d,
        &dsn,
        &[
            (
                "cfa_kill_switch",
                json!({"action": "engage", "scope": "domain:fiscal", "reason": "freeze", "by": "bob"}),
            ),
            ("cfa_evaluate_signature", json!({ "signature": signature })),
        ],
    );
    assert_eq!(
        r[0]["structuredContent"]["kill"]["scope"], "domain:fiscal",
        "{}",
        r[0]
    );
    assert!(
        r[1].to_string().contains("KILL_SWITCH_ENGAGED"),
        "the MCP decision is blocked too: {}",
        r[1]
    );
    let (code, out, _) = run(d, &dsn, &["kill", "--list", "-f", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["count"], 2);

    // --- lifting both: the server approves again --------------------------------------
    for scope in ["*", "domain:fiscal"] {
        let (code, _, err) = run(d, &dsn, &["unkill", "--scope", scope, "--by", "ana"]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = run(d, &dsn, &["unkill", "--scope", "*", "--by", "ana"]);
    assert_eq!(code, 1, "not engaged any more: {err}");
    decide_until(addr, &sig, "approve");

    // --- budgets and approvals in the same database -----------------------------------
    let (code, out, err) = run(
        d,
        &dsn,
        &[
            "budget",
            "set",
            "domain:finance",
            "--window",
            "24h",
            "--runs",
            "5",
            "--by",
            "ops",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["budget"]["limits"]["runs"],
        5
    );
    let (status, v) = http(addr, "GET", "/v1/budgets", "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["budgets"][0]["scope"], "domain:finance", "{v}");
    let r = mcp(
        d,
        &dsn,
        &[("cfa_budget_status", json!({"scope": "domain:finance"}))],
    );
    assert_eq!(
        r[0]["structuredContent"]["budget"]["limits"]["runs"], 5,
        "{}",
        r[0]
    );
    let (code, out, _) = run(d, &dsn, &["budget", "list", "-f", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["budgets"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (code, _, err) = run(d, &dsn, &["budget", "rm", "domain:finance", "--by", "ops"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(d, &dsn, &["approvals", "list", "-f", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["count"], 0);
    let (code, _, err) = run(d, &dsn, &["approvals", "approve", "nope", "--by", "ana"]);
    assert_eq!(code, 1);
    assert!(err.contains("no approval ticket 'nope'"), "{err}");
    drop(served);

    // --- every change is one event in the PostgreSQL chain, no DSN in any detail ------
    let q = |sql: &str| pg.psql("ctl", sql).unwrap().trim().to_owned();
    let count = |kind: &str| {
        q(&format!(
            "SELECT count(*) FROM cfa_audit_events WHERE line LIKE '%\"event_type\":%\"{kind}\"%'"
        ))
    };
    assert_eq!(count("kill_engaged"), "2");
    assert_eq!(count("kill_released"), "2");
    assert_eq!(count("budget_set"), "1");
    assert_eq!(count("budget_removed"), "1");
    let lines = q("SELECT string_agg(line, E'\\n' ORDER BY seq) FROM cfa_audit_events");
    assert!(
        !lines.contains(SECRET) && !lines.contains("password"),
        "{lines}"
    );
    let (code, out, err) = run(d, &dsn, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let log = std::fs::read_to_string(&server_log).unwrap();
    assert!(!log.contains(SECRET), "{log}");

    // --- fail closed: the database down blocks instead of approving --------------------
    let (code, _, err) = run(
        d,
        "host=127.0.0.1 port=1 user=u password=ctl-s3cret-never-shown dbname=x",
        &["kill", "--list"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("u@127.0.0.1:1/x"), "{err}");
}
