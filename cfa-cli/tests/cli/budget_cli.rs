#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Budgets through the real binary: `cfa budget set|show|list|rm` (JSON and text, bad
//! input refused with nothing changed, every change audited), `cfa evaluate --db`
//! charging an approved run (reserved, reconciled with the mock sandbox's metrics,
//! released on rollback, blocked with `BUDGET_EXCEEDED` and what remains), processes
//! racing for the last runs never overspending, and the HTTP (`GET /v1/budgets`, `PUT
//! /v1/budgets/{scope}`, `/metrics`) and MCP (`cfa_budget_status`) faces.

use crate::support::{Mcp, Served, request, spawn_served};
use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
const WITH_COST: &str = "Join nfe with clientes daily, anonymize pii, into silver, max 20 DBU";
const NOW: &str = "2026-01-01T12:00:00";

fn catalog() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/catalog.json")
        .to_str()
        .unwrap()
        .to_owned()
}

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir).env_remove("CFA_POLICY_BUNDLE");
    c
}

/// `cfa ARGS…` → (exit code, stdout JSON or Null, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = cfa(dir).args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn evaluate(dir: &Path, db: &Path, intent: &str, extra: &[&str]) -> (i32, Value) {
    let c = catalog();
    let mut args = vec![
        "evaluate",
        intent,
        "-c",
        c.as_str(),
        "-f",
        "json",
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, v, err) = run(dir, &args);
    assert!(v.is_object(), "{err}");
    (code, v)
}

fn audit_events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The domain the approving intent is grounded in.
fn domain(dir: &Path) -> String {
    let c = catalog();
    let (_, v, _) = run(
        dir,
        &[
            "evaluate",
            APPROVE,
            "-c",
            &c,
            "-f",
            "json",
            "--sandbox",
            "none",
        ],
    );
    v["signature"]["domain"].as_str().unwrap().to_owned()
}

#[test]
fn set_show_list_rm_with_json_text_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    let (db_s, log_s) = (db.to_str().unwrap(), log.to_str().unwrap());
    let (code, v, err) = run(
        d,
        &[
            "budget",
            "set",
            "domain:finance",
            "--window",
            "24h",
            "--dbu",
            "100",
            "--runs",
            "5",
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--by",
            "alice",
            "--now",
            NOW,
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["replaced"], false);
    let b = &v["budget"];
    assert_eq!(b["scope"], "domain:finance");
    assert_eq!(b["window"], "24h");
    assert_eq!(b["window_start"], "2026-01-01T00:00:00+00:00");
    assert_eq!(b["window_end"], "2026-01-02T00:00:00+00:00");
    assert_eq!(b["limits"], json!({"dbu": 100.0, "runs": 5, "rows": null}));
    assert_eq!(
        b["remaining"],
        json!({"dbu": 100.0, "runs": 5, "rows": null})
    );
    // The lifecycle tables are there too: it is the database `evaluate --db` uses.
    let (code, _, err) = run(d, &["lifecycle", "list", "--db", db_s]);
    assert_eq!(code, 0, "{err}");

    // Text output, a replacement, a second budget.
    let out = cfa(d)
        .args([
            "budget",
            "set",
            "domain:finance",
            "--window",
            "1h",
            "--rows",
            "1000",
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--by",
            "bob",
            "--now",
            NOW,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Replaced budget domain:finance  window 1h from 2026-01-01T12:00:00+00:00: rows 0 of 1000 used"), "{text}");
    run(
        d,
        &[
            "budget",
            "set",
            "agent:bot-7",
            "--window",
            "30d",
            "--dbu",
            "2.5",
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--now",
            NOW,
        ],
    );

    let (code, v, _) = run(
        d,
        &["budget", "list", "--db", db_s, "--now", NOW, "-f", "json"],
    );
    assert_eq!(code, 0);
    let scopes: Vec<&str> = v["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["agent:bot-7", "domain:finance"]);
    let (code, v, _) = run(
        d,
        &[
            "budget",
            "show",
            "agent:bot-7",
            "--db",
            db_s,
            "--now",
            NOW,
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["budget"]["limits"]["dbu"], 2.5);
    let out = cfa(d)
        .args(["budget", "list", "--db", db_s, "--now", NOW])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Budgets (2):\n  agent:bot-7  window 30d"),
        "{text}"
    );
    assert!(
        text.contains("dbu 0 of 2.5 used (0 reserved), 2.5 left"),
        "{text}"
    );

    let (code, v, _) = run(
        d,
        &[
            "budget",
            "rm",
            "agent:bot-7",
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--now",
            NOW,
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["removed"], "agent:bot-7");
    let (code, v, _) = run(
        d,
        &["budget", "show", "agent:bot-7", "--db", db_s, "-f", "json"],
    );
    assert_eq!(code, 1);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no budget for scope agent:bot-7"),
        "{v}"
    );

    // Every change is one control event, and the chain verifies.
    let events = audit_events(&log);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["stage"].as_str().unwrap(),
                e["event_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("control", "budget_set"),
            ("control", "budget_set"),
            ("control", "budget_set"),
            ("control", "budget_removed")
        ]
    );
    assert_eq!(events[0]["details"]["by"], "alice");
    assert_eq!(events[1]["details"]["previous"]["window"], "24h");
    assert_eq!(events[1]["details"]["limits"]["rows"], 1000);
    cfa(d)
        .args(["audit", "verify", "--file", log_s])
        .assert()
        .code(0);
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    let (db_s, log_s) = (db.to_str().unwrap(), log.to_str().unwrap());
    run(
        d,
        &[
            "budget",
            "set",
            "domain:finance",
            "--window",
            "24h",
            "--runs",
            "3",
            "--db",
            db_s,
            "--audit-log",
            log_s,
            "--now",
            NOW,
        ],
    );
    let before = run(
        d,
        &["budget", "list", "--db", db_s, "--now", NOW, "-f", "json"],
    )
    .1;

    for (args, code, says) in [
        (
            vec!["finance", "--window", "24h", "--runs", "1"],
            2,
            "expected KIND:NAME",
        ),
        (
            vec!["team:x", "--window", "24h", "--runs", "1"],
            2,
            "the kind must be domain, target or agent",
        ),
        (
            vec!["domain:finance", "--window", "0h", "--runs", "1"],
            2,
            "between 1 s and 366 days",
        ),
        (
            vec!["domain:finance", "--window", "1y", "--runs", "1"],
            2,
            "unit s, m, h, d or w",
        ),
        (
            vec!["domain:finance", "--window", "24h", "--dbu=-3"],
            2,
            "not a non-negative number",
        ),
        (
            vec!["domain:finance", "--window", "24h"],
            1,
            "give at least one limit",
        ),
    ] {
        let mut full = vec!["budget", "set"];
        full.extend(args.iter().copied());
        full.extend(["--db", db_s, "--audit-log", log_s, "-f", "json"]);
        let (got, v, err) = run(d, &full);
        assert_eq!(got, code, "{args:?}: {err}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says) || err.contains(says),
            "{args:?}: {v} {err}"
        );
    }
    let after = run(
        d,
        &["budget", "list", "--db", db_s, "--now", NOW, "-f", "json"],
    )
    .1;
    assert_eq!(before, after);
    assert_eq!(audit_events(&log).len(), 1, "no event for a refused change");
    // A missing database is named, never created, by the read commands.
    let missing = d.join("none.db");
    let (code, v, _) = run(
        d,
        &[
            "budget",
            "list",
            "--db",
            missing.to_str().unwrap(),
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lifecycle database not found"),
        "{v}"
    );
    assert!(!missing.exists());
}

#[test]
fn an_approved_run_is_reconciled_a_rolled_back_one_released_and_an_exhausted_budget_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    let (db_s, log_s) = (db.to_str().unwrap(), log.to_str().unwrap());
    let scope = format!("domain:{}", domain(d));
    run(
        d,
        &[
            "budget", "set", &scope, "--window", "30d", "--dbu", "30", "--runs", "10", "--db", db_s,
        ],
    );

    // Approved: 20 DBU reserved, then reconciled with the mock's measured cost and rows.
    let (code, v) = evaluate(d, &db, WITH_COST, &["--audit-log", log_s]);
    assert_eq!(code, 0, "{v}");
    let metrics = &v["execution"]["details"]["metrics"];
    let (_, s, _) = run(d, &["budget", "show", &scope, "--db", db_s, "-f", "json"]);
    assert_eq!(s["budget"]["spent"]["runs"], 1);
    assert_eq!(s["budget"]["spent"]["dbu"], metrics["cost_dbu"]);
    assert_eq!(s["budget"]["spent"]["rows"], metrics["rows_output"]);
    assert_eq!(
        s["budget"]["reserved"],
        json!({"dbu": 0.0, "runs": 0, "rows": 0})
    );
    let events = audit_events(&log);
    let control: Vec<&str> = events
        .iter()
        .filter(|e| e["stage"] == "control")
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(control, ["budget_reserved", "budget_reconciled"]);

    // Rolled back: reserved, then released; nothing spent.
    let spent = s["budget"]["spent"].clone();
    let (code, v) = evaluate(
        d,
        &db,
        WITH_COST,
        &[
            "--audit-log",
            log_s,
            "--mock-fail-step",
            "load_target",
            "--failure-policy",
            "full_rollback",
        ],
    );
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["state"], "rolled_back");
    let (_, s, _) = run(d, &["budget", "show", &scope, "--db", db_s, "-f", "json"]);
    assert_eq!(s["budget"]["spent"], spent);
    let last_control = audit_events(&log)
        .into_iter()
        .rfind(|e| e["stage"] == "control")
        .unwrap();
    assert_eq!(last_control["event_type"], "budget_released");

    // Lower the cap below what is spent plus one estimate: blocked before it runs, with
    // what remains in the message and the fault.
    run(
        d,
        &[
            "budget", "set", &scope, "--window", "30d", "--dbu", "21", "--db", db_s,
        ],
    );
    let (code, v) = evaluate(d, &db, WITH_COST, &["--audit-log", log_s]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["state"], "blocked");
    assert_eq!(v["faults"][0]["code"], "BUDGET_EXCEEDED");
    let remaining = 21.0 - spent["dbu"].as_f64().unwrap();
    let message = v["faults"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "20 dbu requested, {remaining} of 21 remaining in the 30d window"
        )),
        "{message}"
    );
    assert!(
        v["blocked_reason"]
            .as_str()
            .unwrap()
            .starts_with("Budget exceeded: "),
        "{v}"
    );
    assert!(v["execution"].is_null());
    let events = audit_events(&log);
    let ex = events
        .iter()
        .find(|e| e["event_type"] == "budget_exceeded")
        .unwrap();
    assert_eq!(ex["stage"], "control");
    assert_eq!(ex["details"]["remaining"], remaining);
    assert_eq!(
        events.last().unwrap()["details"]["faults"][0],
        "BUDGET_EXCEEDED"
    );
    cfa(d)
        .args(["audit", "verify", "--file", log_s])
        .assert()
        .code(0);
    // Nothing was held by the refused run.
    let (_, s, _) = run(d, &["budget", "show", &scope, "--db", db_s, "-f", "json"]);
    assert_eq!(s["budget"]["reserved"]["runs"], 0);
}

#[test]
fn processes_racing_for_the_last_runs_never_overspend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("race.db");
    let db_s = db.to_str().unwrap();
    let (code, _, err) = run(
        d,
        &[
            "budget",
            "set",
            "agent:racer",
            "--window",
            "24h",
            "--runs",
            "3",
            "--db",
            db_s,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let c = catalog();
    let procs: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"))
                .current_dir(d)
                .args([
                    "evaluate",
                    APPROVE,
                    "-c",
                    c.as_str(),
                    "-f",
                    "json",
                    "--db",
                    db_s,
                    "--agent",
                    "racer",
                    // One lease holder for all: the race is for the budget, not the target.
                    "--lease-holder",
                    "racers",
                    // Every run holds its reservation a while, so they overlap.
                    "--mock-delay-ms",
                    "400",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut approved = 0;
    let mut exceeded = 0;
    for p in procs {
        let out = p.wait_with_output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        match out.status.code().unwrap() {
            0 => approved += 1,
            4 if v["faults"][0]["code"] == "BUDGET_EXCEEDED" => {
                assert!(
                    v["faults"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("0 of 3 remaining"),
                    "{v}"
                );
                exceeded += 1;
            }
            other => panic!("exit {other}: {v}"),
        }
    }
    assert_eq!((approved, exceeded), (3, 3));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, runs): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(runs), 0) FROM budget_reservations WHERE scope = 'agent:racer' AND state != 'released'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, runs), (3, 3));
}

fn serve(d: &Path, db: &Path, log: &Path, token: Option<&str>) -> Served {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"));
    cmd.current_dir(d)
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .args([
            "serve",
            "--port",
            "0",
            "--lifecycle-db",
            db.to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    spawn_served(cmd)
}

#[test]
fn http_lists_sets_with_the_token_and_exports_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    run(
        d,
        &[
            "budget",
            "set",
            "domain:finance",
            "--window",
            "24h",
            "--dbu",
            "10",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    let s = serve(d, &db, &log, Some("op-secret"));
    let t = Some("op-secret");

    let (status, body) = request(&s.addr, "GET", "/v1/budgets", t, "");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["budgets"][0]["scope"], "domain:finance");
    assert_eq!(v["budgets"][0]["remaining"]["dbu"], 10.0);

    let (status, body) = request(
        &s.addr,
        "PUT",
        "/v1/budgets/agent:bot-1",
        t,
        r#"{"window": "1h", "runs": 4, "by": "ops"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["budget"]["limits"]["runs"], 4);
    assert_eq!(v["replaced"], false);
    let (status, body) = request(&s.addr, "GET", "/v1/budgets?scope=agent:bot-1", t, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["budget"]["window"],
        "1h"
    );

    // Bad input: 400 with the reason, nothing changed; no token: 401.
    for (path, body, says) in [
        (
            "/v1/budgets/agent:bot-1",
            r#"{"window": "0h", "runs": 1}"#,
            "between 1 s and 366 days",
        ),
        (
            "/v1/budgets/nobody",
            r#"{"window": "1h", "runs": 1}"#,
            "expected KIND:NAME",
        ),
        (
            "/v1/budgets/agent:bot-1",
            r#"{"window": "1h"}"#,
            "give at least one limit",
        ),
        (
            "/v1/budgets/agent:bot-1",
            r#"{"window": "1h", "runs": 1, "extra": 1}"#,
            "unknown field",
        ),
    ] {
        let (status, resp) = request(&s.addr, "PUT", path, t, body);
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(resp.contains(says), "{resp}");
    }
    let (status, _) = request(
        &s.addr,
        "PUT",
        "/v1/budgets/agent:bot-1",
        None,
        r#"{"window": "1h", "runs": 9}"#,
    );
    assert_eq!(status, 401);
    let (_, body) = request(&s.addr, "GET", "/v1/budgets?scope=agent:bot-1", t, "");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["budget"]["limits"]["runs"],
        4
    );

    let (status, metrics) = request(&s.addr, "GET", "/metrics", t, "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"cfa_budget_remaining{scope="domain:finance",dimension="dbu"} 10.0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"cfa_budget_spent{scope="agent:bot-1",dimension="runs"} 0.0"#),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));
    drop(s);
    // The HTTP change is in the server's audit log.
    let events = audit_events(&log);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "budget_set");
    assert_eq!(events[0]["details"]["by"], "ops");

    // A server without an operator token never sets a budget.
    let s = serve(d, &db, &log, None);
    let (status, body) = request(
        &s.addr,
        "PUT",
        "/v1/budgets/agent:bot-2",
        None,
        r#"{"window": "1h", "runs": 1}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("operator_token_required"), "{body}");
}

#[test]
fn mcp_budget_status_reads_the_servers_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    run(
        d,
        &[
            "budget",
            "set",
            "target:silver.x",
            "--window",
            "7d",
            "--rows",
            "500",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    let mut cmd = crate::support::cfa_cmd();
    cmd.current_dir(d)
        .args(["mcp", "--lifecycle-db", db.to_str().unwrap()]);
    let mut m = Mcp::spawn(cmd);
    let mut call = |id: u64, msg: Value| -> Value { m.raw(id, &msg) };
    call(
        1,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}),
    );
    call(
        0,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    let all = call(
        2,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "cfa_budget_status", "arguments": {}}}),
    );
    let sc = &all["result"]["structuredContent"];
    assert_eq!(sc["budgets"][0]["scope"], "target:silver.x", "{all}");
    assert_eq!(sc["budgets"][0]["remaining"]["rows"], 500);
    let one = call(
        3,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "cfa_budget_status", "arguments": {"scope": "target:silver.x"}}}),
    );
    assert_eq!(
        one["result"]["structuredContent"]["budget"]["window"], "7d",
        "{one}"
    );
    let bad = call(
        4,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "cfa_budget_status", "arguments": {"scope": "agent:nobody"}}}),
    );
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert_eq!(
        bad["result"]["structuredContent"]["error"]["code"],
        "budget_not_found"
    );
}

/// `cfa serve` with the test catalog, the lifecycle database `db` and the log `log`.
fn serve_with_catalog(d: &Path, db: &Path, log: &Path) -> Served {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"));
    cmd.current_dir(d)
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .args([
            "serve",
            "--port",
            "0",
            "-c",
            &catalog(),
            "--lifecycle-db",
            db.to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ]);
    spawn_served(cmd)
}

/// `cfa budget set SCOPE --window 24h --runs 1` in `db`.
fn set_one_run(d: &Path, db: &Path, scope: &str) {
    run(
        d,
        &[
            "budget",
            "set",
            scope,
            "--window",
            "24h",
            "--runs",
            "1",
            "--db",
            db.to_str().unwrap(),
        ],
    );
}

#[test]
fn intents_approved_by_the_faces_are_charged_their_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    let scope = format!("domain:{}", domain(d));
    set_one_run(d, &db, &scope);
    let s = serve_with_catalog(d, &db, &log);
    let body = json!({"intent": WITH_COST}).to_string();
    let (status, first) = request(&s.addr, "POST", "/v1/evaluate", None, &body);
    assert_eq!(status, 200, "{first}");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["executable"], true, "{first}");
    let (_, second) = request(&s.addr, "POST", "/v1/evaluate", None, &body);
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(second["state"], "blocked", "{second}");
    assert_eq!(second["faults"][0]["code"], "BUDGET_EXCEEDED");
    let (_, list) = request(&s.addr, "GET", "/v1/budgets", None, "");
    let list: Value = serde_json::from_str(&list).unwrap();
    // Charged at the estimate (nobody measured it): 1 run, the signature's 20 DBU.
    assert_eq!(
        list["budgets"][0]["spent"],
        json!({"dbu": 20.0, "runs": 1, "rows": 0}),
        "{list}"
    );
    drop(s);
    let types: Vec<String> = audit_events(&log)
        .into_iter()
        .filter(|e| e["stage"] == "control")
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["budget_reserved", "budget_reconciled", "budget_exceeded"]
    );
}

/// A budget set after the server started (by another process, in a database that did
/// not exist yet) is charged from the next run on, without a restart.
#[test]
fn a_budget_set_after_the_server_started_is_charged_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("life.db");
    let log = d.join("audit.jsonl");
    let scope = format!("domain:{}", domain(d));
    let s = serve_with_catalog(d, &db, &log);
    let body = json!({"intent": WITH_COST}).to_string();
    let (status, before) = request(&s.addr, "POST", "/v1/evaluate", None, &body);
    assert_eq!(status, 200, "{before}");
    assert!(
        !db.exists(),
        "a decision without budgets created the database"
    );
    set_one_run(d, &db, &scope);
    let (_, first) = request(&s.addr, "POST", "/v1/evaluate", None, &body);
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["executable"], true, "{first}");
    let (_, second) = request(&s.addr, "POST", "/v1/evaluate", None, &body);
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(second["state"], "blocked", "{second}");
    assert_eq!(second["faults"][0]["code"], "BUDGET_EXCEEDED", "{second}");
}
