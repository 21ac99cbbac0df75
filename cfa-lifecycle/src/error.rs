//! Typed errors of the lifecycle crate.

use crate::lease::LeaseHeld;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (feature `postgres`); never holds the DSN or its password.
    #[cfg(feature = "postgres")]
    #[error("postgres lease store {database}: {message}")]
    Postgres {
        /// The database, as `user@host:port/dbname`.
        database: String,
        /// What failed.
        message: String,
    },
    /// The database file does not exist (or is not a regular file).
    #[error("state database {path}: no such file")]
    NotFound {
        /// The path that was given.
        path: String,
    },
    /// The file exists but is not a CFA lifecycle database: not SQLite at all, or
    /// without the lifecycle tables. Nothing was written to it.
    #[error("{path} is not a CFA lifecycle database: {reason}")]
    Foreign {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
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
