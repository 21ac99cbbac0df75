//! Typed errors of code generation and the backend registry.

/// An identifier that failed the strict grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing unsafe identifier {shown} from {origin}: {reason}")]
pub struct UnsafeIdentifier {
    /// The offending value, escaped for display (`{:?}` form).
    pub shown: String,
    /// Where it came from, e.g. `signature.datasets[1].pii_columns[0]`.
    pub origin: String,
    /// Which rule it broke.
    pub reason: String,
}

/// A backend name nobody registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend '{name}' (registered: {})", known.join(", "))]
pub struct UnknownBackend {
    /// The requested name.
    pub name: String,
    /// Registered names, sorted.
    pub known: Vec<String>,
}

/// A backend needs every dataset's column list and one is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "backend '{backend}' needs the column list of dataset '{dataset}': add \"columns\": [...] to catalog.datasets.{dataset} and pass the catalog"
)]
pub struct MissingColumns {
    /// The backend.
    pub backend: String,
    /// The dataset.
    pub dataset: String,
}

/// The plan and the signature do not describe the same job, or the plan is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid plan for backend '{backend}': {reason}")]
pub struct InvalidPlan {
    /// The backend.
    pub backend: String,
    /// What is wrong.
    pub reason: String,
}

/// Why code could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodegenError {
    /// An identifier from the signature, catalog or plan is unsafe.
    #[error(transparent)]
    UnsafeIdentifier(#[from] UnsafeIdentifier),
    /// The backend name is not registered.
    #[error(transparent)]
    UnknownBackend(#[from] UnknownBackend),
    /// A column list the backend needs is missing.
    #[error(transparent)]
    MissingColumns(#[from] MissingColumns),
    /// The plan is malformed or does not match the signature.
    #[error(transparent)]
    InvalidPlan(#[from] InvalidPlan),
    /// A backend with this name is already registered.
    #[error("a backend named '{0}' is already registered")]
    DuplicateBackend(String),
}
