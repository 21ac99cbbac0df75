//! `cfa evidence export|verify` through the real binary: a run made by `cfa evaluate`
//! (JSONL audit log + lifecycle database), exported, verified, then edited file by file;
//! every edit fails verification naming the file. Export only reads: the log and the
//! database keep their bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::report_cli::cfa;
use serde_json::Value;
use std::path::{Path, PathBuf};

const OK: &str = "Join nfe with clientes daily, anonymize pii, into silver";

struct Fixture {
    dir: tempfile::TempDir,
    intent: String,
    decision: Value,
}

impl Fixture {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn log(&self) -> PathBuf {
        self.path(".cfa/audit.jsonl")
    }
}

/// A project with two runs (the approved one we export, then a replanned one) and a key.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).arg("init").assert().success();
    let out = cfa(dir.path())
        .args(["evaluate", "-f", "json", "--db", "cfa.db", OK])
        .assert()
        .code(0);
    let decision: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    cfa(dir.path())
        .args([
            "evaluate",
            "-f",
            "json",
            "--db",
            "cfa.db",
            "ingest nfe raw into bronze",
        ])
        .assert()
        .code(0);
    cfa(dir.path())
        .args([
            "audit",
            "keygen",
            "--name",
            "audit.test/log",
            "--out",
            "log",
        ])
        .assert()
        .success();
    Fixture {
        dir,
        intent: decision["intent_id"].as_str().unwrap().to_owned(),
        decision,
    }
}

fn export(f: &Fixture, extra: &[&str]) -> assert_cmd::assert::Assert {
    cfa(f.dir.path())
        .args(["evidence", "export", "--intent", &f.intent, "--out", "ev"])
        .args(extra)
        .assert()
}

fn verify(dir: &Path, bundle: &str, extra: &[&str]) -> (i32, Value) {
    let out = cfa(dir)
        .args(["evidence", "verify", bundle, "-f", "json"])
        .args(extra)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), v)
}

fn failed_files(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["file"].as_str().unwrap().to_owned())
        .collect()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The names in `dir`, without SQLite's `-shm`/`-wal` index files: a reader of a WAL
/// database may create them beside it (as trust_readonly allows); nothing else.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-shm") && !n.ends_with("-wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_real_run_exports_and_verifies_and_the_export_only_reads() {
    let f = fixture();
    let log_before = std::fs::read(f.log()).unwrap();
    let db_before = std::fs::read(f.path("cfa.db")).unwrap();
    let cfa_dir_before = listing(&f.path(".cfa"));
    let top_before = listing(f.dir.path());
    export(&f, &["--key", "log.key", "--lifecycle-db", "cfa.db"])
        .success()
        .stdout(predicates::str::contains("Evidence for"))
        .stdout(predicates::str::contains("statement signed (DSSE)"));
    assert_eq!(
        std::fs::read(f.log()).unwrap(),
        log_before,
        "the log is unchanged"
    );
    assert_eq!(
        std::fs::read(f.path("cfa.db")).unwrap(),
        db_before,
        "the db is unchanged"
    );
    assert_eq!(
        listing(&f.path(".cfa")),
        cfa_dir_before,
        "no checkpoint written beside the log"
    );
    let mut top = top_before.clone();
    top.push("ev".into());
    top.sort();
    assert_eq!(listing(f.dir.path()), top, "only the bundle is new");

    let ev = f.path("ev");
    let run = read_json(&ev.join("run_summary.json"));
    assert_eq!(run["intent_id"], f.intent.as_str());
    assert_eq!(run["final_state"], "approved");
    assert_eq!(run["decision_ids"][0], f.decision["decision_id"]);
    let prov = read_json(&ev.join("provenance.json"));
    assert_eq!(
        prov["inputs"]["signature"]["content_hash"],
        f.decision["content_hash"]
    );
    assert_eq!(
        prov["inputs"]["signature"]["signature_hash"],
        f.decision["signature_hash"]
    );
    assert_eq!(
        prov["inputs"]["policy_bundle"]["hash"],
        f.decision["policy_bundle_hash"]
    );
    assert_eq!(
        prov["artifacts"][0]["artifact_hash"],
        f.decision["artifact"]["artifact_hash"]
    );
    assert_eq!(
        prov["sandbox"]["metrics"],
        f.decision["execution"]["details"]["metrics"]
    );
    assert_eq!(
        prov["lifecycle"]["history"][0]["intent_id"],
        f.intent.as_str()
    );
    assert_eq!(prov["lifecycle"]["execution_records"][0]["cost_dbu"], 5.0);
    let tool = read_json(&ev.join("toolchain.json"));
    assert_eq!(tool["backend"], "pyspark");
    assert_eq!(tool["sandbox"], "mock");
    assert_eq!(tool["cfa_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        read_json(&ev.join("human_review.json"))["tickets"],
        serde_json::json!([])
    );
    let st = read_json(&ev.join("statement.intoto.json"));
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        f.decision["artifact"]["artifact_hash"]
    );
    // The events are the log's own lines, byte for byte.
    let events = std::fs::read_to_string(ev.join("audit/events.jsonl")).unwrap();
    let log = String::from_utf8(log_before).unwrap();
    let run_lines: Vec<_> = log.lines().filter(|l| l.contains(&f.intent)).collect();
    assert_eq!(events.lines().collect::<Vec<_>>(), run_lines);

    let (code, report) = verify(f.dir.path(), "ev", &["--pubkey", "log.vkey"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["signatures_checked"], true);
    cfa(f.dir.path())
        .args(["evidence", "verify", "ev"])
        .assert()
        .success()
        .stdout(predicates::str::contains("signatures not checked"));
    // Each proof is a standard offline proof `cfa audit verify-proof` accepts.
    let first = std::fs::read_dir(ev.join("audit/proofs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    cfa(f.dir.path())
        .args(["audit", "verify-proof", "--pubkey", "log.vkey", "--proof"])
        .arg(first.path())
        .assert()
        .success();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Replaces the first `from` in a bundle file (which must contain it).
fn edit(ev: &Path, file: &str, from: &str, to: &str) {
    let p = ev.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{file} contains {from}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn every_edited_missing_or_extra_file_fails_verification_naming_it() {
    let f = fixture();
    export(&f, &["--key", "log.key"]).success();
    // A pristine copy of the bundle per case.
    let fresh = |name: &str| {
        let to = f.path(name);
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&f.path("ev"), &to);
        to
    };
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "audit/events.jsonl",
            "\"published\"",
            "\"publishes\"",
            "audit/events.jsonl",
        ),
        (
            "provenance.json",
            "\"pyspark\"",
            "\"sql\"",
            "provenance.json",
        ),
        (
            "manifest.json",
            "\"sha256\": \"",
            "\"sha256\": \"f",
            "manifest.json",
        ),
        (
            "statement.intoto.json",
            "\"approved\"",
            "\"blocked\"",
            "statement.intoto.json",
        ),
        (
            "audit/checkpoint",
            "audit.test/log\n",
            "audit.test/other\n",
            "audit/checkpoint",
        ),
    ];
    for (file, from, to, named) in cases {
        let ev = fresh("edited");
        edit(&ev, file, from, to);
        let (code, report) = verify(f.dir.path(), "edited", &["--pubkey", "log.vkey"]);
        assert_eq!(code, 1, "{file}: {report}");
        assert_eq!(report["ok"], false);
        let failed = failed_files(&report);
        // A manifest edit names the file whose listed hash was changed.
        if file == "manifest.json" {
            assert!(!failed.is_empty(), "{report}");
        } else {
            assert!(failed.contains(&named.to_owned()), "{file}: {failed:?}");
        }
    }
    // The summary names the file and what differs.
    let ev = fresh("edited");
    edit(&ev, "provenance.json", "\"pyspark\"", "\"sql\"");
    cfa(f.dir.path())
        .args(["evidence", "verify", "edited"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "provenance.json: differs from the events: artifacts[0].language",
        ))
        .stdout(predicates::str::contains("does NOT verify"));
    // Missing and extra files.
    let ev = fresh("edited");
    std::fs::remove_file(ev.join("toolchain.json")).unwrap();
    std::fs::write(ev.join("notes.txt"), "x").unwrap();
    let (code, report) = verify(f.dir.path(), "edited", &[]);
    assert_eq!(code, 1);
    let failed = failed_files(&report);
    assert!(
        failed.contains(&"toolchain.json".to_owned()) && failed.contains(&"notes.txt".to_owned()),
        "{failed:?}"
    );
    // The wrong key.
    cfa(f.dir.path())
        .args([
            "audit",
            "keygen",
            "--name",
            "audit.test/log",
            "--out",
            "other",
        ])
        .assert()
        .success();
    let (code, report) = verify(f.dir.path(), "ev", &["--pubkey", "other.vkey"]);
    assert_eq!(code, 1);
    let failed = failed_files(&report);
    assert!(
        failed.contains(&"audit/checkpoint".to_owned())
            && failed.contains(&"statement.dsse.json".to_owned()),
        "{failed:?}"
    );
}

#[test]
fn errors_are_clear_and_write_nothing() {
    let f = fixture();
    let before = listing(f.dir.path());
    // An intent the log does not hold.
    cfa(f.dir.path())
        .args([
            "evidence",
            "export",
            "--intent",
            "no-such-intent",
            "--key",
            "log.key",
            "--out",
            "ev",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "intent no-such-intent has no events in",
        ));
    // No checkpoint and no key.
    let out = cfa(f.dir.path())
        .args([
            "evidence", "export", "--intent", &f.intent, "--out", "ev", "-f", "json",
        ])
        .assert()
        .code(1);
    let err: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no checkpoint covers the run") && msg.contains("cfa audit checkpoint"),
        "{msg}"
    );
    assert_eq!(listing(f.dir.path()), before, "nothing written");
    // An existing directory is refused unless --force.
    std::fs::create_dir(f.path("ev")).unwrap();
    std::fs::write(f.path("ev/keep.txt"), "mine").unwrap();
    export(&f, &["--key", "log.key"])
        .code(1)
        .stderr(predicates::str::contains(
            "exists; choose another directory or replace it with --force",
        ));
    assert_eq!(
        std::fs::read_to_string(f.path("ev/keep.txt")).unwrap(),
        "mine"
    );
    export(&f, &["--key", "log.key", "--force"]).success();
    assert!(!f.path("ev/keep.txt").exists());
    assert_eq!(verify(f.dir.path(), "ev", &["--pubkey", "log.vkey"]).0, 0);
    // Verifying what is not a bundle.
    cfa(f.dir.path())
        .args(["evidence", "verify", "nope"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not a directory"));
}

#[test]
fn a_checkpoint_beside_the_log_is_used_without_a_key() {
    let f = fixture();
    cfa(f.dir.path())
        .args([
            "audit",
            "checkpoint",
            "--key",
            "log.key",
            "-o",
            ".cfa/audit.jsonl.checkpoint",
        ])
        .assert()
        .success();
    let note = std::fs::read_to_string(f.path(".cfa/audit.jsonl.checkpoint")).unwrap();
    export(&f, &[])
        .success()
        .stdout(predicates::str::contains("statement unsigned"));
    assert_eq!(
        std::fs::read_to_string(f.path("ev/audit/checkpoint")).unwrap(),
        note
    );
    assert!(!f.path("ev/statement.dsse.json").exists());
    assert_eq!(verify(f.dir.path(), "ev", &["--pubkey", "log.vkey"]).0, 0);
}

/// A fixture whose log has a signed checkpoint beside it (what the faces export against).
fn checkpointed() -> Fixture {
    let f = fixture();
    cfa(f.dir.path())
        .args([
            "audit",
            "checkpoint",
            "--key",
            "log.key",
            "-o",
            ".cfa/audit.jsonl.checkpoint",
        ])
        .assert()
        .success();
    f
}

#[test]
fn http_exports_a_bundle_document_that_verifies_and_catches_an_edit() {
    let f = checkpointed();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(f.dir.path())
        .args(["serve", "--port", "0", "--audit-log", ".cfa/audit.jsonl"])
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "error");
    let served = crate::support::spawn_served(cmd);
    let (status, doc) = crate::support::http(
        &served.addr,
        "GET",
        &format!("/v1/evidence/{}", f.intent),
        "",
    );
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["intent_id"], f.intent.as_str());
    // The same bytes the CLI writes (the CLI's statement is unsigned here too).
    export(&f, &[]).success();
    for (name, text) in doc["files"].as_object().unwrap() {
        let on_disk = std::fs::read_to_string(f.path("ev").join(name)).unwrap();
        assert_eq!(text.as_str().unwrap(), on_disk, "{name}");
    }
    let vkey = std::fs::read_to_string(f.path("log.vkey")).unwrap();
    let mut body = doc.clone();
    body["pubkeys"] = serde_json::json!([vkey.trim()]);
    let (status, report) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/evidence/verify",
        &body.to_string(),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["signatures_checked"], true);
    let prov =
        body["files"]["provenance.json"]
            .as_str()
            .unwrap()
            .replacen("\"mock\"", "\"postgres\"", 1);
    body["files"]["provenance.json"] = Value::String(prov);
    let (status, report) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/evidence/verify",
        &body.to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(report["ok"], false);
    assert!(
        failed_files(&report).contains(&"provenance.json".to_owned()),
        "{report}"
    );
    // Unknown intent, and a body that is not a bundle.
    let (status, err) =
        crate::support::http(&served.addr, "GET", "/v1/evidence/no-such-intent", "");
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("unknown_intent")),
        "{err}"
    );
    let (status, err) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/evidence/verify",
        "{\"files\": 3}",
    );
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_evidence")),
        "{err}"
    );
}

#[test]
fn mcp_exports_and_verifies_a_bundle() {
    use std::io::{BufRead, Write};
    let f = checkpointed();
    let vkey = std::fs::read_to_string(f.path("log.vkey")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(f.dir.path())
        .args([
            "mcp",
            "--audit-log",
            ".cfa/audit.jsonl",
            "--lifecycle-db",
            "cfa.db",
        ])
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_MCP_RATE_LIMIT")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    let mut recv = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}),
    );
    assert_eq!(recv()["id"], 0);
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "cfa_evidence_export", "arguments": {"intent_id": f.intent}}}),
    );
    let r = recv();
    assert_eq!(r["result"]["isError"], false, "{r}");
    let doc = r["result"]["structuredContent"].clone();
    let prov: Value =
        serde_json::from_str(doc["files"]["provenance.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        prov["lifecycle"]["history"][0]["intent_id"],
        f.intent.as_str(),
        "the server's lifecycle db"
    );
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "cfa_evidence_verify", "arguments": {"files": doc["files"], "pubkeys": [vkey.trim()]}}}),
    );
    let r = recv();
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(r["result"]["structuredContent"]["ok"], true);
    let mut files = doc["files"].clone();
    let ev =
        files["audit/events.jsonl"]
            .as_str()
            .unwrap()
            .replacen("\"approved\"", "\"approves\"", 1);
    files["audit/events.jsonl"] = Value::String(ev);
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "cfa_evidence_verify", "arguments": {"files": files}}}),
    );
    let r = recv();
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        failed_files(&r["result"]["structuredContent"]).contains(&"audit/events.jsonl".to_owned()),
        "{r}"
    );
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "cfa_evidence_export", "arguments": {"intent_id": "nope"}}}),
    );
    let r = recv();
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"], "unknown_intent",
        "{r}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
