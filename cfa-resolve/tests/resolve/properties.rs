//! Properties: no input panics, output is deterministic, and whole-word matching never
//! matches inside a word.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_resolve::{AlwaysReject, AutoApprove, NormalizerInput, RuleBasedNormalizer, confirm};
use cfa_types::Catalog;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn arb_catalog() -> impl Strategy<Value = Catalog> {
    prop::collection::vec(
        (
            "[a-zA-Z0-9_.é-]{0,8}",
            any::<bool>(),
            prop::option::of("[a-z_]{1,6}"),
            0u8..4,
        ),
        0..6,
    )
    .prop_map(|entries| {
        let mut ds = Map::new();
        for (name, pii, part, class) in entries {
            let class = ["public", "internal", "sensitive", "high_volume"][class as usize];
            ds.insert(
                name,
                json!({"classification": class, "size_gb": 1.5,
                       "pii_columns": if pii { json!(["email"]) } else { json!([]) },
                       "partition_column": part, "merge_keys": ["k"]}),
            );
        }
        Catalog::from_value(&json!({ "datasets": Value::Object(ds) })).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics_and_is_deterministic(text in "\\PC{0,80}", cat in arb_catalog(), strict in any::<bool>(), min in -1.0f64..2.0) {
        let n = RuleBasedNormalizer::english_and_portuguese();
        let mut input = NormalizerInput::new(&text, &cat, "id");
        if strict { input = input.strict(min); }
        let a = n.resolve(&input);
        let b = n.resolve(&input);
        prop_assert_eq!(&a, &b);
        prop_assert!(a.confidence >= 0.05 && a.confidence <= 0.99);
        for d in &a.signature.datasets {
            prop_assert_eq!(Some(d.clone()), cat.dataset_ref(&d.name));
        }
        let _ = confirm(&a, &AutoApprove);
        let _ = confirm(&a, &AlwaysReject);
        let _ = a.to_cli_value();
    }

    #[test]
    fn never_matches_inside_a_word(prefix in "[a-z0-9_]{1,4}", name in "[a-z][a-z0-9_]{0,6}", suffix in "[a-z0-9_]{1,4}") {
        prop_assume!(name != "load" && name != "please");
        let cat = Catalog::from_value(&json!({"datasets": {name.clone(): {}}})).unwrap();
        let n = RuleBasedNormalizer::default();
        for text in [format!("load {prefix}{name}"), format!("load {name}{suffix}"), format!("{prefix}{name}{suffix}")] {
            let r = n.resolve(&NormalizerInput::new(&text, &cat, "id"));
            prop_assert!(r.signature.datasets.is_empty(), "{} matched in {}", name, text);
        }
        let r = n.resolve(&NormalizerInput::new(&format!("load ({name}), please"), &cat, "id"));
        prop_assert_eq!(r.signature.datasets.len(), 1);
    }

    #[test]
    fn layer_keywords_need_a_word_start(prefix in "[a-z0-9_]{1,4}") {
        let cat = Catalog::empty();
        let n = RuleBasedNormalizer::default();
        for kw in ["gold", "master", "curated", "final", "bronze", "raw", "ingest", "landing"] {
            let r = n.resolve(&NormalizerInput::new(&format!("{prefix}{kw}"), &cat, "id"));
            // Only a word starting with a keyword counts; `prefix` may itself start one.
            let starts_with_kw = ["gold", "master", "curated", "final", "bronze", "raw", "ingest", "landing", "silver", "refined", "trusted", "join", "reconcil"]
                .iter().any(|k| format!("{prefix}{kw}").starts_with(k));
            if !starts_with_kw {
                prop_assert_eq!(r.signature.target_layer, cfa_types::TargetLayer::Silver);
            }
        }
    }
}
