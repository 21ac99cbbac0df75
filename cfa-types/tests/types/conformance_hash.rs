//! Conformance: every vector of `../shared/conformance/hash/` — the exact canonical
//! text and SHA-256 of 300 signatures and 500 audit events written by cfa-kernel 1.1.0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_types::canonical::Style;
use cfa_types::{StateSignature, canonical};
use serde_json::Value;
use std::path::PathBuf;

fn corpus(rel: &str) -> Vec<Value> {
    let root = std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    );
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {} is required: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn signature_hash_vectors() {
    let cases = corpus("hash/signature_hash.jsonl");
    assert_eq!(cases.len(), 300);
    for (i, case) in cases.iter().enumerate() {
        let sig = StateSignature::from_value(&case["signature"]).unwrap();
        assert_eq!(
            sig.signature_hash_payload(),
            case["canonical"].as_str().unwrap(),
            "case {i}"
        );
        assert_eq!(
            sig.signature_hash(),
            case["sha256"].as_str().unwrap(),
            "case {i}"
        );
        // The signature's own JSON shape survives a round trip, int/float included.
        assert_eq!(sig.to_value(), case["signature"], "round trip of case {i}");
    }
}

/// The typed writer behind `content_hash` gives the bytes of the rendered payload value
/// for every signature of the corpus (unicode, floats, custom constraints included).
#[test]
fn content_payload_text_matches_the_rendered_payload() {
    let mut sigs: Vec<Value> = corpus("hash/signature_hash.jsonl")
        .into_iter()
        .map(|c| c["signature"].clone())
        .collect();
    sigs.extend(
        corpus("policy/cases.jsonl")
            .into_iter()
            .map(|c| c["signature"].clone()),
    );
    assert!(sigs.len() >= 1800, "{} signatures", sigs.len());
    let mut checked = 0;
    for (i, v) in sigs.iter().enumerate() {
        let Ok(sig) = StateSignature::from_value(v) else {
            continue;
        };
        let rendered = canonical::to_string(&sig.content_payload(), Style::SortedAscii);
        assert_eq!(sig.content_payload_text(), rendered, "signature {i}");
        assert_eq!(
            sig.content_hash(),
            canonical::sha256_hex(rendered.as_bytes()),
            "signature {i}"
        );
        checked += 1;
    }
    assert!(checked >= 1800, "{checked} signatures read");
}

#[test]
fn audit_event_hash_vectors() {
    let cases = corpus("hash/audit_event_hash.jsonl");
    assert_eq!(cases.len(), 500);
    for (i, case) in cases.iter().enumerate() {
        let text = canonical::canonical_string(&case["event"]);
        assert_eq!(text, case["canonical"].as_str().unwrap(), "case {i}");
        assert_eq!(
            canonical::sha256_hex(text.as_bytes()),
            case["sha256"].as_str().unwrap(),
            "case {i}"
        );
    }
}
