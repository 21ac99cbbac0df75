//! Every hostile name, wherever it enters (dataset, PII column, merge key, partition,
//! catalog column, domain), is refused by every backend before any code is produced,
//! with an error naming the identifier and its origin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_codegen::ident::{check_identifier, identifier_problem};
use cfa_codegen::{BackendRegistry, CodegenError};
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::{Catalog, StateSignature};
use common::*;
use serde_json::{Value, json};

const HOSTILE: &[&str] = &[
    "",
    " ",
    "nfe\"",
    "nfe'",
    "nfe`",
    "nfe;",
    "nfe; DROP TABLE users",
    "x\"; DROP TABLE t; --",
    "a--b",
    "a/*b*/",
    "a*/",
    "{{ config(materialized='table') }}",
    "{{x}}",
    "{% raw %}",
    "{#c#}",
    "a}}",
    "nfe\nDROP",
    "nfe\r",
    "nfe\t",
    "back\\slash",
    "a\\\"",
    "nfe id",
    "nfe-id",
    "nfe.id",
    "1nfe",
    "9",
    "$nfe",
    "nfe$",
    "@nfe",
    "nfe)",
    "nfe(",
    "nfe,x",
    "nfe=1",
    "nfe%s",
    "nfe\u{0}",
    "nfе",    // Cyrillic e
    "ｎｆｅ", // full-width
    "café",
    "nfe\u{200b}", // zero-width space
    "nfe\u{2028}",
    "\"\"\"",
    "'''",
    "nfe#comment",
    "a\" + __import__('os').system('id') + \"",
    "__import__('os')",
    "a_very_long_identifier_that_is_longer_than_sixty_three_bytes_in_total",
];

#[test]
fn corpus_is_large_and_all_refused_by_the_grammar() {
    assert!(HOSTILE.len() >= 30);
    for h in HOSTILE {
        assert!(identifier_problem(h).is_some(), "{h:?} must be refused");
    }
    for ok in ["nfe", "_x", "Cliente_ID", "a1", "order", "select"] {
        assert!(
            check_identifier(ok, "test").is_ok(),
            "{ok} is a valid identifier"
        );
    }
}

fn expect_refused(s: &StateSignature, cat: Option<&Catalog>, hostile: &str, origin_part: &str) {
    let p = ExecutionPlanner::default().plan(s, cat).unwrap();
    let reg = BackendRegistry::with_builtins();
    for b in reg.iter() {
        match b.generate(&p, s) {
            Err(CodegenError::UnsafeIdentifier(e)) => {
                assert_eq!(e.shown, format!("{hostile:?}"), "backend {}", b.name());
                assert!(
                    e.origin.contains(origin_part),
                    "backend {}: origin {:?} should mention {origin_part:?}",
                    b.name(),
                    e.origin
                );
                let msg = CodegenError::UnsafeIdentifier(e).to_string();
                assert!(msg.contains("refusing unsafe identifier"));
            }
            other => panic!(
                "backend {} accepted {hostile:?} ({origin_part}): {other:?}",
                b.name()
            ),
        }
    }
}

/// `v` changed by `f`; the first dataset also declares `cliente_id` as a merge key, so
/// the join onto `clientes` is grounded without a catalog (the planner never guesses a
/// join key).
fn with(v: &Value, f: impl Fn(&mut Value)) -> StateSignature {
    let mut v = v.clone();
    f(&mut v);
    if let Some(keys) = v["datasets"][0]["merge_keys"].as_array_mut() {
        keys.push(json!("cliente_id"));
    }
    sig(&v)
}

#[test]
fn hostile_dataset_names_are_refused() {
    for h in HOSTILE {
        let s = with(&ok_sig(), |v| v["datasets"][1]["name"] = json!(h));
        expect_refused(&s, None, h, "signature.datasets[1].name");
    }
}

#[test]
fn hostile_pii_columns_are_refused() {
    for h in HOSTILE {
        let s = with(&ok_sig(), |v| {
            v["datasets"][1]["pii_columns"] = json!(["cpf", h])
        });
        expect_refused(&s, None, h, "signature.datasets[1].pii_columns[1]");
    }
}

#[test]
fn hostile_merge_keys_and_partitions_are_refused() {
    for h in HOSTILE {
        let s = with(&ok_sig(), |v| v["datasets"][0]["merge_keys"] = json!([h]));
        expect_refused(&s, None, h, "signature.datasets[0].merge_keys[0]");
        let s = with(&ok_sig(), |v| v["constraints"]["partition_by"] = json!([h]));
        expect_refused(&s, None, h, "partition");
        let s = with(&ok_sig(), |v| {
            v["datasets"][0]["partition_column"] = json!(h)
        });
        expect_refused(&s, None, h, "signature.datasets[0].partition_column");
    }
}

#[test]
fn hostile_domain_is_refused_when_it_names_the_target() {
    for h in HOSTILE {
        let s = with(&ok_sig(), |v| v["domain"] = json!(h));
        expect_refused(&s, None, h, "signature.domain");
    }
}

#[test]
fn hostile_catalog_columns_are_refused() {
    for h in HOSTILE {
        let mut c = catalog_json();
        c["datasets"]["clientes"]["columns"] =
            json!(["cliente_id", "cpf", "email", "processing_date", h]);
        let cat = Catalog::from_value(&c).unwrap();
        expect_refused(
            &sig(&ok_sig()),
            Some(&cat),
            h,
            "catalog.datasets.clientes.columns[4]",
        );
    }
}

#[test]
fn refusal_names_the_value_and_the_place() {
    let s = with(&ok_sig(), |v| {
        v["datasets"][1]["pii_columns"] = json!(["cpf\"; DROP TABLE x; --"])
    });
    let p = ExecutionPlanner::default().plan(&s, None).unwrap();
    let err = BackendRegistry::with_builtins()
        .get("sql")
        .unwrap()
        .generate(&p, &s)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "refusing unsafe identifier \"cpf\\\"; DROP TABLE x; --\" from signature.datasets[1].pii_columns[0]: identifier may contain only ASCII letters, digits and '_'"
    );
}

#[test]
fn unknown_backend_lists_the_registered_names() {
    let reg = BackendRegistry::with_builtins();
    let err = reg.get("spark-sql").err().unwrap();
    assert_eq!(
        err.to_string(),
        "unknown backend 'spark-sql' (registered: dbt, pyspark, sql)"
    );
}
