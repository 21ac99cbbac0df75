//! Backtests for every face (`cfa policy backtest`, `POST /v1/policy/backtest`,
//! `cfa_policy_backtest`): every decision recorded in an audit log decided again with a
//! candidate bundle through cfa-kernel's [`replay`], from the signatures and catalogs
//! stored beside the log by their hashes, and the `cfa.policy_backtest.v1` document: each
//! decision that would change with an RFC 6962 inclusion proof of its original event
//! against the log's Merkle root (and, given a signed checkpoint, an offline proof).
//! A backtest only reads: it writes no event and creates no file.

use super::error::FaceError;
use crate::load::LoadedPolicy;
use cfa::audit::{AuditEvent, AuditTarget, ContentStore, OfflineProof};
use cfa::kernel::replay::{RecordedDecision, Replayed, replay};
use cfa_audit::merkle::{self, Hash};
use cfa_audit::{SqliteStore, VerifyOptions};
use serde_json::{Value, json};
use std::ops::ControlFlow;

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The log's hash chain is broken: nothing is replayed from it.
    #[error(
        "cannot replay {log}: the chain is broken at event {index} (line {line}): {reason}; run `cfa audit verify` first"
    )]
    Broken {
        /// The log, as named in messages.
        log: String,
        /// The first bad event.
        index: u64,
        /// Its line.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The log (or a proof over it) could not be read or built.
    #[error("cannot replay {log}: {reason}")]
    Replay {
        /// The log, as named in messages.
        log: String,
        /// What went wrong.
        reason: String,
    },
}

impl BacktestError {
    /// The face-level error: `audit_broken` for a broken chain, else `backtest_error`.
    pub fn face_error(&self) -> FaceError {
        let code = match self {
            Self::Broken { .. } => "audit_broken",
            Self::Replay { .. } => "backtest_error",
        };
        FaceError::new(code, self.to_string())
    }
}

/// What a backtest reads.
#[derive(Debug)]
pub struct Backtest<'a> {
    /// The audit log.
    pub target: &'a AuditTarget,
    /// The log as named in the document and in messages.
    pub log_name: String,
    /// Where the decision inputs are.
    pub inputs: ContentStore,
    /// The candidate bundle.
    pub policy: &'a LoadedPolicy,
    /// A signed checkpoint note of the log: each change also gets an offline proof.
    pub checkpoint: Option<String>,
    /// Whether events appended after the chain was verified are left out (a log a
    /// running server appends to) instead of refusing the read.
    pub live: bool,
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn events(target: &AuditTarget) -> Result<Vec<AuditEvent>, cfa::audit::AuditError> {
    let mut out = Vec::new();
    let mut push = |e: AuditEvent| {
        out.push(e);
        ControlFlow::Continue(())
    };
    match target {
        AuditTarget::Jsonl(p) => cfa_audit::jsonl::scan_file(p, &mut push)?,
        AuditTarget::Sqlite(p) => {
            use cfa::AuditStore;
            SqliteStore::open_read_only(p)?.scan(&mut push)?;
        }
    }
    Ok(out)
}

impl Backtest<'_> {
    /// Runs the backtest: the `cfa.policy_backtest.v1` document.
    pub fn run(&self) -> Result<Value, BacktestError> {
        let target = self.target;
        let cannot = |e: &dyn std::fmt::Display| BacktestError::Replay {
            log: self.log_name.clone(),
            reason: e.to_string(),
        };
        let opts = VerifyOptions {
            collect_leaves: true,
            ..VerifyOptions::default()
        };
        let report = cfa::audit::checkpoint::verify_target(target, &opts, &mut |_| {})
            .map_err(|e| cannot(&e))?;
        if let Some(bad) = &report.first_bad {
            return Err(BacktestError::Broken {
                log: self.log_name.clone(),
                index: bad.index,
                line: bad.line,
                reason: bad.reason.to_string(),
            });
        }
        let mut events = events(target).map_err(|e| cannot(&e))?;
        let leaves = &report.leaves;
        if self.live && events.len() > leaves.len() {
            // Appended after the verification: not part of the verified tree.
            events.truncate(leaves.len());
        }
        if leaves.len() != events.len() {
            return Err(cannot(&format!(
                "the log changed while it was read ({} events verified, {} read)",
                leaves.len(),
                events.len()
            )));
        }
        let policy = self.policy;
        let root = merkle::root(leaves);
        let size = leaves.len() as u64;
        let cap = policy.engine.max_replan_attempts();
        let (mut decisions, mut same) = (0usize, 0usize);
        let mut changes = Vec::new();
        let mut missing = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let Some(recorded) = RecordedDecision::of(i as u64, event, cap) else {
                continue;
            };
            decisions += 1;
            match replay(&recorded, &policy.engine, &self.inputs) {
                Replayed::Same => same += 1,
                Replayed::NotReplayable { reason } => missing.push(json!({
                    "index": recorded.index,
                    "event_hash": recorded.event_hash,
                    "decision_id": recorded.decision_id,
                    "intent_id": recorded.intent_id,
                    "stage": recorded.stage,
                    "reason": reason,
                })),
                Replayed::Changed {
                    action,
                    faults,
                    rules,
                } => {
                    let path =
                        merkle::inclusion_proof(leaves, recorded.index).map_err(|e| cannot(&e))?;
                    let leaf = merkle::event_leaf(&recorded.event_hash);
                    let verified =
                        merkle::verify_inclusion(&leaf, recorded.index, size, &path, &root).is_ok();
                    let mut proof = json!({
                        "leaf_index": recorded.index,
                        "tree_size": size,
                        "root": hex(&root),
                        "leaf": hex(&leaf),
                        "audit_path": path.iter().map(hex).collect::<Vec<_>>(),
                        "verified": verified,
                    });
                    if let (Some(note), Some(obj)) = (&self.checkpoint, proof.as_object_mut()) {
                        let line = cfa_audit::checkpoint::event_line(target, recorded.index)
                            .map_err(|e| cannot(&e))?;
                        let offline =
                            OfflineProof::build(leaves, recorded.index, line, note.clone())
                                .map_err(|e| cannot(&e))?;
                        obj.insert("offline_proof".into(), Value::String(offline.to_text()));
                    }
                    changes.push(json!({
                        "index": recorded.index,
                        "event_hash": recorded.event_hash,
                        "decision_id": recorded.decision_id,
                        "intent_id": recorded.intent_id,
                        "stage": recorded.stage,
                        "replan_count": recorded.replan_count,
                        "old": {"policy_bundle": recorded.policy_bundle_version,
                                "action": recorded.action, "faults": recorded.faults},
                        "new": {"policy_bundle": policy.engine.version(),
                                "action": action, "faults": faults, "rules": rules},
                        "proof": proof,
                    }));
                }
            }
        }
        Ok(json!({
            "schema_version": "cfa.policy_backtest.v1",
            "log": self.log_name,
            "inputs": self.inputs.dir().display().to_string(),
            "candidate": {"policy_bundle": policy.engine.version(),
                          "policy_bundle_hash": policy.hash, "source": policy.source},
            "events": events.len(),
            "decisions": decisions,
            "replayed": same + changes.len(),
            "unchanged": same,
            "changed": changes.len(),
            "not_replayable": missing.len(),
            "root": hex(&root),
            "tree_size": size,
            "changes": changes,
            "missing": missing,
        }))
    }
}

/// The backtest of the audit log a long-running face records into, with `policy` as
/// the candidate: the JSONL file and the inputs stored beside it (a PostgreSQL chain
/// keeps no inputs to replay from: `backtest_unavailable`).
pub fn of_face_log(
    gov: &super::decide::Governance,
    policy: &LoadedPolicy,
) -> Result<Value, FaceError> {
    let Some(log) = gov.audit() else {
        return Err(FaceError::new(
            "no_audit_log",
            "the server has no audit log to backtest: start it with --audit-log FILE",
        ));
    };
    let (Some(file), Some(inputs)) = (log.file(), log.inputs()) else {
        return Err(FaceError::new(
            "backtest_unavailable",
            format!(
                "the server records into {}, which keeps no decision inputs to replay: \
                 export it with `cfa audit export` and run `cfa policy backtest`",
                log.path().display()
            ),
        ));
    };
    let target = AuditTarget::Jsonl(file.to_path_buf());
    Backtest {
        target: &target,
        log_name: file.display().to_string(),
        inputs: ContentStore::open(inputs.dir().to_path_buf()),
        policy,
        checkpoint: None,
        live: true,
    }
    .run()
    .map_err(|e| e.face_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_messages_and_get_codes() {
        let broken = BacktestError::Broken {
            log: "a.jsonl".into(),
            index: 2,
            line: 3,
            reason: "bad hash".into(),
        };
        assert_eq!(
            broken.to_string(),
            "cannot replay a.jsonl: the chain is broken at event 2 (line 3): bad hash; run `cfa audit verify` first"
        );
        assert_eq!(broken.face_error().code, "audit_broken");
        let other = BacktestError::Replay {
            log: "a.jsonl".into(),
            reason: "gone".into(),
        };
        assert_eq!(other.face_error().code, "backtest_error");
    }

    #[test]
    fn an_empty_log_backtests_to_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        std::fs::write(&log, "").unwrap();
        let target = AuditTarget::Jsonl(log.clone());
        let policy = crate::load::default_policy();
        let doc = Backtest {
            target: &target,
            log_name: "audit.jsonl".into(),
            inputs: ContentStore::beside(&log),
            policy: &policy,
            checkpoint: None,
            live: false,
        }
        .run()
        .unwrap();
        assert_eq!(doc["decisions"], 0);
        assert_eq!(doc["changed"], 0);
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
    }
}
