//! `cfa init` (a real YAML config, a catalog and a YAML bundle, in `.` or in the
//! reference's `.cfa` layout, plus a template's files; never overwrites without
//! `--force`) and `cfa status` (the discovered config and what it resolves to).

use crate::config::{self, CfaConfig};
use crate::input::PlainError;
use crate::settings::{Flags, Settings, StoreLocation};
use clap::{Args, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The config `cfa init` writes.
pub const CONFIG_YAML: &str = "# CFA configuration (found by `cfa` from this directory or any subdirectory).\n# Paths are relative to this file. Command-line flags always win.\nversion: \"1.0\"\nstorage:\n  backend: jsonl\n  path: .cfa/audit.jsonl\n  retention_days: 90\ndefaults:\n  catalog: catalog.json\n  policy_bundle: policies/prod-v1.yaml\n  backend: pyspark\n# How `cfa evaluate` runs approved work (see `cfa evaluate --help`, section Execution).\nexecution:\n  sandbox: mock          # mock | panic | postgres | none\n  dsn_env: CFA_PG_DSN    # postgres: the variable holding the DSN (never the DSN itself)\n  failure_policy: selective_quarantine\n  max_attempts: 3\n  lease_ttl_secs: 600\n  thresholds:\n    max_null_ratio: 0.10\n    max_rows: 0          # 0: no limit\n# Skill promotion thresholds (`cfa lifecycle evaluate`); promotion never changes a decision.\nlifecycle:\n  promotion:\n    min_executions: 3\n    evaluation_window_days: 7\n    ifo_threshold: 0.75\n    ifs_threshold: 0.90\n    ifg_threshold: 1.0\n";

/// The config of the reference's `.cfa` layout (`cfa init --dir .cfa`): the same
/// settings as [`CONFIG_YAML`], with paths relative to `.cfa/config.yaml` itself.
fn dot_cfa_config() -> String {
    CONFIG_YAML
        .replace(
            "# CFA configuration (found by `cfa` from this directory or any subdirectory).",
            "# CFA configuration (.cfa/config.yaml: found by `cfa` from the directory holding .cfa\n# or any subdirectory).",
        )
        .replace("path: .cfa/audit.jsonl", "path: audit.jsonl")
}

/// `.cfa/.gitignore` of the `.cfa` layout: the state CFA writes stays out of git, the
/// config, catalog and bundle can be committed.
const DOT_CFA_GITIGNORE: &str = "# state written by cfa; config.yaml, catalog.json and policies/ can be committed\naudit.jsonl\naudit.jsonl.*\n*.db\n*.db-wal\n*.db-shm\n";

/// Arguments of `cfa init`.
#[derive(Debug, Args)]
#[command(after_help = "Layouts:
  cfa init                      cfa.yaml, catalog.json, policies/prod-v1.yaml in .
  cfa init --dir .cfa           the reference's layout: .cfa/config.yaml (found by config
                                discovery), .cfa/catalog.json, .cfa/policies/prod-v1.yaml,
                                .cfa/.gitignore
  cfa init -t ci-gate -d proj   the base files plus a template's own files in proj/
  cfa init --list               the templates

Every template's commands run as written from the project directory, e.g.
  cfa init -t ci-gate && sh scripts/cfa-gate.sh")]
pub struct InitArgs {
    /// Directory to initialise. A directory named `.cfa` gets the reference's layout
    /// (config.yaml inside it).
    #[arg(long, short = 'd', default_value = ".")]
    dir: PathBuf,
    /// Also write a template's files (see --list): ci-gate, dbt, mcp.
    #[arg(long, short = 't', value_name = "NAME")]
    template: Option<String>,
    /// List the templates and exit.
    #[arg(long, conflicts_with_all = ["template", "force"])]
    list: bool,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Output format (`json`: `{dir, files}`).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: crate::audit_cmd::Format,
}

/// True when `dir`'s last component is `.cfa`.
fn is_dot_cfa(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == ".cfa")
}

/// `cfa init`.
pub fn run_init(args: InitArgs) -> Result<ExitCode, Report> {
    if args.list {
        outln!("Templates (cfa init --template NAME [--dir DIR]):");
        for t in &crate::init_templates::TEMPLATES {
            outln!("  {:<8}  {}", t.name, t.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let template = match args.template.as_deref() {
        None => None,
        Some(name) => Some(crate::init_templates::find(name).ok_or_else(|| {
            PlainError(format!(
                "unknown template '{name}'. Templates: {} (see `cfa init --list`); nothing was written",
                crate::init_templates::names()
            ))
        })?),
    };
    let dot_cfa = is_dot_cfa(&args.dir);
    if dot_cfa && template.is_some() {
        return Err(PlainError(
            "a template writes a project directory (its scripts beside cfa.yaml): pass --dir PROJECT, not a .cfa directory; nothing was written".into(),
        )
        .into());
    }
    let bundle = cfa::policy::builtin::source("prod-v1")
        .ok_or_else(|| PlainError("built-in bundle prod-v1 is missing".into()))?;
    let mut files: Vec<(&str, String)> = if dot_cfa {
        vec![
            ("config.yaml", dot_cfa_config()),
            ("catalog.json", crate::demo::SAMPLE_CATALOG.to_owned()),
            ("policies/prod-v1.yaml", bundle.to_owned()),
            (".gitignore", DOT_CFA_GITIGNORE.to_owned()),
        ]
    } else {
        vec![
            ("cfa.yaml", CONFIG_YAML.to_owned()),
            ("catalog.json", crate::demo::SAMPLE_CATALOG.to_owned()),
            ("policies/prod-v1.yaml", bundle.to_owned()),
        ]
    };
    if let Some(t) = template {
        files.extend(t.files.iter().map(|(p, text)| (*p, (*text).to_owned())));
    }
    let existing: Vec<String> = files
        .iter()
        .map(|(p, _)| args.dir.join(p))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(PlainError(format!(
            "refusing to overwrite {} (use --force); nothing was written",
            existing.join(", ")
        ))
        .into());
    }
    for (rel, text) in &files {
        let path = args.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| PlainError(format!("cannot create {}: {e}", parent.display())))?;
        }
        let body = if text.ends_with('\n') {
            text.clone()
        } else {
            format!("{text}\n")
        };
        crate::spec_cmd::write_atomic(&path, body.as_bytes())?;
    }
    if args.format == crate::audit_cmd::Format::Json {
        let written: Vec<PathBuf> = files.iter().map(|(rel, _)| args.dir.join(rel)).collect();
        outln!("{}", json!({"dir": args.dir, "files": written}));
        return Ok(ExitCode::SUCCESS);
    }
    if dot_cfa {
        outln!("CFA initialized in {}/", args.dir.display());
    } else {
        outln!("CFA initialized in {}", args.dir.display());
    }
    for (rel, _) in &files {
        outln!("  {rel}");
    }
    match template {
        Some(t) => {
            outln!("Template {}: {}", t.name, t.summary);
            outln!("Try (from {}): {}", args.dir.display(), t.next);
        }
        None => {
            outln!("Try: cfa evaluate \"Join nfe with clientes daily, anonymize pii, into silver\"")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Output of `cfa status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormat {
    /// Labelled lines.
    #[default]
    Summary,
    /// JSON.
    Json,
}

/// Arguments of `cfa status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: StatusFormat,
}

fn describe_catalog(path: Option<&Path>) -> Value {
    let Some(p) = path else { return Value::Null };
    let datasets = if p.is_file() {
        crate::load::catalog(p)
            .map(|c| json!(c.catalog.datasets.keys().collect::<Vec<_>>()))
            .unwrap_or_else(|e| json!(format!("invalid: {e}")))
    } else {
        json!("missing")
    };
    json!({"path": p.display().to_string(), "datasets": datasets})
}

fn describe_policy(spec: Option<&str>) -> Value {
    match crate::load::policy(spec) {
        Ok(p) => json!({"source": p.source, "version": p.engine.version(),
                        "rules": p.engine.rules().len(), "hash": p.hash}),
        Err(e) => json!({"source": spec, "error": e.to_string()}),
    }
}

/// What the end of a JSONL audit log looks like (read-only: status never repairs):
/// earlier repairs (their sidecar files) and a torn tail still waiting.
fn describe_audit(settings: &Settings) -> Value {
    let Some(path) = settings.audit().and_then(StoreLocation::jsonl_path) else {
        return Value::Null;
    };
    if !path.is_file() {
        return Value::Null;
    }
    match cfa::audit::jsonl::tail_report(path) {
        Ok(r) => {
            let mut messages: Vec<String> = r.repaired.iter().map(|t| format!("{t}")).collect();
            if let Some((offset, bytes, terminated)) = r.torn {
                messages.push(if terminated {
                    format!(
                        "unreadable last line at offset {offset} ({bytes} bytes); run `cfa audit repair --file {}`",
                        path.display()
                    )
                } else {
                    format!(
                        "torn tail at offset {offset} ({bytes} bytes); the next append moves it aside"
                    )
                });
            }
            json!({
                "status": if r.torn.is_some() { "torn" } else if r.repaired.is_empty() { "ok" } else { "repaired" },
                "messages": messages,
            })
        }
        Err(e) => json!({"status": "error", "messages": [e.to_string()]}),
    }
}

fn status_value(c: &CfaConfig, settings: &Settings) -> Value {
    json!({
        "config_found": true,
        "config_path": c.path.display().to_string(),
        "config": c.raw,
        "resolved": {
            "version": c.version,
            "catalog": describe_catalog(c.catalog.as_deref()),
            "policy_bundle": describe_policy(settings.policy_bundle()),
            "backend": c.backend.clone().unwrap_or_else(|| "pyspark".into()),
            "storage": {
                "backend": c.storage.backend,
                "path": c.storage.path.display().to_string(),
                "exists": c.storage.path.exists(),
                "retention_days": c.storage.retention_days,
                "audit": describe_audit(settings),
            },
        },
        "settings": settings.describe(),
        // the reference's keys, beside ours
        "storage": {
            "backend": c.storage.backend,
            "path": c.storage.path.display().to_string(),
            "retention_days": c.storage.retention_days,
        },
        "storage_stats": crate::storage_cmd::status_stats(settings),
    })
}

/// `cfa status`.
pub fn run_status(args: StatusArgs) -> Result<ExitCode, Report> {
    let settings = crate::settings::resolve_process(&Flags::with_config(args.config.as_deref()))?;
    let Some(c) = settings.config() else {
        match args.format {
            StatusFormat::Json => outln!(
                "{}",
                json!({"config_found": false, "searched": config::CANDIDATES,
                       "settings": settings.describe(),
                       "config": null, "storage": null, "storage_stats": null})
            ),
            StatusFormat::Summary => {
                outln!(
                    "CFA Status: no config found (looked for {} in the current directory and every parent); run `cfa init`",
                    config::CANDIDATES.join(", ")
                );
                print_settings(&settings);
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let v = status_value(c, &settings);
    match args.format {
        StatusFormat::Json => outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        StatusFormat::Summary => {
            let at = |p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
            let text = |p: &str| at(p).as_str().unwrap_or("-").to_owned();
            outln!("CFA Status: config {}", c.path.display());
            outln!(
                "  catalog:       {}  datasets: {}",
                text("/resolved/catalog/path"),
                at("/resolved/catalog/datasets")
            );
            match v.pointer("/resolved/policy_bundle/error") {
                Some(e) => outln!(
                    "  policy_bundle: {}  ERROR: {}",
                    at("/resolved/policy_bundle/source"),
                    e.as_str().unwrap_or_default()
                ),
                None => outln!(
                    "  policy_bundle: {}  version {}  ({} rules)",
                    text("/resolved/policy_bundle/source"),
                    text("/resolved/policy_bundle/version"),
                    at("/resolved/policy_bundle/rules")
                ),
            }
            outln!("  backend:       {}", text("/resolved/backend"));
            outln!(
                "  storage:       {} at {}{}",
                text("/resolved/storage/backend"),
                text("/resolved/storage/path"),
                if at("/resolved/storage/exists") == json!(true) {
                    ""
                } else {
                    " (not created yet)"
                }
            );
            if let Some(Value::Array(messages)) = v.pointer("/resolved/storage/audit/messages") {
                for m in messages {
                    outln!("  audit:         {}", m.as_str().unwrap_or_default());
                }
            }
            print_settings(&settings);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What each setting resolves to and where it came from, one per line.
fn print_settings(settings: &Settings) {
    outln!("  settings (flag > env > config > default):");
    for line in settings.lines() {
        outln!("    {line}");
    }
}
