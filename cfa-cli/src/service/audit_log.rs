//! The audit log a face appends to: one JSONL store held open for the life of the
//! process. Concurrent appends form one group-commit queue in the store; the HTTP face
//! awaits its appends ([`AuditLog::append_async`]) instead of holding a thread for each.

use super::error::FaceError;
use cfa::StateSignature;
use cfa::audit::ContentStore;
use cfa::audit::NewEvent;
use cfa::kernel::{Decision, PolicyCheck};
use cfa::{AuditEvent, AuditStore, Durability, JsonlStore};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The audit log a face appends decisions to (one store held open: appends from
/// concurrent requests join its group commit, so the chain stays linear).
pub struct AuditLog {
    store: Arc<JsonlStore>,
    path: PathBuf,
    chain_length: AtomicU64,
    /// The decisions' signatures and catalogs, by hash (`<log>.signatures/`).
    inputs: ContentStore,
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
            store: Arc::new(store),
            path: path.to_path_buf(),
            chain_length: AtomicU64::new(len),
            inputs: ContentStore::beside(path),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store of decision inputs beside the log (`<log>.signatures/`).
    pub fn inputs(&self) -> &ContentStore {
        &self.inputs
    }

    /// The store, for the kernel to write its events into.
    pub fn store(&self) -> Arc<dyn AuditStore> {
        Arc::clone(&self.store) as Arc<dyn AuditStore>
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
        let decision = check
            .audit(Some(&*self.store))
            .inputs(Some(&self.inputs))
            .decide(signature)
            .map_err(|e| {
                FaceError::new(
                    "audit_error",
                    format!("cannot record the decision in {}: {e}", self.path.display()),
                )
            })?;
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
        let failed = |e: &dyn std::fmt::Display| {
            FaceError::new(
                "audit_error",
                format!("cannot record the decision in {}: {e}", self.path.display()),
            )
        };
        let outcome = self
            .store
            .append_async(vec![event], |store| async move {
                let here = Arc::clone(&store);
                // A leader that panicked has failed its group (the next await sees
                // it); one that never ran (the runtime is shutting down) leads here.
                if let Err(e) = tokio::task::spawn_blocking(move || store.lead_queued()).await
                    && e.is_cancelled()
                {
                    here.lead_queued();
                }
            })
            .await;
        let mut events = outcome.map_err(|e| failed(&e))?;
        let event = events
            .pop()
            .ok_or_else(|| failed(&"no event was written"))?;
        self.chain_length.fetch_add(1, Ordering::Relaxed);
        Ok(event)
    }

    /// The torn tails the store moved aside (when the log was opened, or later before
    /// an append), each recorded in the chain as an `audit_repair` event.
    pub fn repairs(&self) -> Vec<cfa::audit::jsonl::TornRepair> {
        self.store.repairs()
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
        self.store
            .flush()
            .map_err(|e| FaceError::new("audit_error", e.to_string()))
    }
}
