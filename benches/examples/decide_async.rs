//! The async audited-decision row alone, for profiling:
//! `cargo run --release -p cfa-benches --example decide_async -- [TASKS] [WORKERS] [DECISIONS]`
//! (defaults 256, 2, 256000). Prints amortised wall time per decision and latency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (tasks, workers, decisions) = (arg(1, 256), arg(2, 2), arg(3, 256_000));
    let dir = tempfile::tempdir().unwrap();
    let c = cfa_benches::audited::measure_decide_async(
        dir.path(),
        tasks as usize,
        workers as usize,
        decisions,
    )
    .unwrap();
    println!(
        "{} tasks on {workers} workers, {} decisions: amortised {:.0} ns/decision, per call p50 {:.0} ns, p99 {:.0} ns",
        c.threads, c.decisions, c.amortised_ns, c.latency.p50_ns, c.latency.p99_ns
    );
}
