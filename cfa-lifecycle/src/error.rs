//! Typed errors of the lifecycle crate.

use crate::lease::LeaseHeld;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// A stored value could not be read.
    #[error("state database {path}: bad stored value in {what}: {reason}")]
    Corrupt {
        /// The database file.
        path: String,
        /// Table and key.
        what: String,
        /// Why.
        reason: String,
    },
    /// Another holder owns the target's lease.
    #[error(transparent)]
    Leased(#[from] LeaseHeld),
    /// The memory store's lock was poisoned.
    #[error("state store lock poisoned")]
    Poisoned,
}
