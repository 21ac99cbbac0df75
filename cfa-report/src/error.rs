//! [`ReportError`]: why a report could not be built or written.

use std::path::PathBuf;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The audit log could not be read.
    #[error("cannot read audit log {source_name}: {reason}")]
    Audit {
        /// The log's file name.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The lifecycle database could not be read.
    #[error("cannot read lifecycle database {path}: {reason}")]
    Lifecycle {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint or verifier key file could not be read or is invalid.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The execution report was asked for an intent the log does not hold.
    #[error("intent {intent_id} has no events in {source_name} in the last {period_days} days")]
    UnknownIntent {
        /// The intent id asked for.
        intent_id: String,
        /// The log's file name.
        source_name: String,
        /// The period searched.
        period_days: u32,
    },
    /// The execution report was asked for but the log holds no run at all.
    #[error("{source_name} holds no run to report (no events in the period)")]
    NoRun {
        /// The log's file name.
        source_name: String,
    },
    /// Writing the output failed (nothing was left half-written).
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
