//! Properties: any sequence of appends verifies; any single-byte change in a chain is
//! caught, or the changed text still means the same events (e.g. a change inside
//! insignificant whitespace), or it only touches the unhashed top-level
//! `policy_bundle_version` (unhashed in the reference too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::verify::{VerifyOptions, verify_reader};
use cfa_audit::{AuditEvent, NewEvent};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("\\PC{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn new_event() -> impl Strategy<Value = NewEvent> {
    (
        "\\PC{0,10}",
        "[a-z_]{1,8}",
        "[a-z_]{1,8}",
        "approve|replan|block|\\PC{0,4}",
        prop::collection::vec(("\\PC{0,8}", json_value()), 0..5),
        "\\PC{0,6}",
    )
        .prop_map(|(intent, stage, et, outcome, details, version)| {
            let mut e = NewEvent::new(
                intent,
                stage,
                et,
                outcome,
                "2026-11-21T20:02:57.918912+00:00",
            );
            for (k, v) in details {
                e.details.insert(k, v);
            }
            e.policy_bundle_version = version;
            e
        })
}

fn chain(events: Vec<NewEvent>) -> (String, Vec<AuditEvent>) {
    let mut prev = String::new();
    let mut text = String::new();
    let mut sealed = Vec::new();
    for e in events {
        let s = e.seal(&prev);
        prev.clone_from(&s.event_hash);
        text.push_str(&s.to_jsonl_line());
        text.push('\n');
        sealed.push(s);
    }
    (text, sealed)
}

/// Python's `str.isspace` (what the reference's `read_text().strip()` removes from both
/// ends of the log).
fn py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `str.splitlines` breaks (`\r\n` is one break; cutting at both of its
/// characters only adds an empty line, which the reader skips).
fn py_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}'..='\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The events as the reference's reader sees the log: stripped, cut at Python's line
/// breaks (not only `\n`: a `\n` changed to U+001C still separates the same two
/// events), empty lines skipped, every other line one JSON document.
fn parse_all(bytes: &[u8]) -> Option<Vec<AuditEvent>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.trim_matches(py_space)
        .split(py_break)
        .filter(|l| !l.is_empty())
        .map(|l| AuditEvent::from_jsonl_line(l).ok())
        .collect()
}

fn without_version(mut v: Vec<AuditEvent>) -> Vec<AuditEvent> {
    for e in &mut v {
        e.policy_bundle_version.clear();
    }
    v
}

/// The case proptest found (a byte changed to 0x1c): every Python line break between two
/// events is still a line break, so the verdict is intact and the events are the same.
#[test]
fn a_newline_replaced_by_another_python_line_break_keeps_the_events() {
    let events = vec![
        NewEvent::new(
            "i-1",
            "policy_engine",
            "policy_check",
            "approve",
            "2026-11-21T20:02:57.918912+00:00",
        ),
        NewEvent::new(
            "i-2",
            "policy_engine",
            "policy_check",
            "replan",
            "2026-11-21T20:02:57.918912+00:00",
        ),
    ];
    let (text, sealed) = chain(events);
    let first_newline = text.find('\n').unwrap();
    for sep in [
        "\u{1c}", "\u{1d}", "\u{1e}", "\u{b}", "\u{c}", "\r", "\u{85}", "\u{2028}", "\u{2029}",
    ] {
        let mut changed = text.clone();
        changed.replace_range(first_newline..=first_newline, sep);
        let r = verify_reader(changed.as_bytes(), &VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(r.intact(), "{sep:?}: {:?}", r.first_bad);
        assert_eq!(r.events, 2, "{sep:?}");
        assert_eq!(
            parse_all(changed.as_bytes()).as_ref(),
            Some(&sealed),
            "{sep:?}"
        );
    }
    // a character that is not a line break there is caught
    let mut joined = text.clone();
    joined.replace_range(first_newline..=first_newline, " ");
    let r = verify_reader(joined.as_bytes(), &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(!r.intact());
    assert_eq!(parse_all(joined.as_bytes()), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_appends_verifies(events in prop::collection::vec(new_event(), 0..12)) {
        let n = events.len() as u64;
        let (text, sealed) = chain(events);
        let r = verify_reader(text.as_bytes(), &VerifyOptions::default(), &mut |_| {}).unwrap();
        prop_assert!(r.intact(), "{:?}", r.first_bad);
        prop_assert_eq!(r.events, n);
        prop_assert_eq!(r.tail_hash, sealed.last().map(|e| e.event_hash.clone()).unwrap_or_default());
        // Each line is exactly the reference layout and round-trips.
        for (line, e) in text.lines().zip(&sealed) {
            prop_assert_eq!(&AuditEvent::from_jsonl_line(line).unwrap(), e);
        }
    }

    #[test]
    fn any_single_byte_change_is_caught_or_meaningless(
        events in prop::collection::vec(new_event(), 1..6),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (text, sealed) = chain(events);
        let mut bytes = text.into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let r = verify_reader(bytes.as_slice(), &VerifyOptions::default(), &mut |_| {}).unwrap();
        if r.intact() {
            let parsed = parse_all(&bytes);
            prop_assert!(parsed.is_some(), "an intact verdict on text that does not parse");
            prop_assert_eq!(
                without_version(parsed.unwrap()),
                without_version(sealed),
                "intact although the hashed content changed"
            );
        }
    }
}
