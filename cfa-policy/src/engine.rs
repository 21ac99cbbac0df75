//! `PolicyEngine`: the pure decision (docs/compatibility.md#decisions) over compiled rules, with the
//! structured fixes of docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions and fail-closed handling of plugin errors.

use crate::builtins::BuiltinCondition;
use crate::bundle::{PolicyBundle, RuleSpec};
use crate::condition::{EvalContext, Verdict};
use crate::defaults;
use crate::registry::{BuildError, CompiledCondition, ConditionRegistry};
use cfa_types::{
    Catalog, Fault, FaultFamily, FaultSeverity, Fix, ManualFix, Patch, PolicyAction, PolicyResult,
    StateSignature,
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
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    version: String,
    rules: Vec<RuleSpec>,
    conditions: Vec<CompiledCondition>,
    max_replan_attempts: u32,
}

impl Default for PolicyEngine {
    /// The built-in default ruleset (docs/compatibility.md#default-ruleset), version `v1.0`.
    fn default() -> Self {
        let (rules, conditions) = defaults::default_rules().into_iter().unzip();
        PolicyEngine {
            version: defaults::DEFAULT_VERSION.to_owned(),
            rules,
            conditions,
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
        Ok(PolicyEngine {
            version: bundle.version,
            rules: bundle.rules,
            conditions,
            max_replan_attempts: DEFAULT_MAX_REPLAN_ATTEMPTS,
        })
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
        self.rules
            .iter()
            .zip(&self.conditions)
            .map(describe)
            .collect()
    }

    /// The rule that raises fault `code`, if any.
    pub fn explain(&self, code: &str) -> Option<RuleDescription> {
        self.rules
            .iter()
            .zip(&self.conditions)
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
                    code: MAX_REPLAN_CODE.to_owned(),
                    family: FaultFamily::Semantic,
                    severity: FaultSeverity::Critical,
                    stage: STAGE.to_owned(),
                    message: format!("Max {max} replans exceeded."),
                    mandatory_action: PolicyAction::Block,
                    remediation: vec!["Review the intent manually and fix previous faults.".into()],
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
        // Index of the rule behind each fault; `None` for a plugin failure.
        let mut origins: Vec<Option<usize>> = Vec::new();
        for (i, (rule, cond)) in self.rules.iter().zip(&self.conditions).enumerate() {
            if rule
                .params
                .target_layer
                .is_some_and(|l| l != signature.target_layer)
            {
                continue;
            }
            let verdict = match cond {
                CompiledCondition::Builtin(b) => Ok(b.check(&ctx)),
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
                    faults.push(fault_of(rule, rule.message.clone()));
                    origins.push(Some(i));
                }
                Ok(Verdict::FireWithNote(note)) => {
                    faults.push(fault_of(rule, format!("{} ({note})", rule.message)));
                    origins.push(Some(i));
                }
                Err(e) => {
                    faults.push(condition_error_fault(rule, &e.message));
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
        origins: &[Option<usize>],
    ) -> (Vec<Patch>, Vec<ManualFix>) {
        let mut patches: Vec<Patch> = Vec::new();
        let mut manual = Vec::new();
        // A built-in's fix depends only on the condition and the context, so equal
        // conditions (common in large bundles) are fixed once.
        let mut seen: Vec<(BuiltinCondition, Option<String>)> = Vec::new();
        for (fault, origin) in faults.iter().zip(origins) {
            let Some(cond) = origin.and_then(|i| self.conditions.get(i)) else {
                continue;
            };
            let fix = match cond {
                CompiledCondition::Builtin(b) => {
                    if let Some((_, reason)) = seen.iter().find(|(c, _)| c == b) {
                        if let Some(reason) = reason {
                            push_manual(&mut manual, fault, reason.clone());
                        }
                        continue;
                    }
                    let fix = b.fix(ctx);
                    let reason = match &fix {
                        Fix::Manual { reason } => Some(reason.clone()),
                        Fix::Patches { .. } => None,
                    };
                    seen.push((*b, reason));
                    fix
                }
                CompiledCondition::Plugin(p) => catch_unwind(AssertUnwindSafe(|| p.fix(ctx)))
                    .unwrap_or_else(|_| Fix::Manual {
                        reason: "the condition's fix panicked; change the intent by hand".into(),
                    }),
            };
            match fix {
                Fix::Patches { patches: ps } => {
                    for p in ps {
                        if !patches.contains(&p) {
                            patches.push(p);
                        }
                    }
                }
                Fix::Manual { reason } => push_manual(&mut manual, fault, reason),
            }
        }
        (patches, manual)
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

fn describe((rule, cond): (&RuleSpec, &CompiledCondition)) -> RuleDescription {
    let condition = match cond {
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

fn fault_of(rule: &RuleSpec, message: String) -> Fault {
    Fault {
        code: rule.fault_code.clone(),
        family: rule.family,
        severity: rule.severity,
        stage: STAGE.to_owned(),
        message,
        mandatory_action: rule.action,
        remediation: rule.remediation.clone(),
        detected_before_execution: true,
    }
}

fn condition_error_fault(rule: &RuleSpec, error: &str) -> Fault {
    Fault {
        code: CONDITION_ERROR_CODE.to_owned(),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::Critical,
        stage: STAGE.to_owned(),
        message: format!(
            "condition '{}' of rule '{}' failed: {error}",
            rule.condition, rule.name
        ),
        mandatory_action: PolicyAction::Block,
        remediation: vec![format!(
            "Fix or remove the condition '{}' before evaluating again.",
            rule.condition
        )],
        detected_before_execution: true,
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

fn interventions(faults: &[Fault]) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for step in faults.iter().flat_map(|f| &f.remediation) {
        if seen.insert(step.as_str()) {
            out.push(step.clone());
        }
    }
    out
}

fn reasoning(action: PolicyAction, faults: &[Fault], replan_count: u32, max: u32) -> String {
    if faults.is_empty() {
        return "All rules passed. Execution approved.".to_owned();
    }
    let mut s = String::with_capacity(32 + faults.iter().map(|f| f.code.len() + 2).sum::<usize>());
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
            s.push_str(&format!(" | replan {}/{max}", u64::from(replan_count) + 1));
        }
        PolicyAction::Block => s.push_str(" | TERMINAL"),
        PolicyAction::Approve => {}
    }
    s
}
