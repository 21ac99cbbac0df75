//! The control plane through the real `cfa` binary (issue 16): approval tickets bound to
//! the exact signature and bundle, single-use (every refusal with its own fault code,
//! expiry with an injected time, two processes racing to spend one ticket), the kill
//! switch across processes (a running `cfa serve` and `cfa kill` from another process),
//! the HTTP and MCP round trips, and bad input that changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::spawn_served;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cfa");
const T0: &str = "2026-06-01T12:00:00+00:00";

fn cfa() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_OPERATOR_TOKEN")
        .env_remove("CFA_MCP_API_KEY");
    c
}

fn signature(layer: &str, approval: Option<&str>) -> Value {
    let mut custom = serde_json::Map::new();
    if let Some(a) = approval {
        custom.insert("approval_id".into(), json!(a));
    }
    json!({"domain": "fiscal", "intent": "publish", "target_layer": layer,
        "datasets": [{"name": "nfe", "classification": "internal", "size_gb": 1, "pii_columns": [],
                      "partition_column": "processing_date", "merge_keys": ["nfe_id"]}],
        "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                        "partition_by": ["processing_date"], "max_cost_dbu": 5.0, "custom": custom},
        "execution_context": {"policy_bundle_version": "lgpd-v1.0", "catalog_snapshot_version": "c1",
                              "context_registry_version_id": "v1"},
        "intent_id": "11111111-2222-3333-4444-555555555555"})
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// `cfa policy check -f json` with the control plane: (exit code, JSON).
fn check(sig: &Path, db: &Path, extra: &[&str]) -> (i32, Value) {
    let out = cfa()
        .args(["policy", "check", "-f", "json", "-s"])
        .arg(sig)
        .arg("--control-db")
        .arg(db)
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn codes(v: &Value) -> Vec<String> {
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `cfa ARGS`: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = cfa().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn event_types(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            format!(
                "{}/{}",
                e["stage"].as_str().unwrap(),
                e["event_type"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_approval_is_bound_to_the_exact_signature_and_bundle_and_spent_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("cfa.db"), dir.path().join("audit.jsonl"));
    let logs = ["-p", "lgpd-v1", "--audit-log", log.to_str().unwrap()];
    let held = write(dir.path(), "held.json", &signature("gold", None));
    let (code, v) = check(&held, &db, &logs);
    assert_eq!(code, 4, "{v}");
    assert_eq!(
        codes(&v),
        ["LGPD_GOLD_WRITE_WITHOUT_APPROVAL", "APPROVAL_REQUIRED"]
    );
    assert_eq!(v["control"]["status"], "pending_approval");
    let id = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    let ticket = &v["control"]["ticket"];
    assert_eq!(ticket["content_hash"], v["content_hash"]);
    assert_eq!(ticket["policy_bundle_hash"], v["policy_bundle_hash"]);
    assert_eq!(ticket["requester"], "cfa policy check");

    let named = write(dir.path(), "named.json", &signature("gold", Some(&id)));
    // not approved yet
    let (code, v) = check(&named, &db, &logs);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_PENDING".to_owned()]));
    // the list and show see it
    let (code, out, _) = run(&[
        "approvals",
        "list",
        "--db",
        db.to_str().unwrap(),
        "-f",
        "json",
    ]);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["tickets"][0]["status"], "pending");
    let (code, out, _) = run(&[
        "approvals",
        "approve",
        &id,
        "--by",
        "ana",
        "--note",
        "CHG-42",
        "--db",
        db.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("granted by ana"), "{out}");

    // another signature naming the ticket: mismatch
    let mut other = signature("gold", Some(&id));
    other["constraints"]["max_cost_dbu"] = json!(6.0);
    let other = write(dir.path(), "other.json", &other);
    let (code, v) = check(&other, &db, &logs);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_MISMATCH".to_owned()]));
    // the same signature under another bundle: mismatch
    let (code, v) = check(&named, &db, &["--audit-log", log.to_str().unwrap()]);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_MISMATCH".to_owned()]));
    assert!(
        v["faults"][0]["message"]
            .as_str()
            .unwrap()
            .contains("another policy bundle")
    );
    // the exact one: approved once
    let (code, v) = check(&named, &db, &logs);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["action"], "approve");
    assert_eq!(v["control"]["status"], "approved");
    let (code, v) = check(&named, &db, &logs);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_SPENT".to_owned()]));

    // a denied ticket, and an unknown one
    let (_, v) = check(&held, &db, &logs);
    let second = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    assert_ne!(second, id);
    let (code, _, err) = run(&[
        "approvals",
        "deny",
        &second,
        "--by",
        "bob",
        "--note",
        "freeze",
        "--db",
        db.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let denied = write(dir.path(), "denied.json", &signature("gold", Some(&second)));
    let (code, v) = check(&denied, &db, &logs);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_DENIED".to_owned()]));
    assert!(v["faults"][0]["message"].as_str().unwrap().contains("bob"));
    let unknown = write(
        dir.path(),
        "unknown.json",
        &signature("gold", Some("made-up")),
    );
    let (code, v) = check(&unknown, &db, &logs);
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_UNKNOWN".to_owned()]));

    // every change is in the chain, which verifies
    let types = event_types(&log);
    for t in [
        "control/approval_requested",
        "control/approval_granted",
        "control/approval_spent",
        "control/approval_denied",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let granted: Value = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_type"] == "approval_granted")
        .unwrap();
    assert_eq!(granted["details"]["ticket_id"], id);
    assert_eq!(granted["details"]["by"], "ana");
    assert_eq!(granted["details"]["note"], "CHG-42");
    assert_eq!(granted["intent_id"], "11111111-2222-3333-4444-555555555555");
    let (code, out, err) = run(&["audit", "verify", "--file", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_ticket_expires_at_the_injected_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    let held = write(dir.path(), "held.json", &signature("gold", None));
    let at = |t: &'static str| ["-p", "lgpd-v1", "--ticket-ttl", "60", "--now", t];
    let (code, v) = check(&held, &db, &at(T0));
    assert_eq!(code, 4);
    let id = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    assert_eq!(
        v["control"]["ticket"]["expires_at"],
        "2026-06-01T12:01:00+00:00"
    );
    let dbs = db.to_str().unwrap();
    // approving after the expiry is refused and changes nothing
    let (code, _, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--by",
        "ana",
        "--db",
        dbs,
        "--now",
        "2026-06-01T12:05:00+00:00",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("expired at"), "{err}");
    let (_, out, _) = run(&["approvals", "show", &id, "--db", dbs, "-f", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "pending"
    );
    // approved in time, resubmitted too late
    let (code, _, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--by",
        "ana",
        "--db",
        dbs,
        "--now",
        "2026-06-01T12:00:30+00:00",
    ]);
    assert_eq!(code, 0, "{err}");
    let named = write(dir.path(), "named.json", &signature("gold", Some(&id)));
    let (code, v) = check(&named, &db, &at("2026-06-01T12:02:00+00:00"));
    assert_eq!((code, codes(&v)), (4, vec!["APPROVAL_EXPIRED".to_owned()]));
    let (code, v) = check(&named, &db, &at("2026-06-01T12:00:59+00:00"));
    assert_eq!(code, 0, "{v}");
}

#[test]
fn racing_processes_spend_a_ticket_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    let held = write(dir.path(), "held.json", &signature("gold", None));
    let (_, v) = check(&held, &db, &["-p", "lgpd-v1"]);
    let id = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    let (code, _, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--by",
        "ana",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let named = write(dir.path(), "named.json", &signature("gold", Some(&id)));
    let children: Vec<_> = (0..4)
        .map(|_| {
            cfa()
                .args(["policy", "check", "-p", "lgpd-v1", "-f", "json", "-s"])
                .arg(&named)
                .arg("--control-db")
                .arg(&db)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outcomes: Vec<(i32, Vec<String>)> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            (out.status.code().unwrap(), codes(&v))
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes[0], (0, vec![]), "{outcomes:?}");
    for o in &outcomes[1..] {
        assert_eq!(o, &(4, vec!["APPROVAL_SPENT".to_owned()]), "{outcomes:?}");
    }
}

/// One HTTP request with an optional bearer token: (status, JSON body).
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn decision_codes(v: &Value) -> Vec<String> {
    v["decision"]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_kill_switch_reaches_a_running_server_and_approvals_round_trip_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("cfa.db"), dir.path().join("audit.jsonl"));
    let mut cmd = cfa();
    cmd.args([
        "serve",
        "--port",
        "0",
        "--policy-bundle",
        "lgpd-v1",
        "--token",
        "op-secret",
    ])
    .arg("--control-db")
    .arg(&db)
    .arg("--audit-log")
    .arg(&log)
    .stderr(Stdio::null());
    let server = spawn_served(cmd);
    let addr = server.addr.as_str();
    let tok = Some("op-secret");
    let silver = signature("silver", None);
    let (status, v) = http(addr, "POST", "/v1/decisions", tok, &silver);
    assert_eq!(
        (status, v["action"].clone()),
        (200, json!("approve")),
        "{v}"
    );
    assert!(v.get("control").is_none(), "{v}");

    // another process engages the switch: the next decision of the server is blocked
    let dbs = db.to_str().unwrap();
    let (code, _, err) = run(&[
        "kill",
        "--scope",
        "*",
        "--reason",
        "incident 42",
        "--by",
        "ana",
        "--db",
        dbs,
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &silver);
    assert_eq!(v["action"], "block", "{v}");
    assert_eq!(decision_codes(&v), ["KILL_SWITCH_ENGAGED"]);
    let msg = v["decision"]["faults"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("by ana") && msg.contains("incident 42"),
        "{msg}"
    );
    assert_eq!(v["control"]["kill"]["by"], "ana");
    let (code, out, _) = run(&["kill", "--list", "--db", dbs, "-f", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["count"], 1);
    let (code, _, err) = run(&["unkill", "--scope", "*", "--by", "ana", "--db", dbs]);
    assert_eq!(code, 0, "{err}");
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &silver);
    assert_eq!(v["action"], "approve", "{v}");

    // the same through HTTP, scoped to the domain
    let (status, v) = http(
        addr,
        "POST",
        "/v1/kills/engage",
        tok,
        &json!({"scope": "domain:fiscal", "reason": "freeze", "by": "bob"}),
    );
    assert_eq!(status, 200, "{v}");
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &silver);
    assert_eq!(decision_codes(&v), ["KILL_SWITCH_ENGAGED"]);
    let (status, v) = http(
        addr,
        "POST",
        "/v1/kills/engage",
        tok,
        &json!({"scope": "fiscal", "reason": "x", "by": "bob"}),
    );
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("bad_scope")),
        "{v}"
    );
    let (status, v) = http(
        addr,
        "POST",
        "/v1/kills/release",
        tok,
        &json!({"scope": "domain:fiscal", "by": "bob"}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = http(
        addr,
        "POST",
        "/v1/kills/release",
        tok,
        &json!({"scope": "domain:fiscal", "by": "bob"}),
    );
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("not_engaged"))
    );

    // approvals over HTTP: held, approved with the token only, spent once
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &signature("gold", None));
    assert_eq!(v["control"]["status"], "pending_approval", "{v}");
    let id = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    let (status, v) = http(
        addr,
        "GET",
        &format!("/v1/approvals/{id}"),
        tok,
        &Value::Null,
    );
    assert_eq!(
        (status, v["status"].clone()),
        (200, json!("pending")),
        "{v}"
    );
    let approve = format!("/v1/approvals/{id}/approve");
    let (status, _) = http(addr, "POST", &approve, None, &json!({"by": "eve"}));
    assert_eq!(status, 401);
    let (status, v) = http(addr, "POST", &approve, Some("wrong"), &json!({"by": "eve"}));
    assert_eq!(status, 401, "{v}");
    let (status, v) = http(
        addr,
        "POST",
        &approve,
        tok,
        &json!({"by": "ana", "note": "ok"}),
    );
    assert_eq!(
        (status, v["ticket"]["status"].clone()),
        (200, json!("granted")),
        "{v}"
    );
    let (status, v) = http(addr, "POST", &approve, tok, &json!({"by": "ana"}));
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (409, json!("ticket_not_pending"))
    );
    let (status, v) = http(
        addr,
        "POST",
        "/v1/approvals/nope/deny",
        tok,
        &json!({"by": "ana"}),
    );
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("unknown_ticket"))
    );
    let named = signature("gold", Some(&id));
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &named);
    assert_eq!(v["action"], "approve", "{v}");
    let (_, v) = http(addr, "POST", "/v1/decisions", tok, &named);
    assert_eq!(decision_codes(&v), ["APPROVAL_SPENT"]);
    let (status, v) = http(addr, "GET", "/v1/approvals?status=spent", tok, &Value::Null);
    assert_eq!((status, v["count"].clone()), (200, json!(1)), "{v}");
    drop(server);
    let types = event_types(&log);
    for t in [
        "control/kill_engaged",
        "control/kill_released",
        "control/approval_requested",
        "control/approval_granted",
        "control/approval_spent",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
}

/// A `cfa mcp` child spoken to in JSON-RPC lines (also used by `one_store`).
pub(crate) struct Mcp {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    next: u64,
}

impl Mcp {
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = cfa()
            .arg("mcp")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut m = Mcp {
            child,
            stdin,
            out,
            next: 1,
        };
        m.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "control", "version": "0"}}),
        );
        m.line(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        m
    }

    fn line(&mut self, v: &Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.line(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut l = String::new();
            assert!(self.out.read_line(&mut l).unwrap() > 0, "server closed");
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["id"] == id {
                return v["result"].clone();
            }
        }
    }

    /// (isError, structuredContent) of a tool call.
    pub(crate) fn call(&mut self, tool: &str, args: Value) -> (bool, Value) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        (r["isError"] == true, r["structuredContent"].clone())
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mcp_tools_hold_approve_and_kill_with_the_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    let mut m = Mcp::start(&[
        "-p",
        "lgpd-v1",
        "--control-db",
        db.to_str().unwrap(),
        "--operator-token",
        "op",
    ]);
    let eval =
        |m: &mut Mcp, sig: Value| m.call("cfa_evaluate_signature", json!({"signature": sig}));
    let (err, v) = eval(&mut m, signature("gold", None));
    assert!(err);
    assert_eq!(v["control"]["status"], "pending_approval", "{v}");
    let id = v["control"]["ticket_id"].as_str().unwrap().to_owned();
    let (err, v) = m.call(
        "cfa_approvals",
        json!({"action": "list", "status": "pending"}),
    );
    assert!(!err, "{v}");
    assert_eq!(v["tickets"][0]["id"], id.as_str());
    let (err, v) = m.call(
        "cfa_approvals",
        json!({"action": "approve", "id": id, "by": "ana"}),
    );
    assert!(err);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (err, v) = m.call(
        "cfa_approvals",
        json!({"action": "approve", "id": id, "by": "ana", "operator_token": "op"}),
    );
    assert!(!err, "{v}");
    assert_eq!(v["ticket"]["status"], "granted");
    let (err, v) = eval(&mut m, signature("gold", Some(&id)));
    assert!(!err, "{v}");
    assert_eq!(v["action"], "approve");
    let (_, v) = eval(&mut m, signature("gold", Some(&id)));
    assert_eq!(decision_codes(&v), ["APPROVAL_SPENT"]);

    let (err, v) = m.call(
        "cfa_kill_switch",
        json!({"action": "engage", "scope": "target:nfe",
        "reason": "bad load", "by": "ana", "operator_token": "op"}),
    );
    assert!(!err, "{v}");
    let (err, v) = eval(&mut m, signature("silver", None));
    assert!(err);
    assert_eq!(decision_codes(&v), ["KILL_SWITCH_ENGAGED"]);
    let (err, v) = m.call("cfa_kill_switch", json!({"action": "engage", "scope": "nope", "reason": "r", "by": "a", "operator_token": "op"}));
    assert!(err);
    assert_eq!(v["error"]["code"], "bad_scope");
    let (err, v) = m.call(
        "cfa_kill_switch",
        json!({"action": "release", "scope": "target:nfe", "by": "ana", "operator_token": "op"}),
    );
    assert!(!err, "{v}");
    let (err, v) = eval(&mut m, signature("silver", None));
    assert!(!err, "{v}");
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    let dbs = db.to_str().unwrap();
    // reading a database that does not exist never creates it
    let (code, _, err) = run(&["approvals", "list", "--db", dbs]);
    assert_eq!(code, 1);
    assert!(err.contains("no such file"), "{err}");
    assert!(!db.exists());
    // a bad scope is refused before anything is written
    let (code, out, err) = run(&[
        "kill", "--scope", "fiscal", "--reason", "r", "--db", dbs, "-f", "json",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("bad scope 'fiscal'"), "{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("domain:NAME"),
        "{e}"
    );
    assert!(!db.exists());
    let (code, _, _) = run(&["kill", "--scope", "*", "--reason", "r", "--db", dbs]);
    assert_eq!(code, 0);
    let before = std::fs::read(&db).unwrap();
    for args in [
        &["approvals", "approve", "nope", "--by", "ana", "--db", dbs][..],
        &["approvals", "show", "nope", "--db", dbs],
        &["unkill", "--scope", "domain:hr", "--db", dbs],
        &["kill", "--scope", "agent:", "--reason", "r", "--db", dbs],
        &["approvals", "list", "--status", "weird", "--db", dbs],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(!err.trim().is_empty());
    }
    let (_, out, _) = run(&["kill", "--list", "--db", dbs, "-f", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["count"], 1);
    assert_eq!(std::fs::read(&db).unwrap().len(), before.len());
    // a missing --reason is a usage error
    let (code, _, _) = run(&["kill", "--scope", "*", "--db", dbs]);
    assert_eq!(code, 2);
}

#[test]
fn cfa_evaluate_honours_the_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    let catalog = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.json");
    let intent = "Join nfe with clientes daily, anonymize pii, into silver";
    let evaluate = || {
        cfa()
            .current_dir(dir.path())
            .args(["evaluate", intent, "-f", "json", "-c"])
            .arg(&catalog)
            .arg("--control-db")
            .arg(&db)
            .output()
            .unwrap()
    };
    assert_eq!(evaluate().status.code(), Some(0));
    let dbs = db.to_str().unwrap();
    let (code, _, err) = run(&[
        "kill",
        "--scope",
        "target:silver",
        "--reason",
        "incident 5",
        "--by",
        "ana",
        "--db",
        dbs,
    ]);
    assert_eq!(code, 0, "{err}");
    let out = evaluate();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("KILL_SWITCH_ENGAGED") && text.contains("incident 5"),
        "{text}"
    );
    let (code, _, err) = run(&["unkill", "--scope", "target:silver", "--db", dbs]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(evaluate().status.code(), Some(0));
}
