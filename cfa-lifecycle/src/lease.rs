//! Target leases (invariant I8: a single active intent per target scope).

use crate::error::LifecycleError;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Target dataset.
    pub target: String,
    /// Holder id (e.g. a kernel instance or intent id).
    pub holder: String,
    /// When it was acquired (ISO).
    pub acquired_at: String,
    /// When it expires (ISO).
    pub expires_at: String,
}

/// Another holder owns the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target '{target}' is leased by '{holder}' until {expires_at}")]
pub struct LeaseHeld {
    /// Target dataset.
    pub target: String,
    /// Current holder.
    pub holder: String,
    /// Expiry (ISO).
    pub expires_at: String,
}

/// `STATE_TARGET_LEASED` (high, environmental, action block) naming the holder: the
/// kernel blocks the intent with it.
pub fn lease_fault(held: &LeaseHeld) -> Fault {
    Fault {
        code: "STATE_TARGET_LEASED".into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::High,
        stage: "state_projection".into(),
        message: format!(
            "Target '{}' is being written by another intent (holder '{}', lease until {})",
            held.target, held.holder, held.expires_at
        )
        .into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![format!(
            "Retry after '{}' finishes or its lease expires",
            held.holder
        )]
        .into(),
        detected_before_execution: true,
    }
}

/// A lease table: where the target leases of runs are taken (the SQLite
/// `LifecycleDb`'s `leases`, feature `sqlite`, or the `PgLeases` every replica shares,
/// feature `postgres`). One
/// semantics for all: a live lease of another holder is refused with [`LeaseHeld`]
/// (as [`LifecycleError::Leased`]), an expired one is taken over, the same holder
/// renews, and each acquisition is atomic.
pub trait LeaseStore: Send + Sync {
    /// Takes the lease on `target` for `holder` until `now + ttl_secs`.
    fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError>;

    /// Releases `holder`'s lease on `target`; false when it did not hold it.
    fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError>;
}

/// Where an [`crate::ExecutionService`] takes its target leases, and as whom.
#[derive(Clone, Default)]
pub struct LeasePolicy {
    /// The lease table (`None`: the service's lifecycle database, when it has one;
    /// else runs take no lease).
    pub store: Option<Arc<dyn LeaseStore>>,
    /// Each run holds the lease as `HOLDER/INTENT_ID` instead of `HOLDER`: for a process
    /// running several intents at once (a server), whose runs would otherwise renew
    /// each other's lease as one holder.
    pub per_run: bool,
}

impl std::fmt::Debug for LeasePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasePolicy")
            .field("store", &self.store.is_some())
            .field("per_run", &self.per_run)
            .finish()
    }
}
