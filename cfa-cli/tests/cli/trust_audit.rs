//! The audit log tells the truth, through the real binary: unhashed top-level fields
//! must agree with their hashed copies, duplicate keys and lone surrogates are named,
//! whitespace follows the reference's reader, a torn tail is moved aside on append
//! (never on read), the verify JSON is the same on the CLI and over HTTP, CRLF
//! checkpoints are read as the LF text that was signed, and an empty catalog is an error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Served, http, spawn_served};
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

fn cfa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN");
    c
}

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

fn conformance(rel: &str) -> PathBuf {
    let root = std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    );
    root.join(rel)
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A log of three decisions written by `cfa policy check --audit-log` (our events:
/// the bundle version is also inside details).
fn our_log(dir: &Path) -> PathBuf {
    let log = dir.join("audit.jsonl");
    for sig in ["ok.json", "replan_multi.json", "ok.json"] {
        cfa()
            .args(["policy", "check", "-p", "prod-v1", "--exit-zero", "-s"])
            .arg(repo(&format!("examples/signatures/{sig}")))
            .args(["--audit-log", arg(&log)])
            .assert()
            .code(0);
    }
    log
}

fn verify_json(log: &Path) -> (i32, Value) {
    let out = cfa()
        .args(["audit", "verify", "--file", arg(log), "-f", "json"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("k");
    cfa()
        .args([
            "audit",
            "keygen",
            "--name",
            "example.org/audit",
            "--out",
            arg(&prefix),
        ])
        .assert()
        .code(0);
    (dir.join("k.key"), dir.join("k.vkey"))
}

#[test]
fn an_edited_top_level_bundle_version_fails_verify_checkpoint_and_proof() {
    let dir = tempfile::tempdir().unwrap();
    let log = our_log(dir.path());
    let (key, vkey) = keygen(dir.path());
    let cp = dir.path().join("cp.txt");
    cfa()
        .args([
            "audit",
            "checkpoint",
            "--file",
            arg(&log),
            "--key",
            arg(&key),
            "-o",
            arg(&cp),
        ])
        .assert()
        .code(0);
    let proof = dir.path().join("proof.txt");
    cfa()
        .args([
            "audit",
            "prove",
            "--file",
            arg(&log),
            "--event",
            "1",
            "--checkpoint",
            arg(&cp),
        ])
        .args(["-o", arg(&proof)])
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replacen(
        "\"policy_bundle_version\": \"prod-v1.0\", \"details\"",
        "\"policy_bundle_version\": \"forged-9\", \"details\"",
        1,
    );
    let forged: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_ne!(forged, text);
    std::fs::write(&log, &forged).unwrap();
    // verify: line 2, the field and both values.
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("index 1 (line 2)")
                .and(predicate::str::contains("policy_bundle_version"))
                .and(predicate::str::contains("\"forged-9\""))
                .and(predicate::str::contains("prod-v1")),
        );
    let (code, v) = verify_json(&log);
    assert_eq!(code, 1);
    assert_eq!(v["first_bad"]["code"], "field_mismatch", "{v}");
    assert_eq!(v["first_bad"]["line"], 2);
    // The checkpoint check fails too, and a new checkpoint is refused.
    cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "--checkpoint",
            arg(&cp),
        ])
        .args(["--pubkey", arg(&vkey)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("field mismatch"));
    cfa()
        .args([
            "audit",
            "checkpoint",
            "--file",
            arg(&log),
            "--key",
            arg(&key),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("policy_bundle_version"));
    // A proof whose carried event line has the forged top-level value is invalid.
    let p = cfa_audit::OfflineProof::parse(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let mut forged_proof = p.clone();
    forged_proof.event_line = p.event_line.replacen(
        "\"policy_bundle_version\": \"prod-v1.0\", \"details\"",
        "\"policy_bundle_version\": \"forged-9\", \"details\"",
        1,
    );
    assert_ne!(forged_proof.event_line, p.event_line);
    std::fs::write(&proof, forged_proof.to_text()).unwrap();
    cfa()
        .args([
            "audit",
            "verify-proof",
            "--proof",
            arg(&proof),
            "--pubkey",
            arg(&vkey),
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("policy_bundle_version")
                .and(predicate::str::contains("forged-9")),
        );
    // The reference's own events carry no copy: their verdict is unchanged.
    let reference = dir.path().join("reference.jsonl");
    let small = std::fs::read_to_string(conformance("audit/chain_small.jsonl")).unwrap();
    std::fs::write(
        &reference,
        small.replacen(
            "\"policy_bundle_version\": \"prod-v1\"",
            "\"policy_bundle_version\": \"x\"",
            1,
        ),
    )
    .unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&reference)])
        .assert()
        .code(0);
}

#[test]
fn duplicate_keys_are_invalid_at_any_depth() {
    let dir = tempfile::tempdir().unwrap();
    let small = std::fs::read_to_string(conformance("audit/chain_small.jsonl")).unwrap();
    let log = dir.path().join("dup.jsonl");
    // Line 2 says "replan"; a reader that keeps the first value would show "forged".
    std::fs::write(
        &log,
        small.replacen(
            "\"outcome\": \"replan\"",
            "\"outcome\": \"forged\", \"outcome\": \"replan\"",
            1,
        ),
    )
    .unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("(line 2)")
                .and(predicate::str::contains("duplicate key \"outcome\"")),
        );
    std::fs::write(
        &log,
        small.replacen("\"faults\": []", "\"faults\": [], \"faults\": []", 1),
    )
    .unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("(line 1)").and(predicate::str::contains(
                "duplicate key \"faults\" in details",
            )),
        );
}

#[test]
fn whitespace_follows_the_reference_reader() {
    let dir = tempfile::tempdir().unwrap();
    let small = std::fs::read_to_string(conformance("audit/chain_small.jsonl")).unwrap();
    let l: Vec<&str> = small.lines().collect();
    let log = dir.path().join("ws.jsonl");
    let cases = [
        // json.loads refuses NBSP / U+3000 around an event in the middle.
        (format!("{}\n\u{a0}{}\n{}\n", l[0], l[1], l[2]), 1),
        (format!("{}\n{}\u{3000}\n{}\n", l[0], l[1], l[2]), 1),
        // A line of spaces or tabs is not empty: json.loads("  ") fails.
        (format!("{}\n   \n{}\n{}\n", l[0], l[1], l[2]), 1),
        (format!("{}\n\t\n{}\n{}\n", l[0], l[1], l[2]), 1),
        // FF, VT, U+2028 and friends are line breaks: only empty lines result.
        (format!("{}\u{c}{}\u{b}\n{}\u{2028}\n", l[0], l[1], l[2]), 0),
        (
            format!("{}\r\n\u{1c}{}\u{85}\u{2029}{}\r", l[0], l[1], l[2]),
            0,
        ),
        // The whole-file strip removes Unicode padding at both ends.
        (
            format!("\u{a0}\u{3000}{}\n{}\n{}\u{a0}\n  \n", l[0], l[1], l[2]),
            0,
        ),
        // A byte order mark is not whitespace.
        (format!("\u{feff}{}\n{}\n{}\n", l[0], l[1], l[2]), 1),
    ];
    for (body, code) in cases {
        std::fs::write(&log, &body).unwrap();
        let out = cfa()
            .args(["audit", "verify", "--file", arg(&log)])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{body:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code == 1 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("torn"), "{err}");
        }
    }
}

fn torn_log(dir: &Path) -> (PathBuf, u64, &'static [u8]) {
    let log = our_log(dir);
    let good = std::fs::metadata(&log).unwrap().len();
    let torn: &[u8] = b"{\"intent_id\": \"x\", \"stage\": \"polic";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(torn)
        .unwrap();
    (log, good, torn)
}

#[test]
fn a_torn_tail_is_moved_aside_by_the_next_append_and_never_by_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let (log, good, torn) = torn_log(dir.path());
    let before = std::fs::read(&log).unwrap();
    // Reads report it and change nothing.
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "torn tail: incomplete last line at byte offset {good}"
        )));
    let _ = cfa()
        .args(["audit", "show", "--file", arg(&log), "-i", "x"])
        .output()
        .unwrap();
    let cfg = dir.path().join("cfa.yaml");
    std::fs::write(&cfg, "storage:\n  backend: jsonl\n  path: audit.jsonl\n").unwrap();
    cfa()
        .current_dir(dir.path())
        .args(["status"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "audit:         torn tail at offset {good}"
        )));
    assert_eq!(std::fs::read(&log).unwrap(), before);
    // The next decision is recorded.
    cfa()
        .args(["policy", "check", "-p", "prod-v1", "-s"])
        .arg(repo("examples/signatures/ok.json"))
        .args(["--audit-log", arg(&log)])
        .assert()
        .code(0);
    let side = dir.path().join(format!("audit.jsonl.torn-{good}"));
    assert_eq!(
        std::fs::read(&side).unwrap(),
        torn,
        "the sidecar keeps the exact bytes"
    );
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout("[OK] Chain INTACT (5 events total)\n");
    let text = std::fs::read_to_string(&log).unwrap();
    let repair: Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
    assert_eq!(repair["event_type"], "audit_repair");
    assert_eq!(repair["details"]["offset"], good);
    assert_eq!(repair["details"]["bytes"], torn.len());
    assert_eq!(repair["details"]["sidecar"], side.display().to_string());
    cfa()
        .current_dir(dir.path())
        .args(["status"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "audit:         repaired torn tail at offset {good} ({} bytes kept in {})",
            torn.len(),
            side.display()
        )));
}

fn serve(dir: &Path, log: &Path) -> (Served, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "warn")
        .args(["serve", "--port", "0", "--audit-log", arg(log)])
        .stderr(std::process::Stdio::inherit());
    let served = spawn_served(cmd);
    let addr = served.addr.clone();
    (served, addr)
}

#[test]
fn a_server_started_on_a_torn_log_serves_decisions_and_reports_the_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (log, good, torn) = torn_log(dir.path());
    let (_server, addr) = serve(dir.path(), &log);
    let (status, health) = http(&addr, "GET", "/health", "");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["audit"]["status"], "repaired", "{health}");
    let side = dir.path().join(format!("audit.jsonl.torn-{good}"));
    assert_eq!(
        health["audit"]["repairs"][0]["message"],
        format!(
            "audit: repaired torn tail at offset {good} ({} bytes kept in {})",
            torn.len(),
            side.display()
        )
    );
    assert_eq!(std::fs::read(&side).unwrap(), torn);
    let sig = std::fs::read_to_string(repo("examples/signatures/ok.json")).unwrap();
    for _ in 0..3 {
        let (status, d) = http(&addr, "POST", "/v1/decisions", &sig);
        assert_eq!(status, 200, "{d}");
        assert!(!d["audit_event_hash"].as_str().unwrap().is_empty());
    }
    // The HTTP verify report and `cfa audit verify -f json` are the same document.
    let (status, over_http) = http(&addr, "GET", "/v1/audit/verify", "");
    assert_eq!(status, 200);
    let (code, on_cli) = verify_json(&log);
    assert_eq!(code, 0);
    assert_eq!(over_http["chain_intact"], true);
    assert_eq!(over_http["total_events"], 7, "3 + repair + 3: {over_http}");
    for (k, v) in over_http.as_object().unwrap() {
        assert_eq!(&on_cli[k], v, "{k}: CLI {on_cli} vs HTTP {over_http}");
    }
    let (_, http_id) = http(&addr, "GET", "/v1/audit/verify?intent_id=x", "");
    let out = cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "-f",
            "json",
            "-i",
            "x",
        ])
        .output()
        .unwrap();
    let cli_id: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (k, v) in http_id.as_object().unwrap() {
        assert_eq!(&cli_id[k], v, "{k}");
    }
    assert_eq!(cli_id["event_count"], 0);
    assert!(cli_id.get("intact").is_none() && cli_id.get("events").is_none());
}

#[test]
fn crlf_checkpoints_and_proofs_are_read_as_the_signed_lf_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = our_log(dir.path());
    let (key, vkey) = keygen(dir.path());
    let cp = dir.path().join("cp.txt");
    cfa()
        .args([
            "audit",
            "checkpoint",
            "--file",
            arg(&log),
            "--key",
            arg(&key),
            "-o",
            arg(&cp),
        ])
        .assert()
        .code(0);
    let crlf = std::fs::read_to_string(&cp).unwrap().replace('\n', "\r\n");
    std::fs::write(&cp, &crlf).unwrap();
    cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "--checkpoint",
            arg(&cp),
        ])
        .args(["--pubkey", arg(&vkey)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("[OK] Consistent with checkpoint"));
    let proof = dir.path().join("proof.txt");
    cfa()
        .args([
            "audit",
            "prove",
            "--file",
            arg(&log),
            "--event",
            "2",
            "--checkpoint",
            arg(&cp),
        ])
        .args(["-o", arg(&proof)])
        .assert()
        .code(0);
    let p = std::fs::read_to_string(&proof).unwrap();
    assert!(!p.contains('\r'), "the proof is written with LF endings");
    std::fs::write(&proof, p.replace('\n', "\r\n")).unwrap();
    cfa()
        .args([
            "audit",
            "verify-proof",
            "--proof",
            arg(&proof),
            "--pubkey",
            arg(&vkey),
        ])
        .assert()
        .code(0);
    // A stray CR (not a line ending) gets a message in the user's terms.
    std::fs::write(&cp, crlf.replacen("\r\n", "\r", 1)).unwrap();
    cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "--checkpoint",
            arg(&cp),
        ])
        .args(["--pubkey", arg(&vkey)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("carriage return"));
}

#[test]
fn a_lone_surrogate_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let small = std::fs::read_to_string(conformance("audit/chain_small.jsonl")).unwrap();
    let log = dir.path().join("s.jsonl");
    std::fs::write(
        &log,
        small.replacen("\"faults\": []", "\"faults\": [\"\\ud800\"]", 1),
    )
    .unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "first bad event at index 0 (line 1): lone UTF-16 surrogate escape \\ud800 at \
             column 514: it is not a Unicode character",
        ));
    cfa()
        .args(["audit", "show", "-i", "x", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("surrogate")
                .and(predicate::str::contains("not a Unicode"))
                .and(predicate::str::contains("panicked").not()),
        );
}

#[test]
fn an_empty_catalog_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.json", ""),
        ("blank.json", "  \n\t\n"),
        ("empty.yaml", ""),
    ] {
        let cat = dir.path().join(name);
        std::fs::write(&cat, text).unwrap();
        cfa()
            .args(["policy", "check", "-s"])
            .arg(repo("examples/signatures/ok.json"))
            .args(["-c", arg(&cat)])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(name).and(predicate::str::contains("empty")));
        cfa()
            .args(["evaluate", "load clientes into silver", "-c", arg(&cat)])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(name).and(predicate::str::contains("empty")));
    }
}
