//! Shared fixtures for the codegen tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_codegen::{BackendRegistry, GeneratedArtifact};
use cfa_plan::{ExecutionPlan, ExecutionPlanner, Planner};
use cfa_types::{Catalog, StateSignature};
use serde_json::{Value, json};

/// The reference `sigs/ok.json`.
pub fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

/// Three datasets, no partition filter, silver merge.
pub fn three_sig() -> Value {
    let mut v = ok_sig();
    v["datasets"].as_array_mut().unwrap().push(json!(
        {"name": "produtos", "classification": "internal", "size_gb": 0.1, "merge_keys": ["produto_id"]}
    ));
    v["constraints"]["partition_by"] = json!([]);
    v
}

/// Gold aggregate of the two reference datasets.
pub fn aggregate_sig() -> Value {
    let mut v = ok_sig();
    v["intent"] = json!("aggregate_and_persist");
    v["target_layer"] = json!("gold");
    v
}

/// Bronze single-dataset append.
pub fn bronze_sig() -> Value {
    json!({"domain": "fiscal", "intent": "ingest", "target_layer": "bronze",
           "datasets": [{"name": "clientes", "pii_columns": ["cpf", "email"], "merge_keys": ["cliente_id"]}],
           "constraints": {"no_pii_raw": true, "merge_key_required": true, "partition_by": []}})
}

/// The reference catalog plus column lists.
pub fn catalog_json() -> Value {
    json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]},
      "produtos": {"classification": "internal", "size_gb": 0.1, "pii_columns": [], "merge_keys": ["produto_id"],
                   "columns": ["produto_id", "descricao"]}
    }})
}

/// The catalog.
pub fn catalog() -> Catalog {
    Catalog::from_value(&catalog_json()).unwrap()
}

/// Lenient signature.
pub fn sig(v: &Value) -> StateSignature {
    StateSignature::from_value(v).unwrap()
}

/// Plans.
pub fn plan(s: &StateSignature, cat: Option<&Catalog>) -> ExecutionPlan {
    ExecutionPlanner::default().plan(s, cat).unwrap()
}

/// A catalog without column lists that declares the nfe/clientes join key (the
/// planner never guesses one).
pub fn columnless_catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {"clientes": {"join_keys": {"nfe": ["cliente_id"]}}}}))
        .unwrap()
}

/// The catalog with columns, or the columnless one.
pub fn catalog_for(with_columns: bool) -> Catalog {
    if with_columns {
        catalog()
    } else {
        columnless_catalog()
    }
}

/// Plans and generates (`with_catalog`: with the catalog's column lists, else over
/// [`columnless_catalog`]).
pub fn generate(
    backend: &str,
    v: &Value,
    with_catalog: bool,
) -> (StateSignature, GeneratedArtifact) {
    generate_in(&BackendRegistry::with_builtins(), backend, v, with_catalog)
}

/// [`generate`] with the backends of `reg`.
pub fn generate_in(
    reg: &BackendRegistry,
    backend: &str,
    v: &Value,
    with_catalog: bool,
) -> (StateSignature, GeneratedArtifact) {
    let s = sig(v);
    let cat = catalog_for(with_catalog);
    let p = plan(&s, Some(&cat));
    let a = reg.get(backend).unwrap().generate(&p, &s).unwrap();
    (s, a)
}

/// All files of an artifact, concatenated with headers (for snapshots).
pub fn render(a: &GeneratedArtifact) -> String {
    let mut out = String::new();
    for f in &a.files {
        out.push_str(&format!("=== {} ===\n{}", f.path, f.content));
    }
    out
}

/// A two-dataset signature and catalog over nine names: d0, d1, k0, k1, partition, a
/// plain column, two PII columns, domain.
pub fn build(
    names: &[String],
    layer: &str,
    merge: bool,
    aggregate: bool,
    no_pii_raw: bool,
) -> (Value, Value) {
    let n = |i: usize| names[i].clone();
    let (d0, d1, k0, k1, p, a, pii1, pii2, domain) =
        (n(0), n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8));
    let sig = json!({
        "domain": domain, "intent": if aggregate { "aggregate" } else { "reconcile" }, "target_layer": layer,
        "datasets": [
            {"name": d0, "size_gb": 200, "merge_keys": [k0], "partition_column": p},
            {"name": d1, "size_gb": 0.5, "merge_keys": [k1], "pii_columns": [pii1, pii2], "partition_column": p}
        ],
        "constraints": {"no_pii_raw": no_pii_raw, "merge_key_required": merge, "partition_by": [p]}
    });
    let catalog = json!({"datasets": {
        d0.clone(): {"columns": [k0, k1, a, p]},
        d1.clone(): {"columns": [k1, pii1, p, pii2]}
    }});
    (sig, catalog)
}
