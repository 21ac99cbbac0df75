//! The flags `cfa serve` and `cfa mcp` share (catalog, config, policy bundle, audit log
//! and its durability), flattened into both, and their resolution through the
//! [`crate::settings`] layer: flag > `$CFA_POLICY_BUNDLE` > `cfa.yaml` > default.

use crate::settings::{self, Flags, Settings};
use cfa::Durability;
use clap::Args;
use miette::Report;
use std::path::{Path, PathBuf};

/// The shared face flags.
#[derive(Debug, Args)]
pub struct FaceFlags {
    /// Dataset catalog (JSON, or YAML by extension) the faces ground and check against
    /// [default: the config's].
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Config file giving the defaults of the catalog, policy bundle, audit log and
    /// lifecycle database (default: discovered from the current directory upwards;
    /// flags always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Active policy bundle: a file or a built-in name [env: CFA_POLICY_BUNDLE]
    /// (default: the config's, else the built-in default rules). Requests and tool
    /// calls may name other built-in bundles, never files.
    #[arg(long = "policy-bundle", value_name = "PATH|NAME")]
    pub policy_bundle: Option<String>,
    /// JSONL audit log: every decision is appended to it [default: the config's storage
    /// when it is jsonl].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// PostgreSQL audit chain shared by replicas: the NAME of the environment variable
    /// holding its DSN (never the DSN itself) [default: the config's storage when it is
    /// postgres].
    #[arg(long, value_name = "NAME", conflicts_with = "audit_log")]
    pub audit_pg_env: Option<String>,
    /// When audit appends reach the disk: always, batch, batch:N or never.
    #[arg(long, default_value = "always", value_name = "MODE")]
    pub audit_fsync: Durability,
    /// Candidate bundle (a file or a built-in name) evaluated beside the enforcing one on
    /// every decision without changing it; each flip is audited (`shadow_flip`) and counted.
    #[arg(long, value_name = "PATH|NAME")]
    pub shadow_bundle: Option<String>,
}

/// What a face runs with.
#[derive(Debug, Clone)]
pub struct FaceSettings {
    /// Everything resolved.
    pub settings: Settings,
    /// The JSONL audit log decisions are appended to (faces record to JSONL only).
    pub audit_log: Option<PathBuf>,
    /// The environment variable holding the DSN of the PostgreSQL audit chain
    /// (`--audit-pg-env`, else the config's storage when it is postgres).
    pub audit_pg_env: Option<String>,
    /// The lifecycle database: the one store of the control plane (kill switches,
    /// approval tickets), the budgets and the leases (`--lifecycle-db`, its old name
    /// `--control-db`, else the config's sqlite storage).
    pub lifecycle_db: Option<PathBuf>,
}

impl FaceSettings {
    /// `gov` recording into the PostgreSQL chain when one is configured.
    pub fn with_pg_audit(
        &self,
        gov: crate::service::decide::Governance,
    ) -> Result<crate::service::decide::Governance, Report> {
        match &self.audit_pg_env {
            None => Ok(gov),
            Some(env) => Ok(gov.with_audit(
                crate::service::AuditLog::open_pg(env).map_err(|e| Report::msg(e.message))?,
            )),
        }
    }
}

impl FaceFlags {
    /// Resolves the face settings; `policy_bundle` overrides the long flag (mcp's
    /// `-p`), `lifecycle_db` and `roots` are the face's own flags.
    pub fn resolve(
        &self,
        policy_bundle: Option<&str>,
        lifecycle_db: Option<&Path>,
        roots: &[PathBuf],
    ) -> Result<FaceSettings, Report> {
        let settings = settings::resolve_process(&Flags {
            config: self.config.as_deref(),
            policy_bundle: policy_bundle.or(self.policy_bundle.as_deref()),
            catalog: self.catalog.as_deref(),
            audit: Flags::audit_log_or_db(self.audit_log.as_deref(), None),
            state_db: lifecycle_db.map(|p| ("--lifecycle-db", p)),
            roots,
            ..Flags::default()
        })?;
        let audit_log = settings
            .audit()
            .and_then(settings::StoreLocation::jsonl_path)
            .map(Path::to_path_buf);
        let audit_pg_env = match (&self.audit_pg_env, &audit_log) {
            (Some(env), _) => Some(env.clone()),
            (None, Some(_)) => None,
            (None, None) => settings
                .audit()
                .and_then(settings::StoreLocation::pg_env)
                .map(str::to_owned),
        };
        let lifecycle_db = settings.state_db.value.clone();
        Ok(FaceSettings {
            settings,
            audit_log,
            audit_pg_env,
            lifecycle_db,
        })
    }
}
