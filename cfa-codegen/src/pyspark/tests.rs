//! The generation cache: a hit is the artifact the uncached path generates, other plans
//! or signatures miss, a hostile input is refused every time, and the cache is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::error::UnsafeIdentifier;
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::Catalog;
use serde_json::{Value, json};

fn catalog_value() -> Value {
    json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }})
}

fn signature_values() -> Vec<Value> {
    let ok = cfa_test_support::ok_signature();
    let mut gold = ok.clone();
    gold["intent"] = json!("aggregate_and_persist");
    gold["target_layer"] = json!("gold");
    let bronze = json!({"domain": "fiscal", "intent": "ingest", "target_layer": "bronze",
        "datasets": [{"name": "clientes", "pii_columns": ["cpf"], "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": true, "partition_by": []}});
    vec![ok, gold, bronze]
}

/// (plan, signature) pairs, with and without catalog columns.
fn inputs() -> Vec<(ExecutionPlan, StateSignature)> {
    let cat = Catalog::from_value(&catalog_value()).unwrap();
    let mut out = Vec::new();
    for v in signature_values() {
        let sig = StateSignature::from_value(&v).unwrap();
        for c in [Some(&cat), None] {
            if let Ok(plan) = ExecutionPlanner::default().plan(&sig, c) {
                out.push((plan, sig.clone()));
            }
        }
    }
    assert!(out.len() >= 4, "only {} plans", out.len());
    out
}

fn holds<const N: usize>(
    cache: &SlotCache<Generated, N>,
    plan: &ExecutionPlan,
    sig: &StateSignature,
) -> bool {
    cache
        .get(generation_slot(plan, sig), |g| {
            same_code_plan(&g.plan, plan) && g.signature.matches(sig)
        })
        .is_some()
}

#[test]
fn a_hit_is_the_artifact_the_uncached_path_generates() {
    let cache: SlotCache<Generated, 32> = SlotCache::new();
    for (plan, sig) in inputs() {
        let want = generate_uncached(&plan, &sig).unwrap();
        assert!(!holds(&cache, &plan, &sig));
        assert_eq!(generate_cached(&cache, &plan, &sig).unwrap(), want);
        assert!(holds(&cache, &plan, &sig));
        assert_eq!(generate_cached(&cache, &plan, &sig).unwrap(), want);
        // Through the trait, with the shared cache.
        assert_eq!(
            PySparkBackend::default().generate(&plan, &sig).unwrap(),
            want
        );
        assert_eq!(
            PySparkBackend::default().generate(&plan, &sig).unwrap(),
            want
        );
        // Shared: the same artifact, and a hit hands out the handle the cache holds.
        let backend = PySparkBackend::default();
        let first = backend.generate_shared(&plan, &sig).unwrap();
        assert_eq!(*first, want);
        let again = backend.generate_shared(&plan, &sig).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert_eq!(backend.generate(&plan, &sig).unwrap(), want);
    }
}

#[test]
fn the_default_shared_generation_is_the_owned_one() {
    struct Owned;
    impl Backend for Owned {
        fn name(&self) -> &str {
            "owned"
        }
        fn capabilities(&self) -> crate::backend::BackendCapabilities {
            PySparkBackend::default().capabilities()
        }
        fn generate(
            &self,
            plan: &ExecutionPlan,
            signature: &StateSignature,
        ) -> Result<GeneratedArtifact, CodegenError> {
            generate_uncached(plan, signature)
        }
        fn validate(
            &self,
            artifact: &GeneratedArtifact,
            signature: &StateSignature,
        ) -> StaticValidationResult {
            PySparkBackend::default().validate(artifact, signature)
        }
    }
    for (plan, sig) in inputs() {
        let shared = Owned.generate_shared(&plan, &sig).unwrap();
        assert_eq!(*shared, generate_uncached(&plan, &sig).unwrap());
        // A new artifact each time: nothing is cached.
        assert!(!std::sync::Arc::ptr_eq(
            &shared,
            &Owned.generate_shared(&plan, &sig).unwrap()
        ));
    }
}

#[test]
fn other_plans_and_signatures_miss() {
    let cache: SlotCache<Generated, 32> = SlotCache::new();
    let all = inputs();
    let (plan, sig) = &all[0];
    let first = generate_cached(&cache, plan, sig).unwrap();
    // A signature that changes the code without changing the plan: which input is
    // broadcast depends on the dataset sizes.
    let mut resized = sig.clone();
    let mut sizes = serde_json::to_value(&resized).unwrap();
    sizes["datasets"][0]["size_gb"] = json!(0.01);
    resized = StateSignature::from_value(&sizes).unwrap();
    assert_ne!(resized, *sig);
    assert!(!holds(&cache, plan, &resized));
    let got = generate_cached(&cache, plan, &resized).unwrap();
    assert_eq!(got, generate_uncached(plan, &resized).unwrap());
    // Every other input.
    for (p, s) in &all[1..] {
        assert!(!holds(&cache, p, s));
        let got = generate_cached(&cache, p, s).unwrap();
        assert_eq!(got, generate_uncached(p, s).unwrap());
        assert_ne!(got, first);
    }
    // A plan that differs in one column only.
    let mut renamed = plan.clone();
    if let Some(cols) = renamed.datasets[0].columns.as_mut() {
        cols.push("extra_col".into());
    }
    renamed.target = format!("{}_v2", renamed.target);
    assert!(!holds(&cache, &renamed, sig));
    assert_eq!(
        generate_cached(&cache, &renamed, sig),
        generate_uncached(&renamed, sig)
    );
}

#[test]
fn a_hostile_input_is_refused_every_time() {
    let cache: SlotCache<Generated, 32> = SlotCache::new();
    for (plan, sig) in inputs() {
        generate_cached(&cache, &plan, &sig).unwrap();
        let mut hostile = plan.clone();
        hostile.target = "x; DROP TABLE y".into();
        for _ in 0..2 {
            let got = generate_cached(&cache, &hostile, &sig);
            assert!(
                matches!(
                    got,
                    Err(CodegenError::UnsafeIdentifier(UnsafeIdentifier { .. }))
                ),
                "{got:?}"
            );
            assert_eq!(got, generate_uncached(&hostile, &sig));
            assert!(!holds(&cache, &hostile, &sig));
        }
        let mut hostile_sig = sig.clone();
        hostile_sig.datasets[0]
            .pii_columns
            .push("cpf\"); import os #".into());
        for _ in 0..2 {
            let got = generate_cached(&cache, &plan, &hostile_sig);
            assert!(got.is_err(), "{got:?}");
            assert_eq!(got, generate_uncached(&plan, &hostile_sig));
        }
    }
}

#[test]
fn the_generation_cache_stays_bounded() {
    let cache: SlotCache<Generated, 8> = SlotCache::new();
    let (plan, sig) = inputs().remove(0);
    for n in 0..300 {
        let mut p = plan.clone();
        p.target = format!("target_{n}");
        let got = generate_cached(&cache, &p, &sig).unwrap();
        if n % 50 == 0 {
            assert_eq!(got, generate_uncached(&p, &sig).unwrap());
        }
        assert!(cache.occupied() <= 8);
    }
}

#[test]
fn fields_generation_does_not_read_share_an_entry_and_the_rest_miss() {
    let cache: SlotCache<Generated, 32> = SlotCache::new();
    for (plan, sig) in inputs() {
        let first = generate_cached(&cache, &plan, &sig).unwrap();
        // Per-request fields: not read by generation, so the same code, from the cache.
        let mut v = serde_json::to_value(&sig).unwrap();
        v["intent_id"] = json!("another-intent-id");
        v["source_intent_raw"] = json!("some other words");
        v["intent"] = json!("something_else");
        v["execution_context"]["policy_bundle_version"] = json!("v9");
        v["constraints"]["no_pii_raw"] = json!(!sig.constraints.no_pii_raw);
        let other = StateSignature::from_value(&v).unwrap();
        assert_ne!(other, sig);
        assert_eq!(generate_uncached(&plan, &other).unwrap(), first);
        assert!(holds(&cache, &plan, &other));
        assert_eq!(generate_cached(&cache, &plan, &other).unwrap(), first);
        // Another request's plan of the same signature: same code, from the cache.
        let mut again = plan.clone();
        again.intent_id = "another-intent-id".into();
        assert_eq!(generate_uncached(&again, &sig).unwrap(), first);
        assert!(holds(&cache, &again, &sig));
        assert_eq!(generate_cached(&cache, &again, &sig).unwrap(), first);
        // What generation reads: each change misses.
        let mut changed = Vec::new();
        let mut c = sig.clone();
        c.domain.push_str("_x");
        changed.push(c);
        let mut c = sig.clone();
        c.constraints.partition_by.push("processing_date".into());
        changed.push(c);
        let mut c = sig.clone();
        c.datasets[0].merge_keys.push("extra_key".into());
        changed.push(c);
        let mut c = sig.clone();
        c.datasets[0].pii_columns.push("extra_pii".into());
        changed.push(c);
        for c in changed {
            assert!(!holds(&cache, &plan, &c));
            assert_eq!(
                generate_cached(&cache, &plan, &c),
                generate_uncached(&plan, &c)
            );
        }
    }
}
