//! Properties: fixes really fix (over the conformance replan cases and a bundle with
//! codes of its own), decisions ignore dataset order, and nothing panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_policy::{BundleFormat, PolicyEngine, builtin, load_bundle, validate_bundle_value, yaml};
use cfa_types::{
    Catalog, DatasetClassification, DatasetRef, ExecutionContext, PolicyAction, PolicyResult,
    SignatureConstraints, StateSignature, TargetLayer,
};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};
use std::path::PathBuf;

fn root() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    )
}

fn conformance_signatures() -> Vec<(Option<String>, StateSignature)> {
    let path = root().join("policy/cases.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {} is required: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let bundle = v["bundle"].as_str().map(str::to_owned);
            (bundle, StateSignature::from_value(&v["signature"]).unwrap())
        })
        .collect()
}

fn engine_for(bundle: Option<&str>) -> PolicyEngine {
    match bundle {
        None => PolicyEngine::default(),
        Some(file) => {
            let text = std::fs::read_to_string(root().join("policy/bundles").join(file)).unwrap();
            PolicyEngine::from_bundle(
                load_bundle(&text, BundleFormat::from_path_str(file), file).unwrap(),
            )
            .unwrap()
        }
    }
}

/// Every replan fault whose fix is a patch stops firing once the patches are applied.
fn assert_patches_fix(
    engine: &PolicyEngine,
    sig: &StateSignature,
    catalog: Option<&Catalog>,
) -> bool {
    let r = engine.evaluate_with_catalog(sig, catalog, 0);
    if r.action != PolicyAction::Replan {
        assert!(r.patches.is_empty() && r.manual_fixes.is_empty());
        return false;
    }
    let fixed = sig.apply_patches(&r.patches).unwrap();
    let after = engine.evaluate_with_catalog(&fixed, catalog, 0);
    let manual: Vec<&str> = r.manual_fixes.iter().map(|m| m.code.as_str()).collect();
    for f in r
        .faults
        .iter()
        .filter(|f| f.mandatory_action == PolicyAction::Replan)
    {
        if manual.contains(&f.code.as_str()) {
            continue;
        }
        assert!(
            !after.fault_codes().contains(&f.code.as_str()),
            "{} still fires after {:?}",
            f.code,
            r.patches
        );
    }
    if r.manual_fixes.is_empty() {
        assert_ne!(
            after.action,
            PolicyAction::Replan,
            "{:?}",
            after.fault_codes()
        );
    }
    true
}

/// A bundle whose fault codes are nobody's but ours, every condition on replan.
const CUSTOM: &str = "\
version: custom-codes-1
rules:
  - {name: a, condition: pii_in_protected_layer, action: replan, fault_code: ZZ_ONE, severity: high, message: m, remediation: [x]}
  - {name: b, condition: pii_without_policy, action: replan, fault_code: ZZ_TWO, severity: high, message: m}
  - {name: c, condition: missing_partition, min_size_gb: 0.25, action: replan, fault_code: ZZ_THREE, severity: high, message: m}
  - {name: d, condition: sensitive_without_partition, action: replan, fault_code: ZZ_FOUR, severity: high, message: m}
  - {name: e, condition: missing_merge_key, action: replan, fault_code: ZZ_FIVE, severity: high, message: m}
  - {name: f, condition: enforce_types_disabled, action: replan, fault_code: ZZ_SIX, severity: high, message: m}
  - {name: g, condition: shuffle_budget_exceeded, max_shuffle_gb: 1, action: replan, fault_code: ZZ_SEVEN, severity: high, message: m}
  - {name: h, condition: cost_budget_exceeded, max_dbu: 10, action: replan, fault_code: ZZ_EIGHT, severity: high, message: m}
  - {name: i, condition: unauthorized_gold_write, action: replan, fault_code: ZZ_NINE, severity: high, message: m}
";

#[test]
fn patches_fix_every_patchable_replan_fault() {
    let sigs = conformance_signatures();
    let custom =
        PolicyEngine::from_bundle(load_bundle(CUSTOM, BundleFormat::Yaml, "custom.yaml").unwrap())
            .unwrap();
    let mut engines = std::collections::BTreeMap::new();
    let (mut replans, mut custom_replans, mut with_patches) = (0, 0, 0);
    for (bundle, sig) in &sigs {
        let engine = engines
            .entry(bundle.clone())
            .or_insert_with(|| engine_for(bundle.as_deref()));
        if assert_patches_fix(engine, sig, None) {
            replans += 1;
        }
        if assert_patches_fix(&custom, sig, None) {
            custom_replans += 1;
            with_patches += usize::from(!custom.evaluate(sig, 0).patches.is_empty());
        }
    }
    println!(
        "patch property: {replans} conformance replans, {custom_replans} custom-bundle replans ({with_patches} with patches)"
    );
    // evaluated at replan_count 0: the 407 replan cases plus guard cases that would replan
    assert!(replans >= 407, "{replans}");
    assert!(
        custom_replans > 500 && with_patches > 500,
        "{custom_replans} {with_patches}"
    );
}

fn weird_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" \u{1c}\u{a0}".to_owned()),
        "[a-z_]{1,8}",
        any::<String>(),
        Just("processing_date".to_owned()),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<u64>().prop_map(Number::from),
        any::<i64>().prop_map(Number::from),
        (0u32..200).prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        (-1.0f64..300.0).prop_filter_map("finite", Number::from_f64),
    ]
}

fn dataset() -> impl Strategy<Value = DatasetRef> {
    (
        weird_string(),
        prop::sample::select(DatasetClassification::ALL.to_vec()),
        number(),
        prop::collection::vec(weird_string(), 0..3),
        prop::option::of(weird_string()),
        prop::collection::vec(weird_string(), 0..2),
    )
        .prop_map(
            |(name, classification, size_gb, pii_columns, partition_column, merge_keys)| {
                DatasetRef {
                    name,
                    classification,
                    size_gb,
                    pii_columns,
                    partition_column,
                    merge_keys,
                }
            },
        )
}

fn custom_map() -> impl Strategy<Value = Map<String, Value>> {
    prop_oneof![
        Just(Map::new()),
        weird_string().prop_map(|s| {
            let mut m = Map::new();
            m.insert("approval_id".into(), Value::String(s));
            m
        }),
        Just(
            json!({"approval_id": 7})
                .as_object()
                .cloned()
                .unwrap_or_default()
        ),
    ]
}

fn signature() -> impl Strategy<Value = StateSignature> {
    (
        (
            weird_string(),
            weird_string(),
            prop::sample::select(TargetLayer::ALL.to_vec()),
        ),
        prop::collection::vec(dataset(), 0..5),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(weird_string(), 0..3),
        prop::option::of(number()),
        custom_map(),
    )
        .prop_map(
            |(
                (domain, intent, target_layer),
                datasets,
                (a, b, c),
                partition_by,
                max_cost_dbu,
                custom,
            )| {
                StateSignature {
                    domain,
                    intent,
                    target_layer,
                    datasets,
                    constraints: SignatureConstraints {
                        no_pii_raw: a,
                        merge_key_required: b,
                        enforce_types: c,
                        partition_by,
                        max_cost_dbu,
                        custom,
                    },
                    execution_context: ExecutionContext::default(),
                    intent_id: String::new(),
                    source_intent_raw: String::new(),
                }
            },
        )
}

fn engines() -> Vec<PolicyEngine> {
    let mut v = vec![PolicyEngine::default()];
    v.extend(builtin::names().map(|n| PolicyEngine::builtin(n).unwrap()));
    v.push(
        PolicyEngine::from_bundle(load_bundle(CUSTOM, BundleFormat::Yaml, "custom.yaml").unwrap())
            .unwrap(),
    );
    v
}

fn decision(
    r: &PolicyResult,
) -> (
    PolicyAction,
    Vec<String>,
    Vec<String>,
    Vec<cfa_types::Patch>,
) {
    (
        r.action,
        r.fault_codes().into_iter().map(str::to_owned).collect(),
        r.interventions.iter().map(ToString::to_string).collect(),
        r.patches.clone(),
    )
}

fn catalog_of(sig: &StateSignature) -> Catalog {
    let mut ds = Map::new();
    for d in &sig.datasets {
        ds.insert(d.name.clone(), serde_json::to_value(d).unwrap());
    }
    Catalog::from_value(&json!({ "datasets": ds })).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decision_ignores_dataset_order(sig in signature(), rot in 0usize..5, replan in 0u32..4) {
        let mut shuffled = sig.clone();
        shuffled.datasets.reverse();
        if !shuffled.datasets.is_empty() {
            let k = rot % shuffled.datasets.len();
            shuffled.datasets.rotate_left(k);
        }
        let cat = catalog_of(&sig);
        for e in engines() {
            prop_assert_eq!(decision(&e.evaluate(&sig, replan)), decision(&e.evaluate(&shuffled, replan)));
            prop_assert_eq!(
                decision(&e.evaluate_with_catalog(&sig, Some(&cat), replan)),
                decision(&e.evaluate_with_catalog(&shuffled, Some(&cat), replan))
            );
        }
    }

    #[test]
    fn evaluate_never_panics_and_fixes_hold(sig in signature(), replan in any::<u32>(), with_cat in any::<bool>()) {
        let cat = catalog_of(&sig);
        let cat = with_cat.then_some(&cat);
        for e in engines() {
            let r = e.evaluate_with_catalog(&sig, cat, replan);
            prop_assert_eq!(r.replan_count, replan);
            prop_assert!(r.interventions.is_empty() || r.action == PolicyAction::Replan);
            if replan == 0 {
                assert_patches_fix(&e, &sig, cat);
            }
        }
    }

    #[test]
    fn bundle_validation_never_panics(v in arb_json()) {
        let _ = validate_bundle_value(&v);
        let wrapped = json!({"policy_bundle": v.clone()});
        let _ = validate_bundle_value(&wrapped);
        let with_rules = json!({"version": "v", "rules": [v]});
        let _ = validate_bundle_value(&with_rules);
    }

    #[test]
    fn yaml_and_json_loading_never_panic(text in any::<String>()) {
        let _ = yaml::parse_value(&text);
        let _ = load_bundle(&text, BundleFormat::Yaml, "fuzz.yaml");
        let _ = load_bundle(&text, BundleFormat::Json, "fuzz.json");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        weird_string().prop_map(Value::String),
        prop::sample::select(vec![
            "missing_partition",
            "block",
            "replan",
            "high",
            "semantic",
            "gold",
            "rules",
            "version",
            "name",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "policy_bundle",
                        "version",
                        "rules",
                        "name",
                        "condition",
                        "action",
                        "fault_code",
                        "severity",
                        "family",
                        "message",
                        "remediation",
                        "target_layer",
                        "min_size_gb",
                        "max_dbu",
                        "max_shuffle_gb",
                        "other",
                    ]),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
