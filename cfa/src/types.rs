//! The wire types of a decision and their checks: the [`StateSignature`] an intent
//! becomes (datasets, constraints, execution context), the [`Catalog`], faults and fixes,
//! the policy result, and the enums they use; plus located validation ([`validate`]),
//! the JSON Schemas ([`schema`]), the canonical JSON writer behind every hash
//! ([`canonical`]) and JSON syntax-error locations ([`json_error`]). Re-exported from
//! cfa-types.
//!
//! ```
//! use cfa::types::{StateSignature, TargetLayer, validate};
//!
//! let v = serde_json::json!({"domain": "sales", "intent": "transform_and_persist",
//!     "target_layer": "silver", "datasets": [{"name": "orders"}]});
//! let sig = StateSignature::from_value(&v)?;
//! assert_eq!(sig.target_layer, TargetLayer::Silver);
//! assert_eq!(sig.signature_hash().len(), 64);
//!
//! // Validation names the JSON path of every problem.
//! let bad = serde_json::json!({"domain": "sales", "intent": "i", "target_layer": "platinum",
//!     "datasets": [{"name": "orders"}]});
//! let issues = validate::signature(&bad, false);
//! assert!(issues.iter().any(|i| i.to_string().contains("target_layer")));
//! # Ok::<(), cfa::types::SignatureError>(())
//! ```

pub use cfa_types::{
    AmbiguityLevel, Catalog, CatalogEntry, ConfirmationMode, DatasetClassification, DatasetRef,
    DecisionState, ExecutionContext, Fault, FaultFamily, FaultSeverity, FieldError, Fix, ManualFix,
    Patch, PatchError, PatchOp, PolicyAction, PolicyResult, SignatureConstraints, SignatureError,
    StateSignature, TargetLayer,
};

/// Located validation of signatures and catalogs (every issue names its JSON path).
pub mod validate {
    pub use cfa_types::validate::{
        ConstraintFields, ContextFields, DatasetFields, InvalidSignature, Issue, JsonSyntaxError,
        ParseError, SignatureFields, catalog, cross_check, signature, unwrap_signature,
    };
}

/// The JSON Schemas (draft 2020-12) of a signature and of a policy decision.
pub mod schema {
    pub use cfa_types::schema::{DIALECT, decision_schema, signature_schema};
}

/// The canonical JSON writer (Python `json.dumps` compatible) and the hashes built on it.
pub mod canonical {
    pub use cfa_types::canonical::{
        Style, canonical_sha256, canonical_string, governance_artifact_hash, hex_lower, sha256_hex,
        to_string,
    };
}

/// Line and column of a JSON syntax error, in the user's terms.
pub mod json_error {
    pub use cfa_types::json_error::{JSON_MAX_DEPTH, JsonErrorInfo, describe};
}
