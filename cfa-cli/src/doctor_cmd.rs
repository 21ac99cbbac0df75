//! `cfa doctor`: checks what the other commands rely on — the config, the catalog, the
//! policy bundle, the audit log (its chain verified), the lifecycle database and, when
//! configured, the PostgreSQL DSN — and says for each what to fix. Everything is read
//! only: no file is created, repaired, migrated or written, and the DSN is never printed.
//! Exit 0 when no check fails (warnings allowed), 1 when one does.

use crate::config::{self, CfaConfig};
use crate::exec_phase::SandboxChoice;
use crate::settings::{Env, Flags, Settings, StoreLocation};
use cfa::audit::AuditTarget;
use cfa_audit::checkpoint;
use cfa_audit::retain::Anchor;
use cfa_audit::{VerifyOptions, jsonl};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Output of `cfa doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DoctorFormat {
    /// One line per check, with the fix under each warning or failure.
    #[default]
    Summary,
    /// `{"checks": [...], "summary": {...}, "ok": bool}`.
    Json,
}

/// Arguments of `cfa doctor`.
#[derive(Debug, Args)]
#[command(after_help = "\
Checks, in order: config (found, parses), catalog, policy bundle, audit log (the chain
is verified, read-only), lifecycle database (opens read-only, schema current) and the
PostgreSQL DSN when the config names one (execution.dsn_env or sandbox: postgres): the
variable is set and a connection succeeds within --timeout. The DSN is never printed.

Examples:
  cfa doctor
  cfa doctor --config deploy/cfa.yaml -f json")]
pub struct DoctorArgs {
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds to wait for the PostgreSQL server.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    timeout: u64,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: DoctorFormat,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    /// The check does not apply (nothing configured to check).
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// A report's text on one line (miette reports may span several).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cfa doctor`.
pub fn run(args: DoctorArgs) -> miette::Result<ExitCode> {
    let mut checks = Vec::new();
    let (check, cfg) = check_config(args.config.as_deref());
    checks.push(check);
    let flags = Flags::with_config(args.config.as_deref());
    let settings = crate::settings::resolve_with(&flags, &Env::from_process(), cfg);
    checks.push(check_catalog(&settings));
    checks.push(check_bundle(&settings));
    checks.push(check_audit(&settings));
    checks.push(check_lifecycle(&settings));
    checks.push(check_postgres(
        settings.config(),
        Duration::from_secs(args.timeout.max(1)),
    ));
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let failed = count(Status::Fail) > 0;
    match args.format {
        DoctorFormat::Json => {
            let list: Vec<Value> = checks
                .iter()
                .map(|c| {
                    json!({"name": c.name, "status": c.status.as_str(), "detail": c.detail,
                           "fix": c.fix})
                })
                .collect();
            let v = json!({
                "checks": list,
                "summary": {"ok": count(Status::Ok), "warn": count(Status::Warn),
                            "fail": count(Status::Fail), "skip": count(Status::Skip)},
                "ok": !failed,
            });
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        DoctorFormat::Summary => {
            for c in &checks {
                outln!("{:<5} {:<10} {}", c.status.as_str(), c.name, c.detail);
                if let Some(f) = &c.fix {
                    outln!("{:<16} fix: {f}", "");
                }
            }
            outln!(
                "doctor: {} ok, {} warn, {} fail, {} skipped",
                count(Status::Ok),
                count(Status::Warn),
                count(Status::Fail),
                count(Status::Skip)
            );
        }
    }
    Ok(if failed {
        crate::exit::INVALID_INPUT.into()
    } else {
        ExitCode::SUCCESS
    })
}

fn check_config(explicit: Option<&Path>) -> (Check, Option<CfaConfig>) {
    match config::load(explicit) {
        Ok(Some(c)) => (
            Check::new("config", Status::Ok, c.path.display().to_string()),
            Some(c),
        ),
        Ok(None) => (
            Check::new(
                "config",
                Status::Warn,
                format!(
                    "no config found (looked for {} here and in every parent directory); built-in defaults apply",
                    config::CANDIDATES.join(", ")
                ),
            )
            .fix("run `cfa init` to write cfa.yaml, a catalog and a bundle"),
            None,
        ),
        Err(e) => (
            Check::new("config", Status::Fail, one_line(&e.to_string())).fix(
                "correct the config at that line and column (its keys: docs/cli.md#configuration); the other checks ran without it",
            ),
            None,
        ),
    }
}

fn check_catalog(settings: &Settings) -> Check {
    let configured = settings.config().and_then(|c| c.catalog.clone());
    match settings.catalog() {
        Some(p) => match crate::load::catalog(p) {
            Ok(c) => Check::new(
                "catalog",
                Status::Ok,
                format!("{} ({} datasets)", p.display(), c.catalog.datasets.len()),
            ),
            Err(e) => Check::new("catalog", Status::Fail, one_line(&e.to_string())).fix(format!(
                "correct {} (`cfa catalog validate {}` lists every issue)",
                p.display(),
                p.display()
            )),
        },
        None => match configured {
            Some(p) => Check::new(
                "catalog",
                Status::Fail,
                format!(
                    "defaults.catalog names {}, which does not exist",
                    p.display()
                ),
            )
            .fix("create the catalog there or correct defaults.catalog"),
            None => Check::new(
                "catalog",
                Status::Warn,
                "no catalog configured: intents resolve against no datasets",
            )
            .fix("set defaults.catalog in cfa.yaml (or pass -c/--catalog to each command)"),
        },
    }
}

fn check_bundle(settings: &Settings) -> Check {
    let origin = &settings.policy_bundle.origin;
    match crate::load::policy(settings.policy_bundle()) {
        Ok(p) => Check::new(
            "bundle",
            Status::Ok,
            format!(
                "{} (version {}, {} rules; from {origin})",
                p.source,
                p.engine.version(),
                p.engine.rules().len()
            ),
        ),
        Err(e) => Check::new("bundle", Status::Fail, one_line(&e.to_string())).fix(format!(
            "correct the bundle named by {origin} (`cfa policy validate FILE` lists every issue)"
        )),
    }
}

/// `<log>.anchor.json` beside a log, when present (as `cfa audit verify` reads it).
fn anchor_start(target: &AuditTarget) -> Result<Option<cfa_audit::verify::ChainStart>, String> {
    let (AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p)) = target;
    let mut s = p.as_os_str().to_owned();
    s.push(".anchor.json");
    let path = PathBuf::from(s);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let anchor = Anchor::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    anchor
        .chain_start(None)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn check_audit(settings: &Settings) -> Check {
    let Some(loc) = settings.audit() else {
        return Check::new(
            "audit",
            Status::Skip,
            "no audit store configured: decisions are not recorded",
        );
    };
    let Some(path) = loc.path.as_deref() else {
        return Check::new(
            "audit",
            Status::Skip,
            format!("the {} backend keeps no file to verify", loc.backend),
        );
    };
    if !path.exists() {
        return Check::new(
            "audit",
            Status::Ok,
            format!(
                "{} {} not created yet (the first recorded decision creates it)",
                loc.backend,
                path.display()
            ),
        );
    }
    let target = match loc.target() {
        Ok(t) => t,
        Err(e) => return Check::new("audit", Status::Skip, one_line(&e.to_string())),
    };
    let start = match anchor_start(&target) {
        Ok(s) => s,
        Err(e) => {
            return Check::new("audit", Status::Fail, format!("anchor: {e}"))
                .fix("restore the anchor file `cfa storage cleanup` wrote beside the log");
        }
    };
    let opts = VerifyOptions {
        start,
        ..VerifyOptions::default()
    };
    let shown = path.display();
    match checkpoint::verify_target(&target, &opts, &mut |_| {}) {
        Ok(r) if r.intact() => {
            let torn = loc
                .jsonl_path()
                .and_then(|p| jsonl::tail_report(p).ok())
                .and_then(|t| t.torn);
            match torn {
                Some((offset, bytes, _)) => Check::new(
                    "audit",
                    Status::Warn,
                    format!(
                        "{shown}: chain intact ({} events) but a torn last line at offset {offset} ({bytes} bytes)",
                        r.events
                    ),
                )
                .fix(format!("run `cfa audit repair --file {shown}`")),
                None => Check::new(
                    "audit",
                    Status::Ok,
                    format!("{} {shown}: chain intact ({} events)", loc.backend, r.events),
                ),
            }
        }
        Ok(r) => {
            let at = r.first_bad.as_ref().map_or_else(String::new, |b| {
                format!(" at event {} (line {}): {}", b.index, b.line, b.reason)
            });
            Check::new("audit", Status::Fail, format!("{shown}: chain BROKEN{at}")).fix(
                format!(
                    "inspect with `cfa audit verify {}`; restore the log from a backup (a torn last line: `cfa audit repair`)",
                    flag_for(loc)
                ),
            )
        }
        Err(e) => Check::new("audit", Status::Fail, format!("{shown}: {e}"))
            .fix("check the file's permissions and that it is an audit log"),
    }
}

fn flag_for(loc: &StoreLocation) -> String {
    let path = loc
        .path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match loc.backend.as_str() {
        "sqlite" => format!("--db {path}"),
        _ => format!("--file {path}"),
    }
}

/// The `_schema` version and the table names of a SQLite file, opened read-only.
fn sqlite_facts(path: &Path) -> rusqlite::Result<(Vec<String>, Option<i64>)> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", "ON")?;
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let version = if tables.iter().any(|t| t == "_schema") {
        conn.query_row("SELECT max(version) FROM _schema", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
    } else {
        None
    };
    Ok((tables, version))
}

fn check_lifecycle(settings: &Settings) -> Check {
    let (path, configured) = match &settings.state_db.value {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("cfa.db"), false),
    };
    let shown = path.display().to_string();
    if !path.exists() {
        return if configured {
            Check::new(
                "lifecycle",
                Status::Ok,
                format!(
                    "{shown} not created yet (the first execution or `cfa lifecycle evaluate` creates it)"
                ),
            )
        } else {
            Check::new(
                "lifecycle",
                Status::Skip,
                "no state database configured (lifecycle commands default to ./cfa.db, which does not exist)",
            )
        };
    }
    let (tables, version) = match sqlite_facts(&path) {
        Ok(f) => f,
        Err(e) => {
            return Check::new(
                "lifecycle",
                Status::Fail,
                format!("{shown} cannot be read as SQLite: {e}"),
            )
            .fix("point storage.path (or --db) at a lifecycle database, or move this file aside");
        }
    };
    let has = |t: &str| tables.iter().any(|have| have == t);
    if !has("execution_records") || !has("skill_records") {
        return if has("audit_events") {
            Check::new(
                "lifecycle",
                Status::Ok,
                format!(
                    "{shown} holds the audit log only; the lifecycle tables are created on first use"
                ),
            )
        } else {
            Check::new(
                "lifecycle",
                Status::Fail,
                format!("{shown} is not a lifecycle database (no execution_records or skill_records table)"),
            )
            .fix("point storage.path (or --db) at a lifecycle database, or move this file aside")
        };
    }
    if let Err(e) = cfa::lifecycle::LifecycleDb::open_read_only(&path) {
        return Check::new("lifecycle", Status::Fail, e.to_string())
            .fix("check the file's permissions and that no other program holds it locked");
    }
    let current = cfa::lifecycle::SCHEMA_VERSION;
    match version {
        Some(v) if v == current => Check::new(
            "lifecycle",
            Status::Ok,
            format!("{shown}: schema v{v} (current)"),
        ),
        Some(v) if v > current => Check::new(
            "lifecycle",
            Status::Fail,
            format!("{shown}: schema v{v} is newer than this cfa's v{current}"),
        )
        .fix("upgrade cfa, or use a database written by this version"),
        other => Check::new(
            "lifecycle",
            Status::Warn,
            format!(
                "{shown}: schema {} is older than v{current}",
                other.map_or_else(|| "unversioned".to_owned(), |v| format!("v{v}"))
            ),
        )
        .fix(format!(
            "run one writing lifecycle command (e.g. `cfa lifecycle evaluate --db {shown}`) to bring the schema to v{current}"
        )),
    }
}

fn check_postgres(cfg: Option<&CfaConfig>, timeout: Duration) -> Check {
    let Some(c) = cfg else {
        return Check::new("postgres", Status::Skip, "no config: no DSN configured");
    };
    let wants = c.execution.sandbox == Some(SandboxChoice::Postgres);
    let var = match (&c.execution.dsn_env, wants) {
        (Some(v), _) => v.clone(),
        (None, true) => crate::exec_phase::DSN_ENV.to_owned(),
        (None, false) => {
            return Check::new(
                "postgres",
                Status::Skip,
                "not configured (execution.dsn_env unset, sandbox is not postgres)",
            );
        }
    };
    let dsn = std::env::var(&var).ok().filter(|v| !v.trim().is_empty());
    let Some(dsn) = dsn else {
        let status = if wants { Status::Fail } else { Status::Warn };
        let why = if wants {
            "the postgres sandbox cannot run"
        } else {
            "needed only when the sandbox is postgres"
        };
        return Check::new("postgres", status, format!("${var} is not set ({why})")).fix(format!(
            "export {var}='host=… port=5432 user=… dbname=…' (the DSN stays in the environment, never in cfa.yaml)"
        ));
    };
    match cfa::execute::probe_postgres(&dsn, timeout) {
        Ok(version) => Check::new(
            "postgres",
            Status::Ok,
            format!("connected through ${var} (PostgreSQL {version})"),
        ),
        Err(e) => {
            let reason = one_line(&e.to_string()).replace(&dsn, &format!("${var}"));
            Check::new(
                "postgres",
                Status::Fail,
                format!("cannot connect through ${var}: {reason}"),
            )
            .fix(format!(
                "check that the server is up and reachable within {}s and that ${var} holds the right DSN",
                timeout.as_secs()
            ))
        }
    }
}
