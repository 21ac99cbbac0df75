//! The allocation-free walks against the previous ones: same verdict, same refusal
//! (value, origin, reason) for every identifier a plan or signature carries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::Catalog;
use proptest::prelude::*;
use serde_json::{Value, json};

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }}))
    .unwrap()
}

fn signature_values() -> Vec<Value> {
    let ok = cfa_test_support::ok_signature();
    let mut gold = ok.clone();
    gold["intent"] = json!("aggregate_and_persist");
    gold["target_layer"] = json!("gold");
    let one = json!({"domain": "fiscal; x", "intent": "ingest", "target_layer": "bronze",
        "datasets": [{"name": "clientes", "pii_columns": ["cpf"], "merge_keys": ["cliente_id"],
                      "partition_column": "processing_date"}],
        "constraints": {"partition_by": ["processing_date"]}});
    vec![ok, gold, one]
}

/// Calls `f` with a copy of `v` where one string leaf (in turn, each of them) is `bad`.
fn each_string_replaced(v: &Value, bad: &str, f: &mut dyn FnMut(Value)) {
    fn paths(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::String(_) => out.push(at.clone()),
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    at.push(json!(i));
                    paths(x, at, out);
                    at.pop();
                }
            }
            Value::Object(map) => {
                for (k, x) in map {
                    at.push(json!(k));
                    paths(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    for path in all {
        let mut copy = v.clone();
        let mut slot = &mut copy;
        for step in &path {
            slot = match step {
                Value::String(k) => &mut slot[k.as_str()],
                Value::Number(n) => &mut slot[usize::try_from(n.as_u64().unwrap()).unwrap()],
                _ => unreachable!(),
            };
        }
        *slot = json!(bad);
        f(copy);
    }
}

#[test]
fn plan_checks_match_the_reference_for_every_hostile_field() {
    let cat = catalog();
    let mut compared = 0;
    for sv in signature_values() {
        let sig = StateSignature::from_value(&sv).unwrap();
        let Ok(plan) = ExecutionPlanner::default().plan(&sig, Some(&cat)) else {
            continue;
        };
        assert_eq!(check_plan(&plan), reference::check_plan(&plan));
        let pv = serde_json::to_value(&plan).unwrap();
        for bad in ["x; DROP", "", "1a", "é", &"a".repeat(64)] {
            each_string_replaced(&pv, bad, &mut |hostile| {
                if let Ok(p) = serde_json::from_value::<ExecutionPlan>(hostile) {
                    assert_eq!(check_plan(&p), reference::check_plan(&p));
                    assert_eq!(check_all(&sig, &p), reference::check_all(&sig, &p));
                    compared += 1;
                }
            });
        }
    }
    assert!(compared > 100, "only {compared} plans compared");
}

#[test]
fn signature_checks_match_the_reference_for_every_hostile_field() {
    let mut refused = 0;
    for sv in signature_values() {
        each_string_replaced(&sv, "a\"b", &mut |hostile| {
            if let Ok(sig) = StateSignature::from_value(&hostile) {
                let got = check_signature(&sig);
                refused += usize::from(got.is_err());
                assert_eq!(got, reference::check_signature(&sig));
            }
        });
    }
    assert!(refused > 10, "only {refused} refusals");
}

proptest! {
    #[test]
    fn identifier_problem_matches_the_reference(s in "\\PC{0,70}|[A-Za-z_][A-Za-z0-9_é]{0,70}") {
        prop_assert_eq!(identifier_problem(&s), reference::identifier_problem(&s));
        prop_assert_eq!(check_identifier(&s, "o"), reference::check_identifier(&s, "o"));
    }
}
