//! Bundle names through the real binary: a built-in name is always the built-in (a file
//! of that name in the working directory never shadows it), a value is a file only when
//! it looks like a path, anything else is an error listing the built-ins — on every
//! command, in cfa.yaml, and on the faces, whose requests may name built-ins only and
//! whose `policy_bundle` must be a string.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Served, http, spawn_served};
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A bundle that approves everything the built-ins block (one rule that never fires).
const PERMISSIVE: &str = r#"{"policy_bundle": {"version": "permissive-v0", "rules": [{"name": "r", "condition": "cost_budget_exceeded", "action": "block", "fault_code": "X_COST", "severity": "high", "family": "semantic", "message": "m", "remediation": ["x"]}]}}"#;

const APPROVE_INTENT: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn cfa(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.current_dir(dir).env_remove("CFA_POLICY_BUNDLE");
    c
}

fn ex(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
        .display()
        .to_string()
}

/// A working directory holding permissive bundles named like built-ins.
fn shadowing_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["prod-v1", "lgpd-v1", "default", "mybundle"] {
        std::fs::write(dir.path().join(name), PERMISSIVE).unwrap();
    }
    dir
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

#[test]
fn a_file_named_like_a_builtin_never_replaces_it() {
    let dir = shadowing_dir();
    let out = cfa(dir.path())
        .args(["policy", "check", "-s", &ex("signatures/raw_pii.json")])
        .args(["-p", "prod-v1", "-f", "json"])
        .assert()
        .code(4)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["action"], "block");
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    let builtin_hash = cfa_types::canonical::sha256_hex(
        cfa_policy::builtin::source("prod-v1").unwrap().as_bytes(),
    );
    assert_eq!(v["policy_bundle_hash"], builtin_hash.as_str());
    // `default` is the default rules, not the file called `default`.
    cfa(dir.path())
        .args(["policy", "check", "-s", &ex("signatures/raw_pii.json")])
        .args(["-p", "default"])
        .assert()
        .code(4);
    // The file is still reachable by a path.
    let out = cfa(dir.path())
        .args(["policy", "check", "-s", &ex("signatures/raw_pii.json")])
        .args(["-p", "./prod-v1", "-f", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["policy_bundle"], "permissive-v0");
    // rules list and evaluate resolve the same way.
    cfa(dir.path())
        .args(["rules", "list", "-p", "lgpd-v1"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("lgpd-v1.0"))
        .stdout(predicate::str::contains("permissive-v0").not());
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE_INTENT, "-c", &ex("catalog.json")])
        .args(["-p", "prod-v1", "-f", "json", "--sandbox", "none"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["policy_bundle"], "prod-v1.0");
}

#[test]
fn a_name_that_is_neither_builtin_nor_path_is_an_error_even_if_a_file_has_it() {
    let dir = shadowing_dir();
    for args in [
        vec!["policy", "check", "-s", "SIG", "-p", "mybundle"],
        vec!["rules", "list", "-p", "mybundle"],
        vec!["evaluate", APPROVE_INTENT, "-p", "mybundle"],
        vec![
            "generate", "-s", "SIG", "-b", "pyspark", "-o", "out", "-p", "mybundle",
        ],
    ] {
        let sig = ex("signatures/ok.json");
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "SIG" { sig.as_str() } else { a })
            .collect();
        cfa(dir.path())
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("unknown policy bundle 'mybundle'"))
            .stderr(predicate::str::contains("eu-ai-act-v1"))
            .stderr(predicate::str::contains("./mybundle"));
    }
    assert!(!dir.path().join("out").exists());
}

#[test]
fn config_policy_bundle_resolves_like_the_flag() {
    let dir = shadowing_dir();
    std::fs::copy(ex("catalog.json"), dir.path().join("catalog.json")).unwrap();
    let cfg = dir.path().join("cfa.yaml");
    let write_cfg = |bundle: &str| {
        std::fs::write(
            &cfg,
            format!(
                "storage:\n  backend: jsonl\n  path: audit.jsonl\ndefaults:\n  catalog: catalog.json\n  policy_bundle: {bundle}\nexecution:\n  sandbox: none\n"
            ),
        )
        .unwrap();
    };
    // A built-in name in cfa.yaml is the built-in, whatever sits beside the config.
    write_cfg("prod-v1");
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE_INTENT, "-f", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["policy_bundle"], "prod-v1.0");
    let out = cfa(dir.path())
        .args(["status", "-f", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        json_of(&out)["resolved"]["policy_bundle"]["version"],
        "prod-v1.0"
    );
    // A path is resolved against the config directory.
    std::fs::write(dir.path().join("mine.json"), PERMISSIVE).unwrap();
    write_cfg("mine.json");
    let out = cfa(dir.path())
        .args(["evaluate", APPROVE_INTENT, "-f", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["policy_bundle"], "permissive-v0");
    // Anything else is an error naming the config file, and nothing is recorded.
    let audit = dir.path().join("audit.jsonl");
    let before = std::fs::read_to_string(&audit).unwrap();
    write_cfg("mybundle");
    cfa(dir.path())
        .args(["evaluate", APPROVE_INTENT])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cfa.yaml: defaults.policy_bundle"))
        .stderr(predicate::str::contains("unknown policy bundle 'mybundle'"));
    assert_eq!(std::fs::read_to_string(&audit).unwrap(), before);
}

// ----- cfa serve ---------------------------------------------------------------------

fn serve(dir: &Path) -> Served {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir)
        .args(["serve", "--port", "0", "-c", &ex("catalog.json")])
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    spawn_served(cmd)
}

fn raw_pii() -> Value {
    serde_json::from_str(&std::fs::read_to_string(ex("signatures/raw_pii.json")).unwrap()).unwrap()
}

#[test]
fn serve_requests_name_builtins_only_and_bundles_must_be_strings() {
    let dir = shadowing_dir();
    std::fs::write(dir.path().join("mine.json"), PERMISSIVE).unwrap();
    let srv = serve(dir.path());
    let sig = raw_pii().to_string();
    // A built-in named in the query or the body is the built-in, not the cwd file.
    let (status, v) = http(
        &srv.addr,
        "POST",
        "/v1/decisions?policy_bundle=prod-v1",
        &sig,
    );
    assert_eq!((status, v["action"].clone()), (200, json!("block")));
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    let body = json!({"signature": raw_pii(), "policy_bundle": "prod-v1"}).to_string();
    let (status, v) = http(&srv.addr, "POST", "/v1/decisions", &body);
    assert_eq!(
        (status, v["policy_bundle"].clone()),
        (200, json!("prod-v1.0"))
    );
    // Files are refused, relative or absolute.
    let abs = dir.path().join("mine.json").display().to_string();
    for name in ["mine.json", "./prod-v1", abs.as_str(), "mybundle"] {
        let body = json!({"signature": raw_pii(), "policy_bundle": name}).to_string();
        let (status, v) = http(&srv.addr, "POST", "/v1/decisions", &body);
        assert_eq!(status, 400, "{name}: {v}");
        assert_eq!(v["error"]["code"], "unknown_policy_bundle", "{name}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("built-in bundle names only"),
            "{v}"
        );
        let (status, _) = http(
            &srv.addr,
            "GET",
            &format!("/v1/rules?policy_bundle={}", name.replace('/', "%2F")),
            "",
        );
        assert_eq!(status, 400, "{name}");
    }
    // A policy_bundle that is not a string is a 400, never the default rules.
    for bad in [
        json!(5),
        json!(["prod-v1"]),
        json!({"name": "prod-v1"}),
        json!(true),
    ] {
        let body = json!({"signature": raw_pii(), "policy_bundle": bad}).to_string();
        let (status, v) = http(&srv.addr, "POST", "/v1/decisions", &body);
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_policy_bundle", "{bad}");
        let body = json!({"intent": APPROVE_INTENT, "policy_bundle": bad}).to_string();
        let (status, _) = http(&srv.addr, "POST", "/v1/evaluate", &body);
        assert_eq!(status, 400, "{bad}");
    }
    // Spelt with a JSON escape, the key is still read.
    let body = format!(
        "{{\"signature\": {}, \"policy\\u005fbundle\": 5}}",
        raw_pii()
    );
    let (status, _) = http(&srv.addr, "POST", "/v1/decisions", &body);
    assert_eq!(status, 400);
    let body = format!(
        "{{\"signature\": {}, \"policy\\u005fbundle\": \"mine.json\"}}",
        raw_pii()
    );
    let (status, v) = http(&srv.addr, "POST", "/v1/decisions", &body);
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("unknown_policy_bundle"))
    );
    // /v1/evaluate refuses files too.
    let body = json!({"intent": APPROVE_INTENT, "policy_bundle": "mine.json"}).to_string();
    let (status, v) = http(&srv.addr, "POST", "/v1/evaluate", &body);
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("unknown_policy_bundle"))
    );
}

// ----- cfa mcp -----------------------------------------------------------------------

struct Mcp {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mcp {
    fn start(dir: &Path) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
            .current_dir(dir)
            .args(["mcp", "-c", &ex("catalog.json")])
            .env_remove("CFA_POLICY_BUNDLE")
            .env_remove("CFA_MCP_API_KEY")
            .env_remove("CFA_MCP_RATE_LIMIT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Self {
            child,
            stdin,
            lines,
        };
        m.request(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}}));
        m.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        m
    }

    fn send(&mut self, v: &Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn request(&mut self, v: Value) -> Value {
        self.send(&v);
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server answered");
        serde_json::from_str(&line).unwrap()
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        let r = self.request(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": args}}));
        assert!(r.get("error").is_none(), "{r}");
        r["result"].clone()
    }
}

#[test]
fn mcp_tools_name_builtins_only_and_bundles_must_be_strings() {
    let dir = shadowing_dir();
    std::fs::write(dir.path().join("mine.json"), PERMISSIVE).unwrap();
    let abs = dir.path().join("mine.json").display().to_string();
    let mut m = Mcp::start(dir.path());
    // The built-in, not the cwd file of the same name.
    let r = m.call(
        1,
        "cfa_evaluate_signature",
        json!({"signature": raw_pii(), "policy_bundle": "prod-v1"}),
    );
    assert_eq!(r["isError"], true);
    assert_eq!(r["structuredContent"]["action"], "block");
    assert_eq!(r["structuredContent"]["policy_bundle"], "prod-v1.0");
    // A file path is refused on every tool that names a bundle (the permissive file
    // would have approved the raw-PII signature).
    let mut id = 10;
    for name in [abs.as_str(), "mine.json", "./prod-v1", "mybundle"] {
        for (tool, args) in [
            (
                "cfa_evaluate_signature",
                json!({"signature": raw_pii(), "policy_bundle": name}),
            ),
            (
                "cfa_evaluate_intent",
                json!({"intent": APPROVE_INTENT, "policy_bundle": name}),
            ),
            ("cfa_describe_rules", json!({"policy_bundle": name})),
            (
                "cfa_explain_fault",
                json!({"fault_code": "X_COST", "policy_bundle": name}),
            ),
            (
                "cfa_compliance_check",
                json!({"intent": APPROVE_INTENT, "bundle": name}),
            ),
        ] {
            id += 1;
            let r = m.call(id, tool, args);
            assert_eq!(r["isError"], true, "{tool} {name}: {r}");
            assert_eq!(
                r["structuredContent"]["error"]["code"], "unknown_policy_bundle",
                "{tool} {name}: {r}"
            );
        }
    }
    // A bundle that is not a string is a tool error, never the default rules.
    for bad in [json!(5), json!(["prod-v1"]), json!({"path": "mine.json"})] {
        id += 1;
        let r = m.call(
            id,
            "cfa_evaluate_signature",
            json!({"signature": raw_pii(), "policy_bundle": bad}),
        );
        assert_eq!(r["isError"], true, "{bad}: {r}");
        assert!(r["structuredContent"].get("action").is_none(), "{r}");
        id += 1;
        let r = m.call(
            id,
            "cfa_compliance_check",
            json!({"intent": APPROVE_INTENT, "bundle": bad}),
        );
        assert_eq!(r["isError"], true, "{bad}: {r}");
    }
}
