//! Whitespace, BOM and blank lines: our verdict is the reference's for every padding
//! character in every position. The reference reads a log as
//! `read_text().strip().splitlines()`, skips EMPTY lines and gives every other line to
//! `json.loads`. So:
//! - a line break of `str.splitlines` (`\r`, VT, FF, U+001C..U+001E, U+0085, U+2028,
//!   U+2029) anywhere only makes (skipped) empty lines: intact;
//! - space and TAB may pad an event (`json.loads` accepts them) but a line of them is
//!   not empty, and `json.loads("  ")` fails: error;
//! - other Unicode whitespace (NBSP, U+3000, U+001F, U+2000, U+202F) is refused by
//!   `json.loads` in every position of an event in the middle of the log: error;
//! - all of them (being `str.isspace`) are removed by the whole-file `strip()` before
//!   the first event and after the last one: intact there;
//! - a BOM and U+200B are not whitespace at all: error everywhere.
//!
//! `scripts/whitespace_reference_table.py` prints the same table from Python's own
//! primitives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use cfa_audit::verify::{VerifyOptions, verify_reader};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A `str.splitlines` line break.
    Break,
    /// What `json.loads` skips (space, TAB).
    JsonSpace,
    /// `str.isspace` but neither of the above.
    OtherSpace,
    /// Not whitespace.
    NotSpace,
}

const CHARS: &[(&str, char, Kind)] = &[
    ("space", ' ', Kind::JsonSpace),
    ("tab", '\t', Kind::JsonSpace),
    ("nbsp", '\u{a0}', Kind::OtherSpace),
    ("ideographic space", '\u{3000}', Kind::OtherSpace),
    ("unit separator", '\u{1f}', Kind::OtherSpace),
    ("en quad", '\u{2000}', Kind::OtherSpace),
    ("narrow nbsp", '\u{202f}', Kind::OtherSpace),
    ("bom", '\u{feff}', Kind::NotSpace),
    ("zero width space", '\u{200b}', Kind::NotSpace),
    ("form feed", '\u{c}', Kind::Break),
    ("vertical tab", '\u{b}', Kind::Break),
    ("line separator", '\u{2028}', Kind::Break),
    ("paragraph separator", '\u{2029}', Kind::Break),
    ("file separator", '\u{1c}', Kind::Break),
    ("group separator", '\u{1d}', Kind::Break),
    ("record separator", '\u{1e}', Kind::Break),
    ("next line", '\u{85}', Kind::Break),
    ("carriage return", '\r', Kind::Break),
];

/// Where the character goes, and the reference's verdict for each kind.
fn cases(a: &str, b: &str, c: &str, ch: char, kind: Kind) -> Vec<(&'static str, String, bool)> {
    use Kind::*;
    let middle_pad = matches!(kind, Break | JsonSpace);
    let whole_line = kind == Break;
    let file_edge = kind != NotSpace;
    vec![
        (
            "leading, middle event",
            format!("{a}\n{ch}{b}\n{c}\n"),
            middle_pad,
        ),
        (
            "trailing, middle event",
            format!("{a}\n{b}{ch}\n{c}\n"),
            middle_pad,
        ),
        (
            "whole line between events",
            format!("{a}\n{ch}\n{b}\n{c}\n"),
            whole_line,
        ),
        (
            "leading, first event",
            format!("{ch}{a}\n{b}\n{c}\n"),
            file_edge,
        ),
        (
            "trailing, last event",
            format!("{a}\n{b}\n{c}{ch}\n"),
            file_edge,
        ),
        (
            "whole lines before the first and after the last event",
            format!("{ch}\n{a}\n{b}\n{c}\n{ch}\n"),
            file_edge,
        ),
    ]
}

#[test]
fn padding_verdicts_match_the_reference() {
    let text = String::from_utf8(common::build_file("chain_small.jsonl")).unwrap();
    let l: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for &(name, ch, kind) in CHARS {
        for (pos, body, intact) in cases(l[0], l[1], l[2], ch, kind) {
            for threads in [1, 2] {
                let opts = VerifyOptions {
                    threads,
                    ..VerifyOptions::default()
                };
                let r = verify_reader(body.as_bytes(), &opts, &mut |_| {}).unwrap();
                assert_eq!(
                    r.intact(),
                    intact,
                    "{name} ({kind:?}), {pos}: {:?}",
                    r.first_bad
                );
                if intact {
                    assert_eq!(r.events, 3, "{name}, {pos}");
                } else {
                    let bad = r.first_bad.unwrap();
                    assert_ne!(bad.reason.code(), "torn_tail", "{name}, {pos}");
                    assert!(bad.index <= 2, "{name}, {pos}: {bad:?}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, CHARS.len() * 6);
}

#[test]
fn the_split_file_path_agrees_on_padding_at_the_join() {
    // ≥ 4 MB so verify_file splits it in two; pad the lines around the middle.
    let base = String::from_utf8(common::build_file("chain_1000.jsonl")).unwrap();
    let lines: Vec<cfa_audit::AuditEvent> = base
        .lines()
        .map(|l| cfa_audit::AuditEvent::from_jsonl_line(l).unwrap())
        .collect();
    let mut prev = String::new();
    let mut all = Vec::new();
    for i in 0..11_000usize {
        let mut e = lines[i % 1000].clone();
        e.previous_hash = prev.clone();
        e.event_hash = e.compute_hash();
        prev = e.event_hash.clone();
        all.push(e.to_jsonl_line());
    }
    let text: String = all.iter().map(|l| format!("{l}\n")).collect();
    let mid = {
        let (mut off, mut at) = (0usize, 0usize);
        for (i, l) in all.iter().enumerate() {
            if off >= text.len() / 2 {
                at = i;
                break;
            }
            off += l.len() + 1;
        }
        at
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    for k in [mid - 1, mid, mid + 1] {
        for (pad, intact) in [
            ("\u{a0}{}", false),
            ("{}\u{a0}", false),
            ("  {}\t", true),
            ("  \n{}", false),
            ("\u{c}{}", true),
        ] {
            let mut l = all.clone();
            l[k] = pad.replace("{}", &l[k]);
            let body: String = l.iter().map(|x| format!("{x}\n")).collect();
            std::fs::write(&path, &body).unwrap();
            let split =
                cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
            let seq =
                verify_reader(body.as_bytes(), &VerifyOptions::default(), &mut |_| {}).unwrap();
            assert_eq!(
                split.intact(),
                intact,
                "line {k} {pad:?}: {:?}",
                split.first_bad
            );
            assert_eq!(split.first_bad, seq.first_bad, "line {k} {pad:?}");
            assert_eq!(split.events, seq.events, "line {k} {pad:?}");
        }
    }
}

#[test]
fn appending_after_padding_at_the_end_keeps_the_chain_intact() {
    // Padding after the last event is harmless for a reader (the whole-file strip
    // removes it) but would sit between two events once we append: it is moved aside
    // first (and recorded), so our own append never produces a chain we reject.
    let text = String::from_utf8(common::build_file("chain_small.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for tail in ["\u{a0}\n", "\n  \n", "\n\u{3000}", " \t\n\n", "\r\n\u{c}"] {
        let log = dir.path().join("padded.jsonl");
        let body = format!("{}{tail}", text.trim_end());
        std::fs::write(&log, &body).unwrap();
        let opts = VerifyOptions::default();
        assert!(
            cfa_audit::verify_file(&log, &opts, &mut |_| {})
                .unwrap()
                .intact()
        );
        let store = cfa_audit::JsonlStore::open(&log, cfa_audit::Durability::Never).unwrap();
        let harmless = tail
            .trim_matches(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\u{c}')
            .is_empty()
            && !tail.contains("\n ");
        assert_eq!(store.repairs().is_empty(), harmless, "{tail:?}");
        cfa_audit::AuditStore::append(
            &store,
            cfa_audit::NewEvent::new("i", "s", "e", "ok", "2026-01-01T00:00:00+00:00"),
        )
        .unwrap();
        let r = cfa_audit::verify_file(&log, &opts, &mut |_| {}).unwrap();
        assert!(r.intact(), "{tail:?}: {:?}", r.first_bad);
        std::fs::remove_file(&log).unwrap();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}
