//! `cfa.yaml` discovery and schema (reference.md §14, design.md B11): the first of
//! `cfa.yaml`, `cfa.yml`, `.cfa/config.yaml`, `cfa.json` found in the current
//! directory or any parent up to the filesystem root; `--config PATH` names one
//! explicitly (a missing explicit config is an error). Paths in the file are relative
//! to its directory. Explicit flags always beat the config.

use crate::exec_settings::{self, ExecutionSettings, LifecycleSettings};
use crate::input::{PlainError, SourceFile};
use miette::Report;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// File names tried in each directory, in order.
pub const CANDIDATES: [&str; 4] = ["cfa.yaml", "cfa.yml", ".cfa/config.yaml", "cfa.json"];

/// The `storage` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `jsonl` or `sqlite`.
    pub backend: String,
    /// The audit log / database path (resolved against the config directory).
    pub path: PathBuf,
    /// Retention in days.
    pub retention_days: u64,
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
}

/// What `cfa serve` and `cfa mcp` take from a config when their flags are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaceDefaults {
    /// `defaults.catalog`, when the file exists.
    pub catalog: Option<PathBuf>,
    /// `defaults.policy_bundle`.
    pub policy_bundle: Option<String>,
    /// The storage path when it is a JSONL audit log.
    pub audit_log: Option<PathBuf>,
    /// The storage path when it is a SQLite database.
    pub lifecycle_db: Option<PathBuf>,
    /// `defaults.roots`.
    pub roots: Vec<PathBuf>,
}

impl CfaConfig {
    /// The defaults of the long-running faces.
    pub fn face_defaults(&self) -> FaceDefaults {
        let jsonl = self.storage.backend == "jsonl";
        FaceDefaults {
            catalog: self.catalog.clone().filter(|p| p.is_file()),
            policy_bundle: self.policy_bundle.clone(),
            audit_log: jsonl.then(|| self.storage.path.clone()),
            lifecycle_db: (!jsonl).then(|| self.storage.path.clone()),
            roots: self.roots.clone(),
        }
    }
}

/// The face defaults of `--config PATH` or the discovered config (none without one).
pub fn face_defaults(explicit: Option<&Path>) -> Result<FaceDefaults, Report> {
    Ok(load(explicit)?
        .map(|c| {
            tracing::info!(config = %c.path.display(), "using config defaults");
            c.face_defaults()
        })
        .unwrap_or_default())
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

fn section<'a>(
    root: &'a Map<String, Value>,
    key: &str,
    file: &str,
) -> Result<Option<&'a Map<String, Value>>, Report> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(PlainError(format!("{file}: '{key}' must be a mapping")).into()),
    }
}

fn string(
    m: Option<&Map<String, Value>>,
    key: &str,
    section: &str,
    file: &str,
) -> Result<Option<String>, Report> {
    match m.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(PlainError(format!(
            "{file}: '{section}.{key}' must be a non-empty string"
        ))
        .into()),
    }
}

/// Parses a config file (YAML by extension, else JSON).
pub fn parse(path: &Path) -> Result<CfaConfig, Report> {
    let src = SourceFile::read(path)?;
    let file = src.name();
    let raw = crate::load::json_or_yaml(&src)?;
    let empty = Map::new();
    let root = match &raw {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(PlainError(format!("{file}: a config must be a mapping")).into()),
    };
    for key in root.keys() {
        if !["version", "storage", "defaults", "execution", "lifecycle"].contains(&key.as_str()) {
            return Err(PlainError(format!(
                "{file}: unknown key '{}' (expected version, storage, defaults, execution, lifecycle)",
                crate::input::clip_message(key)
            ))
            .into());
        }
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let version = match root.get("version") {
        None => "1.0".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(PlainError(format!("{file}: 'version' must be a string")).into()),
    };
    let storage = section(root, "storage", &file)?;
    let backend = string(storage, "backend", "storage", &file)?.unwrap_or_else(|| "sqlite".into());
    if backend != "sqlite" && backend != "jsonl" {
        return Err(PlainError(format!(
            "{file}: 'storage.backend' must be sqlite or jsonl, not '{backend}'"
        ))
        .into());
    }
    let spath = string(storage, "path", "storage", &file)?.unwrap_or_else(|| "cfa.db".into());
    let retention_days = match storage.and_then(|m| m.get("retention_days")) {
        None | Some(Value::Null) => 90,
        Some(v) => v.as_u64().ok_or_else(|| {
            PlainError(format!(
                "{file}: 'storage.retention_days' must be a whole number of days"
            ))
        })?,
    };
    let defaults = section(root, "defaults", &file)?;
    let catalog = string(defaults, "catalog", "defaults", &file)?.map(|c| dir.join(c));
    // The same resolution as `-p`: a built-in name stays a name (a file of that name
    // never shadows it), a path is resolved against the config directory, anything
    // else is an error here rather than a silent guess later.
    let policy_bundle = match string(defaults, "policy_bundle", "defaults", &file)? {
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
    let backend_default = string(defaults, "backend", "defaults", &file)?;
    let roots = match defaults.and_then(|m| m.get("roots")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(dir.join(s)),
                _ => Err(PlainError(format!(
                    "{file}: 'defaults.roots' must be a list of directory paths"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(PlainError(format!(
                "{file}: 'defaults.roots' must be a list of directory paths"
            ))
            .into());
        }
    };
    let execution: ExecutionSettings =
        exec_settings::section(root.get("execution"), "execution", &file)?;
    execution.check(&file)?;
    let lifecycle: LifecycleSettings =
        exec_settings::section(root.get("lifecycle"), "lifecycle", &file)?;
    lifecycle.promotion.check(&file)?;
    Ok(CfaConfig {
        path: path.to_path_buf(),
        version,
        storage: Storage {
            backend,
            path: dir.join(spath),
            retention_days,
        },
        catalog,
        policy_bundle,
        backend: backend_default,
        roots,
        execution,
        lifecycle,
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
}
