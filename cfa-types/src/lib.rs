//! The typed core of CFA: the `StateSignature` an intent becomes, its datasets and
//! constraints, faults and policy decisions, the dataset catalog, and the one
//! canonical JSON writer (Python `json.dumps` compatible) behind every hash.
//!
//! This crate owns the compatibility contract with cfa-kernel 1.1.0 for shapes and
//! hashes (docs/compatibility.md#signature-json and docs/compatibility.md#hashes). It does no I/O beyond parsing values it is handed,
//! and it must not know about policy rules, planning, code generation, execution or
//! storage: every other crate builds on it, never the reverse.
//!
//! # Example
//!
//! Read a signature strictly (the reference's checks and issue paths), then hash it:
//!
//! ```
//! use cfa_types::{StateSignature, TargetLayer, canonical, validate::ParseError};
//!
//! let text = r#"{
//!   "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
//!   "datasets": [
//!     {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
//!      "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
//!     {"name": "clientes", "classification": "sensitive", "size_gb": 0.5,
//!      "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
//!      "merge_keys": ["cliente_id"]}],
//!   "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
//!                   "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
//!   "execution_context": {"policy_bundle_version": "prod-v1.0",
//!     "catalog_snapshot_version": "cat-2026-01", "context_registry_version_id": "v_initial"},
//!   "intent_id": "11111111-2222-3333-4444-555555555555",
//!   "source_intent_raw": "Join NFe with Clientes and persist to Silver"}"#;
//!
//! let sig = StateSignature::parse_validated(text, true)?;
//! assert_eq!(sig.target_layer, TargetLayer::Silver);
//! assert!(sig.contains_pii() && sig.writes_to_protected_layer());
//!
//! // signature_hash is the reference's, byte for byte (its `sigs/ok.json` vector) ...
//! assert_eq!(
//!     sig.signature_hash(),
//!     "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
//! );
//! // ... and leaves out fields that change the decision; content_hash covers them.
//! let no_budget = StateSignature::parse_validated(&text.replace("20.0", "0"), true)?;
//! assert_eq!(no_budget.signature_hash(), sig.signature_hash());
//! assert_ne!(no_budget.content_hash(), sig.content_hash());
//!
//! // Invalid input: every issue, in the reference's order, with its path.
//! let bad = r#"{"domain": " ", "intent": "join", "target_layer": "platinum", "datasets": []}"#;
//! let Err(err) = StateSignature::parse_validated(bad, false) else {
//!     unreachable!("the signature is invalid")
//! };
//! let issues: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
//! assert_eq!(
//!     issues,
//!     [
//!         "domain: is required and must be a non-empty string",
//!         "target_layer: must be one of ['bronze', 'gold', 'silver']",
//!         "execution_context: is required and must be an object",
//!     ]
//! );
//!
//! // The canonical JSON writer behind every hash is Python's `json.dumps(sort_keys=True)`.
//! let v = serde_json::json!({"b": 1.5, "a": "é", "n": 4000.0});
//! assert_eq!(
//!     canonical::canonical_string(&v),
//!     r#"{"a": "\u00e9", "b": 1.5, "n": 4000.0}"#
//! );
//! # Ok::<(), ParseError>(())
//! ```

pub mod canonical;
mod catalog;
mod enums;
mod fault;
pub mod json_error;
mod patch_value;
pub mod schema;
mod shared;
mod signature;
pub mod time;
pub mod validate;

pub use catalog::{Catalog, CatalogEntry};
pub use enums::{
    AmbiguityLevel, ConfirmationMode, DatasetClassification, DecisionState, FaultFamily,
    FaultSeverity, PolicyAction, TargetLayer,
};
pub use fault::{Fault, FaultList, Fix, ManualFix, Patch, PatchOp, PolicyResult};
pub use patch_value::PatchValue;
pub use shared::{SharedList, SharedStr};
pub use signature::{
    DatasetRef, ExecutionContext, FieldError, PatchError, SignatureConstraints, SignatureError,
    StateSignature,
};
