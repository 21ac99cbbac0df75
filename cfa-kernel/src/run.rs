//! One governed run (reference.md §8 with design.md §4's fixes). Every step writes one
//! audit event; every failure blocks with a fault naming its phase.

use crate::config::Grounding;
use crate::execute::{ExecutionRequest, PublishState};
use crate::faults::{self, guarded, guarded_try, kernel_fault};
use crate::ids::IdKind;
use crate::kernel::Kernel;
use crate::result::{
    ArtifactSummary, ExecutionSummary, KernelResult, Phase, PhaseSkip, ReplanAttempt,
    ResolutionSummary,
};
use cfa_audit::NewEvent;
use cfa_codegen::GeneratedArtifact;
use cfa_plan::ExecutionPlan;
use cfa_resolve::NormalizerInput;
use cfa_types::validate::py_list_repr;
use cfa_types::{
    DecisionState, ExecutionContext, Fault, FaultSeverity, PolicyAction, StateSignature,
};
use serde_json::{Value, json};

/// The run ended in the given phase (the result's state is already final).
struct Stop(Phase);

type Step<T> = Result<T, Stop>;

pub(crate) struct Run<'k> {
    k: &'k Kernel,
    r: KernelResult,
    audit_failed: bool,
    /// Events of this run not yet written (phase, event type, event), in order; they
    /// go to the store in one batch before any side effect and at the end of the run.
    pending: Vec<(Phase, NewEvent)>,
}

fn codes(faults: &[Fault]) -> Value {
    Value::Array(
        faults
            .iter()
            .map(|f| Value::from(f.code.as_str()))
            .collect(),
    )
}

fn joined_codes(faults: &[Fault]) -> String {
    faults
        .iter()
        .map(|f| f.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn blocking(faults: &[Fault]) -> Vec<Fault> {
    faults
        .iter()
        .filter(|f| matches!(f.severity, FaultSeverity::High | FaultSeverity::Critical))
        .cloned()
        .collect()
}

impl<'k> Run<'k> {
    pub(crate) fn start(k: &'k Kernel, intent: &str) -> KernelResult {
        let intent_id = k.ids.next_id(IdKind::Intent);
        let decision_id = k.ids.next_id(IdKind::Decision);
        let mut run = Run {
            k,
            r: KernelResult {
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
                faults: Vec::new(),
                policy_bundle: k.config.policy.version().to_owned(),
                policy_bundle_hash: k.config.policy_bundle_hash.clone(),
                artifact: None,
                execution: None,
                phases_run: Vec::new(),
                phases_skipped: Vec::new(),
                audit_event_hashes: Vec::with_capacity(12),
                created_at: k.clock.now_isoformat(),
            },
            audit_failed: false,
            pending: Vec::with_capacity(12),
        };
        let end = match run.flow(intent) {
            Ok(p) | Err(Stop(p)) => p,
        };
        run.finish(end);
        run.r
    }

    // ----- bookkeeping -------------------------------------------------------------

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

    fn set_signature(&mut self, sig: StateSignature) {
        self.r.signature_hash = sig.signature_hash();
        self.r.content_hash = sig.content_hash();
        self.r.signature = Some(sig);
    }

    /// Queues one audit event (written by [`Run::write_audit`] before any side effect
    /// and at the end of the run). Fails only when an earlier write already failed.
    fn emit(
        &mut self,
        phase: Phase,
        event_type: &str,
        outcome: &str,
        details: Vec<(&str, Value)>,
    ) -> Step<()> {
        if self.audit_failed {
            return Err(Stop(phase));
        }
        let mut ev = NewEvent::new(
            self.r.intent_id.as_str(),
            phase.as_str(),
            event_type,
            outcome,
            self.k.clock.now_isoformat(),
        );
        for (key, value) in details {
            ev.details.insert(key.to_owned(), value);
        }
        let ev = ev
            .detail("decision_id", self.r.decision_id.as_str())
            .detail("content_hash", self.r.content_hash.as_str())
            .with_bundle(
                self.r.policy_bundle.as_str(),
                self.r.policy_bundle_hash.as_str(),
            );
        self.pending.push((phase, ev));
        Ok(())
    }

    /// Writes the queued events in one batch. A failed (or panicking) store blocks the
    /// run: nothing unaudited is approved, and the fault names the first event that
    /// did not reach the log.
    fn write_audit(&mut self) -> Step<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let queued = std::mem::take(&mut self.pending);
        let mut meta = Vec::with_capacity(queued.len());
        let mut events = Vec::with_capacity(queued.len());
        for (phase, ev) in queued {
            meta.push((phase, ev.event_type.clone()));
            events.push(ev);
        }
        let mut written = Vec::with_capacity(events.len());
        let store = &self.k.audit;
        let res = guarded_try(|| store.append_batch(events, &mut written));
        let done = written.len();
        self.r
            .audit_event_hashes
            .extend(written.into_iter().map(|e| e.event_hash));
        let Err(e) = res else {
            return Ok(());
        };
        let (phase, event_type) = meta
            .into_iter()
            .nth(done)
            .unwrap_or((Phase::Validate, String::from("final_decision")));
        self.audit_failed = true;
        self.r.state = DecisionState::Blocked;
        let what = format!("Audit write failed ({event_type}): {e}");
        self.r.blocked_reason = if self.r.blocked_reason.is_empty() {
            what.clone()
        } else {
            format!("{}; {what}", self.r.blocked_reason)
        };
        self.r.faults.push(kernel_fault(
            faults::AUDIT_WRITE_FAILED,
            phase,
            what,
            "Make the audit log writable (disk space, permissions, a torn tail to repair) and retry.",
        ));
        Err(Stop(phase))
    }

    /// Records the final decision. A failed write turns any state into `blocked`.
    fn finish(&mut self, phase: Phase) {
        if self.r.state == DecisionState::Blocked && self.r.blocked_reason.is_empty() {
            self.r.blocked_reason = "Blocked: the run ended without a decision.".to_owned();
        }
        let warnings = self.r.has_warnings();
        let details = vec![
            (
                "signature_hash",
                Value::from(self.r.signature_hash.as_str()),
            ),
            ("replan_count", Value::from(self.r.replan_count)),
            ("warnings", Value::from(warnings)),
            (
                "blocked_reason",
                Value::from(self.r.blocked_reason.as_str()),
            ),
            ("faults", codes(&self.r.faults)),
        ];
        let state = self.r.state.as_str();
        let _ = self.emit(phase, "final_decision", state, details);
        let _ = self.write_audit();
    }

    // ----- the flow ----------------------------------------------------------------

    fn flow(&mut self, intent: &str) -> Step<Phase> {
        let sig = self.formalize(intent)?;
        let sig = self.govern(sig)?;
        let generated = self.generate(&sig)?;
        if let Some((plan, artifact)) = generated {
            self.execute(&sig, &plan, &artifact)?;
        }
        self.validate()
    }

    fn formalize(&mut self, intent: &str) -> Step<StateSignature> {
        let k = self.k;
        let phase = Phase::Formalize;
        self.r.phases_run.push(phase);
        let strict = k.config.grounding == Grounding::Strict;
        if strict && !k.catalog_issues.is_empty() {
            let issues: Vec<Value> = k
                .catalog_issues
                .iter()
                .map(|i| Value::from(i.to_string()))
                .collect();
            return Err(self.block_recorded(
                phase,
                "Catalog validation failed.".to_owned(),
                vec![faults::catalog_invalid(&k.catalog_issues)],
                ("catalog_validation", "blocked"),
                vec![("issues", Value::Array(issues))],
            ));
        }
        self.emit(
            phase,
            "environment_state_consulted",
            "ok",
            vec![
                (
                    "version_id",
                    Value::from(k.config.context_registry_version_id.as_str()),
                ),
                ("catalog_hash", Value::from(k.catalog_hash.as_str())),
            ],
        )?;

        let ctx = ExecutionContext {
            policy_bundle_version: k.config.policy.version().to_owned(),
            catalog_snapshot_version: k.config.catalog_snapshot_version.clone(),
            context_registry_version_id: k.config.context_registry_version_id.clone(),
        };
        let mut input =
            NormalizerInput::new(intent, &k.config.catalog, &self.r.intent_id).with_context(ctx);
        if strict {
            input = input.strict(k.config.min_confidence);
        }
        let resolved = guarded_try(|| k.normalizer.normalize(&input));
        let resolution = match resolved {
            Ok(r) => r,
            Err(e) => {
                return Err(self.phase_error_with(
                    phase,
                    "normalization_error",
                    faults::NORMALIZER_FAILED,
                    format!("Normalization failed: {e}"),
                    "Check the normaliser (model endpoint, keyword packs) and retry.",
                    vec![("error", Value::from(e))],
                ));
            }
        };
        self.r.resolution = Some(ResolutionSummary::from(&resolution));
        self.set_signature(resolution.signature.clone());
        self.emit(
            phase,
            "semantic_resolution",
            "resolved",
            vec![
                ("confidence", json!(resolution.confidence)),
                (
                    "confirmation_mode",
                    Value::from(resolution.confirmation_mode.as_str()),
                ),
                (
                    "signature_hash",
                    Value::from(self.r.signature_hash.as_str()),
                ),
            ],
        )?;

        let grounding = match k.config.grounding {
            Grounding::Strict => {
                cfa_resolve::faults::grounding_fault(&resolution, Some(k.config.min_confidence))
            }
            Grounding::DatasetsOnly => cfa_resolve::faults::grounding_fault(&resolution, None),
            Grounding::Lenient => None,
        };
        if let Some(fault) = grounding {
            let code = fault.code.clone();
            let reason = format!("{}: {}", fault.code, fault.message);
            return Err(self.block_recorded(
                phase,
                reason,
                vec![fault],
                ("strict_normalization", "blocked"),
                vec![("fault", Value::from(code))],
            ));
        }

        let confirmed = guarded(|| cfa_resolve::confirm(&resolution, k.confirmation.as_ref()));
        let outcome = match confirmed {
            Ok(o) => o,
            Err(e) => {
                return Err(self.phase_error_with(
                    phase,
                    "confirmation",
                    faults::CONFIRMATION_FAILED,
                    format!("Confirmation failed: {e}"),
                    "Fix the confirmation handler and resubmit the intent.",
                    vec![
                        ("mode", Value::from(resolution.confirmation_mode.as_str())),
                        ("error", Value::from(e)),
                    ],
                ));
            }
        };
        let label = if outcome.approved {
            "approved"
        } else {
            "rejected"
        };
        self.emit(
            phase,
            "confirmation",
            label,
            vec![
                ("mode", Value::from(resolution.confirmation_mode.as_str())),
                ("reason", Value::from(outcome.reason.as_str())),
            ],
        )?;
        if !outcome.approved {
            let reason = format!(
                "Confirmation rejected ({}): {}",
                resolution.confirmation_mode, outcome.reason
            );
            return Err(self.block(phase, reason, outcome.fault.into_iter().collect()));
        }
        Ok(resolution.signature)
    }

    fn govern(&mut self, mut sig: StateSignature) -> Step<StateSignature> {
        let k = self.k;
        let phase = Phase::Govern;
        self.r.phases_run.push(phase);
        let catalog = Some(&k.config.catalog);
        loop {
            let count = self.r.replan_count;
            let evaluated = guarded(|| k.config.policy.evaluate_with_catalog(&sig, catalog, count));
            let result = match evaluated {
                Ok(r) => r,
                Err(e) => {
                    return Err(self.phase_error_with(
                        phase,
                        "policy_evaluation",
                        faults::POLICY_FAILED,
                        format!("Policy evaluation failed: {e}"),
                        "Fix the failing policy condition (plugin) and retry.",
                        vec![
                            ("replan_count", Value::from(count)),
                            ("error", Value::from(e)),
                        ],
                    ));
                }
            };
            self.emit(
                phase,
                "policy_evaluation",
                result.action.as_str(),
                vec![
                    ("replan_count", Value::from(count)),
                    ("faults", codes(&result.faults)),
                ],
            )?;
            match result.action {
                PolicyAction::Approve => {
                    self.r.faults.extend(result.faults.iter().cloned());
                    self.r.policy_result = Some(result);
                    return Ok(sig);
                }
                PolicyAction::Block => {
                    let reason = result.reasoning.clone();
                    let f = result.faults.clone();
                    self.r.policy_result = Some(result);
                    return Err(self.block(phase, reason, f));
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
                let f = result.faults.clone();
                self.r.policy_result = Some(result);
                return Err(self.block(phase, reason, f));
            }
            if result.patches.is_empty() {
                let reason = format!(
                    "Replan failed: no automatic fix for {}; change the intent as the remediation says.",
                    joined_codes(&result.faults)
                );
                let f = result.faults.clone();
                self.r.policy_result = Some(result);
                return Err(self.block(phase, reason, f));
            }
            let patched = guarded_try(|| sig.apply_patches(&result.patches));
            let new_sig = match patched {
                Ok(s) => s,
                Err(e) => {
                    let reason = format!("Replan failed: the fix could not be applied: {e}");
                    let mut f = result.faults.clone();
                    f.push(kernel_fault(
                        faults::REPLAN_PATCH_FAILED,
                        phase,
                        reason.clone(),
                        "Fix the bundle's patch paths or change the intent manually.",
                    ));
                    self.r.policy_result = Some(result);
                    return Err(self.block(phase, reason, f));
                }
            };
            self.r.replan_history.push(ReplanAttempt {
                replan_count: count,
                action: result.action,
                fault_codes: result.faults.iter().map(|f| f.code.clone()).collect(),
                interventions: result.interventions.clone(),
                reasoning: result.reasoning.clone(),
                applied_patches: result.patches.clone(),
            });
            self.r.replan_count = count.saturating_add(1);
            sig = new_sig;
            self.set_signature(sig.clone());
            let patches = serde_json::to_value(&result.patches).unwrap_or(Value::Null);
            self.r.policy_result = Some(result);
            let interventions = self
                .r
                .policy_result
                .as_ref()
                .map(|r| Value::from(r.interventions.clone()))
                .unwrap_or(Value::Null);
            self.emit(
                phase,
                "replan_applied",
                "replanned",
                vec![
                    ("replan_count", Value::from(self.r.replan_count)),
                    ("interventions", interventions),
                    ("patches", patches),
                    (
                        "signature_hash",
                        Value::from(self.r.signature_hash.as_str()),
                    ),
                ],
            )?;
        }
    }

    fn generate(
        &mut self,
        sig: &StateSignature,
    ) -> Step<Option<(ExecutionPlan, GeneratedArtifact)>> {
        let k = self.k;
        let phase = Phase::Generate;
        if !k.config.phases.generate {
            self.skip(phase, "disabled in the kernel config");
            self.skip(
                Phase::Execute,
                "generation is disabled, so there is nothing to run",
            );
            return Ok(None);
        }
        self.r.phases_run.push(phase);
        let planned = guarded_try(|| k.planner.plan(sig, Some(&k.config.catalog)));
        let plan = match planned {
            Ok(p) => p,
            Err(e) => {
                return Err(self.phase_error(
                    phase,
                    "plan_generated",
                    faults::PLANNER_FAILED,
                    format!("Planning failed: {e}"),
                    "Make the intent plannable (datasets, keys, catalog columns) and retry.",
                ));
            }
        };
        self.emit(
            phase,
            "plan_generated",
            "ok",
            vec![
                ("step_count", Value::from(plan.steps.len())),
                (
                    "consistency_unit",
                    serde_json::to_value(plan.consistency_unit).unwrap_or(Value::Null),
                ),
                (
                    "write_mode",
                    serde_json::to_value(plan.write_mode).unwrap_or(Value::Null),
                ),
            ],
        )?;
        let backend = match k.backends.get(&k.config.backend) {
            Ok(b) => b,
            Err(e) => {
                return Err(self.phase_error(
                    phase,
                    "code_generated",
                    faults::CODEGEN_FAILED,
                    format!("Code generation failed: {e}"),
                    "Configure a registered backend.",
                ));
            }
        };
        let generated = guarded_try(|| backend.generate(&plan, sig));
        let artifact = match generated {
            Ok(a) => a,
            Err(e) => {
                return Err(self.phase_error(
                    phase,
                    "code_generated",
                    faults::CODEGEN_FAILED,
                    format!("Code generation failed: {e}"),
                    "Fix the dataset or column names the backend refused, or choose another backend.",
                ));
            }
        };
        let line_count = artifact
            .main_file()
            .map_or(0, |f| f.content.lines().count());
        let artifact_hash = artifact.artifact_hash();
        self.r.artifact = Some(ArtifactSummary {
            backend: artifact.backend.clone(),
            language: artifact.language.as_str().to_owned(),
            target: artifact.target.clone(),
            artifact_hash: artifact_hash.clone(),
            file_count: artifact.files.len(),
            line_count,
        });
        self.emit(
            phase,
            "code_generated",
            "ok",
            vec![
                ("language", Value::from(artifact.language.as_str())),
                ("line_count", Value::from(line_count)),
                ("artifact_hash", Value::from(artifact_hash)),
            ],
        )?;
        let validated = match guarded(|| backend.validate(&artifact, sig)) {
            Ok(v) => v,
            Err(e) => {
                return Err(self.phase_error(
                    phase,
                    "static_validation",
                    faults::CODEGEN_FAILED,
                    format!("Static validation failed to run: {e}"),
                    "Fix the backend's validator and retry.",
                ));
            }
        };
        let all: Vec<Fault> = validated
            .faults
            .iter()
            .chain(&validated.warnings)
            .cloned()
            .collect();
        self.r.faults.extend(all.iter().cloned());
        let passed = validated.passed && validated.faults.is_empty();
        self.emit(
            phase,
            "static_validation",
            if passed { "passed" } else { "blocked" },
            vec![
                ("checks", Value::from(validated.checks_performed)),
                ("faults", codes(&all)),
            ],
        )?;
        if !passed {
            let reason = format!(
                "Static validation failed: {}",
                joined_codes(&validated.faults)
            );
            return Err(self.block(phase, reason, Vec::new()));
        }
        Ok(Some((plan, artifact)))
    }

    fn execute(
        &mut self,
        sig: &StateSignature,
        plan: &ExecutionPlan,
        artifact: &GeneratedArtifact,
    ) -> Step<()> {
        let k = self.k;
        let phase = Phase::Execute;
        if !k.config.phases.execute {
            self.skip(phase, "disabled in the kernel config");
            return Ok(());
        }
        let Some(executor) = k.executor.as_ref() else {
            self.skip(phase, "no execution phase is configured");
            return Ok(());
        };
        // Everything decided so far reaches the audit log before anything runs.
        self.write_audit()?;
        self.r.phases_run.push(phase);
        let request = ExecutionRequest {
            intent_id: &self.r.intent_id,
            decision_id: &self.r.decision_id,
            signature: sig,
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
        let ran = guarded_try(|| executor.execute(&request));
        let outcome = match ran {
            Ok(o) => o,
            Err(e) => {
                return Err(self.phase_error(
                    phase,
                    "execution_completed",
                    faults::EXECUTION_FAILED,
                    format!("Execution failed: {e}"),
                    "Check the sandbox or engine, then resubmit.",
                ));
            }
        };
        self.r.execution = Some(ExecutionSummary {
            executor: executor.name().to_owned(),
            publish_state: outcome.publish_state.clone(),
            details: outcome.details.clone(),
        });
        self.r.faults.extend(outcome.faults.iter().cloned());
        let state = outcome.publish_state.as_str();
        let quarantined = match &outcome.publish_state {
            PublishState::Quarantined { steps } => Value::from(steps.clone()),
            _ => Value::Array(Vec::new()),
        };
        let committed = matches!(
            outcome.publish_state,
            PublishState::Published
                | PublishState::Degraded { .. }
                | PublishState::CommittedNotPublished
        );
        let mut details = vec![
            ("executor", Value::from(executor.name())),
            ("publish_state", Value::from(state)),
            ("quarantined", quarantined),
            ("committed", Value::from(committed)),
            ("faults", codes(&outcome.faults)),
        ];
        for (key, value) in &outcome.details {
            details.push((key.as_str(), value.clone()));
        }
        self.emit(phase, "execution_completed", state, details)?;
        if let Some(projection) = &outcome.projection {
            let details = projection
                .iter()
                .map(|(key, value)| (key.as_str(), value.clone()))
                .collect();
            self.emit(phase, "state_projected", "projected", details)?;
        }
        let step_list = |ids: &[String]| {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            py_list_repr(&refs)
        };
        match &outcome.publish_state {
            PublishState::RolledBack => Err(self.end_in(
                phase,
                DecisionState::RolledBack,
                "Execution rolled back.".to_owned(),
            )),
            PublishState::Quarantined { steps } => {
                let reason = format!("Steps quarantined: {}", step_list(steps));
                Err(self.end_in(phase, DecisionState::Quarantined, reason))
            }
            PublishState::CommittedNotPublished => Err(self.end_in(
                phase,
                DecisionState::PartiallyCommitted,
                "Committed but not published.".to_owned(),
            )),
            PublishState::Degraded { failed_steps } => {
                let reason = format!(
                    "Published degraded: steps failed: {}",
                    step_list(failed_steps)
                );
                Err(self.end_in(phase, DecisionState::Degraded, reason))
            }
            // Fail closed: an execution that did not happen never approves, whatever
            // the severity of the faults it gave (or if it gave none).
            PublishState::NotExecuted => {
                if outcome.faults.is_empty() {
                    let reason = format!(
                        "Execution phase '{}' did not run and gave no reason.",
                        executor.name()
                    );
                    let fault = kernel_fault(
                        faults::EXECUTION_FAILED,
                        phase,
                        reason.clone(),
                        "Check the sandbox or engine, then resubmit.",
                    );
                    Err(self.block(phase, reason, vec![fault]))
                } else {
                    let reason = format!("Execution refused: {}", joined_codes(&outcome.faults));
                    Err(self.block(phase, reason, Vec::new()))
                }
            }
            PublishState::Published => {
                let bad = blocking(&outcome.faults);
                if bad.is_empty() {
                    Ok(())
                } else {
                    let reason = format!("Runtime validation failed: {}", joined_codes(&bad));
                    Err(self.block(phase, reason, Vec::new()))
                }
            }
        }
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

    // ----- helpers -----------------------------------------------------------------

    fn skip(&mut self, phase: Phase, reason: &str) {
        self.r.phases_skipped.push(PhaseSkip {
            phase,
            reason: reason.to_owned(),
        });
    }

    /// Blocks with a kernel fault for a failed plugin call and records `event_type`
    /// with outcome `error`.
    fn phase_error(
        &mut self,
        phase: Phase,
        event_type: &str,
        code: &str,
        reason: String,
        remediation: &str,
    ) -> Stop {
        let details = vec![("error", Value::from(reason.clone()))];
        self.phase_error_with(phase, event_type, code, reason, remediation, details)
    }

    /// [`Run::phase_error`] with the event's own `details` (the reference's keys).
    fn phase_error_with(
        &mut self,
        phase: Phase,
        event_type: &str,
        code: &str,
        reason: String,
        remediation: &str,
        details: Vec<(&str, Value)>,
    ) -> Stop {
        let fault = kernel_fault(code, phase, reason.clone(), remediation);
        self.block_recorded(phase, reason, vec![fault], (event_type, "error"), details)
    }

    /// Blocks with `reason` and `new_faults`, then records the `(event type, outcome)`
    /// event with `details`; when recording fails, the audit failure's stop wins.
    fn block_recorded(
        &mut self,
        phase: Phase,
        reason: String,
        new_faults: Vec<Fault>,
        (event_type, outcome): (&str, &str),
        details: Vec<(&str, Value)>,
    ) -> Stop {
        let stop = self.block(phase, reason, new_faults);
        match self.emit(phase, event_type, outcome, details) {
            Ok(()) => stop,
            Err(s) => s,
        }
    }
}
