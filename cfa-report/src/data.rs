//! What a report is built from, read once: the audit log's events and its chain check
//! ([`LogData`]), the lifecycle database ([`LifecycleData`]) and the rules of a policy
//! bundle ([`BundleInfo`], handed in by the caller so this crate knows no policy code).

use crate::error::ReportError;
use cfa_audit::checkpoint;
use cfa_audit::{AuditEvent, AuditTarget, Checkpoint, VerifierKey, VerifyOptions};
use cfa_lifecycle::{ExecutionRecord, SkillRecord};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The first event the chain check rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLink {
    /// 0-based index among events.
    pub index: u64,
    /// 1-based line (row id for SQLite).
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// How a checkpoint's signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Verified with the given verifier key.
    Verified,
    /// No verifier key was given: the checkpoint was read without checking its signature.
    NotChecked,
}

/// The last checkpoint of the log and whether the log still extends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointView {
    /// The checkpoint file.
    pub file: String,
    /// Its origin line.
    pub origin: String,
    /// Events it covers.
    pub size: u64,
    /// Its Merkle root, lowercase hex.
    pub root_hex: String,
    /// Whether its signature was checked.
    pub signature: Signature,
    /// `None`: the log extends the checkpoint (consistency proof checked, signed
    /// checkpoints only); `Some(why)` otherwise.
    pub problem: Option<String>,
}

/// The chain check of the whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    /// Events the check saw.
    pub events: u64,
    /// The first bad event (`None`: intact).
    pub first_bad: Option<BadLink>,
    /// `event_hash` of the last good event.
    pub tail_hash: String,
    /// The checkpoint, when one was given or found beside the log.
    pub checkpoint: Option<CheckpointView>,
}

impl Integrity {
    /// `true` when no event was rejected and the checkpoint (if any) is consistent.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none() && self.checkpoint.as_ref().is_none_or(|c| c.problem.is_none())
    }
}

/// An audit log, read for reporting.
#[derive(Debug, Clone)]
pub struct LogData {
    /// The log's name (its path), shown on every page.
    pub source: String,
    /// The events, in log order (reading stops at the first unreadable line).
    pub events: Vec<AuditEvent>,
    /// Why reading stopped early, if it did.
    pub read_error: Option<String>,
    /// The chain check.
    pub integrity: Integrity,
}

/// How to read a log.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Accept legacy 16-hex event hashes.
    pub allow_legacy: bool,
    /// A checkpoint note to check the log against; default `<log>.checkpoint` when
    /// that file exists.
    pub checkpoint: Option<PathBuf>,
    /// The verifier key of the checkpoint's signer; without it the checkpoint is
    /// shown but not verified.
    pub pubkey: Option<PathBuf>,
}

/// `<log>.checkpoint`, where a report looks for a checkpoint when none is named.
pub fn default_checkpoint_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".checkpoint");
    PathBuf::from(s)
}

fn target_path(target: &AuditTarget) -> &Path {
    match target {
        AuditTarget::Jsonl(p) => p,
        AuditTarget::Sqlite(p) => p,
    }
}

fn scan(target: &AuditTarget, events: &mut Vec<AuditEvent>) -> Result<(), String> {
    let mut visit = |e: AuditEvent| {
        events.push(e);
        ControlFlow::Continue(())
    };
    match target {
        AuditTarget::Jsonl(p) => {
            cfa_audit::jsonl::scan_file(p, &mut visit).map_err(|e| e.to_string())
        }
        AuditTarget::Sqlite(p) => {
            use cfa_audit::AuditStore as _;
            cfa_audit::SqliteStore::open_read_only(p)
                .and_then(|s| s.scan(&mut visit))
                .map_err(|e| e.to_string())
        }
    }
}

fn read_file(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl LogData {
    /// Reads every event of `target` and checks its chain (and a checkpoint, see
    /// [`LoadOptions`]). A missing log is an error; an unreadable line stops reading
    /// and is reported in [`LogData::read_error`] and the chain check.
    pub fn load(target: &AuditTarget, opts: &LoadOptions) -> Result<Self, ReportError> {
        let path = target_path(target);
        let source = path.display().to_string();
        let audit_err = |reason: String| ReportError::Audit {
            source_name: source.clone(),
            reason,
        };
        if !path.is_file() {
            return Err(audit_err("no such file".into()));
        }
        let verify = VerifyOptions {
            allow_legacy: opts.allow_legacy,
            ..VerifyOptions::default()
        };
        let cp_path = opts.checkpoint.clone().or_else(|| {
            let p = default_checkpoint_path(path);
            p.is_file().then_some(p)
        });
        let (report, checkpoint) = match cp_path {
            None => (
                checkpoint::verify_target(target, &verify, &mut |_| {})
                    .map_err(|e| audit_err(e.to_string()))?,
                None,
            ),
            Some(cp) => {
                let note = read_file(&cp)?;
                let cp_err = |reason: String| ReportError::Checkpoint {
                    path: cp.clone(),
                    reason,
                };
                match &opts.pubkey {
                    Some(key_path) => {
                        let key = VerifierKey::parse(&read_file(key_path)?).map_err(|e| {
                            ReportError::Checkpoint {
                                path: key_path.clone(),
                                reason: e.to_string(),
                            }
                        })?;
                        let check = checkpoint::verify_with_checkpoint(
                            target,
                            &note,
                            &key,
                            &verify,
                            &mut |_| {},
                        )
                        .map_err(|e| cp_err(e.to_string()))?;
                        let view = view(&cp, &check.checkpoint, Signature::Verified, check.problem);
                        (check.report, Some(view))
                    }
                    None => {
                        let parsed = Checkpoint::parse_unverified(&note)
                            .map_err(|e| cp_err(e.to_string()))?;
                        let report = checkpoint::verify_target(target, &verify, &mut |_| {})
                            .map_err(|e| audit_err(e.to_string()))?;
                        let problem = (report.events < parsed.size).then(|| {
                            format!(
                                "the log has {} events but the checkpoint covers {}: events were removed",
                                report.events, parsed.size
                            )
                        });
                        (
                            report,
                            Some(view(&cp, &parsed, Signature::NotChecked, problem)),
                        )
                    }
                }
            }
        };
        let mut events = Vec::new();
        let read_error = scan(target, &mut events).err();
        Ok(LogData {
            source,
            events,
            read_error,
            integrity: Integrity {
                events: report.events,
                first_bad: report.first_bad.map(|b| BadLink {
                    index: b.index,
                    line: b.line,
                    reason: b.reason.to_string(),
                }),
                tail_hash: report.tail_hash,
                checkpoint,
            },
        })
    }

    /// A log held in memory (tests, embedders): the events and their chain check.
    pub fn from_events(source: &str, events: Vec<AuditEvent>, integrity: Integrity) -> Self {
        LogData {
            source: source.to_owned(),
            events,
            read_error: None,
            integrity,
        }
    }
}

fn view(
    path: &Path,
    cp: &Checkpoint,
    signature: Signature,
    problem: Option<String>,
) -> CheckpointView {
    CheckpointView {
        file: path.display().to_string(),
        origin: cp.origin.clone(),
        size: cp.size,
        root_hex: cp.root.iter().map(|b| format!("{b:02x}")).collect(),
        signature,
        problem,
    }
}

/// The lifecycle database, read for reporting.
#[derive(Debug, Clone, Default)]
pub struct LifecycleData {
    /// The database's name (its path).
    pub source: String,
    /// Every execution record, oldest first.
    pub records: Vec<ExecutionRecord>,
    /// Every skill with its state and transitions.
    pub skills: Vec<SkillRecord>,
}

impl LifecycleData {
    /// Reads a lifecycle database read-only (it is never created or migrated).
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let err = |reason: String| ReportError::Lifecycle {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(err("no such file".into()));
        }
        let db =
            cfa_lifecycle::LifecycleDb::open_read_only(path).map_err(|e| err(e.to_string()))?;
        Ok(LifecycleData {
            source: path.display().to_string(),
            records: db.execution_load(None).map_err(|e| err(e.to_string()))?,
            skills: db.skill_load_all().map_err(|e| err(e.to_string()))?,
        })
    }
}

/// One rule of the active bundle, as reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Rule name.
    pub name: String,
    /// The fault code it raises.
    pub fault_code: String,
    /// Its action (`approve`, `replan`, `block`).
    pub action: String,
}

/// The policy bundle a report names rules from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleInfo {
    /// Bundle version.
    pub version: String,
    /// Its rules.
    pub rules: Vec<RuleInfo>,
}

impl BundleInfo {
    /// The rule raising `code`, if the bundle has one.
    pub fn rule_for(&self, code: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.fault_code == code)
    }
}
