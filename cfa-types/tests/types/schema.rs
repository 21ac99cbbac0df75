//! The published JSON Schemas: structure checked here, and behaviour checked with
//! CPython's `jsonschema` (Draft 2020-12) against strict validation on the corpus.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use cfa_types::schema::{decision_schema, signature_schema};
use cfa_types::{
    DatasetClassification, Fault, FaultFamily, FaultList, FaultSeverity, ManualFix, Patch,
    PolicyAction, PolicyResult, SharedList, TargetLayer, validate,
};
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::{Command, Stdio};

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn schema_structure_follows_the_types() {
    let s = signature_schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(
        strs(&s["required"]),
        ["domain", "intent", "target_layer", "execution_context"]
    );
    let layers: Vec<&str> = TargetLayer::ALL.iter().map(|l| l.as_str()).collect();
    assert_eq!(strs(&s["properties"]["target_layer"]["enum"]), layers);
    let classes: Vec<&str> = DatasetClassification::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        strs(&s["$defs"]["dataset"]["properties"]["classification"]["enum"]),
        classes
    );
    assert_eq!(strs(&s["$defs"]["dataset"]["required"]), ["name"]);
    assert_eq!(s["$defs"]["nonNegativeNumber"]["type"], "number");

    let d = decision_schema();
    assert_eq!(
        strs(&d["required"]),
        [
            "action",
            "faults",
            "interventions",
            "replan_count",
            "reasoning"
        ]
    );
    let actions: Vec<&str> = PolicyAction::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(strs(&d["$defs"]["action"]["enum"]), actions);
    let families: Vec<&str> = FaultFamily::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        strs(&d["$defs"]["fault"]["properties"]["family"]["enum"]),
        families
    );
    let severities: Vec<&str> = FaultSeverity::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        strs(&d["$defs"]["fault"]["properties"]["severity"]["enum"]),
        severities
    );
    // Every serialised field of a decision is described.
    let sample = serde_json::to_value(sample_decisions().remove(0)).unwrap();
    for key in sample.as_object().unwrap().keys() {
        assert!(d["properties"].get(key).is_some(), "{key} undocumented");
    }
}

/// Validates every instance against `schema` with CPython's jsonschema.
fn python_verdicts(schema: &Value, instances: &[Value]) -> Vec<bool> {
    let mut input = serde_json::to_string(schema).unwrap() + "\n";
    for i in instances {
        input.push_str(&serde_json::to_string(i).unwrap());
        input.push('\n');
    }
    let script = "import sys, json\n\
        from jsonschema import Draft202012Validator\n\
        lines = sys.stdin.buffer.read().decode('utf-8').split('\\n')[:-1]\n\
        schema = json.loads(lines[0])\n\
        Draft202012Validator.check_schema(schema)\n\
        v = Draft202012Validator(schema)\n\
        print(''.join('1' if v.is_valid(json.loads(l)) else '0' for l in lines[1:]))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with the jsonschema package is required for the schema tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python jsonschema failed");
    let verdicts: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .chars()
        .map(|c| c == '1')
        .collect();
    assert_eq!(verdicts.len(), instances.len());
    verdicts
}

#[test]
fn signature_schema_agrees_with_strict_validation() {
    let mut instances: Vec<Value> = Vec::new();
    for case in common::corpus("policy/cases.jsonl") {
        instances.push(case["signature"].clone());
    }
    for case in common::corpus("hash/signature_hash.jsonl") {
        instances.push(case["signature"].clone());
    }
    for case in common::corpus("validation/signatures.jsonl") {
        instances.push(validate::unwrap_signature(&case["input"]).clone());
    }
    let ok = instances[0].clone();
    for (path, bad) in [
        ("/constraints/max_cost_dbu", json!(-0.5)),
        ("/datasets/0/size_gb", json!(false)),
        ("/datasets/0/merge_keys", json!("id")),
        ("/datasets/0/pii_columns", json!(["\u{85}\u{2028}"])),
        (
            "/execution_context/catalog_snapshot_version",
            json!("\u{1d}"),
        ),
        ("/intent_id", json!(7)),
        ("/datasets/0/size_gb", json!(-0.0)),
        ("/domain", json!("\u{feff}")),
    ] {
        let mut v = ok.clone();
        *v.pointer_mut(path).unwrap() = bad;
        instances.push(v);
    }
    let verdicts = python_verdicts(&signature_schema(), &instances);
    let (mut valid, mut invalid) = (0, 0);
    for (inst, schema_ok) in instances.iter().zip(verdicts) {
        let strict_ok = validate::signature(inst, false).is_empty();
        assert_eq!(schema_ok, strict_ok, "{inst}");
        if strict_ok { valid += 1 } else { invalid += 1 }
    }
    // All 1500 policy signatures are valid; the corpus holds invalid ones too.
    assert!(valid >= 1500, "{valid}");
    assert!(invalid >= 50, "{invalid}");
}

fn sample_decisions() -> Vec<PolicyResult> {
    let fault = Fault {
        code: "FINOPS_MISSING_TEMPORAL_PREDICATE".into(),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::High,
        stage: "policy_engine".into(),
        message: "m".into(),
        mandatory_action: PolicyAction::Replan,
        remediation: vec!["add a partition filter"].into(),
        detected_before_execution: true,
    };
    vec![
        PolicyResult {
            action: PolicyAction::Replan,
            faults: vec![fault.clone()].into(),
            interventions: vec!["add a partition filter"].into(),
            replan_count: 1,
            reasoning: "r".into(),
            patches: vec![Patch::set("constraints.partition_by", json!(["dt"]))],
            manual_fixes: vec![ManualFix {
                code: "C".into(),
                reason: "why".into(),
            }],
        },
        PolicyResult {
            action: PolicyAction::Approve,
            faults: FaultList::new(),
            interventions: SharedList::new(),
            replan_count: 0,
            reasoning: "ok".into(),
            patches: vec![],
            manual_fixes: vec![],
        },
    ]
}

#[test]
fn decision_schema_accepts_decisions_and_rejects_others() {
    let mut instances: Vec<Value> = sample_decisions()
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    let good = instances.len();
    // The reference's PolicyResult.to_dict() (no patches) is a valid decision too.
    let mut reference = instances[1].clone();
    reference.as_object_mut().unwrap().remove("patches");
    instances.push(reference);
    let base = instances[0].clone();
    for (path, bad) in [
        ("/action", json!("allow")),
        ("/faults/0/family", json!("semantic")),
        ("/faults/0/severity", json!("HIGH")),
        ("/replan_count", json!(-1)),
        ("/replan_count", json!(1.5)),
        ("/patches/0/op", json!("add")),
        ("/reasoning", json!(null)),
    ] {
        let mut v = base.clone();
        *v.pointer_mut(path).unwrap() = bad;
        instances.push(v);
    }
    let mut extra = base.clone();
    extra["unexpected"] = json!(1);
    instances.push(extra);
    let mut missing = base;
    missing.as_object_mut().unwrap().remove("faults");
    instances.push(missing);
    let verdicts = python_verdicts(&decision_schema(), &instances);
    assert_eq!(verdicts.iter().filter(|v| **v).count(), good + 1);
    assert!(verdicts[..=good].iter().all(|v| *v), "{verdicts:?}");
}
