//! [`ExecutionRecord`]: one governed run, as the lifecycle indices see it.

use cfa_types::Fault;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One run of a signature (docs/compatibility.md#lifecycle fields and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The signature hash (the skill's identity).
    pub signature_hash: String,
    /// When it ran (injected).
    pub timestamp: Timestamp,
    /// Whether the run was approved.
    pub success: bool,
    /// Whether it needed a replan.
    pub replanned: bool,
    /// Cost, DBU.
    pub cost_dbu: f64,
    /// Duration, seconds.
    pub duration_seconds: f64,
    /// Fault codes raised (policy and execution).
    pub faults: Vec<String>,
    /// Whether the output schema matched.
    pub schema_match: bool,
    /// Whether PII was exposed.
    pub pii_exposure: bool,
    /// Whether the run complied with the policy.
    pub policy_compliant: bool,
    /// Whether the run respected the layer.
    pub layer_adherent: bool,
    /// Expected maximum duration, seconds (300).
    pub max_expected_duration: f64,
    /// Expected maximum cost, DBU (50).
    pub max_expected_cost: f64,
}

impl ExecutionRecord {
    /// A successful record with the reference defaults.
    pub fn new(signature_hash: &str, timestamp: Timestamp) -> Self {
        ExecutionRecord {
            signature_hash: signature_hash.to_owned(),
            timestamp,
            success: true,
            replanned: false,
            cost_dbu: 0.0,
            duration_seconds: 0.0,
            faults: Vec::new(),
            schema_match: true,
            pii_exposure: false,
            policy_compliant: true,
            layer_adherent: true,
            max_expected_duration: 300.0,
            max_expected_cost: 50.0,
        }
    }

    /// The record the kernel writes for a run ending in `state` (a `DecisionState`
    /// value), as docs/compatibility.md#lifecycle fills it: success for approved states, PII exposure
    /// when a fault code contains `PII`, compliance unless rolled back or quarantined.
    pub fn from_run(
        signature_hash: &str,
        timestamp: Timestamp,
        state: &str,
        replan_count: u32,
        cost_dbu: f64,
        duration_seconds: f64,
        faults: &[Fault],
    ) -> Self {
        let codes: Vec<String> = faults.iter().map(|f| f.code.to_string()).collect();
        ExecutionRecord {
            success: matches!(state, "approved" | "approved_with_warnings"),
            replanned: replan_count > 0,
            cost_dbu,
            duration_seconds,
            pii_exposure: codes.iter().any(|c| c.contains("PII")),
            policy_compliant: !matches!(state, "rolled_back" | "quarantined"),
            layer_adherent: state != "rolled_back",
            faults: codes,
            ..ExecutionRecord::new(signature_hash, timestamp)
        }
    }
}
