//! Typed errors of the sandbox crate.

/// A sandbox name no factory is registered under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox '{name}'; available: {}", available.join(", "))]
pub struct UnknownSandbox {
    /// The name asked for.
    pub name: String,
    /// The registered names, sorted.
    pub available: Vec<String>,
}

/// A sandbox that could not start, commit or roll back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sandbox '{sandbox}' failed to {operation}: {reason}")]
pub struct SandboxFailure {
    /// The sandbox name.
    pub sandbox: String,
    /// What it was doing (`connect`, `begin`, `commit`, `rollback`, …).
    pub operation: String,
    /// Why.
    pub reason: String,
}

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No sandbox has that name.
    #[error(transparent)]
    Unknown(#[from] UnknownSandbox),
    /// The sandbox itself failed.
    #[error(transparent)]
    Failure(#[from] SandboxFailure),
    /// The plan's steps cannot be ordered.
    #[error("the plan cannot be executed: {0}")]
    Plan(String),
    /// A sandbox with this name is already registered.
    #[error("sandbox '{0}' is already registered")]
    Duplicate(String),
}

impl SandboxError {
    /// A [`SandboxFailure`].
    pub fn failure(sandbox: &str, operation: &str, reason: impl Into<String>) -> Self {
        SandboxError::Failure(SandboxFailure {
            sandbox: sandbox.to_owned(),
            operation: operation.to_owned(),
            reason: reason.into(),
        })
    }
}
