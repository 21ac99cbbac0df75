//! `cfa report execution|audit|lifecycle|compliance|dashboard`: one self-contained HTML
//! page from the real audit log (and the lifecycle database and policy bundle), written
//! atomically. The pages are cfa-report's; this module resolves flags and config into
//! its inputs, and `cfa serve`'s `/dashboard` reuses [`bundle_info`] and [`load_log`].

use crate::settings::{Flags, StoreFlag};
use cfa::PolicyEngine;
use cfa::report::{
    BundleInfo, LifecycleData, LoadOptions, LogData, ReportInput, ReportKind, ReportOptions,
    RuleInfo,
};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The report to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// One run (`--intent-id`, default the latest): phases, violations, sandbox metrics.
    Execution,
    /// Chain integrity (first bad event), the last checkpoint, events per stage.
    Audit,
    /// IFo/IFs/IFg/IDI per skill and their daily trend (from the lifecycle database).
    Lifecycle,
    /// Blocked reasons, PII incidents, rule hits over time, replan loops.
    Compliance,
    /// The overview (also served by `cfa serve` at /dashboard).
    Dashboard,
}

impl Kind {
    fn report(self) -> ReportKind {
        match self {
            Kind::Execution => ReportKind::Execution,
            Kind::Audit => ReportKind::Audit,
            Kind::Lifecycle => ReportKind::Lifecycle,
            Kind::Compliance => ReportKind::Compliance,
            Kind::Dashboard => ReportKind::Dashboard,
        }
    }
}

/// `cfa report`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cfa report dashboard --audit-file .cfa/audit.jsonl -o dashboard.html
  cfa report execution --audit-file audit.jsonl --intent-id 6e29…  # default: the latest run
  cfa report audit --audit-file audit.jsonl --checkpoint audit.cp --pubkey log.vkey
  cfa report lifecycle --lifecycle-db cfa.db --period 30

Pages are single HTML files: no script, no CDN, nothing fetched (a Content-Security-Policy
forbids it); charts are inline SVG. Counts come from the log; a section without data says so.
Output is deterministic: \"generated at\" is --now, else the log's last timestamp.")]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    kind: Kind,
    /// Output file, written atomically [default: cfa_<kind>_report.html].
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// JSONL audit log [default: the config's storage].
    #[arg(long, conflicts_with = "db", value_name = "FILE")]
    audit_file: Option<PathBuf>,
    /// SQLite audit log (table audit_events) [default: the config's storage].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Lifecycle database (SQLite) for the skills and indices [default: the config's
    /// storage when it is sqlite].
    #[arg(long, value_name = "FILE")]
    lifecycle_db: Option<PathBuf>,
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Policy bundle naming the rules of fault codes: a file or a built-in name
    /// [default: the config's, else the default rules].
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    policy_bundle: Option<String>,
    /// Days before "now" that the report covers.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36600), value_name = "DAYS")]
    period: u32,
    /// `execution`: the intent to report [default: the latest run].
    #[arg(long, value_name = "ID")]
    intent_id: Option<String>,
    /// "Now" (ISO; naive = UTC): the end of the period and the page's "generated at"
    /// [default: the log's last timestamp].
    #[arg(long, value_name = "ISO")]
    now: Option<String>,
    /// Lifecycle index window, days [default: the config's
    /// lifecycle.promotion.evaluation_window_days, else 7].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "DAYS")]
    window: Option<u32>,
    /// Signed checkpoint to check the log against [default: <log>.checkpoint when it exists].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Verifier key of the checkpoint's signer (without it the checkpoint is shown,
    /// its signature not checked).
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    /// Accept legacy 16-hex event hashes.
    #[arg(long)]
    allow_legacy: bool,
    /// Output format (`json`: `{report, path, bytes}`; errors as `{"error": {...}}`).
    #[arg(long, short = 'f', value_enum, default_value_t = crate::audit_cmd::Format::Summary)]
    format: crate::audit_cmd::Format,
}

/// The rules of `engine` as reports name them.
pub fn bundle_info(engine: &PolicyEngine) -> BundleInfo {
    BundleInfo {
        version: engine.version().to_owned(),
        rules: engine
            .rules()
            .iter()
            .map(|r| RuleInfo {
                name: r.name.clone(),
                fault_code: r.fault_code.clone(),
                action: r.action.as_str().to_owned(),
            })
            .collect(),
    }
}

/// Reads a JSONL log for a report.
pub fn load_log(path: &Path) -> miette::Result<LogData> {
    LogData::load(
        &cfa::audit::AuditTarget::Jsonl(path.to_path_buf()),
        &LoadOptions::default(),
    )
    .map_err(|e| miette::miette!("{e}"))
}

/// Runs `cfa report`.
pub fn run(a: ReportArgs) -> miette::Result<ExitCode> {
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
        policy_bundle: a.policy_bundle.as_deref(),
        audit: db.or(file),
        state_db: a.lifecycle_db.as_deref().map(|p| ("--lifecycle-db", p)),
        ..Flags::default()
    })?;
    let log = match settings.audit() {
        Some(location) => Some(
            LogData::load(
                &location.target()?,
                &LoadOptions {
                    allow_legacy: a.allow_legacy,
                    checkpoint: a.checkpoint.clone(),
                    pubkey: a.pubkey.clone(),
                },
            )
            .map_err(|e| miette::miette!("{e}"))?,
        ),
        None if matches!(a.kind, Kind::Execution | Kind::Audit) => {
            match settings.required_audit("--audit-file or --db") {
                Ok(_) => None,
                Err(usage) => usage.exit(),
            }
        }
        None => {
            if a.kind != Kind::Lifecycle {
                eprintln!(
                    "note: no audit log given (--audit-file or --db); the report says it has no data"
                );
            }
            None
        }
    };
    let lifecycle = match (&a.lifecycle_db, settings.state_db.value.as_deref()) {
        // An explicit flag must name a database.
        (Some(p), _) => Some(LifecycleData::load(p).map_err(|e| miette::miette!("{e}"))?),
        // The config's only when it exists.
        (None, Some(p)) if p.is_file() => {
            Some(LifecycleData::load(p).map_err(|e| miette::miette!("{e}"))?)
        }
        _ => None,
    };
    let policy = crate::load::policy(settings.policy_bundle())?;
    let bundle = bundle_info(&policy.engine);
    let now = match &a.now {
        Some(t) => Some(crate::lifecycle_cmd::parse_time("--now", t)?),
        None => None,
    };
    let window = a
        .window
        .or_else(|| {
            settings
                .config()
                .and_then(|c| c.lifecycle.promotion.evaluation_window_days)
        })
        .unwrap_or(7);
    let html = cfa::report::render(
        a.kind.report(),
        &ReportInput {
            log: log.as_ref(),
            lifecycle: lifecycle.as_ref(),
            bundle: Some(&bundle),
        },
        &ReportOptions {
            now,
            period_days: a.period,
            intent_id: a.intent_id.clone(),
            index_window_days: window,
            refresh_secs: None,
        },
    )
    .map_err(|e| miette::miette!("{e}"))?;
    let kind = a.kind.report().as_str();
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("cfa_{kind}_report.html")));
    cfa::report::write_atomic(&out, &html).map_err(|e| miette::miette!("{e}"))?;
    if a.format == crate::audit_cmd::Format::Json {
        outln!(
            "{}",
            serde_json::json!({"report": kind, "path": out, "bytes": html.len()})
        );
        return Ok(crate::exit::APPROVED.into());
    }
    let mut title = kind.to_owned();
    if let Some(first) = title.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    outln!("{title} report saved to {}", out.display());
    Ok(crate::exit::APPROVED.into())
}
