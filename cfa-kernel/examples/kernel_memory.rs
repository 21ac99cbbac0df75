//! Memory and latency over many calls with ALL five phases on, state projection
//! included (design.md B10): mock sandbox through `SandboxExecution`, an in-memory
//! state store with its bounded history, JSONL audit log (`Durability::Never`).
//!
//! `cargo run --release -p cfa-kernel --example kernel_memory [-- CALLS]` (default
//! 1,000,000). Prints VmRSS every 10% of the run and p50/p99 of the first and last
//! 10% of calls; exits 1 when RSS grows by more than 16 MiB between the first and
//! the last checkpoint (a leak would grow with the number of calls), or when any call
//! was blocked because the audit log could not be written (e.g. the disk filled up).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use cfa_audit::{AuditStore, Durability, JsonlStore};
use cfa_kernel::{Kernel, KernelConfig, SandboxExecution, SequentialIds, TickClock};
use cfa_lifecycle::{ExecutionService, MemoryStateStore, PromotionEngine, PromotionPolicy};
use cfa_sandbox::{ExecutionConfig, SandboxOptions, SandboxRegistry};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::Instant;

const INTENTS: [&str; 3] = [
    "Join nfe with clientes daily, anonymize pii, into silver",
    "ingest nfe raw into bronze",
    "Join NFe with Clientes and persist to Silver",
];

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let window = (calls / 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AuditStore> =
        Arc::new(JsonlStore::open(dir.path().join("audit.jsonl"), Durability::Never).unwrap());
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap(),
    )
    .unwrap();
    let service = ExecutionService {
        sandbox: SandboxRegistry::with_builtins()
            .create("mock", &SandboxOptions::default())
            .unwrap(),
        config: ExecutionConfig::default(),
        store: Arc::new(MemoryStateStore::new(100)),
        db: None,
        engine: PromotionEngine::new(PromotionPolicy::default(), "bench"),
        holder: "bench".into(),
        lease_ttl_secs: 600,
    };
    let clock: cfa_kernel::ExecutionClock =
        Box::new(|| jiff::Timestamp::from_second(1_767_225_600).unwrap());
    let kernel = Kernel::builder(KernelConfig::new(
        cfa_policy::PolicyEngine::builtin("prod-v1").unwrap(),
        catalog,
    ))
    .audit(store)
    .ids(SequentialIds::new())
    .clock(TickClock::new(1_767_225_600))
    .executor(SandboxExecution::new(service, clock))
    .build()
    .unwrap();
    let mut first = Histogram::<u64>::new(3).unwrap();
    let mut last = Histogram::<u64>::new(3).unwrap();
    let mut rss = Vec::new();
    let mut executed = 0usize;
    let mut audit_failures = 0usize;
    for i in 0..calls {
        let t = Instant::now();
        let r = kernel.process(INTENTS[i % INTENTS.len()]);
        let ns = t.elapsed().as_nanos() as u64;
        if r.execution.is_some() {
            executed += 1;
        }
        if r.blocked_reason.contains("Audit write failed") {
            audit_failures += 1;
        }
        if i < window {
            first.record(ns).unwrap();
        }
        if i >= calls - window {
            last.record(ns).unwrap();
        }
        if (i + 1) % window == 0 {
            rss.push((i + 1, rss_kb()));
        }
    }
    println!(
        "calls: {calls}, executed with projection: {executed}, blocked by audit write failures: {audit_failures}"
    );
    for (n, kb) in &rss {
        println!("  after {n:>9} calls: VmRSS {kb} kB");
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "first {window}: p50 {:.1} µs p99 {:.1} µs | last {window}: p50 {:.1} µs p99 {:.1} µs",
        us(&first, 0.5),
        us(&first, 0.99),
        us(&last, 0.5),
        us(&last, 0.99)
    );
    let growth = rss
        .last()
        .map_or(0, |l| l.1)
        .saturating_sub(rss.first().map_or(0, |f| f.1));
    println!("RSS growth first → last checkpoint: {growth} kB");
    if executed == 0 || audit_failures > 0 || growth > 16 * 1024 {
        std::process::exit(1);
    }
}
