//! Typed errors of the control plane.

/// Why a control-plane operation failed. Nothing was changed when one is returned:
/// every write is one SQL transaction.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("control store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (the DSN is never part of the message).
    #[cfg(feature = "postgres")]
    #[error("control store postgres {database}: {message}")]
    Postgres {
        /// The server as `user@host:port/dbname`.
        database: String,
        /// What failed.
        message: String,
    },
    /// The database file does not exist (a reader never creates it).
    #[error("control store {path}: no such file")]
    NotFound {
        /// The path that was given.
        path: String,
    },
    /// A stored row could not be read back.
    #[error("control store {path}: bad stored value in {what}: {reason}")]
    Corrupt {
        /// The database file.
        path: String,
        /// Table and key.
        what: String,
        /// Why.
        reason: String,
    },
    /// A kill-switch scope that is not `*`, `domain:NAME`, `target:NAME` or `agent:ID`.
    #[error(
        "bad scope '{scope}': expected '*', 'domain:NAME', 'target:NAME' or 'agent:ID' (NAME non-empty, no spaces)"
    )]
    BadScope {
        /// The text that was given.
        scope: String,
    },
    /// A timestamp that is not RFC 3339 / ISO 8601 with an offset.
    #[error("bad timestamp '{value}': expected RFC 3339, e.g. 2026-01-01T00:00:00+00:00")]
    BadTimestamp {
        /// The text that was given.
        value: String,
    },
    /// No ticket has this id.
    #[error("no approval ticket '{id}'")]
    UnknownTicket {
        /// The id that was given.
        id: String,
    },
    /// The ticket is not pending, so it cannot be approved or denied.
    #[error(
        "approval ticket '{id}' is {status}, not pending: it can no longer be approved or denied"
    )]
    NotPending {
        /// The ticket id.
        id: String,
        /// Its current status.
        status: crate::approval::TicketStatus,
    },
    /// The ticket expired before it was approved or denied.
    #[error("approval ticket '{id}' expired at {expires_at}")]
    Expired {
        /// The ticket id.
        id: String,
        /// When it expired.
        expires_at: String,
    },
    /// A ticket with this id already exists.
    #[error("approval ticket '{id}' already exists")]
    DuplicateTicket {
        /// The ticket id.
        id: String,
    },
    /// A required text (who, why) is empty.
    #[error("{what} must not be empty")]
    Empty {
        /// What was empty (`--by`, `--reason`).
        what: &'static str,
    },
    /// The store's lock was poisoned.
    #[error("control store lock poisoned")]
    Poisoned,
}

/// Parses an RFC 3339 timestamp (`2026-01-01T00:00:00+00:00`, `…Z`).
pub fn parse_time(value: &str) -> Result<jiff::Timestamp, ControlError> {
    value
        .trim()
        .parse::<jiff::Timestamp>()
        .map_err(|_| ControlError::BadTimestamp {
            value: value.to_owned(),
        })
}
