//! Properties: validators never panic on any input, and any set of valid (even
//! keyword-like) names yields code that every backend generates and that passes its own
//! static validation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_codegen::validate::{jinja, python, sql};
use cfa_codegen::{BackendRegistry, validate_artifact};
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::{Catalog, StateSignature};
use proptest::prelude::*;
use serde_json::Value;

fn assert_all_backends_pass(sig_v: &Value, cat_v: &Value) {
    let s = StateSignature::from_value(sig_v).unwrap();
    let cat = Catalog::from_value(cat_v).unwrap();
    let plan = ExecutionPlanner::default().plan(&s, Some(&cat)).unwrap();
    for b in BackendRegistry::with_builtins().iter() {
        let a = b
            .generate(&plan, &s)
            .unwrap_or_else(|e| panic!("{}: {e}", b.name()));
        let r = validate_artifact(&a, &s);
        assert!(
            r.passed,
            "{} on {sig_v}: {:#?}\n{}",
            b.name(),
            r.faults,
            a.files[0].content
        );
    }
}

#[test]
fn keyword_like_names_are_quoted_everywhere() {
    let names: Vec<String> = [
        "order", "select", "from", "t", "s", "inner", "delta", "string", "group",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for layer in ["bronze", "silver", "gold"] {
        for aggregate in [false, true] {
            let (sig, cat) = common::build(&names, layer, true, aggregate, true);
            assert_all_backends_pass(&sig, &cat);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn validators_never_panic(text in ".{0,300}") {
        let s = common::sig(&common::ok_sig());
        let _ = sql::validate_sql(&text, &s);
        let _ = sql::validate_dbt_model(&text, &s);
        let _ = python::validate_pyspark(&text, &s);
        let _ = python::tokenize(&text);
        let _ = jinja::compile(&text);
    }

    #[test]
    fn validators_never_panic_on_code_like_text(text in "[a-z0-9_ '\"(){}%#*;.,=\\-\\n\\[\\]\\\\]{0,200}") {
        let s = common::sig(&common::ok_sig());
        let _ = sql::validate_sql(&text, &s);
        let _ = sql::validate_dbt_model(&text, &s);
        let _ = python::validate_pyspark(&text, &s);
    }

    #[test]
    fn valid_names_generate_code_that_passes_validation(
        set in prop::collection::btree_set("[a-z][a-z0-9]{0,10}", 9),
        layer in prop::sample::select(vec!["bronze", "silver", "gold"]),
        merge in any::<bool>(),
        aggregate in any::<bool>(),
        no_pii_raw in any::<bool>(),
    ) {
        let names: Vec<String> = set.into_iter().collect();
        let (sig, cat) = common::build(&names, layer, merge, aggregate, no_pii_raw);
        assert_all_backends_pass(&sig, &cat);
    }
}
