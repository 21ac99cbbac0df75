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

/// The reference `sigs/ok.json`.
pub fn ok_sig() -> Value {
    json!({
      "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
      "datasets": [
        {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
         "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
        {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
         "partition_column": "processing_date", "merge_keys": ["cliente_id"]}
      ],
      "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                      "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
      "intent_id": "11111111-2222-3333-4444-555555555555",
      "source_intent_raw": "Join NFe with Clientes and persist to Silver"
    })
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
