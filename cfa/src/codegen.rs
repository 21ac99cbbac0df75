//! Code generation: the [`Backend`] trait and the [`BackendRegistry`] (built-ins:
//! PySpark, SQL for PostgreSQL, dbt), the [`GeneratedArtifact`] they produce with its
//! [`Provenance`], static validation of artifacts, and the identifier grammar every name
//! must pass before code is produced ([`ident`]). Re-exported from cfa-codegen.
//!
//! ```
//! use cfa::codegen::BackendRegistry;
//!
//! let registry = BackendRegistry::with_builtins();
//! assert!(registry.get("pyspark").is_ok());
//! assert!(registry.get("cobol").is_err());
//! ```

pub use cfa_codegen::{
    Backend, BackendCapabilities, BackendOptions, BackendRegistry, CodegenError, DbtBackend,
    DbtConfig, GeneratedArtifact, GeneratedFile, InvalidPlan, Language, MissingColumns, Provenance,
    PySparkBackend, PySparkConfig, PySparkMode, SchemaContract, SqlBackend, SqlConfig, SqlDialect,
    StaticValidationResult, UnknownBackend, UnsafeIdentifier, generate_validated,
    validate_artifact, validate_artifact_with,
};

/// The strict identifier grammar: every dataset, column and key name is checked before
/// any code is generated.
pub mod ident {
    pub use cfa_codegen::ident::{
        MAX_IDENT_LEN, check_all, check_identifier, check_plan, check_signature, identifier_problem,
    };
}
