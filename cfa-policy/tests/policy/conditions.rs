//! Unit behaviour of every condition, the B7 semantics, fixes, the replan cap,
//! plugins and rule descriptions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_policy::{
    BundleFormat, Condition, ConditionError, ConditionRegistry, EvalContext, PolicyBundle,
    PolicyEngine, RuleParams, Verdict, load_bundle, load_bundle_with,
};
use cfa_types::{Catalog, Fix, Patch, PolicyAction, StateSignature};
use serde_json::{Value, json};

type Edit = Box<dyn Fn(&mut Value)>;

fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
       "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
       "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["email", "cpf"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
       "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
    }}))
    .unwrap()
}

/// `ok_sig` with JSON-pointer-ish edits applied.
fn sig(edit: impl FnOnce(&mut Value)) -> StateSignature {
    let mut v = ok_sig();
    edit(&mut v);
    StateSignature::from_value(&v).unwrap()
}

/// An engine with one rule using `condition` and extra rule keys.
fn one_rule(condition: &str, action: &str, extra: Value) -> PolicyEngine {
    let mut rule = json!({"name": "r", "condition": condition, "action": action,
        "fault_code": "X_CODE", "severity": "high", "message": "m.", "remediation": ["do it"]});
    if let (Value::Object(r), Value::Object(e)) = (&mut rule, extra) {
        r.extend(e);
    }
    let bundle = PolicyBundle::from_value(&json!({"version": "t", "rules": [rule]})).unwrap();
    PolicyEngine::from_bundle(bundle).unwrap()
}

fn fires(engine: &PolicyEngine, s: &StateSignature, catalog: Option<&Catalog>) -> bool {
    !engine
        .evaluate_with_catalog(s, catalog, 0)
        .faults
        .is_empty()
}

#[test]
fn default_engine_approves_ok_signature_without_allocating_faults() {
    let e = PolicyEngine::default();
    assert_eq!(e.version(), "v1.0");
    assert_eq!(e.rules().len(), 7);
    let r = e.evaluate(&sig(|_| {}), 0);
    assert_eq!(r.action, PolicyAction::Approve);
    assert_eq!(r.reasoning, "All rules passed. Execution approved.");
    assert!(r.faults.is_empty() && r.interventions.is_empty() && r.patches.is_empty());
}

#[test]
fn engines_and_registries_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<PolicyEngine>();
    assert_send_sync::<ConditionRegistry>();
}

#[test]
fn pii_conditions() {
    let raw = |layer: &'static str| {
        sig(move |v| {
            v["constraints"]["no_pii_raw"] = json!(false);
            v["target_layer"] = json!(layer);
        })
    };
    let protected = one_rule("pii_in_protected_layer", "replan", json!({}));
    let any = one_rule("pii_without_policy", "block", json!({}));
    assert!(fires(&protected, &raw("silver"), None));
    assert!(fires(&protected, &raw("gold"), None));
    assert!(!fires(&protected, &raw("bronze"), None));
    assert!(fires(&any, &raw("bronze"), None));
    // no PII columns: nothing fires
    let no_pii = sig(|v| {
        v["constraints"]["no_pii_raw"] = json!(false);
        v["datasets"][1]["pii_columns"] = json!([]);
    });
    assert!(!fires(&protected, &no_pii, None) && !fires(&any, &no_pii, None));
    assert!(!fires(&any, &sig(|_| {}), None));
}

#[test]
fn target_layer_narrows_every_condition() {
    let gold_only = one_rule(
        "pii_in_protected_layer",
        "block",
        json!({"target_layer": "gold"}),
    );
    let raw = |layer: &'static str| {
        sig(move |v| {
            v["constraints"]["no_pii_raw"] = json!(false);
            v["target_layer"] = json!(layer);
        })
    };
    assert!(fires(&gold_only, &raw("gold"), None));
    assert!(
        !fires(&gold_only, &raw("silver"), None),
        "B7: target_layer narrows, never widens"
    );
    assert!(!fires(&gold_only, &raw("bronze"), None));
    let merge_silver = one_rule(
        "missing_merge_key",
        "block",
        json!({"target_layer": "silver"}),
    );
    let no_merge = |layer: &'static str| {
        sig(move |v| {
            v["constraints"]["merge_key_required"] = json!(false);
            v["target_layer"] = json!(layer);
        })
    };
    assert!(fires(&merge_silver, &no_merge("silver"), None));
    assert!(!fires(&merge_silver, &no_merge("gold"), None));
    let part_bronze = one_rule(
        "missing_partition",
        "replan",
        json!({"target_layer": "bronze"}),
    );
    let unpartitioned = |layer: &'static str| {
        sig(move |v| {
            v["constraints"]["partition_by"] = json!([]);
            v["target_layer"] = json!(layer);
        })
    };
    assert!(fires(&part_bronze, &unpartitioned("bronze"), None));
    assert!(!fires(&part_bronze, &unpartitioned("silver"), None));
    // compliance-strict's gold-only rule no longer fires on silver
    let cs = PolicyEngine::builtin("compliance-strict-v1").unwrap();
    let codes = cs.evaluate(&raw("silver"), 0).fault_codes().join(",");
    assert!(
        !codes.contains("GOVERNANCE_PII_IN_GOLD_FORBIDDEN"),
        "{codes}"
    );
    let codes = cs.evaluate(&raw("gold"), 0).fault_codes().join(",");
    assert!(
        codes.contains("GOVERNANCE_PII_IN_GOLD_FORBIDDEN"),
        "{codes}"
    );
}

#[test]
fn partition_conditions() {
    let mp = one_rule("missing_partition", "replan", json!({"min_size_gb": 10}));
    let internal = |size: Value| {
        sig(move |v| {
            v["constraints"]["partition_by"] = json!([]);
            v["datasets"] = json!([{"name": "a", "classification": "internal", "size_gb": size}]);
        })
    };
    assert!(fires(&mp, &internal(json!(10)), None), ">= at the boundary");
    assert!(!fires(&mp, &internal(json!(9.99)), None));
    let default_min = one_rule("missing_partition", "replan", json!({}));
    assert!(fires(&default_min, &internal(json!(1.0)), None));
    assert!(!fires(&default_min, &internal(json!(0.99)), None));
    let sens = |class: &'static str| {
        sig(move |v| {
            v["constraints"]["partition_by"] = json!([]);
            v["datasets"] = json!([{"name": "a", "classification": class, "size_gb": 0}]);
        })
    };
    assert!(fires(&default_min, &sens("sensitive"), None));
    assert!(fires(&default_min, &sens("high_volume"), None));
    let swp = one_rule("sensitive_without_partition", "replan", json!({}));
    assert!(fires(&swp, &sens("sensitive"), None));
    assert!(!fires(&swp, &sens("high_volume"), None));
    // default rule 3 looks at high_volume only
    let d = PolicyEngine::default();
    assert_eq!(
        d.evaluate(&sens("high_volume"), 0).fault_codes(),
        ["FINOPS_MISSING_TEMPORAL_PREDICATE"]
    );
    assert_eq!(
        d.evaluate(&sens("sensitive"), 0).fault_codes(),
        ["FINOPS_SENSITIVE_WITHOUT_PARTITION"]
    );
    assert!(d.evaluate(&internal(json!(5000)), 0).faults.is_empty());
    // prod-v1 differs from the defaults exactly there (docs/compatibility.md#built-in-bundles)
    let prod = PolicyEngine::builtin("prod-v1").unwrap();
    assert_eq!(
        prod.evaluate(&sens("sensitive"), 0).fault_codes(),
        [
            "FINOPS_MISSING_TEMPORAL_PREDICATE",
            "FINOPS_SENSITIVE_WITHOUT_PARTITION"
        ]
    );
    assert_eq!(
        prod.evaluate(&internal(json!(2)), 0).action,
        PolicyAction::Replan
    );
}

#[test]
fn merge_and_types_conditions() {
    let mk = one_rule("missing_merge_key", "block", json!({}));
    let et = one_rule("enforce_types_disabled", "replan", json!({}));
    let off = |layer: &'static str| {
        sig(move |v| {
            v["constraints"]["merge_key_required"] = json!(false);
            v["constraints"]["enforce_types"] = json!(false);
            v["target_layer"] = json!(layer);
        })
    };
    assert!(fires(&mk, &off("gold"), None) && fires(&et, &off("gold"), None));
    assert!(!fires(&mk, &off("bronze"), None) && !fires(&et, &off("bronze"), None));
}

#[test]
fn cost_budget_rules_are_the_references() {
    let with = |cost: Value| sig(move |v| v["constraints"]["max_cost_dbu"] = cost);
    let ceiling = one_rule("cost_budget_exceeded", "block", json!({}));
    assert!(fires(&ceiling, &with(json!(0)), None));
    assert!(fires(&ceiling, &with(json!(0.0)), None));
    assert!(!fires(&ceiling, &with(json!(0.5)), None));
    assert!(
        !fires(&ceiling, &with(Value::Null), None),
        "a null ceiling never fires"
    );
    let budget = one_rule("cost_budget_exceeded", "block", json!({"max_dbu": 50}));
    assert!(
        !fires(&budget, &with(json!(50)), None),
        "50 does not exceed 50"
    );
    assert!(fires(&budget, &with(json!(50.01)), None));
    assert!(
        !fires(&budget, &with(json!(0)), None),
        "with a budget, 0 does not fire"
    );
    assert!(!fires(&budget, &with(Value::Null), None));
}

#[test]
fn schema_mismatch_checks_the_catalog_and_fails_closed_without_one() {
    let sm = one_rule("schema_mismatch", "block", json!({}));
    let cat = catalog();
    let r = sm.evaluate(&sig(|_| {}), 0);
    assert_eq!(r.action, PolicyAction::Block);
    assert!(
        r.faults[0].message.contains("no catalog was given"),
        "{}",
        r.faults[0].message
    );
    // pii_columns compare as sets
    assert!(!fires(&sm, &sig(|_| {}), Some(&cat)));
    let cases: [(&str, Edit); 4] = [
        (
            "not in the catalog",
            Box::new(|v| v["datasets"][0]["name"] = json!("ghost")),
        ),
        (
            "classified",
            Box::new(|v| v["datasets"][0]["classification"] = json!("internal")),
        ),
        (
            "pii_columns",
            Box::new(|v| v["datasets"][1]["pii_columns"] = json!(["cpf"])),
        ),
        (
            "partition_column",
            Box::new(|v| v["datasets"][1]["partition_column"] = json!("day")),
        ),
    ];
    for (needle, edit) in cases {
        let r = sm.evaluate_with_catalog(&sig(|v| edit(v)), Some(&cat), 0);
        assert_eq!(r.fault_codes(), ["X_CODE"], "{needle}");
        assert!(
            r.faults[0].message.starts_with("m. ("),
            "{}",
            r.faults[0].message
        );
        assert!(
            r.faults[0].message.contains(needle),
            "{}",
            r.faults[0].message
        );
    }
}

#[test]
fn shuffle_budget() {
    let sb = one_rule("shuffle_budget_exceeded", "replan", json!({}));
    let two = |a: f64, b: f64, parts: Value| {
        sig(move |v| {
            v["datasets"][0]["size_gb"] = json!(a);
            v["datasets"][1]["size_gb"] = json!(b);
            v["constraints"]["partition_by"] = parts;
        })
    };
    assert!(fires(&sb, &two(60.0, 50.0, json!([])), None));
    assert!(
        !fires(&sb, &two(50.0, 50.0, json!([])), None),
        "100 is not above 100"
    );
    assert!(
        !fires(&sb, &two(600.0, 500.0, json!(["d"])), None),
        "a partition filter bounds the shuffle"
    );
    let single = sig(|v| {
        v["datasets"] = json!([{"name": "a", "size_gb": 5000}]);
        v["constraints"]["partition_by"] = json!([]);
    });
    assert!(!fires(&sb, &single, None), "one dataset shuffles nothing");
    let tight = one_rule(
        "shuffle_budget_exceeded",
        "replan",
        json!({"max_shuffle_gb": 10}),
    );
    assert!(fires(&tight, &two(6.0, 5.0, json!([])), None));
    assert!(!fires(&tight, &two(5.0, 5.0, json!([])), None));
    let bad = PolicyBundle::from_value(&json!({"version": "t", "rules": [{"name": "r",
        "condition": "shuffle_budget_exceeded", "action": "block", "fault_code": "C", "severity": "high",
        "message": "m", "max_shuffle_gb": "lots"}]}))
    .unwrap_err();
    assert_eq!(
        bad[0].to_string(),
        "policy_bundle.rules[0].max_shuffle_gb: must be a non-negative number"
    );
}

#[test]
fn unauthorized_gold_write() {
    let ug = one_rule("unauthorized_gold_write", "block", json!({}));
    let gold = |custom: Value| {
        sig(move |v| {
            v["target_layer"] = json!("gold");
            v["constraints"]["custom"] = custom;
        })
    };
    assert!(fires(&ug, &gold(json!({})), None));
    assert!(fires(&ug, &gold(json!({"approval_id": "  "})), None));
    assert!(fires(&ug, &gold(json!({"approval_id": null})), None));
    assert!(!fires(&ug, &gold(json!({"approval_id": "CHG-1"})), None));
    assert!(!fires(&ug, &sig(|_| {}), None), "silver needs no approval");
}

#[test]
fn replan_returns_patches_and_manual_fixes() {
    // enforce_types off + sensitive without partition under the defaults: replan
    let s = sig(|v| {
        v["constraints"]["enforce_types"] = json!(false);
        v["constraints"]["partition_by"] = json!([]);
        v["datasets"][1]["partition_column"] = json!("region");
    });
    let r = PolicyEngine::default().evaluate(&s, 0);
    assert_eq!(r.action, PolicyAction::Replan);
    assert_eq!(
        r.fault_codes(),
        [
            "FINOPS_MISSING_TEMPORAL_PREDICATE",
            "FINOPS_SENSITIVE_WITHOUT_PARTITION",
            "CONTRACT_TYPE_ENFORCEMENT_DISABLED"
        ]
    );
    assert_eq!(
        r.reasoning,
        "action=replan | faults=[FINOPS_MISSING_TEMPORAL_PREDICATE; FINOPS_SENSITIVE_WITHOUT_PARTITION; CONTRACT_TYPE_ENFORCEMENT_DISABLED] | replan 1/3"
    );
    // each partition rule proposes the columns of the datasets that triggered it
    assert_eq!(
        r.patches,
        [
            Patch::set("constraints.partition_by", json!(["processing_date"])),
            Patch::set("constraints.partition_by", json!(["region"])),
            Patch::set("constraints.enforce_types", json!(true)),
        ]
    );
    assert!(r.manual_fixes.is_empty());
    let fixed = s.apply_patches(&r.patches).unwrap();
    assert_eq!(
        PolicyEngine::default().evaluate(&fixed, 1).action,
        PolicyAction::Approve
    );

    // with a catalog, the catalog's column wins and duplicates collapse
    let mp = one_rule("missing_partition", "replan", json!({}));
    let s2 = sig(|v| {
        v["constraints"]["partition_by"] = json!([]);
        v["datasets"][0]["partition_column"] = json!(null);
    });
    let r = mp.evaluate_with_catalog(&s2, Some(&catalog()), 0);
    assert_eq!(
        r.patches,
        [Patch::set(
            "constraints.partition_by",
            json!(["processing_date"])
        )]
    );

    // no partition column anywhere: a manual fix naming the dataset
    let s3 = sig(|v| {
        v["constraints"]["partition_by"] = json!([]);
        v["datasets"] =
            json!([{"name": "raw_events", "classification": "high_volume", "size_gb": 10}]);
    });
    let r = mp.evaluate(&s3, 0);
    assert_eq!(r.action, PolicyAction::Replan);
    assert!(r.patches.is_empty());
    assert_eq!(r.manual_fixes.len(), 1);
    assert_eq!(r.manual_fixes[0].code, "X_CODE");
    assert_eq!(
        r.manual_fixes[0].reason,
        "dataset raw_events has no partition_column in the catalog; declare constraints.partition_by"
    );

    // a replan cost rule has no safe patch
    let cost = one_rule("cost_budget_exceeded", "replan", json!({"max_dbu": 10}));
    let r = cost.evaluate(&sig(|_| {}), 0);
    assert_eq!(r.action, PolicyAction::Replan);
    assert!(r.patches.is_empty());
    assert!(
        r.manual_fixes[0].reason.contains("10.0 DBU"),
        "{}",
        r.manual_fixes[0].reason
    );
}

#[test]
fn approve_and_block_carry_no_fixes() {
    let s = sig(|v| v["constraints"]["no_pii_raw"] = json!(false));
    let r = PolicyEngine::default().evaluate(&s, 0);
    assert_eq!(r.action, PolicyAction::Block);
    assert!(r.interventions.is_empty() && r.patches.is_empty() && r.manual_fixes.is_empty());
    assert!(r.reasoning.ends_with(" | TERMINAL"));
    let note = one_rule("enforce_types_disabled", "approve", json!({}));
    let r = note.evaluate(
        &sig(|v| v["constraints"]["enforce_types"] = json!(false)),
        0,
    );
    assert_eq!(r.action, PolicyAction::Approve);
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.reasoning, "action=approve | faults=[X_CODE]");
    assert!(r.interventions.is_empty() && r.patches.is_empty());
}

#[test]
fn replan_cap_is_checked_first() {
    let s = sig(|v| v["constraints"]["no_pii_raw"] = json!(false));
    let r = PolicyEngine::default().evaluate(&s, 3);
    assert_eq!(r.action, PolicyAction::Block);
    assert_eq!(r.fault_codes(), ["POLICY_MAX_REPLAN_EXCEEDED"]);
    assert_eq!(r.faults[0].message, "Max 3 replans exceeded.");
    assert_eq!(
        r.faults[0].remediation,
        ["Review the intent manually and fix previous faults."]
    );
    assert_eq!(
        r.reasoning,
        "Replan limit (3) reached. Manual intervention required."
    );
    assert_eq!(r.replan_count, 3);
    let e5 = PolicyEngine::default().with_max_replan_attempts(5);
    assert_eq!(
        e5.evaluate(&s, 4).fault_codes(),
        [
            "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
            "GOVERNANCE_PII_WITHOUT_POLICY"
        ]
    );
    assert_eq!(
        e5.evaluate(&s, u32::MAX).reasoning,
        "Replan limit (5) reached. Manual intervention required."
    );
    let r = PolicyEngine::default().evaluate(
        &sig(|v| v["constraints"]["enforce_types"] = json!(false)),
        2,
    );
    assert!(r.reasoning.ends_with("| replan 3/3"), "{}", r.reasoning);
}

#[derive(Debug)]
struct IntentIs(String);
impl Condition for IntentIs {
    fn check(&self, ctx: &EvalContext<'_>) -> Result<Verdict, ConditionError> {
        match ctx.signature.intent.as_str() {
            "explode" => Err(ConditionError::new("lookup table unavailable")),
            "panic" => panic!("plugin bug"),
            i if i == self.0 => Ok(Verdict::Fire),
            _ => Ok(Verdict::Pass),
        }
    }
    fn fix(&self, _: &EvalContext<'_>) -> Fix {
        Fix::Patches {
            patches: vec![Patch::set("constraints.custom.reviewed", json!(true))],
        }
    }
}

fn plugin_registry() -> ConditionRegistry {
    let mut reg = ConditionRegistry::with_builtins();
    reg.register(
        "intent_is",
        |p: &RuleParams| -> Result<Box<dyn Condition>, ConditionError> {
            match p.extra.get("intent").and_then(Value::as_str) {
                Some(i) => Ok(Box::new(IntentIs(i.to_owned()))),
                None => Err(ConditionError::new("parameter 'intent' is required")),
            }
        },
    );
    reg
}

#[test]
fn plugins_register_by_name_and_fail_closed() {
    let reg = plugin_registry();
    assert!(reg.names().any(|n| n == "intent_is"));
    let text = "version: p\nrules:\n  - name: r\n    condition: intent_is\n    intent: reconciliation_and_persist\n    action: replan\n    fault_code: P\n    severity: info\n    message: plugin fired\n";
    let bundle = load_bundle_with(text, BundleFormat::Yaml, "p.yaml", &reg).unwrap();
    let e = PolicyEngine::from_bundle_with(bundle, &reg).unwrap();
    let r = e.evaluate(&sig(|_| {}), 0);
    assert_eq!(r.action, PolicyAction::Replan);
    assert_eq!(
        r.patches,
        [Patch::set("constraints.custom.reviewed", json!(true))]
    );
    for bad in ["explode", "panic"] {
        let r = e.evaluate(&sig(|v| v["intent"] = json!(bad)), 0);
        assert_eq!(r.action, PolicyAction::Block, "{bad}");
        assert_eq!(r.fault_codes(), ["POLICY_CONDITION_ERROR"]);
        assert!(
            r.faults[0].message.contains("intent_is"),
            "{}",
            r.faults[0].message
        );
    }
    // without the plugin the name is unknown, and the error lists the registry sorted
    let err = load_bundle(text, BundleFormat::Yaml, "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown condition 'intent_is'. Registered conditions: cost_budget_exceeded, enforce_types_disabled,"), "{err}");
    // a plugin rejecting its parameters is a build error
    let no_param = text.replace("    intent: reconciliation_and_persist\n", "");
    let bundle = load_bundle_with(&no_param, BundleFormat::Yaml, "p.yaml", &reg).unwrap();
    let err = PolicyEngine::from_bundle_with(bundle, &reg)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "condition 'intent_is' rejected its parameters: parameter 'intent' is required"
    );
    let unknown = reg
        .build("nope", &RuleParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        unknown.ends_with("shuffle_budget_exceeded, unauthorized_gold_write"),
        "{unknown}"
    );
    assert!(
        unknown.contains("intent_is, missing_merge_key"),
        "{unknown}"
    );
}

#[test]
fn rule_descriptions_include_family() {
    let e = PolicyEngine::builtin("eu-ai-act-v1").unwrap();
    let d = e.describe_rules();
    assert_eq!(d.len(), 8);
    assert_eq!(d[3].family, cfa_types::FaultFamily::StaticSafety);
    let art15 = e.explain("EU_AI_ACT_ART15_ACCURACY").unwrap();
    assert_eq!(art15.condition, "schema_mismatch");
    assert_eq!(art15.action, PolicyAction::Block);
    assert!(e.explain("NOPE").is_none());
    let json = serde_json::to_value(&d[0]).unwrap();
    for key in [
        "name",
        "action",
        "fault_code",
        "severity",
        "family",
        "condition",
        "message",
        "remediation",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let dflt = PolicyEngine::default().describe_rules();
    assert_eq!(dflt[2].condition, "high_volume_without_partition");
    assert_eq!(
        dflt[2].message,
        "High volume dataset without partition filter \u{2014} full scan risk."
    );
    assert!(dflt.iter().all(|r| r.family.as_str() == "semantic_faults"));
}

#[test]
fn equal_conditions_under_different_codes_each_get_their_manual_fix() {
    let bundle = PolicyBundle::from_value(&json!({"version": "t", "rules": [
        {"name": "a", "condition": "cost_budget_exceeded", "max_dbu": 5, "action": "replan",
         "fault_code": "COST_A", "severity": "high", "message": "a", "remediation": ["same"]},
        {"name": "b", "condition": "cost_budget_exceeded", "max_dbu": 5, "action": "replan",
         "fault_code": "COST_B", "severity": "high", "message": "b", "remediation": ["same", "other"]},
        {"name": "c", "condition": "enforce_types_disabled", "action": "replan",
         "fault_code": "TYPES_A", "severity": "high", "message": "c"},
        {"name": "d", "condition": "enforce_types_disabled", "action": "approve",
         "fault_code": "TYPES_B", "severity": "info", "message": "d"}
    ]}))
    .unwrap();
    let e = PolicyEngine::from_bundle(bundle).unwrap();
    let r = e.evaluate(
        &sig(|v| v["constraints"]["enforce_types"] = json!(false)),
        0,
    );
    assert_eq!(r.action, PolicyAction::Replan);
    assert_eq!(r.interventions, ["same", "other"]);
    let manual: Vec<&str> = r.manual_fixes.iter().map(|m| m.code.as_str()).collect();
    assert_eq!(manual, ["COST_A", "COST_B"]);
    assert_eq!(r.manual_fixes[0].reason, r.manual_fixes[1].reason);
    assert_eq!(
        r.patches,
        [Patch::set("constraints.enforce_types", json!(true))]
    );
}
