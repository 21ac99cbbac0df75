//! `cfa lifecycle evaluate|list`: lifecycle indices and skill promotion over the
//! `execution_records` / `skill_records` tables of a SQLite state database. Promotion is
//! reported, never applied to a decision (B1).

use crate::exit;
use crate::settings::{Flags, Settings};
use cfa::lifecycle::{LifecycleDb, PromotionEngine, PromotionPolicy, SkillRecord, time};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The reference CLI's evaluation window, days.
const DEFAULT_WINDOW_DAYS: u32 = 30;

/// Lifecycle commands.
#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Compute IFo/IFs/IFg/IDI per skill and run the promotion state machine.
    Evaluate(EvaluateArgs),
    /// List skills with their state and last transition.
    List(ListArgs),
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

/// `cfa lifecycle evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// SQLite state database [default: the config's storage when it is sqlite, else
    /// cfa.db].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Evaluation window, days [default: the config's
    /// lifecycle.promotion.evaluation_window_days, else 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    window: Option<u32>,
    /// Config file whose `lifecycle.promotion` thresholds and storage apply (default:
    /// discovered from the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Policy bundle version recorded on promotion. Default: the version of the bundle
    /// the config names (`defaults.policy_bundle`), else of the default rules (v1.0).
    #[arg(long, short = 'p', value_name = "VERSION")]
    policy_bundle: Option<String>,
    /// Catalog snapshot version recorded on promotion.
    #[arg(long, default_value = "")]
    catalog_snapshot: String,
    /// Evaluate as of this time (ISO; naive = UTC) instead of now.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa lifecycle list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// SQLite state database [default: the config's storage when it is sqlite, else
    /// cfa.db].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Config file whose storage is the default database (default: discovered from the
    /// current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// Runs a lifecycle command.
pub fn run(cmd: LifecycleCommand) -> miette::Result<ExitCode> {
    match cmd {
        LifecycleCommand::Evaluate(a) => evaluate(&a),
        LifecycleCommand::List(a) => list(&a),
    }
}

/// `--db`, else the config's storage when it keeps a state database (sqlite), else
/// `cfa.db`, as the settings layer resolves it.
fn settings(flag: Option<&Path>, config: Option<&Path>) -> miette::Result<Settings> {
    crate::settings::resolve_process(&Flags {
        config,
        state_db: flag.map(|p| ("--db", p)),
        ..Flags::default()
    })
}

/// `list` only reads: the database is opened read-only and never created, migrated or
/// switched to WAL. `evaluate` records the promotion state machine's transitions in
/// `skill_records` (that is its job), but only in a file that already is a lifecycle
/// database: a missing, empty or foreign file is refused untouched.
fn open(db: &Path, write: bool) -> miette::Result<LifecycleDb> {
    if !db.is_file() {
        return Err(miette::miette!(
            "state database not found: {}",
            db.display()
        ));
    }
    if write {
        LifecycleDb::open_existing(db)
    } else {
        LifecycleDb::open_read_only(db)
    }
    .map_err(|e| miette::miette!("{e}"))
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Parses `--now`/`--before` style timestamps (naive = UTC, B13).
pub fn parse_time(flag: &str, text: &str) -> miette::Result<jiff::Timestamp> {
    time::parse(text).ok_or_else(|| {
        miette::miette!(
            "{flag} {text:?} is not an ISO date or date-time (e.g. 2026-01-31T00:00:00)"
        )
    })
}

fn evaluate(a: &EvaluateArgs) -> miette::Result<ExitCode> {
    let resolved = settings(a.db.as_deref(), a.config.as_deref())?;
    let db = open(&resolved.state_db_or("cfa.db"), true)?;
    let now = match &a.now {
        Some(t) => parse_time("--now", t)?,
        None => jiff::Timestamp::now(),
    };
    let records = db
        .execution_load(None)
        .map_err(|e| miette::miette!("{e}"))?;
    let mut skills = db.skill_load_all().map_err(|e| miette::miette!("{e}"))?;
    for r in &records {
        if !skills.iter().any(|s| s.signature_hash == r.signature_hash) {
            skills.push(SkillRecord::new(&r.signature_hash));
        }
    }
    let settings = resolved.config().map(|c| &c.lifecycle.promotion);
    let window = a
        .window
        .or_else(|| settings.and_then(|p| p.evaluation_window_days))
        .unwrap_or(DEFAULT_WINDOW_DAYS);
    let policy = PromotionPolicy {
        evaluation_window_days: window,
        ..settings.map(|p| p.policy()).unwrap_or_default()
    };
    let engine = PromotionEngine::new(policy, concat!("cfa-rs-", env!("CARGO_PKG_VERSION")));
    let bundle_version = match &a.policy_bundle {
        Some(v) => v.clone(),
        None => crate::load::policy(resolved.policy_bundle())?
            .engine
            .version()
            .to_owned(),
    };
    let mut rows = Vec::new();
    for skill in &mut skills {
        let s = engine.evaluate(skill, &records, now, &bundle_version, &a.catalog_snapshot);
        db.skill_upsert(skill).map_err(|e| miette::miette!("{e}"))?;
        let mut flags = Vec::new();
        if engine.policy.passes_gate(&s) {
            flags.push("PROMOTE");
        }
        if s.drift_detected() {
            flags.push("DRIFT");
        }
        rows.push((skill.signature_hash.clone(), skill.state.as_str(), s, flags));
    }
    match a.format {
        Format::Json => {
            let v: Vec<Value> = rows
                .iter()
                .map(|(h, st, s, flags)| {
                    json!({"signature_hash": h, "state": st, "ifo": r3(s.ifo), "ifs": r3(s.ifs),
                           "ifg": r3(s.ifg), "idi": r3(s.idi), "execution_count": s.execution_count,
                           "promotion_eligible": engine.policy.passes_gate(s), "drift_detected": s.drift_detected(),
                           "flags": flags})
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({"window_days": window, "skills": v}))
                    .unwrap_or_default()
            );
        }
        Format::Summary => {
            outln!(
                "Lifecycle evaluation ({} skills, {}d window):",
                rows.len(),
                window
            );
            for (h, st, s, flags) in &rows {
                let f = if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(", "))
                };
                outln!(
                    "  {}  state={st}  IFo={:.2} IFs={:.2} IFg={:.2} IDI={:.2}  execs={}{f}",
                    short(h),
                    s.ifo,
                    s.ifs,
                    s.ifg,
                    s.idi,
                    s.execution_count
                );
            }
        }
    }
    Ok(exit::APPROVED.into())
}

fn list(a: &ListArgs) -> miette::Result<ExitCode> {
    let db = open(
        &settings(a.db.as_deref(), a.config.as_deref())?.state_db_or("cfa.db"),
        false,
    )?;
    let skills = db.skill_load_all().map_err(|e| miette::miette!("{e}"))?;
    match a.format {
        Format::Json => {
            let v: Vec<Value> = skills
                .iter()
                .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({"skills": v})).unwrap_or_default()
            );
        }
        Format::Summary => {
            outln!("Lifecycle skills ({}):", skills.len());
            for s in &skills {
                let reason = s
                    .history
                    .last()
                    .map(|t| t.reason.as_str())
                    .unwrap_or_default();
                outln!(
                    "  {}  state={}  transitions={}  {reason}",
                    short(&s.signature_hash),
                    s.state.as_str(),
                    s.history.len()
                );
            }
        }
    }
    Ok(exit::APPROVED.into())
}
