//! `cfa budget set|show|list|rm`: budgets per scope (`domain:NAME`, `target:NAME`,
//! `agent:ID`) over a fixed, epoch-anchored window, in the lifecycle database
//! (`--db`, else the config's sqlite storage, else `cfa.db`) or, with a postgres
//! storage in the config (and no `--db`), in that PostgreSQL database. Every change is one
//! `control` event in the audit log when one is configured (`--audit-log`, else the
//! config's storage). The arithmetic and the store are cfa-control's.

use crate::exit;
use crate::service::budget as svc;
use crate::service::control_store::{self, BudgetBackend};
use crate::settings::{self, Flags, Settings, StoreFlag};
use cfa::AuditStore;
use cfa::audit::Durability;
use cfa_control::budget::{BudgetError, BudgetStatus, Dimension, Scope, Window, iso_of};
use clap::{Args, Subcommand, ValueEnum};
use miette::Report;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Budget commands.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Set (or replace) the budget of a scope.
    #[command(after_help = "Examples:\n  \
cfa budget set domain:finance --window 24h --dbu 100 --runs 50\n  \
cfa budget set target:silver.nfe_clientes --window 1h --rows 1000000\n  \
cfa budget set agent:bot-7 --window 30d --dbu 500 -f json\n\n\
Windows are fixed and anchored at the Unix epoch: 24h starts at midnight UTC, 1h on the hour.\n\
A run is charged to its domain:, target: and (with `cfa evaluate --agent ID`) agent: budgets.")]
    Set(SetArgs),
    /// Show where one budget stands in its current window.
    #[command(after_help = "Example:\n  cfa budget show domain:finance -f json")]
    Show(ShowArgs),
    /// List every budget and where it stands.
    #[command(after_help = "Example:\n  cfa budget list --db state/cfa.db -f json")]
    List(ListArgs),
    /// Remove the budget of a scope (its past reservations stay on record).
    #[command(after_help = "Example:\n  cfa budget rm agent:bot-7 --by alice")]
    Rm(RmArgs),
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

/// Where the budgets live and when "now" is.
#[derive(Debug, Args)]
pub struct Common {
    /// Lifecycle SQLite database [default: the config's storage when it is sqlite
    /// (postgres: its database, DSN from `storage.dsn_env`), else cfa.db].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Config file whose storage is the default database and audit log (default:
    /// discovered from the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Take this time (ISO; naive = UTC) as now instead of the clock.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa budget set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The scope: domain:NAME, target:NAME or agent:ID.
    #[arg(value_parser = parse_scope)]
    scope: Scope,
    /// The window: a number and a unit s, m, h, d or w (1h, 24h, 30d).
    #[arg(long, value_parser = parse_window)]
    window: Window,
    /// Cost cap in DBU per window.
    #[arg(long, value_name = "N", value_parser = non_negative)]
    dbu: Option<f64>,
    /// Run cap per window.
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// Row cap per window (rows written, as the sandbox measured them).
    #[arg(long, value_name = "N")]
    rows: Option<u64>,
    /// Who makes the change (recorded in the audit event) [default: $USER, else cli].
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// JSONL audit log the change is recorded in [default: the config's storage].
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// `cfa budget show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The scope: domain:NAME, target:NAME or agent:ID.
    #[arg(value_parser = parse_scope)]
    scope: Scope,
    #[command(flatten)]
    common: Common,
}

/// `cfa budget list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    common: Common,
}

/// `cfa budget rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The scope: domain:NAME, target:NAME or agent:ID.
    #[arg(value_parser = parse_scope)]
    scope: Scope,
    /// Who makes the change (recorded in the audit event) [default: $USER, else cli].
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// JSONL audit log the change is recorded in [default: the config's storage].
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
        .map_err(|e: cfa_control::budget::BudgetError| e.to_string())
}

fn parse_window(s: &str) -> Result<Window, String> {
    s.parse()
        .map_err(|e: cfa_control::budget::BudgetError| e.to_string())
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1e12).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a non-negative number of DBU")),
    }
}

/// Runs a budget command.
pub fn run(cmd: BudgetCommand) -> miette::Result<ExitCode> {
    match cmd {
        BudgetCommand::Set(a) => set(&a),
        BudgetCommand::Show(a) => show(&a),
        BudgetCommand::List(a) => list(&a),
        BudgetCommand::Rm(a) => rm(&a),
    }
}

fn resolve(c: &Common, audit_log: Option<&Path>) -> miette::Result<Settings> {
    settings::resolve_process(&Flags {
        config: c.config.as_deref(),
        state_db: c.db.as_deref().map(|p| ("--db", p)),
        audit: audit_log.map(|path| StoreFlag {
            flag: "--audit-log",
            backend: "jsonl",
            path,
        }),
        ..Flags::default()
    })
}

fn now(c: &Common) -> miette::Result<i64> {
    Ok(match &c.now {
        Some(t) => crate::lifecycle_cmd::parse_time("--now", t)?.as_second(),
        None => jiff::Timestamp::now().as_second(),
    })
}

fn err(e: &crate::service::FaceError) -> Report {
    miette::miette!("{}", e.message)
}

fn by(flag: Option<&String>) -> String {
    flag.cloned()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "cli".to_owned())
}

/// The audit store a change is recorded in, opened before anything changes.
fn audit(s: &Settings) -> miette::Result<Option<Box<dyn AuditStore>>> {
    let Some(location) = s.audit() else {
        return Ok(None);
    };
    if matches!(s.audit.origin, settings::Origin::Config { .. }) {
        location.create_parent()?;
    }
    Ok(Some(location.open_audit(&s.registry, Durability::Always)?))
}

/// The config's PostgreSQL budgets, when its storage is postgres and no `--db` was given.
fn pg(s: &Settings) -> miette::Result<Option<BudgetBackend>> {
    control_store::pg_env(s)
        .map(|env| BudgetBackend::connect_pg(&env).map_err(|e| err(&e)))
        .transpose()
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `12.5 of 100 DBU` style text of one dimension.
fn line(st: &BudgetStatus) -> String {
    let used = st.used();
    let rem = st.remaining();
    let parts: Vec<String> = Dimension::ALL
        .into_iter()
        .filter_map(|d| {
            let limit = st.budget.limits.get(d)?;
            Some(format!(
                "{} {} of {} used ({} reserved), {} left",
                d.as_str(),
                d.format(used.get(d)),
                d.format(limit),
                d.format(st.reserved.get(d)),
                d.format(rem.get(d).unwrap_or(0))
            ))
        })
        .collect();
    format!(
        "{}  window {} from {}: {}",
        st.budget.scope,
        st.budget.window,
        iso_of(st.window_start),
        parts.join("; ")
    )
}

fn set(a: &SetArgs) -> miette::Result<ExitCode> {
    let s = resolve(&a.common, a.audit_log.as_deref())?;
    let at = now(&a.common)?;
    let budget = svc::budget_of(
        &a.scope.to_string(),
        &a.window.to_string(),
        a.dbu,
        a.runs,
        a.rows,
    )
    .map_err(|e| err(&e))?;
    let store = audit(&s)?;
    let db = match pg(&s)? {
        Some(db) => db,
        None => {
            let path = s.state_db_or("cfa.db");
            // The lifecycle tables too: the file is the one `cfa evaluate --db` uses.
            cfa::lifecycle::LifecycleDb::open(&path).map_err(|e| {
                miette::miette!("cannot open the lifecycle database {}: {e}", path.display())
            })?;
            svc::open(&path).map_err(|e| err(&e))?
        }
    };
    let previous = svc::set_audited(&db, &budget, &by(a.by.as_ref()), at, store.as_deref())
        .map_err(|e| err(&e))?;
    let st = db
        .status(&budget.scope, at)
        .map_err(|e| err(&svc::face_error(&e)))?;
    match a.common.format {
        Format::Json => outln!(
            "{}",
            pretty(&json!({"budget": st.document(), "replaced": previous.is_some()}))
        ),
        Format::Summary => {
            let verb = if previous.is_some() {
                "Replaced"
            } else {
                "Set"
            };
            outln!("{verb} budget {}", line(&st));
        }
    }
    Ok(exit::APPROVED.into())
}

fn show(a: &ShowArgs) -> miette::Result<ExitCode> {
    let s = resolve(&a.common, None)?;
    let at = now(&a.common)?;
    let not_found = || {
        err(&svc::face_error(&BudgetError::NotFound(
            a.scope.to_string(),
        )))
    };
    let db = match pg(&s)? {
        Some(db) => Some(db),
        None => svc::open_for_read(&s.state_db_or("cfa.db")).map_err(|e| err(&e))?,
    }
    .ok_or_else(not_found)?;
    let st = db
        .status(&a.scope, at)
        .map_err(|e| err(&svc::face_error(&e)))?;
    match a.common.format {
        Format::Json => outln!("{}", pretty(&json!({"budget": st.document()}))),
        Format::Summary => outln!("{}", line(&st)),
    }
    Ok(exit::APPROVED.into())
}

fn list(a: &ListArgs) -> miette::Result<ExitCode> {
    let s = resolve(&a.common, None)?;
    let at = now(&a.common)?;
    let db = match pg(&s)? {
        Some(db) => Some(db),
        None => svc::open_for_read(&s.state_db_or("cfa.db")).map_err(|e| err(&e))?,
    };
    let all = match &db {
        Some(db) => db.list(at).map_err(|e| err(&svc::face_error(&e)))?,
        None => Vec::new(),
    };
    match a.common.format {
        Format::Json => outln!(
            "{}",
            pretty(
                &json!({"now": iso_of(at), "budgets": all.iter().map(BudgetStatus::document).collect::<Vec<_>>()})
            )
        ),
        Format::Summary => {
            outln!("Budgets ({}):", all.len());
            for st in &all {
                outln!("  {}", line(st));
            }
        }
    }
    Ok(exit::APPROVED.into())
}

fn rm(a: &RmArgs) -> miette::Result<ExitCode> {
    let s = resolve(&a.common, a.audit_log.as_deref())?;
    let at = now(&a.common)?;
    let store = audit(&s)?;
    let db = match pg(&s)? {
        Some(db) => db,
        None => svc::open_existing(&s.state_db_or("cfa.db")).map_err(|e| err(&e))?,
    };
    let old = svc::remove_audited(&db, &a.scope, &by(a.by.as_ref()), at, store.as_deref())
        .map_err(|e| err(&e))?;
    match a.common.format {
        Format::Json => outln!(
            "{}",
            pretty(
                &json!({"removed": old.scope.to_string(), "window": old.window.to_string(),
                           "limits": svc::limits_json(&old.limits)})
            )
        ),
        Format::Summary => outln!("Removed budget {} ({} window)", old.scope, old.window),
    }
    Ok(exit::APPROVED.into())
}
