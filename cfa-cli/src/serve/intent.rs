//! Intent text → governed decision for the faces (`cfa_evaluate_intent`,
//! `cfa_compliance_check`, `POST /v1/evaluate`): the rule-based normaliser grounds the
//! intent in the catalog, an ungrounded intent blocks (design.md B2), and the policy
//! engine decides, applying the decision's own patches on replan up to the bundle's
//! replan cap — the bounded replan loop of reference.md §8.2.

use super::decide::{Decision, FaceError, Governance};
use cfa_resolve::{NormalizerInput, Resolution, RuleBasedNormalizer};
use cfa_types::{Catalog, PolicyAction, PolicyResult, StateSignature};
use serde_json::{Value, json};

/// The outcome of one intent.
#[derive(Debug, Clone)]
pub struct IntentOutcome {
    /// The intent text.
    pub intent: String,
    /// How the intent was read.
    pub resolution: Resolution,
    /// The final decision.
    pub decision: Decision,
    /// Replans applied (each applied the previous decision's patches).
    pub replans: u32,
    /// Patches applied across replans, in order.
    pub applied_patches: Vec<cfa_types::Patch>,
}

impl IntentOutcome {
    /// `approved`, `blocked`, or `replan_required` (a replan the loop could not settle).
    pub fn state(&self) -> &'static str {
        match self.decision.result.action {
            PolicyAction::Approve => "approved",
            PolicyAction::Block => "blocked",
            PolicyAction::Replan => "replan_required",
        }
    }

    /// The first blocking fault's message, or `""`.
    pub fn blocked_reason(&self) -> String {
        if self.decision.result.action == PolicyAction::Approve {
            return String::new();
        }
        self.decision
            .result
            .faults
            .first()
            .map(|f| format!("{}: {}", f.code, f.message))
            .unwrap_or_else(|| self.decision.result.reasoning.clone())
    }

    /// `{intent, intent_id, state, blocked_reason, replans, applied_patches, signature,
    /// resolution, …decision document}`.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "intent": self.intent,
            "intent_id": self.decision.signature.intent_id,
            "state": self.state(),
            "blocked_reason": self.blocked_reason(),
            "replans": self.replans,
            "applied_patches": self.applied_patches,
            "signature": self.decision.signature.to_value(),
            "resolution": {
                "confidence": self.resolution.confidence,
                "ambiguity": self.resolution.ambiguity.as_str(),
                "confirmation_mode": self.resolution.confirmation_mode.as_str(),
                "reasoning": self.resolution.reasoning,
            },
        });
        if let (Some(o), Value::Object(d)) = (out.as_object_mut(), self.decision.to_json()) {
            for (k, v) in d {
                o.entry(k).or_insert(v);
            }
        }
        out
    }
}

/// Normalises `intent` against `catalog` (or the configured one) and decides it with
/// the named (or active) bundle.
pub fn evaluate_intent(
    gov: &Governance,
    intent: &str,
    bundle: Option<&str>,
    catalog_override: Option<&Catalog>,
    intent_id: Option<&str>,
) -> Result<IntentOutcome, FaceError> {
    if intent.trim().is_empty() {
        return Err(FaceError::new("invalid_intent", "the intent text is empty"));
    }
    let policy = gov.policy(bundle)?;
    let empty = Catalog::empty();
    let catalog = catalog_override
        .or_else(|| gov.catalog().map(|c| &c.catalog))
        .unwrap_or(&empty);
    let generated;
    let id = match intent_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => {
            generated = uuid::Uuid::new_v4().to_string();
            generated.as_str()
        }
    };
    let resolution = RuleBasedNormalizer::english_and_portuguese()
        .resolve(&NormalizerInput::new(intent, catalog, id));
    let mut signature: StateSignature = resolution.signature.clone();
    let mut applied = Vec::new();
    let mut replans = 0u32;
    let result = if signature.datasets.is_empty() {
        let fault = cfa_resolve::faults::no_dataset_match_fault();
        PolicyResult {
            action: PolicyAction::Block,
            reasoning: format!("action=block | faults=[{}] | TERMINAL", fault.code),
            faults: vec![fault],
            interventions: Vec::new(),
            replan_count: 0,
            patches: Vec::new(),
            manual_fixes: Vec::new(),
        }
    } else {
        loop {
            let r = policy
                .engine
                .evaluate_with_catalog(&signature, Some(catalog), replans);
            let settle = r.action != PolicyAction::Replan
                || r.patches.is_empty()
                || !r.manual_fixes.is_empty()
                || replans >= policy.engine.max_replan_attempts();
            if settle {
                break r;
            }
            signature = signature.apply_patches(&r.patches).map_err(|e| {
                FaceError::new(
                    "replan_failed",
                    format!("cannot apply the replan patches: {e}"),
                )
            })?;
            applied.extend(r.patches.iter().cloned());
            replans += 1;
        }
    };
    let decision = gov.finish(signature, result, &policy)?;
    Ok(IntentOutcome {
        intent: intent.to_owned(),
        resolution,
        decision,
        replans,
        applied_patches: applied,
    })
}

/// Reads a catalog given inline (MCP `cfa_compliance_check`), validating it first.
pub fn inline_catalog(value: &Value) -> Result<Catalog, FaceError> {
    let issues = cfa_types::validate::catalog(value, false);
    if !issues.is_empty() {
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(FaceError::new(
            "invalid_catalog",
            format!("invalid catalog: {}", text.join("; ")),
        ));
    }
    Catalog::from_value(value)
        .map_err(|e| FaceError::new("invalid_catalog", format!("invalid catalog: {e}")))
}
