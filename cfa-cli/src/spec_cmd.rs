//! `cfa validate` (an intent through the kernel with a behaviour spec's failure modes
//! added as rules) and `cfa taxonomy generate` / `cfa taxonomy test-intents` (what
//! cfa-policy's `spec` module makes of a spec). Reading the file, resolving the
//! catalog and bundle, rendering and exit codes live here; the spec format and the
//! rules it becomes live in cfa-policy.

use crate::input::{PlainError, SourceFile, clip_message};
use crate::kernel_cmd::{json_result, state_exit};
use crate::kernel_render;
use crate::load;
use crate::settings::{self, Flags};
use cfa::policy::spec::{BehaviorSpec, SpecError, load_spec};
use cfa::policy::{ConditionRegistry, LocatedIssue};
use cfa::resolve::{KeywordPack, RuleBasedNormalizer};
use cfa::{Catalog, Grounding, Kernel, KernelConfig, SystemClock, UuidIds};
use clap::{Args, Subcommand, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output of `cfa validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SpecFormat {
    /// `✓ PASSED  | {state} | {intent}` or `✗ BLOCKED | {reason}`.
    #[default]
    Summary,
    /// `{"spec": {...}, "passed": …}` and every field of the kernel result.
    Json,
}

/// Arguments of `cfa validate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cfa validate -s examples/specs/pii-join.yaml \\
      -i \"Join nfe with clientes daily, anonymize pii, into silver\"
  ✓ PASSED  | approved | Join nfe with clientes daily, anonymize pii, into silver
  cfa validate -s examples/specs/pii-join.yaml -i \"Copy clientes into gold\" -f json

Each failure mode becomes the rule behavior_spec_{code} (fault BEHAVIOR_{CODE}, message
\"{label}: {description}\"), evaluated after the active bundle's rules. Its `action` is
honoured: block blocks, replan applies the condition's fix and decides again, warn reports
a warning. Exit codes as `cfa evaluate`: 0 passed, 4 blocked, 1 invalid spec or input.
The spec format: docs/cli.md#behaviour-specs.")]
pub struct ValidateArgs {
    /// Behaviour spec (YAML).
    #[arg(long, short = 's', value_name = "SPEC.yaml")]
    spec: PathBuf,
    /// The intent text to govern.
    #[arg(long, short = 'i', value_name = "TEXT")]
    intent: String,
    /// Code-generation backend (pyspark, sql, dbt); default from the config, else pyspark.
    #[arg(long, short = 'b')]
    backend: Option<String>,
    /// Dataset catalog [default: the spec's `context.catalog`, else the config's].
    #[arg(long, short = 'c')]
    catalog: Option<PathBuf>,
    /// Policy bundle the spec's rules are added to: a file or a built-in name [default:
    /// the spec's `context.policy_bundle`, else the config's, else the default rules].
    #[arg(long = "policy-bundle", short = 'p', value_name = "PATH|NAME")]
    policy: Option<String>,
    /// Config file (default: discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: SpecFormat,
    /// Do not block ungrounded intents at formalize (they still face the policy).
    #[arg(long)]
    lenient: bool,
    /// Treat warnings (`action: warn` failure modes among them) as blocking.
    #[arg(long)]
    warnings_blocking: bool,
    /// Accepted for compatibility; a blocked intent already exits 4.
    #[arg(long)]
    exit_code: bool,
    /// Report the result but exit 0 whatever it is.
    #[arg(long)]
    exit_zero: bool,
}

/// `cfa taxonomy` subcommands.
#[derive(Debug, Subcommand)]
pub enum TaxonomyCommand {
    /// Print (or save) the spec's taxonomy and the rules its failure modes become.
    #[command(after_help = "Example:
  cfa taxonomy generate -s examples/specs/pii-join.yaml -o taxonomy.json
      Taxonomy saved to taxonomy.json
        Categories: 2
        Rules:      4

The JSON is {\"taxonomy\": {name, description, context, categories: [{name,
failure_modes}]}, \"rules\": [...]}; the rules have the keys of a policy bundle's rules.")]
    Generate(GenerateArgs),
    /// Print (or save) test intents for the spec's failure modes, one per line.
    #[command(after_help = "Example:
  cfa taxonomy test-intents -s examples/specs/pii-join.yaml -n 2 -o intents.txt
      4 test intents saved to intents.txt

Each line ends #{code}#{i} (e.g. `... persist to gold #gold_without_approval#1`). At most min(N, 3) intents per category, taken round-robin over
the category's failure modes.")]
    TestIntents(TestIntentsArgs),
}

/// Arguments of `cfa taxonomy generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Behaviour spec (YAML).
    #[arg(long, short = 's', value_name = "SPEC.yaml")]
    spec: PathBuf,
    /// Write the JSON to this file (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `cfa taxonomy test-intents`.
#[derive(Debug, Args)]
pub struct TestIntentsArgs {
    /// Behaviour spec (YAML).
    #[arg(long, short = 's', value_name = "SPEC.yaml")]
    spec: PathBuf,
    /// Intents per category (capped at 3) [default: the spec's `generate.test_intents`, else 5].
    #[arg(long = "count", short = 'n', value_name = "N")]
    count: Option<usize>,
    /// Write the intents to this file (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format (`json`: `{"intents": [...]}`, or `{"path", "count"}` with `-o`).
    #[arg(long, short = 'f', value_enum, default_value_t = crate::audit_cmd::Format::Summary)]
    format: crate::audit_cmd::Format,
}

/// Reads and loads a spec; errors name the file and every issue's line:column.
fn read_spec(path: &Path) -> Result<(SourceFile, BehaviorSpec), Report> {
    let src = SourceFile::read(path)?;
    match load_spec(&src.text, &src.name()) {
        Ok(spec) => Ok((src, spec)),
        Err(e) => Err(spec_error(&src, &e)),
    }
}

fn spec_error(src: &SourceFile, e: &SpecError) -> Report {
    match e {
        SpecError::Parse(p) => match p.position {
            Some(pos) => src.error_at(
                pos.line,
                pos.column,
                &format!("Error loading spec: {}", p.message),
                "here",
            ),
            None => Report::msg(format!("Error loading spec {}: {}", src.name(), p.message)),
        },
        SpecError::Invalid(inv) => {
            let lines: Vec<String> = inv
                .issues
                .iter()
                .map(|li| format!("  - {}", located(&src.name(), li)))
                .collect();
            Report::msg(format!(
                "Error loading spec {}:\n{}",
                src.name(),
                lines.join("\n")
            ))
        }
    }
}

fn located(file: &str, li: &LocatedIssue) -> String {
    let text = clip_message(&li.issue.to_string());
    match li.position {
        Some(p) => format!("{file}:{}:{}: {text}", p.line, p.column),
        None => format!("{file}: {text}"),
    }
}

/// `{"error": {message, path, line, column, code: "invalid_spec", issues}}` for a spec
/// that does not load (docs/cli.md#errors-as-json): the place is the first issue's, and
/// each issue carries its path, line and column.
fn spec_error_json(src: &SourceFile, e: &SpecError) -> Value {
    let (message, first, issues) = match e {
        SpecError::Parse(p) => (
            format!("cannot parse the spec: {}", p.message),
            p.position,
            vec![json!({"path": "", "message": p.message,
                        "line": p.position.map(|x| x.line), "column": p.position.map(|x| x.column)})],
        ),
        SpecError::Invalid(inv) => (
            format!("the spec has {} issue(s)", inv.issues.len()),
            inv.issues.first().and_then(|li| li.position),
            inv.issues
                .iter()
                .map(|li| {
                    json!({"path": li.issue.path, "message": li.issue.message,
                           "line": li.position.map(|x| x.line), "column": li.position.map(|x| x.column)})
                })
                .collect(),
        ),
    };
    let place = crate::ux::ErrorPlace {
        path: src.name(),
        line: first.map(|x| x.line),
        column: first.map(|x| x.column),
    };
    let mut v = crate::ux::error_value(&message, Some(&place), "invalid_spec");
    if let Some(obj) = v.get_mut("error").and_then(Value::as_object_mut) {
        obj.insert("issues".into(), Value::from(issues));
    }
    v
}

/// A path from the spec's `context`, relative to the spec file.
fn context_path(spec_file: &Path, spec: &BehaviorSpec, key: &str) -> Option<PathBuf> {
    let value = spec.context.get(key)?.as_str()?;
    let p = Path::new(value);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        spec_file.parent().unwrap_or(Path::new("")).join(p)
    })
}

/// `context.policy_bundle`: a built-in name as written, a path relative to the spec.
fn context_bundle(spec_file: &Path, spec: &BehaviorSpec) -> Option<String> {
    let value = spec.context.get("policy_bundle")?.as_str()?;
    if load::looks_like_path(value) {
        context_path(spec_file, spec, "policy_bundle").map(|p| p.display().to_string())
    } else {
        Some(value.to_owned())
    }
}

/// The reference's 60-character cut of the intent.
fn short(intent: &str) -> String {
    intent.chars().take(60).collect()
}

/// `cfa validate`.
pub fn run_validate(args: ValidateArgs) -> Result<ExitCode, Report> {
    let _ = args.exit_code;
    let src = SourceFile::read(&args.spec)?;
    let spec = match load_spec(&src.text, &src.name()) {
        Ok(spec) => spec,
        Err(e) => {
            // Reported here, not returned: the issue list is part of the JSON error.
            if args.format == SpecFormat::Json {
                outln!("{}", spec_error_json(&src, &e));
            }
            eprintln!("{:?}", spec_error(&src, &e));
            return Ok(crate::exit::INVALID_INPUT.into());
        }
    };
    let spec_catalog = context_path(&src.path, &spec, "catalog");
    let spec_bundle = context_bundle(&src.path, &spec);
    let settings = settings::resolve_process(&Flags {
        config: args.config.as_deref(),
        policy_bundle: args.policy.as_deref().or(spec_bundle.as_deref()),
        catalog: args.catalog.as_deref().or(spec_catalog.as_deref()),
        backend: args.backend.as_deref(),
        ..Flags::default()
    })?;
    let policy = load::policy(settings.policy_bundle())?;
    let base_version = policy.engine.version().to_owned();
    let rules = spec.rules();
    let rule_names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let version = format!("{base_version}+spec:{}", spec.name);
    let engine = policy
        .engine
        .extended(version, rules, &ConditionRegistry::with_builtins())
        .map_err(|e| PlainError(format!("cannot add the rules of {}: {e}", src.name())))?;
    let catalog_given = settings.catalog().is_some();
    let catalog = match settings.catalog() {
        Some(p) => load::catalog(p)?.catalog,
        None => Catalog::empty(),
    };
    if !catalog_given {
        eprintln!(
            "note: no catalog loaded ({}, or `context.catalog` in the spec): no dataset can be matched, so intents are ungrounded",
            kernel_render::CLI_NO_CATALOG_HINT
        );
    }
    let mut kc = KernelConfig::new(engine, catalog);
    kc.policy_bundle_hash = policy.hash;
    kc.backend = args
        .backend
        .clone()
        .or_else(|| settings.config().and_then(|c| c.backend.clone()))
        .unwrap_or_else(|| "pyspark".to_owned());
    kc.warnings_are_blocking = args.warnings_blocking;
    kc.grounding = if args.lenient {
        Grounding::Lenient
    } else {
        Grounding::Strict
    };
    let kernel = Kernel::builder(kc)
        .normalizer(RuleBasedNormalizer::new(vec![KeywordPack::english()]))
        .ids(UuidIds)
        .clock(SystemClock)
        .build()
        .map_err(|e| PlainError(e.to_string()))?;
    let mut result = kernel.process(&args.intent);
    if !catalog_given {
        kernel_render::explain_missing_catalog(&mut result, kernel_render::CLI_NO_CATALOG_HINT);
    }
    let passed = result.is_executable();
    match args.format {
        SpecFormat::Summary => {
            if passed {
                outln!(
                    "{} PASSED  | {} | {}",
                    crate::out::icon_ok(),
                    result.state.as_str(),
                    short(&args.intent)
                );
            } else {
                outln!(
                    "{} BLOCKED | {}",
                    crate::out::icon_fail(),
                    result.blocked_reason
                );
            }
        }
        SpecFormat::Json => {
            let mut v = json_result(&args.intent, &result);
            if let Value::Object(m) = &mut v {
                let mut head = serde_json::Map::new();
                head.insert(
                    "spec".into(),
                    json!({"name": spec.name, "path": src.name(), "base_policy_bundle": base_version,
                           "rules_added": rule_names}),
                );
                head.insert("passed".into(), passed.into());
                head.append(m);
                *m = head;
            }
            outln!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
        }
    }
    if args.exit_zero {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(state_exit(result.state).into())
}

/// `cfa taxonomy …`.
pub fn run_taxonomy(cmd: TaxonomyCommand) -> Result<ExitCode, Report> {
    match cmd {
        TaxonomyCommand::Generate(a) => {
            let (_, spec) = read_spec(&a.spec)?;
            let v = spec.taxonomy();
            let text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            match &a.output {
                None => outln!("{text}"),
                Some(out) => {
                    write_atomic(out, format!("{text}\n").as_bytes())?;
                    outln!("Taxonomy saved to {}", out.display());
                    outln!("  Categories: {}", spec.categories().len());
                    outln!("  Rules:      {}", spec.rules().len());
                }
            }
        }
        TaxonomyCommand::TestIntents(a) => {
            let (_, spec) = read_spec(&a.spec)?;
            if a.count == Some(0) {
                return Err(PlainError("--count must be at least 1".into()).into());
            }
            let intents = spec.test_intents(a.count);
            let json = a.format == crate::audit_cmd::Format::Json;
            match &a.output {
                None if json => outln!("{}", json!({ "intents": intents })),
                None => {
                    for i in &intents {
                        outln!("{i}");
                    }
                }
                Some(out) => {
                    let mut body = intents.join("\n");
                    body.push('\n');
                    write_atomic(out, body.as_bytes())?;
                    if json {
                        outln!("{}", json!({"path": out, "count": intents.len()}));
                    } else {
                        outln!("{} test intents saved to {}", intents.len(), out.display());
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename, so a failure never leaves a half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Report> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |what: &str, p: &Path, e: std::io::Error| {
        PlainError(format!(
            "cannot {what} {}: {}",
            p.display(),
            crate::input::io_reason(&e)
        ))
    };
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", &tmp, e).into());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("write", path, e).into()
    })
}
