//! `cfa signature validate`, `cfa catalog validate`, `cfa policy validate`: structural
//! checks with the reference's issue paths, each issue located at its line and column.

use crate::exit;
use crate::input::SourceFile;
use crate::load;
use cfa::policy::{BundleFormat, PositionMap};
use cfa::types::validate::Issue;
use clap::{Args, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of the validate commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// `… VALID: path` or `… INVALID: path` with one line per issue.
    Summary,
    /// `{path, valid, issue_count, issues: [{path, message, line, column}]}`.
    Json,
}

/// Arguments of `cfa signature validate` and `cfa catalog validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file to check (JSON; YAML by `.yaml`/`.yml` extension for catalogs).
    pub path: PathBuf,
    /// Require at least one dataset.
    #[arg(long)]
    pub require_datasets: bool,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "summary")]
    pub format: ValidateFormat,
}

/// Arguments of `cfa policy validate`.
#[derive(Debug, Args)]
pub struct PolicyValidateArgs {
    /// The bundle file (`.yaml`/`.yml` is YAML, anything else JSON).
    pub path: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "summary")]
    pub format: ValidateFormat,
}

struct Located {
    issue: Issue,
    line: usize,
    column: usize,
}

fn report(
    kind: &str,
    src: &SourceFile,
    issues: Vec<Located>,
    format: ValidateFormat,
    extra: Option<String>,
) -> ExitCode {
    let valid = issues.is_empty();
    match format {
        ValidateFormat::Json => {
            let items: Vec<Value> = issues
                .iter()
                .map(|l| {
                    json!({"path": l.issue.path, "message": l.issue.message,
                           "line": l.line, "column": l.column})
                })
                .collect();
            let out = json!({"path": src.name(), "valid": valid, "issue_count": items.len(), "issues": items});
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        ValidateFormat::Summary => {
            if valid {
                outln!("{kind} VALID: {}", src.name());
                if let Some(extra) = extra {
                    outln!("  {extra}");
                }
            } else {
                outln!("{kind} INVALID: {}", src.name());
                for l in &issues {
                    outln!(
                        "  - {} ({}:{}:{})",
                        crate::input::clip_message(&l.issue.to_string()),
                        src.name(),
                        l.line,
                        l.column
                    );
                }
            }
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        exit::INVALID_INPUT.into()
    }
}

fn locate(map: Option<&PositionMap>, prefix: &str, issue: Issue) -> Located {
    let p = map.map(|m| m.locate(&format!("{prefix}{}", issue.path)));
    Located {
        line: p.map_or(1, |p| p.line),
        column: p.map_or(1, |p| p.column),
        issue,
    }
}

/// `cfa signature validate PATH`.
pub fn signature(args: ValidateArgs) -> miette::Result<ExitCode> {
    let src = SourceFile::read(&args.path)?;
    let value = if src.text.trim().is_empty() {
        Value::Null
    } else {
        src.parse_json()?
    };
    let issues = cfa::types::validate::signature(&value, args.require_datasets);
    let prefix = if value.get("signature").is_some_and(Value::is_object) {
        "signature."
    } else if value.get("signature").is_none()
        && value.get("state_signature").is_some_and(Value::is_object)
    {
        "state_signature."
    } else {
        ""
    };
    let map = PositionMap::from_json(&src.text);
    let located = issues
        .into_iter()
        .map(|i| locate(map.as_ref(), prefix, i))
        .collect();
    Ok(report("StateSignature", &src, located, args.format, None))
}

/// `cfa catalog validate PATH`.
pub fn catalog(args: ValidateArgs) -> miette::Result<ExitCode> {
    let src = SourceFile::read(&args.path)?;
    let value = load::catalog_value(&src)?;
    let issues = cfa::types::validate::catalog(&value, args.require_datasets);
    let map = if src.is_yaml() {
        PositionMap::from_yaml(&src.text)
    } else {
        PositionMap::from_json(&src.text)
    };
    let located = issues
        .into_iter()
        .map(|i| locate(map.as_ref(), "", i))
        .collect();
    let count = value
        .get("datasets")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    Ok(report(
        "Catalog",
        &src,
        located,
        args.format,
        Some(format!("datasets: {count}")),
    ))
}

/// `cfa policy validate PATH`.
pub fn policy(args: PolicyValidateArgs) -> miette::Result<ExitCode> {
    let src = SourceFile::read(&args.path)?;
    let format = crate::load::bundle_format(&src);
    let value = cfa::policy::parse_text(&src.text, format, &src.name()).map_err(|e| -> Report {
        match e.position {
            Some(p) => src.error_at(
                p.line,
                p.column,
                &format!("cannot parse policy bundle: {}", e.message),
                "here",
            ),
            None => Report::msg(e.to_string()),
        }
    })?;
    let issues = cfa::policy::validate_bundle_value(&value);
    let map = match format {
        BundleFormat::Yaml => PositionMap::from_yaml(&src.text),
        BundleFormat::Json => PositionMap::from_json(&src.text),
    };
    let located = issues
        .into_iter()
        .map(|issue| {
            let p = map.as_ref().map(|m| m.locate_bundle_path(&issue.path));
            Located {
                line: p.map_or(1, |p| p.line),
                column: p.map_or(1, |p| p.column),
                issue,
            }
        })
        .collect::<Vec<_>>();
    let extra = if located.is_empty() {
        cfa::policy::PolicyBundle::from_value(&value)
            .ok()
            .map(|b| format!("version: {}  |  rules: {}", b.version, b.rules.len()))
    } else {
        None
    };
    Ok(report("Policy bundle", &src, located, args.format, extra))
}
