//! Conformance: the 1500 policy-engine cases and the 40 bundle-validation cases of
//! `../shared/conformance`, produced by cfa-kernel 1.1.0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_policy::{BundleFormat, PolicyEngine, load_bundle, validate_bundle_value};
use cfa_types::StateSignature;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    )
}

fn corpus(rel: &str) -> Vec<Value> {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {} is required: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn engine_for(bundle: &Value, cache: &mut BTreeMap<String, PolicyEngine>) -> PolicyEngine {
    let Some(file) = bundle.as_str() else {
        return PolicyEngine::default();
    };
    cache
        .entry(file.to_owned())
        .or_insert_with(|| {
            let path = root().join("policy/bundles").join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let b = load_bundle(&text, BundleFormat::from_path_str(file), file).unwrap();
            PolicyEngine::from_bundle(b).unwrap()
        })
        .clone()
}

#[test]
fn policy_cases() {
    let cases = corpus("policy/cases.jsonl");
    assert_eq!(cases.len(), 1500);
    let mut cache = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let engine = engine_for(&case["bundle"], &mut cache);
        let sig = StateSignature::from_value(&case["signature"]).unwrap();
        let replan = u32::try_from(case["replan_count"].as_u64().unwrap()).unwrap();
        let r = engine.evaluate(&sig, replan);
        let exp = &case["expected"];
        let faults: Vec<Value> = r
            .faults
            .iter()
            .map(|f| {
                serde_json::json!({"code": f.code, "severity": f.severity.as_str(),
                    "family": f.family.as_str(), "mandatory_action": f.mandatory_action.as_str()})
            })
            .collect();
        let got = serde_json::json!({
            "action": r.action.as_str(), "faults": faults, "interventions": r.interventions,
            "reasoning": r.reasoning, "signature_hash": sig.signature_hash(),
        });
        if &got != exp {
            failures.push(format!("{id}: expected {exp}\n   got {got}"));
        } else {
            *counts.entry(r.action.as_str().to_owned()).or_default() += 1;
        }
        assert_eq!(r.replan_count, replan);
        assert!(
            r.faults
                .iter()
                .all(|f| f.stage == "policy_engine" && f.detected_before_execution)
        );
    }
    println!(
        "policy conformance: {} / {} pass, by action {counts:?}",
        1500 - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(counts.values().sum::<usize>(), 1500);
}

#[test]
fn bundle_validation_cases() {
    let cases = corpus("validation/bundles.jsonl");
    assert_eq!(cases.len(), 40);
    let mut valid = 0;
    for case in &cases {
        let issues = validate_bundle_value(&case["input"]);
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        let expected: Vec<&str> = case["expected_paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(paths, expected, "case {}", case["id"]);
        assert_eq!(issues.is_empty(), case["valid"].as_bool().unwrap());
        if issues.is_empty() {
            valid += 1;
            assert!(cfa_policy::PolicyBundle::from_value(&case["input"]).is_ok());
        }
    }
    println!("bundle validation conformance: 40 / 40 pass ({valid} valid)");
    assert_eq!(valid, 8);
}

/// The conformance cases are the first users of `cfa policy test`'s case format: each
/// line (less its `bundle`, which selects the engine here) parses as a case, and every
/// case passes with action, fault codes and reasoning checked.
#[test]
fn policy_cases_run_as_golden_cases() {
    use cfa_policy::cases::{CaseFormat, CaseSource, SuiteReport, parse_cases, run_case};
    let mut by_bundle: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mut case in corpus("policy/cases.jsonl") {
        let bundle = case["bundle"].as_str().unwrap_or("default").to_owned();
        case.as_object_mut().unwrap().remove("bundle");
        by_bundle.entry(bundle).or_default().push(case.to_string());
    }
    let mut cache = BTreeMap::new();
    let mut total = 0;
    for (bundle, lines) in &by_bundle {
        let engine = engine_for(
            &if bundle == "default" {
                Value::Null
            } else {
                Value::from(bundle.as_str())
            },
            &mut cache,
        );
        let cases = parse_cases(&lines.join("\n"), CaseFormat::Jsonl, bundle).unwrap();
        assert_eq!(cases.len(), lines.len());
        let mut report = SuiteReport::new(&engine);
        for case in &cases {
            assert!(case.expect.faults.is_some() && case.expect.reasoning.is_some());
            let CaseSource::Inline(sig) = &case.signature else {
                panic!("inline signatures")
            };
            let sig = StateSignature::from_value(sig).unwrap();
            report.push(run_case(&engine, case, &sig, None));
        }
        assert!(report.ok(), "{bundle}: {}", report.to_text());
        // The corpus exercises every rule of every bundle, and the replan guard.
        assert!(
            report.never_fired().is_empty(),
            "{bundle}: {}",
            report.to_text()
        );
        assert!(report.replan_guard_hits > 0, "{bundle}");
        total += cases.len();
    }
    assert_eq!(total, 1500);
}
