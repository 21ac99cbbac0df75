//! `cfa policy backtest` through the real binary: decide N signatures into an audit
//! log (JSONL and SQLite), change one rule, and the backtest finds exactly the
//! decisions that rule changes, each with an inclusion proof that verifies (also as a
//! signed offline proof through `cfa audit verify-proof`); decisions whose stored
//! signature is gone are reported as not replayable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::fixtures::{N, decided, signature};
use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::Path;

fn cfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
}

fn backtest(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = cfa()
        .current_dir(dir)
        .args(["policy", "backtest", "-f", "json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn check_flips(v: &Value) {
    assert_eq!(v["decisions"], N);
    assert_eq!(v["not_replayable"], 0, "{v}");
    assert_eq!(v["changed"], N / 2, "{v}");
    assert_eq!(v["unchanged"], N / 2);
    for (k, c) in v["changes"].as_array().unwrap().iter().enumerate() {
        // Exactly the unpartitioned (even) signatures flip, replan -> block.
        assert_eq!(c["index"], 2 * k, "{c}");
        assert_eq!(c["intent_id"], format!("intent-{}", 2 * k));
        assert_eq!(c["old"]["action"], "replan");
        assert_eq!(c["new"]["action"], "block");
        assert_eq!(c["new"]["faults"], json!(["FIN_UNPARTITIONED_SCAN"]));
        assert_eq!(c["new"]["rules"], json!(["partition_large_inputs"]));
        assert_eq!(c["proof"]["verified"], true);
        assert_eq!(c["proof"]["tree_size"], N);
        assert_eq!(c["proof"]["root"], v["root"]);
    }
}

#[test]
fn a_changed_rule_flips_exactly_its_decisions_with_proofs() {
    let dir = decided("--audit-log", "audit.jsonl");
    // The unchanged bundle changes nothing.
    let (code, v) = backtest(
        dir.path(),
        &["--bundle", "old.yaml", "--log", "audit.jsonl"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["changed"].clone(), v["unchanged"].clone()),
        (json!(0), json!(N))
    );
    let (code, v) = backtest(
        dir.path(),
        &["--bundle", "new.yaml", "--log", "audit.jsonl"],
    );
    assert_eq!(code, 7, "{v}");
    check_flips(&v);
    // A wrong proof does not verify: the proof is checked, not assumed.
    let c = &v["changes"][0];
    let mut path: Vec<[u8; 32]> = c["proof"]["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = h.as_str().unwrap();
            let mut out = [0u8; 32];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        })
        .collect();
    let root_hex = v["root"].as_str().unwrap();
    let mut root = [0u8; 32];
    for (i, b) in root.iter_mut().enumerate() {
        *b = u8::from_str_radix(&root_hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let leaf = cfa_audit::merkle::event_leaf(c["event_hash"].as_str().unwrap());
    cfa_audit::merkle::verify_inclusion(&leaf, 0, N as u64, &path, &root).unwrap();
    path[0][0] ^= 1;
    assert!(cfa_audit::merkle::verify_inclusion(&leaf, 0, N as u64, &path, &root).is_err());
    // --exit-zero reports without failing.
    let (code, _) = backtest(
        dir.path(),
        &[
            "--bundle",
            "new.yaml",
            "--log",
            "audit.jsonl",
            "--exit-zero",
        ],
    );
    assert_eq!(code, 0);
}

#[test]
fn sqlite_logs_backtest_the_same_and_signed_proofs_verify() {
    let dir = decided("--audit-db", "audit.db");
    let (code, v) = backtest(dir.path(), &["--bundle", "new.yaml", "--db", "audit.db"]);
    assert_eq!(code, 7, "{v}");
    check_flips(&v);

    let run = |args: &[&str]| {
        let out = cfa().current_dir(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["audit", "keygen", "--name", "test/log", "--out", "k"]);
    run(&[
        "audit",
        "checkpoint",
        "--db",
        "audit.db",
        "--key",
        "k.key",
        "-o",
        "cp.note",
    ]);
    let (_, v) = backtest(
        dir.path(),
        &[
            "--bundle",
            "new.yaml",
            "--db",
            "audit.db",
            "--checkpoint",
            "cp.note",
        ],
    );
    let proof = v["changes"][1]["proof"]["offline_proof"].as_str().unwrap();
    std::fs::write(dir.path().join("p.proof"), proof).unwrap();
    run(&[
        "audit",
        "verify-proof",
        "--proof",
        "p.proof",
        "--pubkey",
        "k.vkey",
    ]);
}

#[test]
fn decisions_without_stored_signatures_are_reported_not_guessed() {
    let dir = decided("--audit-log", "audit.jsonl");
    let (_, v) = backtest(
        dir.path(),
        &["--bundle", "new.yaml", "--log", "audit.jsonl"],
    );
    let gone = v["changes"][0]["event_hash"].as_str().unwrap().to_owned();
    // Remove the stored signature of the first decision (event 0, intent-0).
    let sig0: Value = signature(0);
    let stored = dir.path().join("audit.jsonl.signatures/signatures");
    let mut removed = 0;
    for entry in std::fs::read_dir(&stored).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains(&format!("\"size_gb\":{}", 4000)) {
            std::fs::remove_file(&path).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1, "{sig0}");
    let (code, v) = backtest(
        dir.path(),
        &["--bundle", "new.yaml", "--log", "audit.jsonl"],
    );
    assert_eq!(code, 7);
    assert_eq!(v["not_replayable"], 1, "{v}");
    assert_eq!(v["changed"], N / 2 - 1);
    assert_eq!(v["missing"][0]["event_hash"], gone.as_str());
    assert_eq!(v["missing"][0]["index"], 0);
    assert!(
        v["missing"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("is not in")
    );

    let out = cfa()
        .current_dir(dir.path())
        .args([
            "policy",
            "backtest",
            "--bundle",
            "new.yaml",
            "--log",
            "audit.jsonl",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 not replayable"), "{text}");
    assert!(text.contains("NOT REPLAYABLE event 0"), "{text}");
    assert!(text.contains("inclusion proof verified"), "{text}");
}

#[test]
fn a_broken_chain_is_refused() {
    let dir = decided("--audit-log", "audit.jsonl");
    let log = dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"replan\"", "\"approve\"", 1)).unwrap();
    let out = cfa()
        .current_dir(dir.path())
        .args([
            "policy",
            "backtest",
            "--bundle",
            "new.yaml",
            "--log",
            "audit.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the chain is broken at event 0"));
}
