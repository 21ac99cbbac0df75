//! Σ audit: the SHA-256 hash-chained audit log of CFA. It owns the event format and
//! hash recipe (byte-compatible with cfa-kernel 1.1.0), the stores (JSONL file with
//! cross-process locking and torn-tail repair, SQLite, memory), one-pass verification,
//! RFC 6962 Merkle checkpoints signed as C2SP notes, offline inclusion proofs and
//! anchored retention. It must NOT know about policies, signatures, catalogs or the
//! kernel: callers hand it finished details, and timestamps are injected.

#[cfg(feature = "sqlite")]
pub mod checkpoint;
pub mod error;
pub mod event;
mod fastline;
pub mod jsonl;
pub mod lines;
pub mod merkle;
pub mod note;
#[cfg(feature = "sqlite")]
pub mod policy;
pub mod proof;
pub mod retain;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod time;
pub mod verify;

pub use error::AuditError;
pub use event::{AuditEvent, NewEvent};
pub use jsonl::{JsonlStore, RepairOutcome, repair, verify_file};
pub use note::{Checkpoint, SignerKey, VerifierKey};
#[cfg(feature = "sqlite")]
pub use policy::{AuditTarget, PolicyCheckRecord, record_policy_check};
pub use proof::OfflineProof;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{AuditStore, Durability, MemoryStore};
pub use time::{Clock, FixedClock, SystemClock};
pub use verify::{BadEvent, BadReason, VerifyOptions, VerifyReport};
