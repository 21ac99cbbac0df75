//! [`export`]: the bundle of one run, read from the audit log (and the lifecycle
//! database). It only reads: the log, the checkpoint and the database are never written;
//! a checkpoint signed here goes into the bundle only.

use super::docs::{self, Carried, RunEvent};
use super::{Bundle, CHECKPOINT, DSSE, DSSE_PAYLOAD_TYPE, EVENTS, MANIFEST, STATEMENT, proof_path};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cfa_audit::checkpoint::{target_name, verify_target};
use cfa_audit::{AuditEvent, AuditTarget, Checkpoint, OfflineProof, SignerKey, VerifyOptions};
use cfa_lifecycle::StateStore as _;
use serde_json::{Value, json};
use std::io::BufReader;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Why a bundle could not be exported, read or written.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The audit log could not be read.
    #[error("cannot read audit log {source_name}: {reason}")]
    Audit {
        /// The log.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The log's chain is broken: no evidence is exported from it.
    #[error(
        "audit log {source_name} is broken at event {index} (line {line}): {reason}; no evidence is exported from a broken chain"
    )]
    Broken {
        /// The log.
        source_name: String,
        /// 0-based index of the first bad event.
        index: u64,
        /// Its line (row id for SQLite).
        line: u64,
        /// Why.
        reason: String,
    },
    /// The log holds no event of the intent.
    #[error("intent {intent_id} has no events in {source_name}")]
    UnknownIntent {
        /// The intent asked for.
        intent_id: String,
        /// The log.
        source_name: String,
    },
    /// No checkpoint covers the run and no key was given to sign one.
    #[error(
        "no checkpoint covers the run's events in {source_name} (its last event is #{needed_index}){detail}: sign one with `cfa audit checkpoint --key K -o {source_name}.checkpoint`, or export with a signing key to sign one into the bundle (the log is never written)"
    )]
    NoCheckpoint {
        /// The log.
        source_name: String,
        /// Index of the run's last event.
        needed_index: u64,
        /// What the checkpoint found covers, if there was one.
        detail: String,
    },
    /// A checkpoint does not match the log, or a proof could not be built.
    #[error("checkpoint {name}: {reason}")]
    Checkpoint {
        /// The checkpoint's file (or name).
        name: String,
        /// Why.
        reason: String,
    },
    /// The lifecycle database could not be read.
    #[error("cannot read lifecycle database {path}: {reason}")]
    Lifecycle {
        /// The database.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output directory exists (and overwriting was not asked for).
    #[error("{path} exists; choose another directory or replace it with --force")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// Writing the bundle failed (nothing was left behind).
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading a bundle directory failed.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bundle's JSON document is malformed.
    #[error("invalid evidence document: {reason}")]
    Document {
        /// Why.
        reason: String,
    },
}

/// A signed checkpoint note and the name (file) it came from.
#[derive(Debug, Clone)]
pub struct CheckpointNote {
    /// Where it came from, for messages.
    pub name: String,
    /// The signed note (`cfa audit checkpoint`'s output).
    pub note: String,
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The run: every event of this intent id.
    pub intent_id: String,
    /// An existing signed checkpoint of the log (it must cover the run's events, unless
    /// `key` is given: then a fresh one is signed when it does not).
    pub checkpoint: Option<CheckpointNote>,
    /// Signs a checkpoint of the whole log into the bundle when none covers the run, and
    /// the in-toto statement as a DSSE envelope.
    pub key: Option<SignerKey>,
    /// The lifecycle database whose records of the run go into `provenance.json`.
    pub lifecycle_db: Option<PathBuf>,
    /// Accept legacy 16-hex event hashes.
    pub allow_legacy: bool,
    /// The cfa version written into `toolchain.json` (the caller's).
    pub cfa_version: String,
}

impl ExportOptions {
    /// Options for `intent_id` with nothing else given.
    pub fn new(intent_id: &str, cfa_version: &str) -> Self {
        ExportOptions {
            intent_id: intent_id.to_owned(),
            checkpoint: None,
            key: None,
            lifecycle_db: None,
            allow_legacy: false,
            cfa_version: cfa_version.to_owned(),
        }
    }
}

fn run_events(target: &AuditTarget, intent_id: &str) -> Result<Vec<RunEvent>, EvidenceError> {
    let source_name = target_name(target);
    let err = |reason: String| EvidenceError::Audit {
        source_name: source_name.clone(),
        reason,
    };
    let mut out = Vec::new();
    let mut bad: Option<String> = None;
    let mut index = 0u64;
    let mut take = |line: String, event: AuditEvent| {
        if event.intent_id == intent_id {
            out.push(RunEvent { index, line, event });
        }
        index += 1;
    };
    match target {
        AuditTarget::Jsonl(p) => {
            let f = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
            cfa_audit::lines::for_each_event_line(BufReader::new(f), &mut |line_no, _, core| {
                let text = String::from_utf8_lossy(core).into_owned();
                match AuditEvent::from_jsonl_line(&text) {
                    Ok(e) => {
                        take(text, e);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        bad = Some(format!("line {line_no}: {e}"));
                        ControlFlow::Break(())
                    }
                }
            })
            .map_err(|e| err(e.to_string()))?;
        }
        AuditTarget::Sqlite(p) => {
            use cfa_audit::AuditStore as _;
            let store =
                cfa_audit::SqliteStore::open_read_only(p).map_err(|e| err(e.to_string()))?;
            store
                .scan(&mut |e| {
                    take(e.to_jsonl_line(), e);
                    ControlFlow::Continue(())
                })
                .map_err(|e| err(e.to_string()))?;
        }
    }
    match bad {
        Some(reason) => Err(err(reason)),
        None => Ok(out),
    }
}

fn lifecycle(path: &Path, intent_id: &str) -> Result<Value, EvidenceError> {
    let err = |reason: String| EvidenceError::Lifecycle {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let db = cfa_lifecycle::LifecycleDb::open_read_only(path).map_err(|e| err(e.to_string()))?;
    let n = db.history_len().map_err(|e| err(e.to_string()))?;
    let history: Vec<_> = db
        .recent_history(n)
        .map_err(|e| err(e.to_string()))?
        .into_iter()
        .filter(|h| h.intent_id == intent_id)
        .collect();
    let mut records = Vec::new();
    for h in &history {
        let when = cfa_lifecycle::time::parse(&h.timestamp);
        for r in db
            .execution_load(Some(&h.signature_hash))
            .map_err(|e| err(e.to_string()))?
        {
            if Some(r.timestamp) == when {
                records.push(serde_json::to_value(&r).map_err(|e| err(e.to_string()))?);
            }
        }
    }
    Ok(json!({
        "database": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "history": history,
        "execution_records": records,
    }))
}

/// The platform of this build: os, arch and family (nothing machine-specific).
pub(crate) fn platform() -> Value {
    json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "family": std::env::consts::FAMILY,
    })
}

/// Exports the evidence bundle of `opts.intent_id` from the log at `target`. The chain
/// must be intact; the run's events must be covered by `opts.checkpoint`, or a checkpoint
/// of the whole log is signed with `opts.key` (into the bundle only). Deterministic:
/// the same log, checkpoint and key give the same bytes (Ed25519 signatures are).
pub fn export(target: &AuditTarget, opts: &ExportOptions) -> Result<Bundle, EvidenceError> {
    let source_name = target_name(target);
    let path = match target {
        AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p) => p,
    };
    if !path.is_file() {
        return Err(EvidenceError::Audit {
            source_name,
            reason: "no such file".into(),
        });
    }
    let verify = VerifyOptions {
        collect_leaves: true,
        allow_legacy: opts.allow_legacy,
        ..VerifyOptions::default()
    };
    let report = verify_target(target, &verify, &mut |_| {}).map_err(|e| EvidenceError::Audit {
        source_name: source_name.clone(),
        reason: e.to_string(),
    })?;
    if let Some(b) = report.first_bad {
        return Err(EvidenceError::Broken {
            source_name,
            index: b.index,
            line: b.line,
            reason: b.reason.to_string(),
        });
    }
    let events = run_events(target, &opts.intent_id)?;
    let Some(last) = events.last() else {
        return Err(EvidenceError::UnknownIntent {
            intent_id: opts.intent_id.clone(),
            source_name,
        });
    };
    let needed = last.index + 1;
    let given = match &opts.checkpoint {
        Some(c) => {
            let cp =
                Checkpoint::parse_unverified(&c.note).map_err(|e| EvidenceError::Checkpoint {
                    name: c.name.clone(),
                    reason: e.to_string(),
                })?;
            Some((c, cp))
        }
        None => None,
    };
    let (cp_name, note) = match (given, &opts.key) {
        (Some((c, cp)), _) if cp.size >= needed => (c.name.clone(), c.note.clone()),
        (given, Some(key)) => {
            let _ = given;
            let cp = Checkpoint {
                origin: key.name().to_owned(),
                size: report.leaves.len() as u64,
                root: cfa_audit::merkle::root(&report.leaves),
            };
            let note = cp.sign(key).map_err(|e| EvidenceError::Checkpoint {
                name: "a fresh checkpoint".into(),
                reason: e.to_string(),
            })?;
            ("a fresh checkpoint".to_owned(), note)
        }
        (given, None) => {
            return Err(EvidenceError::NoCheckpoint {
                source_name,
                needed_index: last.index,
                detail: given.map_or_else(String::new, |(c, cp)| {
                    format!("; {} covers only {} events", c.name, cp.size)
                }),
            });
        }
    };
    let cp_err = |reason: String| EvidenceError::Checkpoint {
        name: cp_name.clone(),
        reason,
    };
    let mut bundle = Bundle::default();
    let mut note_lf = String::new();
    for e in &events {
        let proof = OfflineProof::build(&report.leaves, e.index, e.line.clone(), note.clone())
            .map_err(|err| cp_err(err.to_string()))?;
        note_lf.clone_from(&proof.checkpoint_note);
        bundle
            .files
            .insert(proof_path(e.index), proof.to_text().into_bytes());
    }
    let checkpoint = Checkpoint::parse_unverified(&note_lf).map_err(|e| cp_err(e.to_string()))?;
    let carried = Carried {
        cfa_version: Value::String(opts.cfa_version.clone()),
        platform: platform(),
        audit_store: Value::String(
            match target {
                AuditTarget::Jsonl(_) => "jsonl",
                AuditTarget::Sqlite(_) => "sqlite",
            }
            .into(),
        ),
        lifecycle: match &opts.lifecycle_db {
            Some(p) => lifecycle(p, &opts.intent_id)?,
            None => Value::Null,
        },
    };
    for (name, text) in docs::documents(&opts.intent_id, &events, &checkpoint, &note_lf, &carried) {
        bundle.files.insert(name.to_owned(), text.into_bytes());
    }
    bundle
        .files
        .insert(EVENTS.to_owned(), docs::events_text(&events).into_bytes());
    bundle
        .files
        .insert(CHECKPOINT.to_owned(), note_lf.into_bytes());
    if let Some(key) = &opts.key {
        let payload = bundle.files.get(STATEMENT).cloned().unwrap_or_default();
        let sig = key.sign_bytes(&super::dsse_pae(DSSE_PAYLOAD_TYPE, &payload));
        let envelope = json!({
            "payloadType": DSSE_PAYLOAD_TYPE,
            "payload": B64.encode(&payload),
            "signatures": [{"keyid": key.verifier().key_label(), "sig": B64.encode(sig)}],
        });
        bundle
            .files
            .insert(DSSE.to_owned(), docs::pretty(&envelope).into_bytes());
    }
    let manifest = docs::manifest(&opts.intent_id, bundle.files.iter());
    bundle
        .files
        .insert(MANIFEST.to_owned(), manifest.into_bytes());
    Ok(bundle)
}
