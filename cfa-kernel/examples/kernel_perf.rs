//! Full kernel latency, intent text → audited decision with the mock sandbox, over
//! 1,000,000 calls: `cargo run --release -p cfa-kernel --example kernel_perf [-- CALLS]`.
//!
//! Audit store: a JSONL file in a temp dir with `Durability::Never` (the OS decides
//! when to write back; `always` measures the disk's fsync, not the kernel). Intents
//! rotate over approve, replan→approve, policy block and ungrounded block; the
//! default pyspark backend generates and statically validates code for the approved
//! ones, which then run on the mock sandbox with runtime validation and state
//! projection (`CFA_PERF_EXECUTE=0` stops after static validation; `CFA_PERF_INTENTS=2`
//! alternates only the first two, the executed runs of the `cfa-gates` kernel row;
//! `CFA_PERF_STORE=memory` keeps events in memory, `CFA_PERF_STORE=discard` seals every
//! event and keeps only the chain's tail: both for diagnosis only). Prints p50/p99
//! of the first and the last 10% of calls (at most 100k) and VmRSS at start/end. The
//! allocator is mimalloc, as in the `cfa` binary.
//!
//! Where the time goes (perf, 2026-11-22): the JSONL append (write, statx for log
//! rotation, flock: ~20%), sealing events (canonical payload + SHA-256: ~25%),
//! static validation of the generated PySpark (~12%), the signature content hash
//! (~7%), the artifact hash (~4%), codegen (~5%). Figures are in the README.
//! With `CFA_PERF_STORE=discard` (2026-12-01, callgrind, whose SHA-256 is the portable
//! code, not SHA-NI): sealing ~44% of instructions, static validation ~12%, codegen ~7%,
//! the artifact hash ~8%, the signature hashes ~10%, building events ~5%. Later that day
//! (callgrind, discard, 4,000 calls) the work outside `write_audit` and `emit` went from
//! ~146k to ~84k instructions a call: both signature hashes come from a thread's recent
//! payloads, the normaliser caches what an intent's words say, smaller cuts elsewhere
//! (docs/architecture.md#performance-gates). On 2026-12-02 (perf, cpu-clock, the
//! executed pair with `CFA_PERF_INTENTS=2`) a run's time went to the two JSONL appends
//! (~30%: write(2) into the page cache ~16%, sealing ~6%, fstat and flock ~3%), building
//! its 11 events (~27%: SHA-256 of the payloads ~6%), the mock execution through the
//! lifecycle (~15%), generation (~11%), formalize (~10%) and govern (~8%): the table and
//! the quiet A/B figures are in docs/development.md#the-full-kernel-row-where-the-time-goes.
//! On 2026-12-03 the mock execution's steps stopped copying the output columns and null
//! counts (callgrind, discard: ~16k fewer instructions a run, the execution phase −29%;
//! docs/development.md, "Issue #13/#15 speed, fourth round"). Later that day the plan came
//! shared from the planner's memo instead of copied, and the four detail keys every event
//! carries were written once (callgrind, JSONL: ~20k fewer instructions a run, −8% outside
//! SHA-256; docs/development.md, "Issue #13/#15 speed, fifth round"). In the sixth round the
//! run's four common details became one pre-written block and the kernel's static keys, event
//! types, stages and outcomes were quoted once per process (callgrind, discard, no execution:
//! −10.1% outside SHA-256; docs/development.md, "Issue #13/#15 speed, sixth round"). In the
//! seventh round the run stopped copying its signature and the cached artifact, and the
//! execution's detail maps, null counts and columns came from templates and recent copies
//! (callgrind, discard: −10.8% outside SHA-256, 304 → 240 allocations a run;
//! docs/development.md, "Issue #13 speed, seventh round").
//! The last line
//! printed is the chain's tail hash: two builds that write the same bytes print the same
//! hash for the same call count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use cfa_audit::error::IoError;
use cfa_audit::{
    AuditError, AuditEvent, AuditStore, Durability, JsonlStore, NewEvent, PreparedEvent,
    VerifyOptions, VerifyReport,
};
use cfa_kernel::{Kernel, KernelConfig, SequentialIds, TickClock, testing};
use cfa_lifecycle::MemoryStateStore;
use hdrhistogram::Histogram;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The allocator the `cfa` binary ships with; remove these two lines to compare with
/// glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INTENTS: [&str; 4] = [
    "Join nfe with clientes daily, anonymize pii, into silver",
    "ingest nfe raw into bronze",
    "Join NFe with Clientes and persist to Silver",
    "copy the invoices table somewhere",
];

/// Seals every event after the tail and drops it, keeping only the tail hash and a
/// count: the kernel's own cost plus sealing, without a file store.
#[derive(Default)]
struct DiscardSink(Mutex<(String, u64)>);

impl DiscardSink {
    fn unsupported() -> AuditError {
        AuditError::Io(IoError::new(
            "<discard sink>",
            "read",
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the sink keeps only the tail",
            ),
        ))
    }
}

impl AuditStore for DiscardSink {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let mut tail = self.0.lock().unwrap();
        let e = event.seal(&tail.0);
        tail.0.clone_from(&e.event_hash);
        tail.1 += 1;
        Ok(e)
    }
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        let mut tail = self.0.lock().unwrap();
        for event in events {
            let hash = event.event_hash(&tail.0);
            tail.0.clone_from(&hash);
            tail.1 += 1;
            hashes.push(hash);
        }
        Ok(())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self.0.lock().unwrap().0.clone())
    }
    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.0.lock().unwrap().1)
    }
    fn scan(&self, _: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        Err(Self::unsupported())
    }
    fn verify(&self, _: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        Err(Self::unsupported())
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let window = (calls / 10).min(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // CFA_PERF_STORE=memory|discard isolates the kernel from the file store (diagnosis only).
    let store: Arc<dyn AuditStore> = match std::env::var("CFA_PERF_STORE").as_deref() {
        Ok("memory") => Arc::new(cfa_audit::MemoryStore::new()),
        Ok("discard") => Arc::new(DiscardSink::default()),
        _ => Arc::new(JsonlStore::open(&path, Durability::Never).unwrap()),
    };
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap(),
    )
    .unwrap();
    let mut builder = Kernel::builder(KernelConfig::new(
        cfa_policy::PolicyEngine::builtin("prod-v1").unwrap(),
        catalog,
    ))
    .audit(store.clone())
    .ids(SequentialIds::new())
    .clock(TickClock::new(1_767_225_600));
    if std::env::var("CFA_PERF_EXECUTE").as_deref() != Ok("0") {
        let state = Arc::new(MemoryStateStore::new(100));
        builder = builder.executor(testing::mock_execution(state).unwrap());
    }
    let kernel = builder.build().unwrap();
    // CFA_PERF_INTENTS=N rotates over the first N intents only (2: the executed runs).
    let rotate = std::env::var("CFA_PERF_INTENTS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(INTENTS.len())
        .clamp(1, INTENTS.len());
    // warm-up
    for i in 0..1_000 {
        std::hint::black_box(kernel.process(INTENTS[i % rotate]));
    }
    let rss_start = cfa_kernel::testing::resident_kb().unwrap_or(0);
    let mut first = Histogram::<u64>::new(3).unwrap();
    let mut last = Histogram::<u64>::new(3).unwrap();
    let mut events = 0usize;
    let t0 = Instant::now();
    for i in 0..calls {
        let start = Instant::now();
        let r = kernel.process(INTENTS[i % rotate]);
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        events += r.audit_event_hashes.len();
        std::hint::black_box(r);
        if i < window {
            first.record(ns).unwrap();
        } else if i >= calls - window {
            last.record(ns).unwrap();
        }
    }
    let total = t0.elapsed();
    store.flush().unwrap();
    let rss_end = cfa_kernel::testing::resident_kb().unwrap_or(0);
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "kernel_perf: {calls} calls, {events} audit events, {:.1} s total",
        total.as_secs_f64()
    );
    println!(
        "first {window}: p50 {:.1} µs  p99 {:.1} µs",
        us(&first, 0.5),
        us(&first, 0.99)
    );
    println!(
        "last  {window}: p50 {:.1} µs  p99 {:.1} µs",
        us(&last, 0.5),
        us(&last, 0.99)
    );
    println!("VmRSS: start {rss_start} kB, end {rss_end} kB");
    // The chain's last hash: equal across builds when every event is byte-identical.
    println!("audit tail: {}", store.tail_hash().unwrap_or_default());
    println!(
        "audit log: {} bytes (JSONL, durability never)",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
    );
}
