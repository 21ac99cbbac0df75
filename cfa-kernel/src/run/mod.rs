//! One governed run (docs/compatibility.md#the-governed-run with the fixes of docs/differences.md), one module per phase
//! ([`formalize`], [`govern`], [`generate`], [`execute`]) over the shared bookkeeping of
//! [`record`]: every step writes one audit event; every failure blocks with a fault
//! naming its phase.

mod budget;
mod execute;
mod formalize;
mod generate;
mod govern;
mod record;
pub(crate) mod sighash;

use crate::ids::IdKind;
use crate::kernel::Kernel;
use crate::result::{KernelResult, Phase, PhaseSkip};
pub(crate) use budget::Budgets;
use cfa_audit::PreparedEvent;
use cfa_types::{DecisionState, Fault, StateSignature};
use record::{known, qkey};

/// The run ended in the given phase (the result's state is already final).
struct Stop(Phase);

type Step<T> = Result<T, Stop>;

pub(crate) struct Run<'k> {
    k: &'k Kernel,
    r: KernelResult,
    audit_failed: bool,
    /// Events of this run not yet written, in order, prepared when they were emitted;
    /// they go to the store in one batch before any side effect and at the end of the run.
    pending: Vec<PreparedEvent>,
    /// The phase and event type of each event of `pending`, same order (what an audit
    /// failure names).
    pending_meta: Vec<(Phase, &'static str)>,
    /// The canonical text of the strings every event of the run carries, written once
    /// (see [`record::Quoted`]).
    quoted: record::Quoted,
}

/// The codes of `faults`, as a JSON array.
fn codes(faults: &[Fault]) -> record::Dv<'static> {
    let mut text = String::with_capacity(2 + faults.len() * 24);
    cfa_audit::write_str_array(&mut text, faults.iter().map(|f| f.code.as_str()));
    record::Dv::Raw(text)
}

/// The codes of `faults`, comma-separated.
fn joined_codes(faults: &[Fault]) -> String {
    faults
        .iter()
        .map(|f| f.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'k> Run<'k> {
    pub(crate) fn start(k: &'k Kernel, intent: &str) -> KernelResult {
        let intent_id = k.ids.next_id(IdKind::Intent);
        let decision_id = k.ids.next_id(IdKind::Decision);
        let r = KernelResult {
            intent_id,
            decision_id,
            state: DecisionState::Blocked,
            blocked_reason: String::new(),
            replan_count: 0,
            replan_history: Vec::new(),
            signature: None,
            signature_hash: String::new(),
            content_hash: String::new(),
            resolution: None,
            policy_result: None,
            bundle_result: None,
            faults: Vec::new(),
            policy_bundle: k.config.policy.version().to_owned(),
            policy_bundle_hash: k.config.policy_bundle_hash.clone(),
            artifact: None,
            execution: None,
            phases_run: Vec::new(),
            phases_skipped: Vec::new(),
            audit_event_hashes: Vec::with_capacity(12),
            created_at: k.clock.now_isoformat(),
        };
        let quoted = record::Quoted::of(&r, &k.quoted_bundle);
        let mut run = Run {
            k,
            r,
            audit_failed: false,
            pending: Vec::with_capacity(12),
            pending_meta: Vec::with_capacity(12),
            quoted,
        };
        let end = match run.flow(intent) {
            Ok(p) | Err(Stop(p)) => p,
        };
        run.finish(end);
        run.r
    }

    fn flow(&mut self, intent: &str) -> Step<Phase> {
        // The run's one signature: the phases borrow it, a replan replaces it, and it
        // moves into the result when the run ends however it ends (no copy of it).
        let mut sig = self.formalize(intent)?;
        let end = self.decide(&mut sig);
        self.r.signature = Some(sig);
        end
    }

    /// The phases after formalize, on the run's signature (`sig` is the replanned
    /// one after a replan).
    fn decide(&mut self, sig: &mut StateSignature) -> Step<Phase> {
        self.govern(sig)?;
        let generated = self.generate(sig)?;
        if let Some((plan, artifact)) = generated {
            self.execute(sig, &plan, &artifact)?;
        }
        self.validate()
    }

    fn validate(&mut self) -> Step<Phase> {
        let phase = Phase::Validate;
        self.r.phases_run.push(phase);
        let warnings = self.r.has_warnings();
        if warnings && self.k.config.warnings_are_blocking {
            return Err(self.block(
                phase,
                "Warnings treated as blocking (config).".to_owned(),
                Vec::new(),
            ));
        }
        self.r.state = if warnings || self.r.replan_count > 0 {
            DecisionState::ApprovedWithWarnings
        } else {
            DecisionState::Approved
        };
        self.r.blocked_reason.clear();
        Ok(phase)
    }

    /// Records the final decision. A failed write turns any state into `blocked`.
    fn finish(&mut self, phase: Phase) {
        if self.r.state == DecisionState::Blocked && self.r.blocked_reason.is_empty() {
            self.r.blocked_reason = "Blocked: the run ended without a decision.".to_owned();
        }
        let details = known!(
            "signature_hash" => self.r.signature_hash.clone(),
            "replan_count" => self.r.replan_count,
            "warnings" => self.r.has_warnings(),
            "blocked_reason" => self.r.blocked_reason.clone(),
            "faults" => codes(&self.r.faults),
        );
        // The states a run ends in, quoted once; any other as given.
        let state: record::Name<'static> = match self.r.state {
            DecisionState::Approved => qkey!("approved").into(),
            DecisionState::ApprovedWithWarnings => qkey!("approved_with_warnings").into(),
            DecisionState::Blocked => qkey!("blocked").into(),
            other => other.as_str().into(),
        };
        let _ = self.emit(phase, qkey!("final_decision"), state, details);
        let _ = self.write_audit();
    }

    // ----- state of the result ---------------------------------------------------

    fn block(&mut self, phase: Phase, reason: String, new_faults: Vec<Fault>) -> Stop {
        self.r.state = DecisionState::Blocked;
        self.r.blocked_reason = reason;
        self.r.faults.extend(new_faults);
        Stop(phase)
    }

    fn end_in(&mut self, phase: Phase, state: DecisionState, reason: String) -> Stop {
        self.r.state = state;
        self.r.blocked_reason = reason;
        Stop(phase)
    }

    /// Makes `sig`'s hashes the run's (the signature itself reaches the result when
    /// the run ends, see [`Run::flow`]).
    fn set_signature_hashes(&mut self, sig: &StateSignature) {
        let (signature_hash, content_hash) = sighash::signature_hashes(sig);
        self.r.signature_hash = signature_hash;
        self.r.content_hash = content_hash;
        self.quoted.set_content_hash(&self.r.content_hash);
    }

    fn skip(&mut self, phase: Phase, reason: &str) {
        self.r.phases_skipped.push(PhaseSkip {
            phase,
            reason: reason.to_owned(),
        });
    }
}
