//! The execution phase of `cfa evaluate` and its flags: which sandbox runs an approved
//! artifact, the failure/retry policy, runtime thresholds, the target lease (in the
//! PostgreSQL database of a postgres storage, else the lifecycle database), and where
//! executions, state and lifecycle are recorded (`--db`). Flags beat the config's
//! `execution`/`lifecycle` sections, which beat the reference defaults. The postgres
//! DSN may hold a password: it is taken from `--dsn`, the variable the config's
//! `execution.dsn_env` names, or `CFA_PG_DSN`, and is never printed or audited.

use crate::config::CfaConfig;
use crate::exec_settings::ThresholdSettings;
use crate::input::PlainError;
use cfa::execute::{
    ExecutionConfig, FailurePolicy, MockConfig, RetryPolicy, RunContext, RuntimeThresholds,
    RuntimeValidator, Sandbox, SandboxError, SandboxOptions, SandboxRegistry, SandboxRun,
};
use cfa::lifecycle::{
    ExecutionService, LeasePolicy, LeaseStore, LifecycleDb, LifecycleExecution, MemoryStateStore,
    PgLeases, PromotionEngine, StateStore,
};
use clap::{Args, ValueEnum};
use miette::Report;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable read for the postgres DSN when neither `--dsn` nor the
/// config's `execution.dsn_env` gives one.
pub const DSN_ENV: &str = "CFA_PG_DSN";

/// Default lease lifetime, seconds.
pub const DEFAULT_LEASE_TTL_SECS: u32 = 600;

/// Where `cfa evaluate` executes an approved artifact (a flag value and a config value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxChoice {
    /// The in-process mock (deterministic metrics; the default).
    #[default]
    Mock,
    /// A sandbox whose environment fails mid-run (demonstrates `rolled_back`).
    Panic,
    /// A real PostgreSQL database: runs the sql backend's artifact in one transaction,
    /// commits only when runtime validation passes.
    Postgres,
    /// A local Spark session (`local[2]`): runs the pyspark backend's spark-mode script
    /// over the parquet tables of `--spark-warehouse`, commits only when runtime
    /// validation passes.
    Spark,
    /// Do not execute: the run stops after static validation.
    None,
}

/// What to do when some steps fail (docs/compatibility.md#execution-outcomes; a flag value and a config value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, Deserialize)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
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

impl SandboxChoice {
    /// The registry name of the sandbox (`None` for `none`).
    pub fn name(self) -> Option<&'static str> {
        match self {
            SandboxChoice::Mock => Some("mock"),
            SandboxChoice::Panic => Some("panic"),
            SandboxChoice::Postgres => Some("postgres"),
            SandboxChoice::Spark => Some("spark"),
            SandboxChoice::None => None,
        }
    }
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

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a ratio between 0 and 1")),
    }
}

/// An ISO date (`YYYY-MM-DD`), as the SQL artifact casts the setting to `DATE`.
pub fn iso_date(s: &str) -> Result<String, String> {
    s.parse::<jiff::civil::Date>()
        .map(|d| d.to_string())
        .map_err(|_| format!("'{s}' is not a date like 2026-01-31"))
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

/// Execution flags of `cfa evaluate` (the execute, validate and state phases).
#[derive(Debug, Args)]
#[command(next_help_heading = "Execution")]
pub struct ExecArgs {
    /// Sandbox that executes approved artifacts [default: the config's
    /// execution.sandbox, else mock]. `postgres` runs the sql backend's artifact, `spark`
    /// the pyspark backend's in its spark mode (needs $CFA_SPARK_PYTHON and
    /// --spark-warehouse).
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxChoice>,
    /// Connection string of the postgres sandbox (libpq `key=value` or URL) [default:
    /// the variable named by the config's execution.dsn_env, else $CFA_PG_DSN]. Prefer
    /// the variable: a DSN may hold a password, and the command line is visible to
    /// other users.
    #[arg(long, value_name = "DSN")]
    pub dsn: Option<String>,
    /// Value of the `cfa.partition_start` session setting the SQL artifact filters on
    /// (postgres), or the script's `--partition-start` (spark) [default: the config's
    /// execution.partition_start].
    #[arg(long, value_name = "DATE", value_parser = iso_date)]
    pub partition_start: Option<String>,
    /// Directory of the spark sandbox's parquet tables: sources `DIR/<dataset>`, target
    /// `DIR/<target>` [default: the config's execution.spark.warehouse].
    #[arg(long, value_name = "DIR")]
    pub spark_warehouse: Option<PathBuf>,
    /// Lifecycle database (SQLite): the control plane (kill switches, approval
    /// tickets), budgets, leases, execution records, skills and the state registry
    /// (`context_state`) [default: the config's storage when it is sqlite, else none: no
    /// control plane, no skill state, state kept in memory; with a postgres storage the
    /// leases are in its database].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Failure policy when steps fail [default: the config's, else selective_quarantine].
    #[arg(long, value_enum)]
    pub failure_policy: Option<FailurePolicyChoice>,
    /// Attempts per step, the first included [default: the config's, else 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// Lifetime of the target lease, seconds [default: the config's, else 600].
    #[arg(long = "lease-ttl", value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub lease_ttl_secs: Option<u32>,
    /// Runtime threshold: most rows the run may write (0: off).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Runtime threshold: fewest rows the run must write (0: off).
    #[arg(long, value_name = "N")]
    pub min_rows: Option<u64>,
    /// Runtime threshold: largest null ratio of any output column (default 0.10).
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    pub max_null_ratio: Option<f64>,
    /// Runtime threshold: cost ceiling in DBU when the signature sets none.
    #[arg(long, value_name = "DBU", value_parser = non_negative)]
    pub max_cost_dbu: Option<f64>,
    /// The plan step `--sandbox panic` interrupts (default: `extract_nfe` when the plan
    /// has it, else the plan's first step); a step the plan lacks fails the run.
    #[arg(long, value_name = "STEP")]
    pub panic_step: Option<String>,
    /// Make this plan step fail on every attempt (mock and panic sandboxes; repeatable).
    #[arg(long = "mock-fail-step", value_name = "STEP")]
    pub mock_fail_steps: Vec<String>,
    /// Lease holder id of this process (default `cfa-<pid>`).
    #[arg(long)]
    pub lease_holder: Option<String>,
    /// Agent or caller id the run is charged to: `agent:ID` budgets apply beside the
    /// run's `domain:` and `target:` ones (budgets need a lifecycle database).
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Pause this many milliseconds when the run starts, while the target lease is held
    /// (demonstrates leases between processes).
    #[arg(long, value_name = "MS")]
    pub mock_delay_ms: Option<u64>,
}

impl ExecArgs {
    /// The sandbox: `--sandbox`, else the config's, else mock.
    pub fn sandbox(&self, cfg: Option<&CfaConfig>) -> SandboxChoice {
        self.sandbox
            .or_else(|| cfg.and_then(|c| c.execution.sandbox))
            .unwrap_or_default()
    }

    fn thresholds(&self, cfg: Option<&CfaConfig>) -> Result<RuntimeThresholds, Report> {
        let mut t = RuntimeThresholds::default();
        if let Some(c) = cfg {
            t = c.execution.thresholds.apply(t);
        }
        let flags = ThresholdSettings {
            max_null_ratio: self.max_null_ratio,
            min_rows: self.min_rows,
            max_rows: self.max_rows,
            max_cost_dbu: self.max_cost_dbu,
            ..ThresholdSettings::default()
        };
        let t = flags.apply(t);
        if t.max_rows > 0 && t.min_rows > t.max_rows {
            return Err(PlainError(format!(
                "the runtime thresholds cannot all hold: min_rows {} is above max_rows {}",
                t.min_rows, t.max_rows
            ))
            .into());
        }
        Ok(t)
    }

    fn dsn(&self, cfg: Option<&CfaConfig>) -> Option<String> {
        if let Some(d) = &self.dsn {
            return Some(d.clone());
        }
        let var = cfg
            .and_then(|c| c.execution.dsn_env.as_deref())
            .unwrap_or(DSN_ENV);
        std::env::var(var).ok().filter(|d| !d.trim().is_empty())
    }
}

/// The backend `cfa evaluate` generates with: a sandbox that runs one backend's
/// artifact only ([`cfa::execute::artifact_requirement`]: postgres runs `sql`) takes that
/// one (an explicit other `--backend` is an error); otherwise `--backend`, else the
/// config's, else pyspark.
pub fn backend(
    sandbox: SandboxChoice,
    flag: Option<&str>,
    cfg: Option<&CfaConfig>,
) -> Result<String, Report> {
    let name = sandbox.name().unwrap_or_default();
    if let Some(required) = cfa::execute::artifact_requirement(name) {
        let wanted = required.backend;
        return match flag {
            None => Ok(wanted.to_owned()),
            Some(b) if b == wanted => Ok(wanted.to_owned()),
            Some(other) => Err(PlainError(format!(
                "the {name} sandbox runs the {wanted} backend's artifact, not '{other}': use --backend {wanted} or another --sandbox"
            ))
            .into()),
        };
    }
    Ok(flag
        .map(str::to_owned)
        .or_else(|| cfg.and_then(|c| c.backend.clone()))
        .unwrap_or_else(|| "pyspark".to_owned()))
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

    fn check_environment(&self) -> Vec<cfa::Fault> {
        self.inner.check_environment()
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        std::thread::sleep(self.delay);
        self.inner.begin(ctx)
    }
}

/// Opens the lifecycle database the settings resolved (`--db`, else the config's
/// storage when its backend keeps a state store in a file), if any.
fn lifecycle_db(path: Option<&Path>) -> Result<Option<Arc<LifecycleDb>>, Report> {
    let Some(path) = path else {
        return Ok(None);
    };
    let db = LifecycleDb::open(path).map_err(|e| {
        PlainError(format!(
            "cannot open the lifecycle database {}: {e}",
            path.display()
        ))
    })?;
    Ok(Some(Arc::new(db)))
}

/// Where the target leases of runs are taken: the PostgreSQL database whose DSN is in
/// `$pg_env` when the storage is postgres (every replica sees its `cfa_leases`), else
/// the lifecycle database's table (the service's default); `per_run`: each run holds
/// the lease as `HOLDER/INTENT_ID` (a server running intents concurrently).
pub fn lease_policy(pg_env: Option<&str>, per_run: bool) -> Result<LeasePolicy, Report> {
    let store = match pg_env {
        Some(env) => {
            let leases = PgLeases::connect_env(env)
                .map_err(|e| PlainError(format!("cannot open the PostgreSQL lease table: {e}")))?;
            Some(Arc::new(leases) as Arc<dyn LeaseStore>)
        }
        None => None,
    };
    Ok(LeasePolicy { store, per_run })
}

/// The environment variable holding the DSN of the config's storage when its backend
/// is postgres (the database replicas share: audit chain and leases).
pub fn storage_pg_env(cfg: Option<&CfaConfig>) -> Option<&str> {
    cfg.filter(|c| c.storage.backend == "postgres")
        .and_then(|c| c.storage.dsn_env.as_deref())
}

/// The execution phase the flags and config ask for (`None` for sandbox `none`), over
/// the lifecycle database `state_db` the settings resolved (none: state in memory),
/// taking target leases as [`lease_policy`] of `pg_env` and `per_run` says.
pub fn execution_phase(
    args: &ExecArgs,
    cfg: Option<&CfaConfig>,
    state_db: Option<&Path>,
    pg_env: Option<&str>,
    per_run: bool,
) -> Result<Option<LifecycleExecution>, Report> {
    let Some(name) = args.sandbox(cfg).name() else {
        return Ok(None);
    };
    let settings = cfg.map(|c| &c.execution);
    let dsn = args.dsn(cfg);
    if name == "postgres" && dsn.is_none() {
        return Err(PlainError(format!(
            "the postgres sandbox needs a database: give --dsn, set ${DSN_ENV}, or name a variable in the config's execution.dsn_env"
        ))
        .into());
    }
    let mut mock = MockConfig::default();
    for step in &args.mock_fail_steps {
        mock = mock.fail_always(step);
    }
    let opts = SandboxOptions {
        dsn,
        partition_start: args
            .partition_start
            .clone()
            .or_else(|| settings.and_then(|s| s.partition_start.clone())),
        mock,
        panic_on_step: args.panic_step.clone(),
        spark: crate::spark_cli::options(args.spark_warehouse.as_deref(), cfg),
    };
    // The error of a failed connection names the operation, never the DSN.
    let mut sandbox = SandboxRegistry::with_builtins()
        .create(name, &opts)
        .map_err(|e| PlainError(format!("cannot create the {name} sandbox: {e}")))?;
    if let Some(ms) = args.mock_delay_ms {
        sandbox = Box::new(Paced {
            inner: sandbox,
            delay: std::time::Duration::from_millis(ms),
        });
    }
    let failure_policy = args
        .failure_policy
        .or_else(|| settings.and_then(|s| s.failure_policy))
        .unwrap_or_default();
    let max_attempts = args
        .max_attempts
        .or_else(|| settings.and_then(|s| s.max_attempts))
        .unwrap_or(RetryPolicy::default().max_attempts);
    let db = lifecycle_db(state_db)?;
    // With a lifecycle database the state registry is its `context_state` table.
    let store: Arc<dyn StateStore> = match &db {
        Some(db) => db.clone(),
        None => Arc::new(MemoryStateStore::new(cfa::lifecycle::DEFAULT_HISTORY_CAP)),
    };
    let promotion = cfg
        .map(|c| c.lifecycle.promotion.policy())
        .unwrap_or_default();
    let service = ExecutionService {
        sandbox,
        config: ExecutionConfig {
            failure_policy: failure_policy.policy(),
            retry: RetryPolicy { max_attempts },
            validator: RuntimeValidator::new(args.thresholds(cfg)?),
            ..ExecutionConfig::default()
        },
        store,
        db,
        leases: lease_policy(pg_env, per_run)?,
        engine: PromotionEngine::new(promotion, env!("CARGO_PKG_VERSION")),
        holder: args
            .lease_holder
            .clone()
            .unwrap_or_else(|| format!("cfa-{}", std::process::id())),
        lease_ttl_secs: args
            .lease_ttl_secs
            .or_else(|| settings.and_then(|s| s.lease_ttl_secs))
            .unwrap_or(DEFAULT_LEASE_TTL_SECS),
    };
    Ok(Some(LifecycleExecution::new(
        service,
        Box::new(jiff::Timestamp::now),
    )))
}
