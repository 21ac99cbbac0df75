//! The kernel's answer for one intent.

use cfa_resolve::Resolution;
use cfa_sandbox::PublishState;
use cfa_types::{
    AmbiguityLevel, ConfirmationMode, DecisionState, Fault, FaultSeverity, Patch, PolicyAction,
    PolicyResult, StateSignature,
};
use serde::{Deserialize, Serialize};

/// A phase of the governed flow; also the `stage` of its audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Φ: catalog, normalisation, grounding, confirmation.
    Formalize,
    /// Γ: policy and the replan loop.
    Govern,
    /// Π: plan, code generation, static validation.
    Generate,
    /// Ω: execution through the configured [`crate::ExecutionPhase`].
    Execute,
    /// Warnings and the final decision.
    Validate,
}

impl Phase {
    /// The stage string (`formalize`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Formalize => "formalize",
            Phase::Govern => "govern",
            Phase::Generate => "generate",
            Phase::Execute => "execute",
            Phase::Validate => "validate",
        }
    }
}

/// A phase that did not run although the flow reached it, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSkip {
    /// The phase.
    pub phase: Phase,
    /// Why it was skipped.
    pub reason: String,
}

/// The parts of a [`Resolution`] besides the signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolutionSummary {
    /// Confidence.
    pub confidence: f64,
    /// Ambiguity.
    pub ambiguity: AmbiguityLevel,
    /// Confirmation mode.
    pub confirmation_mode: ConfirmationMode,
    /// Other readings of the intent.
    pub competing_interpretations: Vec<String>,
    /// Why it resolved this way.
    pub reasoning: String,
}

impl From<&Resolution> for ResolutionSummary {
    fn from(r: &Resolution) -> Self {
        ResolutionSummary {
            confidence: r.confidence,
            ambiguity: r.ambiguity,
            confirmation_mode: r.confirmation_mode,
            competing_interpretations: r.competing_interpretations.clone(),
            reasoning: r.reasoning.clone(),
        }
    }
}

/// One policy evaluation that asked for a replan, and the patches applied after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplanAttempt {
    /// The replan counter the evaluation ran with.
    pub replan_count: u32,
    /// The action (always `replan` for an applied attempt).
    pub action: PolicyAction,
    /// Fault codes of the evaluation.
    pub fault_codes: Vec<String>,
    /// Human remediation strings.
    pub interventions: Vec<String>,
    /// The reasoning string.
    pub reasoning: String,
    /// The patches applied to the signature.
    pub applied_patches: Vec<Patch>,
}

/// What code generation produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// Backend name.
    pub backend: String,
    /// Language.
    pub language: String,
    /// Target dataset.
    pub target: String,
    /// Content hash of the artifact.
    pub artifact_hash: String,
    /// Number of files.
    pub file_count: usize,
    /// Lines of the main file.
    pub line_count: usize,
}

/// The result of the execute phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// The execution phase's name.
    pub executor: String,
    /// What happened to the outputs.
    #[serde(flatten)]
    pub publish_state: PublishState,
    /// The phase's details ([`crate::ExecutionOutcome::details`]: metrics, retries,
    /// `lifecycle.skill_state`…), also written to the `execution_completed` event.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// The kernel's answer for one intent. Serialises to JSON for `cfa evaluate --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelResult {
    /// The kernel's id for this intent (also the signature's `intent_id`).
    pub intent_id: String,
    /// The id of this decision.
    pub decision_id: String,
    /// Final state.
    pub state: DecisionState,
    /// Why the run did not end approved (`""` when approved).
    pub blocked_reason: String,
    /// Replans applied (= `replan_history.len()`).
    pub replan_count: u32,
    /// Every replan evaluation with the patches applied after it.
    pub replan_history: Vec<ReplanAttempt>,
    /// The governed signature (after replans), when normalisation succeeded.
    pub signature: Option<StateSignature>,
    /// `signature_hash` of the governed signature (`""` without one).
    pub signature_hash: String,
    /// `content_hash` of the governed signature (`""` without one).
    pub content_hash: String,
    /// How the intent was resolved.
    pub resolution: Option<ResolutionSummary>,
    /// The last policy evaluation.
    pub policy_result: Option<PolicyResult>,
    /// The bundle's own last result when the control plane changed it (a kill switch,
    /// an approval ticket): `policy_result` as the bundle decided it. `None` when the
    /// control plane let the bundle's answer stand. Not serialised (the JSON result is
    /// unchanged); see [`KernelResult::bundle_policy_result`].
    #[serde(skip)]
    pub bundle_result: Option<PolicyResult>,
    /// Faults of every phase: grounding, confirmation, policy (final evaluation),
    /// static validation (blocking and warnings), runtime, and kernel failures.
    pub faults: Vec<Fault>,
    /// Policy bundle version.
    pub policy_bundle: String,
    /// Policy bundle hash (`""` for the default rules).
    pub policy_bundle_hash: String,
    /// The generated artifact, when generation ran.
    pub artifact: Option<ArtifactSummary>,
    /// The execution, when the execute phase ran.
    pub execution: Option<ExecutionSummary>,
    /// Phases that ran, in order.
    pub phases_run: Vec<Phase>,
    /// Phases the flow reached but did not run, with the reason.
    pub phases_skipped: Vec<PhaseSkip>,
    /// `event_hash` of every audit event written for this intent, in order.
    pub audit_event_hashes: Vec<String>,
    /// Timestamp of the first event (injected clock).
    pub created_at: String,
}

impl KernelResult {
    /// True when the work may run: `approved` or `approved_with_warnings` (docs/differences.md#b1-lifecycle-never-changes-a-decision:
    /// lifecycle state never changes this).
    pub fn is_executable(&self) -> bool {
        matches!(
            self.state,
            DecisionState::Approved | DecisionState::ApprovedWithWarnings
        ) && self.signature.is_some()
    }

    /// The policy bundle's own last result, before the control plane: what a shadow
    /// bundle is compared with (`None` when the run never reached the policy).
    pub fn bundle_policy_result(&self) -> Option<&PolicyResult> {
        self.bundle_result.as_ref().or(self.policy_result.as_ref())
    }

    /// Codes of every fault, in order.
    pub fn fault_codes(&self) -> Vec<&str> {
        self.faults.iter().map(|f| f.code.as_str()).collect()
    }

    /// True when any fault is a warning.
    pub fn has_warnings(&self) -> bool {
        self.faults
            .iter()
            .any(|f| f.severity == FaultSeverity::Warning)
    }
}
