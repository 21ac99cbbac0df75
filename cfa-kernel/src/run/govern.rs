//! Γ govern: policy evaluation and the bounded replan loop that applies the bundle's
//! own patches.

use super::record::{Details, Failure};
use super::{Run, Step, codes, joined_codes};
use crate::faults::{self, kernel_fault};
use crate::result::{Phase, ReplanAttempt};
use cfa_types::{Fault, PolicyAction, PolicyResult, SharedStr, StateSignature};
use serde_json::Value;
use std::convert::Infallible;

const EVALUATION: Failure = Failure {
    event_type: "policy_evaluation",
    code: faults::POLICY_FAILED,
    what: "Policy evaluation failed",
    remediation: "Fix the failing policy condition (plugin) and retry.",
};

impl Run<'_> {
    pub(super) fn govern(&mut self, mut sig: StateSignature) -> Step<StateSignature> {
        let k = self.k;
        let phase = Phase::Govern;
        self.r.phases_run.push(phase);
        let catalog = Some(&k.config.catalog);
        loop {
            let count = self.r.replan_count;
            let result = self.call(
                phase,
                &EVALUATION,
                |d, e| d.with("replan_count", count).with("error", e),
                || Ok::<_, Infallible>(k.config.policy.evaluate_with_catalog(&sig, catalog, count)),
            )?;
            self.emit(
                phase,
                "policy_evaluation",
                result.action.as_str(),
                Details::new()
                    .with("replan_count", count)
                    .with("faults", codes(&result.faults)),
            )?;
            match result.action {
                PolicyAction::Approve => {
                    self.r.faults.extend(result.faults.iter().cloned());
                    self.r.policy_result = Some(result);
                    return Ok(sig);
                }
                PolicyAction::Block => {
                    let reason = result.reasoning.clone();
                    return Err(self.refuse(phase, reason, result, Vec::new()));
                }
                PolicyAction::Replan => {}
            }
            if !result.manual_fixes.is_empty() {
                let fixes: Vec<String> = result
                    .manual_fixes
                    .iter()
                    .map(|m| format!("{}: {}", m.code, m.reason))
                    .collect();
                let reason = format!(
                    "Replan needs a manual change, no automatic fix exists: {}",
                    fixes.join("; ")
                );
                return Err(self.refuse(phase, reason, result, Vec::new()));
            }
            if result.patches.is_empty() {
                let reason = format!(
                    "Replan failed: no automatic fix for {}; change the intent as the remediation says.",
                    joined_codes(&result.faults)
                );
                return Err(self.refuse(phase, reason, result, Vec::new()));
            }
            let new_sig = match faults::guarded_try(|| sig.apply_patches(&result.patches)) {
                Ok(s) => s,
                Err(e) => {
                    let reason = format!("Replan failed: the fix could not be applied: {e}");
                    let fault = kernel_fault(
                        faults::REPLAN_PATCH_FAILED,
                        phase,
                        reason.clone(),
                        "Fix the bundle's patch paths or change the intent manually.",
                    );
                    return Err(self.refuse(phase, reason, result, vec![fault]));
                }
            };
            self.r.replan_history.push(ReplanAttempt {
                replan_count: count,
                action: result.action,
                fault_codes: result.faults.iter().map(|f| f.code.to_string()).collect(),
                interventions: result
                    .interventions
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                reasoning: result.reasoning.clone(),
                applied_patches: result.patches.clone(),
            });
            self.r.replan_count = count.saturating_add(1);
            sig = new_sig;
            self.set_signature(sig.clone());
            let patches = serde_json::to_value(&result.patches).unwrap_or(Value::Null);
            let mut interventions = String::with_capacity(64);
            cfa_audit::write_str_array(
                &mut interventions,
                result.interventions.iter().map(SharedStr::as_str),
            );
            self.r.policy_result = Some(result);
            self.emit(
                phase,
                "replan_applied",
                "replanned",
                Details::new()
                    .with("replan_count", self.r.replan_count)
                    .raw("interventions", interventions)
                    .with("patches", patches)
                    .with("signature_hash", self.r.signature_hash.clone()),
            )?;
        }
    }

    /// Ends the govern phase blocked by `result`: its faults (then `extra`) are the
    /// run's, and it is the result's last policy evaluation.
    fn refuse(
        &mut self,
        phase: Phase,
        reason: String,
        result: PolicyResult,
        extra: Vec<Fault>,
    ) -> super::Stop {
        let mut f = result.faults.clone();
        f.extend(extra);
        self.r.policy_result = Some(result);
        self.block(phase, reason, f)
    }
}
