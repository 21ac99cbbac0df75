//! `cfa resolve` (Φ only) and `cfa evaluate` (the whole governed flow through
//! cfa-kernel), with config defaults that explicit flags always beat.

use crate::config::{self, CfaConfig};
use crate::exit;
use crate::input::{PlainError, SourceFile};
use crate::kernel_render;
use crate::load;
use cfa_audit::{AuditStore, Durability, JsonlStore, MemoryStore, SqliteStore, SystemClock};
use cfa_kernel::{Grounding, Kernel, KernelConfig, KernelResult, SandboxExecution, UuidIds};
use cfa_lifecycle::{
    ExecutionService, LifecycleDb, MemoryStateStore, PromotionEngine, PromotionPolicy,
};
use cfa_resolve::{KeywordPack, Normalizer, NormalizerInput, RuleBasedNormalizer};
use cfa_sandbox::{
    ExecutionConfig, FailurePolicy, MockConfig, RunContext, Sandbox, SandboxError, SandboxOptions,
    SandboxRegistry, SandboxRun,
};
use cfa_types::{Catalog, DecisionState};
use clap::{Args, ValueEnum};
use miette::Report;
use std::path::{Path, PathBuf};
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

/// Where `cfa evaluate` executes an approved artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SandboxChoice {
    /// The in-process mock (deterministic metrics; the default).
    #[default]
    Mock,
    /// A sandbox whose environment fails mid-run (demonstrates `rolled_back`).
    Panic,
    /// A real PostgreSQL database (`--dsn`).
    Postgres,
    /// Do not execute: the run stops after static validation.
    None,
}

/// What to do when some steps fail (reference.md §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
#[value(rename_all = "snake_case")]
pub enum FailurePolicyChoice {
    /// Roll everything back.
    FullRollback,
    /// Quarantine the failed steps.
    #[default]
    SelectiveQuarantine,
    /// Commit the successful steps, publish nothing.
    PartialCommitNoPublish,
    /// Publish what succeeded, as `degraded` (exit 5).
    DegradedPublish,
}

impl FailurePolicyChoice {
    fn policy(self) -> FailurePolicy {
        match self {
            FailurePolicyChoice::FullRollback => FailurePolicy::FullRollback,
            FailurePolicyChoice::SelectiveQuarantine => FailurePolicy::SelectiveQuarantine,
            FailurePolicyChoice::PartialCommitNoPublish => FailurePolicy::PartialCommitNoPublish,
            FailurePolicyChoice::DegradedPublish => FailurePolicy::DegradedPublish,
        }
    }
}

/// Execution flags of `cfa evaluate` (the execute, validate and state phases).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Sandbox that executes approved artifacts.
    #[arg(long, value_enum, default_value_t)]
    pub sandbox: SandboxChoice,
    /// Connection string of the postgres sandbox.
    #[arg(long)]
    pub dsn: Option<String>,
    /// Lifecycle database (SQLite): leases, execution records and skills; default the
    /// config's storage when it is sqlite, else none (no leases, no skill state).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Failure policy when steps fail.
    #[arg(long, value_enum, default_value_t)]
    pub failure_policy: FailurePolicyChoice,
    /// Make this plan step fail on every attempt (mock and panic sandboxes; repeatable).
    #[arg(long = "mock-fail-step", value_name = "STEP")]
    pub mock_fail_steps: Vec<String>,
    /// Lease holder id of this process (default `cfa-<pid>`).
    #[arg(long)]
    pub lease_holder: Option<String>,
    /// Pause this many milliseconds when the run starts, while the target lease is held
    /// (demonstrates leases between processes).
    #[arg(long, value_name = "MS")]
    pub mock_delay_ms: Option<u64>,
}

/// A sandbox that pauses before each run, then delegates.
struct Paced {
    inner: Box<dyn Sandbox>,
    delay: std::time::Duration,
}

impl Sandbox for Paced {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn check_environment(&self) -> Vec<cfa_types::Fault> {
        self.inner.check_environment()
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        std::thread::sleep(self.delay);
        self.inner.begin(ctx)
    }
}

/// The lifecycle database: `--db`, else the config's sqlite storage, else none.
fn lifecycle_db(
    flag: Option<&Path>,
    cfg: Option<&CfaConfig>,
) -> Result<Option<Arc<LifecycleDb>>, Report> {
    let path = match (flag, cfg) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) if c.storage.backend == "sqlite" => c.storage.path.clone(),
        _ => return Ok(None),
    };
    let db = LifecycleDb::open(&path).map_err(|e| {
        PlainError(format!(
            "cannot open the lifecycle database {}: {e}",
            path.display()
        ))
    })?;
    Ok(Some(Arc::new(db)))
}

/// The execution phase the flags ask for (`None` for `--sandbox none`).
pub fn execution_phase(
    args: &ExecArgs,
    cfg: Option<&CfaConfig>,
) -> Result<Option<SandboxExecution>, Report> {
    let name = match args.sandbox {
        SandboxChoice::None => return Ok(None),
        SandboxChoice::Mock => "mock",
        SandboxChoice::Panic => "panic",
        SandboxChoice::Postgres => "postgres",
    };
    let mut mock = MockConfig::default();
    for step in &args.mock_fail_steps {
        mock = mock.fail_always(step);
    }
    let opts = SandboxOptions {
        dsn: args.dsn.clone(),
        mock,
        ..SandboxOptions::default()
    };
    let mut sandbox = SandboxRegistry::with_builtins()
        .create(name, &opts)
        .map_err(|e| PlainError(format!("cannot create the {name} sandbox: {e}")))?;
    if let Some(ms) = args.mock_delay_ms {
        sandbox = Box::new(Paced {
            inner: sandbox,
            delay: std::time::Duration::from_millis(ms),
        });
    }
    let service = ExecutionService {
        sandbox,
        config: ExecutionConfig {
            failure_policy: args.failure_policy.policy(),
            ..ExecutionConfig::default()
        },
        store: Arc::new(MemoryStateStore::new(cfa_lifecycle::DEFAULT_HISTORY_CAP)),
        db: lifecycle_db(args.db.as_deref(), cfg)?,
        engine: PromotionEngine::new(PromotionPolicy::default(), env!("CARGO_PKG_VERSION")),
        holder: args
            .lease_holder
            .clone()
            .unwrap_or_else(|| format!("cfa-{}", std::process::id())),
        lease_ttl_secs: 600,
    };
    Ok(Some(SandboxExecution::new(
        service,
        Box::new(jiff::Timestamp::now),
    )))
}

/// Arguments of `cfa evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Policy bundle: a .yaml/.yml/.json file or a built-in name; default from the config, else the default rules.
    #[arg(long = "policy-bundle", short = 'p')]
    policy: Option<String>,
    /// Code-generation backend (pyspark, sql, dbt); default from the config, else pyspark.
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
    /// Report the decision but exit 0 whatever it is.
    #[arg(long)]
    exit_zero: bool,
    /// Accepted for compatibility; non-approval already exits non-zero.
    #[arg(long)]
    exit_code: bool,
}

/// The catalog: `-c`, else the config's (when the file exists), else empty.
fn catalog(flag: Option<&Path>, cfg: Option<&CfaConfig>) -> Result<Catalog, Report> {
    let path = match flag {
        Some(p) => Some(p.to_path_buf()),
        None => cfg.and_then(|c| c.catalog.clone()).filter(|p| p.is_file()),
    };
    match path {
        Some(p) => Ok(load::catalog(&p)?.catalog),
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
    let cfg = config::load(args.common.config.as_deref())?;
    let catalog = catalog(args.common.catalog.as_deref(), cfg.as_ref())?;
    let norm = normalizer(&args.common)?;
    let input = NormalizerInput::new(&args.common.intent, &catalog, "resolve");
    let res = norm
        .normalize(&input)
        .map_err(|e| PlainError(format!("normalisation failed: {e}")))?;
    match args.format {
        ResolveFormat::Json => println!("{}", pretty(&res.to_cli_value())),
        ResolveFormat::Summary => print!("{}", kernel_render::resolution_summary(&res)),
    }
    Ok(ExitCode::SUCCESS)
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The audit store: `--audit-log`, else the config's storage, else in memory.
fn audit_store(
    flag: Option<&Path>,
    cfg: Option<&CfaConfig>,
) -> Result<Arc<dyn AuditStore>, Report> {
    let open_err = |e: cfa_audit::AuditError| PlainError(format!("cannot open the audit log: {e}"));
    if let Some(p) = flag {
        return Ok(Arc::new(
            JsonlStore::open(p, Durability::Always).map_err(open_err)?,
        ));
    }
    match cfg {
        Some(c) => {
            if let Some(parent) = c.storage.path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| PlainError(format!("cannot create {}: {e}", parent.display())))?;
            }
            if c.storage.backend == "jsonl" {
                Ok(Arc::new(
                    JsonlStore::open(&c.storage.path, Durability::Always).map_err(open_err)?,
                ))
            } else {
                Ok(Arc::new(
                    SqliteStore::open(&c.storage.path, Durability::Always).map_err(open_err)?,
                ))
            }
        }
        None => Ok(Arc::new(MemoryStore::new())),
    }
}

/// The exit code of a final state (design.md B2). The kernel never ends in `replan`
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
    let cfg = config::load(args.common.config.as_deref())?;
    let policy_spec = args
        .policy
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.policy_bundle.clone()));
    let policy = load::policy(policy_spec.as_deref())?;
    let catalog = catalog(args.common.catalog.as_deref(), cfg.as_ref())?;
    let backend = args
        .backend
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.backend.clone()))
        .unwrap_or_else(|| "pyspark".to_owned());
    let mut kc = KernelConfig::new(policy.engine, catalog);
    kc.policy_bundle_hash = policy.hash;
    kc.backend = backend;
    kc.warnings_are_blocking = args.warnings_blocking;
    kc.grounding = if args.lenient {
        Grounding::Lenient
    } else {
        Grounding::Strict
    };
    let store = audit_store(args.audit_log.as_deref(), cfg.as_ref())?;
    let mut builder = Kernel::builder(kc)
        .normalizer(normalizer(&args.common)?)
        .audit(store.clone())
        .ids(UuidIds)
        .clock(SystemClock);
    if let Some(exec) = execution_phase(&args.exec, cfg.as_ref())? {
        builder = builder.executor(exec);
    }
    let kernel = builder.build().map_err(|e| PlainError(e.to_string()))?;
    let result = kernel.process(&args.common.intent);
    store
        .flush()
        .map_err(|e| PlainError(format!("cannot flush the audit log: {e}")))?;
    let intent = &args.common.intent;
    let text = match args.format {
        EvalFormat::Json => pretty(&json_result(intent, &result)),
        EvalFormat::Table => kernel_render::table(intent, &result),
        EvalFormat::Summary => kernel_render::summary(intent, &result),
    };
    println!("{}", text.trim_end());
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
