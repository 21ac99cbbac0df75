//! The typed core of CFA: the `StateSignature` an intent becomes, its datasets and
//! constraints, faults and policy decisions, the dataset catalog, and the one
//! canonical JSON writer (Python `json.dumps` compatible) behind every hash.
//!
//! This crate owns the compatibility contract with cfa-kernel 1.1.0 for shapes and
//! hashes (docs/compatibility.md#signature-json and docs/compatibility.md#hashes). It does no I/O beyond parsing values it is handed,
//! and it must not know about policy rules, planning, code generation, execution or
//! storage: every other crate builds on it, never the reverse.

pub mod canonical;
mod catalog;
mod enums;
mod fault;
pub mod json_error;
pub mod schema;
mod signature;
pub mod validate;

pub use catalog::{Catalog, CatalogEntry};
pub use enums::{
    AmbiguityLevel, ConfirmationMode, DatasetClassification, DecisionState, FaultFamily,
    FaultSeverity, PolicyAction, TargetLayer,
};
pub use fault::{Fault, Fix, ManualFix, Patch, PatchOp, PolicyResult};
pub use signature::{
    DatasetRef, ExecutionContext, FieldError, PatchError, SignatureConstraints, SignatureError,
    StateSignature,
};
