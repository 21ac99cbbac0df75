//! Π generate: turns an [`cfa_plan::ExecutionPlan`] into PySpark (Delta Lake, or plain Spark
//! over parquet: [`PySparkMode`]) / SQL (PostgreSQL) / dbt artifacts through the [`Backend`]
//! trait and [`BackendRegistry`] (each built-in configured by [`BackendOptions`]), refuses any identifier
//! outside a strict grammar before producing code ([`ident`]), and statically validates
//! artifacts on a parsed form — sqlparser's AST for SQL and compiled dbt models, a Python
//! tokenizer for PySpark ([`validate`]). It must NOT know about policy rules, execution,
//! audit or I/O: artifacts live in memory and the caller writes them.
//!
//! Repeated work is memoised in small, bounded, thread-safe in-process caches whose keys
//! are compared in full: PySpark artifacts by what generation reads of the plan and the
//! signature, PySpark validation results by the script after its leading comment lines
//! (so a stamped [`Provenance`] header shares the entry of its script) and by what the
//! checks read, artifact hashes by the hashed content. A hit is what the uncached path
//! returns; refusals and untokenizable scripts are never cached.
//!
//! # Example
//!
//! ```
//! use cfa_codegen::{BackendRegistry, CodegenError, Language, generate_validated};
//! use cfa_plan::{ExecutionPlanner, Planner};
//! use cfa_types::{Catalog, StateSignature};
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
//!     "clientes": {"classification": "sensitive", "pii_columns": ["cpf"],
//!                  "partition_column": "processing_date", "merge_keys": ["cliente_id"],
//!                  "columns": ["cliente_id", "cpf", "processing_date"]}}}))?;
//! let sig = StateSignature::parse_validated(
//!     r#"{"domain": "crm", "intent": "transform_and_persist", "target_layer": "silver",
//!         "datasets": [{"name": "clientes", "classification": "sensitive",
//!                       "pii_columns": ["cpf"], "partition_column": "processing_date",
//!                       "merge_keys": ["cliente_id"]}],
//!         "constraints": {"partition_by": ["processing_date"]},
//!         "execution_context": {"policy_bundle_version": "v1.0",
//!             "catalog_snapshot_version": "c1", "context_registry_version_id": "v1"}}"#,
//!     true,
//! )?;
//! let plan = ExecutionPlanner::default().plan(&sig, Some(&catalog))?;
//!
//! let backends = BackendRegistry::with_builtins();
//! assert_eq!(backends.names(), ["dbt", "pyspark", "sql"]);
//! let (artifact, validation) = generate_validated(backends.get("sql")?, &plan, &sig)?;
//! assert_eq!(artifact.language, Language::Sql);
//! assert!(validation.passed, "{:?}", validation.fault_codes());
//! let sql = &artifact.main_file().ok_or("no main file")?.content;
//! assert!(sql.contains("MERGE INTO"), "{sql}"); // silver + merge key: an upsert
//!
//! // Identifiers from input never reach code unchecked.
//! let hostile = sig.apply_patches(&[cfa_types::Patch::set(
//!     "constraints.partition_by",
//!     serde_json::json!(["processing_date; DROP TABLE x"]),
//! )])?;
//! let refused = match ExecutionPlanner::default().plan(&hostile, Some(&catalog)) {
//!     Err(_) => true,
//!     Ok(p) => matches!(
//!         generate_validated(backends.get("sql")?, &p, &hostile),
//!         Err(CodegenError::UnsafeIdentifier(_))
//!     ),
//! };
//! assert!(refused);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod artifact;
mod backend;
mod cache;
pub mod dbt;
mod error;
pub mod ident;
pub mod pyspark;
mod query;
pub mod sql;
pub mod validate;

pub use artifact::{GeneratedArtifact, GeneratedFile, Language, Provenance};
pub use backend::{Backend, BackendCapabilities, BackendOptions, BackendRegistry};
pub use dbt::{DbtBackend, DbtConfig};
pub use error::{CodegenError, InvalidPlan, MissingColumns, UnknownBackend, UnsafeIdentifier};
pub use pyspark::{PySparkBackend, PySparkConfig, PySparkMode};
pub use sql::{SqlBackend, SqlConfig, SqlDialect};
pub use validate::{
    SchemaContract, StaticValidationResult, validate_artifact, validate_artifact_with,
};

/// Generates with `backend` and statically validates the result: the one call the kernel
/// and the CLI need. Identifiers are checked before anything is produced.
pub fn generate_validated(
    backend: &dyn Backend,
    plan: &cfa_plan::ExecutionPlan,
    signature: &cfa_types::StateSignature,
) -> Result<(GeneratedArtifact, StaticValidationResult), CodegenError> {
    let artifact = backend.generate(plan, signature)?;
    let validation = backend.validate(&artifact, signature);
    Ok((artifact, validation))
}
