//! The multi-core file verifier (`verify_file`, cut into parts at line boundaries)
//! reports exactly what the one-thread stream verifier reports: the same events,
//! tail, intent count and first bad event (index, line, offset, message), for intact
//! chains and for faults placed at the cuts between parts and at the read-chunk
//! boundary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::verify::{VerifyOptions, VerifyReport, verify_reader};
use cfa_audit::{NewEvent, verify_file};

/// Bytes per part below which a file is not cut (1 MiB in `verify::split`).
const PART_MIN: usize = 1 << 20;
/// The read chunk of a stream checked in two halves (4 MiB in `verify::stream`).
const CHUNK: usize = 4 << 20;
/// The read window of one thread (512 KiB in `verify::stream`).
const WINDOW: usize = 512 << 10;

/// `n` chained events of about 700 bytes each, as JSONL lines (no line breaks).
fn chain(n: usize) -> Vec<String> {
    let mut prev = String::new();
    (0..n)
        .map(|i| {
            let e = NewEvent::new(
                format!("intent-{}", i % 7),
                "policy_check",
                "policy_evaluation",
                if i % 3 == 0 { "replan" } else { "approve" },
                format!("2026-01-01T00:00:{:02}+00:00", i % 60),
            )
            .detail("decision_id", format!("d-{i:012}"))
            .detail("reasoning", "All rules passed. Execution approved.")
            .detail("padding", "x".repeat(420))
            .seal(&prev);
            prev = e.event_hash.clone();
            e.to_jsonl_line()
        })
        .collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The index of the line that holds byte `at` of `join(lines)`.
fn line_at(lines: &[String], at: usize) -> usize {
    let mut off = 0;
    for (i, l) in lines.iter().enumerate() {
        off += l.len() + 1;
        if off > at {
            return i;
        }
    }
    lines.len() - 1
}

fn same(label: &str, a: &VerifyReport, b: &VerifyReport) {
    assert_eq!(a.first_bad, b.first_bad, "{label}: first bad");
    assert_eq!(a.events, b.events, "{label}: events");
    assert_eq!(a.tail_hash, b.tail_hash, "{label}: tail");
    assert_eq!(a.intent_events, b.intent_events, "{label}: intent events");
    assert_eq!(a.legacy_events, b.legacy_events, "{label}: legacy events");
}

/// Verifies `body` on one thread (the reference order), in halves of chunks, and as a file cut into 2 and
/// 3 parts; asserts they agree and returns the one-thread report.
fn agree(label: &str, body: &str, dir: &std::path::Path) -> VerifyReport {
    let opts = |threads| VerifyOptions {
        intent_id: Some("intent-3".into()),
        threads,
        ..VerifyOptions::default()
    };
    let seq = verify_reader(body.as_bytes(), &opts(1), &mut |_| {}).unwrap();
    // The stream verifier with its chunks checked in halves agrees too.
    let halves = verify_reader(body.as_bytes(), &opts(2), &mut |_| {}).unwrap();
    same(&format!("{label} (halves)"), &seq, &halves);
    let path = dir.join("chain.jsonl");
    std::fs::write(&path, body).unwrap();
    for threads in [2, 3] {
        let par = verify_file(&path, &opts(threads), &mut |_| {}).unwrap();
        same(&format!("{label} ({threads} parts)"), &seq, &par);
    }
    seq
}

#[test]
fn parts_agree_with_one_thread_on_intact_and_broken_chains() {
    // ~4.5 MB: three parts of more than PART_MIN, and a chunk boundary near the end.
    let lines = chain(6_400);
    let text = join(&lines);
    assert!(text.len() > 3 * PART_MIN && text.len() > CHUNK);
    let dir = tempfile::tempdir().unwrap();

    let r = agree("intact", &text, dir.path());
    assert!(r.intact());
    assert_eq!(r.events, 6_400);
    assert!(r.intent_events.unwrap() > 0);

    // Events on both sides of each cut (2 and 3 parts) and of the chunk and window boundaries.
    let len = text.len();
    let cut2 = line_at(&lines, len / 2);
    let (cut3a, cut3b) = (line_at(&lines, len / 3), line_at(&lines, len / 3 * 2));
    let (chunk, window) = (line_at(&lines, CHUNK), line_at(&lines, WINDOW));
    let mut k_set = vec![0, 1, lines.len() - 1];
    for c in [cut2, cut3a, cut3b, chunk, window] {
        k_set.extend([c, c + 1]);
    }
    type Fault = fn(&str) -> String;
    let faults: [(&str, Fault, &str); 4] = [
        (
            "content",
            |l| l.replacen("All rules passed.", "All rules passed!", 1),
            "hash_mismatch",
        ),
        (
            "link",
            |l| {
                let at = l.find("\"previous_hash\": \"").unwrap() + 18;
                let mut s = l.to_owned();
                if l.as_bytes()[at] != b'"' {
                    let c = if &l[at..=at] == "0" { "1" } else { "0" };
                    s.replace_range(at..=at, c);
                    s
                } else {
                    // Genesis: any previous hash breaks the link.
                    s.replace("\"previous_hash\": \"\"}", "\"previous_hash\": \"0\"}")
                }
            },
            "link_broken",
        ),
        ("garbage", |l| "x".repeat(l.len()), "unparsable_line"),
        ("spaces", |l| " ".repeat(l.len()), "invalid_whitespace"),
    ];
    // Two kinds of fault at each place, taking turns (each run verifies 4.5 MB four times).
    for (i, &k) in k_set.iter().enumerate() {
        for (name, fault, code) in [&faults[i % 4], &faults[(i + 1) % 4]] {
            let mut l = lines.clone();
            l[k] = fault(&l[k]);
            let r = agree(&format!("{name} at event {k}"), &join(&l), dir.path());
            if *name == "spaces" && (k == 0 || k == lines.len() - 1) {
                // Whitespace-only lines before the first or after the last event are
                // stripped; what breaks is the next link (or nothing).
                continue;
            }
            let bad = r.first_bad.as_ref().unwrap();
            assert_eq!(bad.index as usize, k, "{name} at {k}");
            assert_eq!(bad.line as usize, k + 1, "{name} at {k}");
            assert_eq!(bad.reason.code(), *code, "{name} at {k}");
        }
    }
}

#[test]
fn a_part_without_events_and_a_torn_tail_agree_with_one_thread() {
    let lines = chain(6_400);
    let text = join(&lines);
    let len = text.len();
    let dir = tempfile::tempdir().unwrap();
    // Lines from before the first 3-part cut to after the second one, blanked with the
    // same number of bytes: the middle part has no event at all.
    let (from, to) = (
        line_at(&lines, len / 3) - 2,
        line_at(&lines, len / 3 * 2) + 2,
    );
    for (name, blank) in [("empty lines", '\n'), ("spaces", ' ')] {
        let mut l = lines.clone();
        for x in &mut l[from..=to] {
            *x = blank.to_string().repeat(x.len());
        }
        let r = agree(name, &join(&l), dir.path());
        let bad = r.first_bad.unwrap();
        if blank == '\n' {
            // Empty lines are skipped; the next event's link names a dropped event.
            assert_eq!(bad.reason.code(), "link_broken");
            assert_eq!(bad.index as usize, from);
        } else {
            assert_eq!(bad.reason.code(), "invalid_whitespace");
            assert_eq!(bad.index as usize, from);
            assert_eq!(bad.line as usize, from + 1);
        }
    }
    // A torn last line (no line break, cut short).
    let mut torn = text.clone();
    torn.truncate(len - 40);
    let r = agree("torn tail", &torn, dir.path());
    assert_eq!(r.first_bad.unwrap().reason.code(), "torn_tail");
}
