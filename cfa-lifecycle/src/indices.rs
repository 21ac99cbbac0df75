//! The lifecycle indices of docs/compatibility.md#lifecycle (IFo, IFs, IFg, IDI) over a time window
//! ending at an injected "now".

use crate::record::ExecutionRecord;
use crate::time::minus_days;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Index values of one skill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexScores {
    /// Operational fitness.
    pub ifo: f64,
    /// Structural fitness.
    pub ifs: f64,
    /// Governance fitness (binary).
    pub ifg: f64,
    /// Intent drift index.
    pub idi: f64,
    /// Records in the window.
    pub execution_count: usize,
}

impl IndexScores {
    /// `ifo >= 0.75 and ifs >= 0.90 and ifg == 1.0`.
    pub fn promotion_eligible(&self) -> bool {
        self.ifo >= 0.75 && self.ifs >= 0.90 && self.ifg >= 1.0
    }

    /// `idi < 0.75`.
    pub fn drift_detected(&self) -> bool {
        self.idi < 0.75
    }

    /// `idi < 0.50`.
    pub fn severe_drift(&self) -> bool {
        self.idi < 0.50
    }
}

/// Computes [`IndexScores`] over the last `window_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCalculator {
    /// Window length, days.
    pub window_days: u32,
}

#[allow(clippy::cast_precision_loss)]
fn mean(sum: f64, n: usize) -> f64 {
    sum / n as f64
}

#[allow(clippy::cast_precision_loss)]
fn rate(count: usize, n: usize) -> f64 {
    count as f64 / n as f64
}

impl IndexCalculator {
    /// A calculator over `window_days`.
    pub fn new(window_days: u32) -> Self {
        IndexCalculator { window_days }
    }

    /// Scores of `signature_hash` from the records with that hash and
    /// `timestamp >= now - window`; other records are ignored.
    pub fn compute<'a>(
        &self,
        signature_hash: &str,
        records: impl IntoIterator<Item = &'a ExecutionRecord>,
        now: Timestamp,
    ) -> IndexScores {
        let cutoff = minus_days(now, self.window_days);
        let rs: Vec<&ExecutionRecord> = records
            .into_iter()
            .filter(|r| r.signature_hash == signature_hash && r.timestamp >= cutoff)
            .collect();
        let n = rs.len();
        if n == 0 {
            return IndexScores {
                ifo: 0.0,
                ifs: 0.0,
                ifg: 1.0,
                idi: 1.0,
                execution_count: 0,
            };
        }
        let dur: f64 = rs
            .iter()
            .map(|r| (r.duration_seconds / r.max_expected_duration.max(0.01)).min(1.0))
            .sum();
        let cost: f64 = rs
            .iter()
            .map(|r| (r.cost_dbu / r.max_expected_cost.max(0.01)).min(1.0))
            .sum();
        let success = rate(rs.iter().filter(|r| r.success).count(), n);
        let ifo = (1.0 - mean(dur, n)) * (1.0 - mean(cost, n)) * success;
        let schema = rate(rs.iter().filter(|r| r.schema_match).count(), n);
        let replanned = rs.iter().filter(|r| r.replanned).count();
        let fault_free = rate(rs.iter().filter(|r| r.faults.is_empty()).count(), n);
        let ifs = schema * (1.0 - rate(replanned, n)) * fault_free;
        let violation = rs
            .iter()
            .any(|r| r.pii_exposure || !r.policy_compliant || !r.layer_adherent);
        IndexScores {
            ifo,
            ifs,
            ifg: if violation { 0.0 } else { 1.0 },
            idi: 1.0 - rate(replanned, n),
            execution_count: n,
        }
    }
}
