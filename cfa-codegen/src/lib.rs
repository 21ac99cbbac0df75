//! Π generate: turns an [`cfa_plan::ExecutionPlan`] into PySpark / SQL (PostgreSQL) / dbt
//! artifacts through the [`Backend`] trait and [`BackendRegistry`], refuses any identifier
//! outside a strict grammar before producing code ([`ident`]), and statically validates
//! artifacts on a parsed form — sqlparser's AST for SQL and compiled dbt models, a Python
//! tokenizer for PySpark ([`validate`]). It must NOT know about policy rules, execution,
//! audit or I/O: artifacts live in memory and the caller writes them.

mod artifact;
mod backend;
pub mod dbt;
mod error;
pub mod ident;
pub mod pyspark;
mod query;
pub mod sql;
pub mod validate;

pub use artifact::{GeneratedArtifact, GeneratedFile, Language, Provenance};
pub use backend::{Backend, BackendCapabilities, BackendRegistry};
pub use dbt::{DbtBackend, DbtConfig};
pub use error::{CodegenError, InvalidPlan, MissingColumns, UnknownBackend, UnsafeIdentifier};
pub use pyspark::PySparkBackend;
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
