//! Log-level operations over either store: verify, sign a checkpoint, check a log
//! against a checkpoint (consistency proof), and build an offline inclusion proof.

use crate::error::{AuditError, IoError, ProofError};
use crate::event::AuditEvent;
use crate::jsonl;
use crate::merkle;
use crate::note::{Checkpoint, SignerKey, VerifierKey};
use crate::proof::OfflineProof;
use crate::sqlite::SqliteStore;
use crate::store::AuditStore;
use crate::target::AuditTarget;
use crate::verify::{VerifyOptions, VerifyReport};
use std::io::BufReader;
use std::ops::ControlFlow;

/// Verifies a JSONL or SQLite log (a missing file is an error).
pub fn verify_target(
    target: &AuditTarget,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, AuditError> {
    match target {
        AuditTarget::Jsonl(p) => jsonl::verify_file(p, opts, progress),
        AuditTarget::Sqlite(p) => SqliteStore::open_read_only(p)?.verify(opts),
    }
}

fn require_intact(target: &AuditTarget, report: &VerifyReport) -> Result<(), AuditError> {
    require_intact_named(&target_name(target), report)
}

fn require_intact_named(name: &str, report: &VerifyReport) -> Result<(), AuditError> {
    match &report.first_bad {
        None => Ok(()),
        Some(bad) => Err(crate::error::InvalidEventError {
            source_name: name.to_owned(),
            reason: format!(
                "the chain is broken at event {} (line {}): {}",
                bad.index, bad.line, bad.reason
            ),
        }
        .into()),
    }
}

/// The file a target names, for messages.
pub fn target_name(target: &AuditTarget) -> String {
    match target {
        AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p) => p.display().to_string(),
    }
}

/// Verifies the log (it must be intact) and signs a checkpoint over its current size
/// and Merkle root. Returns the checkpoint and its signed note.
pub fn create_checkpoint(
    target: &AuditTarget,
    origin: &str,
    key: &SignerKey,
    allow_legacy: bool,
) -> Result<(Checkpoint, String), AuditError> {
    let opts = VerifyOptions {
        merkle: true,
        allow_legacy,
        ..VerifyOptions::default()
    };
    let report = verify_target(target, &opts, &mut |_| {})?;
    sign_report(&target_name(target), report, origin, key)
}

/// Signs a checkpoint over a verification `report` of the log named `name` (made with
/// [`VerifyOptions::merkle`], by any store's verifier, e.g. the PostgreSQL one): the
/// chain must be intact. Returns the checkpoint and its signed note.
pub fn sign_report(
    name: &str,
    report: VerifyReport,
    origin: &str,
    key: &SignerKey,
) -> Result<(Checkpoint, String), AuditError> {
    require_intact_named(name, &report)?;
    let tree = report.tree.unwrap_or_default();
    let cp = Checkpoint {
        origin: origin.to_owned(),
        size: tree.size(),
        root: tree.root(),
    };
    let note = cp.sign(key)?;
    Ok((cp, note))
}

/// The result of checking a log against a signed checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointCheck {
    /// The chain verification.
    pub report: VerifyReport,
    /// The (signature-verified) checkpoint.
    pub checkpoint: Checkpoint,
    /// Why the log is not an extension of the checkpointed log (`None`: it is).
    pub problem: Option<String>,
}

/// Verifies the checkpoint's signature, the chain, and a consistency proof from the
/// checkpoint's size to the log's current size: truncation and rewrites of covered
/// events are caught. Keeps 32 bytes per event in memory for the proof.
pub fn verify_with_checkpoint(
    target: &AuditTarget,
    note: &str,
    key: &VerifierKey,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<CheckpointCheck, AuditError> {
    let checkpoint = Checkpoint::open(note, key)?;
    let mut o = opts.clone();
    o.merkle = true;
    o.collect_leaves = true;
    let report = verify_target(target, &o, progress)?;
    check_report(report, checkpoint)
}

/// Checks a verification `report` made with [`VerifyOptions::merkle`] and
/// [`VerifyOptions::collect_leaves`] (by any store's verifier) against a checkpoint
/// whose signature was verified ([`Checkpoint::open`]): a consistency proof from the
/// checkpoint's size to the log's.
pub fn check_report(
    report: VerifyReport,
    checkpoint: Checkpoint,
) -> Result<CheckpointCheck, AuditError> {
    let n = report.leaves.len() as u64;
    let problem = if report.first_bad.is_some() {
        None
    } else if n < checkpoint.size {
        Some(format!(
            "the log has {n} events but the checkpoint covers {}: events were removed",
            checkpoint.size
        ))
    } else {
        let proof = merkle::consistency_proof(&report.leaves, checkpoint.size)?;
        merkle::verify_consistency(
            checkpoint.size,
            n,
            &checkpoint.root,
            &merkle::root(&report.leaves),
            &proof,
        )
        .err()
        .map(|e| e.reason)
    };
    Ok(CheckpointCheck {
        report,
        checkpoint,
        problem,
    })
}

/// The stored line of event `index` (JSONL: the raw trimmed line; SQLite: the
/// reference line layout of the row).
pub fn event_line(target: &AuditTarget, index: u64) -> Result<String, AuditError> {
    let missing = || ProofError::new(format!("{} has no event {index}", target_name(target)));
    match target {
        AuditTarget::Jsonl(p) => {
            let f = std::fs::File::open(p).map_err(|e| IoError::new(p, "open", e))?;
            let mut i = 0u64;
            let mut found = None;
            crate::lines::for_each_event_line(BufReader::new(f), &mut |_, _, line| {
                if i == index {
                    found = Some(String::from_utf8_lossy(line).into_owned());
                    return ControlFlow::Break(());
                }
                i += 1;
                ControlFlow::Continue(())
            })
            .map_err(|e| IoError::new(p, "read", e))?;
            found.ok_or_else(|| missing().into())
        }
        AuditTarget::Sqlite(p) => {
            let store = SqliteStore::open_read_only(p)?;
            let mut found: Option<AuditEvent> = None;
            let mut i = 0u64;
            store.scan(&mut |e| {
                if i == index {
                    found = Some(e);
                    return ControlFlow::Break(());
                }
                i += 1;
                ControlFlow::Continue(())
            })?;
            found
                .map(|e| e.to_jsonl_line())
                .ok_or_else(|| missing().into())
        }
    }
}

/// Builds the offline proof that event `index` is in the log covered by `checkpoint_note`.
pub fn prove_event(
    target: &AuditTarget,
    index: u64,
    checkpoint_note: String,
    allow_legacy: bool,
) -> Result<OfflineProof, AuditError> {
    let opts = VerifyOptions {
        collect_leaves: true,
        allow_legacy,
        ..VerifyOptions::default()
    };
    let report = verify_target(target, &opts, &mut |_| {})?;
    require_intact(target, &report)?;
    let line = event_line(target, index)?;
    OfflineProof::build(&report.leaves, index, line, checkpoint_note)
}
