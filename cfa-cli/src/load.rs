//! Loading the governance artifacts named on the command line: policy bundles (a
//! file or a built-in name), catalogs (JSON or YAML) and signatures, each with errors
//! that name the file and, where known, the line and column.

use crate::input::{PlainError, SourceFile};
use cfa::policy::{BundleError, BundleFormat, PolicyEngine, builtin};
use cfa::types::canonical::sha256_hex;
use cfa::types::validate::Issue;
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

/// How a bundle is named (`-p/--policy-bundle`, `defaults.policy_bundle` in cfa.yaml,
/// the `policy_bundle` of a face request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleSpec<'a> {
    /// The built-in default ruleset (`default`, `v1.0`).
    Default,
    /// A built-in bundle by name.
    Builtin(&'a str),
    /// A bundle file.
    File(&'a Path),
}

/// Whether `spec` names a file: it contains a path separator or ends in
/// `.yaml`/`.yml`/`.json` (any case).
pub fn looks_like_path(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    spec.contains('/')
        || spec.contains('\\')
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// The built-in bundle names, comma-separated.
pub fn builtin_list() -> String {
    builtin::names().collect::<Vec<_>>().join(", ")
}

/// Classifies a bundle name. A built-in name is always the built-in (a file of that
/// name in the working directory never shadows it); `default`/`v1.0` are the default
/// rules; a value is a file only when it looks like a path ([`looks_like_path`]).
/// Anything else is an error listing the built-ins.
pub fn classify(spec: &str) -> Result<BundleSpec<'_>, String> {
    if builtin::is_builtin(spec) {
        return Ok(BundleSpec::Builtin(spec));
    }
    if spec == DEFAULT_LABEL || spec == "default" {
        return Ok(BundleSpec::Default);
    }
    if looks_like_path(spec) || spec == crate::input::STDIN {
        return Ok(BundleSpec::File(Path::new(spec)));
    }
    Err(format!(
        "unknown policy bundle '{spec}': not a built-in name, not a path\n\
         (a path has a / or a .yaml/.yml/.json extension: ./{spec})\n\
         {}\n'default' selects the built-in default rules.",
        builtin_lines()
    ))
}

/// `Built-in bundles: a, b, …` broken at commas into lines short enough that no error
/// renderer re-wraps them (so each name stays whole).
fn builtin_lines() -> String {
    let mut out = String::from("Built-in bundles:");
    let mut line_len = out.len();
    let names: Vec<&str> = builtin::names().collect();
    for (i, name) in names.iter().enumerate() {
        let piece = if i + 1 < names.len() {
            format!("{name},")
        } else {
            format!("{name}.")
        };
        if line_len + 1 + piece.len() > 60 {
            out.push('\n');
            line_len = 0;
        } else {
            out.push(' ');
            line_len += 1;
        }
        line_len += piece.len();
        out.push_str(&piece);
    }
    out
}

/// Resolves `-p/--policy-bundle` by [`classify`]: a built-in name, `default`/`v1.0`
/// (or nothing) for the built-in default ruleset, or a path to a YAML/JSON bundle
/// file. Anything else is an error (the reference silently treated unknown values as
/// labels over the default rules).
pub fn policy(spec: Option<&str>) -> Result<LoadedPolicy, Report> {
    let Some(spec) = spec else {
        return Ok(default_policy());
    };
    match classify(spec).map_err(PlainError)? {
        BundleSpec::Default => Ok(default_policy()),
        BundleSpec::Builtin(name) => builtin_policy(name),
        BundleSpec::File(path) => policy_file(path),
    }
}

/// A built-in bundle by name.
pub fn builtin_policy(name: &str) -> Result<LoadedPolicy, Report> {
    let engine = PolicyEngine::builtin(name).map_err(|e| Report::msg(e.to_string()))?;
    let hash = builtin::source(name)
        .map(|s| sha256_hex(s.as_bytes()))
        .unwrap_or_default();
    Ok(LoadedPolicy {
        engine,
        hash,
        source: name.to_owned(),
    })
}

/// The built-in default ruleset.
pub fn default_policy() -> LoadedPolicy {
    LoadedPolicy {
        engine: PolicyEngine::default(),
        hash: String::new(),
        source: "default".into(),
    }
}

/// The bundle format of `src`: by extension, or for standard input by its first
/// character ([`SourceFile::is_yaml`]).
pub fn bundle_format(src: &SourceFile) -> BundleFormat {
    if src.is_stdin() {
        if src.is_yaml() {
            BundleFormat::Yaml
        } else {
            BundleFormat::Json
        }
    } else {
        BundleFormat::from_path_str(&src.name())
    }
}

/// A bundle file (YAML or JSON by extension).
pub fn policy_file(path: &Path) -> Result<LoadedPolicy, Report> {
    let src = SourceFile::read(path)?;
    let format = bundle_format(&src);
    policy_source(&src, format)
}

/// A bundle whose text came with a request (`name` is how errors call it): YAML
/// unless it starts with `{`. Errors name `name:line:column`.
pub fn policy_text(text: &str, name: &str) -> Result<LoadedPolicy, Report> {
    let format = if text.trim_start().starts_with('{') {
        BundleFormat::Json
    } else {
        BundleFormat::Yaml
    };
    let src = SourceFile {
        path: name.into(),
        text: text.to_owned(),
    };
    policy_source(&src, format)
}

fn policy_source(src: &SourceFile, format: BundleFormat) -> Result<LoadedPolicy, Report> {
    match cfa::policy::load_bundle(&src.text, format, &src.name()) {
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
                    Some(p) => format!(
                        "  - {}:{}:{}: {}",
                        src.name(),
                        p.line,
                        p.column,
                        crate::input::clip_message(&li.issue.to_string())
                    ),
                    None => format!("  - {}", crate::input::clip_message(&li.issue.to_string())),
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
        cfa::policy::yaml::parse_value(&src.text).map_err(|e| match e.position {
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
    pub catalog: cfa::Catalog,
}

/// Reads `-c/--catalog` (JSON, or YAML by extension); structurally invalid catalogs
/// are rejected with every issue listed.
pub fn catalog(path: &Path) -> Result<LoadedCatalog, Report> {
    let src = SourceFile::read(path)?;
    let value = catalog_value(&src)?;
    let issues = cfa::types::validate::catalog(&value, false);
    if !issues.is_empty() {
        return Err(Report::msg(format!(
            "invalid catalog {}:\n{}",
            src.name(),
            issue_lines(&issues)
        )));
    }
    let catalog = cfa::Catalog::from_value(&value)
        .map_err(|e| Report::msg(format!("invalid catalog {}: {e}", src.name())))?;
    Ok(LoadedCatalog { value, catalog })
}

/// `  - {path}: {message}` lines.
pub fn issue_lines(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {}", crate::input::clip_message(&i.to_string())))
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
