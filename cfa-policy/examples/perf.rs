//! A quick manual timing loop (not a benchmark gate; the `benches` crate owns those):
//! `cargo run --release -p cfa-policy --example perf`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use cfa_policy::{PolicyEngine, synth};
use cfa_types::StateSignature;
use std::hint::black_box;
use std::time::Instant;

const OK: &str = r#"{"domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
  "datasets": [
    {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]}],
  "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true, "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
  "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01", "context_registry_version_id": "v_initial"},
  "intent_id": "11111111-2222-3333-4444-555555555555", "source_intent_raw": "Join NFe with Clientes and persist to Silver"}"#;

fn median_ns(engine: &PolicyEngine, sig: &StateSignature, iters: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        for _ in 0..100 {
            black_box(engine.evaluate(black_box(sig), 0));
        }
        samples.push(t.elapsed().as_nanos() as f64 / 100.0);
    }
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn main() {
    let sig = StateSignature::from_json_str(OK).unwrap();
    let default = PolicyEngine::default();
    let (p50, p99) = median_ns(&default, &sig, 20_000);
    println!(
        "default rules, ok signature: p50 {p50:.0} ns, p99 {p99:.0} ns (per 100-call batch mean)"
    );
    let big = PolicyEngine::from_bundle(synth::generated_bundle(1000)).unwrap();
    let r = big.evaluate(&sig, 0);
    println!(
        "1000-rule bundle: action {}, {} faults",
        r.action,
        r.faults.len()
    );
    let (p50, p99) = median_ns(&big, &sig, 500);
    println!(
        "1000-rule bundle: p50 {:.2} us, p99 {:.2} us",
        p50 / 1000.0,
        p99 / 1000.0
    );
    let mut noisy = sig.clone();
    noisy.constraints.partition_by.clear();
    noisy.constraints.enforce_types = false;
    let r = big.evaluate(&noisy, 0);
    println!(
        "1000-rule bundle, unpartitioned + untyped: action {}, {} faults",
        r.action,
        r.faults.len()
    );
    let (p50, p99) = median_ns(&big, &noisy, 200);
    println!("  p50 {:.2} us, p99 {:.2} us", p50 / 1000.0, p99 / 1000.0);
}
