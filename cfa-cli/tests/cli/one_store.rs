//! One control store (issues #16, #17): the control plane, budgets and leases all live
//! in the lifecycle database resolved once (flag > `cfa.yaml` storage), `--control-db`
//! is the old name of `--lifecycle-db` (two different files are a usage error), a kill
//! switch engaged in the configured store blocks `policy check` (single and batch),
//! `evaluate`, `serve` and `mcp` without any control flag, and the faces started with
//! `--sandbox` execute approved intents under the target lease (a lease held elsewhere
//! blocks with `STATE_TARGET_LEASED` through HTTP and MCP).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::Mcp;
use crate::support::{http, spawn_served};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cfa");
const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn cfa(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_OPERATOR_TOKEN")
        .env_remove("CFA_MCP_API_KEY");
    c
}

fn catalog() -> PathBuf {
    cfa_test_support::example("catalog.json")
}

/// Runs `cfa ARGS` in `dir`: (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cfa(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn signature(dir: &Path) -> PathBuf {
    let p = dir.join("sig.json");
    std::fs::write(&p, cfa_test_support::ok_signature().to_string()).unwrap();
    p
}

fn codes(faults: &Value) -> Vec<String> {
    faults
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn control_db_and_lifecycle_db_naming_two_files_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let sig = signature(dir.path());
    let sig = sig.to_str().unwrap();
    let (code, _, err) = run(
        dir.path(),
        &[
            "policy",
            "check",
            "-s",
            sig,
            "--lifecycle-db",
            "a.db",
            "--control-db",
            "b.db",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--control-db b.db and --lifecycle-db a.db name two files"),
        "{err}"
    );
    for command in [&["serve", "--port", "0"][..], &["mcp"][..]] {
        let mut args = command.to_vec();
        args.extend(["--lifecycle-db", "a.db", "--control-db", "b.db"]);
        let (code, _, err) = run(dir.path(), &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("name two files"), "{err}");
    }
    let (code, out, err) = run(
        dir.path(),
        &[
            "evaluate",
            APPROVE,
            "--db",
            "a.db",
            "--control-db",
            "b.db",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("and --db a.db name two files"), "{err}");
    // `-f json`: the error as JSON on stdout.
    assert_eq!(json_of(&out)["error"]["code"], "usage", "{out}");
    assert!(!dir.path().join("a.db").exists() && !dir.path().join("b.db").exists());
    // The same file under both names (and the old name alone) is one store.
    let (code, _, err) = run(
        dir.path(),
        &[
            "policy",
            "check",
            "-s",
            sig,
            "--lifecycle-db",
            "a.db",
            "--control-db",
            "./a.db",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // A decision the control plane lets through writes nothing to the store.
    assert!(!dir.path().join("a.db").exists() && !dir.path().join("b.db").exists());
}

/// A kill switch engaged with `cfa kill` in the config's store reaches every command
/// that decides, with no control flag at all; lifted, they approve again.
#[test]
fn a_kill_switch_in_the_configured_store_is_never_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cfa.yaml"),
        "storage:\n  backend: sqlite\n  path: cfa.db\n",
    )
    .unwrap();
    let sig = signature(d);
    let sig = sig.to_str().unwrap();
    let (code, _, err) = run(d, &["policy", "check", "-s", sig, "-f", "json"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        d,
        &[
            "kill",
            "--scope",
            "*",
            "--reason",
            "incident 7",
            "--by",
            "ana",
        ],
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = run(d, &["policy", "check", "-s", sig, "-f", "json"]);
    assert_eq!(code, 4, "{out}");
    assert_eq!(codes(&json_of(&out)["faults"]), ["KILL_SWITCH_ENGAGED"]);
    let batch = d.join("batch.jsonl");
    std::fs::write(&batch, format!("{}\n", cfa_test_support::ok_signature())).unwrap();
    let (code, out, _) = run(
        d,
        &["policy", "check", "--batch", "-s", batch.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{out}");
    assert_eq!(
        codes(&json_of(out.trim())["faults"]),
        ["KILL_SWITCH_ENGAGED"]
    );
    let cat = catalog();
    let (code, out, _) = run(
        d,
        &[
            "evaluate",
            APPROVE,
            "-c",
            cat.to_str().unwrap(),
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 4, "{out}");
    assert!(
        codes(&json_of(&out)["faults"]).contains(&"KILL_SWITCH_ENGAGED".to_owned()),
        "{out}"
    );

    let mut serve = cfa(d);
    serve.args(["serve", "--port", "0"]).stderr(Stdio::null());
    let server = spawn_served(serve);
    let (status, v) = http(
        &server.addr,
        "POST",
        "/v1/decisions",
        &cfa_test_support::ok_signature().to_string(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["action"], "block", "{v}");
    assert_eq!(codes(&v["decision"]["faults"]), ["KILL_SWITCH_ENGAGED"]);
    let (status, v) = http(&server.addr, "GET", "/v1/kills", "");
    assert_eq!((status, v["count"].clone()), (200, json!(1)), "{v}");
    drop(server);

    // `cfa mcp` with the database named by the one flag.
    let db = d.join("cfa.db");
    let mut m = Mcp::start(&["--lifecycle-db", db.to_str().unwrap()]);
    let (err, v) = m.call(
        "cfa_evaluate_signature",
        json!({"signature": cfa_test_support::ok_signature()}),
    );
    assert!(err, "{v}");
    assert_eq!(codes(&v["decision"]["faults"]), ["KILL_SWITCH_ENGAGED"]);
    drop(m);

    let (code, _, err) = run(d, &["unkill", "--scope", "*", "--by", "ana"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(d, &["policy", "check", "-s", sig, "-f", "json"]);
    assert_eq!(code, 0, "{out}");
}

/// The target the approved intent writes, from its `state_projected` event.
fn projected_target(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_type"] == "state_projected")
        .unwrap()["details"]["target_scope"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `cfa serve --sandbox mock` executes approved intents under the target lease of the
/// lifecycle database; a lease held by another holder blocks with STATE_TARGET_LEASED
/// (HTTP and MCP), and every lease the server took is released.
#[test]
fn faces_with_a_sandbox_execute_under_the_target_lease() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (db, log) = (d.join("cfa.db"), d.join("audit.jsonl"));
    let cat = catalog();
    let mut serve = cfa(d);
    serve
        .args(["serve", "--port", "0", "--sandbox", "mock", "-c"])
        .arg(&cat)
        .arg("--lifecycle-db")
        .arg(&db)
        .arg("--audit-log")
        .arg(&log)
        .args(["--lease-holder", "srv"])
        .stderr(Stdio::null());
    let server = spawn_served(serve);
    let body = json!({"intent": APPROVE}).to_string();
    let (status, v) = http(&server.addr, "POST", "/v1/evaluate", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["execution"]["executor"], "mock", "{v}");
    assert_eq!(v["execution"]["publish_state"], "published", "{v}");
    let target = projected_target(&log);
    let life = cfa_lifecycle::LifecycleDb::open(&db).unwrap();
    assert_eq!(
        life.lease(&target).unwrap(),
        None,
        "the run released its lease"
    );

    life.acquire_lease(&target, "other-run", jiff::Timestamp::now(), 3600)
        .unwrap();
    let (status, v) = http(&server.addr, "POST", "/v1/evaluate", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "blocked", "{v}");
    assert_eq!(codes(&v["faults"]), ["STATE_TARGET_LEASED"]);
    assert_eq!(v["execution"]["details"]["executed"], false);
    assert_eq!(v["execution"]["details"]["lease_holder"], "other-run");
    drop(server);

    let mut m = Mcp::start(&[
        "--sandbox",
        "mock",
        "-c",
        cat.to_str().unwrap(),
        "--lifecycle-db",
        db.to_str().unwrap(),
    ]);
    let (_, v) = m.call("cfa_evaluate_intent", json!({"intent": APPROVE}));
    assert_eq!(v["state"], "blocked", "{v}");
    assert_eq!(codes(&v["faults"]), ["STATE_TARGET_LEASED"]);
    assert!(life.release_lease(&target, "other-run").unwrap());
    let (err, v) = m.call("cfa_evaluate_intent", json!({"intent": APPROVE}));
    assert!(!err, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["execution"]["publish_state"], "published", "{v}");
    assert_eq!(life.lease(&target).unwrap(), None);
}

/// A server's lifecycle database that does not exist yet is not created by decisions,
/// and a kill switch engaged in it later (the file created by `cfa kill`) blocks the
/// server's next decision.
#[test]
fn a_store_created_after_the_server_started_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("later.db");
    let mut serve = cfa(d);
    serve
        .args(["serve", "--port", "0", "--lifecycle-db"])
        .arg(&db)
        .stderr(Stdio::null());
    let server = spawn_served(serve);
    let sig = cfa_test_support::ok_signature().to_string();
    let (_, v) = http(&server.addr, "POST", "/v1/decisions", &sig);
    assert_eq!(v["action"], "approve", "{v}");
    assert!(!db.exists(), "a decision created the store");
    let (code, _, err) = run(
        d,
        &["kill", "--scope", "*", "--reason", "r", "--db", "later.db"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, v) = http(&server.addr, "POST", "/v1/decisions", &sig);
    assert_eq!(codes(&v["decision"]["faults"]), ["KILL_SWITCH_ENGAGED"]);
}
