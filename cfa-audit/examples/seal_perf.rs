//! Measures sealing one typical audit event (hash + JSONL line) on this machine:
//! `cargo run --release -p cfa-audit --no-default-features --example seal_perf -- 200000`.
//!
//! The event is the benches' `audit_event()` (a `policy_evaluation` with hashes,
//! faults, interventions and reasoning). Events are built (cloned) before the clock
//! starts, so the figure is the seal alone; batches are small, so that on a busy
//! machine the fastest (and the median) batch shows the uncontended cost. A second argument picks the mode for
//! instruction counting under `valgrind --tool=callgrind`: `seal` (default) builds
//! and seals, `build` only builds; the difference divided by n is the seal's cost.
//! Mode `hash` times only the SHA-256 of the event's payload: the floor of a seal.
//! Modes `emit` and `emit-reserved` time building a kernel-style event (details
//! handed over as `(&str, Value)` pairs, then ids and the bundle) and sealing it,
//! one detail at a time into a growing map or through `with_capacity` +
//! `details_from`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::NewEvent;
use std::hint::black_box;
use std::time::Instant;

fn typical() -> NewEvent {
    let details = serde_json::json!({
        "policy_bundle_version": "prod-v1.0",
        "decision_id": "0b9f3c2e-8f7a-4c1d-9e2b-5a6d7c8e9f01",
        "signature_hash": "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649",
        "catalog_hash": "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347",
        "policy_bundle_hash": "cb8c1f1bad935154b874cd3b4e66161a4281a9fabc136f57417abce66f1f4f58",
        "faults": ["FINOPS_MISSING_TEMPORAL_PREDICATE", "FINOPS_SENSITIVE_WITHOUT_PARTITION",
                   "CONTRACT_TYPE_ENFORCEMENT_DISABLED"],
        "interventions": ["Add constraints.partition_by with temporal column",
                          "Example: partition_by: [processing_date]",
                          "Add partition_by to limit processing scope.",
                          "Enable constraints.enforce_types=True",
                          "Define expected schema in catalog"],
        "reasoning": "Policy requires replan: 3 fault(s) \u{2014} FINOPS_MISSING_TEMPORAL_PREDICATE, FINOPS_SENSITIVE_WITHOUT_PARTITION, CONTRACT_TYPE_ENFORCEMENT_DISABLED",
        "size_gb": 4000.5,
        "replan_count": 0
    });
    let serde_json::Value::Object(details) = details else {
        unreachable!()
    };
    let mut e = NewEvent::new(
        "11111111-2222-3333-4444-555555555555",
        "policy_check",
        "policy_evaluation",
        "replan",
        "2026-01-01T00:00:00.123456+00:00",
    );
    e.details = details;
    e.policy_bundle_version = "prod-v1.0".into();
    e
}

/// The details a kernel phase hands over, as `(key, value)` pairs.
fn kernel_details() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "signature_hash",
            "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649".into(),
        ),
        ("replan_count", 0.into()),
        ("warnings", false.into()),
        ("blocked_reason", "".into()),
        (
            "faults",
            serde_json::json!(["FINOPS_MISSING_TEMPORAL_PREDICATE"]),
        ),
    ]
}

/// Builds a kernel-style event from `details` (`reserved`: through the sized builder).
fn kernel_event(details: Vec<(&'static str, serde_json::Value)>, reserved: bool) -> NewEvent {
    let (id, phase, kind, outcome, ts) = (
        "11111111-2222-3333-4444-555555555555",
        "validate",
        "final_decision",
        "approved",
        "2026-01-01T00:00:00.123456+00:00",
    );
    let ev = if reserved {
        let n = details.len() + 4;
        NewEvent::with_capacity(id, phase, kind, outcome, ts, n).details_from(details)
    } else {
        let mut ev = NewEvent::new(id, phase, kind, outcome, ts);
        for (key, value) in details {
            ev.details.insert(key.to_owned(), value);
        }
        ev
    };
    ev.detail("decision_id", "0b9f3c2e-8f7a-4c1d-9e2b-5a6d7c8e9f01")
        .detail(
            "content_hash",
            "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347",
        )
        .with_bundle(
            "prod-v1.0",
            "cb8c1f1bad935154b874cd3b4e66161a4281a9fabc136f57417abce66f1f4f58",
        )
}

const PREV: &str = "3b69998684daee0e632ea8bc5f8c513797582da3414f9748653ff1b7f0ab3f6e";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let mode = args.get(2).map_or("seal", String::as_str);
    let proto = typical();
    let (sealed, line) = proto.clone().seal_with_line(PREV);
    println!(
        "event: {} bytes as a line, {} hashed, hash {}",
        line.len(),
        sealed.canonical_payload().len(),
        sealed.event_hash
    );
    let payload = sealed.canonical_payload();
    let batch = 500.min(n.max(1));
    let mut per_batch = Vec::new();
    let mut total = 0.0;
    let mut done = 0usize;
    let mut bytes = 0usize;
    while done < n {
        let k = batch.min(n - done);
        let events: Vec<NewEvent> = (0..k).map(|_| proto.clone()).collect();
        let t = Instant::now();
        if let Some(reserved) = match mode {
            "emit" => Some(false),
            "emit-reserved" => Some(true),
            _ => None,
        } {
            drop(events);
            let inputs: Vec<_> = (0..k).map(|_| kernel_details()).collect();
            let t = Instant::now();
            for d in inputs {
                let (sealed, line) = kernel_event(d, reserved).seal_with_line(black_box(PREV));
                bytes += line.len();
                black_box((sealed, line));
            }
            let per = t.elapsed().as_secs_f64() * 1e9 / k as f64;
            per_batch.push(per);
            total += per * k as f64;
            done += k;
            continue;
        }
        if mode == "build" {
            black_box(events);
        } else if mode == "hash" {
            for _ in 0..k {
                black_box(cfa_types::canonical::sha256_hex(black_box(
                    payload.as_bytes(),
                )));
            }
            black_box(events);
        } else {
            for e in events {
                let (sealed, line) = e.seal_with_line(black_box(PREV));
                bytes += line.len();
                black_box((sealed, line));
            }
        }
        let per = t.elapsed().as_secs_f64() * 1e9 / k as f64;
        per_batch.push(per);
        total += per * k as f64;
        done += k;
    }
    per_batch.sort_by(f64::total_cmp);
    let best = per_batch.first().copied().unwrap_or(0.0);
    let median = per_batch.get(per_batch.len() / 2).copied().unwrap_or(0.0);
    println!(
        "mode {mode}: n {n}, mean {:.0} ns/seal, median batch {median:.0} ns/seal, \
         best batch {best:.0} ns/seal, {bytes} bytes",
        total / n as f64,
    );
}
