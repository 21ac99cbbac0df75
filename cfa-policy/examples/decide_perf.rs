//! The decision paths of `cargo xtask bench` (approve, 3-fault replan, block, a
//! 1,000-rule bundle) on the benches' fixtures, for A/B work on the engine (not a
//! gate; the `benches` crate owns those).
//!
//! `cargo run --release -p cfa-policy --example decide_perf` prints p50/p99 per path;
//! `... --example decide_perf -- CASE N` runs `N` decisions of one case (`approve`,
//! `replan`, `block`, `big`) and nothing else, for `valgrind --tool=callgrind` or
//! `--tool=dhat` instruction and allocation counts. `... -- builtin N` builds the
//! `prod-v1` bundle engine `N` times, and `... -- builtin-replan N` also makes one
//! replan decision with each (an engine's build cost, and its first decision's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use cfa_policy::{PolicyEngine, synth};
use cfa_types::{PolicyAction, StateSignature};
use std::hint::black_box;
use std::time::Instant;

/// `benches/src/fixtures.rs::OK_SIGNATURE` (the reference `sigs/ok.json`).
const OK: &str = r#"{"domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
  "datasets": [
    {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]}],
  "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true, "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
  "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01", "context_registry_version_id": "v_initial"},
  "intent_id": "11111111-2222-3333-4444-555555555555", "source_intent_raw": "Join NFe with Clientes and persist to Silver"}"#;

fn median_ns(
    engine: &PolicyEngine,
    sig: &StateSignature,
    iters: usize,
    batch: usize,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(engine.evaluate(black_box(sig), 0));
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn main() {
    let approve = StateSignature::from_json_str(OK).unwrap();
    let mut replan = approve.clone();
    replan.constraints.partition_by.clear();
    replan.constraints.enforce_types = false;
    let mut block = approve.clone();
    block.constraints.no_pii_raw = false;
    let default = PolicyEngine::default();
    let big = PolicyEngine::from_bundle(synth::generated_bundle(1000)).unwrap();
    assert_eq!(default.evaluate(&approve, 0).action, PolicyAction::Approve);
    assert_eq!(default.evaluate(&replan, 0).action, PolicyAction::Replan);
    assert_eq!(default.evaluate(&replan, 0).faults.len(), 3);
    assert_eq!(default.evaluate(&block, 0).action, PolicyAction::Block);
    let cases: [(&str, &PolicyEngine, &StateSignature); 4] = [
        ("approve", &default, &approve),
        ("replan", &default, &replan),
        ("block", &default, &block),
        ("big", &big, &approve),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [case, n] = args.as_slice() {
        let n: usize = n.parse().unwrap();
        if let Some(decide) = match case.as_str() {
            "builtin" => Some(false),
            "builtin-replan" => Some(true),
            _ => None,
        } {
            for _ in 0..n {
                let engine = black_box(PolicyEngine::builtin("prod-v1").unwrap());
                if decide {
                    black_box(engine.evaluate(black_box(&replan), 0));
                }
            }
            return;
        }
        let (_, engine, sig) = cases.iter().find(|(c, _, _)| c == case).unwrap();
        for _ in 0..n {
            black_box(engine.evaluate(black_box(sig), 0));
        }
        return;
    }
    for (case, engine, sig) in cases {
        let (iters, batch) = if case == "big" {
            (2_000, 10)
        } else {
            (20_000, 100)
        };
        let (p50, p99) = median_ns(engine, sig, iters, batch);
        println!("{case:8} p50 {p50:9.1} ns  p99 {p99:9.1} ns  (mean of {batch}-call batches)");
    }
}
