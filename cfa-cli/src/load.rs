//! Loading the governance artifacts named on the command line: policy bundles (a
//! file or a built-in name), catalogs (JSON or YAML) and signatures, each with errors
//! that name the file and, where known, the line and column.

use crate::input::{PlainError, SourceFile};
use cfa_policy::{BundleError, BundleFormat, PolicyEngine, builtin};
use cfa_types::canonical::sha256_hex;
use cfa_types::validate::Issue;
use miette::Report;
use serde_json::Value;
use std::path::Path;

/// The reference's default bundle label; it selects the built-in default ruleset.
pub const DEFAULT_LABEL: &str = "v1.0";

/// A policy engine together with what identifies its bundle in outputs and audit.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The compiled engine.
    pub engine: PolicyEngine,
    /// SHA-256 of the bundle file bytes (or of the built-in source); `""` for the default rules.
    pub hash: String,
    /// How the user named it (path, built-in name, or `default`).
    pub source: String,
}

/// Resolves `-p/--policy-bundle`: a path to a `.yaml`/`.yml`/`.json` file (or any
/// existing file), a built-in bundle name, or nothing / `v1.0` / `default` for the
/// built-in default ruleset. Anything else is an error (the reference silently
/// treated unknown values as labels over the default rules).
pub fn policy(spec: Option<&str>) -> Result<LoadedPolicy, Report> {
    let Some(spec) = spec else {
        return Ok(default_policy());
    };
    let lower = spec.to_ascii_lowercase();
    let looks_like_file = [".yaml", ".yml", ".json"]
        .iter()
        .any(|s| lower.ends_with(s));
    if looks_like_file || Path::new(spec).is_file() {
        return policy_file(Path::new(spec));
    }
    if builtin::is_builtin(spec) {
        let engine = PolicyEngine::builtin(spec).map_err(|e| Report::msg(e.to_string()))?;
        let hash = builtin::source(spec)
            .map(|s| sha256_hex(s.as_bytes()))
            .unwrap_or_default();
        return Ok(LoadedPolicy {
            engine,
            hash,
            source: spec.to_owned(),
        });
    }
    if spec == DEFAULT_LABEL || spec == "default" {
        return Ok(default_policy());
    }
    Err(PlainError(format!(
        "unknown policy bundle '{spec}': it is not a file and not a built-in bundle \
         (built-in bundles: {}; use 'default' for the built-in default rules)",
        builtin::names().collect::<Vec<_>>().join(", ")
    ))
    .into())
}

fn default_policy() -> LoadedPolicy {
    LoadedPolicy {
        engine: PolicyEngine::default(),
        hash: String::new(),
        source: "default".into(),
    }
}

fn policy_file(path: &Path) -> Result<LoadedPolicy, Report> {
    let src = SourceFile::read(path)?;
    let format = BundleFormat::from_path_str(&src.name());
    match cfa_policy::load_bundle(&src.text, format, &src.name()) {
        Ok(bundle) => {
            let engine =
                PolicyEngine::from_bundle(bundle).map_err(|e| Report::msg(e.to_string()))?;
            Ok(LoadedPolicy {
                engine,
                hash: sha256_hex(src.text.as_bytes()),
                source: src.name(),
            })
        }
        Err(BundleError::Parse(e)) => Err(match e.position {
            Some(p) => src.error_at(
                p.line,
                p.column,
                &format!("cannot parse policy bundle: {}", e.message),
                "here",
            ),
            None => Report::msg(e.to_string()),
        }),
        Err(BundleError::Invalid(inv)) => {
            let lines: Vec<String> = inv
                .issues
                .iter()
                .map(|li| match li.position {
                    Some(p) => format!("  - {}:{}:{}: {}", src.name(), p.line, p.column, li.issue),
                    None => format!("  - {}", li.issue),
                })
                .collect();
            Err(Report::msg(format!(
                "invalid policy bundle {}:\n{}",
                src.name(),
                lines.join("\n")
            )))
        }
    }
}

/// Parses a JSON or YAML (by extension) file into a value, with located errors.
pub fn json_or_yaml(src: &SourceFile) -> Result<Value, Report> {
    if src.is_yaml() {
        cfa_policy::yaml::parse_value(&src.text).map_err(|e| match e.position {
            Some(p) => src.error_at(
                p.line,
                p.column,
                &format!("invalid YAML: {}", e.message),
                "here",
            ),
            None => Report::msg(format!("{}: invalid YAML: {}", src.name(), e.message)),
        })
    } else if src.text.trim().is_empty() {
        Ok(Value::Null)
    } else {
        Ok(src.parse_json()?)
    }
}

/// The document of a catalog file. An empty (or whitespace-only) file is an error:
/// it is not a catalog, and reading it as `null` would silently mean "no datasets".
pub fn catalog_value(src: &SourceFile) -> Result<Value, Report> {
    if src.text.trim().is_empty() {
        return Err(PlainError(format!(
            "catalog {} is empty: a catalog is a JSON or YAML object such as {{\"datasets\": {{…}}}}",
            src.name()
        ))
        .into());
    }
    json_or_yaml(src)
}

/// A catalog file: its raw value (hashed and cross-checked) and the parsed catalog.
#[derive(Debug)]
pub struct LoadedCatalog {
    /// The raw document.
    pub value: Value,
    /// The lenient catalog view.
    pub catalog: cfa_types::Catalog,
}

/// Reads `-c/--catalog` (JSON, or YAML by extension); structurally invalid catalogs
/// are rejected with every issue listed.
pub fn catalog(path: &Path) -> Result<LoadedCatalog, Report> {
    let src = SourceFile::read(path)?;
    let value = catalog_value(&src)?;
    let issues = cfa_types::validate::catalog(&value, false);
    if !issues.is_empty() {
        return Err(Report::msg(format!(
            "invalid catalog {}:\n{}",
            src.name(),
            issue_lines(&issues)
        )));
    }
    let catalog = cfa_types::Catalog::from_value(&value)
        .map_err(|e| Report::msg(format!("invalid catalog {}: {e}", src.name())))?;
    Ok(LoadedCatalog { value, catalog })
}

/// `  - {path}: {message}` lines.
pub fn issue_lines(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Issues as JSON objects `{path, message}`.
pub fn issues_json(issues: &[Issue]) -> Value {
    Value::Array(
        issues
            .iter()
            .map(|i| serde_json::json!({"path": i.path, "message": i.message}))
            .collect(),
    )
}
