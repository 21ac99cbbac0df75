//! The allocation-free decision path (docs/architecture.md#the-decision-path): faults
//! cloned from per-rule templates, fixes pushed without intermediate lists, cached
//! only for many faults, and interventions de-duplicated by scan or by set, all with
//! the answers of the straightforward computation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_policy::{
    BUILTIN_NAMES, BuiltinCondition, Condition, ConditionError, ConditionRegistry, EvalContext,
    PolicyBundle, PolicyEngine, RuleParams, Verdict,
};
use cfa_types::{Catalog, Fix, Patch, PolicyAction, StateSignature};
use serde_json::{Value, json};

fn sig(edit: impl FnOnce(&mut Value)) -> StateSignature {
    let mut v = cfa_test_support::ok_signature();
    edit(&mut v);
    StateSignature::from_value(&v).unwrap()
}

/// `ok` without a partition filter and without type enforcement: three replan faults
/// with the default rules.
fn replan_sig() -> StateSignature {
    sig(|v| {
        v["constraints"]["partition_by"] = json!([]);
        v["constraints"]["enforce_types"] = json!(false);
    })
}

fn engine(rules: Vec<Value>) -> PolicyEngine {
    let bundle = PolicyBundle::from_value(&json!({"version": "t", "rules": rules})).unwrap();
    PolicyEngine::from_bundle(bundle).unwrap()
}

#[test]
fn faults_carry_their_rules_text_and_share_it_across_decisions() {
    let e = PolicyEngine::default();
    let s = replan_sig();
    let a = e.evaluate(&s, 0);
    let b = e.evaluate(&s, 1);
    assert_eq!(a.action, PolicyAction::Replan);
    assert_eq!(a.faults.len(), 3);
    for (fa, fb) in a.faults.iter().zip(&b.faults) {
        let rule = e.rules().iter().find(|r| r.fault_code == fa.code).unwrap();
        assert_eq!(fa.message, rule.message);
        assert_eq!(fa.remediation, rule.remediation);
        assert_eq!(fa.stage, cfa_policy::STAGE);
        assert_eq!(fa.mandatory_action, rule.action);
        assert_eq!((fa.family, fa.severity), (rule.family, rule.severity));
        // the text is the engine's, not a copy per decision
        assert_eq!(fa.code.as_ptr(), fb.code.as_ptr());
        assert_eq!(fa.message.as_ptr(), fb.message.as_ptr());
        assert_eq!(fa.remediation.as_ptr(), fb.remediation.as_ptr());
    }
    assert_eq!(
        a.interventions.first().map(|s| s.as_ptr()),
        a.faults[0].remediation.first().map(|s| s.as_ptr())
    );
    // a fault with a note gets its own message, not the template's
    let eu = PolicyEngine::builtin("eu-ai-act-v1").unwrap();
    let blind = eu.evaluate(&sig(|_| {}), 0);
    let rule = eu
        .rules()
        .iter()
        .find(|r| r.fault_code == blind.faults[0].code)
        .unwrap();
    assert!(
        blind.faults[0]
            .message
            .starts_with(&format!("{} (", rule.message)),
        "{}",
        blind.faults[0].message
    );
}

#[test]
fn reasoning_counts_replans_as_the_formatter_does() {
    let e = PolicyEngine::default().with_max_replan_attempts(u32::MAX);
    for count in [0, 8, 9, 10, 99, 12_345, u32::MAX - 1] {
        let r = e.evaluate(&replan_sig(), count);
        assert_eq!(r.action, PolicyAction::Replan);
        let expected = format!(" | replan {}/{}", u64::from(count) + 1, u32::MAX);
        assert!(r.reasoning.ends_with(&expected), "{}", r.reasoning);
    }
}

/// Every built-in's public `fix` is what the engine reports for a one-rule bundle.
#[test]
fn the_engines_fixes_are_the_conditions_own() {
    let params = json!({"min_size_gb": 1, "max_dbu": 5, "max_shuffle_gb": 1});
    let sigs = [
        sig(|_| {}),
        replan_sig(),
        sig(|v| {
            v["constraints"]["partition_by"] = json!([]);
            v["datasets"][0]["partition_column"] = Value::Null;
            v["datasets"][1]["partition_column"] = Value::Null;
        }),
        sig(|v| {
            v["constraints"]["partition_by"] = json!([]);
            v["datasets"][1]["partition_column"] = json!("dt");
            v["constraints"]["max_cost_dbu"] = json!(50);
            v["constraints"]["no_pii_raw"] = json!(false);
            v["target_layer"] = json!("gold");
        }),
    ];
    let catalog = Catalog::from_value(&json!({"datasets": {}})).unwrap();
    let mut checked = 0;
    for name in BUILTIN_NAMES {
        let rule = json!({"name": "r", "condition": name, "action": "replan",
            "fault_code": "X", "severity": "high", "message": "m", "remediation": ["x"],
            "min_size_gb": 1, "max_dbu": 5, "max_shuffle_gb": 1});
        let e = engine(vec![rule]);
        let rp = RuleParams {
            min_size_gb: params["min_size_gb"].as_f64(),
            max_dbu: params["max_dbu"].as_f64(),
            max_shuffle_gb: params["max_shuffle_gb"].as_f64(),
            ..RuleParams::default()
        };
        let cond = BuiltinCondition::build(name, &rp).unwrap();
        for s in &sigs {
            for cat in [None, Some(&catalog)] {
                let r = e.evaluate_with_catalog(s, cat, 0);
                if r.action != PolicyAction::Replan {
                    continue;
                }
                checked += 1;
                let ctx = EvalContext {
                    signature: s,
                    catalog: cat,
                };
                match cond.fix(&ctx) {
                    Fix::Patches { patches } => {
                        assert_eq!(r.patches, patches, "{name}");
                        assert!(r.manual_fixes.is_empty(), "{name}");
                    }
                    Fix::Manual { reason } => {
                        assert!(r.patches.is_empty(), "{name}");
                        assert_eq!(r.manual_fixes.len(), 1, "{name}");
                        assert_eq!(r.manual_fixes[0].reason, reason, "{name}");
                        assert_eq!(r.manual_fixes[0].code, "X");
                    }
                }
            }
        }
    }
    assert!(checked >= 20, "{checked}");
}

/// `n` copies of a manual-fix rule and of a partition rule, under distinct codes.
fn repeated(n: usize) -> PolicyEngine {
    let rules = (0..n)
        .flat_map(|i| {
            [
                json!({"name": format!("cost_{i}"), "condition": "cost_budget_exceeded",
                    "max_dbu": 5, "action": "replan", "fault_code": format!("COST_{i}"),
                    "severity": "high", "message": "c", "remediation": ["lower the ceiling"]}),
                json!({"name": format!("part_{i}"), "condition": "missing_partition",
                    "action": "replan", "fault_code": format!("PART_{i}"),
                    "severity": "high", "message": "p", "remediation": ["partition"]}),
            ]
        })
        .collect();
    engine(rules)
}

#[test]
fn many_faults_get_the_fixes_few_faults_get() {
    let s = sig(|v| {
        v["constraints"]["partition_by"] = json!([]);
        v["constraints"]["max_cost_dbu"] = json!(50);
    });
    let one = repeated(1).evaluate(&s, 0);
    assert_eq!(one.action, PolicyAction::Replan);
    assert_eq!(
        one.patches,
        [Patch::set(
            "constraints.partition_by",
            json!(["processing_date"])
        )]
    );
    assert_eq!(one.manual_fixes.len(), 1);
    // 2..24 faults: below and above the size from which fixes are cached
    for n in 1..=12 {
        let r = repeated(n).evaluate(&s, 0);
        assert_eq!(r.faults.len(), 2 * n);
        assert_eq!(r.patches, one.patches, "{n}");
        let codes: Vec<String> = r.manual_fixes.iter().map(|m| m.code.to_string()).collect();
        let expected: Vec<String> = (0..n).map(|i| format!("COST_{i}")).collect();
        assert_eq!(codes, expected, "{n}");
        assert!(
            r.manual_fixes
                .iter()
                .all(|m| m.reason == one.manual_fixes[0].reason),
            "{n}"
        );
        assert_eq!(r.interventions, ["lower the ceiling", "partition"], "{n}");
    }
}

#[test]
fn interventions_keep_first_occurrences_for_short_and_long_lists() {
    for n in [1, 3, 10, 20, 40, 100] {
        let rules: Vec<Value> = (0..n)
            .map(|i| {
                json!({"name": format!("r{i}"), "condition": "enforce_types_disabled",
                    "action": "replan", "fault_code": format!("T_{i}"), "severity": "high",
                    "message": "m", "remediation": [format!("step {}", i % 7), "common",
                        format!("own {i}")]})
            })
            .collect();
        let r = engine(rules).evaluate(&replan_sig(), 0);
        assert_eq!(r.faults.len(), n);
        let mut expected: Vec<String> = Vec::new();
        for f in &r.faults {
            for step in &f.remediation {
                if !expected.iter().any(|e| e == step) {
                    expected.push(step.to_string());
                }
            }
        }
        assert_eq!(r.interventions, expected, "{n}");
        assert_eq!(r.interventions.len(), n + 1 + n.min(7), "{n}");
    }
}

/// Fires always; its fix sets `constraints.partition_by` to the rule's `cols`.
#[derive(Debug)]
struct SetsPartition(Value);
impl Condition for SetsPartition {
    fn check(&self, _: &EvalContext<'_>) -> Result<Verdict, ConditionError> {
        Ok(Verdict::Fire)
    }
    fn fix(&self, _: &EvalContext<'_>) -> Fix {
        Fix::Patches {
            patches: vec![Patch::set("constraints.partition_by", self.0.clone())],
        }
    }
}

/// A plugin's partition patch before the built-in's: the built-in's is dropped only
/// when it is exactly equal.
#[test]
fn a_partition_patch_is_dropped_only_when_equal() {
    let mut reg = ConditionRegistry::with_builtins();
    reg.register(
        "sets_partition",
        |p: &RuleParams| -> Result<Box<dyn Condition>, ConditionError> {
            Ok(Box::new(SetsPartition(
                p.extra.get("cols").cloned().unwrap_or(Value::Null),
            )))
        },
    );
    let builtin = Patch::set("constraints.partition_by", json!(["processing_date"]));
    let cases = [
        (json!(["processing_date"]), true),
        (json!(["processing_date", "processing_date"]), false),
        (json!(["dt", "processing_date"]), false),
        (json!(["processing_date", "dt"]), false),
        (json!(["dt"]), false),
        (json!([]), false),
        (json!("processing_date"), false),
        (json!([1]), false),
    ];
    for (cols, dropped) in cases {
        let bundle = PolicyBundle::from_value_with(
            &json!({"version": "t", "rules": [
                {"name": "plugin", "condition": "sets_partition", "cols": cols,
                 "action": "replan", "fault_code": "PLUG", "severity": "high", "message": "p"},
                {"name": "hv", "condition": "missing_partition", "action": "replan",
                 "fault_code": "HV", "severity": "high", "message": "h"},
                {"name": "sens", "condition": "sensitive_without_partition", "action": "replan",
                 "fault_code": "SENS", "severity": "high", "message": "s"}
            ]}),
            &reg,
        )
        .unwrap();
        let e = PolicyEngine::from_bundle_with(bundle, &reg).unwrap();
        let r = e.evaluate(&replan_sig(), 0);
        assert_eq!(r.faults.len(), 3, "{cols}");
        let plugin = Patch::set("constraints.partition_by", cols.clone());
        let expected = if dropped {
            vec![plugin]
        } else {
            vec![plugin, builtin.clone()]
        };
        assert_eq!(r.patches, expected, "{cols}");
    }
}
