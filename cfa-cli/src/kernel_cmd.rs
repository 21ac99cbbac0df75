//! `cfa resolve` (Φ only) and `cfa evaluate` (the whole governed flow through
//! cfa-kernel), with config defaults that explicit flags always beat.

use crate::exec_phase::{self, ExecArgs};
use crate::exit;
use crate::input::{PlainError, SourceFile};
use crate::kernel_render;
use crate::load;
use crate::settings::{self, Flags, Settings, StoreFlag, StoreLocation};
use cfa::resolve::{KeywordPack, Normalizer, NormalizerInput, RuleBasedNormalizer};
use cfa::{AuditStore, Durability, SystemClock};
use cfa::{Catalog, DecisionState};
use cfa::{Grounding, Kernel, KernelConfig, KernelResult, UuidIds};
use clap::{Args, ValueEnum};
use miette::Report;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The built-in normalisers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum NormalizerChoice {
    /// English keywords (reference-compatible).
    #[default]
    RuleBased,
    /// English and Portuguese keywords.
    RuleBasedPt,
}

/// Flags shared by `resolve` and `evaluate`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The intent text.
    pub intent: String,
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset catalog (JSON, or YAML for .yaml/.yml); default from the config.
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Normaliser.
    #[arg(long, value_enum, default_value_t)]
    pub normalizer: NormalizerChoice,
    /// Extra keyword pack (YAML or JSON) added to the normaliser's packs.
    #[arg(long)]
    pub keywords: Option<PathBuf>,
}

/// Output of `cfa resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ResolveFormat {
    /// `{"signature", "resolution"}`.
    #[default]
    Json,
    /// A few labelled lines.
    Summary,
}

/// Arguments of `cfa resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: ResolveFormat,
}

/// Output of `cfa evaluate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum EvalFormat {
    /// An aligned box.
    #[default]
    Table,
    /// The whole kernel result.
    Json,
    /// A few lines.
    Summary,
}

/// Arguments of `cfa evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Policy bundle: a .yaml/.yml/.json file or a built-in name; default from the config, else the default rules.
    #[arg(long = "policy-bundle", short = 'p')]
    policy: Option<String>,
    /// Code-generation backend (pyspark, sql, dbt); default from the config, else
    /// pyspark (sql with `--sandbox postgres`; pyspark in its spark mode with `--sandbox spark`).
    #[arg(long, short = 'b')]
    backend: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: EvalFormat,
    /// Also write the result to this file (`.json`: JSON, anything else: the summary).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Strict grounding (the default): catalog validated, ungrounded or low-confidence intents block.
    #[arg(long, conflicts_with = "lenient")]
    strict: bool,
    /// Do not block ungrounded intents at formalize (they still face the policy).
    #[arg(long)]
    lenient: bool,
    /// Treat warnings as blocking.
    #[arg(long)]
    warnings_blocking: bool,
    /// Append the audit events to this JSONL log (default: the config's storage, else none).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Candidate bundle evaluated beside the enforcing one on the governed signature,
    /// never changing the result; a flip is noted on stderr and audited (`shadow_flip`).
    #[arg(long, value_name = "PATH|NAME")]
    shadow_bundle: Option<String>,
    /// Report the decision but exit 0 whatever it is.
    #[arg(long)]
    exit_zero: bool,
    /// Accepted for compatibility; non-approval already exits non-zero.
    #[arg(long)]
    exit_code: bool,
    /// The control plane (kill switches, approval tickets).
    #[command(flatten)]
    control: crate::control_cmd::ControlArgs,
    /// Execution flags (listed last, under their own heading).
    #[command(flatten)]
    exec: ExecArgs,
}

/// Says on stderr that no catalog was loaded, so that the block it leads to is not
/// taken for a policy decision.
fn note_missing_catalog(given: bool) {
    if !given {
        eprintln!(
            "note: no catalog loaded ({}): no dataset can be matched, so intents are ungrounded",
            kernel_render::CLI_NO_CATALOG_HINT
        );
    }
}

/// The catalog the settings name (`-c`, else the config's existing file), else empty.
fn catalog(settings: &Settings) -> Result<Catalog, Report> {
    match settings.catalog() {
        Some(p) => Ok(load::catalog(p)?.catalog),
        None => Ok(Catalog::empty()),
    }
}

fn normalizer(args: &CommonArgs) -> Result<RuleBasedNormalizer, Report> {
    let mut packs = match args.normalizer {
        NormalizerChoice::RuleBased => vec![KeywordPack::english()],
        NormalizerChoice::RuleBasedPt => vec![KeywordPack::english(), KeywordPack::portuguese()],
    };
    if let Some(path) = &args.keywords {
        let src = SourceFile::read(path)?;
        let value = load::json_or_yaml(&src)?;
        let pack = KeywordPack::from_value(&value)
            .map_err(|e| PlainError(format!("invalid keyword pack {}: {e}", src.name())))?;
        packs.push(pack);
    }
    Ok(RuleBasedNormalizer::new(packs))
}

/// `cfa resolve`.
pub fn run_resolve(args: ResolveArgs) -> Result<ExitCode, Report> {
    let settings = settings::resolve_process(&Flags {
        config: args.common.config.as_deref(),
        catalog: args.common.catalog.as_deref(),
        ..Flags::default()
    })?;
    let catalog = catalog(&settings)?;
    note_missing_catalog(settings.catalog().is_some());
    let norm = normalizer(&args.common)?;
    let input = NormalizerInput::new(&args.common.intent, &catalog, "resolve");
    let res = norm
        .normalize(&input)
        .map_err(|e| PlainError(format!("normalisation failed: {e}")))?;
    match args.format {
        ResolveFormat::Json => outln!("{}", pretty(&res.to_cli_value())),
        ResolveFormat::Summary => out!("{}", kernel_render::resolution_summary(&res)),
    }
    Ok(ExitCode::SUCCESS)
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The audit store: `--audit-log`, else the config's storage, else in memory; opened
/// by backend name through the storage registry.
fn audit_store(settings: &Settings) -> Result<Arc<dyn AuditStore>, Report> {
    let memory = StoreLocation {
        backend: "memory".into(),
        path: None,
        dsn_env: None,
    };
    let location = settings.audit().unwrap_or(&memory);
    if matches!(settings.audit.origin, settings::Origin::Config { .. }) {
        location.create_parent()?;
    }
    Ok(Arc::from(
        location.open_audit(&settings.registry, Durability::Always)?,
    ))
}

/// The budgets of the lifecycle database `db` (docs/cli.md#cfa-budget).
fn budget_ledger(
    db: &std::path::Path,
) -> Result<Arc<dyn cfa_control::budget::BudgetLedger>, Report> {
    let ledger =
        cfa_control::budget::SqliteBudgets::open(db).map_err(|e| PlainError(e.to_string()))?;
    Ok(Arc::new(ledger))
}

/// The exit code of a final state (docs/differences.md#b2-fail-closed). The kernel never ends in `replan`
/// (it applies the fixes or blocks), so 3 is not produced here.
pub fn state_exit(state: DecisionState) -> u8 {
    match state {
        DecisionState::Approved | DecisionState::ApprovedWithWarnings => exit::APPROVED,
        DecisionState::Blocked | DecisionState::Replanned | DecisionState::PromotionCandidate => {
            exit::BLOCKED
        }
        DecisionState::PartiallyCommitted
        | DecisionState::Quarantined
        | DecisionState::RolledBack
        | DecisionState::Degraded => exit::NOT_PUBLISHED,
    }
}

/// `cfa evaluate`.
pub fn run_evaluate(args: EvaluateArgs) -> Result<ExitCode, Report> {
    let _ = args.exit_code;
    let settings = settings::resolve_process(&Flags {
        config: args.common.config.as_deref(),
        policy_bundle: args.policy.as_deref(),
        catalog: args.common.catalog.as_deref(),
        audit: args.audit_log.as_deref().map(|path| StoreFlag {
            flag: "--audit-log",
            backend: "jsonl",
            path,
        }),
        backend: args.backend.as_deref(),
        state_db: args
            .control
            .lifecycle_flag(args.exec.db.as_deref().map(|p| ("--db", p))),
        ..Flags::default()
    })?;
    let cfg = settings.config();
    let policy = load::policy(settings.policy_bundle())?;
    let shadow = args
        .shadow_bundle
        .as_deref()
        .map(crate::service::shadow::Shadow::load)
        .transpose()?;
    let catalog_given = settings.catalog().is_some();
    let catalog = catalog(&settings)?;
    note_missing_catalog(catalog_given);
    let backend = exec_phase::backend(args.exec.sandbox(cfg), args.backend.as_deref(), cfg)?;
    let mut kc = KernelConfig::new(policy.engine, catalog);
    kc.policy_bundle_hash = policy.hash;
    kc.backend = backend;
    kc.warnings_are_blocking = args.warnings_blocking;
    kc.grounding = if args.lenient {
        Grounding::Lenient
    } else {
        Grounding::Strict
    };
    let store = audit_store(&settings)?;
    let spark = args.exec.sandbox(cfg) == exec_phase::SandboxChoice::Spark;
    // What `cfa policy backtest` replays the run's decisions from (a file log only).
    let inputs = settings
        .audit()
        .and_then(|s| s.target().ok())
        .map(|t| Arc::new(crate::policy_cmd::inputs_beside(&t)));
    let mut builder = Kernel::builder(kc)
        .backends(crate::spark_cli::registry(cfg, spark))
        .normalizer(normalizer(&args.common)?)
        .audit(store.clone())
        .inputs(inputs)
        .ids(UuidIds)
        .clock(SystemClock);
    if let Some(exec) = exec_phase::execution_phase(
        &args.exec,
        cfg,
        settings.state_db.value.as_deref(),
        exec_phase::storage_pg_env(cfg),
        false,
    )? {
        builder = builder.executor(exec);
    }
    // Budgets live in the lifecycle database (or a postgres storage's database): charged
    // only where one is configured.
    let pg = crate::service::control_store::pg_env(&settings);
    if let Some(db) = settings.state_db.value.as_deref() {
        builder = builder.budgets(budget_ledger(db)?, args.exec.agent.clone());
    } else if let Some(env) = pg.as_deref() {
        let budgets = crate::service::control_store::BudgetBackend::connect_pg(env)
            .map_err(|e| PlainError(e.message))?;
        builder = builder.budgets(budgets.ledger(), args.exec.agent.clone());
    }
    // The control plane lives in the same database as the budgets and leases.
    if let Some(control) = args.control.open_or_pg(
        &settings.state_db,
        "cfa evaluate",
        pg.as_deref(),
        crate::service::control_store::FaceLife::OneShot,
    )? {
        builder = builder.control(control.plane().clone());
    }
    if let Some(now) = &args.control.now {
        builder = builder.clock(cfa::FixedClock(now.clone()));
    }
    let kernel = builder.build().map_err(|e| PlainError(e.to_string()))?;
    let mut result = kernel.process(&args.common.intent);
    if let (Some(shadow), Some(sig), Some(enforced)) =
        (&shadow, &result.signature, result.bundle_policy_result())
    {
        crate::service::shadow::observe_once(
            shadow,
            crate::service::shadow::Enforced {
                intent_id: &result.intent_id,
                decision_id: &result.decision_id,
                content_hash: &result.content_hash,
                bundle: &result.policy_bundle,
                bundle_hash: &result.policy_bundle_hash,
                result: enforced,
            },
            sig,
            Some(&kernel.config().catalog),
            Some(store.as_ref()),
            &SystemClock,
        );
    }
    if !catalog_given {
        kernel_render::explain_missing_catalog(&mut result, kernel_render::CLI_NO_CATALOG_HINT);
    }
    store
        .flush()
        .map_err(|e| PlainError(format!("cannot flush the audit log: {e}")))?;
    let intent = &args.common.intent;
    let text = match args.format {
        EvalFormat::Json => pretty(&json_result(intent, &result)),
        EvalFormat::Table => kernel_render::table(intent, &result),
        EvalFormat::Summary => kernel_render::painted_summary(intent, &result),
    };
    outln!("{}", text.trim_end());
    if let Some(out) = &args.output {
        let is_json = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let body = if is_json {
            pretty(&json_result(intent, &result))
        } else {
            kernel_render::summary(intent, &result)
        };
        std::fs::write(out, body + "\n")
            .map_err(|e| PlainError(format!("cannot write {}: {e}", out.display())))?;
    }
    if args.exit_zero {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(state_exit(result.state).into())
}

/// `{"intent": …}` followed by every field of the kernel result, then `lifecycle`
/// (`{"skill_state": …}`, reported beside the decision, never changing it: B1) when the
/// execute phase ran.
pub fn json_result(intent: &str, r: &KernelResult) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("intent".into(), intent.into());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(r) {
        m.extend(fields);
    }
    if let Some(lifecycle) = r
        .execution
        .as_ref()
        .and_then(|e| e.details.get("lifecycle"))
    {
        m.insert("lifecycle".into(), lifecycle.clone());
    }
    serde_json::Value::Object(m)
}
