//! Target leases (invariant I8: a single active intent per target scope).

use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};
use serde::{Deserialize, Serialize};

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
