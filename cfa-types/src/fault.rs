//! Faults, structured fixes (patches) and the policy decision (docs/compatibility.md#decisions,
//! docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions).

use crate::enums::{FaultFamily, FaultSeverity, PolicyAction};
use crate::patch_value::PatchValue;
use crate::shared::{SharedList, SharedStr};
use serde::{Deserialize, Serialize};

/// One detected problem. Serialises in the reference's key order.
///
/// The text fields are [`SharedStr`]/[`SharedList`], so the policy engine hands out a
/// rule's fault by cloning a template built once, without allocating
/// (docs/architecture.md#the-decision-path); build them with `.into()` from `String`s
/// or [`SharedStr::from_static`] for literals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Stable fault code, e.g. `FINOPS_MISSING_TEMPORAL_PREDICATE`.
    pub code: SharedStr,
    /// Taxonomy family.
    pub family: FaultFamily,
    /// Severity.
    pub severity: FaultSeverity,
    /// The stage that raised it, e.g. `policy_engine`.
    pub stage: SharedStr,
    /// Human-readable message.
    pub message: SharedStr,
    /// The action the rule demands.
    pub mandatory_action: PolicyAction,
    /// Human-readable remediation steps.
    pub remediation: SharedList,
    /// Whether it was found before anything ran.
    #[serde(default = "default_true")]
    pub detected_before_execution: bool,
}

fn default_true() -> bool {
    true
}

impl std::fmt::Display for Fault {
    /// `[{SEVERITY}] {code}: {message}`, as the reference's `str(fault)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.severity.as_str().to_uppercase(),
            self.code,
            self.message
        )
    }
}

/// The operation of a [`Patch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchOp {
    /// Replace the value at `path`.
    Set,
}

/// A structured, machine-applicable fix: `{"op":"set","path":"constraints.no_pii_raw","value":true}`.
///
/// Paths name signature fields with dots; see
/// [`StateSignature::apply_patch`](crate::StateSignature::apply_patch) for the paths
/// that can be patched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// The operation.
    pub op: PatchOp,
    /// Dotted path of the field, e.g. `constraints.partition_by`.
    pub path: SharedStr,
    /// The new value: a JSON value, held without allocating when it is a list of one
    /// short string (the common partition fix; see [`PatchValue`]).
    pub value: PatchValue,
}

impl Patch {
    /// A `set` patch.
    pub fn set(path: impl Into<SharedStr>, value: impl Into<PatchValue>) -> Self {
        Patch {
            op: PatchOp::Set,
            path: path.into(),
            value: value.into(),
        }
    }
}

/// What a condition knows about fixing itself (docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// The patches make the condition stop firing.
    Patches {
        /// Patches to apply, in order.
        patches: Vec<Patch>,
    },
    /// No safe automatic fix exists (e.g. a cost ceiling); the caller must change the intent.
    Manual {
        /// What the caller has to change.
        reason: String,
    },
}

/// The result of one policy evaluation (reference `PolicyResult.to_dict()` plus patches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// The decision.
    pub action: PolicyAction,
    /// Every fault that fired, in rule order.
    pub faults: Vec<Fault>,
    /// Remediation of every fault, de-duplicated in order; only on replan. A
    /// [`SharedList`], so the policy engine hands out the interventions of a set of
    /// fired rules without building them (docs/architecture.md#the-decision-path).
    pub interventions: SharedList,
    /// The replan counter the evaluation ran with.
    pub replan_count: u32,
    /// The reference's reasoning string, byte for byte; a [`SharedStr`] for the same
    /// reason as `interventions`.
    pub reasoning: SharedStr,
    /// Structured fixes collected from the conditions that fired, de-duplicated in
    /// order; only on replan. Applying all of them makes every replan rule stop firing,
    /// unless [`PolicyResult::manual_fixes`] is non-empty.
    #[serde(default)]
    pub patches: Vec<Patch>,
    /// Faults whose condition has no safe automatic fix, with what to change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_fixes: Vec<ManualFix>,
}

/// A fault that needs a human (or agent) change rather than a patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualFix {
    /// The fault code.
    pub code: SharedStr,
    /// What has to change.
    pub reason: String,
}

impl PolicyResult {
    /// True when the action is approve.
    pub fn passed(&self) -> bool {
        self.action == PolicyAction::Approve
    }

    /// Fault codes in order.
    pub fn fault_codes(&self) -> Vec<&str> {
        self.faults.iter().map(|f| f.code.as_str()).collect()
    }
}
