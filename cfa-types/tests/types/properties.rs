//! Property tests: canonical JSON round-trips and matches CPython's `json.dumps`
//! byte for byte; validation and lenient reading never panic on any JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_types::canonical::{self, Style};
use cfa_types::{Catalog, StateSignature, validate};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Number, Value};
use std::io::Write as _;
use std::process::{Command, Stdio};

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        1 => Just('\u{7f}'),
        1 => prop::sample::select(vec!['"', '\\', '/', '\u{2028}', '\u{85}', '\u{a0}', '\u{feff}', 'é', '—']),
        2 => (0x1_0000u32..0x11_0000).prop_map(|c| char::from_u32(c).unwrap()),
        4 => prop::char::range('a', 'z'),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..10).prop_map(|cs| cs.into_iter().collect())
}

fn any_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 1]).prop_map(Number::from),
        Just(Number::from(u64::MAX)),
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter_map("finite", Number::from_f64),
        prop::sample::select(vec![
            -0.0,
            0.0,
            4000.0,
            1e-5,
            1e16,
            1e22,
            5e-324,
            0.1,
            1e15,
            123456789012345680.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5e-8
        ])
        .prop_filter_map("finite", Number::from_f64),
        (-1e6f64..1e6).prop_filter_map("finite", Number::from_f64),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number().prop_map(Value::Number),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Structural equality with floats compared bit for bit and ints kept apart from floats.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x.is_f64() != y.is_f64() => false,
            (Some(p), Some(q)) if x.is_f64() => p.to_bits() == q.to_bits(),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Values shaped like signatures and catalogs, with arbitrary values in every field.
fn signature_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        3 => any_value(),
        1 => prop::sample::select(vec!["silver", "gold", "public", "sensitive", "x", " ", ""])
            .prop_map(Value::from),
    ];
    let keys = prop::sample::subsequence(
        vec![
            "domain",
            "intent",
            "target_layer",
            "datasets",
            "constraints",
            "execution_context",
            "intent_id",
            "source_intent_raw",
            "name",
            "classification",
            "size_gb",
            "pii_columns",
            "partition_column",
            "merge_keys",
            "no_pii_raw",
            "partition_by",
            "max_cost_dbu",
            "custom",
            "policy_bundle_version",
            "signature",
            "state_signature",
        ],
        0..10,
    );
    let object = (keys, prop::collection::vec(field, 10))
        .prop_map(|(ks, vs)| Value::Object(ks.into_iter().map(String::from).zip(vs).collect()));
    object.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            (inner.clone(), inner.clone(), inner).prop_map(|(d, c, e)| {
                serde_json::json!({"domain": "d", "intent": "i", "target_layer": "gold",
                    "datasets": [d], "constraints": c, "execution_context": e})
            }),
        ]
    })
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn canonical_text_parses_back_to_the_same_value(v in any_value()) {
        for style in [Style::SortedAscii, Style::InsertionAscii, Style::SortedCompactUnicode] {
            let text = canonical::to_string(&v, style);
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert!(same(&v, &back), "{style:?}: {text}");
        }
        prop_assert!(canonical::canonical_string(&v).is_ascii());
    }

    #[test]
    fn validation_never_panics(v in prop_oneof![any_value(), signature_like()], req in any::<bool>()) {
        let issues = validate::signature(&v, req);
        let _ = validate::catalog(&v, req);
        let text = serde_json::to_string(&v).unwrap();
        match StateSignature::parse_validated(&text, req) {
            Ok(sig) => {
                prop_assert!(issues.is_empty());
                let _ = validate::cross_check(&sig, &v);
                let _ = sig.signature_hash();
            }
            Err(e) => prop_assert_eq!(e.issues(), issues.as_slice()),
        }
    }

    #[test]
    fn lenient_reading_never_panics(v in prop_oneof![any_value(), signature_like()]) {
        if let Ok(sig) = StateSignature::from_value(&v) {
            let _ = (sig.signature_hash(), sig.content_hash(), sig.target_dataset_name());
        }
        if let Ok(c) = Catalog::from_value(&v) {
            let _ = c.hash();
        }
        let _ = StateSignature::from_value(validate::unwrap_signature(&v));
    }

    #[test]
    fn content_payload_text_is_the_rendered_payload(v in signature_like()) {
        if let Ok(sig) = StateSignature::from_value(&v) {
            let rendered = canonical::to_string(&sig.content_payload(), Style::SortedAscii);
            prop_assert_eq!(sig.content_payload_text(), rendered);
        }
    }

    #[test]
    fn truncated_json_never_panics(v in signature_like(), cut in 0usize..400) {
        let text = serde_json::to_string(&v).unwrap();
        let end = text.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(text.len());
        let _ = StateSignature::parse_validated(&text[..end], false);
    }
}

/// 2,000 values from a fixed seed, rendered by CPython and by `canonical`.
#[test]
fn canonical_matches_cpython_json_dumps() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = any_value();
    let values: Vec<Value> = (0..2000)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let mut input = String::new();
    for v in &values {
        input.push_str(&serde_json::to_string(v).unwrap());
        input.push('\n');
    }
    let script = "import sys, json\n\
        out = []\n\
        for line in sys.stdin.buffer.read().decode('utf-8').split('\\n')[:-1]:\n\
        \x20   v = json.loads(line)\n\
        \x20   out.append(json.dumps(v, sort_keys=True))\n\
        \x20   out.append(json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(',', ':')))\n\
        sys.stdout.buffer.write('\\n'.join(out).encode('utf-8', 'surrogatepass'))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required for the CPython differential tests");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python3 failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 2 * values.len());
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            canonical::canonical_string(v),
            lines[2 * i],
            "value {i}: {v}"
        );
        assert_eq!(
            canonical::to_string(v, Style::SortedCompactUnicode),
            lines[2 * i + 1],
            "value {i}: {v}"
        );
    }
}
