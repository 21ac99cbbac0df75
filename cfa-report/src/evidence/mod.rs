//! Evidence bundles an auditor can check offline: one directory per run (the events of
//! one intent id) holding what the run was decided on and what it did, each fact tied to
//! the hash-chained audit log by an inclusion proof against a signed checkpoint.
//!
//! | file | what |
//! |---|---|
//! | `run_summary.json` | intent id, decision ids, final state, decision, timestamps from the events |
//! | `provenance.json` | inputs by hash (signature, catalog, bundle, generated artifacts), the decision, sandbox metrics, the state projected (and the lifecycle database's records of the run when given) |
//! | `toolchain.json` | cfa version, backend, sandbox, audit store, platform (os/arch) |
//! | `human_review.json` | the approval tickets of the run (from its `control` events) |
//! | `statement.intoto.json` | an in-toto Statement v1 over the artifact and event digests, predicate [`FORMAT`] |
//! | `statement.dsse.json` | the statement in a DSSE envelope signed with Ed25519 (only when a key is given) |
//! | `audit/events.jsonl` | the run's events, the exact lines of the log |
//! | `audit/checkpoint` | the signed checkpoint the proofs are against |
//! | `audit/proofs/<index>.proof` | a C2SP tlog-proof per event (`cfa audit verify-proof` reads it) |
//! | `manifest.json` | every other file with its SHA-256 and size |
//!
//! Every document except the checkpoint, proofs and DSSE envelope is a function of the
//! events (plus the cfa version, platform and lifecycle records, which are carried
//! as they are): [`verify`] rebuilds them from `audit/events.jsonl` and compares bytes, so
//! an edit anywhere is named by file and JSON path.
//!
//! ```
//! use cfa_audit::{AuditStore as _, Durability, JsonlStore, NewEvent, SignerKey, AuditTarget};
//! use cfa_report::evidence::{self, ExportOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("audit.jsonl");
//! let store = JsonlStore::open(&log, Durability::Never)?;
//! store.append(NewEvent::new("i-1", "govern", "policy_evaluation", "approve",
//!     "2026-01-05T10:00:00+00:00").detail("faults", serde_json::json!([])))?;
//! store.append(NewEvent::new("i-1", "validate", "final_decision", "approved",
//!     "2026-01-05T10:00:01+00:00"))?;
//! drop(store);
//! let key = SignerKey::from_seed("audit.example/log", [7; 32])?;
//! let bundle = evidence::export(&AuditTarget::Jsonl(log), &ExportOptions {
//!     key: Some(key.clone()),
//!     ..ExportOptions::new("i-1", "0.1.0")
//! })?;
//! assert!(bundle.files.contains_key("audit/proofs/1.proof"));
//! let report = evidence::verify(&bundle, &[key.verifier()]);
//! assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
//!
//! let mut edited = bundle.clone();
//! edited.files.insert("run_summary.json".into(), b"{}\n".to_vec());
//! let report = evidence::verify(&edited, &[key.verifier()]);
//! assert!(report.failures().any(|c| c.file == "run_summary.json"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bundle;
mod docs;
mod export;
mod verify;

#[cfg(test)]
mod tests;

pub use bundle::Bundle;
pub use export::{CheckpointNote, EvidenceError, ExportOptions, export};
pub use verify::{Check, VerifyReport, verify};

/// The evidence format: the in-toto predicate type and the `format` of every document.
pub const FORMAT: &str = "https://cfa.dev/evidence/v1";
/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payload type of an in-toto statement.
pub const DSSE_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `manifest.json`.
pub const MANIFEST: &str = "manifest.json";
/// `run_summary.json`.
pub const RUN_SUMMARY: &str = "run_summary.json";
/// `provenance.json`.
pub const PROVENANCE: &str = "provenance.json";
/// `toolchain.json`.
pub const TOOLCHAIN: &str = "toolchain.json";
/// `human_review.json`.
pub const HUMAN_REVIEW: &str = "human_review.json";
/// `statement.intoto.json`.
pub const STATEMENT: &str = "statement.intoto.json";
/// `statement.dsse.json` (only in bundles exported with a key).
pub const DSSE: &str = "statement.dsse.json";
/// `audit/events.jsonl`.
pub const EVENTS: &str = "audit/events.jsonl";
/// `audit/checkpoint`.
pub const CHECKPOINT: &str = "audit/checkpoint";

/// `audit/proofs/<index>.proof`: the proof file of the event at log index `index`.
pub fn proof_path(index: u64) -> String {
    format!("audit/proofs/{index}.proof")
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len type> <type> <len body> <body>`.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}
