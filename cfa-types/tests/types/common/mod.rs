//! Shared helpers of the integration tests: locating the conformance corpus.
#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use serde_json::Value;
use std::path::PathBuf;

/// The conformance corpus root (`CFA_CONFORMANCE_DIR` or `../../shared/conformance`).
pub fn root() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    )
}

/// Every line of a JSONL file of the corpus; fails (never skips) when it is missing.
pub fn corpus(rel: &str) -> Vec<Value> {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {} is required: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
