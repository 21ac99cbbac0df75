//! Errors building a kernel (processing never errors: it blocks).

/// Why a [`crate::Kernel`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configured backend is not registered.
    #[error(transparent)]
    Backend(#[from] cfa_codegen::CodegenError),
}
