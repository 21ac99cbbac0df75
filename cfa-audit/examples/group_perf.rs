//! Concurrent appends through one JSONL store (group commit), amortised and per call:
//! `cargo run --release -p cfa-audit --example group_perf -- THREADS CALLS_PER_THREAD [DURABILITY]`
//! (durability `always`, `batch`, `batch:N` or `never`; default `batch:64`). Prints the
//! amortised wall time per append and the per-call latency percentiles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::{AuditStore, Durability, JsonlStore, NewEvent};
use std::time::Instant;

/// A `policy_check` event of the decision path's size.
fn event(i: u64) -> NewEvent {
    let ts =
        cfa_audit::time::isoformat_utc(1_795_291_377 + i as i64, (i * 7919 % 1_000_000) as u32);
    let mut e = NewEvent::new(
        format!("{:08x}-2222-3333-4444-555555555555", i / 11),
        "policy_check",
        "policy_evaluation",
        "approve",
        ts,
    )
    .detail("decision_id", format!("35324dcc-4335-455e-bce2-{i:012}"))
    .detail(
        "signature_hash",
        cfa_types::canonical::sha256_hex(&i.to_le_bytes()),
    )
    .detail("faults", serde_json::json!([]))
    .detail("interventions", serde_json::json!([]))
    .detail("reasoning", "All rules passed. Execution approved.");
    e.policy_bundle_version = "prod-v1.0".into();
    e
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let calls: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let durability: Durability = args
        .get(3)
        .map_or(Ok(Durability::Batch(64)), |s| s.parse())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = JsonlStore::open(dir.path().join("audit.jsonl"), durability).unwrap();
    let start = Instant::now();
    let mut lat: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(calls as usize);
                    for i in 0..calls {
                        let e = event(t * calls + i);
                        let t0 = Instant::now();
                        store.append(e).unwrap();
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = start.elapsed();
    store.flush().unwrap();
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "threads {threads} × {calls} appends, {durability:?}: amortised {:.0} ns/append, per call p50 {} ns, p99 {} ns, p99.9 {} ns",
        wall.as_nanos() as f64 / n as f64,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
}
