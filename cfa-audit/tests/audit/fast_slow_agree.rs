//! The byte verifier's fast path (the reference layout hashed from the line's own
//! bytes) and its slow path (full parse and canonical re-serialisation) give the
//! verdict of verifying the parsed events: the same events, tail hash and first bad
//! event (index, line, reason) for lines in the reference layout, with reordered keys,
//! other spacing, Unicode escapes, tampered values, CRLF line ends and a truncated
//! last line — on one thread, in chunk halves and cut into parts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::verify::{VerifyOptions, VerifyReport, verify_events, verify_reader};
use cfa_audit::{AuditEvent, BadReason, NewEvent, verify_file};
use serde_json::{Value, json};

/// `n` chained events in the reference layout, with details whose keys are not in
/// order and nested objects and escapes.
fn events(n: usize) -> Vec<AuditEvent> {
    let mut prev = String::new();
    (0..n)
        .map(|i| {
            let e = NewEvent::new(
                format!("intent-{}", i % 5),
                "policy_check",
                "policy_evaluation",
                if i % 3 == 0 { "replan" } else { "approve" },
                format!("2026-01-01T00:00:{:02}+00:00", i % 60),
            )
            .detail("decision_id", format!("d-{i:012}"))
            .detail("signature_hash", format!("{i:064x}"))
            .detail("faults", json!(["FINOPS_MISSING_TEMPORAL_PREDICATE"]))
            .detail(
                "nested",
                json!({"z": 1, "a": [1.5, null, {"y": true, "b": "é\u{1F680}\n"}]}),
            )
            .detail("reasoning", "Policy requires replan \u{2014} 1 fault(s)")
            .detail("padding", "x".repeat(300))
            .seal(&prev);
            prev = e.event_hash.clone();
            e
        })
        .collect()
}

/// The verdict of verifying the parsed events (line `k + 1` holds event `k`).
fn parsed_verdict(lines: &[String]) -> VerifyReport {
    let items = lines.iter().enumerate().map(|(k, l)| {
        let ev = AuditEvent::from_jsonl_line(l).map_err(|e| BadReason::Unparsable {
            message: e.to_string(),
        });
        (k as u64 + 1, ev)
    });
    verify_events(items, &VerifyOptions::default())
}

/// Verifies `body` as bytes on one thread and in chunk halves, and (with `dir`) as a
/// file cut into 2 and 3 parts, and asserts each agrees with `want` (the first bad
/// event's offset is compared only between byte verifiers).
fn check(
    label: &str,
    body: &str,
    want: &VerifyReport,
    dir: Option<&std::path::Path>,
) -> VerifyReport {
    let opts = |threads| VerifyOptions {
        threads,
        ..VerifyOptions::default()
    };
    let seq = verify_reader(body.as_bytes(), &opts(1), &mut |_| {}).unwrap();
    assert_eq!(seq.events, want.events, "{label}: events");
    assert_eq!(seq.tail_hash, want.tail_hash, "{label}: tail");
    let strip = |r: &VerifyReport| {
        r.first_bad
            .as_ref()
            .map(|b| (b.index, b.line, b.reason.to_string()))
    };
    assert_eq!(strip(&seq), strip(want), "{label}: first bad");
    let mut others = vec![verify_reader(body.as_bytes(), &opts(2), &mut |_| {}).unwrap()];
    if let Some(dir) = dir {
        let path = dir.join("chain.jsonl");
        std::fs::write(&path, body).unwrap();
        others.push(verify_file(&path, &opts(2), &mut |_| {}).unwrap());
        others.push(verify_file(&path, &opts(3), &mut |_| {}).unwrap());
    }
    for (k, r) in others.iter().enumerate() {
        assert_eq!(r.first_bad, seq.first_bad, "{label} ({k}): first bad");
        assert_eq!(r.events, seq.events, "{label} ({k}): events");
        assert_eq!(r.tail_hash, seq.tail_hash, "{label} ({k}): tail");
    }
    seq
}

/// The event as JSON with its top-level keys in another order than the reference's.
fn reordered(e: &AuditEvent) -> String {
    let v = e.to_value();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort_by(|a, b| b.cmp(a));
    let fields: Vec<String> = keys
        .iter()
        .map(|k| format!("{}: {}", json!(k), obj[k.as_str()]))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// A named rewrite of an event's line (given the event and its reference line).
type Variant = (&'static str, Box<dyn Fn(&AuditEvent, &str) -> String>);
/// A named edit of a line that changes what it hashes to.
type Tamper = (&'static str, Box<dyn Fn(&str) -> String>);

/// Every line of `lines` joined with `\n` after it.
fn join(lines: &[String], sep: &str) -> String {
    lines.iter().map(|l| format!("{l}{sep}")).collect()
}

/// 2,400 events of ~800 bytes (about 2 MiB): cut into parts by `verify_file`.
const N: usize = 2_400;

#[test]
fn fast_and_slow_lines_give_the_parsed_events_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(N);
    let reference: Vec<String> = evs.iter().map(AuditEvent::to_jsonl_line).collect();
    let intact = parsed_verdict(&reference);
    assert!(intact.intact(), "{:?}", intact.first_bad);
    assert_eq!(intact.events, N as u64);
    check(
        "reference layout",
        &join(&reference, "\n"),
        &intact,
        Some(dir.path()),
    );
    // CRLF line ends are line breaks too.
    check("crlf", &join(&reference, "\r\n"), &intact, Some(dir.path()));

    // Lines the fast path does not take, each still hashing to its stored hash.
    let mid = N / 2 + 7;
    let variants: [Variant; 6] = [
        ("reordered keys", Box::new(|e, _| reordered(e))),
        (
            "compact spacing",
            Box::new(|e, _| serde_json::to_string(&e.to_value()).unwrap()),
        ),
        (
            "pretty spacing in details",
            Box::new(|_, l| l.replace("\"nested\": {", "\"nested\":  {")),
        ),
        ("escaped é", Box::new(|_, l| l.replace("\\u00e9", "\u{e9}"))),
        (
            "upper-case escape",
            Box::new(|_, l| l.replace("\\u00e9", "\\u00E9")),
        ),
        (
            "escaped plain letter",
            Box::new(|_, l| l.replace("\"padding\"", "\"p\\u0061dding\"")),
        ),
    ];
    for (label, make) in &variants {
        for at in [0, mid, N - 1] {
            let mut lines = reference.clone();
            lines[at] = make(&evs[at], &reference[at]);
            assert_ne!(lines[at], reference[at], "{label}: the variant differs");
            let want = parsed_verdict(&lines);
            assert!(want.intact(), "{label} at {at}: {:?}", want.first_bad);
            check(
                &format!("{label} at {at}"),
                &join(&lines, "\n"),
                &want,
                // In parts only for the middle event, a few lines after the cut of two parts.
                (at == mid).then_some(dir.path()),
            );
        }
    }

    // Tampered values: the stored hash no longer matches, on either path.
    let tampers: [Tamper; 5] = [
        (
            "outcome",
            Box::new(|l| l.replacen("\"approve\"", "\"block\"", 1)),
        ),
        ("detail", Box::new(|l| l.replacen("d-0", "d-9", 1))),
        ("nested number", Box::new(|l| l.replacen("1.5", "2.5", 1))),
        ("escape", Box::new(|l| l.replacen("\\u00e9", "\\u00ea", 1))),
        (
            "compact and tampered",
            Box::new(|l| {
                let v: Value = serde_json::from_str(&l.replacen("d-0", "d-8", 1)).unwrap();
                serde_json::to_string(&v).unwrap()
            }),
        ),
    ];
    for (label, tamper) in &tampers {
        for at in [1, mid, N - 2] {
            let mut lines = reference.clone();
            lines[at] = tamper(&reference[at]);
            assert_ne!(
                lines[at], reference[at],
                "{label}: the tamper changes the line"
            );
            let want = parsed_verdict(&lines);
            let bad = want.first_bad.as_ref().expect("tampered");
            assert_eq!(bad.index, at as u64, "{label}");
            assert!(
                matches!(bad.reason, BadReason::HashMismatch { .. }),
                "{label}: {}",
                bad.reason
            );
            check(
                &format!("tampered {label} at {at}"),
                &join(&lines, "\n"),
                &want,
                // In parts only for the middle event, a few lines after the cut of two parts.
                (at == mid).then_some(dir.path()),
            );
        }
    }
}

#[test]
fn a_truncated_last_line_is_a_torn_tail_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(N);
    let lines: Vec<String> = evs.iter().map(AuditEvent::to_jsonl_line).collect();
    let mut body = join(&lines, "\n");
    let last = lines.last().unwrap().len();
    body.truncate(body.len() - 1 - last / 2);
    let opts = VerifyOptions {
        threads: 1,
        ..VerifyOptions::default()
    };
    let seq = check_torn(&body, &opts);
    assert_eq!(seq.events, N as u64);
    let bad = seq.first_bad.as_ref().unwrap();
    assert_eq!(bad.index, N as u64 - 1);
    assert!(
        matches!(bad.reason, BadReason::TornTail { .. }),
        "{}",
        bad.reason
    );
    let path = dir.path().join("chain.jsonl");
    std::fs::write(&path, &body).unwrap();
    for threads in [2, 3] {
        let o = VerifyOptions {
            threads,
            ..VerifyOptions::default()
        };
        let par = verify_file(&path, &o, &mut |_| {}).unwrap();
        assert_eq!(par.first_bad, seq.first_bad, "{threads} parts");
        assert_eq!(par.tail_hash, seq.tail_hash, "{threads} parts");
        assert_eq!(par.tail_hash, evs[N - 2].event_hash);
    }
}

fn check_torn(body: &str, opts: &VerifyOptions) -> VerifyReport {
    verify_reader(body.as_bytes(), opts, &mut |_| {}).unwrap()
}
