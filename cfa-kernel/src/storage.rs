//! The storage registry: audit stores ([`AuditStore`]) and lifecycle state stores
//! ([`StateStore`]) opened by backend name, beside the backend and sandbox registries.
//! The built-ins are `jsonl` (audit), `sqlite` (audit and state, with the `sqlite`
//! feature), `postgres` (audit, with the `postgres` feature: the DSN is read from the
//! environment variable the request names, never passed as text) and `memory` (audit
//! and state); a plugin adds its own with
//! [`StorageRegistry::register`]. An unknown name is an error that lists the
//! registered ones. The registry knows no config file and no command line: callers
//! resolve the name and the path and hand them over in a [`StoreRequest`].

use cfa_audit::{AuditError, AuditStore, Durability, JsonlStore, MemoryStore};
use cfa_lifecycle::{LifecycleError, MemoryStateStore, StateStore};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What a factory is asked to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    /// The file or database the store lives in (`None` for stores that need none).
    pub path: Option<PathBuf>,
    /// When appends reach the disk (audit stores).
    pub durability: Durability,
    /// The environment variable holding the database's DSN, for database backends
    /// (`postgres`); the DSN itself never travels in a request.
    pub dsn_env: Option<String>,
}

impl StoreRequest {
    /// A request for the store at `path`, fsynced on every append.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        StoreRequest {
            path: Some(path.into()),
            durability: Durability::Always,
            dsn_env: None,
        }
    }

    /// A request for a store without a file (`memory`).
    pub fn in_memory() -> Self {
        StoreRequest {
            path: None,
            durability: Durability::Always,
            dsn_env: None,
        }
    }

    /// A request for a database store whose DSN is in the environment variable `name`.
    pub fn from_env(name: impl Into<String>) -> Self {
        StoreRequest {
            path: None,
            durability: Durability::Always,
            dsn_env: Some(name.into()),
        }
    }

    /// The same request with `durability`.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    fn require_path(&self, backend: &str) -> Result<&PathBuf, StorageError> {
        self.path.as_ref().ok_or_else(|| StorageError::NoPath {
            backend: backend.to_owned(),
        })
    }
}

/// Which kind of store a backend is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A hash-chained audit log.
    Audit,
    /// A lifecycle state store (the context registry).
    State,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Audit => "audit",
            StoreKind::State => "state",
        })
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No backend of that name offers that kind of store.
    #[error("unknown {kind} storage backend '{name}' (registered: {known})")]
    Unknown {
        /// Audit or state.
        kind: StoreKind,
        /// The name asked for.
        name: String,
        /// The registered names for that kind, comma-separated.
        known: String,
    },
    /// The backend needs the name of the environment variable holding its DSN.
    #[error(
        "the {backend} storage backend needs the name of the environment variable holding its DSN (storage.dsn_env)"
    )]
    NoDsnEnv {
        /// The backend.
        backend: String,
    },
    /// The backend needs a path and the request has none.
    #[error("the {backend} storage backend needs a path")]
    NoPath {
        /// The backend.
        backend: String,
    },
    /// The audit store failed to open.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The state store failed to open.
    #[error(transparent)]
    State(#[from] LifecycleError),
    /// A plugin's own failure.
    #[error("{0}")]
    Plugin(String),
}

/// Opens an audit store.
pub type AuditFactory =
    Arc<dyn Fn(&StoreRequest) -> Result<Box<dyn AuditStore>, StorageError> + Send + Sync>;
/// Opens a state store.
pub type StateFactory =
    Arc<dyn Fn(&StoreRequest) -> Result<Box<dyn StateStore>, StorageError> + Send + Sync>;

/// One backend: the stores it can open (at least one).
#[derive(Clone)]
pub struct StorageBackend {
    /// Its audit store, if it has one.
    pub audit: Option<AuditFactory>,
    /// Its state store, if it has one.
    pub state: Option<StateFactory>,
    /// Whether its stores live in a file or database named by [`StoreRequest::path`]
    /// (`false`: nothing is kept, e.g. `memory`, or it lives in a database).
    pub keeps_files: bool,
    /// Whether its stores live in a database reached through the DSN in the
    /// environment variable [`StoreRequest::dsn_env`] names (`postgres`).
    pub database: bool,
}

impl fmt::Debug for StorageBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageBackend")
            .field("audit", &self.audit.is_some())
            .field("state", &self.state.is_some())
            .field("keeps_files", &self.keeps_files)
            .field("database", &self.database)
            .finish()
    }
}

impl StorageBackend {
    /// A backend with an audit store only.
    pub fn audit(
        f: impl Fn(&StoreRequest) -> Result<Box<dyn AuditStore>, StorageError> + Send + Sync + 'static,
    ) -> Self {
        StorageBackend {
            audit: Some(Arc::new(f)),
            state: None,
            keeps_files: true,
            database: false,
        }
    }

    /// This backend keeps nothing on disk (its stores need no path).
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.keeps_files = false;
        self
    }

    /// This backend keeps its stores in a database named by [`StoreRequest::dsn_env`],
    /// not in a file.
    #[must_use]
    pub fn in_database(mut self) -> Self {
        self.keeps_files = false;
        self.database = true;
        self
    }

    /// This backend with a state store too.
    #[must_use]
    pub fn with_state(
        mut self,
        f: impl Fn(&StoreRequest) -> Result<Box<dyn StateStore>, StorageError> + Send + Sync + 'static,
    ) -> Self {
        self.state = Some(Arc::new(f));
        self
    }
}

/// Storage backends by name.
#[derive(Debug, Clone, Default)]
pub struct StorageRegistry {
    backends: BTreeMap<String, StorageBackend>,
}

/// The names of the built-in backends, in the order they are documented (`sqlite` and
/// `postgres` only with their features).
pub const BUILTIN_BACKENDS: [&str; 4] = ["jsonl", "sqlite", "postgres", "memory"];

impl StorageRegistry {
    /// A registry without any backend.
    pub fn empty() -> Self {
        StorageRegistry::default()
    }

    /// The built-ins: `jsonl` (audit), `memory` (audit and state) and, with the
    /// `sqlite` feature, `sqlite` (audit and state).
    pub fn with_builtins() -> Self {
        let mut r = StorageRegistry::empty();
        r.register(
            "jsonl",
            StorageBackend::audit(|req| {
                let path = req.require_path("jsonl")?;
                Ok(Box::new(JsonlStore::open(path, req.durability)?))
            }),
        );
        r.register(
            "memory",
            StorageBackend::audit(|_| Ok(Box::new(MemoryStore::new())))
                .with_state(|_| Ok(Box::new(MemoryStateStore::default())))
                .in_memory(),
        );
        #[cfg(feature = "sqlite")]
        r.register(
            "sqlite",
            StorageBackend::audit(|req| {
                let path = req.require_path("sqlite")?;
                Ok(Box::new(cfa_audit::SqliteStore::open(
                    path,
                    req.durability,
                )?))
            })
            .with_state(|req| {
                let path = req.require_path("sqlite")?;
                Ok(Box::new(cfa_lifecycle::LifecycleDb::open(path)?))
            }),
        );
        #[cfg(feature = "postgres")]
        r.register(
            "postgres",
            StorageBackend::audit(|req| {
                let name = req
                    .dsn_env
                    .as_deref()
                    .ok_or_else(|| StorageError::NoDsnEnv {
                        backend: "postgres".into(),
                    })?;
                Ok(Box::new(cfa_audit::PgStore::connect_env(name)?))
            })
            .in_database(),
        );
        r
    }

    /// Adds (or replaces) the backend `name`.
    pub fn register(&mut self, name: impl Into<String>, backend: StorageBackend) {
        self.backends.insert(name.into(), backend);
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.backends.keys().map(String::as_str)
    }

    /// Whether `name` offers a store of `kind`.
    pub fn offers(&self, name: &str, kind: StoreKind) -> bool {
        self.backends.get(name).is_some_and(|b| match kind {
            StoreKind::Audit => b.audit.is_some(),
            StoreKind::State => b.state.is_some(),
        })
    }

    /// Whether backend `name` keeps its stores in the file its request names
    /// (`false` for unknown names and in-memory backends).
    pub fn keeps_files(&self, name: &str) -> bool {
        self.backends.get(name).is_some_and(|b| b.keeps_files)
    }

    /// Whether backend `name` keeps its stores in a database reached through a DSN in
    /// the environment ([`StoreRequest::dsn_env`]).
    pub fn uses_database(&self, name: &str) -> bool {
        self.backends.get(name).is_some_and(|b| b.database)
    }

    /// The names offering a store of `kind`, comma-separated.
    pub fn names_for(&self, kind: StoreKind) -> String {
        self.backends
            .keys()
            .filter(|n| self.offers(n, kind))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn unknown(&self, name: &str, kind: StoreKind) -> StorageError {
        StorageError::Unknown {
            kind,
            name: name.to_owned(),
            known: self.names_for(kind),
        }
    }

    /// Checks that `name` offers a store of `kind` without opening anything.
    pub fn check(&self, name: &str, kind: StoreKind) -> Result<(), StorageError> {
        if self.offers(name, kind) {
            Ok(())
        } else {
            Err(self.unknown(name, kind))
        }
    }

    /// Opens the audit store of backend `name`.
    pub fn open_audit(
        &self,
        name: &str,
        req: &StoreRequest,
    ) -> Result<Box<dyn AuditStore>, StorageError> {
        match self.backends.get(name).and_then(|b| b.audit.as_ref()) {
            Some(f) => f(req),
            None => Err(self.unknown(name, StoreKind::Audit)),
        }
    }

    /// Opens the state store of backend `name`.
    pub fn open_state(
        &self,
        name: &str,
        req: &StoreRequest,
    ) -> Result<Box<dyn StateStore>, StorageError> {
        match self.backends.get(name).and_then(|b| b.state.as_ref()) {
            Some(f) => f(req),
            None => Err(self.unknown(name, StoreKind::State)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use cfa_audit::NewEvent;

    fn event(i: u32) -> NewEvent {
        NewEvent::new(
            format!("i-{i}"),
            "policy",
            "decision",
            "approved",
            "2026-01-01T00:00:00+00:00",
        )
    }

    #[test]
    fn builtins_open_by_name() {
        let r = StorageRegistry::with_builtins();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let store = r.open_audit("jsonl", &StoreRequest::at(&log)).unwrap();
        store.append(event(1)).unwrap();
        store.append(event(2)).unwrap();
        assert_eq!(store.len().unwrap(), 2);
        drop(store);
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);

        assert!(r.keeps_files("jsonl") && !r.keeps_files("memory") && !r.keeps_files("x"));
        let mem = r.open_audit("memory", &StoreRequest::in_memory()).unwrap();
        assert!(mem.is_empty().unwrap());
        let state = r.open_state("memory", &StoreRequest::in_memory()).unwrap();
        assert_eq!(state.version_id().unwrap(), "v_initial");
        assert!(matches!(
            r.open_audit("jsonl", &StoreRequest::in_memory()),
            Err(StorageError::NoPath { .. })
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_opens_both_kinds() {
        let r = StorageRegistry::with_builtins();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cfa.db");
        let store = r.open_audit("sqlite", &StoreRequest::at(&db)).unwrap();
        store.append(event(1)).unwrap();
        assert_eq!(store.len().unwrap(), 1);
        let state = r.open_state("sqlite", &StoreRequest::at(&db)).unwrap();
        assert_eq!(state.history_len().unwrap(), 0);
        assert!(db.is_file());
    }

    #[test]
    fn plugins_register_and_replace() {
        let mut r = StorageRegistry::empty();
        assert_eq!(r.names().count(), 0);
        r.register(
            "counting",
            StorageBackend::audit(|req| {
                let store = MemoryStore::new();
                store.append(event(req.path.iter().count() as u32))?;
                Ok(Box::new(store))
            }),
        );
        let s = r.open_audit("counting", &StoreRequest::at("x")).unwrap();
        assert_eq!(s.len().unwrap(), 1);
        assert!(r.offers("counting", StoreKind::Audit));
        assert!(r.keeps_files("counting"));
        assert!(!r.offers("counting", StoreKind::State));
        assert!(r.check("counting", StoreKind::State).is_err());
        r.register(
            "counting",
            StorageBackend::audit(|_| Err(StorageError::Plugin("down".into()))),
        );
        let e = r
            .open_audit("counting", &StoreRequest::at("x"))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "down");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_needs_a_dsn_env_and_never_shows_the_dsn() {
        let r = StorageRegistry::with_builtins();
        assert!(r.uses_database("postgres") && !r.keeps_files("postgres"));
        assert!(!r.uses_database("sqlite"));
        let e = r
            .open_audit("postgres", &StoreRequest::in_memory())
            .err()
            .unwrap();
        assert!(matches!(e, StorageError::NoDsnEnv { .. }), "{e}");
        let e = r
            .open_audit(
                "postgres",
                &StoreRequest::from_env("CFA_KERNEL_TEST_UNSET_DSN"),
            )
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("CFA_KERNEL_TEST_UNSET_DSN is not set"),
            "{e}"
        );
    }

    // Without the `postgres` feature, `postgres` is an unknown name.
    #[cfg(not(feature = "postgres"))]
    #[test]
    fn unknown_names_list_the_registered_ones() {
        let r = StorageRegistry::with_builtins();
        let e = r
            .open_audit("postgres", &StoreRequest::in_memory())
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(text.contains("'postgres'"), "{text}");
        assert!(text.contains("jsonl") && text.contains("memory"), "{text}");
        assert!(r.check("mongo", StoreKind::Audit).is_err());
        let e = r.open_state("jsonl", &StoreRequest::at("x")).err().unwrap();
        assert!(matches!(
            e,
            StorageError::Unknown {
                kind: StoreKind::State,
                ..
            }
        ));
        assert!(!e.to_string().contains("jsonl,"), "{e}");
        // Every built-in this build has (here never postgres).
        for name in BUILTIN_BACKENDS {
            let built = name != "postgres" && (cfg!(feature = "sqlite") || name != "sqlite");
            assert_eq!(r.offers(name, StoreKind::Audit), built, "{name}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn unknown_names_list_the_registered_ones_postgres_built_in() {
        let r = StorageRegistry::with_builtins();
        let e = r
            .open_audit("mongo", &StoreRequest::in_memory())
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(text.contains("'mongo'"), "{text}");
        assert!(text.contains("jsonl") && text.contains("memory"), "{text}");
        assert!(r.check("mongo", StoreKind::Audit).is_err());
        let e = r.open_state("jsonl", &StoreRequest::at("x")).err().unwrap();
        assert!(matches!(
            e,
            StorageError::Unknown {
                kind: StoreKind::State,
                ..
            }
        ));
        assert!(!e.to_string().contains("jsonl,"), "{e}");
        for name in BUILTIN_BACKENDS {
            if (cfg!(feature = "sqlite") || name != "sqlite")
                && (cfg!(feature = "postgres") || name != "postgres")
            {
                assert!(r.offers(name, StoreKind::Audit), "{name}");
            }
        }
    }
}
