//! `cfa audit …` through the real binary: verdict lines, exit codes (0 ok, 1 broken /
//! invalid / I/O, 2 usage), torn tail + repair, checkpoints, proofs and keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn cfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
}

fn conformance(rel: &str) -> PathBuf {
    let root = std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    );
    let p = root.join(rel);
    assert!(p.is_file(), "conformance file {} is required", p.display());
    p
}

fn small_chain(dir: &Path) -> PathBuf {
    let p = dir.join("audit.jsonl");
    std::fs::copy(conformance("audit/chain_small.jsonl"), &p).unwrap();
    p
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verify_intact_reference_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout("[OK] Chain INTACT (3 events total)\n");
    cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "-i",
            cfa_test_support::REFERENCE_INTENT_ID,
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "[OK] Chain INTACT for intent 11111111-2222-3333-4444-555555555555 (3 events)",
        ));
    let out = cfa()
        .args(["audit", "verify", "--file", arg(&log), "--format", "json"])
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["chain_intact"], true);
    assert_eq!(v["total_events"], 3);
    assert!(v["first_bad"].is_null());
}

#[test]
fn verify_broken_names_index_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replacen("\"outcome\": \"replan\"", "\"outcome\": \"approve\"", 1),
    )
    .unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[FAIL] Chain BROKEN"))
        .stderr(predicate::str::contains("index 1 (line 2): hash mismatch"));
    let out = cfa()
        .args(["audit", "verify", "--file", arg(&log), "-f", "json"])
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["chain_intact"], false);
    assert_eq!(v["first_bad"]["index"], 1);
    assert_eq!(v["first_bad"]["line"], 2);
    assert_eq!(v["first_bad"]["code"], "hash_mismatch");
}

#[test]
fn missing_file_is_an_error_and_usage_errors_exit_2() {
    cfa()
        .args(["audit", "verify", "--file", "/nonexistent/dir/audit.jsonl"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/dir/audit.jsonl"));
    cfa().args(["audit", "verify"]).assert().code(2);
    cfa()
        .args(["audit", "verify", "--file", "a", "--db", "b"])
        .assert()
        .code(2);
}

#[test]
fn legacy_hashes_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    // Rewrite the chain with 16-hex hashes, links recomputed (cfa-kernel < 3.1 form).
    let mut prev = String::new();
    let mut out = String::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let mut e = cfa_audit::AuditEvent::from_jsonl_line(line).unwrap();
        e.previous_hash = prev.clone();
        e.event_hash = e.compute_hash()[..16].to_owned();
        prev = e.event_hash.clone();
        out.push_str(&e.to_jsonl_line());
        out.push('\n');
    }
    std::fs::write(&log, out).unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("legacy 16-hex"));
    cfa()
        .args(["audit", "verify", "--file", arg(&log), "--allow-legacy"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "[OK] Chain INTACT (3 events total)",
        ));
}

#[test]
fn torn_tail_is_repaired_explicitly_or_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    let good_len = std::fs::metadata(&log).unwrap().len();
    let tear = |log: &Path| {
        let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        std::io::Write::write_all(&mut f, b"{\"intent_id\": \"x\", \"st").unwrap();
    };
    tear(&log);
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "torn tail: incomplete last line at byte offset {good_len}"
        )));
    cfa()
        .args(["audit", "repair", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("from offset {good_len}")));
    assert!(
        dir.path()
            .join(format!("audit.jsonl.torn-{good_len}"))
            .is_file()
    );
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout("[OK] Chain INTACT (3 events total)\n");
    // Torn again at the same offset: the next append moves it aside (a second
    // sidecar), records the repair in the chain and goes on.
    tear(&log);
    let append = [
        "audit",
        "append",
        "--file",
        arg(&log),
        "--intent-id",
        "i",
        "--stage",
        "s",
        "--event-type",
        "e",
        "--outcome",
        "ok",
        "--timestamp",
        "2026-11-21T20:03:00+00:00",
    ];
    cfa().args(append).assert().code(0);
    assert!(
        dir.path()
            .join(format!("audit.jsonl.torn-{good_len}.1"))
            .is_file()
    );
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout("[OK] Chain INTACT (5 events total)\n");
    cfa()
        .args(["audit", "repair", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no torn tail"));
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("log");
    cfa()
        .args([
            "audit",
            "keygen",
            "--name",
            "audit.test/log",
            "--out",
            arg(&prefix),
        ])
        .assert()
        .code(0);
    (dir.join("log.key"), dir.join("log.vkey"))
}

#[test]
fn keygen_writes_private_0600_and_a_vkey() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let v = cfa_audit::VerifierKey::parse(&std::fs::read_to_string(&vkey).unwrap()).unwrap();
    assert_eq!(v.name(), "audit.test/log");
    let s = cfa_audit::SignerKey::parse(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(s.verifier(), v);
    // Never overwrites an existing key.
    cfa()
        .args([
            "audit",
            "keygen",
            "--name",
            "x",
            "--out",
            arg(&dir.path().join("log")),
        ])
        .assert()
        .code(1);
}

#[test]
fn checkpoint_catches_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
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
    let note = std::fs::read_to_string(&cp).unwrap();
    assert!(note.starts_with("audit.test/log\n3\n"), "{note}");
    assert!(note.contains("\n\n\u{2014} audit.test/log "));
    let verify = [
        "audit",
        "verify",
        "--file",
        arg(&log),
        "--checkpoint",
        arg(&cp),
        "--pubkey",
        arg(&vkey),
    ];
    cfa()
        .args(verify)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "[OK] Consistent with checkpoint audit.test/log at size 3",
        ));
    let text = std::fs::read_to_string(&log).unwrap();
    let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, first_two).unwrap();
    // The chain alone cannot see the truncation …
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0);
    // … the checkpoint does.
    cfa()
        .args(verify)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("events were removed"));
}

#[test]
fn prove_and_verify_proof_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    let (key, vkey) = keygen(dir.path());
    let proof = dir.path().join("e1.tlog-proof");
    cfa()
        .args([
            "audit",
            "prove",
            "--file",
            arg(&log),
            "--event",
            "1",
            "--key",
            arg(&key),
            "-o",
            arg(&proof),
        ])
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&proof).unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    assert!(text.contains("\nindex 1\n"));
    // Checked without the log.
    std::fs::remove_file(&log).unwrap();
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
        .code(0)
        .stdout(predicate::str::contains(
            "[OK] Event 1 (eb3f42d4d7dba3a301b2b88bed067a727439c8df99e1ad1f2a1a5a64be18b767)",
        ));
    // Another key, or a different index, fails.
    let other = dir.path().join("other");
    cfa()
        .args([
            "audit",
            "keygen",
            "--name",
            "audit.test/log",
            "--out",
            arg(&other),
        ])
        .assert()
        .code(0);
    cfa()
        .args([
            "audit",
            "verify-proof",
            "--proof",
            arg(&proof),
            "--pubkey",
            arg(&dir.path().join("other.vkey")),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[FAIL] Proof INVALID"));
    std::fs::write(&proof, text.replace("\nindex 1\n", "\nindex 2\n")).unwrap();
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
        .code(1);
}

#[test]
fn sqlite_append_verify_show() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    for (i, outcome) in ["approve", "replan", "block"].iter().enumerate() {
        cfa()
            .args([
                "audit",
                "append",
                "--db",
                arg(&db),
                "--intent-id",
                if i == 1 { "b" } else { "a" },
                "--stage",
                "policy_check",
                "--event-type",
                "policy_evaluation",
                "--outcome",
                outcome,
                "--details",
                r#"{"z": 1, "a": [1.5, "é"]}"#,
                "--bundle-version",
                "prod-v1",
                "--bundle-hash",
                "h",
            ])
            .assert()
            .code(0);
    }
    cfa()
        .args(["audit", "verify", "--db", arg(&db)])
        .assert()
        .code(0)
        .stdout("[OK] Chain INTACT (3 events total)\n");
    let out = cfa()
        .args(["audit", "show", "--db", arg(&db), "-i", "a", "-f", "json"])
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["chain_intact"], true);
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    assert_eq!(v["events"][1]["outcome"], "block");
    assert_eq!(v["events"][0]["details"]["policy_bundle_hash"], "h");
}

#[test]
fn verify_retained_log_from_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_chain(dir.path());
    let anchor = dir.path().join("audit.jsonl.anchor.json");
    let kept = cfa_audit::retain::retain_suffix(&log, 2, &anchor, None).unwrap();
    assert_eq!(kept.size, 2);
    // Auto-detected beside the log, and said so.
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("from anchor"))
        .stdout(predicate::str::contains(
            "[OK] Chain INTACT (1 events total)",
        ));
    // Explicit --anchor from elsewhere; without any anchor the suffix does not verify.
    let moved = dir.path().join("moved.anchor.json");
    std::fs::rename(&anchor, &moved).unwrap();
    cfa()
        .args(["audit", "verify", "--file", arg(&log)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[FAIL] Chain BROKEN"));
    let out = cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "--anchor",
            arg(&moved),
        ])
        .args(["--format", "json"])
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["chain_intact"], true);
    assert_eq!(v["anchor"]["dropped_events"], 2);
    // A tampered anchor (wrong last hash of the dropped prefix) fails.
    let text = std::fs::read_to_string(&moved).unwrap();
    let tampered = text.replace(&kept.last_hash, &"0".repeat(64));
    assert_ne!(text, tampered);
    std::fs::write(&moved, tampered).unwrap();
    cfa()
        .args([
            "audit",
            "verify",
            "--file",
            arg(&log),
            "--anchor",
            arg(&moved),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[FAIL] Chain BROKEN"));
}
