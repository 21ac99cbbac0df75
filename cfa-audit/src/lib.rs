//! Σ audit: the SHA-256 hash-chained audit log of CFA. It owns the event format and
//! hash recipe (byte-compatible with cfa-kernel 1.1.0), prepared events (line and hash
//! written up to the previous hash before a store takes its lock), the stores (JSONL file with
//! cross-process locking and torn-tail repair, SQLite, PostgreSQL shared by replicas,
//! memory; concurrent appenders to the JSONL, SQLite and PostgreSQL stores are
//! group-committed), one-pass verification,
//! RFC 6962 Merkle checkpoints signed as C2SP notes, offline inclusion proofs,
//! anchored retention, and a content-addressed store of the documents a caller keeps beside a
//! log to re-evaluate its events ([`ContentStore`], opaque text by hash). It must NOT know about policies, signatures, catalogs or the
//! kernel: it defines no event of its own (the policy-check event belongs to
//! cfa-kernel), callers hand it finished details, and timestamps are injected.
//!
//! # Example: append and verify a chain
//!
//! ```
//! use cfa_audit::{AuditEvent, AuditStore, Durability, JsonlStore, NewEvent, VerifyOptions, verify_file};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.jsonl");
//! let store = JsonlStore::open(&path, Durability::Always)?; // locked, fsynced appends
//! let first = store.append(
//!     NewEvent::new("intent-1", "policy_check", "policy_evaluation", "approve",
//!                   "2026-01-01T00:00:00+00:00")
//!         .detail("reasoning", "All rules passed. Execution approved."),
//! )?;
//! let second = store.append(NewEvent::new(
//!     "intent-1", "policy_check", "policy_evaluation", "block", "2026-01-01T00:00:01+00:00",
//! ))?;
//! assert_eq!(first.previous_hash, ""); // genesis
//! assert_eq!(second.previous_hash, first.event_hash); // the chain
//! assert_eq!(first.event_hash, first.compute_hash()); // the reference's recipe
//! drop(store);
//!
//! // One streaming pass over the file.
//! let report = verify_file(&path, &VerifyOptions::default(), &mut |_| {})?;
//! assert!(report.intact());
//! assert_eq!(report.events, 2);
//! assert_eq!(report.tail_hash, second.event_hash);
//!
//! // Change one hashed field of the first line: verification names the event.
//! let text = std::fs::read_to_string(&path)?;
//! std::fs::write(&path, text.replacen("\"approve\"", "\"replan\"", 1))?;
//! let report = verify_file(&path, &VerifyOptions::default(), &mut |_| {})?;
//! assert!(!report.intact());
//! assert_eq!(report.first_bad.map(|b| b.index), Some(0));
//!
//! // Lines are the reference's JSONL layout and read back exactly.
//! let line = std::fs::read_to_string(&path)?.lines().nth(1).unwrap_or_default().to_owned();
//! assert_eq!(AuditEvent::from_jsonl_line(&line).ok(), Some(second));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "sqlite")]
pub mod checkpoint;
pub mod content;
pub mod error;
pub mod event;
mod fastline;
mod group;
pub mod jsonl;
pub mod lines;
pub mod merkle;
pub mod note;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod prepared;
pub mod proof;
pub mod retain;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod target;
pub mod time;
pub mod verify;

pub use content::ContentStore;
pub use error::AuditError;
pub use event::{AuditEvent, NewEvent};
pub use group::{HashTurn, QueuedAppend, QueuedHashes, Turn};
pub use jsonl::{JsonlStore, RepairOutcome, repair, verify_file};
pub use note::{Checkpoint, SignerKey, VerifierKey};
#[cfg(feature = "postgres")]
pub use postgres::{PgExport, PgHead, PgStore};
pub use prepared::{
    DetailKeys, DetailValue, EventBuilder, Head, PreparedEvent, QuotedDetails, QuotedStr,
    write_str_array,
};
pub use proof::OfflineProof;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{AuditStore, Durability, MemoryStore};
pub use target::AuditTarget;
pub use time::{Clock, FixedClock, SystemClock};
pub use verify::{BadEvent, BadReason, VerifyOptions, VerifyReport};
