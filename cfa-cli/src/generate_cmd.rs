//! `cfa generate` (the policy decision first, exactly as `cfa policy check` makes it;
//! then, for an approved signature only, plan + generate + static validation and an
//! all-or-nothing write, every file's header naming the approving decision) and
//! `cfa backend list`.

use crate::exit;
use crate::input::SourceFile;
use crate::load;
use crate::policy_cmd;
use crate::settings::Flags;
use cfa::codegen::{BackendRegistry, GeneratedArtifact, Provenance, StaticValidationResult};
use cfa::kernel::Decision;
use cfa::plan::{ExecutionPlanner, Planner};
use cfa::{Catalog, PolicyAction, StateSignature};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format of `cfa generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GenerateFormat {
    /// A human summary.
    #[default]
    Summary,
    /// `{"backend", "target", "artifact_hash", "files": [...], "static_validation": {...}}`.
    Json,
}

/// Output format of `cfa backend list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ListFormat {
    /// An aligned table.
    #[default]
    Table,
    /// A JSON array of capabilities.
    Json,
}

/// Arguments of `cfa generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Signature JSON file (`{"signature": …}` wrappers accepted). It is decided first,
    /// under `-p` and `-c`; only an approved signature gets code.
    #[arg(long, short = 's')]
    pub signature: PathBuf,
    /// Catalog (JSON, or YAML for .yaml/.yml); its `columns` lists feed the SQL and dbt backends.
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Backend name (see `cfa backend list`): pyspark, sql or dbt. Default: the config's
    /// `defaults.backend`; one of the two is required.
    #[arg(long, short = 'b')]
    pub backend: Option<String>,
    /// Directory to write the artifact into (dbt: a complete project).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = GenerateFormat::Summary)]
    pub format: GenerateFormat,
    /// Policy bundle the signature is decided under before anything is generated (as in
    /// `cfa policy check`): a built-in name (prod-v1, finops-strict-v1,
    /// compliance-strict-v1, eu-ai-act-v1, lgpd-v1), `default`, or a .yaml/.yml/.json
    /// file. Default: the built-in default rules. Only an approved signature gets code;
    /// replan exits 3 and block 4, writing nothing.
    #[arg(long = "policy-bundle", short = 'p', value_name = "PATH|NAME")]
    pub policy_bundle: Option<String>,
    /// Record the decision in this JSONL audit log.
    #[arg(long, value_name = "FILE", conflicts_with = "audit_db")]
    pub audit_log: Option<PathBuf>,
    /// Record the decision in this SQLite audit database.
    #[arg(long, value_name = "FILE")]
    pub audit_db: Option<PathBuf>,
    /// Config file giving the defaults of --policy-bundle, --catalog and the audit log
    /// (default: discovered from the current directory upwards; flags always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Backend commands.
#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// List the registered backends and their capabilities.
    List {
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

fn issues_exit(file: &Path, what: &str, issues: &[cfa::types::validate::Issue]) -> ExitCode {
    crate::ux::json_issues_error(
        &format!("{} is not a valid {what}", file.display()),
        &file.display().to_string(),
        &format!("invalid_{what}"),
        crate::load::issues_json(issues),
    );
    eprintln!("error: {} is not a valid {what}:", file.display());
    for i in issues {
        eprintln!("  {}", crate::input::clip_message(&i.to_string()));
    }
    exit::INVALID_INPUT.into()
}

fn read_signature(path: &Path) -> miette::Result<Result<StateSignature, ExitCode>> {
    let src = SourceFile::read(path)?;
    let value = src.parse_json()?;
    let issues = cfa::types::validate::signature(&value, true);
    if !issues.is_empty() {
        return Ok(Err(issues_exit(path, "signature", &issues)));
    }
    let inner = cfa::types::validate::unwrap_signature(&value);
    StateSignature::from_value(inner)
        .map(Ok)
        .map_err(|e| miette::miette!("{}: {e}", path.display()))
}

fn read_catalog(path: &Path) -> miette::Result<Result<Catalog, ExitCode>> {
    let src = SourceFile::read(path)?;
    // Located errors (file:line:column and a snippet) for YAML as for JSON.
    let value: Value = crate::load::json_or_yaml(&src)?;
    let issues = cfa::types::validate::catalog(&value, false);
    if !issues.is_empty() {
        return Ok(Err(issues_exit(path, "catalog", &issues)));
    }
    Catalog::from_value(&value)
        .map(Ok)
        .map_err(|e| miette::miette!("{}: {e}", path.display()))
}

/// Writes every file, all or nothing: into a fresh sibling staging dir renamed onto
/// `out` when `out` does not exist, else file by file through a temp file + rename.
fn write_artifact(out: &Path, artifact: &GeneratedArtifact) -> miette::Result<()> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        miette::miette!(
            "cannot {what} {}: {}",
            p.display(),
            crate::input::io_reason(&e)
        )
    };
    for f in &artifact.files {
        // Paths come from the backend; still refuse anything that could leave `out`.
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(miette::miette!(
                "refusing to write unsafe artifact path {:?}",
                f.path
            ));
        }
    }
    if !out.exists() {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let staging = parent.join(format!(".{name}.cfa-tmp-{}", std::process::id()));
        let result = (|| {
            for f in &artifact.files {
                let p = staging.join(&f.path);
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
                }
                std::fs::write(&p, &f.content).map_err(|e| io("write", &p, e))?;
            }
            std::fs::rename(&staging, out).map_err(|e| io("move into place", out, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        return result;
    }
    for f in &artifact.files {
        let p = out.join(&f.path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        }
        let tmp = p.with_extension(format!("cfa-tmp-{}", std::process::id()));
        std::fs::write(&tmp, &f.content).map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("move into place", &p, e)
        })?;
    }
    Ok(())
}

fn decision_json(d: &Decision) -> Value {
    json!({
        "decision_id": d.decision_id,
        "action": d.result.action,
        "signature_hash": d.signature_hash,
        "content_hash": d.content_hash,
        "policy_bundle": d.policy_bundle,
        "policy_bundle_hash": d.policy_bundle_hash,
        "catalog_hash": d.catalog_hash,
        "audit_event_hash": d.audit_event_hash,
    })
}

fn report_json(a: &GeneratedArtifact, v: &StaticValidationResult, d: &Decision) -> Value {
    json!({
        "generated": true,
        "decision": decision_json(d),
        "backend": a.backend,
        "language": a.language.as_str(),
        "target": a.target,
        "write_mode": a.write_mode,
        "artifact_hash": a.artifact_hash(),
        "files": a.files,
        "static_validation": v,
    })
}

/// Runs `cfa generate`.
pub fn run_generate(args: GenerateArgs) -> miette::Result<ExitCode> {
    let sig = match read_signature(&args.signature)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let settings = crate::settings::resolve_process(&Flags {
        config: args.config.as_deref(),
        policy_bundle: args.policy_bundle.as_deref(),
        catalog: args.catalog.as_deref(),
        audit: Flags::audit_log_or_db(args.audit_log.as_deref(), args.audit_db.as_deref()),
        backend: args.backend.as_deref(),
        ..Flags::default()
    })?;
    let Some(backend_name) = settings.backend.value.clone() else {
        eprintln!(
            "error: a backend is required: pass -b/--backend NAME (pyspark, sql or dbt; see `cfa backend list`) or set defaults.backend in cfa.yaml"
        );
        return Ok(exit::USAGE.into());
    };
    let catalog = match settings.catalog() {
        None => None,
        Some(p) => match read_catalog(p)? {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        },
    };
    let registry = crate::spark_cli::registry(settings.config(), false);
    let backend = match registry.get(&backend_name) {
        Ok(b) => b,
        Err(e) => return Ok(crate::ux::usage_error(&e.to_string())),
    };
    let policy = load::policy(settings.policy_bundle())?;
    // Hostile names are reported against the signature before anything else runs.
    cfa::codegen::ident::check_signature(&sig).map_err(|e| miette::miette!("{e}"))?;
    // The decision comes first: only approved work gets code.
    let target = policy_cmd::audit_target(&settings)?;
    let decided = policy_cmd::decide(&sig, &policy, catalog.as_ref(), 0, target.as_ref())?;
    if decided.result.action != PolicyAction::Approve {
        return Ok(refuse(&args, &backend_name, &decided));
    }
    let plan = ExecutionPlanner::default()
        .plan(&sig, catalog.as_ref())
        .map_err(|e| miette::miette!("cannot plan {}: {e}", args.signature.display()))?;
    let mut artifact = backend
        .generate(&plan, &sig)
        .map_err(|e| miette::miette!("{e}"))?;
    artifact.stamp(&Provenance {
        decision_id: decided.decision_id.clone(),
        content_hash: decided.content_hash.clone(),
        policy_bundle: decided.policy_bundle.clone(),
        policy_bundle_hash: decided.policy_bundle_hash.clone(),
    });
    let validation = backend.validate(&artifact, &sig);
    if !validation.passed {
        if args.format == GenerateFormat::Json {
            outln!("{}", report_json(&artifact, &validation, &decided));
        }
        eprintln!("error: generated code failed static validation; nothing was written:");
        for f in &validation.faults {
            eprintln!("  {f}");
        }
        return Ok(exit::BLOCKED.into());
    }
    write_artifact(&args.out, &artifact)?;
    match args.format {
        GenerateFormat::Json => outln!("{}", report_json(&artifact, &validation, &decided)),
        GenerateFormat::Summary => {
            outln!(
                "generated {} file(s) with backend {} for target {} into {}",
                artifact.files.len(),
                artifact.backend,
                artifact.target,
                args.out.display()
            );
            for f in &artifact.files {
                outln!("  {}", f.path);
            }
            outln!(
                "static validation: passed ({} checks, {} warnings)",
                validation.checks_performed,
                validation.warnings.len()
            );
            outln!("artifact hash: {}", artifact.artifact_hash());
            outln!(
                "approved by decision {} (policy bundle {}, content_hash {})",
                decided.decision_id,
                decided.policy_bundle,
                decided.content_hash
            );
        }
    }
    Ok(exit::APPROVED.into())
}

/// Reports a decision other than approve (its faults, patches and manual fixes, as
/// `cfa policy check` shows them) and exits with its code; nothing is written.
fn refuse(args: &GenerateArgs, backend: &str, decided: &Decision) -> ExitCode {
    let out = policy_cmd::Output {
        name: args.signature.display().to_string(),
        decided,
    };
    match args.format {
        GenerateFormat::Json => {
            let mut v = out.json();
            if let Some(o) = v.as_object_mut() {
                o.insert("generated".into(), Value::Bool(false));
                o.insert("backend".into(), Value::from(backend));
            }
            outln!("{v}");
        }
        GenerateFormat::Summary => out!("{}", out.summary()),
    }
    eprintln!(
        "error: {} is not approved ({}) under policy bundle {}: no code was generated and nothing was written to {}",
        args.signature.display(),
        decided.result.action.as_str(),
        decided.policy_bundle,
        args.out.display()
    );
    policy_cmd::exit_for(decided.result.action).into()
}

/// Runs `cfa backend …`.
pub fn run_backend(cmd: BackendCommand) -> miette::Result<ExitCode> {
    match cmd {
        BackendCommand::List { format } => {
            let registry = BackendRegistry::with_builtins();
            let caps: Vec<_> = registry.iter().map(|b| b.capabilities()).collect();
            match format {
                ListFormat::Json => {
                    let text = serde_json::to_string_pretty(&caps)
                        .map_err(|e| miette::miette!("cannot render capabilities: {e}"))?;
                    outln!("{text}");
                }
                ListFormat::Table => {
                    let rows: Vec<[String; 7]> = caps
                        .iter()
                        .map(|c| {
                            [
                                c.name.clone(),
                                c.version.clone(),
                                c.languages.join(","),
                                c.pii_methods.join(","),
                                if c.supports_merge { "yes" } else { "no" }.into(),
                                c.max_rows.to_string(),
                                if c.requires_catalog_columns {
                                    "yes"
                                } else {
                                    "no"
                                }
                                .into(),
                            ]
                        })
                        .collect();
                    let header = [
                        "BACKEND",
                        "VERSION",
                        "LANGUAGES",
                        "PII",
                        "MERGE",
                        "MAX ROWS",
                        "NEEDS COLUMNS",
                    ];
                    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
                    for r in &rows {
                        for (w, cell) in widths.iter_mut().zip(r) {
                            *w = (*w).max(cell.len());
                        }
                    }
                    let line = |cells: Vec<&str>| {
                        cells
                            .iter()
                            .zip(&widths)
                            .map(|(c, w)| format!("{c:<w$}"))
                            .collect::<Vec<_>>()
                            .join("  ")
                            .trim_end()
                            .to_owned()
                    };
                    outln!("{}", line(header.to_vec()));
                    for r in &rows {
                        outln!("{}", line(r.iter().map(String::as_str).collect()));
                    }
                }
            }
            Ok(exit::APPROVED.into())
        }
    }
}
