//! The audit log a face appends to: one JSONL store, or one PostgreSQL store shared
//! with the other replicas (`--audit-pg-env` / `storage.backend: postgres`), held open
//! for the life of the process. Concurrent appends form one group-commit queue in the
//! store; the HTTP face awaits its appends ([`AuditLog::append_async`]) instead of
//! holding a thread for each. A failed append is an `audit_error`: the decision is
//! never handed out unaudited.

use super::error::FaceError;
use cfa::StateSignature;
use cfa::audit::ContentStore;
use cfa::audit::NewEvent;
use cfa::kernel::{Decision, PolicyCheck};
use cfa::{AuditEvent, AuditStore, Durability, JsonlStore};
use cfa_audit::PgStore;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The audit log a face appends decisions to (one store held open: appends from
/// concurrent requests join its group commit, so the chain stays linear).
pub struct AuditLog {
    store: Store,
    /// The file, or the database as `user@host:port/dbname`.
    path: PathBuf,
    chain_length: AtomicU64,
    /// The decisions' signatures and catalogs, by hash (`<log>.signatures/`; none for a
    /// PostgreSQL chain, which has no file to keep them beside).
    inputs: Option<Arc<ContentStore>>,
}

/// The store behind a face's log.
enum Store {
    Jsonl(Arc<JsonlStore>),
    Postgres(Arc<PgStore>),
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the JSONL log at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, FaceError> {
        let store = JsonlStore::open(path, durability).map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot open audit log {}: {e}", path.display()),
            )
        })?;
        let len = store.len().map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot read audit log {}: {e}", path.display()),
            )
        })?;
        Ok(Self {
            store: Store::Jsonl(Arc::new(store)),
            path: path.to_path_buf(),
            chain_length: AtomicU64::new(len),
            inputs: Some(Arc::new(ContentStore::beside(path))),
        })
    }

    /// Connects to the PostgreSQL chain whose DSN is in the environment variable
    /// `dsn_env` (shared with every replica appending to that database).
    pub fn open_pg(dsn_env: &str) -> Result<Self, FaceError> {
        let store = PgStore::connect_env(dsn_env).map_err(|e| {
            FaceError::new("audit_error", format!("cannot open the audit log: {e}"))
        })?;
        let len = store.len().map_err(|e| {
            FaceError::new("audit_error", format!("cannot read the audit log: {e}"))
        })?;
        Ok(Self {
            path: PathBuf::from(store.target()),
            store: Store::Postgres(Arc::new(store)),
            chain_length: AtomicU64::new(len),
            inputs: None,
        })
    }

    /// The log file (for PostgreSQL: the database as `user@host:port/dbname`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store of decision inputs beside the log (`<log>.signatures/`; `None` for
    /// PostgreSQL).
    pub fn inputs(&self) -> Option<&ContentStore> {
        self.inputs.as_deref()
    }

    /// [`AuditLog::inputs`], shared (what a governed run's kernel stores into).
    pub fn inputs_shared(&self) -> Option<Arc<ContentStore>> {
        self.inputs.clone()
    }

    /// The JSONL file, when the log is one (`None` for PostgreSQL).
    pub fn file(&self) -> Option<&Path> {
        match self.store {
            Store::Jsonl(_) => Some(&self.path),
            Store::Postgres(_) => None,
        }
    }

    /// The store, for the kernel to write its events into.
    pub fn store(&self) -> Arc<dyn AuditStore> {
        match &self.store {
            Store::Jsonl(s) => Arc::clone(s) as Arc<dyn AuditStore>,
            Store::Postgres(s) => Arc::clone(s) as Arc<dyn AuditStore>,
        }
    }

    /// Runs `f`, which may call the PostgreSQL client (a blocking client with a
    /// runtime of its own), outside the async runtime of a face when called on one of
    /// its workers (`cfa mcp`'s tools are synchronous calls on its runtime).
    fn blocking<T>(&self, f: impl FnOnce() -> T) -> T {
        match (&self.store, tokio::runtime::Handle::try_current()) {
            (Store::Postgres(_), Ok(h))
                if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
            {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }

    fn dyn_store(&self) -> &dyn AuditStore {
        match &self.store {
            Store::Jsonl(s) => &**s,
            Store::Postgres(s) => &**s,
        }
    }

    /// Verifies the chain in one pass: the file, or the PostgreSQL table streamed in
    /// one snapshot.
    pub fn verify(
        &self,
        opts: &cfa::VerifyOptions,
    ) -> Result<cfa::audit::VerifyReport, cfa::audit::AuditError> {
        match &self.store {
            Store::Jsonl(_) => cfa::audit::verify_file(&self.path, opts, &mut |_| {}),
            Store::Postgres(s) => self.blocking(|| s.verify_chain(opts)),
        }
    }

    /// The face's error when an event could not be recorded in this log.
    fn unrecorded(&self, e: &dyn std::fmt::Display) -> FaceError {
        FaceError::new(
            "audit_error",
            format!("cannot record the decision in {}: {e}", self.path.display()),
        )
    }

    /// Counts `n` events appended through [`AuditLog::store`].
    pub fn note_appended(&self, n: u64) {
        self.chain_length.fetch_add(n, Ordering::Relaxed);
    }

    /// Events in the chain (at open, plus what this process appended).
    pub fn chain_length(&self) -> u64 {
        self.chain_length.load(Ordering::Relaxed)
    }

    /// Runs `check` on `signature` with this log as its audit store: the decision comes
    /// back only once its `policy_check` event is appended.
    pub fn decide(
        &self,
        check: PolicyCheck<'_>,
        signature: &StateSignature,
    ) -> Result<Decision, FaceError> {
        let decision = self
            .blocking(|| {
                check
                    .audit(Some(self.dyn_store()))
                    .inputs(self.inputs.as_deref())
                    .decide(signature)
            })
            .map_err(|e| self.unrecorded(&e))?;
        let control = decision.control_events("").len();
        self.chain_length
            .fetch_add(1 + u64::try_from(control).unwrap_or(0), Ordering::Relaxed);
        Ok(decision)
    }

    /// Appends `event` through the store's group commit without blocking the calling
    /// task ([`JsonlStore::append_async`]): it waits for its group's leader; when it is
    /// handed the lead itself, it commits that group right here when nothing in that
    /// waits (fsync batch or never, the append lock free: one write(2)), else on a
    /// blocking thread. Returns once the event is as durable as the log's fsync policy
    /// asks (the same acknowledgement as a blocking append).
    pub async fn append_async(&self, event: NewEvent) -> Result<AuditEvent, FaceError> {
        let failed = |e: &dyn std::fmt::Display| self.unrecorded(e);
        let outcome = match &self.store {
            Store::Jsonl(s) => s.append_async(vec![event], lead_on_blocking_pool).await,
            Store::Postgres(s) => s.append_async(vec![event], lead_on_blocking_pool).await,
        };
        let mut events = outcome.map_err(|e| failed(&e))?;
        let event = events
            .pop()
            .ok_or_else(|| failed(&"no event was written"))?;
        self.chain_length.fetch_add(1, Ordering::Relaxed);
        Ok(event)
    }

    /// Appends `decision`'s `policy_check` event stamped `timestamp`, built straight
    /// from the decision ([`Decision::prepare_event`]), through the store's group
    /// commit as [`AuditLog::append_async`] does (the same lead, the same
    /// acknowledgement), and returns only its `event_hash` (no event is rebuilt).
    pub async fn append_decision_async(
        &self,
        decision: &Decision,
        timestamp: &str,
    ) -> Result<String, FaceError> {
        let failed = |e: &dyn std::fmt::Display| self.unrecorded(e);
        let events = vec![decision.prepare_event(timestamp)];
        let outcome = match &self.store {
            Store::Jsonl(s) => s.append_prepared_async(events, lead_on_blocking_pool).await,
            Store::Postgres(s) => s.append_prepared_async(events, lead_on_blocking_pool).await,
        };
        let hash = outcome
            .map_err(|e| failed(&e))?
            .pop()
            .ok_or_else(|| failed(&"no event was written"))?;
        self.chain_length.fetch_add(1, Ordering::Relaxed);
        Ok(hash)
    }

    /// The torn tails the store moved aside (when the log was opened, or later before
    /// an append), each recorded in the chain as an `audit_repair` event.
    pub fn repairs(&self) -> Vec<cfa::audit::jsonl::TornRepair> {
        match &self.store {
            Store::Jsonl(s) => s.repairs(),
            // A database has no torn tail: a transaction commits whole or not at all.
            Store::Postgres(_) => Vec::new(),
        }
    }

    /// `{file, status: "ok" | "repaired", repairs: [{offset, bytes, sidecar,
    /// event_hash, message}]}` for health reports.
    pub fn health_json(&self) -> Value {
        let repairs: Vec<Value> = self
            .repairs()
            .iter()
            .map(|r| {
                json!({
                    "offset": r.offset,
                    "bytes": r.bytes,
                    "sidecar": r.sidecar.display().to_string(),
                    "event_hash": r.event_hash,
                    "message": format!("audit: {r}"),
                })
            })
            .collect();
        json!({
            "file": self.path.display().to_string(),
            "status": if repairs.is_empty() { "ok" } else { "repaired" },
            "repairs": repairs,
        })
    }

    /// Forces pending appends to disk.
    pub fn flush(&self) -> Result<(), FaceError> {
        self.dyn_store()
            .flush()
            .map_err(|e| FaceError::new("audit_error", e.to_string()))
    }
}

/// The two stores' [`JsonlStore::lead_queued`] / [`PgStore::lead_queued`], so one
/// hand-off to the blocking pool serves both.
trait LeadQueued: Send + Sync + 'static {
    fn lead_queued(&self);
}

impl LeadQueued for JsonlStore {
    fn lead_queued(&self) {
        JsonlStore::lead_queued(self);
    }
}

impl LeadQueued for PgStore {
    fn lead_queued(&self) {
        PgStore::lead_queued(self);
    }
}

/// Commits the group an async appender was handed the lead of, on the runtime's
/// blocking pool. A leader that panicked has failed its group (the appender's next
/// await sees it); one that never ran (the runtime is shutting down) leads here.
async fn lead_on_blocking_pool<S: LeadQueued>(store: Arc<S>) {
    let here = Arc::clone(&store);
    if let Err(e) = tokio::task::spawn_blocking(move || store.lead_queued()).await
        && e.is_cancelled()
    {
        here.lead_queued();
    }
}
