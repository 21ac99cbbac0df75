//! The audit log: the [`AuditStore`] boundary and its stores ([`JsonlStore`] with
//! cross-process locking and torn-tail repair, `SqliteStore` with feature `sqlite`, [`MemoryStore`]), the
//! event format, one-pass verification ([`verify_file`], [`AuditStore::verify`]), signed
//! checkpoints and offline proofs, and the audited policy check the faces record.
//! Re-exported from cfa-audit; maintenance internals (Merkle ranges, retention,
//! checkpoint files) stay in cfa-audit itself.
//!
//! ```
//! use cfa::audit::{AuditStore, Durability, JsonlStore, VerifyOptions, verify_file};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.jsonl");
//! let store = JsonlStore::open(&path, Durability::Always)?;
//! assert!(store.is_empty()?);
//! let report = verify_file(&path, &VerifyOptions::default(), &mut |_| {})?;
//! assert!(report.intact());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The SQLite audit store (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use cfa_audit::SqliteStore;
/// Verifies a JSONL chain read from any reader (standard input, a pipe), in one pass.
pub use cfa_audit::verify::verify_reader;
pub use cfa_audit::{
    AuditError, AuditEvent, AuditStore, AuditTarget, BadEvent, BadReason, Checkpoint, Clock,
    ContentStore, Durability, FixedClock, JsonlStore, MemoryStore, NewEvent, OfflineProof,
    RepairOutcome, SignerKey, SystemClock, VerifierKey, VerifyOptions, VerifyReport, repair,
    verify_file,
};
// The policy-check event is the kernel's: see [`crate::PolicyCheck`].

/// RFC 6962 Merkle trees over event hashes: leaves, roots and inclusion proofs.
pub mod merkle {
    pub use cfa_audit::merkle::{Hash, event_leaf, inclusion_proof, root, verify_inclusion};
}

/// The JSONL store's torn-tail handling: what a repair moved aside, and a read-only
/// report of a log's tail.
pub mod jsonl {
    pub use cfa_audit::jsonl::{REPAIR_EVENT_TYPE, TailReport, TornRepair, tail_report};
}

/// Log-level operations over either store (feature `sqlite`): sign a checkpoint over a
/// verified log, check a log against a signed checkpoint (consistency proof), and build
/// an offline inclusion proof of one event. Re-exported from cfa-audit for embedders that
/// verify logs (the Python package `cfa`).
#[cfg(feature = "sqlite")]
pub mod checkpoint {
    pub use cfa_audit::checkpoint::{
        CheckpointCheck, create_checkpoint, prove_event, verify_target, verify_with_checkpoint,
    };
    pub use cfa_audit::proof::ProvenEvent;
}
