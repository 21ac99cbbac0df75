//! The audit commands on the PostgreSQL chain replicas share (`--pg-env NAME`, or the
//! config's `storage: {backend: postgres, dsn_env: NAME}`): `verify` streams the chain
//! from the database, `checkpoint` signs its size and Merkle root, `export` writes it
//! as the JSONL log. The DSN is only ever read from the environment variable named;
//! it never appears in argv, output or errors (messages name `user@host:port/db`).

use crate::audit_cmd::{Format, VerifyArgs};
use crate::settings::{Flags, StoreLocation};
use cfa_audit::checkpoint::{self, CheckpointCheck};
use cfa_audit::{Checkpoint, PgStore, SignerKey, VerifierKey, VerifyOptions, VerifyReport};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--help` example of `cfa audit export`.
pub const EXPORT_HELP: &str = "\
The DSN is read from the environment variable you name (never from argv):

  export CFA_PG_DSN='host=db.internal user=cfa password=… dbname=cfa'
  cfa audit export --pg-env CFA_PG_DSN -o audit.jsonl
  cfa audit verify --file audit.jsonl        # the same chain, offline

With `storage: {backend: postgres, dsn_env: CFA_PG_DSN}` in cfa.yaml, --pg-env
can be left out. The file is written beside its destination and renamed over it
once complete (nothing half-written on failure).";

/// `cfa audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The environment variable holding the PostgreSQL DSN [default: the config's
    /// `storage.dsn_env` when its backend is postgres].
    #[arg(long, value_name = "NAME")]
    pg_env: Option<String>,
    /// Config file whose `storage` names the database when --pg-env is absent
    /// (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The JSONL file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// Output format (`json`: `{file, events, bytes, tail_hash, database}`).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

fn connect(env: &str) -> miette::Result<PgStore> {
    PgStore::connect_env(env).map_err(|e| miette::miette!("{e}"))
}

/// Verifies the chain in the database (and a checkpoint when given): the name shown
/// for it, the report and the checkpoint check.
pub fn verify(
    env: &str,
    a: &VerifyArgs,
) -> miette::Result<(String, VerifyReport, Option<CheckpointCheck>)> {
    if a.anchor.is_some() {
        return Err(miette::miette!(
            "--anchor applies to retained JSONL/SQLite logs; a PostgreSQL chain is verified from genesis"
        ));
    }
    let store = connect(env)?;
    let mut opts = VerifyOptions {
        allow_legacy: a.allow_legacy,
        intent_id: a.id.clone(),
        ..VerifyOptions::default()
    };
    let name = format!("postgres {}", store.target());
    match (&a.checkpoint, &a.pubkey) {
        (Some(cp_path), Some(key_path)) => {
            let note = crate::input::read_text(cp_path, "checkpoint")?;
            let key = VerifierKey::parse(&crate::input::read_text(key_path, "verifier key")?)
                .map_err(|e| miette::miette!("{}: {e}", key_path.display()))?;
            let cp = Checkpoint::open(&note, &key)
                .map_err(|e| miette::miette!("{}: {e}", cp_path.display()))?;
            opts.merkle = true;
            opts.collect_leaves = true;
            let report = store
                .verify_chain(&opts)
                .map_err(|e| miette::miette!("{e}"))?;
            let check = checkpoint::check_report(report, cp)
                .map_err(|e| miette::miette!("{}: {e}", cp_path.display()))?;
            Ok((name, check.report.clone(), Some(check)))
        }
        _ => {
            let report = store
                .verify_chain(&opts)
                .map_err(|e| miette::miette!("{e}"))?;
            Ok((name, report, None))
        }
    }
}

/// Verifies the chain (it must be intact) and signs a checkpoint of it.
pub fn checkpoint(
    env: &str,
    origin: &str,
    key: &SignerKey,
    allow_legacy: bool,
) -> miette::Result<(Checkpoint, String)> {
    let store = connect(env)?;
    let report = store
        .verify_chain(&VerifyOptions {
            merkle: true,
            allow_legacy,
            ..VerifyOptions::default()
        })
        .map_err(|e| miette::miette!("{e}"))?;
    checkpoint::sign_report(&format!("postgres {}", store.target()), report, origin, key)
        .map_err(|e| miette::miette!("{e}"))
}

/// `cfa audit export`.
pub fn export(a: ExportArgs) -> miette::Result<ExitCode> {
    let env = match a.pg_env {
        Some(env) => env,
        None => {
            let settings = crate::settings::resolve_process(&Flags {
                config: a.config.as_deref(),
                ..Flags::default()
            })?;
            match settings
                .audit()
                .and_then(StoreLocation::pg_env)
                .map(str::to_owned)
            {
                Some(env) => env,
                None => {
                    return Ok(crate::ux::usage_error(
                        "--pg-env NAME is required (and no cfa.yaml was found whose storage is postgres)",
                    ));
                }
            }
        }
    };
    let store = connect(&env)?;
    let done = store
        .export_file(&a.output)
        .map_err(|e| miette::miette!("{e}"))?;
    match a.format {
        Format::Summary => outln!(
            "[OK] Exported {} events ({} bytes) from {} to {}",
            done.events,
            done.bytes,
            store.target(),
            a.output.display()
        ),
        Format::Json => outln!(
            "{}",
            json!({
                "file": a.output.display().to_string(),
                "events": done.events,
                "bytes": done.bytes,
                "tail_hash": done.head.event_hash,
                "database": store.target(),
            })
        ),
    }
    Ok(ExitCode::from(crate::exit::APPROVED))
}
