//! The audited paths: one decision with its `policy_check` append (sequential, and
//! many threads through one shared JSONL store, where group commit amortises the
//! appends), and the full kernel, intent text → audited decision, with the mock
//! sandbox (docs/architecture.md#performance-gates). Everything goes through the
//! public APIs of cfa-kernel and cfa-audit.

use crate::fixtures;
use crate::measure::{MeasureError, Stats, measure};
use cfa_audit::Clock;
use cfa_audit::{AuditStore, Durability, JsonlStore};
use cfa_kernel::{Kernel, KernelConfig, PolicyCheck, SequentialIds, TickClock, testing};
use cfa_lifecycle::MemoryStateStore;
use cfa_policy::PolicyEngine;
use cfa_types::{DecisionState, PolicyAction};
use hdrhistogram::Histogram;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why an audited measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditedError {
    /// Setting up the store, the kernel or a fixture failed.
    #[error("{0}")]
    Setup(String),
    /// A decision or run did not come out as the fixture says.
    #[error("{0}")]
    Unexpected(String),
    /// Measuring failed.
    #[error(transparent)]
    Measure(#[from] MeasureError),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> AuditedError + '_ {
    move |e| AuditedError::Setup(format!("{what}: {e}"))
}

fn histogram() -> Result<Histogram<u64>, AuditedError> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).map_err(setup("histogram"))
}

fn stats_of(h: &Histogram<u64>) -> Stats {
    Stats {
        p50_ns: h.value_at_quantile(0.50) as f64,
        p99_ns: h.value_at_quantile(0.99) as f64,
        max_ns: h.max() as f64,
        samples: h.len(),
        batch: 1,
    }
}

/// The durability the audited-decision rows run at: group commit every 64 appends.
pub const DECIDE_DURABILITY: Durability = Durability::Batch(64);

/// One approve decision with its `policy_check` append to a fresh JSONL store at
/// [`DECIDE_DURABILITY`] in `dir`, timed in-process for `budget`.
pub fn measure_decide_sequential(dir: &Path, budget: Duration) -> Result<Stats, AuditedError> {
    let path = dir.join("decide-seq.jsonl");
    let _ = std::fs::remove_file(&path);
    let store = JsonlStore::open(&path, DECIDE_DURABILITY).map_err(setup("audit store"))?;
    let engine = PolicyEngine::default();
    let sig = fixtures::approve_signature().map_err(setup("approve fixture"))?;
    let ids = SequentialIds::new();
    let clock = TickClock::new(1_767_225_600);
    let check = PolicyCheck::new(&engine, &ids, &clock).audit(Some(&store));
    let first = check.decide(&sig).map_err(setup("decide"))?;
    if first.result.action != PolicyAction::Approve || first.audit_event_hash.is_empty() {
        return Err(AuditedError::Unexpected(format!(
            "the audited approve decided {} (event hash {:?})",
            first.result.action, first.audit_event_hash
        )));
    }
    let mut failed = false;
    let stats = measure(
        || {
            failed |= std::hint::black_box(check.decide(&sig)).is_err();
        },
        budget,
        1_000_000,
    )?;
    store.flush().map_err(setup("flush"))?;
    drop(store);
    let _ = std::fs::remove_file(&path);
    if failed {
        return Err(AuditedError::Unexpected(
            "an audited decision failed".into(),
        ));
    }
    Ok(stats)
}

/// `threads` threads deciding concurrently through one shared store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Concurrent {
    /// Threads.
    pub threads: usize,
    /// Decisions made in all.
    pub decisions: u64,
    /// Wall time from the first decision to the last, divided by the decisions.
    pub amortised_ns: f64,
    /// Per-call latency.
    pub latency: Stats,
}

/// `threads` threads making `decisions` approve decisions in all (split evenly),
/// each appended through one shared JSONL store at [`DECIDE_DURABILITY`] in `dir`.
/// The chain is checked to hold every event afterwards.
pub fn measure_decide_concurrent(
    dir: &Path,
    threads: usize,
    decisions: u64,
) -> Result<Concurrent, AuditedError> {
    let threads = threads.max(1);
    let per_thread = (decisions / threads as u64).max(1);
    let path = dir.join(format!("decide-{threads}t.jsonl"));
    let _ = std::fs::remove_file(&path);
    let store = JsonlStore::open(&path, DECIDE_DURABILITY).map_err(setup("audit store"))?;
    let engine = PolicyEngine::default();
    let sig = fixtures::approve_signature().map_err(setup("approve fixture"))?;
    let ids = SequentialIds::new();
    let clock = TickClock::new(1_767_225_600);
    let barrier = std::sync::Barrier::new(threads + 1);
    let (wall, hists) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (engine, sig, ids, clock, store, barrier) =
                    (&engine, &sig, &ids, &clock, &store, &barrier);
                s.spawn(move || -> Result<Histogram<u64>, AuditedError> {
                    let check = PolicyCheck::new(engine, ids, clock).audit(Some(store));
                    let mut h = histogram()?;
                    barrier.wait();
                    for _ in 0..per_thread {
                        let t = Instant::now();
                        let d = check.decide(sig).map_err(setup("decide"))?;
                        h.saturating_record(
                            u64::try_from(t.elapsed().as_nanos())
                                .unwrap_or(u64::MAX)
                                .max(1),
                        );
                        std::hint::black_box(d);
                    }
                    Ok(h)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let hists: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(AuditedError::Unexpected("a thread panicked".into())))
            })
            .collect();
        (t0.elapsed(), hists)
    });
    let mut all = histogram()?;
    for h in hists {
        all.add(&h?).map_err(setup("histogram"))?;
    }
    store.flush().map_err(setup("flush"))?;
    let total = per_thread * threads as u64;
    let lines = std::fs::read(&path)
        .map_err(setup("reading the log"))?
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;
    drop(store);
    let _ = std::fs::remove_file(&path);
    if lines != total {
        return Err(AuditedError::Unexpected(format!(
            "{total} decisions appended {lines} events"
        )));
    }
    Ok(Concurrent {
        threads,
        decisions: total,
        amortised_ns: wall.as_nanos() as f64 / total.max(1) as f64,
        latency: stats_of(&all),
    })
}

/// `tasks` tokio tasks on a `workers`-thread runtime (as `cfa serve` runs) making
/// `decisions` approve decisions in all (split evenly): each decision is made on its
/// task and its `policy_check` event appended through one shared JSONL store at
/// [`DECIDE_DURABILITY`] in `dir` by the async path `cfa serve` takes
/// ([`JsonlStore::append_prepared_async`] of [`cfa_kernel::Decision::prepare_event`]: the task that is handed the lead writes its group
/// itself, or on the runtime's blocking pool when that could wait). The chain is
/// checked to hold every event afterwards. `threads` in the result is `tasks`.
pub fn measure_decide_async(
    dir: &Path,
    tasks: usize,
    workers: usize,
    decisions: u64,
) -> Result<Concurrent, AuditedError> {
    let tasks = tasks.max(1);
    let per_task = (decisions / tasks as u64).max(1);
    let path = dir.join(format!("decide-{tasks}tasks.jsonl"));
    let _ = std::fs::remove_file(&path);
    let store = Arc::new(JsonlStore::open(&path, DECIDE_DURABILITY).map_err(setup("audit store"))?);
    let engine = Arc::new(PolicyEngine::default());
    let sig = Arc::new(fixtures::approve_signature().map_err(setup("approve fixture"))?);
    let ids = Arc::new(SequentialIds::new());
    let clock = Arc::new(TickClock::new(1_767_225_600));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .build()
        .map_err(setup("tokio runtime"))?;
    let (wall, hists) = rt.block_on(async {
        let start = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (engine, sig, ids, clock, store, start) = (
                    Arc::clone(&engine),
                    Arc::clone(&sig),
                    Arc::clone(&ids),
                    Arc::clone(&clock),
                    Arc::clone(&store),
                    Arc::clone(&start),
                );
                tokio::spawn(async move {
                    // Latencies are kept as they come and counted into a histogram
                    // after the run: 256 tasks' histograms (~230 KB each, zeroed by
                    // the kernel page by page as they are first touched) cost more
                    // page faults during the run than the decisions' own memory.
                    let mut h = Vec::with_capacity(usize::try_from(per_task).unwrap_or(0));
                    start.wait().await;
                    for _ in 0..per_task {
                        let t = Instant::now();
                        let mut d = PolicyCheck::new(&engine, &*ids, &*clock)
                            .decide(&sig)
                            .map_err(setup("decide"))?;
                        let event = d.prepare_event(clock.now_isoformat());
                        d.audit_event_hash = store
                            .append_one_prepared_async(event, |store| async move {
                                let _ =
                                    tokio::task::spawn_blocking(move || store.lead_queued()).await;
                            })
                            .await
                            .map_err(setup("append"))?;
                        h.push(
                            u64::try_from(t.elapsed().as_nanos())
                                .unwrap_or(u64::MAX)
                                .max(1),
                        );
                        std::hint::black_box(d);
                    }
                    Ok::<_, AuditedError>(h)
                })
            })
            .collect();
        start.wait().await;
        let t0 = Instant::now();
        let mut hists = Vec::with_capacity(tasks);
        for h in handles {
            hists.push(
                h.await
                    .unwrap_or_else(|_| Err(AuditedError::Unexpected("a task panicked".into()))),
            );
        }
        (t0.elapsed(), hists)
    });
    drop(rt);
    let mut all = histogram()?;
    for h in hists {
        for ns in h? {
            all.saturating_record(ns);
        }
    }
    store.flush().map_err(setup("flush"))?;
    let total = per_task * tasks as u64;
    let lines = std::fs::read(&path)
        .map_err(setup("reading the log"))?
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;
    drop(store);
    let _ = std::fs::remove_file(&path);
    if lines != total {
        return Err(AuditedError::Unexpected(format!(
            "{total} decisions appended {lines} events"
        )));
    }
    Ok(Concurrent {
        threads: tasks,
        decisions: total,
        amortised_ns: wall.as_nanos() as f64 / total.max(1) as f64,
        latency: stats_of(&all),
    })
}

/// The executed intents of the full-kernel row, alternating: approve, and
/// replan→approve (as in cfa-kernel/examples/kernel_perf.rs).
pub const KERNEL_INTENTS: [&str; 2] = [
    "Join nfe with clientes daily, anonymize pii, into silver",
    "ingest nfe raw into bronze",
];

fn kernel_intent(i: usize) -> &'static str {
    KERNEL_INTENTS
        .get(i % KERNEL_INTENTS.len())
        .copied()
        .unwrap_or_default()
}

/// The catalog the kernel grounds against (the repository's example catalog).
const CATALOG: &str = include_str!("../../examples/catalog.json");

/// A full-kernel run over many calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelRun {
    /// Calls made (after the warm-up).
    pub calls: usize,
    /// Audit events written by them.
    pub events: usize,
    /// Every call.
    pub all: Stats,
    /// The first 10% of calls (at most 100,000).
    pub first: Stats,
    /// The last 10% of calls (at most 100,000).
    pub last: Stats,
    /// VmRSS after the warm-up, kB (0 where unknown).
    pub rss_start_kb: u64,
    /// VmRSS after the last call, kB (0 where unknown).
    pub rss_end_kb: u64,
    /// Bytes [`warm_page_cache`] wrote and deleted before the timed calls (0: not warmed).
    pub warmed_bytes: u64,
}

/// How much more than a row's expected log [`warm_page_cache`] writes: on this machine
/// the log's writes found recently touched memory for about half of what was freed
/// before them (docs/development.md, "the page cache warmed before the full kernel").
pub const WARM_FACTOR: u64 = 2;

/// Writes `bytes` of zeros to a scratch file in `dir` in 1 MiB writes, then deletes it,
/// so that the page-cache pages a measurement's log takes next are memory the guest
/// touched a moment ago. On a virtual machine whose balloon reports free pages to its
/// host (this one), memory free for a while is handed back and every first write to it
/// afterwards faults in the host: a log growing into such memory slows down as it
/// grows, whatever writes it (docs/development.md, "the page cache warmed before the
/// full kernel"). At most a third of `MemAvailable` is written. Returns the bytes
/// written; the scratch file is removed on every path.
///
/// ```no_run
/// let dir = tempfile::tempdir()?;
/// let warmed = cfa_benches::audited::warm_page_cache(dir.path(), 64 << 20)?;
/// assert!(warmed <= 64 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn warm_page_cache(dir: &Path, bytes: u64) -> Result<u64, AuditedError> {
    use std::io::Write as _;
    const CHUNK: usize = 1 << 20;
    let cap = mem_available_bytes().map_or(bytes, |m| m / 3);
    let want = bytes.min(cap);
    let path = dir.join(".warm-page-cache");
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0u8; CHUNK];
        let mut written = 0u64;
        while written < want {
            let n = usize::try_from(want - written).map_or(CHUNK, |left| left.min(CHUNK));
            file.write_all(chunk.get(..n).unwrap_or(&chunk))?;
            written += n as u64;
        }
        Ok::<_, std::io::Error>(written)
    })();
    let removed = std::fs::remove_file(&path);
    let written = written.map_err(setup("warming the page cache"))?;
    removed.map_err(setup("removing the page-cache scratch file"))?;
    Ok(written)
}

/// `MemAvailable` of /proc/meminfo in bytes, where there is one.
fn mem_available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The kernel with the default pyspark backend, the mock sandbox (execution, runtime
/// validation, state projection) and a JSONL audit log at `Durability::Never` in
/// `dir`; [`KERNEL_INTENTS`] alternate over `calls` calls after 1,000 unmeasured ones.
/// With `warm`, [`warm_page_cache`] first writes and deletes [`WARM_FACTOR`] times the
/// log the timed calls will write (estimated from the unmeasured ones).
pub fn measure_kernel(dir: &Path, calls: usize, warm: bool) -> Result<KernelRun, AuditedError> {
    let calls = calls.max(20);
    let window = (calls / 10).clamp(1, 100_000);
    let path = dir.join("kernel.jsonl");
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn AuditStore> =
        Arc::new(JsonlStore::open(&path, Durability::Never).map_err(setup("audit store"))?);
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(CATALOG).map_err(setup("examples/catalog.json"))?,
    )
    .map_err(setup("examples/catalog.json"))?;
    let engine = PolicyEngine::builtin("prod-v1").map_err(setup("bundle prod-v1"))?;
    let state = Arc::new(MemoryStateStore::new(100));
    let kernel = Kernel::builder(KernelConfig::new(engine, catalog))
        .audit(store.clone())
        .ids(SequentialIds::new())
        .clock(TickClock::new(1_767_225_600))
        .executor(testing::mock_execution(state).map_err(setup("mock sandbox"))?)
        .build()
        .map_err(setup("kernel"))?;
    for (i, intent) in KERNEL_INTENTS.iter().enumerate() {
        let r = kernel.process(intent);
        let executed = r.execution.is_some()
            && matches!(
                r.state,
                DecisionState::Approved | DecisionState::ApprovedWithWarnings
            );
        let replans_ok = if i == 0 {
            r.replan_count == 0
        } else {
            r.replan_count > 0
        };
        if !executed || !replans_ok {
            return Err(AuditedError::Unexpected(format!(
                "kernel intent {intent:?} ended {} after {} replans (executed: {})",
                r.state,
                r.replan_count,
                r.execution.is_some()
            )));
        }
    }
    const UNMEASURED: u64 = 1_000;
    for i in 0..UNMEASURED as usize {
        std::hint::black_box(kernel.process(kernel_intent(i)));
    }
    let warmed_bytes = if warm {
        let written = std::fs::metadata(&path)
            .map_err(setup("kernel.jsonl"))?
            .len();
        let per_call = written / (UNMEASURED + KERNEL_INTENTS.len() as u64);
        warm_page_cache(dir, per_call * calls as u64 * WARM_FACTOR)?
    } else {
        0
    };
    let rss_start_kb = testing::resident_kb().unwrap_or(0);
    let (mut all, mut first, mut last) = (histogram()?, histogram()?, histogram()?);
    let mut events = 0usize;
    for i in 0..calls {
        let t = Instant::now();
        let r = kernel.process(kernel_intent(i));
        let ns = u64::try_from(t.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        events += r.audit_event_hashes.len();
        std::hint::black_box(r);
        all.saturating_record(ns);
        if i < window {
            first.saturating_record(ns);
        } else if i >= calls - window {
            last.saturating_record(ns);
        }
    }
    store.flush().map_err(setup("flush"))?;
    let rss_end_kb = testing::resident_kb().unwrap_or(0);
    drop(kernel);
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok(KernelRun {
        calls,
        events,
        all: stats_of(&all),
        first: stats_of(&first),
        last: stats_of(&last),
        rss_start_kb,
        rss_end_kb,
        warmed_bytes,
    })
}

/// Where [`measure_kernel_budgets`] keeps its budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetStore {
    /// No ledger: the same kernel as [`measure_kernel`], measured beside the others.
    Off,
    /// cfa-control's in-memory ledger: the decision path's own cost.
    Memory,
    /// The SQLite ledger in a lifecycle database file in `dir` (what `cfa evaluate --db`
    /// uses): two `BEGIN IMMEDIATE` transactions per run.
    Sqlite,
}

/// The full kernel of [`measure_kernel`] with every run charged to an `agent:bench`
/// budget that never runs out (reserve before execute, reconcile after), `calls` timed
/// calls after as many unmeasured ones (at most 200).
pub fn measure_kernel_budgets(
    dir: &Path,
    calls: usize,
    store: BudgetStore,
) -> Result<Stats, AuditedError> {
    use cfa_control::budget::{Budget, BudgetLedger, Limits, MemoryBudgets, SqliteBudgets};
    let calls = calls.max(20);
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(CATALOG).map_err(setup("examples/catalog.json"))?,
    )
    .map_err(setup("examples/catalog.json"))?;
    let engine = PolicyEngine::builtin("prod-v1").map_err(setup("bundle prod-v1"))?;
    let budget = Budget::new(
        "agent:bench".parse().map_err(setup("scope"))?,
        "366d".parse().map_err(setup("window"))?,
        Limits {
            runs: Some(u64::MAX / 2),
            ..Limits::default()
        },
    )
    .map_err(setup("budget"))?;
    let db_path = dir.join("budgets.db");
    let _ = std::fs::remove_file(&db_path);
    let ledger: Option<Arc<dyn BudgetLedger>> = match store {
        BudgetStore::Off => None,
        BudgetStore::Memory => {
            let m = MemoryBudgets::new();
            m.set(budget);
            Some(Arc::new(m))
        }
        BudgetStore::Sqlite => {
            let db = SqliteBudgets::open(&db_path).map_err(setup("budget database"))?;
            db.set(&budget, "2026-01-01T00:00:00+00:00")
                .map_err(setup("budget"))?;
            Some(Arc::new(db))
        }
    };
    let state = Arc::new(MemoryStateStore::new(100));
    let mut builder = Kernel::builder(KernelConfig::new(engine, catalog))
        .ids(SequentialIds::new())
        .clock(TickClock::new(1_767_225_600))
        .executor(testing::mock_execution(state).map_err(setup("mock sandbox"))?);
    if let Some(l) = ledger {
        builder = builder.budgets(l, Some("bench".to_owned()));
    }
    let kernel = builder.build().map_err(setup("kernel"))?;
    let r = kernel.process(kernel_intent(0));
    let charged = r.execution.is_some() && r.is_executable();
    if !charged {
        return Err(AuditedError::Unexpected(format!(
            "budgeted kernel run ended {}: {}",
            r.state, r.blocked_reason
        )));
    }
    for i in 0..calls.min(200) {
        std::hint::black_box(kernel.process(kernel_intent(i)));
    }
    let mut all = histogram()?;
    for i in 0..calls {
        let t = Instant::now();
        let r = kernel.process(kernel_intent(i));
        let ns = u64::try_from(t.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        std::hint::black_box(r);
        all.saturating_record(ns);
    }
    drop(kernel);
    let _ = std::fs::remove_file(&db_path);
    Ok(stats_of(&all))
}

/// The full kernel with everything off beside the same kernel with everything on
/// ([`measure_kernel_everything`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Everything {
    /// Timed calls of each kernel.
    pub calls: usize,
    /// No control plane, no budgets, no shadow.
    pub off: Stats,
    /// Everything on.
    pub on: Stats,
    /// Runs the budget ledger reconciled: every executed run of the "on" kernel,
    /// warm-up included (checked).
    pub charged: u64,
    /// Runs on which the shadow bundle decided otherwise (each recorded as a
    /// `shadow_flip` event, as the faces do).
    pub flips: usize,
}

/// Calls per block of [`measure_kernel_everything`] (each kernel in turn).
const EVERYTHING_BLOCK: usize = 50;

/// The scope every "on" run is charged to.
const BENCH_AGENT: &str = "agent:bench";

/// The full kernel of [`measure_kernel_budgets`] (memory audit) twice, in alternating
/// blocks of calls: once with everything off, once with everything on — one SQLite
/// database in `dir` with the control and budget tables (as the faces' lifecycle
/// database holds them), an engaged kill switch on another scope in it (so every
/// decision reads the switches and the approval step of the gate runs), its budget
/// ledger charging every executed run to `agent:bench` (reserve before execute,
/// reconcile after; two `BEGIN IMMEDIATE` transactions), and a shadow bundle
/// (`finops-strict-v1`) deciding beside every run's last policy evaluation with the
/// flip check, a flip appended to the audit store as the faces do. `calls` timed
/// calls of each after as many unmeasured ones (at most 200). Every "on" run must
/// still execute: the switch covers another domain and the budget never runs out.
pub fn measure_kernel_everything(dir: &Path, calls: usize) -> Result<Everything, AuditedError> {
    use cfa_audit::{MemoryStore, NewEvent};
    use cfa_control::budget::{Budget, BudgetLedger, Limits, SqliteBudgets};
    use cfa_control::{ControlDb, KillSwitch, Scope};
    use cfa_kernel::ControlPlane;
    let calls = calls.max(20);
    let catalog = cfa_types::Catalog::from_value(
        &serde_json::from_str(CATALOG).map_err(setup("examples/catalog.json"))?,
    )
    .map_err(setup("examples/catalog.json"))?;
    let engine = PolicyEngine::builtin("prod-v1").map_err(setup("bundle prod-v1"))?;
    let shadow = PolicyEngine::builtin("finops-strict-v1").map_err(setup("shadow bundle"))?;
    let db_path = dir.join("everything.db");
    let remove_db = || {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db_path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    };
    remove_db();
    let control = Arc::new(ControlDb::open(&db_path).map_err(setup("control tables"))?);
    control
        .engage(&KillSwitch {
            scope: Scope::Domain("elsewhere".into()),
            reason: "bench".into(),
            by: "bench".into(),
            engaged_at: "2026-01-01T00:00:00+00:00".into(),
        })
        .map_err(setup("kill switch"))?;
    let scope: cfa_control::budget::Scope = BENCH_AGENT.parse().map_err(setup("scope"))?;
    let budget = Budget::new(
        scope.clone(),
        "366d".parse().map_err(setup("window"))?,
        Limits {
            runs: Some(u64::MAX / 2),
            ..Limits::default()
        },
    )
    .map_err(setup("budget"))?;
    let budgets = Arc::new(SqliteBudgets::open(&db_path).map_err(setup("budget tables"))?);
    budgets
        .set(&budget, "2026-01-01T00:00:00+00:00")
        .map_err(setup("budget"))?;
    let kernel = |on: bool, audit: Arc<MemoryStore>| -> Result<Kernel, AuditedError> {
        let state = Arc::new(MemoryStateStore::new(100));
        let mut b = Kernel::builder(KernelConfig::new(engine.clone(), catalog.clone()))
            .audit(audit)
            .ids(SequentialIds::new())
            .clock(TickClock::new(1_767_225_600))
            .executor(testing::mock_execution(state).map_err(setup("mock sandbox"))?);
        if on {
            let ledger: Arc<dyn BudgetLedger> = budgets.clone();
            b = b
                .control(ControlPlane::new(control.clone(), "bench"))
                .budgets(ledger, Some("bench".to_owned()));
        }
        b.build().map_err(setup("kernel"))
    };
    let (off_audit, on_audit) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let off = kernel(false, off_audit)?;
    let on = kernel(true, on_audit.clone())?;
    let mut flips = 0usize;
    // The shadow beside a run, as `cfa serve --shadow-bundle` observes a governed run.
    let mut observe = |r: &cfa_kernel::KernelResult| -> Result<(), AuditedError> {
        let (Some(sig), Some(result)) = (&r.signature, &r.policy_result) else {
            return Ok(());
        };
        let candidate = shadow.evaluate_with_catalog(sig, Some(&catalog), result.replan_count);
        if cfa_kernel::replay::flipped(result, &candidate) {
            flips += 1;
            let event = NewEvent::new(
                r.intent_id.clone(),
                "shadow",
                "shadow_flip",
                candidate.action.as_str().to_owned(),
                r.created_at.clone(),
            )
            .detail("decision_id", r.decision_id.clone())
            .detail("enforcing_action", result.action.as_str().to_owned())
            .detail("candidate_action", candidate.action.as_str().to_owned());
            on_audit.append(event).map_err(setup("shadow flip"))?;
        }
        Ok(())
    };
    for (i, intent) in KERNEL_INTENTS.iter().enumerate() {
        for (k, name) in [(&off, "off"), (&on, "on")] {
            let r = k.process(intent);
            if !(r.execution.is_some() && r.is_executable()) {
                return Err(AuditedError::Unexpected(format!(
                    "kernel ({name}) intent {i} ended {}: {}",
                    r.state, r.blocked_reason
                )));
            }
        }
    }
    for i in 0..calls.min(200) {
        std::hint::black_box(off.process(kernel_intent(i)));
        let r = on.process(kernel_intent(i));
        observe(&r)?;
        std::hint::black_box(r);
    }
    let (mut off_h, mut on_h) = (histogram()?, histogram()?);
    let elapsed = |t: Instant| {
        u64::try_from(t.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    };
    // Blocks of calls, alternating: both kernels see the same machine load, and
    // each block runs with its own kernel's data in cache.
    let mut done = 0usize;
    while done < calls {
        let block = EVERYTHING_BLOCK.min(calls - done);
        for i in done..done + block {
            let t = Instant::now();
            let r = off.process(kernel_intent(i));
            off_h.saturating_record(elapsed(t));
            std::hint::black_box(r);
        }
        for i in done..done + block {
            let t = Instant::now();
            let r = on.process(kernel_intent(i));
            observe(&r)?;
            on_h.saturating_record(elapsed(t));
            if !r.is_executable() {
                return Err(AuditedError::Unexpected(format!(
                    "kernel (on) call {i} ended {}: {}",
                    r.state, r.blocked_reason
                )));
            }
            std::hint::black_box(r);
        }
        done += block;
    }
    // Inside the budget's window, after every run's (ticking) timestamp.
    let now = 1_767_225_600 + 30 * 86_400;
    let charged = budgets
        .status(&scope, now)
        .map_err(setup("budget status"))?
        .spent
        .runs;
    let runs = u64::try_from(KERNEL_INTENTS.len() + calls.min(200) + calls).unwrap_or(u64::MAX);
    if charged != runs {
        return Err(AuditedError::Unexpected(format!(
            "the budget ledger reconciled {charged} of {runs} executed runs"
        )));
    }
    drop((off, on));
    drop(budgets);
    drop(control);
    remove_db();
    Ok(Everything {
        calls,
        off: stats_of(&off_h),
        on: stats_of(&on_h),
        charged,
        flips,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_decisions_append_one_event_each() {
        let dir = tempfile::tempdir().unwrap();
        let c = measure_decide_concurrent(dir.path(), 4, 200).unwrap();
        assert_eq!((c.threads, c.decisions), (4, 200));
        assert_eq!(c.latency.samples, 200);
        assert!(c.amortised_ns > 0.0);
    }

    #[test]
    fn async_decisions_append_one_event_each() {
        let dir = tempfile::tempdir().unwrap();
        let c = measure_decide_async(dir.path(), 16, 2, 320).unwrap();
        assert_eq!((c.threads, c.decisions), (16, 320));
        assert_eq!(c.latency.samples, 320);
        assert!(c.amortised_ns > 0.0);
    }

    #[test]
    fn budgeted_kernel_runs_are_charged_in_every_store() {
        let dir = tempfile::tempdir().unwrap();
        for store in [BudgetStore::Off, BudgetStore::Memory, BudgetStore::Sqlite] {
            let s = measure_kernel_budgets(dir.path(), 20, store).unwrap();
            assert_eq!(s.samples, 20, "{store:?}");
        }
    }

    #[test]
    fn everything_on_charges_every_run_and_leaves_no_database() {
        let dir = tempfile::tempdir().unwrap();
        let e = measure_kernel_everything(dir.path(), 20).unwrap();
        assert_eq!((e.calls, e.off.samples, e.on.samples), (20, 20, 20));
        // Every executed run of the "on" kernel (2 checks, 20 warm-up, 20 timed) was
        // reserved and reconciled.
        assert_eq!(e.charged, 42, "{e:?}");
        assert!(!dir.path().join("everything.db").exists());
    }

    #[test]
    fn kernel_runs_both_intents_and_counts_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let run = measure_kernel(dir.path(), 20, false).unwrap();
        assert_eq!(run.warmed_bytes, 0);
        assert_eq!(run.calls, 20);
        assert_eq!(run.all.samples, 20);
        assert_eq!((run.first.samples, run.last.samples), (2, 2));
        // Every executed run writes several events (decision, execution, …).
        assert!(run.events >= 3 * 20, "{run:?}");
    }

    #[test]
    fn a_warmed_kernel_run_wrote_twice_its_log_first_and_left_no_scratch_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = measure_kernel(dir.path(), 20, true).unwrap();
        // 20 executed runs write ~7 KB each: the scratch file was about twice that.
        assert!(
            (2 * 20 * 4_000..2 * 20 * 20_000).contains(&run.warmed_bytes),
            "{run:?}"
        );
        assert!(!dir.path().join(".warm-page-cache").exists());
        assert!(!dir.path().join("kernel.jsonl").exists());
    }

    #[test]
    fn warming_writes_what_it_is_asked_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let n = (3 << 20) + 17;
        assert_eq!(warm_page_cache(dir.path(), n).unwrap(), n);
        assert_eq!(warm_page_cache(dir.path(), 0).unwrap(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A directory that does not exist: an error, and nothing left behind.
        let gone = dir.path().join("missing");
        assert!(warm_page_cache(&gone, 1 << 20).is_err());
        assert!(!gone.exists());
    }
}
