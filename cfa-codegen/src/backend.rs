//! The `Backend` trait (the generate phase boundary) and the `BackendRegistry`.

use crate::artifact::GeneratedArtifact;
use crate::error::{CodegenError, UnknownBackend};
use crate::validate::StaticValidationResult;
use cfa_plan::ExecutionPlan;
use cfa_types::StateSignature;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a backend supports (docs/compatibility.md#static-validation-codes, plus what our static validation checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendCapabilities {
    /// Backend name.
    pub name: String,
    /// Target platform version label.
    pub version: String,
    /// Supported PII treatments.
    pub pii_methods: Vec<String>,
    /// Whether the backend has a cost model.
    pub cost_model: bool,
    /// Largest row count the backend is sized for.
    pub max_rows: u64,
    /// Languages in the artifact.
    pub languages: Vec<String>,
    /// MERGE / upsert writes.
    pub supports_merge: bool,
    /// Partition overwrite writes.
    pub supports_partition_overwrite: bool,
    /// PII anonymisation in generated code.
    pub supports_anonymization: bool,
    /// Typed schema enforcement on write.
    pub supports_schema_enforcement: bool,
    /// Whether generation needs catalog column lists.
    pub requires_catalog_columns: bool,
    /// Fault codes the static validation of this backend can raise.
    pub static_checks: Vec<String>,
}

/// A code-generation backend. Implementations must be deterministic and must refuse
/// unsafe identifiers (see [`crate::ident`]) before producing any code.
pub trait Backend: Send + Sync {
    /// Registry name, e.g. `sql`.
    fn name(&self) -> &str;
    /// Capabilities.
    fn capabilities(&self) -> BackendCapabilities;
    /// Generates the artifact for `plan` (planned from `signature`), in memory.
    fn generate(
        &self,
        plan: &ExecutionPlan,
        signature: &StateSignature,
    ) -> Result<GeneratedArtifact, CodegenError>;
    /// [`Backend::generate`] behind a shared handle: the same artifact, for callers
    /// that only read it (the kernel). The default wraps [`Backend::generate`]; the
    /// `pyspark` backend hands out the artifact its cache holds without copying it.
    fn generate_shared(
        &self,
        plan: &ExecutionPlan,
        signature: &StateSignature,
    ) -> Result<Arc<GeneratedArtifact>, CodegenError> {
        self.generate(plan, signature).map(Arc::new)
    }
    /// Statically validates an artifact this backend produced, on a parsed form.
    fn validate(
        &self,
        artifact: &GeneratedArtifact,
        signature: &StateSignature,
    ) -> StaticValidationResult;
    /// [`Backend::validate`] of an artifact behind a shared handle (what
    /// [`Backend::generate_shared`] hands out): the same result. The default calls
    /// [`Backend::validate`]; the `pyspark` backend remembers a thread's last results by
    /// the handle.
    fn validate_shared(
        &self,
        artifact: &Arc<GeneratedArtifact>,
        signature: &StateSignature,
    ) -> StaticValidationResult {
        self.validate(artifact, signature)
    }
}

/// The configurations of the built-in backends ([`BackendRegistry::with_options`]);
/// the default is what [`BackendRegistry::with_builtins`] registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// The `pyspark` backend (its output mode).
    pub pyspark: crate::pyspark::PySparkConfig,
    /// The `sql` backend.
    pub sql: crate::sql::SqlConfig,
    /// The `dbt` backend.
    pub dbt: crate::dbt::DbtConfig,
}

/// Backends by name. [`BackendRegistry::with_builtins`] registers `pyspark`, `sql`
/// and `dbt`; plugins add theirs with [`BackendRegistry::register`].
#[derive(Default)]
pub struct BackendRegistry {
    backends: BTreeMap<String, Box<dyn Backend>>,
}

impl std::fmt::Debug for BackendRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendRegistry")
            .field("backends", &self.names())
            .finish()
    }
}

impl BackendRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the three built-in backends with default configs.
    pub fn with_builtins() -> Self {
        Self::with_options(&BackendOptions::default())
    }

    /// A registry holding the three built-in backends configured by `options`.
    pub fn with_options(options: &BackendOptions) -> Self {
        let mut r = Self::new();
        let builtins: [Box<dyn Backend>; 3] = [
            Box::new(crate::pyspark::PySparkBackend {
                config: options.pyspark,
            }),
            Box::new(crate::sql::SqlBackend {
                config: options.sql.clone(),
            }),
            Box::new(crate::dbt::DbtBackend {
                config: options.dbt.clone(),
            }),
        ];
        for b in builtins {
            r.backends.insert(b.name().to_owned(), b);
        }
        r
    }

    /// Registers a backend; a second backend with the same name is refused.
    pub fn register(&mut self, backend: Box<dyn Backend>) -> Result<(), CodegenError> {
        let name = backend.name().to_owned();
        if self.backends.contains_key(&name) {
            return Err(CodegenError::DuplicateBackend(name));
        }
        self.backends.insert(name, backend);
        Ok(())
    }

    /// The backend called `name`, or an error listing the registered names.
    pub fn get(&self, name: &str) -> Result<&dyn Backend, CodegenError> {
        self.backends.get(name).map(Box::as_ref).ok_or_else(|| {
            CodegenError::UnknownBackend(UnknownBackend {
                name: name.to_owned(),
                known: self.names(),
            })
        })
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.backends.keys().cloned().collect()
    }

    /// Backends in name order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Backend> {
        self.backends.values().map(Box::as_ref)
    }
}
