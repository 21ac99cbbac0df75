//! Tamper matrix over a chain written by our JSONL store: every modification with its
//! verdict, without and with a signed checkpoint. Truncation and a tail rewritten with
//! recomputed hashes are invisible to the hash chain alone and caught by the checkpoint.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::checkpoint::{create_checkpoint, verify_with_checkpoint};
use cfa_audit::verify::BadReason;
use cfa_audit::{
    AuditEvent, AuditStore, AuditTarget, Durability, JsonlStore, NewEvent, SignerKey, VerifyOptions,
};
use std::path::Path;

const N: usize = 20;

fn event(i: usize) -> NewEvent {
    NewEvent::new(
        format!("intent-{}", i % 3),
        "policy_check",
        "policy_evaluation",
        if i.is_multiple_of(4) {
            "replan"
        } else {
            "approve"
        },
        format!("2026-11-21T20:02:{:02}.{:06}+00:00", i, i * 1000),
    )
    .detail("decision_id", format!("d-{i}"))
    .detail("faults", serde_json::json!(["FINOPS_X", "é — 🚀"]))
    .detail("score", 0.25 * i as f64)
    .with_bundle("prod-v1", "abc")
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    note: String,
    key: SignerKey,
    lines: Vec<String>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&log, Durability::Never).unwrap();
    for i in 0..N {
        store.append(event(i)).unwrap();
    }
    let key = SignerKey::from_seed("audit.test/log", [3; 32]).unwrap();
    let (_, note) = create_checkpoint(
        &AuditTarget::Jsonl(log.clone()),
        "audit.test/log",
        &key,
        false,
    )
    .unwrap();
    let lines = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    Fixture {
        _dir: dir,
        log,
        note,
        key,
        lines,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// `None`: intact; else the first bad index and reason code.
    chain: Option<(u64, &'static str)>,
    /// The checkpoint check passed (only meaningful for an intact chain).
    checkpoint_ok: bool,
}

fn verdict(f: &Fixture, text: &str, allow_legacy: bool) -> Verdict {
    let path = f.log.with_extension("tampered.jsonl");
    std::fs::write(&path, text).unwrap();
    let opts = VerifyOptions {
        allow_legacy,
        ..VerifyOptions::default()
    };
    let target = AuditTarget::Jsonl(path.clone());
    let plain = cfa_audit::verify_file(&path, &opts, &mut |_| {}).unwrap();
    let check =
        verify_with_checkpoint(&target, &f.note, &f.key.verifier(), &opts, &mut |_| {}).unwrap();
    assert_eq!(plain.first_bad, check.report.first_bad);
    Verdict {
        chain: plain.first_bad.map(|b| (b.index, b.reason.code())),
        checkpoint_ok: check.problem.is_none(),
    }
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Re-chains events from `from` on with recomputed hashes (what an attacker with write
/// access does); `legacy` cuts every hash to 16 hex chars like cfa-kernel < 3.1.
fn rechain(
    lines: &[String],
    from: usize,
    edit: impl Fn(&mut AuditEvent),
    legacy: bool,
) -> Vec<String> {
    let mut out: Vec<String> = lines[..from].to_vec();
    let mut prev = if from == 0 {
        String::new()
    } else {
        AuditEvent::from_jsonl_line(&lines[from - 1])
            .unwrap()
            .event_hash
    };
    for l in &lines[from..] {
        let mut e = AuditEvent::from_jsonl_line(l).unwrap();
        edit(&mut e);
        e.previous_hash = prev.clone();
        e.event_hash = e.compute_hash();
        if legacy {
            e.event_hash.truncate(16);
        }
        prev = e.event_hash.clone();
        out.push(e.to_jsonl_line());
    }
    out
}

#[test]
fn untouched_chain_is_intact_and_consistent() {
    let f = fixture();
    assert_eq!(
        verdict(&f, &join(&f.lines), false),
        Verdict {
            chain: None,
            checkpoint_ok: true
        }
    );
    // Growth after the checkpoint is fine.
    let store = JsonlStore::open(&f.log, Durability::Always).unwrap();
    store.append(event(99)).unwrap();
    let grown = std::fs::read_to_string(&f.log).unwrap();
    assert_eq!(
        verdict(&f, &grown, false),
        Verdict {
            chain: None,
            checkpoint_ok: true
        }
    );
}

#[test]
fn edits_deletes_swaps_and_forgeries_are_caught_without_a_checkpoint() {
    let f = fixture();
    let mut l = f.lines.clone();
    l[7] = l[7].replacen("\"outcome\": \"approve\"", "\"outcome\": \"block\"", 1);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((7, "hash_mismatch"))
    );

    let mut l = f.lines.clone();
    l[9] = l[9].replacen("d-9", "d-X", 1);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((9, "hash_mismatch"))
    );

    let mut l = f.lines.clone();
    l.remove(5);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((5, "link_broken"))
    );

    let mut l = f.lines.clone();
    l.swap(11, 12);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((11, "link_broken"))
    );

    // A forged event with a correct own hash chained to an older event.
    let mut l = f.lines.clone();
    let mut forged = AuditEvent::from_jsonl_line(&l[13]).unwrap();
    forged.outcome = "approve".into();
    forged.previous_hash = AuditEvent::from_jsonl_line(&l[10]).unwrap().event_hash;
    forged.event_hash = forged.compute_hash();
    l.insert(14, forged.to_jsonl_line());
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((14, "link_broken"))
    );

    // First line dropped: the new genesis has a non-empty previous_hash.
    assert_eq!(
        verdict(&f, &join(&f.lines[1..]), false).chain,
        Some((0, "link_broken"))
    );
}

#[test]
fn truncation_and_tail_rewrite_are_caught_only_by_the_checkpoint() {
    let f = fixture();
    let truncated = join(&f.lines[..N - 3]);
    assert_eq!(
        verdict(&f, &truncated, false),
        Verdict {
            chain: None,
            checkpoint_ok: false
        }
    );

    let rewritten = rechain(&f.lines, 15, |e| e.outcome = "approve-forged".into(), false);
    assert_eq!(
        verdict(&f, &join(&rewritten), false),
        Verdict {
            chain: None,
            checkpoint_ok: false
        }
    );

    // Truncate then append new events: the chain links, the checkpoint does not.
    let mut l = f.lines[..N - 2].to_vec();
    l.extend(
        rechain(&f.lines, N - 2, |e| e.stage = "other".into(), false)
            .into_iter()
            .skip(N - 2),
    );
    assert_eq!(
        verdict(&f, &join(&l), false),
        Verdict {
            chain: None,
            checkpoint_ok: false
        }
    );
}

#[test]
fn legacy_hashes_need_allow_legacy_and_break_the_checkpoint() {
    let f = fixture();
    let legacy = join(&rechain(&f.lines, 0, |_| {}, true));
    assert_eq!(verdict(&f, &legacy, false).chain, Some((0, "legacy_hash")));
    let lenient = verdict(&f, &legacy, true);
    assert_eq!(lenient.chain, None);
    assert!(
        !lenient.checkpoint_ok,
        "the checkpoint covers the full hashes"
    );
}

#[test]
fn reserialised_crlf_and_blank_lines_stay_intact_and_consistent() {
    let f = fixture();
    let mut l = f.lines.clone();
    for line in l.iter_mut().skip(3).take(4) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *line = serde_json::to_string(&v).unwrap(); // compact, non-ASCII left raw
    }
    assert_eq!(
        verdict(&f, &join(&l), false),
        Verdict {
            chain: None,
            checkpoint_ok: true
        }
    );

    let crlf: String = f.lines.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(
        verdict(&f, &crlf, false),
        Verdict {
            chain: None,
            checkpoint_ok: true
        }
    );

    let blanks = format!("\n{}\n\n  \n", join(&f.lines));
    assert_eq!(
        verdict(&f, &blanks, false),
        Verdict {
            chain: None,
            checkpoint_ok: true
        }
    );

    // Changing the unhashed top-level policy_bundle_version is caught: our events carry
    // a hashed copy inside details, and the two must agree.
    let l2: Vec<String> = f
        .lines
        .iter()
        .map(|l| {
            l.replacen(
                "\"policy_bundle_version\": \"prod-v1\", \"details\"",
                "\"policy_bundle_version\": \"evil\", \"details\"",
                1,
            )
        })
        .collect();
    assert_eq!(
        verdict(&f, &join(&l2), false).chain,
        Some((0, "field_mismatch"))
    );
    let l3: Vec<String> = f
        .lines
        .iter()
        .map(|l| {
            l.replacen(
                "\"policy_bundle_version\": \"prod-v1\", \"policy_bundle_hash\"",
                "\"policy_bundle_version\": \"evil\", \"policy_bundle_hash\"",
                1,
            )
        })
        .collect();
    assert_eq!(
        verdict(&f, &join(&l3), false).chain,
        Some((0, "hash_mismatch"))
    );
}

#[test]
fn torn_tail_is_moved_aside_when_the_log_is_opened_for_append() {
    let f = fixture();
    let good = join(&f.lines);
    let torn = "{\"intent_id\": \"x\", \"sta";
    let text = format!("{good}{torn}");
    std::fs::write(&f.log, &text).unwrap();
    // A read reports the torn tail and changes nothing.
    let v = verdict(&f, &text, false);
    assert_eq!(v.chain, Some((N as u64, "torn_tail")));
    assert_eq!(std::fs::read_to_string(&f.log).unwrap(), text);
    // Opening for append moves it aside and records the repair in the chain.
    let store = JsonlStore::open(&f.log, Durability::Always).unwrap();
    let repairs = store.repairs();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].offset as usize, good.len());
    assert_eq!(repairs[0].bytes as usize, torn.len());
    assert_eq!(std::fs::read(&repairs[0].sidecar).unwrap(), torn.as_bytes());
    store.append(event(50)).unwrap();
    let r = cfa_audit::verify_file(&f.log, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(r.intact(), "{:?}", r.first_bad);
    assert_eq!(r.events, N as u64 + 2);
    let after = std::fs::read_to_string(&f.log).unwrap();
    let repair_line = after.lines().nth(N).unwrap();
    let e = cfa_audit::AuditEvent::from_jsonl_line(repair_line).unwrap();
    assert_eq!(e.event_type, "audit_repair");
    assert_eq!(e.details["offset"], good.len() as u64);
    assert_eq!(e.details["bytes"], torn.len() as u64);
    assert_eq!(
        e.details["sidecar"],
        repairs[0].sidecar.display().to_string()
    );
    // Nothing else is torn now: the explicit repair finds a clean log.
    assert_eq!(
        cfa_audit::repair(&f.log).unwrap(),
        cfa_audit::RepairOutcome::Clean
    );
    // A complete but unreadable last line (it ends in a newline) is not a crash
    // artefact: appends refuse it and point at `cfa audit repair`.
    std::fs::write(&f.log, format!("{good}garbage\n")).unwrap();
    let store = JsonlStore::open(&f.log, Durability::Always).unwrap();
    assert!(store.repairs().is_empty());
    let err = store.append(event(50)).unwrap_err().to_string();
    assert!(
        err.contains("torn line") && err.contains("cfa audit repair"),
        "{err}"
    );
}

#[test]
fn unknown_and_missing_keys_and_garbage_are_reported_at_their_index() {
    let f = fixture();
    let mut l = f.lines.clone();
    l[4] = l[4].replacen("{\"intent_id\"", "{\"extra\": 1, \"intent_id\"", 1);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((4, "unknown_key"))
    );
    let mut l = f.lines.clone();
    l[6] = l[6].replacen("\"stage\": \"policy_check\", ", "", 1);
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((6, "missing_key"))
    );
    let mut l = f.lines.clone();
    l[2] = "not json".into();
    assert_eq!(
        verdict(&f, &join(&l), false).chain,
        Some((2, "unparsable_line"))
    );
    // A missing file is an error, never "intact".
    assert!(
        cfa_audit::verify_file(
            Path::new("/nonexistent/audit.jsonl"),
            &VerifyOptions::default(),
            &mut |_| {}
        )
        .is_err()
    );
    let _ = BadReason::TornTail { offset: 0 };
}
