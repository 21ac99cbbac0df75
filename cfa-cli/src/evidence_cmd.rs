//! `cfa evidence export|verify`: an evidence bundle per run an auditor can check
//! offline. The bundle and its checks are cfa-report's (`cfa::report::evidence`); this
//! module resolves flags and config into their inputs, writes the directory (atomically)
//! and renders the checks. `cfa serve` and `cfa mcp` reuse [`export_from_log`].

use crate::audit_cmd::Format;
use crate::out::{icon_fail, icon_ok};
use crate::settings::{Flags, StoreFlag};
use cfa::audit::{AuditTarget, SignerKey, VerifierKey};
use cfa::report::evidence::{self, Bundle, CheckpointNote, ExportOptions, VerifyReport};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `cfa evidence …`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write the evidence bundle of one run (a directory, written atomically).
    Export(ExportArgs),
    /// Check a bundle offline: every hash, the proofs, the signatures, the documents.
    Verify(VerifyArgs),
}

/// `cfa evidence export`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cfa audit keygen --name audit.example.com/prod --out log
  cfa evidence export --intent 6e29… --key log.key   # signs a checkpoint into the bundle
  cfa evidence export --intent 6e29… --checkpoint .cfa/audit.jsonl.checkpoint --out ev/
  cfa evidence verify evidence-6e29… --pubkey log.vkey

The bundle: run_summary.json, provenance.json, toolchain.json, human_review.json,
statement.intoto.json (in-toto Statement v1; statement.dsse.json signs it with --key),
audit/events.jsonl (the run's exact log lines), audit/checkpoint, audit/proofs/<i>.proof
(one inclusion proof per event) and manifest.json (every file's SHA-256).
The checkpoint is --checkpoint, else <log>.checkpoint when it exists; when it does not
cover the run's events, --key signs a fresh one into the bundle (the log is never written);
without either the export fails and writes nothing.")]
pub struct ExportArgs {
    /// The run: every event of this intent id.
    #[arg(long, short = 'i', value_name = "ID")]
    intent: String,
    /// Output directory [default: evidence-<ID>]; an existing one is refused unless --force.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace an existing output directory (only once the new bundle is complete).
    #[arg(long)]
    force: bool,
    /// JSONL audit log [default: the config's storage].
    #[arg(long, conflicts_with = "db", value_name = "FILE")]
    audit_file: Option<PathBuf>,
    /// SQLite audit log (table audit_events) [default: the config's storage].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Lifecycle database whose records of the run go into provenance.json [default:
    /// the config's storage when it is sqlite and exists].
    #[arg(long, value_name = "FILE")]
    lifecycle_db: Option<PathBuf>,
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Signed checkpoint covering the run [default: <log>.checkpoint when it exists].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Private key (`cfa audit keygen`): signs the statement (DSSE) and, when no
    /// checkpoint covers the run, a fresh checkpoint into the bundle.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Accept legacy 16-hex event hashes.
    #[arg(long)]
    allow_legacy: bool,
    /// Output format (`json`: `{intent_id, path, files}`; errors as `{"error": {...}}`).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Summary)]
    format: Format,
}

/// `cfa evidence verify`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cfa evidence verify evidence-6e29…                     # hashes, proofs, documents
  cfa evidence verify evidence-6e29… --pubkey log.vkey   # and the signatures
  cfa evidence verify evidence-6e29… -f json

Exit 0 when every check passes, 1 when any fails (each failure names the file and what
differs: an edited, missing or extra file, an event whose hash or chain link is wrong, a
proof that does not reach the checkpoint, a document that is not what the events say, a
signature that does not verify). Without --pubkey the signatures are not checked.")]
pub struct VerifyArgs {
    /// The bundle directory.
    dir: PathBuf,
    /// Verifier key (vkey file) of the checkpoint's and statement's signer; repeatable
    /// when they differ.
    #[arg(long, value_name = "FILE")]
    pubkey: Vec<PathBuf>,
    /// Output format (`json`: `{ok, intent_id, signatures_checked, failures, checks}`).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Summary)]
    format: Format,
}

/// Runs `cfa evidence …`.
pub fn run(cmd: EvidenceCommand) -> miette::Result<ExitCode> {
    match cmd {
        EvidenceCommand::Export(a) => export(a),
        EvidenceCommand::Verify(a) => verify(a),
    }
}

fn read_text(path: &Path, what: &str) -> miette::Result<String> {
    Ok(crate::input::read_text(path, what)?)
}

fn target_path(target: &AuditTarget) -> &Path {
    match target {
        AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p) => p,
    }
}

/// The bundle of `intent_id` from a log the faces serve: its checkpoint is
/// `<log>.checkpoint` (the servers hold no signing key), the lifecycle database the
/// one given.
pub fn export_from_log(
    log: &Path,
    intent_id: &str,
    lifecycle_db: Option<&Path>,
) -> Result<Bundle, evidence::EvidenceError> {
    let cp = cfa::report::default_checkpoint_path(log);
    let checkpoint = std::fs::read_to_string(&cp)
        .ok()
        .map(|note| CheckpointNote {
            name: cp.display().to_string(),
            note,
        });
    evidence::export(
        &AuditTarget::Jsonl(log.to_path_buf()),
        &ExportOptions {
            checkpoint,
            lifecycle_db: lifecycle_db.map(Path::to_path_buf),
            ..ExportOptions::new(intent_id, env!("CARGO_PKG_VERSION"))
        },
    )
}

fn export(a: ExportArgs) -> miette::Result<ExitCode> {
    let file = a.audit_file.as_deref().map(|path| StoreFlag {
        flag: "--audit-file",
        backend: "jsonl",
        path,
    });
    let db = a.db.as_deref().map(|path| StoreFlag {
        flag: "--db",
        backend: "sqlite",
        path,
    });
    let settings = crate::settings::resolve_process(&Flags {
        config: a.config.as_deref(),
        audit: db.or(file),
        state_db: a.lifecycle_db.as_deref().map(|p| ("--lifecycle-db", p)),
        ..Flags::default()
    })?;
    let target = match settings.required_audit("--audit-file or --db") {
        Ok(location) => location.target()?,
        Err(usage) => usage.exit(),
    };
    let lifecycle_db = match (&a.lifecycle_db, settings.state_db.value.as_deref()) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) if p.is_file() => Some(p.to_path_buf()),
        _ => None,
    };
    let checkpoint_path = a.checkpoint.clone().or_else(|| {
        let p = cfa::report::default_checkpoint_path(target_path(&target));
        p.is_file().then_some(p)
    });
    let checkpoint = match &checkpoint_path {
        Some(p) => Some(CheckpointNote {
            name: p.display().to_string(),
            note: read_text(p, "checkpoint")?,
        }),
        None => None,
    };
    let key = match &a.key {
        Some(p) => Some(
            SignerKey::parse(&read_text(p, "private key")?)
                .map_err(|e| miette::miette!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("evidence-{}", a.intent)));
    // Refused before any work, so a mistake costs nothing.
    if out.symlink_metadata().is_ok() && !a.force {
        return Err(miette::miette!(
            "{}",
            evidence::EvidenceError::Exists { path: out.clone() }
        ));
    }
    let bundle = evidence::export(
        &target,
        &ExportOptions {
            checkpoint,
            key,
            lifecycle_db,
            allow_legacy: a.allow_legacy,
            ..ExportOptions::new(&a.intent, env!("CARGO_PKG_VERSION"))
        },
    )
    .map_err(|e| miette::miette!("{e}"))?;
    bundle
        .write_dir(&out, a.force)
        .map_err(|e| miette::miette!("{e}"))?;
    let proofs = bundle
        .files
        .keys()
        .filter(|k| k.starts_with("audit/proofs/"))
        .count();
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::json!({
                "intent_id": a.intent,
                "path": out,
                "files": bundle.files.keys().collect::<Vec<_>>(),
                "events": proofs,
                "signed": bundle.files.contains_key(evidence::DSSE),
            })
        );
    } else {
        outln!(
            "{} Evidence for {} saved to {}: {} files, {proofs} events with inclusion proofs{}",
            icon_ok(),
            a.intent,
            out.display(),
            bundle.files.len(),
            if bundle.files.contains_key(evidence::DSSE) {
                ", statement signed (DSSE)"
            } else {
                ", statement unsigned (no --key)"
            }
        );
    }
    Ok(crate::exit::APPROVED.into())
}

fn render(report: &VerifyReport, dir: &Path) {
    for c in &report.checks {
        let icon = if c.ok { icon_ok() } else { icon_fail() };
        outln!("{icon} {}: {}", c.file, c.what);
    }
    let failures = report.failures().count();
    if failures == 0 {
        outln!(
            "{} Evidence {} verifies{}",
            icon_ok(),
            dir.display(),
            if report.signatures_checked {
                ""
            } else {
                " (signatures not checked: give --pubkey)"
            }
        );
    } else {
        outln!(
            "{} Evidence {} does NOT verify: {failures} failed check(s)",
            icon_fail(),
            dir.display()
        );
    }
}

fn verify(a: VerifyArgs) -> miette::Result<ExitCode> {
    let mut keys = Vec::new();
    for p in &a.pubkey {
        keys.push(
            VerifierKey::parse(&read_text(p, "verifier key")?)
                .map_err(|e| miette::miette!("{}: {e}", p.display()))?,
        );
    }
    let bundle = Bundle::read_dir(&a.dir).map_err(|e| miette::miette!("{e}"))?;
    let report = evidence::verify(&bundle, &keys);
    match a.format {
        Format::Json => outln!("{}", report.to_json()),
        Format::Summary => render(&report, &a.dir),
    }
    Ok(if report.ok() {
        crate::exit::APPROVED.into()
    } else {
        crate::exit::INVALID_INPUT.into()
    })
}
