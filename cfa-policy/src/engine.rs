//! `PolicyEngine`: the pure decision (docs/compatibility.md#decisions) over compiled rules, with the
//! structured fixes of docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions and fail-closed handling of plugin errors.

use crate::builtins::{BuiltinCondition, push_unique};
use crate::bundle::{PolicyBundle, RuleSpec};
use crate::condition::{EvalContext, Verdict};
use crate::defaults;
use crate::registry::{BuildError, CompiledCondition, ConditionRegistry};
use cfa_types::{
    Catalog, Fault, FaultFamily, FaultSeverity, Fix, ManualFix, Patch, PolicyAction, PolicyResult,
    SharedList, SharedStr, StateSignature, TargetLayer,
};
use serde::Serialize;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The stage every policy fault carries.
pub const STAGE: &str = "policy_engine";
/// Fault code of the replan guard.
pub const MAX_REPLAN_CODE: &str = "POLICY_MAX_REPLAN_EXCEEDED";
/// Fault code used when a condition plugin fails (the decision is then BLOCK).
pub const CONDITION_ERROR_CODE: &str = "POLICY_CONDITION_ERROR";
/// Default replan cap.
pub const DEFAULT_MAX_REPLAN_ATTEMPTS: u32 = 3;

/// Why rules could not be added to an engine ([`PolicyEngine::extended`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendError {
    /// An added rule's condition could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// An added rule has the name of a rule already in the engine (or of another added rule).
    #[error("rule name '{name}' is used twice")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// An added rule raises a fault code a rule of the engine already raises.
    #[error("fault code '{code}' is already raised by rule '{existing}'")]
    DuplicateCode {
        /// The repeated code.
        code: String,
        /// The rule that raises it first.
        existing: String,
    },
}

/// What `rules list` / `rules explain` show for one rule (docs/differences.md#b7-bundle-semantics: with family).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDescription {
    /// Rule name.
    pub name: String,
    /// Action value (`approve`, `replan`, `block`).
    pub action: PolicyAction,
    /// Fault code.
    pub fault_code: String,
    /// Severity value.
    pub severity: FaultSeverity,
    /// Long family value (e.g. `semantic_faults`).
    pub family: FaultFamily,
    /// Condition name.
    pub condition: String,
    /// Layer the rule is narrowed to, if any.
    pub target_layer: Option<cfa_types::TargetLayer>,
    /// Fault message.
    pub message: String,
    /// Remediation steps.
    pub remediation: Vec<String>,
}

/// A compiled rule set and the replan cap. Cheap to share; evaluation is pure.
///
/// Everything a decision repeats from a rule is built once here: the compact list the
/// evaluation loop walks, and the fault each rule raises, which a decision clones
/// without allocating (docs/architecture.md#the-decision-path).
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    version: String,
    rules: Vec<RuleSpec>,
    /// One per rule, in order.
    checks: Vec<Check>,
    max_replan_attempts: u32,
}

/// What the evaluation loop needs of a rule, kept small and contiguous: the layer
/// narrowing, the condition, and the fault the rule raises (boxed, as it is read only
/// when the rule fires).
#[derive(Debug, Clone)]
struct Check {
    target_layer: Option<TargetLayer>,
    condition: CompiledCondition,
    fault: Box<Fault>,
}

impl Default for PolicyEngine {
    /// The built-in default ruleset (docs/compatibility.md#default-ruleset), version `v1.0`.
    fn default() -> Self {
        let mut rules = Vec::new();
        let mut checks = Vec::new();
        for (rule, condition, fault) in defaults::default_rules() {
            checks.push(Check {
                target_layer: rule.params.target_layer,
                condition,
                fault: Box::new(fault),
            });
            rules.push(rule);
        }
        PolicyEngine {
            version: defaults::DEFAULT_VERSION.to_owned(),
            rules,
            checks,
            max_replan_attempts: DEFAULT_MAX_REPLAN_ATTEMPTS,
        }
    }
}

impl PolicyEngine {
    /// Compiles a bundle's rules with the built-in conditions.
    pub fn from_bundle(bundle: PolicyBundle) -> Result<Self, BuildError> {
        Self::from_bundle_with(bundle, &ConditionRegistry::with_builtins())
    }

    /// Compiles a bundle's rules with `registry` (plugins allowed).
    pub fn from_bundle_with(
        bundle: PolicyBundle,
        registry: &ConditionRegistry,
    ) -> Result<Self, BuildError> {
        let conditions = bundle
            .rules
            .iter()
            .map(|r| registry.build(&r.condition, &r.params))
            .collect::<Result<Vec<_>, _>>()?;
        let checks = bundle
            .rules
            .iter()
            .zip(conditions)
            .map(|(rule, condition)| Check {
                target_layer: rule.params.target_layer,
                condition,
                fault: Box::new(template(rule)),
            })
            .collect();
        Ok(PolicyEngine {
            version: bundle.version,
            rules: bundle.rules,
            checks,
            max_replan_attempts: DEFAULT_MAX_REPLAN_ATTEMPTS,
        })
    }

    /// This engine with `extra` rules evaluated after its own, under the version label
    /// `version` (a decision made with added rules must not carry the label of the
    /// bundle alone). The added rules compile with `registry`; a rule name or fault
    /// code the engine already has is an error, since a fault code must name one rule.
    ///
    /// ```
    /// use cfa_policy::{ConditionRegistry, PolicyEngine, RuleParams, RuleSpec};
    /// use cfa_types::{FaultFamily, FaultSeverity, PolicyAction};
    ///
    /// let extra = RuleSpec {
    ///     name: "no_gold_without_approval".into(),
    ///     condition: "unauthorized_gold_write".into(),
    ///     action: PolicyAction::Block,
    ///     fault_code: "ACME_GOLD_APPROVAL".into(),
    ///     severity: FaultSeverity::Critical,
    ///     family: FaultFamily::Semantic,
    ///     message: "Gold writes need an approval.".into(),
    ///     remediation: vec![],
    ///     params: RuleParams::default(),
    /// };
    /// let engine = PolicyEngine::default().extended(
    ///     "v1.0+acme",
    ///     vec![extra],
    ///     &ConditionRegistry::with_builtins(),
    /// )?;
    /// assert_eq!(engine.rules().len(), 8);
    /// assert_eq!(engine.version(), "v1.0+acme");
    /// # Ok::<(), cfa_policy::ExtendError>(())
    /// ```
    pub fn extended(
        mut self,
        version: impl Into<String>,
        extra: Vec<RuleSpec>,
        registry: &ConditionRegistry,
    ) -> Result<Self, ExtendError> {
        let mut names: HashSet<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        let mut codes: Vec<(&str, &str)> = self
            .rules
            .iter()
            .map(|r| (r.fault_code.as_str(), r.name.as_str()))
            .collect();
        for rule in &extra {
            if !names.insert(&rule.name) {
                return Err(ExtendError::DuplicateName {
                    name: rule.name.clone(),
                });
            }
            if let Some((_, existing)) = codes.iter().find(|(c, _)| *c == rule.fault_code) {
                return Err(ExtendError::DuplicateCode {
                    code: rule.fault_code.clone(),
                    existing: (*existing).to_owned(),
                });
            }
            codes.push((&rule.fault_code, &rule.name));
        }
        for rule in extra {
            let condition = registry.build(&rule.condition, &rule.params)?;
            self.checks.push(Check {
                target_layer: rule.params.target_layer,
                condition,
                fault: Box::new(template(&rule)),
            });
            self.rules.push(rule);
        }
        self.version = version.into();
        Ok(self)
    }

    /// Sets the replan cap (default 3).
    #[must_use]
    pub fn with_max_replan_attempts(mut self, max: u32) -> Self {
        self.max_replan_attempts = max;
        self
    }

    /// The bundle version label (`v1.0` for the defaults).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The replan cap.
    pub fn max_replan_attempts(&self) -> u32 {
        self.max_replan_attempts
    }

    /// The rules in evaluation order.
    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    /// A description of every rule, in order.
    pub fn describe_rules(&self) -> Vec<RuleDescription> {
        self.rules.iter().zip(&self.checks).map(describe).collect()
    }

    /// Whether an operator's approval can lift the fault `code`: it is raised by a rule
    /// of this engine that [requires approval](RuleSpec::requires_approval).
    pub fn requires_approval(&self, code: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.fault_code == code && r.requires_approval())
    }

    /// The rule that raises fault `code`, if any.
    pub fn explain(&self, code: &str) -> Option<RuleDescription> {
        self.rules
            .iter()
            .zip(&self.checks)
            .find(|(r, _)| r.fault_code == code)
            .map(describe)
    }

    /// Evaluates without a catalog: [`PolicyEngine::evaluate_with_catalog`] with `None`.
    ///
    /// None of the default rules (nor any rule of `prod-v1`) looks at the catalog, so for
    /// them this is the whole decision. A bundle rule on the `schema_mismatch` condition
    /// (e.g. `eu-ai-act-v1`'s `art15_accuracy`) does fire without a catalog, because the
    /// datasets' metadata cannot be checked; pass the catalog to
    /// [`PolicyEngine::evaluate_with_catalog`] for such bundles.
    ///
    /// ```
    /// use cfa_policy::PolicyEngine;
    /// use cfa_types::{Catalog, PolicyAction, StateSignature};
    ///
    /// let sig = StateSignature::parse_validated(
    ///     r#"{"domain": "sales", "intent": "aggregate_and_persist", "target_layer": "silver",
    ///         "datasets": [{"name": "orders", "merge_keys": ["order_id"]}],
    ///         "constraints": {},
    ///         "execution_context": {"policy_bundle_version": "v1.0",
    ///             "catalog_snapshot_version": "c1", "context_registry_version_id": "v1"}}"#,
    ///     true,
    /// )?;
    ///
    /// // The default rules need no catalog: approve.
    /// let default = PolicyEngine::default().evaluate(&sig, 0);
    /// assert_eq!(default.action, PolicyAction::Approve);
    /// assert!(default.faults.is_empty());
    ///
    /// // A bundle with a schema_mismatch rule blocks when it cannot check the metadata ...
    /// let eu = PolicyEngine::builtin("eu-ai-act-v1")?;
    /// let blind = eu.evaluate(&sig, 0);
    /// assert_eq!(blind.action, PolicyAction::Block);
    /// assert_eq!(blind.faults[0].code, "EU_AI_ACT_ART15_ACCURACY");
    ///
    /// // ... and approves once the catalog agrees with the signature.
    /// let catalog = Catalog::from_value(&serde_json::json!(
    ///     {"datasets": {"orders": {"merge_keys": ["order_id"]}}}))?;
    /// assert_eq!(eu.evaluate_with_catalog(&sig, Some(&catalog), 0).action, PolicyAction::Approve);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evaluate(&self, signature: &StateSignature, replan_count: u32) -> PolicyResult {
        self.evaluate_with_catalog(signature, None, replan_count)
    }

    /// The decision for `signature` (docs/compatibility.md#decisions): replan guard first, every rule
    /// evaluated, block > replan > approve, interventions and fixes only on replan.
    pub fn evaluate_with_catalog(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
        replan_count: u32,
    ) -> PolicyResult {
        let max = self.max_replan_attempts;
        if replan_count >= max {
            return PolicyResult {
                action: PolicyAction::Block,
                faults: vec![Fault {
                    code: SharedStr::from_static(MAX_REPLAN_CODE),
                    family: FaultFamily::Semantic,
                    severity: FaultSeverity::Critical,
                    stage: SharedStr::from_static(STAGE),
                    message: format!("Max {max} replans exceeded.").into(),
                    mandatory_action: PolicyAction::Block,
                    remediation: SharedList::from(vec![SharedStr::from_static(
                        "Review the intent manually and fix previous faults.",
                    )]),
                    detected_before_execution: true,
                }],
                interventions: Vec::new(),
                replan_count,
                reasoning: format!("Replan limit ({max}) reached. Manual intervention required."),
                patches: Vec::new(),
                manual_fixes: Vec::new(),
            };
        }
        let ctx = EvalContext { signature, catalog };
        let mut faults: Vec<Fault> = Vec::new();
        let mut origins = Origins::default();
        for (i, (check, rule)) in self.checks.iter().zip(&self.rules).enumerate() {
            if check
                .target_layer
                .is_some_and(|l| l != signature.target_layer)
            {
                continue;
            }
            let verdict = match &check.condition {
                CompiledCondition::Builtin(b) => match b.check(&ctx) {
                    Verdict::Pass => continue,
                    fired => Ok(fired),
                },
                CompiledCondition::Plugin(p) => catch_unwind(AssertUnwindSafe(|| p.check(&ctx)))
                    .unwrap_or_else(|_| {
                        Err(crate::condition::ConditionError::new(
                            "the condition panicked",
                        ))
                    }),
            };
            match verdict {
                Ok(Verdict::Pass) => {}
                Ok(Verdict::Fire) => {
                    push_template(&mut faults, &check.fault);
                    origins.push(Some(i));
                }
                Ok(Verdict::FireWithNote(note)) => {
                    let mut fault = Fault::clone(&check.fault);
                    fault.message = format!("{} ({note})", rule.message).into();
                    push_fault(&mut faults, fault);
                    origins.push(Some(i));
                }
                Err(e) => {
                    push_fault(&mut faults, condition_error_fault(rule, &e.message));
                    origins.push(None);
                }
            }
        }
        let action = decide(&faults);
        let reasoning = reasoning(action, &faults, replan_count, max);
        let (interventions, patches, manual_fixes) = if action == PolicyAction::Replan {
            let (patches, manual) = self.fixes(&ctx, &faults, &origins);
            (interventions(&faults), patches, manual)
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        PolicyResult {
            action,
            faults,
            interventions,
            replan_count,
            reasoning,
            patches,
            manual_fixes,
        }
    }

    fn fixes(
        &self,
        ctx: &EvalContext<'_>,
        faults: &[Fault],
        origins: &Origins,
    ) -> (Vec<Patch>, Vec<ManualFix>) {
        // A built-in adds at most one patch per fault, so this is room for every
        // built-in's fix (a plugin's patches may still grow it).
        let mut patches: Vec<Patch> = Vec::with_capacity(faults.len());
        let mut manual = Vec::new();
        // A built-in's fix depends only on the condition and the context, so equal
        // conditions (common in large bundles) are fixed once. With few faults the
        // fixes are computed directly: the result is the same, and nothing is cached.
        let cache = faults.len() > FIX_CACHE_FROM;
        let mut seen: Vec<(BuiltinCondition, Option<String>)> = Vec::new();
        for (fault, origin) in faults.iter().zip(origins.iter()) {
            let Some(check) = origin.and_then(|i| self.checks.get(i)) else {
                continue;
            };
            match &check.condition {
                CompiledCondition::Builtin(b) => {
                    if cache && let Some((_, reason)) = seen.iter().find(|(c, _)| c == b) {
                        if let Some(reason) = reason {
                            push_manual(&mut manual, fault, reason.clone());
                        }
                        continue;
                    }
                    let reason = b.fix_into(ctx, &mut patches);
                    if cache {
                        seen.push((*b, reason.clone()));
                    }
                    if let Some(reason) = reason {
                        push_manual(&mut manual, fault, reason);
                    }
                }
                CompiledCondition::Plugin(p) => {
                    match catch_unwind(AssertUnwindSafe(|| p.fix(ctx))).unwrap_or_else(|_| {
                        Fix::Manual {
                            reason: "the condition's fix panicked; change the intent by hand"
                                .into(),
                        }
                    }) {
                        Fix::Patches { patches: ps } => {
                            for p in ps {
                                push_unique(&mut patches, p);
                            }
                        }
                        Fix::Manual { reason } => push_manual(&mut manual, fault, reason),
                    }
                }
            }
        }
        (patches, manual)
    }
}

/// The capacity the first fault is pushed with: what `Vec::push` would grow an empty
/// vector of faults to, allocated directly so the first push skips the growth path.
const FIRST_FAULTS: usize = 4;

/// Pushes `fault`; an approve allocates nothing for its (empty) fault list, and the
/// first fault of any other decision allocates room for [`FIRST_FAULTS`] at once.
fn push_fault(faults: &mut Vec<Fault>, fault: Fault) {
    reserve_faults(faults);
    faults.push(fault);
}

/// Pushes a clone of the rule's fault `template`, cloned straight into the list's
/// memory: a clone pushed by value is assembled on the stack first and copied, and
/// the narrow enum fields then stall the copy. Out of line, so the loop of a decision
/// that fires nothing stays small.
#[inline(never)]
fn push_template(faults: &mut Vec<Fault>, template: &Fault) {
    reserve_faults(faults);
    faults.extend_from_slice(std::slice::from_ref(template));
}

/// Gives an empty, unallocated fault list room for [`FIRST_FAULTS`].
#[inline]
fn reserve_faults(faults: &mut Vec<Fault>) {
    if faults.capacity() == 0 {
        *faults = Vec::with_capacity(FIRST_FAULTS);
    }
}

fn push_manual(manual: &mut Vec<ManualFix>, fault: &Fault, reason: String) {
    if fault.mandatory_action == PolicyAction::Replan {
        manual.push(ManualFix {
            code: fault.code.clone(),
            reason,
        });
    }
}

fn describe((rule, check): (&RuleSpec, &Check)) -> RuleDescription {
    let condition = match &check.condition {
        CompiledCondition::Builtin(b) => b.name().to_owned(),
        CompiledCondition::Plugin(_) => rule.condition.clone(),
    };
    RuleDescription {
        name: rule.name.clone(),
        action: rule.action,
        fault_code: rule.fault_code.clone(),
        severity: rule.severity,
        family: rule.family,
        condition,
        target_layer: rule.params.target_layer,
        message: rule.message.clone(),
        remediation: rule.remediation.clone(),
    }
}

/// The fault `rule` raises, built once per engine.
fn template(rule: &RuleSpec) -> Fault {
    Fault {
        code: rule.fault_code.as_str().into(),
        family: rule.family,
        severity: rule.severity,
        stage: SharedStr::from_static(STAGE),
        message: rule.message.as_str().into(),
        mandatory_action: rule.action,
        remediation: rule.remediation.iter().map(String::as_str).collect(),
        detected_before_execution: true,
    }
}

fn condition_error_fault(rule: &RuleSpec, error: &str) -> Fault {
    Fault {
        code: SharedStr::from_static(CONDITION_ERROR_CODE),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::Critical,
        stage: SharedStr::from_static(STAGE),
        message: format!(
            "condition '{}' of rule '{}' failed: {error}",
            rule.condition, rule.name
        )
        .into(),
        mandatory_action: PolicyAction::Block,
        remediation: SharedList::from(vec![format!(
            "Fix or remove the condition '{}' before evaluating again.",
            rule.condition
        )]),
        detected_before_execution: true,
    }
}

/// From this many faults on, [`PolicyEngine::fixes`] caches the fix of each distinct
/// built-in condition.
const FIX_CACHE_FROM: usize = 8;

/// Up to this many remediation steps, interventions are de-duplicated by scanning.
const SCAN_DEDUP_UP_TO: usize = 32;

/// How many fault origins [`Origins`] holds without allocating.
const INLINE_ORIGINS: usize = 8;

/// The index of the rule behind each fault (`None` for a plugin failure), in fault
/// order; the first [`INLINE_ORIGINS`] live inline, so a decision with few faults
/// allocates nothing for them.
#[derive(Debug, Default)]
struct Origins {
    inline: [Option<usize>; INLINE_ORIGINS],
    len: usize,
    spill: Vec<Option<usize>>,
}

impl Origins {
    fn push(&mut self, origin: Option<usize>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = origin,
            None => self.spill.push(origin),
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.inline
            .iter()
            .take(self.len)
            .chain(&self.spill)
            .copied()
    }
}

fn decide(faults: &[Fault]) -> PolicyAction {
    if faults
        .iter()
        .any(|f| f.mandatory_action == PolicyAction::Block)
    {
        PolicyAction::Block
    } else if faults
        .iter()
        .any(|f| f.mandatory_action == PolicyAction::Replan)
    {
        PolicyAction::Replan
    } else {
        PolicyAction::Approve
    }
}

/// Every remediation step, first occurrence first. Short lists are de-duplicated by
/// scanning what is kept so far, long ones through a set; both keep the same steps.
fn interventions(faults: &[Fault]) -> Vec<SharedStr> {
    let steps = faults.iter().flat_map(|f| &f.remediation);
    let total: usize = faults.iter().map(|f| f.remediation.len()).sum();
    let mut out: Vec<SharedStr> = Vec::with_capacity(total);
    if total <= SCAN_DEDUP_UP_TO {
        for step in steps {
            if !out.contains(step) {
                // Cloned straight into the list (see `evaluate_with_catalog`'s faults).
                out.extend_from_slice(std::slice::from_ref(step));
            }
        }
    } else {
        let mut seen: HashSet<&str> = HashSet::with_capacity(total);
        for step in steps {
            if seen.insert(step.as_str()) {
                out.push(step.clone());
            }
        }
    }
    out
}

fn reasoning(action: PolicyAction, faults: &[Fault], replan_count: u32, max: u32) -> String {
    if faults.is_empty() {
        return "All rules passed. Execution approved.".to_owned();
    }
    // Room for the fixed parts and a replan counter of two full u32s.
    let mut s = String::with_capacity(64 + faults.iter().map(|f| f.code.len() + 2).sum::<usize>());
    s.push_str("action=");
    s.push_str(action.as_str());
    s.push_str(" | faults=[");
    for (i, f) in faults.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        s.push_str(&f.code);
    }
    s.push(']');
    match action {
        PolicyAction::Replan => {
            s.push_str(" | replan ");
            push_decimal(&mut s, u64::from(replan_count) + 1);
            s.push('/');
            push_decimal(&mut s, u64::from(max));
        }
        PolicyAction::Block => s.push_str(" | TERMINAL"),
        PolicyAction::Approve => {}
    }
    s
}

/// Appends `n` in decimal, as `{n}` formats it, without the formatting machinery
/// (the decision path formats one counter per replan).
fn push_decimal(s: &mut String, n: u64) {
    if n >= 10 {
        push_decimal(s, n / 10);
    }
    s.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_static_faults_are_their_templates() {
        let e = PolicyEngine::default();
        assert_eq!(e.checks.len(), e.rules.len());
        for (check, rule) in e.checks.iter().zip(&e.rules) {
            assert_eq!(*check.fault, template(rule), "{}", rule.name);
            assert_eq!(check.target_layer, rule.params.target_layer);
        }
        // and a bundle engine's are built from its rules
        let b = PolicyEngine::builtin("prod-v1").unwrap();
        for (check, rule) in b.checks.iter().zip(&b.rules) {
            assert_eq!(*check.fault, template(rule), "{}", rule.name);
        }
    }

    #[test]
    fn push_decimal_writes_what_display_writes() {
        let mut n = 1u64;
        let mut values = vec![0, u64::MAX, u64::from(u32::MAX) + 1];
        while let Some(next) = n.checked_mul(10) {
            values.extend([n - 1, n, n + 1]);
            n = next;
        }
        for v in values {
            let mut s = String::from("x");
            push_decimal(&mut s, v);
            assert_eq!(s, format!("x{v}"));
        }
    }
}
