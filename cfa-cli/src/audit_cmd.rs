//! `cfa audit …`: verify, show, repair, append, checkpoint, prove, verify-proof, keygen.
//! All audit logic lives in `cfa-audit`; this module parses flags, renders summary or
//! JSON output and maps outcomes to exit codes (0 intact/ok, 1 broken/invalid/I/O).

use crate::settings::{Flags, StoreFlag, StoreLocation};
use cfa::kernel::{StorageRegistry, StoreRequest};
use cfa_audit::checkpoint::{self, CheckpointCheck};
use cfa_audit::retain::Anchor;
use cfa_audit::{
    AuditStore, AuditTarget, Clock, Durability, NewEvent, OfflineProof, RepairOutcome, SignerKey,
    SqliteStore, SystemClock, VerifierKey, VerifyOptions, VerifyReport,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Audit log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log (and optionally a signed checkpoint).
    Verify(VerifyArgs),
    /// Show the events of one intent.
    Show(ShowArgs),
    /// List recent decisions (or every event): time, intent id, stage, outcome, rules.
    List(crate::audit_list::ListArgs),
    /// The last decisions, optionally following the log as it grows (-F).
    Tail(crate::audit_list::TailArgs),
    /// Move a torn last line aside and truncate the log to its last complete event.
    Repair(RepairArgs),
    /// Append one event to the log (locked, chained, fsynced).
    Append(AppendArgs),
    /// Sign a checkpoint (size + Merkle root) of the log.
    Checkpoint(CheckpointArgs),
    /// Write the PostgreSQL chain as a JSONL log (byte for byte what the JSONL store
    /// writes; the reference's verifier reads it).
    #[command(after_help = crate::audit_pg::EXPORT_HELP)]
    Export(crate::audit_pg::ExportArgs),
    /// Write a self-contained offline inclusion proof for one event.
    Prove(ProveArgs),
    /// Check an offline proof without the log.
    VerifyProof(VerifyProofArgs),
    /// Generate an Ed25519 signing key (0600) and its public verifier key.
    Keygen(KeygenArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    #[value(alias = "table")]
    Summary,
    /// One JSON object.
    Json,
}

/// Which log: a JSONL file or a SQLite database [default: the config's storage].
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct LogArgs {
    /// JSONL audit log [default: the config's storage].
    #[arg(long)]
    file: Option<PathBuf>,
    /// SQLite database with the `audit_events` table [default: the config's storage].
    #[arg(long)]
    db: Option<PathBuf>,
    /// PostgreSQL chain (shared by replicas): the NAME of the environment variable
    /// holding its DSN, never the DSN itself [default: the config's storage when it is
    /// postgres]. verify, checkpoint and export read it.
    #[arg(long, value_name = "NAME")]
    pg_env: Option<String>,
    /// Config file whose `storage` names the log when neither --file nor --db is given
    /// (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl LogArgs {
    /// The environment variable of the PostgreSQL chain: `--pg-env`, else the config's
    /// `storage.dsn_env` when its backend is postgres and no file flag was given.
    pub fn pg_env(&self) -> miette::Result<Option<String>> {
        if self.pg_env.is_some() || self.file.is_some() || self.db.is_some() {
            return Ok(self.pg_env.clone());
        }
        let settings = crate::settings::resolve_process(&Flags {
            config: self.config.as_deref(),
            ..Flags::default()
        })?;
        Ok(settings
            .audit()
            .and_then(StoreLocation::pg_env)
            .map(str::to_owned))
    }

    /// The log: `--file`/`--db`, else the config's storage; neither is a usage error.
    pub fn target(&self) -> miette::Result<AuditTarget> {
        if self.pg_env.is_some() {
            return Err(miette::miette!(
                "--pg-env is read by `cfa audit verify`, `checkpoint` and `export`; export the chain to JSONL for this command"
            ));
        }
        self.location()?.0.target()
    }

    /// The log's location and the registry it opens through.
    fn location(&self) -> miette::Result<(StoreLocation, StorageRegistry)> {
        let file = self.file.as_deref().map(|path| StoreFlag {
            flag: "--file",
            backend: "jsonl",
            path,
        });
        let db = self.db.as_deref().map(|path| StoreFlag {
            flag: "--db",
            backend: "sqlite",
            path,
        });
        let settings = crate::settings::resolve_process(&Flags {
            config: self.config.as_deref(),
            audit: db.or(file),
            ..Flags::default()
        })?;
        match settings.required_audit("--file or --db") {
            Ok(location) => Ok((location.clone(), settings.registry)),
            Err(usage) => usage.exit(),
        }
    }
}

/// `cfa audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Count this intent's events (the whole chain is still verified).
    #[arg(long, short = 'i')]
    pub(crate) id: Option<String>,
    /// Accept legacy 16-hex event hashes (cfa-kernel before 3.1).
    #[arg(long)]
    pub(crate) allow_legacy: bool,
    /// Signed checkpoint to check the log against (needs --pubkey).
    #[arg(long, requires = "pubkey")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Verifier key (vkey file) of the checkpoint signer.
    #[arg(long, requires = "checkpoint")]
    pub(crate) pubkey: Option<PathBuf>,
    /// Anchor of a retained log (written by `cfa storage cleanup`); the chain is
    /// verified from it. Default: `<log>.anchor.json` beside the log, when present.
    #[arg(long)]
    pub(crate) anchor: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The intent whose events to show.
    #[arg(long, short = 'i')]
    id: String,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// JSONL audit log [default: the config's storage when it is jsonl].
    #[arg(long)]
    file: Option<PathBuf>,
    /// Config file whose `storage` names the log when --file is absent (default:
    /// discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Intent id.
    #[arg(long)]
    intent_id: String,
    /// Stage.
    #[arg(long)]
    stage: String,
    /// Event type.
    #[arg(long)]
    event_type: String,
    /// Outcome.
    #[arg(long)]
    outcome: String,
    /// Details as a JSON object (kept in the given key order).
    #[arg(long, default_value = "{}")]
    details: String,
    /// Policy bundle version (also written, with --bundle-hash, inside details).
    #[arg(long)]
    bundle_version: Option<String>,
    /// Policy bundle hash (written inside details).
    #[arg(long, requires = "bundle_version")]
    bundle_hash: Option<String>,
    /// Timestamp (default: now, UTC, Python isoformat).
    #[arg(long)]
    timestamp: Option<String>,
    /// fsync policy: always, batch, batch:N or never.
    #[arg(long, default_value = "always")]
    fsync: Durability,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Private key file (from `cfa audit keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Origin line (default: the key name).
    #[arg(long)]
    origin: Option<String>,
    /// Accept legacy 16-hex event hashes.
    #[arg(long)]
    allow_legacy: bool,
    /// Write the signed checkpoint here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Output format (`json`: `{origin, size, file, checkpoint}`, the note inline
    /// unless written with -o).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    #[command(flatten)]
    log: LogArgs,
    /// 0-based index of the event.
    #[arg(long)]
    event: u64,
    /// An existing signed checkpoint that covers the event.
    #[arg(long, conflicts_with = "key")]
    checkpoint: Option<PathBuf>,
    /// Or: sign a fresh checkpoint of the whole log with this private key.
    #[arg(long, required_unless_present = "checkpoint")]
    key: Option<PathBuf>,
    /// Origin line for a fresh checkpoint (default: the key name).
    #[arg(long)]
    origin: Option<String>,
    /// Accept legacy 16-hex event hashes.
    #[arg(long)]
    allow_legacy: bool,
    /// Write the proof here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Output format (`json`: `{index, file, proof}`, the proof inline
    /// unless written with -o).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit verify-proof`.
#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof file.
    #[arg(long)]
    proof: PathBuf,
    /// Verifier key (vkey file) of the log.
    #[arg(long)]
    pubkey: PathBuf,
    /// Accept a legacy 16-hex event hash.
    #[arg(long)]
    allow_legacy: bool,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key name (also the default checkpoint origin), e.g. `audit.example.com/prod`.
    #[arg(long)]
    name: String,
    /// Output prefix: writes `<PREFIX>.key` (private, 0600) and `<PREFIX>.vkey`.
    #[arg(long)]
    out: PathBuf,
    /// Output format (`json`: `{private_key, public_key, verifier_key}`).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

const OK: u8 = crate::exit::APPROVED;
const FAIL: u8 = crate::exit::INVALID_INPUT;

fn read_text(path: &Path, what: &str) -> miette::Result<String> {
    Ok(crate::input::read_text(path, what)?)
}

fn write_out(output: Option<&Path>, text: &str) -> miette::Result<()> {
    match output {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| miette::miette!("cannot write {}: {e}", p.display())),
        None => {
            crate::out::write_str(text);
            Ok(())
        }
    }
}

fn err(e: cfa_audit::AuditError) -> miette::Report {
    miette::miette!("{e}")
}

/// Runs an audit command.
pub fn run(cmd: AuditCommand) -> miette::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Show(a) => show(a),
        AuditCommand::List(a) => crate::audit_list::list(a),
        AuditCommand::Tail(a) => crate::audit_list::tail(a),
        AuditCommand::Repair(a) => repair(a),
        AuditCommand::Append(a) => append(a),
        AuditCommand::Checkpoint(a) => make_checkpoint(a),
        AuditCommand::Export(a) => crate::audit_pg::export(a),
        AuditCommand::Prove(a) => prove(a),
        AuditCommand::VerifyProof(a) => verify_proof(a),
        AuditCommand::Keygen(a) => keygen(a),
    }
}

/// A progress bar on stderr, only for large files on a terminal.
fn progress_for(target: &AuditTarget) -> Option<indicatif::ProgressBar> {
    const LARGE: u64 = 32 << 20;
    let AuditTarget::Jsonl(p) = target else {
        return None;
    };
    let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (std::io::stderr().is_terminal() && len >= LARGE).then(|| {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("verifying {bar:40} {bytes}/{total_bytes}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

/// The anchor file beside a log (`<log>.anchor.json`), as `cfa storage cleanup` writes it.
fn default_anchor_path(target: &AuditTarget) -> PathBuf {
    let (AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p)) = target;
    let mut s = p.as_os_str().to_owned();
    s.push(".anchor.json");
    PathBuf::from(s)
}

/// The anchor to verify from: `--anchor FILE`, else `<log>.anchor.json` when it exists.
/// Returns the file it came from and the parsed anchor.
fn find_anchor(
    explicit: Option<&Path>,
    target: &AuditTarget,
) -> miette::Result<Option<(PathBuf, Anchor)>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = default_anchor_path(target);
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    let text = read_text(&path, "anchor")?;
    let anchor = Anchor::parse(&text).map_err(|e| miette::miette!("{}: {e}", path.display()))?;
    Ok(Some((path, anchor)))
}

fn verify(a: VerifyArgs) -> miette::Result<ExitCode> {
    if let Some(env) = a.log.pg_env()? {
        let (name, report, cp) = crate::audit_pg::verify(&env, &a)?;
        return Ok(render_verify(&a, &name, None, &report, cp.as_ref()));
    }
    let target = a.log.target()?;
    let name = checkpoint::target_name(&target);
    // `--file -`: the chain comes from standard input (read once, nothing written).
    let stdin = matches!(&target, AuditTarget::Jsonl(p) if p.as_os_str() == "-");
    if stdin && (a.checkpoint.is_some() || a.pubkey.is_some()) {
        return Ok(crate::ux::usage_error(
            "--checkpoint/--pubkey need the log as a file, not standard input",
        ));
    }
    let anchor = if stdin && a.anchor.is_none() {
        None
    } else {
        find_anchor(a.anchor.as_deref(), &target)?
    };
    let start = match &anchor {
        Some((path, an)) => Some(
            an.chain_start(None)
                .map_err(|e| miette::miette!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let opts = VerifyOptions {
        allow_legacy: a.allow_legacy,
        intent_id: a.id.clone(),
        start,
        ..VerifyOptions::default()
    };
    let bar = progress_for(&target);
    let mut progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let (report, cp): (VerifyReport, Option<CheckpointCheck>) = match (&a.checkpoint, &a.pubkey) {
        (Some(cp_path), Some(key_path)) => {
            let note = read_text(cp_path, "checkpoint")?;
            let key = VerifierKey::parse(&read_text(key_path, "verifier key")?)
                .map_err(|e| miette::miette!("{}: {e}", key_path.display()))?;
            let check =
                checkpoint::verify_with_checkpoint(&target, &note, &key, &opts, &mut progress)
                    .map_err(|e| miette::miette!("{}: {e}", cp_path.display()))?;
            (check.report.clone(), Some(check))
        }
        _ if stdin => (
            cfa::audit::verify_reader(std::io::stdin().lock(), &opts, &mut progress)
                .map_err(|e| miette::miette!("cannot read the chain from standard input: {e}"))?,
            None,
        ),
        _ => (
            checkpoint::verify_target(&target, &opts, &mut progress).map_err(err)?,
            None,
        ),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(render_verify(
        &a,
        &name,
        anchor.as_ref(),
        &report,
        cp.as_ref(),
    ))
}

/// Prints a verification (and checkpoint check) and returns its exit code.
fn render_verify(
    a: &VerifyArgs,
    name: &str,
    anchor: Option<&(PathBuf, Anchor)>,
    report: &VerifyReport,
    cp: Option<&CheckpointCheck>,
) -> ExitCode {
    let cp_problem = cp.as_ref().and_then(|c| c.problem.clone());
    let ok = report.intact() && cp_problem.is_none();
    match a.format {
        Format::Json => {
            // The shared report (the same names as `GET /v1/audit/verify`), plus what
            // only this command checks: the anchor and the checkpoint.
            let mut v = report.to_json(name, a.id.as_deref());
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "anchor".into(),
                    anchor.map_or(Value::Null, |(p, an)| {
                        json!({
                            "file": p.display().to_string(),
                            "dropped_events": an.size,
                        })
                    }),
                );
                obj.insert(
                    "checkpoint".into(),
                    cp.as_ref().map_or(Value::Null, |c| {
                        json!({
                            "origin": c.checkpoint.origin,
                            "size": c.checkpoint.size,
                            "consistent": c.problem.is_none() && report.intact(),
                            "problem": c.problem,
                        })
                    }),
                );
            }
            outln!("{v}");
        }
        Format::Summary => {
            if let Some((p, an)) = anchor {
                outln!(
                    "[INFO] Verifying from anchor {} ({} earlier events dropped by retention)",
                    p.display(),
                    an.size
                );
            }
            if report.intact() {
                match (&a.id, report.intent_events) {
                    (Some(id), Some(n)) => {
                        outln!("[OK] Chain INTACT for intent {id} ({n} events)")
                    }
                    _ => outln!("[OK] Chain INTACT ({} events total)", report.events),
                }
                if report.legacy_events > 0 {
                    outln!("  legacy 16-hex hashes accepted: {}", report.legacy_events);
                }
            } else {
                match &a.id {
                    Some(id) => eprintln!("[FAIL] Chain BROKEN for intent {id}"),
                    None => eprintln!("[FAIL] Chain BROKEN"),
                }
                if let Some(b) = &report.first_bad {
                    eprintln!(
                        "  {name}: first bad event at index {} (line {}): {}",
                        b.index, b.line, b.reason
                    );
                }
            }
            if let Some(c) = cp {
                match &c.problem {
                    None if report.intact() => outln!(
                        "[OK] Consistent with checkpoint {} at size {}",
                        c.checkpoint.origin,
                        c.checkpoint.size
                    ),
                    None => {}
                    Some(p) => eprintln!(
                        "[FAIL] Checkpoint {} at size {}: {p}",
                        c.checkpoint.origin, c.checkpoint.size
                    ),
                }
            }
        }
    }
    ExitCode::from(if ok { OK } else { FAIL })
}

fn show(a: ShowArgs) -> miette::Result<ExitCode> {
    let target = a.log.target()?;
    let opts = VerifyOptions::default();
    let report = checkpoint::verify_target(&target, &opts, &mut |_| {}).map_err(err)?;
    let mut events = Vec::new();
    let mut visit = |e: cfa_audit::AuditEvent| {
        if e.intent_id == a.id {
            events.push(e);
        }
        ControlFlow::Continue(())
    };
    match &target {
        AuditTarget::Jsonl(p) => cfa_audit::jsonl::scan_file(p, &mut visit).map_err(err)?,
        AuditTarget::Sqlite(p) => SqliteStore::open_read_only(p)
            .and_then(|s| s.scan(&mut visit))
            .map_err(err)?,
    }
    match a.format {
        Format::Json => {
            let list: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({"timestamp": e.timestamp, "phase": e.stage, "event_type": e.event_type,
                           "outcome": e.outcome, "intent_id": e.intent_id, "event_hash": e.event_hash,
                           "details": e.details})
                })
                .collect();
            outln!(
                "{}",
                json!({"intent_id": a.id, "chain_intact": report.intact(), "events": list})
            );
        }
        Format::Summary => {
            outln!(
                "Intent {} {} {} events, chain {}",
                a.id,
                crate::out::dash(),
                events.len(),
                if report.intact() { "INTACT" } else { "BROKEN" }
            );
            for e in &events {
                outln!(
                    "  {}  {:<14} {:<22} {}",
                    e.timestamp,
                    e.stage,
                    e.event_type,
                    e.outcome
                );
            }
        }
    }
    Ok(ExitCode::from(OK))
}

fn repair(a: RepairArgs) -> miette::Result<ExitCode> {
    let log = LogArgs {
        file: a.file.clone(),
        db: None,
        pg_env: None,
        config: a.config.clone(),
    };
    let file = match log.target()? {
        AuditTarget::Jsonl(p) => p,
        AuditTarget::Sqlite(p) => {
            return Err(miette::miette!(
                "repair works on JSONL logs; the config's storage is the SQLite database {}",
                p.display()
            ));
        }
    };
    let out = cfa_audit::repair(&file).map_err(err)?;
    match (&out, a.format) {
        (RepairOutcome::Clean, Format::Summary) => {
            outln!("[OK] {}: no torn tail, nothing changed", file.display());
        }
        (
            RepairOutcome::Repaired {
                offset,
                moved,
                side_file,
            },
            Format::Summary,
        ) => outln!(
            "[OK] {}: moved {moved} torn bytes from offset {offset} to {}",
            file.display(),
            side_file.display()
        ),
        (RepairOutcome::Clean, Format::Json) => {
            outln!("{}", json!({"file": file, "repaired": false}));
        }
        (
            RepairOutcome::Repaired {
                offset,
                moved,
                side_file,
            },
            Format::Json,
        ) => outln!(
            "{}",
            json!({"file": file, "repaired": true, "offset": offset, "moved_bytes": moved,
                   "side_file": side_file})
        ),
    }
    Ok(ExitCode::from(OK))
}

fn append(a: AppendArgs) -> miette::Result<ExitCode> {
    let details: Value = serde_json::from_str(&a.details)
        .map_err(|e| miette::miette!("--details is not JSON: {e}"))?;
    let Value::Object(details) = details else {
        return Err(miette::miette!("--details must be a JSON object"));
    };
    let ts = a
        .timestamp
        .clone()
        .unwrap_or_else(|| SystemClock.now_isoformat());
    let mut ev = NewEvent::new(a.intent_id, a.stage, a.event_type, a.outcome, ts);
    ev.details = details;
    if let Some(v) = a.bundle_version {
        ev = ev.with_bundle(v, a.bundle_hash.unwrap_or_default());
    }
    let (location, registry) = a.log.location()?;
    // A new database is created; an existing file must already be an audit database
    // (a foreign one is refused untouched, never migrated).
    if let Ok(AuditTarget::Sqlite(p)) = location.target()
        && p.exists()
    {
        SqliteStore::open_read_only(&p).map_err(err)?;
    }
    let req = StoreRequest {
        path: location.path.clone(),
        durability: a.fsync,
        dsn_env: location.dsn_env.clone(),
    };
    let sealed = registry
        .open_audit(&location.backend, &req)
        .map_err(|e| miette::miette!("{e}"))?
        .append(ev)
        .map_err(err)?;
    match a.format {
        Format::Summary => outln!("{}", sealed.event_hash),
        Format::Json => outln!("{}", sealed.to_jsonl_line()),
    }
    Ok(ExitCode::from(OK))
}

fn load_signer(path: &Path) -> miette::Result<SignerKey> {
    SignerKey::parse(&read_text(path, "private key")?)
        .map_err(|e| miette::miette!("{}: {e}", path.display()))
}

fn make_checkpoint(a: CheckpointArgs) -> miette::Result<ExitCode> {
    let key = load_signer(&a.key)?;
    let origin = a.origin.unwrap_or_else(|| key.name().to_owned());
    let (cp, note) = match a.log.pg_env()? {
        Some(env) => crate::audit_pg::checkpoint(&env, &origin, &key, a.allow_legacy)?,
        None => checkpoint::create_checkpoint(&a.log.target()?, &origin, &key, a.allow_legacy)
            .map_err(err)?,
    };
    match a.format {
        Format::Summary => write_out(a.output.as_deref(), &note)?,
        Format::Json => {
            if let Some(p) = &a.output {
                write_out(Some(p), &note)?;
            }
            outln!(
                "{}",
                json!({"origin": cp.origin, "size": cp.size, "file": a.output,
                       "checkpoint": a.output.is_none().then_some(&note)})
            );
        }
    }
    Ok(ExitCode::from(OK))
}

fn prove(a: ProveArgs) -> miette::Result<ExitCode> {
    let target = a.log.target()?;
    let note = match (&a.checkpoint, &a.key) {
        (Some(p), _) => read_text(p, "checkpoint")?,
        (None, Some(k)) => {
            let key = load_signer(k)?;
            let origin = a.origin.clone().unwrap_or_else(|| key.name().to_owned());
            checkpoint::create_checkpoint(&target, &origin, &key, a.allow_legacy)
                .map_err(err)?
                .1
        }
        (None, None) => return Err(miette::miette!("give --checkpoint FILE or --key FILE")),
    };
    let proof = checkpoint::prove_event(&target, a.event, note, a.allow_legacy).map_err(err)?;
    let text = proof.to_text();
    match a.format {
        Format::Summary => write_out(a.output.as_deref(), &text)?,
        Format::Json => {
            if let Some(p) = &a.output {
                write_out(Some(p), &text)?;
            }
            outln!(
                "{}",
                json!({"index": proof.index,
                       "file": a.output, "proof": a.output.is_none().then_some(&text)})
            );
        }
    }
    Ok(ExitCode::from(OK))
}

fn verify_proof(a: VerifyProofArgs) -> miette::Result<ExitCode> {
    let text = read_text(&a.proof, "proof")?;
    let key = VerifierKey::parse(&read_text(&a.pubkey, "verifier key")?)
        .map_err(|e| miette::miette!("{}: {e}", a.pubkey.display()))?;
    let result = OfflineProof::parse(&text).and_then(|p| p.verify(&key, a.allow_legacy));
    match (result, a.format) {
        (Ok(p), Format::Summary) => {
            outln!(
                "[OK] Event {} ({}) is in {} at size {}",
                p.index,
                p.event.event_hash,
                p.checkpoint.origin,
                p.checkpoint.size
            );
            Ok(ExitCode::from(OK))
        }
        (Ok(p), Format::Json) => {
            outln!(
                "{}",
                json!({"valid": true, "index": p.index, "event_hash": p.event.event_hash,
                       "intent_id": p.event.intent_id, "origin": p.checkpoint.origin,
                       "size": p.checkpoint.size})
            );
            Ok(ExitCode::from(OK))
        }
        (Err(e), Format::Summary) => {
            eprintln!("[FAIL] Proof INVALID: {}: {e}", a.proof.display());
            Ok(ExitCode::from(FAIL))
        }
        (Err(e), Format::Json) => {
            outln!("{}", json!({"valid": false, "reason": e.to_string()}));
            Ok(ExitCode::from(FAIL))
        }
    }
}

fn keygen(a: KeygenArgs) -> miette::Result<ExitCode> {
    let key = SignerKey::generate(&a.name).map_err(|e| miette::miette!("{e}"))?;
    let with_ext = |ext: &str| {
        let mut s = a.out.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    let (private, public) = (with_ext(".key"), with_ext(".vkey"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&private)
        .map_err(|e| miette::miette!("cannot create {}: {e}", private.display()))?;
    f.write_all(format!("{}\n", key.to_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| miette::miette!("cannot write {}: {e}", private.display()))?;
    let vkey = key.verifier().to_text();
    std::fs::write(&public, format!("{vkey}\n"))
        .map_err(|e| miette::miette!("cannot write {}: {e}", public.display()))?;
    match a.format {
        Format::Summary => {
            outln!("private key: {} (keep secret)", private.display());
            outln!("public key:  {} ({vkey})", public.display());
        }
        Format::Json => outln!(
            "{}",
            json!({"private_key": private, "public_key": public, "verifier_key": vkey})
        ),
    }
    Ok(ExitCode::from(OK))
}
