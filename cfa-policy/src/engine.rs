//! `PolicyEngine`: the pure decision (docs/compatibility.md#decisions) over compiled rules, with the
//! structured fixes of docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions and fail-closed handling of plugin errors.

use crate::builtins::{BuiltinCondition, push_unique, set_true};
use crate::bundle::{PolicyBundle, RuleSpec};
use crate::condition::{EvalContext, Verdict};
use crate::defaults::{self, StaticFault};
use crate::fired::{Fired, FiredTable, NotBuilt};
use crate::registry::{BuildError, CompiledCondition, ConditionRegistry};
use cfa_types::{
    Catalog, Fault, FaultFamily, FaultList, FaultSeverity, Fix, ManualFix, Patch, PolicyAction,
    PolicyResult, SharedList, SharedStr, StateSignature, TargetLayer,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

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
    /// Whether every remediation step of the rules has a number below [`STEP_BITS`]
    /// ([`Check::step_ids`]), so interventions are de-duplicated with a bit set.
    steps_numbered: bool,
    max_replan_attempts: u32,
    /// The faults, reasoning and interventions of each set of fired rules, for engines of at
    /// most [`crate::fired::TABLE_RULES`] rules (the default rules' shared by the
    /// process), each built on first use; `None` for larger engines.
    fired: Option<Arc<FiredTable>>,
}

/// The default rules' [`FiredTable`], shared by every default engine (and so are the
/// entries any of them builds).
static DEFAULT_FIRED: LazyLock<Option<Arc<FiredTable>>> = LazyLock::new(|| {
    let faults: Vec<Fault> = defaults::default_rules()
        .into_iter()
        .map(|(_, _, fault, _)| fault)
        .collect();
    FiredTable::build(faults.iter(), DEFAULT_MAX_REPLAN_ATTEMPTS).map(Arc::new)
});

/// The table of `checks` for the replan cap `max`, if they are few enough.
fn fired_table(checks: &[Check], max: u32) -> Option<Arc<FiredTable>> {
    FiredTable::build(checks.iter().map(|c| &*c.fault), max).map(Arc::new)
}

/// What the evaluation loop needs of a rule, kept small and contiguous: the layer
/// narrowing, the condition, and the fault the rule raises (boxed, as it is read only
/// when the rule fires).
#[derive(Debug, Clone)]
struct Check {
    target_layer: Option<TargetLayer>,
    condition: CompiledCondition,
    fault: Box<Fault>,
    /// The number of each of the fault's remediation steps, equal for equal texts
    /// across the engine's rules (see [`number_steps`]).
    step_ids: Box<[u16]>,
    /// The fault's parts when they are all `'static` (the default rules).
    statics: Option<StaticFault>,
}

impl Check {
    fn new(target_layer: Option<TargetLayer>, condition: CompiledCondition, fault: Fault) -> Self {
        Check {
            target_layer,
            condition,
            fault: Box::new(fault),
            step_ids: Box::default(),
            statics: None,
        }
    }
}

impl Default for PolicyEngine {
    /// The built-in default ruleset (docs/compatibility.md#default-ruleset), version `v1.0`.
    fn default() -> Self {
        let mut rules = Vec::new();
        let mut checks = Vec::new();
        for (rule, condition, fault, statics) in defaults::default_rules() {
            let mut check = Check::new(rule.params.target_layer, condition, fault);
            check.statics = Some(statics);
            checks.push(check);
            rules.push(rule);
        }
        let steps_numbered = number_steps(&mut checks);
        PolicyEngine {
            version: defaults::DEFAULT_VERSION.to_owned(),
            rules,
            checks,
            steps_numbered,
            max_replan_attempts: DEFAULT_MAX_REPLAN_ATTEMPTS,
            fired: DEFAULT_FIRED.clone(),
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
        let mut checks: Vec<Check> = bundle
            .rules
            .iter()
            .zip(conditions)
            .map(|(rule, condition)| {
                Check::new(rule.params.target_layer, condition, template(rule))
            })
            .collect();
        let steps_numbered = number_steps(&mut checks);
        let fired = fired_table(&checks, DEFAULT_MAX_REPLAN_ATTEMPTS);
        Ok(PolicyEngine {
            version: bundle.version,
            rules: bundle.rules,
            checks,
            steps_numbered,
            max_replan_attempts: DEFAULT_MAX_REPLAN_ATTEMPTS,
            fired,
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
            self.checks.push(Check::new(
                rule.params.target_layer,
                condition,
                template(&rule),
            ));
            self.rules.push(rule);
        }
        self.steps_numbered = number_steps(&mut self.checks);
        self.fired = fired_table(&self.checks, self.max_replan_attempts);
        self.version = version.into();
        Ok(self)
    }

    /// Sets the replan cap (default 3).
    #[must_use]
    pub fn with_max_replan_attempts(mut self, max: u32) -> Self {
        if self.max_replan_attempts != max && self.fired.is_some() {
            self.fired = fired_table(&self.checks, max);
        }
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
                faults: FaultList::from(vec![Fault {
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
                }]),
                interventions: SharedList::new(),
                replan_count,
                reasoning: format!("Replan limit ({max}) reached. Manual intervention required.")
                    .into(),
                patches: Vec::new(),
                manual_fixes: Vec::new(),
            };
        }
        let ctx = EvalContext { signature, catalog };
        let mut faults: Vec<Fault> = Vec::new();
        let mut origins = Origins::default();
        // The mandatory actions of the faults so far, as bits: the decision is known
        // when the loop ends, without another pass over the faults.
        let mut actions = 0u8;
        // The rules that fired, bit `i` for rule `i` (meaningful, and read, only for an
        // engine with a `FiredTable`, whose rules all have a bit).
        let mut fired = 0u64;
        // While every fault so far is a rule's own fault and the engine has a table,
        // the faults are not built: they are the table's for `fired`.
        let mut deferred = self.fired.is_some();
        for (i, check) in self.checks.iter().enumerate() {
            if check
                .target_layer
                .is_some_and(|l| l != signature.target_layer)
            {
                continue;
            }
            let verdict = match &check.condition {
                CompiledCondition::Builtin(b) => match b.fires(&ctx) {
                    Some(false) => continue,
                    Some(true) => Ok(Verdict::Fire),
                    None => Ok(b.check(&ctx)),
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
                    if !deferred {
                        push_rule_fault(&mut faults, check);
                    }
                    origins.push(Some(i));
                    actions |= action_bit(check.fault.mandatory_action);
                    fired |= 1u64 << (i % 64);
                }
                Ok(Verdict::FireWithNote(note)) => {
                    if deferred {
                        self.build_faults(&mut faults, fired);
                        deferred = false;
                    }
                    let mut fault = Fault::clone(&check.fault);
                    // The template's message is the rule's.
                    fault.message = format!("{} ({note})", check.fault.message).into();
                    push_fault(&mut faults, fault);
                    origins.push(Some(i));
                    actions |= action_bit(check.fault.mandatory_action);
                    fired |= 1u64 << (i % 64);
                }
                Err(e) => {
                    if deferred {
                        self.build_faults(&mut faults, fired);
                        deferred = false;
                    }
                    let rule = self.rules.get(i);
                    push_fault(&mut faults, condition_error_fault(rule, &e.message));
                    origins.push(None);
                    actions |= action_bit(PolicyAction::Block);
                }
            }
        }
        if origins.len == 0 {
            // Nothing fired: approve, with nothing to build or look up.
            return PolicyResult {
                action: PolicyAction::Approve,
                faults: FaultList::new(),
                interventions: SharedList::new(),
                replan_count,
                reasoning: SharedStr::from_static(ALL_PASSED),
                patches: Vec::new(),
                manual_fixes: Vec::new(),
            };
        }
        // The shared parts of the rules that fired, unless a fault is no rule's (a
        // plugin failure) or the engine has no table. An entry no decision has built
        // yet is built by a cold function that then makes the decision again, with the
        // entry there: that keeps the first use out of this function's code (a call
        // here that returns to the code below costs the rule loop registers; see
        // docs/development.md). Evaluation is pure, so the second run decides the same.
        let table = self.fired.as_deref().filter(|_| !origins.has_none);
        let shared = match table.map(|t| t.get(fired)) {
            None => None,
            Some(Ok(shared)) => shared,
            Some(Err(NotBuilt)) => {
                return self.fill_and_evaluate(fired, signature, catalog, replan_count);
            }
        };
        let action = decide(actions);
        let faults: FaultList = match (deferred, shared.and_then(Fired::faults)) {
            (false, _) => faults.into(),
            (true, _) if fired == 0 => FaultList::new(),
            (true, Some(list)) => FaultList::from(Arc::clone(list)),
            (true, None) => {
                self.build_faults(&mut faults, fired);
                faults.into()
            }
        };
        let same_cap = table.is_some_and(|t| t.max() == max);
        let reasoning = match shared
            .filter(|_| same_cap)
            .and_then(|s| s.reasoning(action, replan_count))
        {
            Some(text) => text.clone(),
            None => reasoning(action, &faults, replan_count, max),
        };
        let (interventions, patches, manual_fixes) = if action == PolicyAction::Replan {
            let (patches, manual) = self.fixes(&ctx, &faults, &origins);
            let interventions = match shared {
                Some(s) => s.interventions().clone(),
                None => SharedList::from(self.interventions(&faults, &origins)),
            };
            (interventions, patches, manual)
        } else {
            (SharedList::new(), Vec::new(), Vec::new())
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

    /// The first decision that needs the entry of the rules in `fired`: builds it, and
    /// makes the decision again with it (once per entry of the engine's table, so the
    /// rules of such a decision are evaluated twice).
    #[cold]
    #[inline(never)]
    fn fill_and_evaluate(
        &self,
        fired: u64,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
        replan_count: u32,
    ) -> PolicyResult {
        if let Some(t) = self.fired.as_deref() {
            t.fill(fired);
        }
        self.evaluate_with_catalog(signature, catalog, replan_count)
    }

    /// Pushes the faults of the rules whose bits are set in `fired`, in rule order (the
    /// faults a decision deferred while its table could provide them).
    #[cold]
    #[inline(never)]
    fn build_faults(&self, faults: &mut Vec<Fault>, fired: u64) {
        for (i, check) in self.checks.iter().enumerate() {
            if i < 64 && fired & (1u64 << i) != 0 {
                push_rule_fault(faults, check);
            }
        }
    }

    /// Every remediation step of `faults`, first occurrence first. When every fault is
    /// a rule's (no plugin failure) and the engine's steps are numbered, the steps are
    /// the rules' own and are de-duplicated by number, one bit each; otherwise by text.
    fn interventions(&self, faults: &[Fault], origins: &Origins) -> Vec<SharedStr> {
        if !self.steps_numbered || origins.has_none {
            return interventions(faults);
        }
        let total: usize = faults.iter().map(|f| f.remediation.len()).sum();
        let mut out: Vec<SharedStr> = Vec::with_capacity(total);
        let mut seen = [0u64; STEP_BITS / 64];
        for check in origins
            .as_slice()
            .iter()
            .flatten()
            .filter_map(|&i| self.checks.get(i))
        {
            for (step, &id) in check.fault.remediation.iter().zip(check.step_ids.iter()) {
                let bit = 1u64 << (id % 64);
                if let Some(word) = seen.get_mut(usize::from(id / 64)) {
                    if *word & bit != 0 {
                        continue;
                    }
                    *word |= bit;
                }
                // Cloned straight into the list (see `evaluate_with_catalog`'s faults).
                out.extend_from_slice(std::slice::from_ref(step));
            }
        }
        out
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
        // The flag patches pushed so far (see `BuiltinCondition::flag_patch`), which
        // answer "is it there already?" while only built-ins have added patches; once a
        // plugin has (its patches may equal one), `push_unique` compares.
        let mut flags = 0u8;
        let mut only_builtins = true;
        for (fault, origin) in faults.iter().zip(origins.as_slice()) {
            let Some(check) = origin.and_then(|i| self.checks.get(i)) else {
                continue;
            };
            match &check.condition {
                CompiledCondition::Builtin(b) => {
                    if only_builtins && let Some((bit, path)) = b.flag_patch() {
                        if flags & bit == 0 {
                            flags |= bit;
                            patches.push(set_true(path));
                        }
                        continue;
                    }
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
                    only_builtins = false;
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

/// Pushes the fault `check`'s rule raises.
#[inline]
fn push_rule_fault(faults: &mut Vec<Fault>, check: &Check) {
    match &check.statics {
        Some(statics) => push_static(faults, statics),
        None => push_template(faults, &check.fault),
    }
}

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

/// Pushes the fault of a rule whose texts are all static, built from them straight in
/// the list's memory (`push` would assemble it on the stack and copy it, see
/// [`push_template`]).
#[inline(never)]
fn push_static(faults: &mut Vec<Fault>, statics: &StaticFault) {
    reserve_faults(faults);
    faults.extend(std::iter::once_with(|| statics.fault()));
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

/// The fault of a plugin condition that failed; `rule` is always there (the engine
/// has a rule per check), and named `?` otherwise.
fn condition_error_fault(rule: Option<&RuleSpec>, error: &str) -> Fault {
    let (condition, name) = rule.map_or(("?", "?"), |r| (r.condition.as_str(), r.name.as_str()));
    Fault {
        code: SharedStr::from_static(CONDITION_ERROR_CODE),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::Critical,
        stage: SharedStr::from_static(STAGE),
        message: format!("condition '{condition}' of rule '{name}' failed: {error}").into(),
        mandatory_action: PolicyAction::Block,
        remediation: SharedList::from(vec![format!(
            "Fix or remove the condition '{condition}' before evaluating again."
        )]),
        detected_before_execution: true,
    }
}

/// From this many faults on, [`PolicyEngine::fixes`] caches the fix of each distinct
/// built-in condition.
const FIX_CACHE_FROM: usize = 8;

/// How many distinct remediation steps an engine may have for its interventions to be
/// de-duplicated by number (a bit set of this many bits on the stack).
const STEP_BITS: usize = 256;

/// Numbers the remediation steps of `checks` in order of first appearance, equal texts
/// getting equal numbers; true when there are at most [`STEP_BITS`] distinct ones.
fn number_steps(checks: &mut [Check]) -> bool {
    let mut ids: HashMap<SharedStr, u16> = HashMap::new();
    let mut fits = true;
    for check in checks.iter_mut() {
        let mut step_ids = Vec::with_capacity(check.fault.remediation.len());
        for step in &check.fault.remediation {
            let next = ids.len();
            let id = match ids.get(step) {
                Some(&id) => id,
                None => {
                    let id = u16::try_from(next).unwrap_or(u16::MAX);
                    fits &= next < STEP_BITS;
                    ids.insert(step.clone(), id);
                    id
                }
            };
            step_ids.push(id);
        }
        check.step_ids = step_ids.into_boxed_slice();
    }
    fits
}

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
    /// Whether a fault has no rule behind it.
    has_none: bool,
}

impl Origins {
    fn push(&mut self, origin: Option<usize>) {
        self.has_none |= origin.is_none();
        match self.inline.get_mut(self.len) {
            Some(slot) if self.spill.is_empty() => *slot = origin,
            _ => {
                if self.spill.is_empty() {
                    self.spill
                        .extend_from_slice(self.inline.get(..self.len).unwrap_or_default());
                }
                self.spill.push(origin);
            }
        }
        self.len += 1;
    }

    /// The origins in fault order: the inline ones, or all of them once they spilled.
    fn as_slice(&self) -> &[Option<usize>] {
        if self.spill.is_empty() {
            self.inline.get(..self.len).unwrap_or_default()
        } else {
            &self.spill
        }
    }
}

/// The bit of `action` in the mask [`decide`] reads.
pub(crate) const fn action_bit(action: PolicyAction) -> u8 {
    match action {
        PolicyAction::Approve => 1,
        PolicyAction::Replan => 2,
        PolicyAction::Block => 4,
    }
}

/// Block if a fault demands it, else replan if one demands that, else approve, from
/// the faults' [`action_bit`]s.
pub(crate) const fn decide(actions: u8) -> PolicyAction {
    if actions & action_bit(PolicyAction::Block) != 0 {
        PolicyAction::Block
    } else if actions & action_bit(PolicyAction::Replan) != 0 {
        PolicyAction::Replan
    } else {
        PolicyAction::Approve
    }
}

/// Every remediation step, first occurrence first. Short lists are de-duplicated by
/// scanning what is kept so far, long ones through a set; both keep the same steps.
pub(crate) fn interventions(faults: &[Fault]) -> Vec<SharedStr> {
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

/// The reasoning of a decision without faults.
const ALL_PASSED: &str = "All rules passed. Execution approved.";

/// The reference's reasoning string for a decision with `faults`.
pub(crate) fn reasoning(
    action: PolicyAction,
    faults: &[Fault],
    replan_count: u32,
    max: u32,
) -> SharedStr {
    if faults.is_empty() {
        return SharedStr::from_static(ALL_PASSED);
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
    s.into()
}

/// Appends `n` in decimal, as `{n}` formats it, without the formatting machinery
/// (the decision path formats one counter per replan).
#[inline]
fn push_decimal(s: &mut String, n: u64) {
    if n >= 10 {
        push_decimal_long(s, n);
    } else {
        s.push(char::from(b'0' + n as u8));
    }
}

/// [`push_decimal`] of two digits or more.
#[inline(never)]
fn push_decimal_long(s: &mut String, n: u64) {
    push_decimal(s, n / 10);
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
            let statics = check.statics.as_ref().unwrap();
            assert_eq!(statics.fault(), template(rule), "{}", rule.name);
        }
        // and a bundle engine's are built from its rules
        let b = PolicyEngine::builtin("prod-v1").unwrap();
        for (check, rule) in b.checks.iter().zip(&b.rules) {
            assert_eq!(*check.fault, template(rule), "{}", rule.name);
            assert!(check.statics.is_none());
        }
    }

    /// The decision computed the straightforward way: every pass separate, fixes
    /// through `fix`, de-duplication by comparing, the reasoning through `format!`.
    fn reference(
        e: &PolicyEngine,
        sig: &StateSignature,
        catalog: Option<&Catalog>,
        replan_count: u32,
    ) -> PolicyResult {
        let max = e.max_replan_attempts;
        if replan_count >= max {
            let mut guard: Fault = serde_json::from_value(serde_json::json!({
                "code": MAX_REPLAN_CODE, "family": "semantic_faults", "severity": "critical",
                "stage": STAGE, "message": format!("Max {max} replans exceeded."),
                "mandatory_action": "block",
                "remediation": ["Review the intent manually and fix previous faults."],
            }))
            .unwrap();
            guard.detected_before_execution = true;
            return PolicyResult {
                action: PolicyAction::Block,
                faults: vec![guard].into(),
                interventions: SharedList::new(),
                replan_count,
                reasoning: format!("Replan limit ({max}) reached. Manual intervention required.")
                    .into(),
                patches: Vec::new(),
                manual_fixes: Vec::new(),
            };
        }
        let ctx = EvalContext {
            signature: sig,
            catalog,
        };
        let mut faults = Vec::new();
        let mut fixes = Vec::new();
        for (check, rule) in e.checks.iter().zip(&e.rules) {
            if check.target_layer.is_some_and(|l| l != sig.target_layer) {
                continue;
            }
            let verdict = match &check.condition {
                CompiledCondition::Builtin(b) => Ok(b.check(&ctx)),
                CompiledCondition::Plugin(p) => p.check(&ctx),
            };
            match verdict {
                Ok(Verdict::Pass) => {}
                Ok(Verdict::Fire) => {
                    faults.push(template(rule));
                    fixes.push(Some(&check.condition));
                }
                Ok(Verdict::FireWithNote(note)) => {
                    let mut f = template(rule);
                    f.message = format!("{} ({note})", rule.message).into();
                    faults.push(f);
                    fixes.push(Some(&check.condition));
                }
                Err(err) => {
                    faults.push(condition_error_fault(Some(rule), &err.message));
                    fixes.push(None);
                }
            }
        }
        let has = |a| faults.iter().any(|f: &Fault| f.mandatory_action == a);
        let action = if has(PolicyAction::Block) {
            PolicyAction::Block
        } else if has(PolicyAction::Replan) {
            PolicyAction::Replan
        } else {
            PolicyAction::Approve
        };
        let codes: Vec<&str> = faults.iter().map(|f| f.code.as_str()).collect();
        let reasoning = match action {
            _ if faults.is_empty() => "All rules passed. Execution approved.".to_owned(),
            PolicyAction::Replan => format!(
                "action=replan | faults=[{}] | replan {}/{max}",
                codes.join("; "),
                u64::from(replan_count) + 1
            ),
            PolicyAction::Block => {
                format!("action=block | faults=[{}] | TERMINAL", codes.join("; "))
            }
            PolicyAction::Approve => format!("action=approve | faults=[{}]", codes.join("; ")),
        };
        let (mut interventions, mut patches, mut manual_fixes) =
            (Vec::new(), Vec::new(), Vec::new());
        if action == PolicyAction::Replan {
            for step in faults.iter().flat_map(|f| f.remediation.iter()) {
                if !interventions.contains(step) {
                    interventions.push(step.clone());
                }
            }
            for (fault, fix) in faults.iter().zip(&fixes) {
                let fix = match fix {
                    Some(CompiledCondition::Builtin(b)) => b.fix(&ctx),
                    Some(CompiledCondition::Plugin(p)) => p.fix(&ctx),
                    None => continue,
                };
                match fix {
                    Fix::Patches { patches: ps } => {
                        for p in ps {
                            if !patches.contains(&p) {
                                patches.push(p);
                            }
                        }
                    }
                    Fix::Manual { reason } => {
                        if fault.mandatory_action == PolicyAction::Replan {
                            manual_fixes.push(ManualFix {
                                code: fault.code.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        PolicyResult {
            action,
            faults: faults.into(),
            interventions: SharedList::from(interventions),
            replan_count,
            reasoning: reasoning.into(),
            patches,
            manual_fixes,
        }
    }

    /// Signatures over the inputs the conditions read: layer, the three flags,
    /// partition filter, cost ceiling, gold approval, and datasets of every class with a
    /// partition column that is shared, distinct, blank or missing.
    fn grid() -> Vec<StateSignature> {
        use cfa_types::DatasetClassification as C;
        let base = StateSignature::from_value(&cfa_test_support::ok_signature()).unwrap();
        let column = |k: usize| match k {
            0 => None,
            1 => Some(" ".to_owned()),
            2 => Some("processing_date".to_owned()),
            _ => Some(format!("col_{k}")),
        };
        let mut datasets: Vec<Vec<cfa_types::DatasetRef>> = Vec::new();
        for classes in [
            vec![C::HighVolume],
            vec![C::Sensitive],
            vec![C::HighVolume, C::Sensitive],
            vec![C::Sensitive, C::HighVolume, C::Sensitive],
        ] {
            for cols in [[2, 2, 2], [0, 2, 3], [3, 2, 4], [1, 0, 1], [4, 3, 2]] {
                let ds = classes
                    .iter()
                    .zip(cols)
                    .enumerate()
                    .map(|(i, (class, col))| {
                        let mut d = base.datasets[i % base.datasets.len()].clone();
                        d.name = format!("d{i}");
                        d.classification = *class;
                        d.partition_column = column(col);
                        d.size_gb = serde_json::Number::from(60 * (i as u64 + 1));
                        d
                    })
                    .collect();
                datasets.push(ds);
            }
        }
        let mut out = Vec::new();
        for layer in TargetLayer::ALL.iter().copied() {
            for flags in 0..8u8 {
                for (k, ds) in datasets.iter().enumerate() {
                    let mut s = base.clone();
                    s.target_layer = layer;
                    s.constraints.no_pii_raw = flags & 1 != 0;
                    s.constraints.merge_key_required = flags & 2 != 0;
                    s.constraints.enforce_types = flags & 4 != 0;
                    if k % 2 == 0 {
                        s.constraints.partition_by.clear();
                    }
                    s.constraints.max_cost_dbu = match k % 3 {
                        0 => None,
                        1 => Some(serde_json::Number::from(0)),
                        _ => serde_json::Number::from_f64(75.5),
                    };
                    s.datasets = ds.clone();
                    out.push(s);
                }
            }
        }
        out
    }

    /// Fires on bronze, fires with a note on silver, fails on gold.
    #[derive(Debug)]
    struct Odd;
    impl crate::condition::Condition for Odd {
        fn check(&self, ctx: &EvalContext<'_>) -> Result<Verdict, crate::ConditionError> {
            match ctx.signature.target_layer {
                TargetLayer::Bronze => Ok(Verdict::Fire),
                TargetLayer::Silver => Ok(Verdict::FireWithNote("odd".into())),
                _ => Err(crate::ConditionError::new("odd failure")),
            }
        }
    }

    /// The rules of `prod-v1` with a rule on [`Odd`] inserted at `at`.
    fn with_odd_plugin(at: usize) -> PolicyEngine {
        let mut registry = ConditionRegistry::with_builtins();
        registry.register(
            "odd",
            |_: &crate::RuleParams| -> Result<Box<dyn crate::condition::Condition>, crate::ConditionError> {
                Ok(Box::new(Odd))
            },
        );
        let mut rules = PolicyEngine::builtin("prod-v1").unwrap().rules;
        let mut odd = rules.first().unwrap().clone();
        odd.name = "odd".into();
        odd.condition = "odd".into();
        odd.fault_code = "ODD".into();
        odd.action = PolicyAction::Replan;
        odd.remediation = vec![
            "odd step".into(),
            "Define expected schema in catalog".into(),
        ];
        odd.params = crate::RuleParams::default();
        rules.insert(at, odd);
        let bundle = PolicyBundle {
            version: format!("odd@{at}"),
            description: None,
            rules,
        };
        let e = PolicyEngine::from_bundle_with(bundle, &registry).unwrap();
        assert!(e.fired.is_some());
        e
    }

    #[test]
    fn decisions_are_those_of_the_straightforward_computation() {
        let mut engines = vec![PolicyEngine::default()];
        engines.extend(crate::builtin::names().map(|n| PolicyEngine::builtin(n).unwrap()));
        engines.push(PolicyEngine::from_bundle(crate::synth::generated_bundle(40)).unwrap());
        engines.push(PolicyEngine::from_bundle(crate::synth::generated_bundle(600)).unwrap());
        // more distinct remediation steps than the bit set holds: by text
        let mut many = crate::synth::generated_bundle(30);
        for (i, r) in many.rules.iter_mut().enumerate() {
            r.remediation = (0..12)
                .map(|k| format!("step {}", (i * 13 + k) % 400))
                .collect();
        }
        let many = PolicyEngine::from_bundle(many).unwrap();
        assert!(!many.steps_numbered);
        engines.push(many);
        // and a default engine extended with rules repeating its own steps
        let mut extra = crate::synth::generated_bundle(9).rules;
        for (i, r) in extra.iter_mut().enumerate() {
            r.name = format!("extra_{i}");
            r.fault_code = format!("EXTRA_{i}");
            r.remediation = vec![
                "Enable constraints.enforce_types=True".into(),
                format!("extra step {}", i % 2),
            ];
        }
        engines.push(
            PolicyEngine::default()
                .extended("v1.0+extra", extra, &ConditionRegistry::with_builtins())
                .unwrap(),
        );
        // the shared reasoning of other replan caps (a table of their own), and the
        // default rules without a table
        engines.push(PolicyEngine::default().with_max_replan_attempts(5));
        engines.push(PolicyEngine::default().with_max_replan_attempts(1));
        engines.push(PolicyEngine {
            fired: None,
            ..PolicyEngine::default()
        });
        // a plugin between prod-v1's rules that fires, fires with a note or fails
        // (the faults deferred so far are built then), in an engine with a table
        engines.push(with_odd_plugin(2));
        engines.push(with_odd_plugin(7));
        assert!(engines.first().unwrap().fired.is_some());
        assert!(engines.iter().any(|e| e.fired.is_none()));
        let mut compared = 0usize;
        for sig in grid() {
            let mut cat_value = serde_json::Map::new();
            for d in &sig.datasets {
                cat_value.insert(d.name.clone(), serde_json::to_value(d).unwrap());
            }
            let catalog =
                Catalog::from_value(&serde_json::json!({ "datasets": cat_value })).unwrap();
            for e in &engines {
                for cat in [None, Some(&catalog)] {
                    for replan in [0, 1, 2, 4] {
                        let got = e.evaluate_with_catalog(&sig, cat, replan);
                        let want = reference(e, &sig, cat, replan);
                        assert_eq!(got, want, "{} {sig:?}", e.version());
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
    }

    #[test]
    fn a_set_of_fired_rules_shares_its_reasoning_and_interventions() {
        let e = PolicyEngine::default();
        let base = StateSignature::from_value(&cfa_test_support::ok_signature()).unwrap();
        let mut replan = base.clone();
        replan.constraints.partition_by.clear();
        replan.constraints.enforce_types = false;
        let (a, b) = (e.evaluate(&replan, 1), e.clone().evaluate(&replan, 1));
        assert_eq!(a.action, PolicyAction::Replan);
        assert!(!a.interventions.is_empty());
        assert_eq!(a.interventions.as_ptr(), b.interventions.as_ptr());
        assert_eq!(a.reasoning.as_ptr(), b.reasoning.as_ptr());
        assert_eq!(a.faults.len(), 3);
        assert_eq!(a.faults.as_ptr(), b.faults.as_ptr());
        // changing a decision's faults leaves the shared ones alone
        let mut changed = a.clone();
        changed.faults.push(a.faults.first().unwrap().clone());
        assert_eq!((changed.faults.len(), b.faults.len()), (4, 3));
        assert_eq!(e.evaluate(&replan, 1), b);
        // every default engine shares the one table
        let c = PolicyEngine::default().evaluate(&replan, 1);
        assert_eq!(a.reasoning.as_ptr(), c.reasoning.as_ptr());
        // another replan count has its own reasoning, the same interventions
        let d = e.evaluate(&replan, 0);
        assert_ne!(a.reasoning, d.reasoning);
        assert_eq!(a.interventions.as_ptr(), d.interventions.as_ptr());
        // an engine over more rules than the table covers builds them per decision
        let big = PolicyEngine::from_bundle(crate::synth::generated_bundle(40)).unwrap();
        assert!(big.fired.is_none());
        let mut block = base;
        block.constraints.no_pii_raw = false;
        let (x, y) = (e.evaluate(&block, 0), e.evaluate(&block, 0));
        assert_eq!(x.action, PolicyAction::Block);
        assert_eq!(x.reasoning.as_ptr(), y.reasoning.as_ptr());
        assert_eq!(x.faults.as_ptr(), y.faults.as_ptr());
        // nothing fired
        let mut ok = block;
        ok.constraints.no_pii_raw = true;
        let ok = e.evaluate(&ok, 2);
        assert_eq!(ok.action, PolicyAction::Approve);
        assert!(ok.faults.is_empty() && ok.interventions.is_empty());
        assert_eq!(ok.reasoning, ALL_PASSED);
    }

    /// `e` with a table of its own that no decision has used yet.
    fn fresh(e: &PolicyEngine) -> PolicyEngine {
        let mut e = e.clone();
        e.fired = fired_table(&e.checks, e.max_replan_attempts);
        assert_eq!(e.fired.as_deref().map(FiredTable::built), Some(0));
        e
    }

    /// Engines with a table: the defaults (caps 3 and 5), `prod-v1`, and `prod-v1` with
    /// a plugin that fires, fires with a note or fails.
    fn table_engines() -> Vec<PolicyEngine> {
        [
            PolicyEngine::default(),
            PolicyEngine::default().with_max_replan_attempts(5),
            PolicyEngine::builtin("prod-v1").unwrap(),
            with_odd_plugin(2),
        ]
        .iter()
        .map(fresh)
        .collect()
    }

    #[test]
    fn a_decision_does_not_depend_on_the_decisions_made_before_it() {
        let sigs = grid();
        for e in table_engines() {
            // every decision made first, by an engine with an unused table
            let first: Vec<PolicyResult> = sigs
                .iter()
                .flat_map(|s| [0, 2].map(|r| fresh(&e).evaluate(s, r)))
                .collect();
            // the same decisions after all the others, in reverse order, by one engine
            let after = fresh(&e);
            let mut last: Vec<PolicyResult> = sigs
                .iter()
                .rev()
                .flat_map(|s| [2, 0].map(|r| after.evaluate(s, r)))
                .collect();
            last.reverse();
            assert_eq!(first.len(), last.len());
            assert!(after.fired.as_deref().unwrap().built() > 1);
            for (a, b) in first.iter().zip(&last) {
                assert_eq!(a, b, "{}", e.version());
                assert_eq!(
                    serde_json::to_vec(a).unwrap(),
                    serde_json::to_vec(b).unwrap()
                );
            }
            // a decision builds at most the one entry of its fired rules
            let one = fresh(&e);
            let r = one.evaluate(sigs.first().unwrap(), 0);
            let built = one.fired.as_deref().unwrap().built();
            assert!(
                built <= usize::from(!r.faults.is_empty()),
                "{}",
                e.version()
            );
        }
    }

    #[test]
    fn threads_racing_on_an_entry_get_the_same_one() {
        let base = StateSignature::from_value(&cfa_test_support::ok_signature()).unwrap();
        let mut replan = base.clone();
        replan.constraints.partition_by.clear();
        replan.constraints.enforce_types = false;
        let mut block = base;
        block.constraints.no_pii_raw = false;
        let sigs = [replan, block];
        for e in table_engines() {
            let want: Vec<PolicyResult> = sigs.iter().map(|s| fresh(&e).evaluate(s, 1)).collect();
            let e = fresh(&e);
            let threads = 8;
            let barrier = std::sync::Barrier::new(threads);
            let got: Vec<Vec<PolicyResult>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (e, barrier, sigs) = (e.clone(), &barrier, &sigs);
                        scope.spawn(move || {
                            barrier.wait();
                            // half the threads in one order, half in the other
                            let mut out: Vec<PolicyResult> =
                                sigs.iter().map(|s| e.evaluate(s, 1)).collect();
                            if t % 2 == 1 {
                                out = sigs.iter().rev().map(|s| e.evaluate(s, 1)).collect();
                                out.reverse();
                            }
                            out
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // one entry per set of fired rules, whichever thread built it
            assert_eq!(e.fired.as_deref().map(FiredTable::built), Some(sigs.len()));
            // (the plugin fires with a note on silver: those faults are the decision's own)
            let shared_faults = !e.version().starts_with("odd");
            for results in &got {
                assert_eq!(results, &want, "{}", e.version());
                for (a, b) in results.iter().zip(got.first().unwrap()) {
                    assert!(!a.faults.is_empty());
                    assert_eq!(a.reasoning.as_ptr(), b.reasoning.as_ptr());
                    if shared_faults {
                        assert_eq!(a.faults.as_ptr(), b.faults.as_ptr());
                    }
                }
            }
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
