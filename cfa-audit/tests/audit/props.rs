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

fn parse_all(bytes: &[u8]) -> Option<Vec<AuditEvent>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| AuditEvent::from_jsonl_line(l).ok())
        .collect()
}

fn without_version(mut v: Vec<AuditEvent>) -> Vec<AuditEvent> {
    for e in &mut v {
        e.policy_bundle_version.clear();
    }
    v
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
