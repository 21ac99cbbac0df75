//! Settings resolved once per invocation: low-level arguments (flags, environment,
//! the discovered or explicit `cfa.yaml`, defaults) become the high-level settings
//! every command reads — policy bundle, catalog, audit store, state database, codegen
//! backend, retention, execution and promotion settings — each with the place it came
//! from, so `cfa status` can say why a value is what it is.
//!
//! One rule for every command: **flag > environment > config > default**.
//! - policy bundle: `-p/--policy-bundle`, else `$CFA_POLICY_BUNDLE`, else
//!   `defaults.policy_bundle`, else the built-in default rules (names resolve by
//!   [`crate::load::classify`]: a built-in name is never shadowed by a file);
//! - catalog: `-c/--catalog`, else `defaults.catalog` when that file exists, else none;
//! - audit store: `--audit-log`/`--file` (jsonl) or `--audit-db`/`--db` (sqlite), else
//!   the `storage` section (its backend opened by name through the storage registry),
//!   else none;
//! - state database: `--db`/`--lifecycle-db`, else the `storage` section when its
//!   backend keeps a state store in a file (sqlite), else the command's default.

use crate::config::{self, CfaConfig};
use crate::exec_settings::{ExecutionSettings, PromotionSettings};
use crate::input::PlainError;
use cfa::audit::{AuditStore, AuditTarget, Durability};
use cfa::kernel::{StorageRegistry, StoreKind, StoreRequest};
use miette::Report;
use serde_json::{Value, json};
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming the policy bundle when no flag does.
pub const POLICY_BUNDLE_ENV: &str = "CFA_POLICY_BUNDLE";

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag (its long name, e.g. `--policy-bundle`).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file.
    Config {
        /// The config file.
        file: PathBuf,
        /// The dotted key (`defaults.policy_bundle`).
        key: &'static str,
    },
    /// The built-in default.
    Default,
}

impl Origin {
    /// `flag`, `env`, `config` or `default`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Flag(_) => "flag",
            Origin::Env(_) => "env",
            Origin::Config { .. } => "config",
            Origin::Default => "default",
        }
    }

    /// `{"kind", "name"}` for JSON output (`name` is the flag, variable or key).
    pub fn json(&self) -> Value {
        match self {
            Origin::Flag(n) | Origin::Env(n) => json!({"kind": self.kind(), "name": n}),
            Origin::Config { file, key } => {
                json!({"kind": "config", "name": key, "file": file.display().to_string()})
            }
            Origin::Default => json!({"kind": "default"}),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "flag {n}"),
            Origin::Env(n) => write!(f, "env {n}"),
            Origin::Config { file, key } => {
                let name = file.file_name().map_or_else(
                    || file.display().to_string(),
                    |n| n.to_string_lossy().into(),
                );
                write!(f, "{name} {key}")
            }
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<T> {
    /// The value.
    pub value: T,
    /// Its origin.
    pub origin: Origin,
}

impl<T> Resolved<T> {
    fn new(value: T, origin: Origin) -> Self {
        Resolved { value, origin }
    }
}

/// An audit store (or state database) by backend name and location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// The storage registry name (`jsonl`, `sqlite`, `memory`, a plugin's).
    pub backend: String,
    /// Where it lives (`None` for stores without a file).
    pub path: Option<PathBuf>,
    /// The environment variable holding the DSN of a database backend (`postgres`).
    pub dsn_env: Option<String>,
}

impl StoreLocation {
    /// A JSONL audit log.
    #[cfg(test)]
    pub fn jsonl(path: &Path) -> Self {
        StoreLocation {
            backend: "jsonl".into(),
            path: Some(path.to_path_buf()),
            dsn_env: None,
        }
    }

    /// A SQLite database.
    #[cfg(test)]
    pub fn sqlite(path: &Path) -> Self {
        StoreLocation {
            backend: "sqlite".into(),
            path: Some(path.to_path_buf()),
            dsn_env: None,
        }
    }

    /// The JSONL file, when this is a JSONL log.
    pub fn jsonl_path(&self) -> Option<&Path> {
        (self.backend == "jsonl")
            .then_some(self.path.as_deref())
            .flatten()
    }

    /// The cfa-audit file target of a built-in file backend (the verifier, the
    /// checkpoint and proof code read files directly); other backends are an error.
    pub fn target(&self) -> Result<AuditTarget, Report> {
        match (self.backend.as_str(), &self.path) {
            ("jsonl", Some(p)) => Ok(AuditTarget::Jsonl(p.clone())),
            ("sqlite", Some(p)) => Ok(AuditTarget::Sqlite(p.clone())),
            (name, _) => Err(PlainError(format!(
                "the {name} storage backend keeps no audit file to read; name one with --file or --db"
            ))
            .into()),
        }
    }

    /// Creates the parent directory of a file store (for stores the config names:
    /// the directory of a path given as a flag is the user's to create).
    pub fn create_parent(&self) -> Result<(), Report> {
        if let Some(parent) = self.path.as_deref().and_then(Path::parent)
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| PlainError(format!("cannot create {}: {e}", parent.display())))?;
        }
        Ok(())
    }

    /// Opens the audit store by backend name through the storage registry.
    pub fn open_audit(
        &self,
        registry: &StorageRegistry,
        durability: Durability,
    ) -> Result<Box<dyn AuditStore>, Report> {
        let req = StoreRequest {
            path: self.path.clone(),
            durability,
            dsn_env: self.dsn_env.clone(),
        };
        registry
            .open_audit(&self.backend, &req)
            .map_err(|e| PlainError(format!("cannot open the audit log: {e}")).into())
    }

    /// The PostgreSQL DSN variable when this is the `postgres` backend.
    pub fn pg_env(&self) -> Option<&str> {
        (self.backend == "postgres")
            .then_some(self.dsn_env.as_deref())
            .flatten()
    }

    fn shown(&self) -> String {
        match (&self.path, &self.dsn_env) {
            (Some(p), _) => format!("{} at {}", self.backend, p.display()),
            (None, Some(env)) => format!("{} (DSN in ${env})", self.backend),
            (None, None) => self.backend.clone(),
        }
    }
}

/// An audit store named by a flag.
#[derive(Debug, Clone, Copy)]
pub struct StoreFlag<'a> {
    /// The flag's long name (`--audit-log`).
    pub flag: &'static str,
    /// The backend it implies.
    pub backend: &'static str,
    /// The path given.
    pub path: &'a Path,
}

/// The low-level arguments of one invocation: what the flags say (all optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags<'a> {
    /// `--config PATH`.
    pub config: Option<&'a Path>,
    /// `-p/--policy-bundle`.
    pub policy_bundle: Option<&'a str>,
    /// `-c/--catalog`.
    pub catalog: Option<&'a Path>,
    /// An audit store flag.
    pub audit: Option<StoreFlag<'a>>,
    /// A state database flag (`--db`, `--lifecycle-db`) and its name.
    pub state_db: Option<(&'static str, &'a Path)>,
    /// `-b/--backend`.
    pub backend: Option<&'a str>,
    /// `--retention DAYS`.
    pub retention_days: Option<u64>,
    /// `--root DIR` (repeatable; empty: not given).
    pub roots: &'a [PathBuf],
}

impl<'a> Flags<'a> {
    /// Flags with `--config` only.
    pub fn with_config(config: Option<&'a Path>) -> Self {
        Flags {
            config,
            ..Flags::default()
        }
    }

    /// `--audit-log FILE` (jsonl) or `--audit-db FILE` (sqlite), the first given.
    pub fn audit_log_or_db(log: Option<&'a Path>, db: Option<&'a Path>) -> Option<StoreFlag<'a>> {
        match (log, db) {
            (Some(path), _) => Some(StoreFlag {
                flag: "--audit-log",
                backend: "jsonl",
                path,
            }),
            (None, Some(path)) => Some(StoreFlag {
                flag: "--audit-db",
                backend: "sqlite",
                path,
            }),
            (None, None) => None,
        }
    }
}

/// What the environment says (read once, passed in so tests need no process env).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `$CFA_POLICY_BUNDLE` (an empty value counts as unset).
    pub policy_bundle: Option<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Env {
            policy_bundle: std::env::var(POLICY_BUNDLE_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }
}

/// The high-level settings of one invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file that applied, if any.
    pub config: Option<CfaConfig>,
    /// The policy bundle spec (`None`: the built-in default rules).
    pub policy_bundle: Resolved<Option<String>>,
    /// The catalog file (`None`: no catalog).
    pub catalog: Resolved<Option<PathBuf>>,
    /// The audit store (`None`: decisions are not recorded).
    pub audit: Resolved<Option<StoreLocation>>,
    /// The lifecycle state database (`None`: the command's own default).
    pub state_db: Resolved<Option<PathBuf>>,
    /// The code-generation backend (`None`: the command's own default).
    pub backend: Resolved<Option<String>>,
    /// Audit retention, days.
    pub retention_days: Resolved<u64>,
    /// Directories file paths in face tool arguments must resolve under (empty: the
    /// working directory).
    pub roots: Resolved<Vec<PathBuf>>,
    /// The `execution` section.
    pub execution: Resolved<ExecutionSettings>,
    /// The `lifecycle.promotion` section.
    pub promotion: Resolved<PromotionSettings>,
    /// The storage registry stores are opened through.
    pub registry: StorageRegistry,
}

/// Retention when neither a flag nor the config says (reference default).
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

/// Loads the config (`--config`, else discovered) and resolves every setting.
pub fn resolve(flags: &Flags<'_>, env: &Env) -> Result<Settings, Report> {
    let cfg = config::load(flags.config)?;
    if let Some(c) = &cfg {
        tracing::info!(config = %c.path.display(), "using config defaults");
    }
    Ok(resolve_with(flags, env, cfg))
}

/// [`resolve`] with the process environment.
pub fn resolve_process(flags: &Flags<'_>) -> Result<Settings, Report> {
    resolve(flags, &Env::from_process())
}

/// Resolves every setting from flags, environment and an already loaded config.
pub fn resolve_with(flags: &Flags<'_>, env: &Env, cfg: Option<CfaConfig>) -> Settings {
    let registry = StorageRegistry::with_builtins();
    let at = |key: &'static str| -> Option<Origin> {
        cfg.as_ref().map(|c| Origin::Config {
            file: c.path.clone(),
            key,
        })
    };
    let policy_bundle = if let Some(p) = flags.policy_bundle {
        Resolved::new(Some(p.to_owned()), Origin::Flag("--policy-bundle"))
    } else if let Some(p) = &env.policy_bundle {
        Resolved::new(Some(p.clone()), Origin::Env(POLICY_BUNDLE_ENV))
    } else {
        match (
            cfg.as_ref().and_then(|c| c.policy_bundle.clone()),
            at("defaults.policy_bundle"),
        ) {
            (Some(p), Some(origin)) => Resolved::new(Some(p), origin),
            _ => Resolved::new(None, Origin::Default),
        }
    };
    let catalog = match flags.catalog {
        Some(p) => Resolved::new(Some(p.to_path_buf()), Origin::Flag("--catalog")),
        None => match (
            cfg.as_ref()
                .and_then(|c| c.catalog.clone())
                .filter(|p| p.is_file()),
            at("defaults.catalog"),
        ) {
            (Some(p), Some(origin)) => Resolved::new(Some(p), origin),
            _ => Resolved::new(None, Origin::Default),
        },
    };
    let storage = cfg.as_ref().map(|c| {
        let file_backed = registry.keeps_files(&c.storage.backend);
        StoreLocation {
            backend: c.storage.backend.clone(),
            path: file_backed.then(|| c.storage.path.clone()),
            dsn_env: c.storage.dsn_env.clone(),
        }
    });
    let audit = match (flags.audit, &storage, at("storage")) {
        (Some(f), _, _) => Resolved::new(
            Some(StoreLocation {
                backend: f.backend.into(),
                path: Some(f.path.to_path_buf()),
                dsn_env: None,
            }),
            Origin::Flag(f.flag),
        ),
        (None, Some(s), Some(origin)) => Resolved::new(Some(s.clone()), origin),
        _ => Resolved::new(None, Origin::Default),
    };
    let state_db = match (flags.state_db, &storage, at("storage")) {
        (Some((flag, p)), _, _) => Resolved::new(Some(p.to_path_buf()), Origin::Flag(flag)),
        (None, Some(s), Some(origin))
            if registry.offers(&s.backend, StoreKind::State)
                && registry.keeps_files(&s.backend) =>
        {
            Resolved::new(s.path.clone(), origin)
        }
        _ => Resolved::new(None, Origin::Default),
    };
    let backend = match flags.backend {
        Some(b) => Resolved::new(Some(b.to_owned()), Origin::Flag("--backend")),
        None => match (
            cfg.as_ref().and_then(|c| c.backend.clone()),
            at("defaults.backend"),
        ) {
            (Some(b), Some(origin)) => Resolved::new(Some(b), origin),
            _ => Resolved::new(None, Origin::Default),
        },
    };
    let retention_days = match (flags.retention_days, &cfg, at("storage.retention_days")) {
        (Some(d), _, _) => Resolved::new(d, Origin::Flag("--retention")),
        (None, Some(c), Some(origin)) if c.raw.pointer("/storage/retention_days").is_some() => {
            Resolved::new(c.storage.retention_days, origin)
        }
        (None, Some(c), _) => Resolved::new(c.storage.retention_days, Origin::Default),
        _ => Resolved::new(DEFAULT_RETENTION_DAYS, Origin::Default),
    };
    let roots = match (flags.roots, &cfg, at("defaults.roots")) {
        (r, _, _) if !r.is_empty() => Resolved::new(r.to_vec(), Origin::Flag("--root")),
        (_, Some(c), Some(origin)) if !c.roots.is_empty() => Resolved::new(c.roots.clone(), origin),
        _ => Resolved::new(Vec::new(), Origin::Default),
    };
    let execution = match (&cfg, at("execution")) {
        (Some(c), Some(origin)) if c.execution != ExecutionSettings::default() => {
            Resolved::new(c.execution.clone(), origin)
        }
        _ => Resolved::new(ExecutionSettings::default(), Origin::Default),
    };
    let promotion = match (&cfg, at("lifecycle.promotion")) {
        (Some(c), Some(origin)) if c.lifecycle.promotion != PromotionSettings::default() => {
            Resolved::new(c.lifecycle.promotion.clone(), origin)
        }
        _ => Resolved::new(PromotionSettings::default(), Origin::Default),
    };
    Settings {
        config: cfg,
        policy_bundle,
        catalog,
        audit,
        state_db,
        backend,
        retention_days,
        roots,
        execution,
        promotion,
        registry,
    }
}

impl Settings {
    /// The config, for code that reads its sections directly.
    pub fn config(&self) -> Option<&CfaConfig> {
        self.config.as_ref()
    }

    /// The policy bundle spec to load (`None`: the built-in default rules).
    pub fn policy_bundle(&self) -> Option<&str> {
        self.policy_bundle.value.as_deref()
    }

    /// The catalog file to load, if any.
    pub fn catalog(&self) -> Option<&Path> {
        self.catalog.value.as_deref()
    }

    /// The audit store, if any.
    pub fn audit(&self) -> Option<&StoreLocation> {
        self.audit.value.as_ref()
    }

    /// The audit store a command that reads a log must have: the flag's or the
    /// config's; neither is a usage error naming `flags`.
    pub fn required_audit(&self, flags: &str) -> Result<&StoreLocation, UsageError> {
        self.audit().ok_or_else(|| {
            UsageError(format!(
                "one of {flags} is required (and no cfa.yaml was found whose storage could stand in)"
            ))
        })
    }

    /// The state database, else `default`.
    pub fn state_db_or(&self, default: &str) -> PathBuf {
        self.state_db
            .value
            .clone()
            .unwrap_or_else(|| PathBuf::from(default))
    }

    /// What every setting resolves to, and from where (for `cfa status -f json`).
    pub fn describe(&self) -> Value {
        let entry = |value: Value, origin: &Origin| json!({"value": value, "from": origin.json()});
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or(Value::Null, |p| json!(p.display().to_string()))
        };
        let bundle = crate::load::policy(self.policy_bundle())
            .map(|p| json!(p.engine.version()))
            .unwrap_or(Value::Null);
        json!({
            "policy_bundle": {
                "value": self.policy_bundle.value.clone().unwrap_or_else(|| "default".into()),
                "version": bundle,
                "from": self.policy_bundle.origin.json(),
            },
            "catalog": entry(path(&self.catalog.value), &self.catalog.origin),
            "audit": entry(
                self.audit().map_or(Value::Null, |s| json!({
                    "backend": s.backend,
                    "path": path(&s.path),
                })),
                &self.audit.origin,
            ),
            "state_db": entry(path(&self.state_db.value), &self.state_db.origin),
            "backend": entry(json!(self.backend.value.clone().unwrap_or_else(|| "pyspark".into())), &self.backend.origin),
            "retention_days": entry(json!(self.retention_days.value), &self.retention_days.origin),
            "execution": entry(json!(self.execution.origin != Origin::Default), &self.execution.origin),
            "promotion": entry(json!(self.promotion.origin != Origin::Default), &self.promotion.origin),
            "storage_backends": self.registry.names().collect::<Vec<_>>(),
        })
    }

    /// `name: value (from origin)` lines for `cfa status`.
    pub fn lines(&self) -> Vec<String> {
        let bundle = match crate::load::policy(self.policy_bundle()) {
            Ok(p) => p.engine.version().to_owned(),
            Err(_) => self
                .policy_bundle
                .value
                .clone()
                .unwrap_or_else(|| "default".into()),
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
        };
        vec![
            format!("bundle: {bundle} (from {})", self.policy_bundle.origin),
            format!(
                "catalog: {} (from {})",
                path(&self.catalog.value),
                self.catalog.origin
            ),
            format!(
                "audit: {} (from {})",
                self.audit()
                    .map_or_else(|| "none".to_owned(), StoreLocation::shown),
                self.audit.origin
            ),
            format!(
                "state db: {} (from {})",
                path(&self.state_db.value),
                self.state_db.origin
            ),
            format!(
                "backend: {} (from {})",
                self.backend.value.as_deref().unwrap_or("pyspark"),
                self.backend.origin
            ),
            format!(
                "retention: {} days (from {})",
                self.retention_days.value, self.retention_days.origin
            ),
        ]
    }
}

/// A missing required argument that no config supplied (exit 2, like clap's).
#[derive(Debug)]
pub struct UsageError(pub String);

impl UsageError {
    /// Prints the error as clap does and exits with the usage code (2), before
    /// anything was written to stdout.
    pub fn exit(&self) -> ! {
        crate::ux::usage_exit(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg(dir: &Path, text: &str) -> CfaConfig {
        let p = dir.join("cfa.yaml");
        std::fs::write(&p, text).unwrap();
        config::parse(&p).unwrap()
    }

    #[test]
    fn flag_beats_env_beats_config_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cat.json"), "{\"datasets\": {}}").unwrap();
        let c = cfg(
            dir.path(),
            "storage:\n  backend: jsonl\n  path: a.jsonl\n  retention_days: 7\ndefaults:\n  policy_bundle: lgpd-v1\n  catalog: cat.json\n",
        );
        let env = Env {
            policy_bundle: Some("finops-strict-v1".into()),
        };
        let none = Flags::default();
        let s = resolve_with(&none, &Env::default(), Some(c.clone()));
        assert_eq!(s.policy_bundle(), Some("lgpd-v1"));
        assert_eq!(
            s.policy_bundle.origin.to_string(),
            "cfa.yaml defaults.policy_bundle"
        );
        assert_eq!(s.catalog(), Some(dir.path().join("cat.json").as_path()));
        assert_eq!(
            s.audit().unwrap(),
            &StoreLocation::jsonl(&dir.path().join("a.jsonl"))
        );
        assert_eq!(
            s.state_db.value, None,
            "a jsonl log is not a state database"
        );
        assert_eq!(s.retention_days.value, 7);
        let s = resolve_with(&none, &env, Some(c.clone()));
        assert_eq!(s.policy_bundle(), Some("finops-strict-v1"));
        assert_eq!(s.policy_bundle.origin, Origin::Env(POLICY_BUNDLE_ENV));
        let flags = Flags {
            policy_bundle: Some("prod-v1"),
            catalog: Some(Path::new("other.json")),
            audit: Flags::audit_log_or_db(None, Some(Path::new("x.db"))),
            retention_days: Some(1),
            ..Flags::default()
        };
        let s = resolve_with(&flags, &env, Some(c));
        assert_eq!(s.policy_bundle(), Some("prod-v1"));
        assert_eq!(s.policy_bundle.origin.to_string(), "flag --policy-bundle");
        assert_eq!(s.catalog(), Some(Path::new("other.json")));
        assert_eq!(
            s.audit().unwrap(),
            &StoreLocation::sqlite(Path::new("x.db"))
        );
        assert_eq!(s.retention_days.origin, Origin::Flag("--retention"));
        let s = resolve_with(&none, &Env::default(), None);
        assert_eq!(s.policy_bundle(), None);
        assert_eq!(s.policy_bundle.origin, Origin::Default);
        assert!(s.audit().is_none() && s.required_audit("--file or --db").is_err());
        assert_eq!(s.retention_days.value, DEFAULT_RETENTION_DAYS);
    }

    #[test]
    fn sqlite_storage_is_also_the_state_database_and_memory_has_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve_with(
            &Flags::default(),
            &Env::default(),
            Some(cfg(dir.path(), "defaults:\n  catalog: missing.json\n")),
        );
        assert_eq!(s.state_db.value, Some(dir.path().join("cfa.db")));
        assert_eq!(s.audit().unwrap().backend, "sqlite");
        assert_eq!(
            s.catalog(),
            None,
            "a configured catalog that does not exist is not used"
        );
        let s = resolve_with(
            &Flags::default(),
            &Env::default(),
            Some(cfg(dir.path(), "storage:\n  backend: memory\n")),
        );
        let a = s.audit().unwrap();
        assert_eq!((a.backend.as_str(), a.path.as_ref()), ("memory", None));
        assert!(a.target().is_err());
        assert!(a.open_audit(&s.registry, Durability::Never).is_ok());
        assert_eq!(s.state_db.value, None);
        assert_eq!(s.state_db_or("cfa.db"), PathBuf::from("cfa.db"));
    }
}
