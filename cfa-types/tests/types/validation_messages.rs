//! Exact messages of strict validation, the catalog cross-check and the strict
//! parse path (docs/compatibility.md#signature-validation and docs/compatibility.md#catalog), plus `py_list_repr` against CPython.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_types::StateSignature;
use cfa_types::validate::{self, ParseError};
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::{Command, Stdio};

fn rendered(issues: &[validate::Issue]) -> Vec<String> {
    issues.iter().map(ToString::to_string).collect()
}

fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

fn catalog() -> Value {
    json!({"datasets": {
       "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
       "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["cpf","email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
       "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
    }})
}

#[test]
fn signature_messages_in_reference_order() {
    assert_eq!(
        rendered(&validate::signature(&Value::Null, false)),
        ["signature: file is empty"]
    );
    assert_eq!(
        rendered(&validate::signature(&json!([1]), false)),
        ["signature: must be an object"]
    );
    let bad = json!({
        "domain": " \u{3000}", "intent": 3, "target_layer": ["silver"],
        "datasets": [
            7,
            {"name": "\u{1c}", "classification": {"x": 1}, "size_gb": true, "pii_columns": "cpf",
             "partition_column": 1, "merge_keys": [1]},
            {"name": "ok", "size_gb": -0.5, "pii_columns": ["", "x"]}
        ],
        "constraints": {"no_pii_raw": "yes", "merge_key_required": null, "enforce_types": 1,
                        "partition_by": "dt", "max_cost_dbu": -1, "custom": []},
        "execution_context": {"policy_bundle_version": "", "catalog_snapshot_version": "x"},
        "intent_id": 5, "source_intent_raw": null
    });
    assert_eq!(
        rendered(&validate::signature(&bad, true)),
        [
            "domain: is required and must be a non-empty string",
            "intent: is required and must be a non-empty string",
            "target_layer: must be one of ['bronze', 'gold', 'silver']",
            "datasets[0]: must be an object",
            "datasets[1].name: is required and must be a non-empty string",
            "datasets[1].classification: must be one of ['high_volume', 'internal', 'public', 'sensitive']",
            "datasets[1].size_gb: must be a non-negative number",
            "datasets[1].pii_columns: must be a list of strings",
            "datasets[1].partition_column: must be a string or null",
            "datasets[1].merge_keys: must be a list of strings",
            "datasets[2].size_gb: must be a non-negative number",
            "datasets[2].pii_columns: must contain only non-empty strings",
            "constraints.no_pii_raw: must be a boolean",
            "constraints.merge_key_required: must be a boolean",
            "constraints.enforce_types: must be a boolean",
            "constraints.partition_by: must be a list of strings",
            "constraints.max_cost_dbu: must be a non-negative number or null",
            "constraints.custom: must be an object",
            "execution_context.policy_bundle_version: is required and must be a non-empty string",
            "execution_context.context_registry_version_id: is required and must be a non-empty string",
            "intent_id: must be a string",
            "source_intent_raw: must be a string",
        ]
    );
    let no_ds = json!({"domain": "d", "intent": "i", "target_layer": "gold", "constraints": null,
                       "execution_context": 1, "datasets": {}});
    assert_eq!(
        rendered(&validate::signature(&no_ds, false)),
        [
            "datasets: must be a list",
            "constraints: must be an object",
            "execution_context: is required and must be an object"
        ]
    );
    let mut empty = ok_sig();
    empty["datasets"] = json!([]);
    assert_eq!(
        rendered(&validate::signature(&empty, true)),
        ["datasets: must contain at least one dataset"]
    );
    assert!(validate::signature(&empty, false).is_empty());
    empty.as_object_mut().unwrap().remove("datasets");
    assert_eq!(
        rendered(&validate::signature(&empty, true)),
        ["datasets: is required"]
    );
}

#[test]
fn unwrapping_rule() {
    let inner = ok_sig();
    assert!(validate::signature(&json!({"signature": inner.clone()}), true).is_empty());
    assert!(validate::signature(&json!({"state_signature": inner.clone()}), true).is_empty());
    // A non-object `signature` hides a valid `state_signature`: the outer object is checked.
    let hidden = json!({"signature": null, "state_signature": inner.clone()});
    assert_eq!(validate::signature(&hidden, false).len(), 4);
    // `signature` wins over `state_signature`.
    let both = json!({"signature": inner, "state_signature": {}});
    assert!(validate::signature(&both, false).is_empty());
}

#[test]
fn catalog_messages() {
    assert!(validate::catalog(&Value::Null, false).is_empty());
    assert_eq!(
        rendered(&validate::catalog(&Value::Null, true)),
        ["catalog: catalog is required"]
    );
    assert_eq!(
        rendered(&validate::catalog(&json!("x"), false)),
        ["catalog: must be an object"]
    );
    assert_eq!(
        rendered(&validate::catalog(&json!({}), true)),
        ["datasets: is required"]
    );
    assert_eq!(
        rendered(&validate::catalog(&json!({"datasets": []}), false)),
        ["datasets: must be an object keyed by dataset name"]
    );
    assert_eq!(
        rendered(&validate::catalog(&json!({"datasets": {}}), true)),
        ["datasets: must contain at least one dataset"]
    );
    let bad = json!({"datasets": {
        "a": {"classification": "secret", "size_gb": "1", "pii_columns": [" "],
              "partition_column": false, "merge_keys": "id"},
        "\u{2029}": {},
        "b": [],
        "c": {"pii_columns": 1, "merge_keys": [""], "size_gb": -0.0}
    }});
    assert_eq!(
        rendered(&validate::catalog(&bad, false)),
        [
            "datasets.a.classification: must be one of ['high_volume', 'internal', 'public', 'sensitive']",
            "datasets.a.size_gb: must be a non-negative number",
            "datasets.a.pii_columns: must contain only non-empty strings",
            "datasets.a.partition_column: must be a string or null",
            "datasets.a.merge_keys: must be a list of strings",
            "datasets: dataset names must be non-empty strings",
            "datasets.b: metadata must be an object",
            "datasets.c.pii_columns: must be a list of strings",
            "datasets.c.merge_keys: must contain only non-empty strings",
        ]
    );
    assert!(validate::catalog(&catalog(), true).is_empty());
}

#[test]
fn cross_check_against_catalog() {
    let sig = StateSignature::from_value(&ok_sig()).unwrap();
    assert!(validate::cross_check(&sig, &catalog()).is_empty());
    assert!(validate::cross_check(&sig, &json!({})).is_empty());
    assert!(validate::cross_check(&sig, &Value::Null).is_empty());

    let mut cat = catalog();
    cat["datasets"]["clientes"]["classification"] = json!("public");
    cat["datasets"]["clientes"]["pii_columns"] = json!(["rg", "cpf", "o'neil"]);
    cat["datasets"]["clientes"]["partition_column"] = json!("dt");
    cat["datasets"].as_object_mut().unwrap().remove("nfe");
    assert_eq!(
        rendered(&validate::cross_check(&sig, &cat)),
        [
            "signature.datasets[0].name: dataset 'nfe' not found in catalog",
            "signature.datasets[1].classification: signature says 'sensitive' but catalog says 'public'",
            "signature.datasets[1].pii_columns: signature missing PII columns from catalog: [\"o'neil\", 'rg']",
            "signature.datasets[1].pii_columns: signature declares PII columns not in catalog: ['email']",
            "signature.datasets[1].partition_column: signature says 'processing_date' but catalog says 'dt'",
        ]
    );

    let mut odd = catalog();
    odd["datasets"]["nfe"] = json!("x");
    odd["datasets"]["clientes"]["classification"] = Value::Null;
    odd["datasets"]["clientes"]["pii_columns"] = json!("cpf");
    odd["datasets"]["clientes"]["partition_column"] = json!(7);
    assert_eq!(
        rendered(&validate::cross_check(&sig, &odd)),
        [
            "signature.datasets[0].name: catalog entry for 'nfe' is not an object",
            "signature.datasets[1].classification: signature says 'sensitive' but catalog says 'None'",
            "catalog.datasets.clientes.pii_columns: must be a list of strings",
            "signature.datasets[1].partition_column: signature says 'processing_date' but catalog says '7'",
        ]
    );
    // Only a set partition column on both sides is compared; a missing catalog
    // classification means `internal`.
    let mut lax = catalog();
    lax["datasets"]["clientes"]["partition_column"] = json!("");
    lax["datasets"]["clientes"]
        .as_object_mut()
        .unwrap()
        .remove("classification");
    assert_eq!(
        rendered(&validate::cross_check(&sig, &lax)),
        [
            "signature.datasets[1].classification: signature says 'sensitive' but catalog says 'internal'"
        ]
    );
    assert_eq!(
        rendered(&validate::cross_check(&sig, &json!({"datasets": null}))),
        ["catalog.datasets: must be an object keyed by dataset name"]
    );
    assert_eq!(
        rendered(&validate::cross_check(&sig, &json!({"version": 1}))),
        [
            "signature.datasets[0].name: dataset 'nfe' not found in catalog",
            "signature.datasets[1].name: dataset 'clientes' not found in catalog",
        ]
    );
}

#[test]
fn parse_validated_errors() {
    let text = serde_json::to_string(&ok_sig()).unwrap();
    let sig = StateSignature::parse_validated(&text, true).unwrap();
    assert_eq!(
        sig.signature_hash(),
        "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
    );
    match StateSignature::parse_validated("{\n  \"domain\": ,\n}", false) {
        Err(ParseError::Syntax(e)) => {
            assert_eq!((e.line, e.column), (2, 13));
            assert_eq!(e.message, "expected value");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let err = StateSignature::parse_validated(" \n", false).unwrap_err();
    assert_eq!(rendered(err.issues()), ["signature: file is empty"]);
    let err = StateSignature::parse_validated("{\"domain\": \"d\"}", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid signature: intent: is required and must be a non-empty string; target_layer: must be one of ['bronze', 'gold', 'silver']; execution_context: is required and must be an object"
    );
    let wrapped = format!("{{\"signature\": {text}}}");
    assert_eq!(
        StateSignature::parse_validated(&wrapped, true).unwrap(),
        sig
    );
}

#[test]
fn py_list_repr_matches_cpython() {
    let samples: Vec<Vec<&str>> = vec![
        vec![],
        vec!["cpf", "email"],
        vec!["o'neil", "say \"hi\"", "both ' and \""],
        vec!["back\\slash", "tab\tnl\nret\r", "\u{0}\u{7}\u{1b}\u{7f}"],
        vec![
            "\u{85}\u{a0}\u{ad}é",
            "\u{2028}\u{200b}\u{feff}日本",
            "🚀\u{e0001}\u{10ffff}",
        ],
        vec!["\u{378}", "\u{d7ff}\u{e000}\u{fffd}", "'"],
        vec!["\""],
    ];
    let input: String = samples
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json\nfor line in sys.stdin: print(repr(json.loads(line)))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env("PYTHONIOENCODING", "utf-8")
        .spawn()
        .expect("python3 is required for the CPython differential tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), samples.len());
    for (sample, want) in samples.iter().zip(lines) {
        assert_eq!(validate::py_list_repr(sample), want, "{sample:?}");
    }
}
