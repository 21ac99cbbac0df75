//! Inputs shared by the criterion benches and the gate runner.

use cfa_types::{SignatureError, StateSignature};
use serde_json::{Value, json};

/// The reference `sigs/ok.json` (docs/compatibility.md#signature-json): every bundle approves it.
pub const OK_SIGNATURE: &str = r#"{
  "domain": "fiscal",
  "intent": "reconciliation_and_persist",
  "target_layer": "silver",
  "datasets": [
    {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
     "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
     "partition_column": "processing_date", "merge_keys": ["cliente_id"]}
  ],
  "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                  "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
  "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01",
                        "context_registry_version_id": "v_initial"},
  "intent_id": "11111111-2222-3333-4444-555555555555",
  "source_intent_raw": "Join NFe with Clientes and persist to Silver"
}"#;

fn ok_value() -> Result<Value, SignatureError> {
    serde_json::from_str(OK_SIGNATURE).map_err(|e| SignatureError::Json(e.to_string()))
}

/// The approve case: `sigs/ok.json`.
pub fn approve_signature() -> Result<StateSignature, SignatureError> {
    StateSignature::from_value(&ok_value()?)
}

/// The replan case, like `sigs/replan_multi.json`: no `partition_by` and
/// `enforce_types` false (three replan faults with the default rules).
pub fn replan_signature() -> Result<StateSignature, SignatureError> {
    let mut sig = approve_signature()?;
    sig.constraints.partition_by.clear();
    sig.constraints.enforce_types = false;
    Ok(sig)
}

/// The block case: raw PII (`no_pii_raw` false) written to silver.
pub fn block_signature() -> Result<StateSignature, SignatureError> {
    let mut sig = approve_signature()?;
    sig.constraints.no_pii_raw = false;
    Ok(sig)
}

/// An audit event of typical size (the 7 hashed fields, a `policy_evaluation`
/// `details` object with hashes, fault codes, interventions and reasoning).
pub fn audit_event() -> Value {
    json!({
        "intent_id": "11111111-2222-3333-4444-555555555555",
        "stage": "policy_check",
        "event_type": "policy_evaluation",
        "outcome": "replan",
        "timestamp": "2026-01-01T00:00:00.123456+00:00",
        "previous_hash": "3b69998684daee0e632ea8bc5f8c513797582da3414f9748653ff1b7f0ab3f6e",
        "details": {
            "policy_bundle_version": "prod-v1.0",
            "decision_id": "0b9f3c2e-8f7a-4c1d-9e2b-5a6d7c8e9f01",
            "signature_hash": "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649",
            "catalog_hash": "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347",
            "policy_bundle_hash": "cb8c1f1bad935154b874cd3b4e66161a4281a9fabc136f57417abce66f1f4f58",
            "faults": ["FINOPS_MISSING_TEMPORAL_PREDICATE", "FINOPS_SENSITIVE_WITHOUT_PARTITION",
                       "CONTRACT_TYPE_ENFORCEMENT_DISABLED"],
            "interventions": ["Add constraints.partition_by with temporal column",
                              "Example: partition_by: [processing_date]",
                              "Add partition_by to limit processing scope.",
                              "Enable constraints.enforce_types=True",
                              "Define expected schema in catalog"],
            "reasoning": "Policy requires replan: 3 fault(s) \u{2014} FINOPS_MISSING_TEMPORAL_PREDICATE, FINOPS_SENSITIVE_WITHOUT_PARTITION, CONTRACT_TYPE_ENFORCEMENT_DISABLED",
            "size_gb": 4000.5,
            "replan_count": 0
        }
    })
}

/// Appends a chain of `n` `policy_evaluation` events (audit-sized details, fixed
/// timestamps) to a new JSONL audit log at `path`, through `cfa-audit`'s own store.
pub fn write_audit_chain(path: &std::path::Path, n: u64) -> Result<(), cfa_audit::AuditError> {
    use cfa_audit::{AuditStore, Durability, JsonlStore, NewEvent};
    let store = JsonlStore::open(path, Durability::Never)?;
    for i in 0..n {
        let secs = 1_795_291_377 + i64::try_from(i).unwrap_or(i64::MAX / 2);
        let micros = u32::try_from(i * 7919 % 1_000_000).unwrap_or(0);
        let outcome = if i % 3 == 0 { "replan" } else { "approve" };
        let mut e = NewEvent::new(
            format!("{:08x}-2222-3333-4444-555555555555", i / 11),
            "policy_check",
            "policy_evaluation",
            outcome,
            cfa_audit::time::isoformat_utc(secs, micros),
        )
        .detail("decision_id", format!("35324dcc-4335-455e-bce2-{i:012}"))
        .detail(
            "signature_hash",
            cfa_types::canonical::sha256_hex(&i.to_le_bytes()),
        )
        .detail("faults", json!(["FINOPS_MISSING_TEMPORAL_PREDICATE"]))
        .detail("interventions", json!([]))
        .detail("reasoning", "All rules passed. Execution approved.");
        e.policy_bundle_version = "prod-v1.0".into();
        store.append(e)?;
    }
    store.flush()
}
