//! `cfa.yaml` discovery and schema (docs/cli.md#configuration, docs/differences.md#b11-cli-and-config-consistency): the first of
//! `cfa.yaml`, `cfa.yml`, `.cfa/config.yaml`, `cfa.json` found in the current
//! directory or any parent up to the filesystem root; `--config PATH` names one
//! explicitly (a missing explicit config is an error). Paths in the file are relative
//! to its directory. The file is read by serde, unknown keys denied at every level,
//! errors at `file:line:column`. Which value wins over which (flag > environment >
//! config > default) is decided in one place, [`crate::settings`].

use crate::exec_settings::{ExecutionSettings, LifecycleSettings};
use crate::input::{PlainError, SourceFile};
use miette::Report;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// File names tried in each directory, in order.
pub const CANDIDATES: [&str; 4] = ["cfa.yaml", "cfa.yml", ".cfa/config.yaml", "cfa.json"];

/// The `storage` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The storage backend's registry name (`jsonl`, `sqlite`, `memory`).
    pub backend: String,
    /// The audit log / database path (resolved against the config directory).
    pub path: PathBuf,
    /// Retention in days.
    pub retention_days: u64,
    /// `storage.dsn_env`: the environment variable holding the database DSN of a
    /// database backend (`postgres`); the DSN itself is never written in the file.
    pub dsn_env: Option<String>,
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct CfaConfig {
    /// The file.
    pub path: PathBuf,
    /// The raw document.
    pub raw: Value,
    /// Schema version.
    pub version: String,
    /// Storage.
    pub storage: Storage,
    /// `defaults.catalog`, resolved.
    pub catalog: Option<PathBuf>,
    /// `defaults.policy_bundle`: a resolved path, or a built-in bundle name as written.
    pub policy_bundle: Option<String>,
    /// `defaults.backend`.
    pub backend: Option<String>,
    /// `defaults.roots`: directories file paths in MCP tool arguments must resolve
    /// under (resolved against the config directory).
    pub roots: Vec<PathBuf>,
    /// The `execution` section (CFA addition).
    pub execution: ExecutionSettings,
    /// The `lifecycle` section (CFA addition).
    pub lifecycle: LifecycleSettings,
    /// The `backends` section (CFA addition): per-backend options.
    pub backends: cfa::codegen::BackendOptions,
}

/// The config file that applies to `start`, walking up to the root.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find_map(|dir| CANDIDATES.iter().map(|c| dir.join(c)).find(|p| p.is_file()))
}

/// Loads `--config PATH` when given (it must exist), else the discovered config.
pub fn load(explicit: Option<&Path>) -> Result<Option<CfaConfig>, Report> {
    let path = match explicit {
        Some(p) => {
            if !p.is_file() {
                return Err(
                    PlainError(format!("config file {} does not exist", p.display())).into(),
                );
            }
            p.to_path_buf()
        }
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| PlainError(format!("cannot read the current directory: {e}")))?;
            match discover(&cwd) {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    parse(&path).map(Some)
}

/// The document as serde reads it: every section and key optional, unknown keys
/// denied at every level (the `execution` and `lifecycle` sections deny them too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, deserialize_with = "version")]
    version: Option<String>,
    #[serde(default)]
    storage: Option<RawStorage>,
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default)]
    execution: Option<ExecutionSettings>,
    #[serde(default)]
    lifecycle: Option<LifecycleSettings>,
    #[serde(default)]
    backends: Option<crate::spark_cli::BackendSettings>,
}

/// `storage:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, deserialize_with = "days")]
    retention_days: Option<u64>,
    #[serde(default)]
    dsn_env: Option<String>,
}

/// `defaults:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    catalog: Option<String>,
    #[serde(default)]
    policy_bundle: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default, deserialize_with = "roots")]
    roots: Option<Vec<String>>,
}

/// The audit backends by name: the file and memory ones, then the database ones
/// (`postgres`), each group sorted.
fn audit_backends(registry: &cfa::kernel::StorageRegistry) -> String {
    let audit: Vec<&str> = registry
        .names()
        .filter(|n| registry.offers(n, cfa::kernel::StoreKind::Audit))
        .collect();
    let (db, local): (Vec<&str>, Vec<&str>) =
        audit.into_iter().partition(|n| registry.uses_database(n));
    [local, db].concat().join(", ")
}

/// `version`: a string, or a number written without quotes (`1.0`).
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom("'version' must be a string")),
    }
}

/// `storage.retention_days`: a whole number of days.
fn days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            serde::de::Error::custom("'storage.retention_days' must be a whole number of days")
        }),
    }
}

/// `defaults.roots`: a list of directory paths.
fn roots<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let bad = || serde::de::Error::custom("'defaults.roots' must be a list of directory paths");
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

/// A located config error: `file:line:column: message` with a window of the line
/// when the position is known, else `file: message`.
fn located(src: &SourceFile, position: Option<(usize, usize)>, message: &str) -> Report {
    match position {
        Some((line, column)) => src.error_at(line, column, message, "here"),
        None => PlainError(format!("{}: {message}", src.name())).into(),
    }
}

/// The line and column of the node at dotted `path` (or of its deepest ancestor).
fn position_of(src: &SourceFile, path: &str) -> Option<(usize, usize)> {
    let map = if src.is_yaml() {
        cfa::policy::PositionMap::from_yaml(&src.text)
    } else {
        cfa::policy::PositionMap::from_json(&src.text)
    }?;
    let p = map.locate(path);
    Some((p.line, p.column))
}

/// Deserializes the document into [`RawConfig`] through serde (YAML by extension,
/// else JSON), keeping the parser's line and column.
fn typed(src: &SourceFile) -> Result<RawConfig, Report> {
    if src.is_yaml() {
        cfa::policy::yaml::from_str::<RawConfig>(&src.text).map_err(|e| {
            located(
                src,
                e.position.map(|p| (p.line, p.column)),
                &format!("invalid config: {}", crate::input::clip_message(&e.message)),
            )
        })
    } else if src.text.trim().is_empty() {
        Ok(RawConfig::default())
    } else {
        serde_json::from_str::<RawConfig>(&src.text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            located(
                src,
                (e.line() > 0).then(|| (e.line(), e.column().max(1))),
                &format!("invalid config: {}", crate::input::clip_message(msg)),
            )
        })
    }
}

/// A value that must be a non-empty string when present.
fn non_empty(
    src: &SourceFile,
    value: Option<String>,
    path: &str,
) -> Result<Option<String>, Report> {
    match value {
        Some(s) if s.trim().is_empty() => Err(located(
            src,
            position_of(src, path),
            &format!("'{path}' must be a non-empty string"),
        )),
        other => Ok(other),
    }
}

/// Parses a config file (YAML by extension, else JSON).
pub fn parse(path: &Path) -> Result<CfaConfig, Report> {
    let src = SourceFile::read(path)?;
    let file = src.name();
    let raw = crate::load::json_or_yaml(&src)?;
    if !matches!(raw, Value::Object(_) | Value::Null) {
        return Err(PlainError(format!("{file}: a config must be a mapping")).into());
    }
    if let Value::Object(root) = &raw {
        for key in ["storage", "defaults", "execution", "lifecycle"] {
            if root
                .get(key)
                .is_some_and(|v| !matches!(v, Value::Object(_) | Value::Null))
            {
                return Err(located(
                    &src,
                    position_of(&src, key),
                    &format!("'{key}' must be a mapping"),
                ));
            }
        }
    }
    let doc = if raw.is_null() {
        RawConfig::default()
    } else {
        typed(&src)?
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let version = doc.version.unwrap_or_else(|| "1.0".to_owned());
    let storage = doc.storage.unwrap_or_default();
    let backend =
        non_empty(&src, storage.backend, "storage.backend")?.unwrap_or_else(|| "sqlite".into());
    let registry = cfa::kernel::StorageRegistry::with_builtins();
    if registry
        .check(&backend, cfa::kernel::StoreKind::Audit)
        .is_err()
    {
        return Err(located(
            &src,
            position_of(&src, "storage.backend"),
            &format!(
                "'storage.backend' must be one of {}, not '{}'",
                audit_backends(&registry),
                crate::input::clip_message(&backend)
            ),
        ));
    }
    let dsn_env = non_empty(&src, storage.dsn_env, "storage.dsn_env")?;
    if registry.uses_database(&backend) && dsn_env.is_none() {
        return Err(located(
            &src,
            position_of(&src, "storage.backend"),
            &format!(
                "the '{backend}' storage backend needs 'storage.dsn_env': the name of the environment variable holding its DSN (the DSN is never written in the config)"
            ),
        ));
    }
    let spath = non_empty(&src, storage.path, "storage.path")?.unwrap_or_else(|| "cfa.db".into());
    let retention_days = storage.retention_days.unwrap_or(90);
    let defaults = doc.defaults.unwrap_or_default();
    let catalog = non_empty(&src, defaults.catalog, "defaults.catalog")?.map(|c| dir.join(c));
    // The same resolution as `-p`: a built-in name stays a name (a file of that name
    // never shadows it), a path is resolved against the config directory, anything
    // else is an error here rather than a silent guess later.
    let policy_bundle = match non_empty(&src, defaults.policy_bundle, "defaults.policy_bundle")? {
        None => None,
        Some(p) => match crate::load::classify(&p) {
            Ok(crate::load::BundleSpec::File(rel)) => {
                Some(dir.join(rel).to_string_lossy().into_owned())
            }
            Ok(_) => Some(p),
            Err(e) => {
                return Err(PlainError(format!("{file}: defaults.policy_bundle:\n{e}")).into());
            }
        },
    };
    let backend_default = non_empty(&src, defaults.backend, "defaults.backend")?;
    let roots = defaults
        .roots
        .unwrap_or_default()
        .into_iter()
        .map(|r| dir.join(r))
        .collect();
    let execution = doc.execution.unwrap_or_default();
    execution.check(&file)?;
    let lifecycle = doc.lifecycle.unwrap_or_default();
    lifecycle.promotion.check(&file)?;
    Ok(CfaConfig {
        path: path.to_path_buf(),
        version,
        storage: Storage {
            backend,
            path: dir.join(spath),
            retention_days,
            dsn_env,
        },
        catalog,
        policy_bundle,
        backend: backend_default,
        roots,
        execution,
        lifecycle,
        backends: doc.backends.unwrap_or_default().options(),
        raw,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn discovery_walks_up_and_respects_candidate_order() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        std::fs::create_dir_all(&nested).unwrap();
        assert!(discover(&nested).is_none_or(|p| !p.starts_with(dir.path())));
        std::fs::write(dir.path().join("cfa.json"), "{}").unwrap();
        assert_eq!(discover(&nested).unwrap(), dir.path().join("cfa.json"));
        std::fs::write(dir.path().join("a/cfa.yml"), "version: '1.0'\n").unwrap();
        assert_eq!(discover(&nested).unwrap(), dir.path().join("a/cfa.yml"));
        std::fs::write(dir.path().join("a/cfa.yaml"), "version: '1.0'\n").unwrap();
        assert_eq!(discover(&nested).unwrap(), dir.path().join("a/cfa.yaml"));
    }

    #[test]
    fn paths_resolve_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfa.yaml");
        std::fs::write(
            &p,
            "storage:\n  backend: jsonl\n  path: logs/audit.jsonl\ndefaults:\n  catalog: catalog.json\n  policy_bundle: prod-v1\n  backend: sql\n",
        )
        .unwrap();
        let c = parse(&p).unwrap();
        assert_eq!(c.storage.path, dir.path().join("logs/audit.jsonl"));
        assert_eq!(c.catalog.unwrap(), dir.path().join("catalog.json"));
        assert_eq!(c.policy_bundle.as_deref(), Some("prod-v1"));
        assert_eq!(c.backend.as_deref(), Some("sql"));
        assert_eq!(c.storage.retention_days, 90);
    }

    #[test]
    fn bad_configs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfa.yaml");
        for text in [
            "storage: 3\n",
            "nope: 1\n",
            "storage:\n  backend: mongo\n",
            "- a\n",
        ] {
            std::fs::write(&p, text).unwrap();
            assert!(parse(&p).is_err(), "{text}");
        }
        assert!(load(Some(&dir.path().join("missing.yaml"))).is_err());
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfa.yaml");
        for (text, at, says) in [
            ("version: '1.0'\nnope: 1\n", ":2:1:", "nope"),
            ("storage:\n  backend: jsonl\n  bogus: 1\n", ":3:3:", "bogus"),
            ("defaults:\n  roots: 3\n", ":2:10:", "defaults.roots"),
            (
                "storage:\n  retention_days: soon\n",
                ":2:19:",
                "retention_days",
            ),
            (
                "execution:\n  thresholds:\n    max_rowz: 1\n",
                ":3:5:",
                "max_rowz",
            ),
            (
                "storage:\n  backend: mongo\n",
                ":2:12:",
                "jsonl, memory, sqlite",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = format!("{}", parse(&p).unwrap_err());
            assert!(e.contains(&format!("cfa.yaml{at}")), "{text}: {e}");
            assert!(e.contains(says), "{text}: {e}");
        }
        let j = dir.path().join("cfa.json");
        std::fs::write(&j, "{\"defaults\": {\"catalogue\": \"c.json\"}}").unwrap();
        let e = format!("{}", parse(&j).unwrap_err());
        assert!(e.contains("cfa.json:1:") && e.contains("catalogue"), "{e}");
        // Empty documents and numeric versions are fine.
        std::fs::write(&p, "# nothing\n").unwrap();
        assert_eq!(parse(&p).unwrap().storage.backend, "sqlite");
        std::fs::write(&p, "version: 1.0\n").unwrap();
        assert_eq!(parse(&p).unwrap().version, "1.0");
    }
}
