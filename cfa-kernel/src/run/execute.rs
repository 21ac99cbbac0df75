//! Ω execute: hands the approved artifact to the configured [`crate::ExecutionPhase`],
//! records what it reports, and ends the run in the decision state cfa-sandbox's one
//! mapping gives ([`cfa_sandbox::ExecutionOutcome::decision_state`]); the kernel only
//! words the reason.

use super::record::qkey;
use super::record::{Details, Failure, Key, reason_details};
use super::{Run, Step, codes, joined_codes};
use crate::faults::{self, kernel_fault};
use crate::result::{ExecutionSummary, Phase};
use cfa_codegen::GeneratedArtifact;
use cfa_plan::ExecutionPlan;
use cfa_sandbox::{ExecutionOutcome, ExecutionRequest, PublishState, is_blocking};
use cfa_types::validate::py_list_repr;
use cfa_types::{DecisionState, Fault, StateSignature};
use serde_json::Value;

const EXECUTION: Failure = Failure {
    event_type: "execution_completed",
    code: faults::EXECUTION_FAILED,
    what: "Execution failed",
    remediation: "Check the sandbox or engine, then resubmit.",
};

/// `key` of an execution's details: the keys cfa-sandbox's `RunOutcome::phase_details`
/// and cfa-lifecycle's execution phase write, quoted once per process (the event
/// copies their text); any other as given.
fn outcome_key(key: &str) -> Key<'_> {
    match key {
        "executed" => qkey!("executed").into(),
        "sandbox" => qkey!("sandbox").into(),
        "sandbox_status" => qkey!("sandbox_status").into(),
        "retries" => qkey!("retries").into(),
        "metrics" => qkey!("metrics").into(),
        "runtime_validation" => qkey!("runtime_validation").into(),
        "committed_steps" => qkey!("committed_steps").into(),
        "skipped_steps" => qkey!("skipped_steps").into(),
        "final_state" => qkey!("final_state").into(),
        "lifecycle" => qkey!("lifecycle").into(),
        other => other.into(),
    }
}

/// `['a', 'b']`, as the reference prints step lists.
fn step_list(ids: &[String]) -> String {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    py_list_repr(&refs)
}

/// Why a run that did not go on to VALIDATE ended where it did, and the faults the
/// kernel adds (only for an execution that did not run and gave no reason).
fn stop_reason(outcome: &ExecutionOutcome, executor: &str) -> (String, Vec<Fault>) {
    match &outcome.publish_state {
        PublishState::RolledBack => ("Execution rolled back.".to_owned(), Vec::new()),
        PublishState::Quarantined { steps } => (
            format!("Steps quarantined: {}", step_list(steps)),
            Vec::new(),
        ),
        PublishState::CommittedNotPublished => {
            ("Committed but not published.".to_owned(), Vec::new())
        }
        PublishState::Degraded { failed_steps } => (
            format!(
                "Published degraded: steps failed: {}",
                step_list(failed_steps)
            ),
            Vec::new(),
        ),
        // Fail closed: an execution that did not happen never approves, whatever the
        // severity of the faults it gave (or if it gave none).
        PublishState::NotExecuted if outcome.faults.is_empty() => {
            let reason = format!("Execution phase '{executor}' did not run and gave no reason.");
            let fault = kernel_fault(
                faults::EXECUTION_FAILED,
                Phase::Execute,
                reason.clone(),
                EXECUTION.remediation,
            );
            (reason, vec![fault])
        }
        PublishState::NotExecuted => (
            format!("Execution refused: {}", joined_codes(&outcome.faults)),
            Vec::new(),
        ),
        PublishState::Published => {
            let bad: Vec<Fault> = outcome
                .faults
                .iter()
                .filter(|f| is_blocking(f))
                .cloned()
                .collect();
            (
                format!("Runtime validation failed: {}", joined_codes(&bad)),
                Vec::new(),
            )
        }
    }
}

impl Run<'_> {
    pub(super) fn execute(
        &mut self,
        sig: &StateSignature,
        plan: &ExecutionPlan,
        artifact: &GeneratedArtifact,
    ) -> Step<()> {
        let k = self.k;
        let phase = Phase::Execute;
        if !k.config.phases.execute {
            self.skip(phase, "disabled in the kernel config");
            return self.charge_estimate(sig, plan);
        }
        let Some(executor) = k.executor.as_ref() else {
            self.skip(phase, "no execution phase is configured");
            return self.charge_estimate(sig, plan);
        };
        // The run's budgets are charged before it runs (a refusal blocks here).
        let charge = self.reserve_budget(sig, plan)?;
        // Everything decided so far reaches the audit log before anything runs.
        if let Err(stop) = self.write_audit() {
            let _ = self.settle_budget(charge, None);
            return Err(stop);
        }
        self.r.phases_run.push(phase);
        let request = ExecutionRequest {
            intent_id: &self.r.intent_id,
            decision_id: &self.r.decision_id,
            signature: sig,
            // Computed from `sig` when it became the run's (`Run::set_signature_hashes`).
            signature_hash: Some(&self.r.signature_hash),
            catalog: &k.config.catalog,
            plan,
            artifact,
            replan_count: self.r.replan_count,
            policy_faults: self
                .r
                .policy_result
                .as_ref()
                .map_or(&[], |p| p.faults.as_slice()),
        };
        // The request borrows the result's ids: call first, then record.
        let ran = faults::guarded_try(|| executor.execute(&request));
        let settled = self.settle_budget(charge, ran.as_ref().ok());
        let mut outcome = match self.checked(phase, &EXECUTION, reason_details(&EXECUTION), ran) {
            Ok(o) => o,
            Err(stop) => {
                let _ = self.record_settlement(settled);
                return Err(stop);
            }
        };
        self.r.faults.extend(outcome.faults.iter().cloned());
        let state = outcome.publish_state.as_str();
        let quarantined: &[String] = match &outcome.publish_state {
            PublishState::Quarantined { steps } => steps,
            _ => &[],
        };
        // The phase's details are written into the event as text straight from the
        // outcome (keys and values borrowed), then moved to the result.
        let mut details = Details::new()
            .with(qkey!("executor"), executor.name())
            .with(qkey!("publish_state"), state)
            .strs(qkey!("quarantined"), quarantined.iter().map(String::as_str))
            .with(qkey!("committed"), outcome.publish_state.is_committed())
            .with(qkey!("faults"), codes(&outcome.faults));
        // Strings and flags go in as text (what the JSON value's canonical text is),
        // without the walk a JSON value takes.
        for (key, value) in &outcome.details {
            let key = outcome_key(key);
            details = match value {
                Value::String(s) => details.with(key, s.as_str()),
                Value::Bool(b) => details.with(key, *b),
                other => details.with(key, other),
            };
        }
        let emitted = self.emit(phase, qkey!("execution_completed"), state, details);
        self.r.execution = Some(ExecutionSummary {
            executor: executor.name().to_owned(),
            publish_state: outcome.publish_state.clone(),
            details: std::mem::take(&mut outcome.details),
        });
        emitted?;
        if let Some(projection) = outcome.projection.take() {
            let details = Details::new().extend_owned(projection);
            self.emit(phase, qkey!("state_projected"), qkey!("projected"), details)?;
        }
        self.record_settlement(settled)?;
        match outcome.decision_state() {
            // Approved runs go on to VALIDATE, which has the last word.
            DecisionState::Approved | DecisionState::ApprovedWithWarnings => Ok(()),
            DecisionState::Blocked => {
                let (reason, kernel_faults) = stop_reason(&outcome, executor.name());
                Err(self.block(phase, reason, kernel_faults))
            }
            state => {
                let (reason, _) = stop_reason(&outcome, executor.name());
                Err(self.end_in(phase, state, reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Key, outcome_key};

    #[test]
    fn quoted_outcome_keys_are_the_keys_own_text() {
        let known = [
            "executed",
            "sandbox",
            "sandbox_status",
            "retries",
            "metrics",
            "runtime_validation",
            "committed_steps",
            "skipped_steps",
            "final_state",
            "lifecycle",
        ];
        for key in known {
            match outcome_key(key) {
                Key::Quoted(q) => assert_eq!(*q, cfa_audit::QuotedStr::new(key)),
                Key::Plain(_) => panic!("{key} is not quoted"),
            }
        }
        for key in ["other", "Executed", "", "lifecycle ", "scores"] {
            match outcome_key(key) {
                Key::Plain(k) => assert_eq!(k, key),
                Key::Quoted(_) => panic!("{key:?} is quoted"),
            }
        }
    }
}
