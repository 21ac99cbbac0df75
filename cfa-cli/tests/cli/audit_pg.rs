#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The PostgreSQL audit chain through the real binary on a throwaway PostgreSQL 15
//! cluster: `cfa serve` configured by `cfa.yaml` (`storage: {backend: postgres,
//! dsn_env: …}`) and `cfa mcp --audit-pg-env` record their decisions in one chain;
//! the server down fails decisions closed (500 `audit_error`, never an unaudited 200)
//! and they recover; `cfa audit verify --pg-env`, `checkpoint` and `export` work on it;
//! the export is a JSONL log our verifier and the reference's accept; a bad DSN's
//! password never reaches any output. One cluster, so every scenario is one test.

use crate::support::{cfa_with_dsn, http, outcome, pg_project, spawn_served};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ENV: &str = "CFA_TEST_AUDIT_PG";
const SECRET: &str = "pg-s3cret-never-shown";

fn cfa(dir: &Path, dsn: &str) -> Command {
    cfa_with_dsn(dir, ENV, dsn, "warn")
}

fn run(dir: &Path, dsn: &str, args: &[&str]) -> (i32, String, String) {
    outcome(cfa(dir, dsn).args(args))
}

fn body(i: usize) -> String {
    let mut sig = cfa_test_support::ok_signature();
    sig["intent_id"] = json!(format!("pg-intent-{i}"));
    sig.to_string()
}

/// One MCP decision through `cfa mcp --audit-pg-env`: the tool result.
fn mcp_decide(dir: &Path, dsn: &str) -> Value {
    let mut child = cfa(dir, dsn)
        .args(["mcp", "--audit-pg-env", ENV])
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_MCP_RATE_LIMIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sig: Value = serde_json::from_str(&body(900)).unwrap();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "t", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "cfa_evaluate_signature", "arguments": {"signature": sig}}}),
    ] {
        writeln!(stdin, "{msg}").unwrap();
    }
    stdin.flush().unwrap();
    let mut result = Value::Null;
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == 1 {
            result = v;
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    result
}

#[test]
fn serve_and_mcp_record_into_postgres_and_the_audit_commands_read_it() {
    let (pg, dir, dsn) = pg_project("chain", SECRET, ENV);
    let d = dir.path();

    // --- HTTP: decisions recorded in the database ------------------------------
    let mut cmd = cfa(d, &dsn);
    cmd.args(["serve", "--port", "0"]).stderr(Stdio::null());
    let served = spawn_served(cmd);
    let mut hashes = Vec::new();
    for i in 0..5 {
        let (status, v) = http(&served.addr, "POST", "/v1/decisions", &body(i));
        assert_eq!(status, 200, "{v}");
        let h = v["audit_event_hash"].as_str().unwrap().to_owned();
        assert_eq!(h.len(), 64, "{v}");
        hashes.push(h);
    }
    let (status, v) = http(&served.addr, "GET", "/v1/audit/verify", "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["chain_intact"], true, "{v}");
    assert_eq!(v["total_events"], 5, "{v}");
    let q = |sql: &str| pg.psql("chain", sql).unwrap().trim().to_owned();
    assert_eq!(
        q("SELECT string_agg(event_hash, ',' ORDER BY seq) FROM cfa_audit_events"),
        hashes.join(",")
    );

    // --- fail closed: the database down → 500 audit_error, then recovery --------
    pg.stop().unwrap();
    let (status, v) = http(&served.addr, "POST", "/v1/decisions", &body(100));
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error"]["code"], "audit_error", "{v}");
    assert!(
        v.get("decision").is_none() && v.get("audit_event_hash").is_none(),
        "{v}"
    );
    assert!(!v.to_string().contains(SECRET), "{v}");
    pg.start_again().unwrap();
    let (status, v) = http(&served.addr, "POST", "/v1/decisions", &body(101));
    assert_eq!(status, 200, "{v}");
    drop(served);

    // --- MCP: the same chain ---------------------------------------------------
    let r = mcp_decide(d, &dsn);
    let doc = &r["result"]["structuredContent"];
    assert_eq!(
        doc["audit_event_hash"].as_str().map(str::len),
        Some(64),
        "{r}"
    );
    assert_eq!(q("SELECT count(*) FROM cfa_audit_events"), "7");

    // --- verify / checkpoint / export ------------------------------------------
    let (code, out, err) = run(d, &dsn, &["audit", "verify"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "[OK] Chain INTACT (7 events total)\n"),
        "{err}"
    );
    let (code, out, _) = run(
        d,
        &dsn,
        &[
            "audit",
            "verify",
            "--pg-env",
            ENV,
            "-i",
            "pg-intent-3",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["chain_intact"].clone(), v["event_count"].clone()),
        (json!(true), json!(1)),
        "{v}"
    );
    assert!(
        v["file"]
            .as_str()
            .unwrap()
            .starts_with("postgres postgres@127.0.0.1:"),
        "{v}"
    );
    let (code, _, err) = run(
        d,
        &dsn,
        &["audit", "keygen", "--name", "pg.test/audit", "--out", "k"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        d,
        &dsn,
        &[
            "audit",
            "checkpoint",
            "--pg-env",
            ENV,
            "--key",
            "k.key",
            "-o",
            "cp.note",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        d,
        &dsn,
        &[
            "audit",
            "verify",
            "--checkpoint",
            "cp.note",
            "--pubkey",
            "k.vkey",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[OK] Consistent with checkpoint pg.test/audit at size 7"),
        "{out}"
    );
    let (code, out, err) = run(
        d,
        &dsn,
        &["audit", "export", "-o", "out.jsonl", "-f", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 7, "{v}");
    let exported = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    assert_eq!(exported.lines().count(), 7);
    assert_eq!(
        exported,
        q("SELECT string_agg(line, E'\\n' ORDER BY seq) FROM cfa_audit_events") + "\n"
    );
    let (code, out, _) = run(d, &dsn, &["audit", "verify", "--file", "out.jsonl"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "[OK] Chain INTACT (7 events total)\n")
    );
    let reference = Command::new("bash")
        .arg(cfa_test_support::workspace_root().join("scripts/reference-audit-verify.sh"))
        .arg(d.join("out.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&reference.stdout);
    assert!(
        reference.status.success() && stdout.contains("Chain INTACT (7 events total)"),
        "reference verdict: {stdout}\n{}",
        String::from_utf8_lossy(&reference.stderr)
    );

    // A tampered row: verify fails (exit 1) and the checkpoint is refused.
    q("UPDATE cfa_audit_events SET line = replace(line, '\"approve\"', '\"block\"') WHERE seq = 2");
    let (code, _, err) = run(d, &dsn, &["audit", "verify", "--pg-env", ENV]);
    assert_eq!(code, 1);
    assert!(err.contains("[FAIL] Chain BROKEN"), "{err}");
    let (code, _, _) = run(d, &dsn, &["audit", "checkpoint", "--key", "k.key"]);
    assert_eq!(code, 1);

    // --- a bad DSN never shows its password -------------------------------------
    let bad =
        format!("host=127.0.0.1 port=1 user=postgres password={SECRET} dbname=x connect_timeout=3");
    for args in [
        &["audit", "verify", "--pg-env", ENV][..],
        &["audit", "verify", "--pg-env", ENV, "-f", "json"][..],
        &["audit", "export", "--pg-env", ENV, "-o", "never.jsonl"][..],
        &["serve", "--port", "0", "--audit-pg-env", ENV][..],
    ] {
        let (code, out, err) = run(d, &bad, args);
        assert_ne!(code, 0, "{args:?}");
        let all = format!("{out}{err}");
        assert!(!all.contains(SECRET), "{args:?}: {all}");
        assert!(all.contains("postgres@127.0.0.1:1/x"), "{args:?}: {all}");
    }
    assert!(!d.join("never.jsonl").exists());
    let (code, _, err) = run(
        d,
        &bad,
        &["audit", "verify", "--pg-env", "CFA_TEST_NOT_SET_AT_ALL"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("CFA_TEST_NOT_SET_AT_ALL is not set"), "{err}");
    std::fs::write(d.join("cfa.yaml"), "storage:\n  backend: postgres\n").unwrap();
    let (code, _, err) = run(d, &dsn, &["audit", "verify"]);
    assert_ne!(code, 0);
    assert!(err.contains("storage.dsn_env"), "{err}");
}
