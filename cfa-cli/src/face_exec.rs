//! Governed runs in the long-running faces: the flags that make `cfa serve`
//! (`POST /v1/evaluate`) and `cfa mcp` (`cfa_evaluate_intent`, `cfa_compliance_check`)
//! execute the intents they approve in a sandbox, and the execute phase they share.
//! Every run holds its target lease while it executes (invariant I8), as
//! `HOLDER/INTENT_ID` so that the concurrent runs of one server never renew each
//! other's lease: in the PostgreSQL database every replica shares when the storage is
//! postgres (`--audit-pg-env`, or `cfa.yaml` `storage: {backend: postgres}`), else in
//! the lifecycle database. An overlapping run for the same target is blocked with
//! `STATE_TARGET_LEASED`, naming the holder. Without `--sandbox` the faces decide,
//! plan and generate, and never execute (the default).

use crate::exec_phase::{ExecArgs, SandboxChoice};
use crate::settings::Settings;
use cfa::execute::ExecutionPhase;
use clap::{Args, ValueEnum};
use miette::Report;
use std::path::Path;
use std::sync::Arc;

/// The sandboxes a face can execute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FaceSandbox {
    /// Do not execute: decide, plan, generate and validate only (the default).
    #[default]
    None,
    /// The in-process mock sandbox (deterministic metrics).
    Mock,
    /// A sandbox whose environment fails mid-run (demonstrates `rolled_back`).
    Panic,
}

/// The execution flags of `cfa serve` and `cfa mcp`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Execution")]
pub struct FaceExecArgs {
    /// Execute every approved intent in this sandbox, under its target lease (taken in
    /// the PostgreSQL database of a postgres storage, so replicas exclude each other,
    /// else in the lifecycle database); an overlapping run on the same target is
    /// blocked with STATE_TARGET_LEASED.
    #[arg(long, value_enum, default_value_t)]
    pub sandbox: FaceSandbox,
    /// Lifetime of a target lease, seconds [default: the config's, else 600].
    #[arg(long = "lease-ttl", value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub lease_ttl_secs: Option<u32>,
    /// This process's lease holder id (default `cfa-<pid>`); each run holds its lease
    /// as HOLDER/INTENT_ID.
    #[arg(long, value_name = "ID")]
    pub lease_holder: Option<String>,
    /// Pause this many milliseconds when a run starts, while its lease is held
    /// (demonstrates leases between replicas).
    #[arg(long, value_name = "MS")]
    pub mock_delay_ms: Option<u64>,
}

impl FaceExecArgs {
    /// The evaluate flags these amount to (everything else from the config's
    /// `execution` section, else the defaults).
    fn exec_args(&self, sandbox: SandboxChoice) -> ExecArgs {
        ExecArgs {
            sandbox: Some(sandbox),
            dsn: None,
            partition_start: None,
            spark_warehouse: None,
            db: None,
            failure_policy: None,
            max_attempts: None,
            lease_ttl_secs: self.lease_ttl_secs,
            max_rows: None,
            min_rows: None,
            max_null_ratio: None,
            max_cost_dbu: None,
            panic_step: None,
            mock_fail_steps: Vec::new(),
            lease_holder: self.lease_holder.clone(),
            agent: None,
            mock_delay_ms: self.mock_delay_ms,
        }
    }

    /// The execute phase of a face over the lifecycle database `lifecycle_db` (records,
    /// skills, state; none: state in memory), leasing in the PostgreSQL database whose
    /// DSN is in `$pg_env` when there is one; `None` without `--sandbox`.
    pub fn executor(
        &self,
        settings: &Settings,
        lifecycle_db: Option<&Path>,
        pg_env: Option<&str>,
    ) -> Result<Option<Arc<dyn ExecutionPhase>>, Report> {
        let sandbox = match self.sandbox {
            FaceSandbox::None => return Ok(None),
            FaceSandbox::Mock => SandboxChoice::Mock,
            FaceSandbox::Panic => SandboxChoice::Panic,
        };
        let phase = crate::exec_phase::execution_phase(
            &self.exec_args(sandbox),
            settings.config(),
            lifecycle_db,
            pg_env,
            true,
        )?;
        Ok(phase.map(|p| Arc::new(p) as Arc<dyn ExecutionPhase>))
    }
}
