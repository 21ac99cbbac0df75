//! Measures the audit chain on this machine and writes a large chain for the CLI test:
//! `cargo run --release -p cfa-audit --example audit_perf -- /tmp/cfa-big.jsonl 100000`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::checkpoint;
use cfa_audit::{
    AuditStore, AuditTarget, Durability, JsonlStore, NewEvent, SignerKey, SqliteStore,
    VerifyOptions,
};
use std::time::Instant;

fn event(i: u64) -> NewEvent {
    let ts =
        cfa_audit::time::isoformat_utc(1_795_291_377 + i as i64, (i * 7919 % 1_000_000) as u32);
    let mut e = NewEvent::new(
        format!("{:08x}-2222-3333-4444-555555555555", i / 11),
        "policy_check",
        "policy_evaluation",
        if i.is_multiple_of(3) {
            "replan"
        } else {
            "approve"
        },
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

fn per_op(label: &str, n: u64, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let el = t.elapsed();
    println!(
        "| {label} | {n} | {:.1} µs/op | {:.1} ms total |",
        el.as_secs_f64() * 1e6 / n as f64,
        el.as_secs_f64() * 1e3
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let big = std::path::PathBuf::from(args.get(1).cloned().unwrap_or("/tmp/cfa-big.jsonl".into()));
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!("| operation | n | per op | total |\n|---|---|---|---|");
    let _ = std::fs::remove_file(&big);
    let store = JsonlStore::open(&big, Durability::Never).unwrap();
    per_op("JSONL append, fsync never (big chain)", n, || {
        for i in 0..n {
            store.append(event(i)).unwrap();
        }
    });
    drop(store);
    for (label, d, count) in [
        ("JSONL append, fsync always", Durability::Always, 300u64),
        ("JSONL append, fsync batch:64", Durability::Batch(64), 5000),
        ("JSONL append, fsync never", Durability::Never, 5000),
    ] {
        let s = JsonlStore::open(dir.path().join(format!("{count}-{label}.jsonl")), d).unwrap();
        per_op(label, count, || {
            for i in 0..count {
                s.append(event(i)).unwrap();
            }
            s.flush().unwrap();
        });
    }
    for (label, d, count) in [
        (
            "SQLite append, synchronous FULL",
            Durability::Always,
            300u64,
        ),
        ("SQLite append, synchronous OFF", Durability::Never, 5000),
    ] {
        let s = SqliteStore::open(dir.path().join(format!("{count}.db")), d).unwrap();
        per_op(label, count, || {
            for i in 0..count {
                s.append(event(i)).unwrap();
            }
        });
    }
    let target = AuditTarget::Jsonl(big.clone());
    let bytes = std::fs::metadata(&big).unwrap().len();
    for threads in [1usize, 2] {
        let t = Instant::now();
        let r = checkpoint::verify_target(
            &target,
            &VerifyOptions {
                threads,
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        let el = t.elapsed().as_secs_f64();
        assert!(r.intact());
        println!(
            "| verify (library, {threads} thread(s)) | {} | {:.0} MB/s | {:.1} ms total |",
            r.events,
            bytes as f64 / el / 1e6,
            el * 1e3
        );
    }
    let key = SignerKey::from_seed("perf.example/log", [1; 32]).unwrap();
    let mut note = String::new();
    per_op("checkpoint (verify + Merkle root + sign)", 1, || {
        note = checkpoint::create_checkpoint(&target, "perf.example/log", &key, false)
            .unwrap()
            .1;
    });
    per_op("prove one event (verify + leaves + path)", 1, || {
        checkpoint::prove_event(&target, n / 2, note.clone(), false).unwrap();
    });
    println!("\nbig chain: {} ({bytes} bytes, {n} events)", big.display());
}
