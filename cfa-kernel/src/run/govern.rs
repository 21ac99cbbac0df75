//! Γ govern: policy evaluation and the bounded replan loop that applies the bundle's
//! own patches.

use super::record::Failure;
use super::record::{Dv, known, qkey};
use super::{Run, Step, codes, joined_codes};
use crate::control::control_events;
use crate::faults::{self, kernel_fault};
use crate::result::{Phase, ReplanAttempt};
use cfa_control::ControlOutcome;
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
    /// Evaluates `sig` and replans it in place until the bundle approves (or blocks).
    pub(super) fn govern(&mut self, sig: &mut StateSignature) -> Step<()> {
        let k = self.k;
        let phase = Phase::Govern;
        self.r.phases_run.push(phase);
        let catalog = Some(&k.config.catalog);
        loop {
            let count = self.r.replan_count;
            let result = self.call(
                phase,
                &EVALUATION,
                |d, e| d.with(qkey!("replan_count"), count).with(qkey!("error"), e),
                || Ok::<_, Infallible>(k.config.policy.evaluate_with_catalog(sig, catalog, count)),
            )?;
            self.record_inputs(phase, sig)?;
            let (result, control) = match &k.control {
                // The control plane's hook (crate::control): kill switch, then approvals.
                Some(plane) => plane.apply(
                    &k.config.policy,
                    &k.config.policy_bundle_hash,
                    sig,
                    result,
                    &*k.ids,
                    &k.clock.now_isoformat(),
                ),
                None => (result, None),
            };
            self.emit(
                phase,
                qkey!("policy_evaluation"),
                match result.action {
                    PolicyAction::Approve => qkey!("approve"),
                    PolicyAction::Replan => qkey!("replan"),
                    PolicyAction::Block => qkey!("block"),
                },
                known!(
                    "replan_count" => count,
                    "faults" => codes(&result.faults),
                ),
            )?;
            if let Some(outcome) = control {
                self.emit_control(phase, &outcome)?;
                // The control plane ends the loop (it only blocks or approves): the
                // bundle's own answer is kept beside the controlled one.
                self.r.bundle_result = Some(outcome.bundle_result);
            }
            match result.action {
                PolicyAction::Approve => {
                    self.r.faults.extend(result.faults.iter().cloned());
                    self.r.policy_result = Some(result);
                    return Ok(());
                }
                PolicyAction::Block => {
                    let reason = result.reasoning.to_string();
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
                reasoning: result.reasoning.to_string(),
                applied_patches: result.patches.clone(),
            });
            self.r.replan_count = count.saturating_add(1);
            *sig = new_sig;
            self.set_signature_hashes(sig);
            let patches = serde_json::to_value(&result.patches).unwrap_or(Value::Null);
            let mut interventions = String::with_capacity(64);
            cfa_audit::write_str_array(
                &mut interventions,
                result.interventions.iter().map(SharedStr::as_str),
            );
            self.r.policy_result = Some(result);
            self.emit(
                phase,
                qkey!("replan_applied"),
                qkey!("replanned"),
                known!(
                    "replan_count" => self.r.replan_count,
                    "interventions" => Dv::Raw(interventions),
                    "patches" => patches,
                    "signature_hash" => self.r.signature_hash.clone(),
                ),
            )?;
        }
    }

    /// Stores what a backtest replays this evaluation from (when the kernel has an
    /// inputs store), before its event is written. A failure blocks the run.
    fn record_inputs(&mut self, phase: Phase, sig: &StateSignature) -> Step<()> {
        let k = self.k;
        let Some(inputs) = &k.inputs else {
            return Ok(());
        };
        let stored = crate::replay::record_run_inputs(
            inputs,
            sig,
            &self.r.content_hash,
            &self.r.decision_id,
            &k.config.catalog,
            &k.catalog_hash,
        );
        stored.map_err(|e| {
            let reason = format!("Audit write failed (decision inputs): {e}");
            let fault = kernel_fault(
                faults::AUDIT_WRITE_FAILED,
                phase,
                reason.clone(),
                "Make the store beside the audit log (<log>.signatures/) writable and retry.",
            );
            self.block(phase, reason, vec![fault])
        })
    }

    /// Queues the control plane's events of this evaluation (stage `control`).
    fn emit_control(&mut self, phase: Phase, outcome: &ControlOutcome) -> Step<()> {
        if self.audit_failed {
            return Err(super::Stop(phase));
        }
        let ts = self.k.clock.now_isoformat();
        for event in control_events(outcome, &self.r.intent_id, &ts) {
            self.pending.push(event.prepare());
            self.pending_meta.push((phase, "control"));
        }
        Ok(())
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
        let mut f = result.faults.to_vec();
        f.extend(extra);
        self.r.policy_result = Some(result);
        self.block(phase, reason, f)
    }
}
