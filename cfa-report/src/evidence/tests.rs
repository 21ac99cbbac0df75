#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use cfa_audit::{AuditStore as _, AuditTarget, Durability, JsonlStore, NewEvent, SignerKey};
use serde_json::{Value, json};

fn key() -> SignerKey {
    SignerKey::from_seed("audit.example/log", [7; 32]).unwrap()
}

/// A log with two runs interleaved: `run-a` (approved, with an approval ticket) and `run-b`.
fn log(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let s = JsonlStore::open(&path, Durability::Never).unwrap();
    let ev = |id: &str, stage: &str, ty: &str, out: &str, t: u32| {
        NewEvent::new(id, stage, ty, out, format!("2026-01-05T10:00:{t:02}+00:00"))
            .detail("decision_id", format!("d-{id}"))
            .with_bundle("prod-v1.0", "bh")
    };
    s.append(
        ev("run-a", "formalize", "environment_state_consulted", "ok", 0)
            .detail("catalog_hash", "ch"),
    )
    .unwrap();
    s.append(ev("run-b", "govern", "policy_evaluation", "block", 1).detail("faults", json!(["X"])))
        .unwrap();
    s.append(
        ev("run-a", "formalize", "semantic_resolution", "resolved", 2)
            .detail("signature_hash", "sh")
            .detail("content_hash", "cth"),
    )
    .unwrap();
    s.append(
        ev("run-a", "control", "approval_requested", "pending", 3)
            .detail("ticket_id", "t-1")
            .detail("content_hash", "cth")
            .detail("by", "agent-7")
            .detail("expires_at", "2026-01-06T00:00:00+00:00"),
    )
    .unwrap();
    s.append(
        ev("run-a", "control", "approval_granted", "approved", 4)
            .detail("ticket_id", "t-1")
            .detail("by", "alice")
            .detail("note", "ok"),
    )
    .unwrap();
    s.append(
        ev("run-a", "govern", "policy_evaluation", "approve", 5)
            .detail("faults", json!([]))
            .detail("replan_count", 0),
    )
    .unwrap();
    s.append(
        ev("run-a", "generate", "code_generated", "ok", 6)
            .detail("language", "sql")
            .detail("artifact_hash", "ab".repeat(32))
            .detail("line_count", 9),
    )
    .unwrap();
    s.append(
        ev("run-a", "execute", "execution_completed", "published", 7)
            .detail("sandbox", "mock")
            .detail("metrics", json!({"rows_output": 10, "cost_dbu": 1.5})),
    )
    .unwrap();
    s.append(
        ev("run-a", "execute", "state_projected", "projected", 8)
            .detail("version_id", "v_1")
            .detail("target_scope", json!(["silver_x"])),
    )
    .unwrap();
    s.append(
        ev("run-a", "validate", "final_decision", "approved", 9)
            .detail("signature_hash", "sh")
            .detail("replan_count", 0)
            .detail("blocked_reason", ""),
    )
    .unwrap();
    s.append(ev("run-b", "validate", "final_decision", "blocked", 10))
        .unwrap();
    path
}

fn signed(path: &std::path::Path) -> Bundle {
    export(
        &AuditTarget::Jsonl(path.to_path_buf()),
        &ExportOptions {
            key: Some(key()),
            ..ExportOptions::new("run-a", "9.9.9")
        },
    )
    .unwrap()
}

fn json_of(b: &Bundle, name: &str) -> Value {
    serde_json::from_slice(&b.files[name]).unwrap()
}

#[test]
fn a_signed_export_verifies_and_says_what_the_run_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let before = std::fs::read(&path).unwrap();
    let b = signed(&path);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "export never writes the log"
    );
    let names: Vec<_> = b.files.keys().cloned().collect();
    for n in [
        MANIFEST,
        RUN_SUMMARY,
        PROVENANCE,
        TOOLCHAIN,
        HUMAN_REVIEW,
        STATEMENT,
        DSSE,
        EVENTS,
        CHECKPOINT,
    ] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
    }
    // run-a's events are log indices 0 and 2..=9, each with a proof; run-b's are not there.
    assert!(b.files.contains_key(&proof_path(0)) && !b.files.contains_key(&proof_path(1)));
    assert_eq!(b.text(EVENTS).unwrap().lines().count(), 9);
    let log_lines: Vec<_> = std::str::from_utf8(&before).unwrap().lines().collect();
    assert_eq!(
        b.text(EVENTS).unwrap().lines().next(),
        Some(log_lines[0]),
        "exact bytes"
    );

    let run = json_of(&b, RUN_SUMMARY);
    assert_eq!(run["final_state"], "approved");
    assert_eq!(run["decision"], "approve");
    assert_eq!(run["started_at"], "2026-01-05T10:00:00+00:00");
    assert_eq!(run["finished_at"], "2026-01-05T10:00:09+00:00");
    let prov = json_of(&b, PROVENANCE);
    assert_eq!(prov["inputs"]["signature"]["content_hash"], "cth");
    assert_eq!(prov["inputs"]["catalog"]["catalog_hash"], "ch");
    assert_eq!(
        prov["inputs"]["policy_bundle"],
        json!({"version": "prod-v1.0", "hash": "bh"})
    );
    assert_eq!(prov["sandbox"]["metrics"]["cost_dbu"], 1.5);
    assert_eq!(prov["state_projected"]["version_id"], "v_1");
    let review = json_of(&b, HUMAN_REVIEW);
    assert_eq!(review["tickets"][0]["ticket_id"], "t-1");
    assert_eq!(review["tickets"][0]["status"], "granted");
    assert_eq!(review["tickets"][0]["events"][1]["by"], "alice");
    let tool = json_of(&b, TOOLCHAIN);
    assert_eq!(tool["cfa_version"], "9.9.9");
    assert_eq!(tool["backend"], "sql");
    assert_eq!(tool["sandbox"], "mock");
    let st = json_of(&b, STATEMENT);
    assert_eq!(st["_type"], STATEMENT_TYPE);
    assert_eq!(st["predicateType"], FORMAT);
    assert_eq!(st["subject"][0]["digest"]["sha256"], "ab".repeat(32));
    assert_eq!(
        st["subject"][1]["digest"]["sha256"],
        sha256_hex(&b.files[EVENTS])
    );

    let r = verify(&b, &[key().verifier()]);
    assert!(r.ok(), "{:?}", r.failures().collect::<Vec<_>>());
    assert!(r.signatures_checked);
    let unsigned = verify(&b, &[]);
    assert!(unsigned.ok() && !unsigned.signatures_checked);
    // Deterministic.
    assert_eq!(signed(&path), b);
}

fn failed_files(b: &Bundle) -> Vec<String> {
    verify(b, &[key().verifier()])
        .failures()
        .map(|c| c.file.clone())
        .collect()
}

fn edit(b: &Bundle, name: &str, from: &str, to: &str) -> Bundle {
    let mut e = b.clone();
    let text = e.text(name).unwrap().to_owned();
    assert!(text.contains(from), "{name} has {from}");
    e.files
        .insert(name.into(), text.replacen(from, to, 1).into_bytes());
    e
}

#[test]
fn every_kind_of_edit_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let b = signed(&log(dir.path()));
    // A byte in an event.
    let f = failed_files(&edit(&b, EVENTS, "\"published\"", "\"publishes\""));
    assert!(f.contains(&EVENTS.to_owned()), "{f:?}");
    // Provenance, even with the manifest updated to match: rebuilt from the events.
    let forged = edit(&b, PROVENANCE, "\"cth\"", "\"cti\"");
    let mut consistent = forged.clone();
    consistent.files.remove(MANIFEST);
    let m = docs::manifest("run-a", consistent.files.iter());
    consistent.files.insert(MANIFEST.into(), m.into_bytes());
    for bundle in [&forged, &consistent] {
        let r = verify(bundle, &[key().verifier()]);
        let prov: Vec<_> = r.failures().filter(|c| c.file == PROVENANCE).collect();
        assert!(!prov.is_empty(), "{:?}", r.checks);
    }
    let r = verify(&consistent, &[key().verifier()]);
    assert!(
        r.failures()
            .any(|c| c.what.contains("inputs.signature.content_hash")),
        "{:?}",
        r.checks
    );
    // The manifest itself.
    let f = failed_files(&edit(&b, MANIFEST, "\"sha256\": \"", "\"sha256\": \"0"));
    assert!(!f.is_empty());
    // The statement (and so its DSSE envelope no longer carries it).
    let f = failed_files(&edit(&b, STATEMENT, "\"approved\"", "\"blocked\""));
    assert!(
        f.contains(&STATEMENT.to_owned()) && f.contains(&DSSE.to_owned()),
        "{f:?}"
    );
    // The checkpoint: its signature and every proof.
    let cp = b.text(CHECKPOINT).unwrap();
    let size_line = cp.lines().nth(1).unwrap().to_owned();
    let f = failed_files(&edit(&b, CHECKPOINT, &format!("\n{size_line}\n"), "\n12\n"));
    assert!(f.contains(&CHECKPOINT.to_owned()), "{f:?}");
    assert!(f.iter().any(|x| x.starts_with("audit/proofs/")), "{f:?}");
    // A missing file and an extra file.
    let mut missing = b.clone();
    missing.files.remove(&proof_path(3));
    assert!(failed_files(&missing).contains(&proof_path(3)));
    let mut extra = b.clone();
    extra.files.insert("notes.txt".into(), b"hi".to_vec());
    assert_eq!(failed_files(&extra), ["notes.txt"]);
    // A wrong key: signatures fail, nothing else.
    let other = SignerKey::from_seed("audit.example/log", [8; 32]).unwrap();
    let r = verify(&b, &[other.verifier()]);
    assert!(!r.ok());
}

#[test]
fn a_given_checkpoint_is_used_and_must_cover_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let target = AuditTarget::Jsonl(path.clone());
    let (_, note) =
        cfa_audit::checkpoint::create_checkpoint(&target, "cp.example/log", &key(), false).unwrap();
    let with = |note: &str, k: Option<SignerKey>| {
        export(
            &target,
            &ExportOptions {
                checkpoint: Some(CheckpointNote {
                    name: "cp".into(),
                    note: note.into(),
                }),
                key: k,
                ..ExportOptions::new("run-a", "1")
            },
        )
    };
    let b = with(&note, None).unwrap();
    assert_eq!(b.text(CHECKPOINT), Some(note.as_str()));
    assert!(!b.files.contains_key(DSSE), "no key: no envelope");
    assert!(verify(&b, &[key().verifier()]).ok());
    // Appending after the checkpoint: the run is still covered; a new run is not.
    let s = JsonlStore::open(&path, Durability::Never).unwrap();
    s.append(NewEvent::new(
        "run-c",
        "govern",
        "policy_evaluation",
        "approve",
        "2026-01-05T10:01:00+00:00",
    ))
    .unwrap();
    drop(s);
    assert!(with(&note, None).is_ok());
    let err = export(
        &target,
        &ExportOptions {
            checkpoint: Some(CheckpointNote {
                name: "cp".into(),
                note: note.clone(),
            }),
            ..ExportOptions::new("run-c", "1")
        },
    )
    .unwrap_err();
    assert!(matches!(err, EvidenceError::NoCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("covers only 11 events"), "{err}");
    // With a key a fresh checkpoint covers it.
    let fresh = export(
        &target,
        &ExportOptions {
            key: Some(key()),
            ..ExportOptions::new("run-c", "1")
        },
    )
    .unwrap();
    assert!(fresh.text(CHECKPOINT).unwrap().contains("\n12\n"));
    // No checkpoint, no key; an unknown intent.
    let e = export(&target, &ExportOptions::new("run-a", "1")).unwrap_err();
    assert!(matches!(e, EvidenceError::NoCheckpoint { .. }), "{e}");
    let e = export(
        &target,
        &ExportOptions {
            key: Some(key()),
            ..ExportOptions::new("nope", "1")
        },
    )
    .unwrap_err();
    assert!(matches!(e, EvidenceError::UnknownIntent { .. }), "{e}");
}

#[test]
fn a_broken_chain_exports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"block\"", "\"approve\"", 1)).unwrap();
    let e = export(
        &AuditTarget::Jsonl(path),
        &ExportOptions {
            key: Some(key()),
            ..ExportOptions::new("run-a", "1")
        },
    )
    .unwrap_err();
    assert!(matches!(e, EvidenceError::Broken { index: 1, .. }), "{e}");
}

#[test]
fn bundles_round_trip_through_a_directory_and_a_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let b = signed(&log(dir.path()));
    let out = dir.path().join("ev");
    b.write_dir(&out, false).unwrap();
    assert_eq!(Bundle::read_dir(&out).unwrap(), b);
    let e = b.write_dir(&out, false).unwrap_err();
    assert!(matches!(e, EvidenceError::Exists { .. }), "{e}");
    let mut other = b.clone();
    other.files.remove(DSSE);
    other.write_dir(&out, true).unwrap();
    assert_eq!(Bundle::read_dir(&out).unwrap(), other);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary left: {leftovers:?}");
    let doc = b.to_json();
    assert_eq!(Bundle::from_json(&doc).unwrap(), b);
    assert!(Bundle::from_json(&json!({"files": {"a": 1}})).is_err());
}

#[test]
fn a_sqlite_log_exports_the_reference_lines_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let s = cfa_audit::SqliteStore::open(&path, Durability::Never).unwrap();
    let first = s
        .append(NewEvent::new(
            "run-s",
            "govern",
            "policy_evaluation",
            "approve",
            "2026-01-05T10:00:00+00:00",
        ))
        .unwrap();
    s.append(NewEvent::new(
        "run-s",
        "validate",
        "final_decision",
        "approved",
        "2026-01-05T10:00:01+00:00",
    ))
    .unwrap();
    drop(s);
    let before = std::fs::read(&path).unwrap();
    let b = export(
        &AuditTarget::Sqlite(path.clone()),
        &ExportOptions {
            key: Some(key()),
            ..ExportOptions::new("run-s", "1")
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the database is only read"
    );
    assert_eq!(
        b.text(EVENTS).unwrap().lines().next(),
        Some(first.to_jsonl_line().as_str())
    );
    assert_eq!(json_of(&b, TOOLCHAIN)["audit_store"], "sqlite");
    let r = verify(&b, &[key().verifier()]);
    assert!(r.ok(), "{:?}", r.failures().collect::<Vec<_>>());
}
