//! Skill promotion (docs/compatibility.md#lifecycle): demotion first, then the promotion gate, then
//! inactivity; every transition is recorded with an injected timestamp. The skill state
//! is reported beside a decision and never changes it (B1).

use crate::indices::{IndexCalculator, IndexScores};
use crate::record::ExecutionRecord;
use crate::time::isoformat;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Thresholds of the promotion state machine (reference defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PromotionPolicy {
    /// Executions needed before promotion (3).
    pub min_executions: usize,
    /// Evaluation window, days (7).
    pub evaluation_window_days: u32,
    /// IFo threshold (0.75).
    pub ifo_threshold: f64,
    /// IFs threshold (0.90).
    pub ifs_threshold: f64,
    /// IFg threshold (1.0).
    pub ifg_threshold: f64,
    /// Empty windows before an active skill is deprecated (3).
    pub inactivity_periods_for_deprecation: u32,
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        PromotionPolicy {
            min_executions: 3,
            evaluation_window_days: 7,
            ifo_threshold: 0.75,
            ifs_threshold: 0.90,
            ifg_threshold: 1.0,
            inactivity_periods_for_deprecation: 3,
        }
    }
}

impl PromotionPolicy {
    /// `true` when `scores` pass this policy's promotion gate (the three index
    /// thresholds; the execution count is checked separately).
    pub fn passes_gate(&self, scores: &IndexScores) -> bool {
        scores.ifo >= self.ifo_threshold
            && scores.ifs >= self.ifs_threshold
            && scores.ifg >= self.ifg_threshold
    }
}

/// Lifecycle state of a skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillState {
    /// New (the initial state).
    #[default]
    Candidate,
    /// Promoted.
    Active,
    /// Under observation.
    Watchlist,
    /// Deprecated.
    Deprecated,
    /// Retired (catalog change).
    Retired,
    /// Demoted.
    Demoted,
}

impl SkillState {
    /// The serialised value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkillState::Candidate => "candidate",
            SkillState::Active => "active",
            SkillState::Watchlist => "watchlist",
            SkillState::Deprecated => "deprecated",
            SkillState::Retired => "retired",
            SkillState::Demoted => "demoted",
        }
    }

    /// Parses the serialised value.
    pub fn parse(s: &str) -> Option<Self> {
        [
            SkillState::Candidate,
            SkillState::Active,
            SkillState::Watchlist,
            SkillState::Deprecated,
            SkillState::Retired,
            SkillState::Demoted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One transition of a skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Previous state.
    pub from: SkillState,
    /// New state.
    pub to: SkillState,
    /// Why.
    pub reason: String,
    /// When (ISO, injected).
    pub timestamp: String,
}

/// A skill: a recurring signature and its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillRecord {
    /// The signature hash.
    pub signature_hash: String,
    /// Current state.
    pub state: SkillState,
    /// Set on promotion.
    pub generation_metadata: Value,
    /// Time of the last evaluation (ISO).
    pub last_evaluation: Option<String>,
    /// Reason of the last demotion-type transition.
    pub demotion_reason: String,
    /// Consecutive evaluations with no executions.
    pub consecutive_inactive_windows: u32,
    /// Transitions, oldest first.
    pub history: Vec<Transition>,
}

impl SkillRecord {
    /// A new candidate.
    pub fn new(signature_hash: &str) -> Self {
        SkillRecord {
            signature_hash: signature_hash.to_owned(),
            state: SkillState::Candidate,
            generation_metadata: json!({}),
            last_evaluation: None,
            demotion_reason: String::new(),
            consecutive_inactive_windows: 0,
            history: Vec::new(),
        }
    }

    fn transition(&mut self, to: SkillState, reason: String, now: Timestamp) {
        self.history.push(Transition {
            from: self.state,
            to,
            reason: reason.clone(),
            timestamp: isoformat(now),
        });
        if matches!(
            to,
            SkillState::Demoted
                | SkillState::Watchlist
                | SkillState::Deprecated
                | SkillState::Retired
        ) {
            self.demotion_reason = reason;
        }
        self.state = to;
    }
}

/// Runs the promotion state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionEngine {
    /// Thresholds.
    pub policy: PromotionPolicy,
    /// This system's version (written into `generation_metadata`).
    pub system_version: String,
}

impl PromotionEngine {
    /// An engine with `policy` for `system_version`.
    pub fn new(policy: PromotionPolicy, system_version: &str) -> Self {
        PromotionEngine {
            policy,
            system_version: system_version.to_owned(),
        }
    }

    /// Evaluates `skill` against `records` at `now` (docs/compatibility.md#lifecycle steps 1–4) and
    /// returns the scores. Promotion is only considered when no demotion-type transition
    /// happened in the same evaluation.
    pub fn evaluate<'a>(
        &self,
        skill: &mut SkillRecord,
        records: impl IntoIterator<Item = &'a ExecutionRecord>,
        now: Timestamp,
        policy_bundle_version: &str,
        catalog_snapshot_version: &str,
    ) -> IndexScores {
        let p = &self.policy;
        let s = IndexCalculator::new(p.evaluation_window_days).compute(
            &skill.signature_hash,
            records,
            now,
        );
        skill.last_evaluation = Some(isoformat(now));
        let count = s.execution_count;
        let mut demoted = false;
        if matches!(skill.state, SkillState::Active | SkillState::Watchlist) {
            let active = skill.state == SkillState::Active;
            let next = if s.severe_drift() {
                Some((
                    SkillState::Demoted,
                    format!("Severe drift: IDI={:.2}", s.idi),
                ))
            } else if s.ifg < p.ifg_threshold && count > 0 {
                Some((
                    SkillState::Demoted,
                    format!("Governance violation: IFg={:?}", s.ifg),
                ))
            } else if s.drift_detected() && active {
                Some((
                    SkillState::Watchlist,
                    format!("Drift detected: IDI={:.2}", s.idi),
                ))
            } else if s.ifs < p.ifs_threshold && active {
                Some((SkillState::Watchlist, format!("IFs degraded: {:.2}", s.ifs)))
            } else if s.ifo < p.ifo_threshold && active {
                Some((SkillState::Watchlist, format!("IFo low: {:.2}", s.ifo)))
            } else if !active
                && (s.ifs < p.ifs_threshold || s.ifo < p.ifo_threshold)
                && count >= p.min_executions
            {
                Some((
                    SkillState::Deprecated,
                    "Sustained degradation in watchlist".to_owned(),
                ))
            } else {
                None
            };
            if let Some((to, reason)) = next {
                skill.transition(to, reason, now);
                demoted = true;
            }
        }
        if !demoted
            && matches!(
                skill.state,
                SkillState::Candidate | SkillState::Watchlist | SkillState::Demoted
            )
            && count >= p.min_executions
            && p.passes_gate(&s)
        {
            skill.transition(SkillState::Active, "Promotion gate passed".to_owned(), now);
            skill.generation_metadata = json!({
                "promoted_by_system_version": self.system_version,
                "policy_bundle_at_promotion": policy_bundle_version,
                "catalog_snapshot_at_promotion": catalog_snapshot_version,
                "promotion_scores": {"IFo": s.ifo, "IFs": s.ifs, "IFg": s.ifg},
                "execution_count_at_promotion": count,
                "evaluation_window": format!("last_{}_days", p.evaluation_window_days),
            });
        }
        if count == 0 && matches!(skill.state, SkillState::Active | SkillState::Watchlist) {
            skill.consecutive_inactive_windows += 1;
            if skill.consecutive_inactive_windows >= p.inactivity_periods_for_deprecation {
                skill.transition(
                    SkillState::Deprecated,
                    "Low reuse \u{2014} no executions for multiple windows".to_owned(),
                    now,
                );
            }
        } else {
            skill.consecutive_inactive_windows = 0;
        }
        s
    }

    /// Retires a skill after a catalog change (default reason when `reason` is `None`).
    pub fn retire_for_catalog_change(
        &self,
        skill: &mut SkillRecord,
        reason: Option<&str>,
        now: Timestamp,
    ) {
        let reason = reason
            .unwrap_or("Catalog incompatibility \u{2014} dataset or domain removed")
            .to_owned();
        skill.transition(SkillState::Retired, reason, now);
    }

    /// Demotes every active skill promoted by `system_version`; returns how many.
    pub fn demote_by_system_version(
        &self,
        skills: &mut [SkillRecord],
        system_version: &str,
        now: Timestamp,
    ) -> usize {
        let mut n = 0;
        for s in skills.iter_mut().filter(|s| {
            s.state == SkillState::Active
                && s.generation_metadata
                    .get("promoted_by_system_version")
                    .and_then(Value::as_str)
                    == Some(system_version)
        }) {
            s.transition(
                SkillState::Demoted,
                format!("System version {system_version} demoted"),
                now,
            );
            n += 1;
        }
        n
    }
}
