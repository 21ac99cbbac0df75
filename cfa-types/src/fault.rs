//! Faults, structured fixes (patches) and the policy decision (docs/compatibility.md#decisions,
//! docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions).

use crate::enums::{FaultFamily, FaultSeverity, PolicyAction};
use crate::patch_value::PatchValue;
use crate::shared::{SharedList, SharedStr};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
    /// Every fault that fired, in rule order; a [`FaultList`], so the policy engine
    /// hands out the faults of a set of fired rules without building them.
    pub faults: FaultList,
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

/// The faults of a [`PolicyResult`]: a list of its own, or one shared by every decision
/// of the same rules, which the policy engine hands out without allocating
/// (docs/architecture.md#the-decision-path). Behaves as a `Vec<Fault>` for serde,
/// `==`, `Debug`, indexing and iteration (it dereferences to `[Fault]`); the changing
/// methods ([`FaultList::push`], [`FaultList::to_mut`], `extend`) copy a shared list
/// into one of its own first.
#[derive(Clone)]
pub struct FaultList(FaultsRepr);

#[derive(Clone)]
enum FaultsRepr {
    Owned(Vec<Fault>),
    /// Shared with other lists (and the engine's table) until changed.
    Shared(Arc<Vec<Fault>>),
}

impl FaultList {
    /// The empty list; no allocation.
    pub const fn new() -> Self {
        FaultList(FaultsRepr::Owned(Vec::new()))
    }

    /// The faults.
    pub fn as_slice(&self) -> &[Fault] {
        match &self.0 {
            FaultsRepr::Owned(v) => v,
            FaultsRepr::Shared(s) => s,
        }
    }

    /// The list as one of its own, to change it (a shared list is copied first).
    pub fn to_mut(&mut self) -> &mut Vec<Fault> {
        match &mut self.0 {
            FaultsRepr::Owned(v) => v,
            FaultsRepr::Shared(s) => Arc::make_mut(s),
        }
    }

    /// Appends `fault`.
    pub fn push(&mut self, fault: Fault) {
        self.to_mut().push(fault);
    }

    /// The faults as a vector (a shared list is copied).
    pub fn into_vec(self) -> Vec<Fault> {
        match self.0 {
            FaultsRepr::Owned(v) => v,
            FaultsRepr::Shared(s) => Arc::unwrap_or_clone(s),
        }
    }
}

impl Default for FaultList {
    fn default() -> Self {
        FaultList::new()
    }
}

impl std::ops::Deref for FaultList {
    type Target = [Fault];
    fn deref(&self) -> &[Fault] {
        self.as_slice()
    }
}

impl AsRef<[Fault]> for FaultList {
    fn as_ref(&self) -> &[Fault] {
        self.as_slice()
    }
}

impl From<Vec<Fault>> for FaultList {
    fn from(v: Vec<Fault>) -> Self {
        FaultList(FaultsRepr::Owned(v))
    }
}

impl From<Arc<Vec<Fault>>> for FaultList {
    fn from(s: Arc<Vec<Fault>>) -> Self {
        FaultList(FaultsRepr::Shared(s))
    }
}

impl From<FaultList> for Vec<Fault> {
    fn from(l: FaultList) -> Self {
        l.into_vec()
    }
}

impl FromIterator<Fault> for FaultList {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        FaultList::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl Extend<Fault> for FaultList {
    fn extend<I: IntoIterator<Item = Fault>>(&mut self, iter: I) {
        self.to_mut().extend(iter);
    }
}

impl<'a> IntoIterator for &'a FaultList {
    type Item = &'a Fault;
    type IntoIter = std::slice::Iter<'a, Fault>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl IntoIterator for FaultList {
    type Item = Fault;
    type IntoIter = std::vec::IntoIter<Fault>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl PartialEq for FaultList {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Vec<Fault>> for FaultList {
    fn eq(&self, other: &Vec<Fault>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[Fault]> for FaultList {
    fn eq(&self, other: &[Fault]) -> bool {
        self.as_slice() == other
    }
}

impl std::fmt::Debug for FaultList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for FaultList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for FaultList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Fault>::deserialize(deserializer).map(FaultList::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: &'static str) -> Fault {
        Fault {
            code: SharedStr::from_static(code),
            family: FaultFamily::Semantic,
            severity: FaultSeverity::High,
            stage: SharedStr::from_static("policy_engine"),
            message: SharedStr::from_static("m"),
            mandatory_action: PolicyAction::Replan,
            remediation: SharedList::from(vec!["r"]),
            detected_before_execution: true,
        }
    }

    #[test]
    fn a_fault_list_behaves_as_a_vec_of_faults() {
        let faults = vec![fault("A"), fault("B")];
        let table = Arc::new(faults.clone());
        let owned = FaultList::from(faults.clone());
        let shared = FaultList::from(Arc::clone(&table));
        assert_eq!(owned, shared);
        assert_eq!(shared, faults);
        assert_eq!(format!("{shared:?}"), format!("{faults:?}"));
        for l in [&owned, &shared] {
            assert_eq!(
                serde_json::to_string(l).unwrap(),
                serde_json::to_string(&faults).unwrap()
            );
            let back: FaultList = serde_json::from_str(&serde_json::to_string(l).unwrap()).unwrap();
            assert_eq!(back, faults);
            assert_eq!(l.len(), 2);
            assert_eq!(
                l.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(),
                ["A", "B"]
            );
        }
        // a clone of a shared list is the same list; changing one copies it first
        let mut changed = shared.clone();
        assert_eq!(changed.as_ptr(), table.as_ptr());
        changed.push(fault("C"));
        changed.extend([fault("D")]);
        assert_eq!(changed.len(), 4);
        assert_eq!(shared.len(), 2);
        assert_eq!(table.len(), 2);
        assert_eq!(shared.clone().into_vec(), faults);
        assert_eq!(
            changed.into_iter().map(|f| f.code).collect::<Vec<_>>(),
            ["A", "B", "C", "D"]
        );
        assert!(FaultList::new().is_empty());
        assert_eq!(FaultList::default(), Vec::<Fault>::new());
        assert_eq!(
            std::mem::size_of::<FaultList>(),
            std::mem::size_of::<Vec<Fault>>()
        );
    }
}
