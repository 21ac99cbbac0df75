#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]
//! Memory stays flat over 1,000,000 kernel calls with every phase on, state projection
//! included (docs/differences.md#b10-bounded-memory-per-call): mock sandbox through `SandboxExecution`, an in-memory state
//! store with its bounded history, every audit event sealed into its JSONL line and
//! that line re-parsed, re-hashed and link-checked by the chain verifier, in a sink that
//! keeps only the chain's tail (a file would be gigabytes).
//!
//! A million calls take minutes even in release, so the test is ignored in the debug
//! workspace run and `cargo xtask test` runs it in release:
//! `cargo nextest run --release -p cfa-kernel --test memory_flat --run-ignored only
//! --success-output immediate` (`CFA_MEMORY_CALLS=N` for another count). It fails when
//! resident memory grows by more than 16 MiB from the 10% checkpoint to the end, when
//! the state history outgrows its cap, when any call is not the decision its intent
//! gets on the first call, or when any audit event does not chain or re-hash. It prints
//! resident memory and p50/p99 latency of the first and last 10% (no timing asserts).

use cfa_audit::error::IoError;
use cfa_audit::verify::{ChainStart, verify_reader};
use cfa_audit::{
    AuditError, AuditEvent, AuditStore, NewEvent, PreparedEvent, VerifyOptions, VerifyReport,
};
use cfa_kernel::{Kernel, KernelConfig, SequentialIds, TickClock, testing};
use cfa_lifecycle::{MemoryStateStore, StateStore};
use cfa_types::DecisionState;
use hdrhistogram::Histogram;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The allocator the `cfa` binary ships with, so resident memory and per-call cost are
/// what users run (glibc's malloc spent a third of the soak consolidating free chunks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INTENTS: [&str; 3] = [
    "Join nfe with clientes daily, anonymize pii, into silver",
    "ingest nfe raw into bronze",
    "Join NFe with Clientes and persist to Silver",
];

const HISTORY_CAP: usize = 100;
const MAX_GROWTH_KB: u64 = 16 * 1024;

#[derive(Default)]
struct Tail {
    hash: String,
    events: u64,
    bad: u64,
}

/// An audit store that checks every event as it is sealed and keeps only the tail: each
/// batch's JSONL lines (exactly what the file store writes) go through the chain
/// verifier, which re-parses every line, re-hashes it and checks that it links to the
/// tail and that the tail it ends on is the hash the seal returned.
#[derive(Default)]
struct ChainSink(Mutex<Tail>);

impl ChainSink {
    fn seal_all(tail: &mut Tail, events: Vec<NewEvent>, written: &mut Vec<AuditEvent>) {
        let start = tail.hash.clone();
        let n = events.len() as u64;
        let mut text = String::with_capacity(events.len() * 1024);
        for event in events {
            let (e, line) = event.seal_with_line(&tail.hash);
            text.push_str(&line);
            text.push('\n');
            tail.hash.clone_from(&e.event_hash);
            tail.events += 1;
            written.push(e);
        }
        Self::check(tail, start, n, &text);
    }

    /// [`ChainSink::seal_all`] of prepared events (what the kernel hands over).
    fn finish_all(tail: &mut Tail, events: Vec<PreparedEvent>, hashes: &mut Vec<String>) {
        let start = tail.hash.clone();
        let n = events.len() as u64;
        let mut text = String::with_capacity(events.len() * 1024);
        for event in events {
            let hash = event.finish_into(&tail.hash, &mut text);
            text.push('\n');
            tail.hash.clone_from(&hash);
            tail.events += 1;
            hashes.push(hash);
        }
        Self::check(tail, start, n, &text);
    }

    /// Verifies `text`, the `n` lines just chained after `start`.
    fn check(tail: &mut Tail, start: String, n: u64, text: &str) {
        let opts = VerifyOptions {
            start: Some(ChainStart {
                previous_hash: start,
                ..ChainStart::default()
            }),
            threads: 1,
            ..VerifyOptions::default()
        };
        let ok = verify_reader(text.as_bytes(), &opts, &mut |_| {}).is_ok_and(|r| {
            r.intact() && r.events == n && r.legacy_events == 0 && r.tail_hash == tail.hash
        });
        if !ok {
            tail.bad += 1;
        }
    }

    fn kept_nothing() -> AuditError {
        AuditError::Io(IoError::new(
            "<chain sink>",
            "read",
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the sink keeps only the tail",
            ),
        ))
    }
}

impl AuditStore for ChainSink {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let mut out = Vec::with_capacity(1);
        Self::seal_all(&mut self.0.lock().unwrap(), vec![event], &mut out);
        Ok(out.pop().unwrap())
    }
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        Self::seal_all(&mut self.0.lock().unwrap(), events, written);
        Ok(())
    }
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        Self::finish_all(&mut self.0.lock().unwrap(), events, hashes);
        Ok(())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self.0.lock().unwrap().hash.clone())
    }
    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.0.lock().unwrap().events)
    }
    fn scan(&self, _: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        Err(Self::kept_nothing())
    }
    fn verify(&self, _: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        Err(Self::kept_nothing())
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[test]
#[ignore = "1,000,000 kernel calls: cargo xtask test runs it in release"]
fn memory_stays_flat_over_a_million_calls_with_projection_on() {
    let calls: usize = std::env::var("CFA_MEMORY_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    assert!(calls >= 10, "CFA_MEMORY_CALLS must be at least 10");
    let window = calls / 10;
    let sink = Arc::new(ChainSink::default());
    let state = Arc::new(MemoryStateStore::new(HISTORY_CAP));
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap(),
    )
    .unwrap();
    let kernel = Kernel::builder(KernelConfig::new(
        cfa_policy::PolicyEngine::builtin("prod-v1").unwrap(),
        catalog,
    ))
    .audit(sink.clone())
    .ids(SequentialIds::new())
    .clock(TickClock::new(1_767_225_600))
    .executor(testing::mock_execution(state.clone()).unwrap())
    .build()
    .unwrap();

    // Each intent's first decision; every later call must repeat it.
    let expected: Vec<(DecisionState, bool)> = INTENTS
        .iter()
        .map(|i| {
            let r = kernel.process(i);
            (r.state, r.execution.is_some())
        })
        .collect();
    assert!(
        expected.iter().any(|(_, executed)| *executed),
        "at least one intent must run through the sandbox and be projected: {expected:?}"
    );

    let mut first = Histogram::<u64>::new(3).unwrap();
    let mut last = Histogram::<u64>::new(3).unwrap();
    let mut checkpoints = Vec::new();
    let mut executed = 0usize;
    for i in 0..calls {
        let intent = i % INTENTS.len();
        let t = Instant::now();
        let r = kernel.process(INTENTS[intent]);
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let got = (r.state, r.execution.is_some());
        assert_eq!(
            got, expected[intent],
            "call {i} ({}): {}",
            INTENTS[intent], r.blocked_reason
        );
        executed += usize::from(got.1);
        if i < window {
            first.record(ns).unwrap();
        }
        if i >= calls - window {
            last.record(ns).unwrap();
        }
        if (i + 1) % window == 0 {
            checkpoints.push((
                i + 1,
                testing::resident_kb().expect("VmRSS in /proc/self/status"),
            ));
            assert!(state.history_len().unwrap() <= HISTORY_CAP);
        }
    }

    let tail = sink.0.lock().unwrap();
    assert_eq!(tail.bad, 0, "audit events that did not chain or re-hash");
    assert!(tail.events >= calls as u64 * 3, "{} events", tail.events);
    assert_eq!(state.history_len().unwrap(), HISTORY_CAP);
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "calls {calls}, executed with projection {executed}, audit events {}",
        tail.events
    );
    for (n, kb) in &checkpoints {
        println!("  after {n:>9} calls: VmRSS {kb} kB");
    }
    println!(
        "first {window}: p50 {:.1} µs p99 {:.1} µs | last {window}: p50 {:.1} µs p99 {:.1} µs",
        us(&first, 0.5),
        us(&first, 0.99),
        us(&last, 0.5),
        us(&last, 0.99)
    );
    let growth = checkpoints
        .last()
        .unwrap()
        .1
        .saturating_sub(checkpoints[0].1);
    println!("VmRSS growth from the 10% checkpoint to the end: {growth} kB");
    assert!(
        growth <= MAX_GROWTH_KB,
        "resident memory grew by {growth} kB over {calls} calls"
    );
}
