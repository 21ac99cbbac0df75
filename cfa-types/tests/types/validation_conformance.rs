//! Conformance: `validation/signatures.jsonl` and `validation/catalogs.jsonl` — the
//! ordered issue paths cfa-kernel 1.1.0 reports for each input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use cfa_types::StateSignature;
use cfa_types::validate::{self, Issue};
use serde_json::Value;

fn paths(issues: &[Issue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

fn expected(case: &Value) -> Vec<&str> {
    case["expected_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

#[test]
fn signature_cases() {
    let cases = common::corpus("validation/signatures.jsonl");
    assert_eq!(cases.len(), 60);
    let mut valid = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let require = case["require_datasets"].as_bool().unwrap_or(false);
        let issues = validate::signature(&case["input"], require);
        assert_eq!(paths(&issues), expected(case), "case {id}: {issues:?}");
        assert_eq!(
            issues.is_empty(),
            case["valid"].as_bool().unwrap(),
            "case {id}"
        );
        // The strict parse path agrees with the validator, and a valid input reads.
        let text = serde_json::to_string(&case["input"]).unwrap();
        match StateSignature::parse_validated(&text, require) {
            Ok(sig) => {
                assert!(issues.is_empty(), "case {id} parsed but has issues");
                let inner = validate::unwrap_signature(&case["input"]);
                assert_eq!(sig, StateSignature::from_value(inner).unwrap(), "case {id}");
                valid += 1;
            }
            Err(e) => assert_eq!(e.issues(), issues.as_slice(), "case {id}"),
        }
    }
    assert_eq!(valid, 12);
}

#[test]
fn catalog_cases() {
    let cases = common::corpus("validation/catalogs.jsonl");
    assert_eq!(cases.len(), 30);
    let mut valid = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let require = case["require_datasets"].as_bool().unwrap_or(false);
        let issues = validate::catalog(&case["input"], require);
        assert_eq!(paths(&issues), expected(case), "case {id}: {issues:?}");
        assert_eq!(
            issues.is_empty(),
            case["valid"].as_bool().unwrap(),
            "case {id}"
        );
        valid += usize::from(issues.is_empty());
    }
    assert_eq!(valid, 6);
}

#[test]
fn every_policy_case_signature_passes_strict_validation() {
    // README §2: every signature of policy/cases.jsonl passes validate_signature_data.
    let cases = common::corpus("policy/cases.jsonl");
    assert_eq!(cases.len(), 1500);
    for case in &cases {
        let text = serde_json::to_string(&case["signature"]).unwrap();
        let sig = StateSignature::parse_validated(&text, false)
            .unwrap_or_else(|e| panic!("case {}: {e}", case["id"]));
        assert_eq!(
            sig.signature_hash(),
            case["expected"]["signature_hash"].as_str().unwrap()
        );
    }
}
