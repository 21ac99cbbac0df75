//! Shared fixtures: the reference signature and catalog, planned.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_plan::{ExecutionPlan, ExecutionPlanner, Planner};
use cfa_types::{Catalog, StateSignature};
use serde_json::{Value, json};

/// The reference `sigs/ok.json` without its `execution_context`.
pub fn ok_sig() -> Value {
    cfa_test_support::ok_signature_without(&["execution_context"])
}

/// The reference catalog with column lists.
pub fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }}))
    .unwrap()
}

/// Lenient signature.
pub fn sig(v: &Value) -> StateSignature {
    StateSignature::from_value(v).unwrap()
}

/// Plan of `v` with or without catalog columns.
pub fn plan(v: &Value, with_catalog: bool) -> (StateSignature, ExecutionPlan) {
    let s = sig(v);
    let c = catalog();
    let p = ExecutionPlanner::default()
        .plan(&s, with_catalog.then_some(&c))
        .unwrap();
    (s, p)
}
