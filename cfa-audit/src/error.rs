//! Typed errors of the audit crate. Every message names the file or input it is about.

use std::path::PathBuf;
use thiserror::Error;

/// Any failure of an audit operation.
#[derive(Debug, Error)]
pub enum AuditError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The log ends in a torn (incomplete) line; appending is refused until repaired.
    #[error(transparent)]
    TornTail(#[from] TornTailError),
    /// A stored event could not be read as an audit event.
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEventError),
    /// The SQLite store failed.
    #[error(transparent)]
    #[cfg(feature = "sqlite")]
    Sqlite(#[from] SqliteError),
    /// The PostgreSQL store failed (feature `postgres`); the message never holds the DSN.
    #[error(transparent)]
    #[cfg(feature = "postgres")]
    Postgres(#[from] PostgresError),
    /// A file given as an existing audit database is not one (nothing was written).
    #[error(transparent)]
    Foreign(#[from] ForeignStoreError),
    /// A key, signed note or checkpoint is malformed or does not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A Merkle proof could not be built or does not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// An I/O failure on a named file.
#[derive(Debug, Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct IoError {
    /// The file.
    pub path: PathBuf,
    /// What was being done (`open`, `read`, `write`, `lock`, …).
    pub op: &'static str,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// Wraps an OS error with the file and operation.
    pub fn new(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Self {
            path: path.into(),
            op,
            source,
        }
    }
}

/// The last line of a log is incomplete.
#[derive(Debug, Error)]
#[error(
    "audit log {} ends in a torn line at byte offset {offset} ({len} bytes); run `cfa audit repair --file {}` to move it aside",
    path.display(),
    path.display()
)]
pub struct TornTailError {
    /// The log file.
    pub path: PathBuf,
    /// Byte offset where the torn line starts.
    pub offset: u64,
    /// Number of torn bytes.
    pub len: u64,
}

/// A stored event is not a valid audit event.
#[derive(Debug, Error)]
#[error("invalid audit event in {source_name}: {reason}")]
pub struct InvalidEventError {
    /// The file or table the event came from.
    pub source_name: String,
    /// Why it is invalid.
    pub reason: String,
}

/// A SQLite failure on a named database.
#[cfg(feature = "sqlite")]
#[derive(Debug, Error)]
#[error("sqlite audit store {}: {source}", path.display())]
pub struct SqliteError {
    /// The database file.
    pub path: PathBuf,
    /// The driver error.
    #[source]
    pub source: rusqlite::Error,
}

/// A PostgreSQL failure, naming the server as `user@host:port/dbname` (never the DSN
/// or its password).
#[cfg(feature = "postgres")]
#[derive(Debug, Error)]
#[error("postgres audit store {target}: {message}")]
pub struct PostgresError {
    /// The database, as `user@host:port/dbname`.
    pub target: String,
    /// What failed, with the server's message (passwords removed).
    pub message: String,
}

/// A file that should be an audit database is not one: not SQLite at all, or without
/// the `audit_events` table.
#[derive(Debug, Error)]
#[error("{} is not a CFA audit database: {reason}", path.display())]
pub struct ForeignStoreError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// A key, note or checkpoint problem.
#[derive(Debug, Error)]
#[error("{what}: {reason}")]
pub struct NoteError {
    /// What was being read or checked (e.g. `verifier key`, `checkpoint`).
    pub what: String,
    /// Why it failed.
    pub reason: String,
}

impl NoteError {
    /// Builds a note error.
    pub fn new(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// A Merkle proof problem.
#[derive(Debug, Error)]
#[error("merkle proof: {reason}")]
pub struct ProofError {
    /// Why it failed.
    pub reason: String,
}

impl ProofError {
    /// Builds a proof error.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}
