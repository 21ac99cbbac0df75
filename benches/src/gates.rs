//! The gates of docs/architecture.md#performance-gates: each path measured (best of
//! several runs where it is cheap), compared with its gate and, with
//! `--reference-python`, beside the Python reference timed in the same run by
//! scripts/bench-reference.py. The rows and their rendering are in [`crate::report`].

use crate::audited::{self, AuditedError};
use crate::fixtures;
use crate::load::{self, LoadError, LoadOptions};
use crate::measure::{Floor, MeasureError, Stats, measure, measure_fallible, timer_floor};
use crate::report::{self, Check, Gate, ReferenceReport, Row, fmt_ns, fmt_rate, fmt_times};
use cfa_policy::PolicyEngine;
use cfa_types::{PolicyAction, StateSignature, canonical};
use std::hint::black_box;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Why the gate run could not complete (as opposed to a gate being missed).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A fixture did not read or decide as expected.
    #[error("fixture '{name}' is broken: {reason}")]
    Fixture {
        /// The fixture.
        name: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Measuring failed.
    #[error(transparent)]
    Measure(#[from] MeasureError),
    /// An audited path failed.
    #[error(transparent)]
    Audited(#[from] AuditedError),
    /// The HTTP load run failed.
    #[error("HTTP load: {0}")]
    Load(#[from] LoadError),
    /// `cfa serve` did not start.
    #[error("cfa serve: {0}")]
    Serve(String),
    /// The reference run failed or printed something unreadable.
    #[error("reference: {0}")]
    Reference(String),
}

/// The Python reference to time beside ours.
#[derive(Debug, Clone)]
pub struct ReferenceCmd {
    /// The virtualenv's `python` (with cfa-kernel 1.1.0 installed).
    pub python: PathBuf,
    /// scripts/bench-reference.py.
    pub script: PathBuf,
    /// Full-kernel calls in the reference (it slows down as its log grows).
    pub kernel_calls: usize,
}

/// How the gates are run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time spent sampling each in-process path in each run.
    pub budget: Duration,
    /// Runs per path; the best median and best p99 are kept.
    pub runs: u32,
    /// Multiplier on every gate (1.0 = docs/architecture.md#performance-gates as written).
    pub slack: f64,
    /// A `cfa` binary for the whole-process and HTTP rows, if any.
    pub cfa_bin: Option<PathBuf>,
    /// Full-kernel calls (the flatness claim is made at 1,000,000).
    pub kernel_calls: usize,
    /// Warm the page cache before the full-kernel row ([`audited::warm_page_cache`]).
    pub warm_page_cache: bool,
    /// Thread counts of the concurrent audited-decision rows.
    pub decide_threads: Vec<usize>,
    /// Decisions per concurrent run, over all threads.
    pub decide_total: u64,
    /// Concurrent tokio tasks of the async audited-decision row.
    pub decide_tasks: usize,
    /// Worker threads of its runtime (as `cfa serve` runs on this machine).
    pub decide_workers: usize,
    /// Measured seconds of each HTTP load run.
    pub http_duration: Duration,
    /// Keep-alive connections of the HTTP load.
    pub http_connections: usize,
    /// Load-generator threads the connections are spread over.
    pub http_threads: usize,
    /// The reference, when it is to be timed too.
    pub reference: Option<ReferenceCmd>,
    /// Only these groups of rows ([`GROUPS`]); empty: every group.
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Duration::from_millis(400),
            runs: 3,
            slack: 1.0,
            cfa_bin: None,
            kernel_calls: 200_000,
            warm_page_cache: true,
            decide_threads: vec![8, 32],
            decide_total: 256_000,
            decide_tasks: 256,
            decide_workers: 2,
            http_duration: Duration::from_secs(10),
            http_connections: 32,
            http_threads: 2,
            reference: None,
            only: Vec::new(),
        }
    }
}

/// The groups of rows `--only` selects from, in the order they run: the in-process
/// decision paths, the audited decisions and the full kernel, the kernel with budgets,
/// the bundle sweep, the control plane, the HTTP load, the whole processes.
pub const GROUPS: [&str; 7] = [
    "evaluate",
    "audited",
    "budgets",
    "bundles",
    "control",
    "http",
    "processes",
];

impl Options {
    /// Whether the group `name` (one of [`GROUPS`]) is to be run.
    pub fn runs_group(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == name)
    }
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rows, in a fixed order.
    pub rows: Vec<Row>,
    /// The timer floor of this machine.
    pub floor: Floor,
    /// The reference's report, when it ran.
    pub reference: Option<ReferenceReport>,
}

/// Approve under the default rules (the reference: 6.2 / 9.8 µs).
const EVALUATE_GATE: Gate = Gate::both(200.0, 1_000.0);
/// Replan with three faults (interventions, patches).
const EVALUATE_REPLAN_GATE: Gate = Gate::p50(200.0);
/// At least 10× faster than the reference's `raw_pii` → block; without the reference
/// in the run, against its stored figures (14.1 / 28.8 µs).
const EVALUATE_BLOCK_GATE: Gate = Gate {
    p50_ns: Some(14_100.0 / 10.0),
    p99_ns: Some(28_800.0 / 10.0),
    vs_reference: Some(10.0),
};
const JSON_TO_DECISION_GATE: Gate = Gate::p99(5_000.0);
const BUNDLE_1000_GATE: Gate = Gate::p99(50_000.0);
/// Full kernel, executed runs.
const KERNEL_GATE: Gate = Gate::both(20_000.0, 35_000.0);
/// Last-10% p50 over first-10% p50.
const KERNEL_FLAT: f64 = 1.1;
/// Concurrent audited decisions through the async path (tokio tasks, as `cfa serve`
/// makes them): wall time / decisions.
const DECIDE_AMORTISED_NS: f64 = 1_000.0;
/// `cfa serve --audit-log` (fsync batch) under 32 keep-alive connections.
const HTTP_GATE: Gate = Gate::p99(2_000_000.0);
const HTTP_MIN_RATE: f64 = 60_000.0;
const COLD_START_GATE: Gate = Gate::p50(5_000_000.0);
/// Verify a 100,000-event chain, whole CLI process (median).
const VERIFY_CHAIN_GATE: Gate = Gate::p50(40_000_000.0);
/// Events in the chain the verify gate reads.
pub const CHAIN_EVENTS: u64 = 100_000;
/// Sizes of the bundle sweep.
pub const BUNDLE_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn fixture<T, E: std::fmt::Display>(name: &'static str, r: Result<T, E>) -> Result<T, GateError> {
    r.map_err(|e| GateError::Fixture {
        name,
        reason: e.to_string(),
    })
}

fn expect_action(
    name: &'static str,
    engine: &PolicyEngine,
    sig: &StateSignature,
    want: PolicyAction,
) -> Result<(), GateError> {
    let got = engine.evaluate(sig, 0).action;
    if got == want {
        Ok(())
    } else {
        Err(GateError::Fixture {
            name,
            reason: format!("decided {got}, expected {want}"),
        })
    }
}

fn best_of<F: FnMut()>(opts: &Options, mut call: F) -> Result<Stats, GateError> {
    let mut best: Option<Stats> = None;
    for _ in 0..opts.runs.max(1) {
        let s = measure(&mut call, opts.budget, 2_000_000)?;
        best = Some(best.map_or(s, |b| b.best(s)));
    }
    best.ok_or(GateError::Measure(MeasureError::Step("no run".into())))
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, GateError> {
        let dir = std::env::temp_dir().join(format!("cfa-gates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| GateError::Fixture {
            name: "scratch directory",
            reason: e.to_string(),
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs every path (and the reference, when asked) and returns the report.
pub fn run(opts: &Options) -> Result<Report, GateError> {
    // The processes run in the scratch directory: a relative path must not be
    // resolved against it.
    let mut resolved = opts.clone();
    if let Some(bin) = &opts.cfa_bin {
        resolved.cfa_bin = Some(fixture("cfa binary", std::path::absolute(bin))?);
    }
    if let Some(r) = &mut resolved.reference {
        // Not canonicalised: a virtualenv's `python` is a symlink that must stay one.
        r.python = fixture("reference python", std::path::absolute(&r.python))?;
        r.script = fixture("reference script", std::path::absolute(&r.script))?;
    }
    let opts = &resolved;
    let scratch = Scratch::new()?;
    let dir = scratch.0.as_path();
    eprintln!("cfa-gates: timer floor");
    let floor = timer_floor(Duration::from_micros(20), 20_000)?;
    let mut rows = Vec::new();
    if opts.runs_group("evaluate") {
        rows.extend(in_process_rows(opts)?);
    }
    if opts.runs_group("audited") {
        rows.extend(audited_rows(opts, dir)?);
    }
    if opts.runs_group("budgets") {
        rows.extend(budget_rows(opts, dir)?);
    }
    if opts.runs_group("bundles") {
        rows.extend(bundle_rows(opts)?);
    }
    if opts.runs_group("control") {
        rows.extend(control_rows(opts, dir)?);
        rows.extend(everything_rows(opts, dir)?);
    }
    if opts.runs_group("http") {
        rows.extend(http_rows(opts, dir)?);
    }
    let sig_path = dir.join("ok.json");
    std::fs::write(&sig_path, fixtures::OK_SIGNATURE).map_err(|e| GateError::Fixture {
        name: "ok.json",
        reason: e.to_string(),
    })?;
    let processes = opts.runs_group("processes");
    let chain = (processes && (opts.cfa_bin.is_some() || opts.reference.is_some()))
        .then(|| {
            eprintln!("cfa-gates: writing a {CHAIN_EVENTS}-event chain");
            let chain = dir.join("chain.jsonl");
            fixtures::write_audit_chain(&chain, CHAIN_EVENTS)
                .map(|()| chain)
                .map_err(|e| GateError::Fixture {
                    name: "audit chain",
                    reason: e.to_string(),
                })
        })
        .transpose()?;
    if processes {
        rows.extend(process_rows(opts, dir, &sig_path, chain.as_deref())?);
    }
    let reference = match &opts.reference {
        Some(r) => {
            let report = run_reference(r, opts, dir, &sig_path, chain.as_deref())?;
            report::join_reference(&mut rows, &report, opts.slack);
            for row in &mut rows {
                if let Some(why) = report.skipped.get(&row.key) {
                    append_note(row, &format!("reference skipped: {why}"));
                }
            }
            if let (Some(row), Some(extra)) = (
                rows.iter_mut().find(|r| r.key == "kernel.executed"),
                report.extra.get("kernel.executed"),
            ) {
                let f = |k: &str| extra.get(k).copied().unwrap_or(0.0);
                append_note(
                    row,
                    &format!(
                        "reference: {} calls, p50 first 10% {} → last 10% {}, VmRSS {:.1} → {:.1} MB",
                        report.paths.get("kernel.executed").map_or(0, |s| s.samples),
                        fmt_ns(f("first_p50_ns")),
                        fmt_ns(f("last_p50_ns")),
                        f("rss_start_kb") / 1000.0,
                        f("rss_end_kb") / 1000.0
                    ),
                );
            }
            Some(report)
        }
        None => None,
    };
    drop(scratch);
    Ok(Report {
        rows,
        floor,
        reference,
    })
}

fn append_note(row: &mut Row, note: &str) {
    if !row.note.is_empty() {
        row.note.push_str("; ");
    }
    row.note.push_str(note);
}

fn in_process_rows(opts: &Options) -> Result<Vec<Row>, GateError> {
    let approve = fixture("approve", fixtures::approve_signature())?;
    let replan = fixture("replan", fixtures::replan_signature())?;
    let block = fixture("block", fixtures::block_signature())?;
    let engine = PolicyEngine::default();
    expect_action("approve", &engine, &approve, PolicyAction::Approve)?;
    expect_action("replan", &engine, &replan, PolicyAction::Replan)?;
    expect_action("block", &engine, &block, PolicyAction::Block)?;
    let parsed = fixture(
        "ok-text",
        StateSignature::parse_validated(fixtures::OK_SIGNATURE, false),
    )?;
    if parsed != approve {
        return Err(GateError::Fixture {
            name: "ok-text",
            reason: "parse_validated disagrees with from_value".into(),
        });
    }
    let event = fixtures::audit_event();
    let slack = opts.slack;
    eprintln!("cfa-gates: in-process paths");
    let mut rows = Vec::new();
    let mut add = |key: &str, path: &str, gate: Gate, stats: Stats| {
        rows.push(Row::new(key, path, gate.scaled(slack), stats));
    };
    add(
        "evaluate.approve",
        "evaluate, default rules, approve (ok)",
        EVALUATE_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&approve), 0));
        })?,
    );
    add(
        "evaluate.replan",
        "evaluate, default rules, replan (3 faults)",
        EVALUATE_REPLAN_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&replan), 0));
        })?,
    );
    // Shadow mode (`--shadow-bundle`): the enforcing decision, the candidate's beside it
    // and the flip comparison; information only (the cost over `evaluate.replan`).
    let shadow = PolicyEngine::builtin("finops-strict-v1").map_err(|e| GateError::Fixture {
        name: "shadow bundle",
        reason: e.to_string(),
    })?;
    add(
        "evaluate.shadow",
        "evaluate + shadow bundle (finops-strict-v1) + flip check, replan",
        Gate::NONE,
        best_of(opts, || {
            let enforced = engine.evaluate(black_box(&replan), 0);
            let candidate = shadow.evaluate(black_box(&replan), 0);
            black_box(cfa_kernel::replay::flipped(&enforced, &candidate));
        })?,
    );
    add(
        "evaluate.block",
        "evaluate, default rules, block (raw PII)",
        EVALUATE_BLOCK_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&block), 0));
        })?,
    );
    add(
        "json_to_decision",
        "JSON text → validated signature → decision",
        JSON_TO_DECISION_GATE,
        best_of(opts, || {
            if let Ok(sig) =
                StateSignature::parse_validated(black_box(fixtures::OK_SIGNATURE), false)
            {
                black_box(engine.evaluate(&sig, 0));
            }
        })?,
    );
    add(
        "parse_validated",
        "parse_validated (ok)",
        Gate::NONE,
        best_of(opts, || {
            let _ = black_box(StateSignature::parse_validated(
                black_box(fixtures::OK_SIGNATURE),
                false,
            ));
        })?,
    );
    add(
        "signature_hash",
        "signature_hash",
        Gate::NONE,
        best_of(opts, || {
            black_box(black_box(&approve).signature_hash());
        })?,
    );
    add(
        "canonical.event",
        "canonical_string, audit event",
        Gate::NONE,
        best_of(opts, || {
            black_box(canonical::canonical_string(black_box(&event)));
        })?,
    );
    Ok(rows)
}

/// One decision through `PolicyCheck` without and with the control plane (a SQLite
/// store holding an engaged kill switch on another scope, so every decision reads the
/// switches and checks them): information only, the difference is the control plane's
/// cost per decision.
fn control_rows(opts: &Options, dir: &Path) -> Result<Vec<Row>, GateError> {
    use cfa_control::{ControlDb, KillSwitch, Scope};
    use cfa_kernel::{ControlPlane, PolicyCheck, SequentialIds};
    let approve = fixture("approve", fixtures::approve_signature())?;
    let engine = PolicyEngine::default();
    let db = fixture("control db", ControlDb::open(dir.join("control.db")))?;
    fixture(
        "kill switch",
        db.engage(&KillSwitch {
            scope: Scope::Domain("elsewhere".into()),
            reason: "bench".into(),
            by: "bench".into(),
            engaged_at: "2026-01-01T00:00:00+00:00".into(),
        }),
    )?;
    let plane = ControlPlane::new(std::sync::Arc::new(db), "bench");
    let (ids, clock) = (
        SequentialIds::new(),
        cfa_audit::FixedClock("2026-01-01T00:00:00+00:00".into()),
    );
    let off = PolicyCheck::new(&engine, &ids, &clock);
    let on = off.control(Some(&plane));
    let decided = fixture("controlled decision", on.decide(&approve))?;
    if decided.result.action != PolicyAction::Approve {
        return Err(GateError::Fixture {
            name: "controlled decision",
            reason: format!("expected approve, got {:?}", decided.result.faults),
        });
    }
    eprintln!("cfa-gates: control plane");
    let off_stats = best_of(opts, || {
        let _ = black_box(off.decide(black_box(&approve)));
    })?;
    let on_stats = best_of(opts, || {
        let _ = black_box(on.decide(black_box(&approve)));
    })?;
    let mut on_row = Row::new(
        "control.on",
        "policy check + control plane (kill switches, SQLite)",
        Gate::NONE,
        on_stats,
    );
    on_row.note = format!(
        "control plane adds {} per decision at p50 (information only)",
        fmt_ns((on_stats.p50_ns - off_stats.p50_ns).max(0.0))
    );
    Ok(vec![
        Row::new(
            "control.off",
            "policy check, no control plane",
            Gate::NONE,
            off_stats,
        ),
        on_row,
    ])
}

fn audited_rows(opts: &Options, dir: &Path) -> Result<Vec<Row>, GateError> {
    eprintln!("cfa-gates: audited decisions");
    let mut rows = Vec::new();
    let mut seq: Option<Stats> = None;
    for _ in 0..opts.runs.max(1) {
        let s = audited::measure_decide_sequential(dir, opts.budget)?;
        seq = Some(seq.map_or(s, |b| b.best(s)));
    }
    if let Some(s) = seq {
        rows.push(Row::new(
            "decide_audit.seq",
            "decision + its audit append (JSONL, fsync batch:64), sequential",
            Gate::NONE,
            s,
        ));
    }
    for &threads in &opts.decide_threads {
        let mut best: Option<audited::Concurrent> = None;
        for _ in 0..opts.runs.max(1) {
            let c = audited::measure_decide_concurrent(dir, threads, opts.decide_total)?;
            best = Some(match best {
                Some(b) => audited::Concurrent {
                    amortised_ns: b.amortised_ns.min(c.amortised_ns),
                    latency: b.latency.best(c.latency),
                    ..c
                },
                None => c,
            });
        }
        if let Some(c) = best {
            let mut row = Row::new(
                &format!("decide_audit.{threads}t"),
                format!("same, {threads} threads through one store (info)"),
                Gate::NONE,
                c.latency,
            );
            row.note = format!(
                "amortised {} (information); {} decisions per run",
                fmt_ns(c.amortised_ns),
                c.decisions
            );
            rows.push(row);
        }
    }
    let mut best: Option<audited::Concurrent> = None;
    for _ in 0..opts.runs.max(1) {
        let c = audited::measure_decide_async(
            dir,
            opts.decide_tasks,
            opts.decide_workers,
            opts.decide_total,
        )?;
        best = Some(match best {
            Some(b) => audited::Concurrent {
                amortised_ns: b.amortised_ns.min(c.amortised_ns),
                latency: b.latency.best(c.latency),
                ..c
            },
            None => c,
        });
    }
    if let Some(c) = best {
        let mut row = Row::new(
            "decide_audit.async",
            format!(
                "same, {} tokio tasks on {} workers through one store, async append (latency: info)",
                opts.decide_tasks, opts.decide_workers
            ),
            Gate::NONE,
            c.latency,
        );
        row.checks.push(Check::at_most(
            "amortised",
            c.amortised_ns,
            DECIDE_AMORTISED_NS * opts.slack,
            fmt_ns,
        ));
        row.note = format!("{} decisions per run", c.decisions);
        rows.push(row);
    }
    eprintln!(
        "cfa-gates: full kernel, {} calls",
        opts.kernel_calls.max(20)
    );
    let k = audited::measure_kernel(dir, opts.kernel_calls, opts.warm_page_cache)?;
    let mut row = Row::new(
        "kernel.executed",
        "full kernel, intent → audited decision, executed (approve, replan→approve)",
        KERNEL_GATE.scaled(opts.slack),
        k.all,
    );
    let drift = k.last.p50_ns / k.first.p50_ns.max(1.0);
    row.checks.push(Check::at_most(
        "flat: last/first 10% p50",
        drift,
        KERNEL_FLAT,
        fmt_times,
    ));
    let warmed = if k.warmed_bytes > 0 {
        format!(
            "page cache warmed first with {:.0} MB written and deleted",
            k.warmed_bytes as f64 / 1e6
        )
    } else {
        "page cache not warmed (--cold-page-cache)".to_owned()
    };
    row.note = format!(
        "{} calls, {} audit events; p50 first 10% {} → last 10% {}; VmRSS {:.1} → {:.1} MB (growth {:+.2} MB); {warmed}",
        k.calls,
        k.events,
        fmt_ns(k.first.p50_ns),
        fmt_ns(k.last.p50_ns),
        k.rss_start_kb as f64 / 1000.0,
        k.rss_end_kb as f64 / 1000.0,
        (k.rss_end_kb as f64 - k.rss_start_kb as f64) / 1000.0
    );
    rows.push(row);
    Ok(rows)
}

/// The decision path's extra cost with budgets on (information only): the same full
/// kernel without a ledger, with the in-memory one and with the SQLite one.
fn budget_rows(opts: &Options, dir: &Path) -> Result<Vec<Row>, GateError> {
    use audited::BudgetStore;
    eprintln!("cfa-gates: full kernel with budgets");
    let calls = (opts.kernel_calls / 4).clamp(200, 20_000);
    let mut rows = Vec::new();
    let mut base = None;
    for (key, path, store) in [
        (
            "kernel.budgets_off",
            "full kernel, executed, no budgets (memory audit; info)",
            BudgetStore::Off,
        ),
        (
            "kernel.budgets_memory",
            "same, every run charged to a budget (memory ledger; info)",
            BudgetStore::Memory,
        ),
        (
            "kernel.budgets_sqlite",
            "same, SQLite ledger in a lifecycle database (info)",
            BudgetStore::Sqlite,
        ),
    ] {
        let s = audited::measure_kernel_budgets(dir, calls, store)?;
        let mut row = Row::new(key, path, Gate::NONE, s);
        match base {
            None => base = Some(s.p50_ns),
            Some(b) => {
                let d = s.p50_ns - b;
                let sign = if d < 0.0 { "-" } else { "+" };
                row.note = format!("p50 {sign}{} over no budgets", fmt_ns(d.abs()));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The control plane's whole cost on a run (information only): the full kernel with
/// everything off beside the same kernel with everything on (a lifecycle database
/// whose kill switches and approval tickets every decision reads, its budget ledger
/// reserving and reconciling every executed run, and a shadow bundle decided beside
/// every run with the flip check), in alternating blocks of calls so both see the same
/// machine.
fn everything_rows(opts: &Options, dir: &Path) -> Result<Vec<Row>, GateError> {
    eprintln!("cfa-gates: full kernel, everything off and on");
    let calls = (opts.kernel_calls / 4).clamp(200, 20_000);
    let e = audited::measure_kernel_everything(dir, calls)?;
    let mut on = Row::new(
        "kernel.everything_on",
        "same, everything on: kill switches + approvals (SQLite), SQLite budget ledger, shadow bundle (info)",
        Gate::NONE,
        e.on,
    );
    let d = e.on.p50_ns - e.off.p50_ns;
    let sign = if d < 0.0 { "-" } else { "+" };
    on.note = format!(
        "p50 {sign}{} over everything off; all {} runs (warm-up included) reserved and reconciled; {} shadow flips",
        fmt_ns(d.abs()),
        e.charged,
        e.flips
    );
    Ok(vec![
        Row::new(
            "kernel.everything_off",
            "full kernel, executed, memory audit, control plane off (info)",
            Gate::NONE,
            e.off,
        ),
        on,
    ])
}

fn bundle_rows(opts: &Options) -> Result<Vec<Row>, GateError> {
    eprintln!("cfa-gates: bundle sweep");
    let approve = fixture("approve", fixtures::approve_signature())?;
    let mut rows = Vec::new();
    for n in BUNDLE_SIZES {
        let engine = fixture(
            "generated bundle",
            PolicyEngine::from_bundle(cfa_policy::synth::generated_bundle(n)),
        )?;
        expect_action("generated bundle", &engine, &approve, PolicyAction::Approve)?;
        let gate = if n == 1_000 {
            BUNDLE_1000_GATE
        } else {
            Gate::NONE
        };
        let path = format!(
            "{}-rule bundle, one decision",
            report::group_thousands(n as u64)
        );
        rows.push(Row::new(
            &format!("bundle.{n}"),
            path,
            gate.scaled(opts.slack),
            best_of(opts, || {
                black_box(engine.evaluate(black_box(&approve), 0));
            })?,
        ));
    }
    Ok(rows)
}

/// A `cfa serve` process this run started; killed (by its own pid) on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin serve --port 0 ARGS` in `dir` and returns it with the address it
/// printed (`cfa serve: listening on http://ADDR`).
fn start_serve(
    bin: &Path,
    dir: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<(Server, std::net::SocketAddr), GateError> {
    let mut child = Command::new(bin)
        .args(["serve", "--port", "0"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| GateError::Serve(format!("cannot start {}: {e}", bin.display())))?;
    let stdout = child.stdout.take();
    let server = Server(child);
    let mut line = String::new();
    if let Some(out) = stdout {
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| GateError::Serve(e.to_string()))?;
    }
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim_end_matches('/').parse().ok())
        .ok_or_else(|| GateError::Serve(format!("unexpected first line {line:?}")))?;
    Ok((server, addr))
}

/// The ok signature as one line, the body scripts/bench-http.lua posts.
fn compact_ok() -> Result<String, GateError> {
    let v: serde_json::Value = fixture("ok-text", serde_json::from_str(fixtures::OK_SIGNATURE))?;
    Ok(v.to_string())
}

fn http_rows(opts: &Options, dir: &Path) -> Result<Vec<Row>, GateError> {
    let plain = (
        "http.no_audit",
        format!(
            "`cfa serve` /v1/decisions, {} keep-alive connections, no audit log",
            opts.http_connections
        ),
    );
    let audited = (
        "http.audit",
        "same, `--audit-log` with `--audit-fsync batch`".to_owned(),
    );
    let gate = HTTP_GATE.scaled(opts.slack);
    let Some(bin) = &opts.cfa_bin else {
        return Ok(vec![
            Row::skipped(
                plain.0,
                plain.1,
                Gate::NONE,
                "no cfa binary given (--cfa-bin)",
            ),
            Row::skipped(
                audited.0,
                audited.1,
                gate,
                "no cfa binary given (--cfa-bin)",
            ),
        ]);
    };
    let body = compact_ok()?;
    let log = dir.join("serve-audit.jsonl");
    let mut rows = Vec::new();
    for (i, (key, path)) in [plain, audited].into_iter().enumerate() {
        let with_log = i == 1;
        eprintln!("cfa-gates: HTTP load ({key})");
        let args: Vec<&std::ffi::OsStr> = if with_log {
            vec![
                "--audit-log".as_ref(),
                log.as_os_str(),
                "--audit-fsync".as_ref(),
                "batch".as_ref(),
            ]
        } else {
            Vec::new()
        };
        let (server, addr) = start_serve(bin, dir, &args)?;
        let report = load::run(&LoadOptions {
            addr,
            path: "/v1/decisions".into(),
            body: body.clone(),
            connections: opts.http_connections,
            threads: opts.http_threads,
            duration: opts.http_duration,
            warmup: Duration::from_millis(500),
        })?;
        drop(server);
        let mut row = Row::new(
            key,
            path,
            if with_log { gate } else { Gate::NONE },
            report.latency,
        );
        let rate = report.per_second();
        if with_log {
            row.checks.push(Check::at_least(
                "throughput",
                rate,
                HTTP_MIN_RATE / opts.slack,
                fmt_rate,
            ));
        }
        row.checks.push(Check {
            what: format!("{} non-2xx", report.non_2xx),
            ok: report.non_2xx == 0,
        });
        row.note = format!(
            "{} decisions ({} responses in {:.1} s, {} load threads)",
            fmt_rate(rate),
            report.requests,
            report.elapsed.as_secs_f64(),
            opts.http_threads.clamp(1, opts.http_connections.max(1))
        );
        rows.push(row);
    }
    let _ = std::fs::remove_file(&log);
    Ok(rows)
}

/// The whole-process rows (`cfa policy check` cold start, `cfa audit verify` of a
/// 100k chain).
fn process_rows(
    opts: &Options,
    dir: &Path,
    sig: &Path,
    chain: Option<&Path>,
) -> Result<Vec<Row>, GateError> {
    let cold = (
        "cli.policy_check",
        "`cfa policy check` cold start, whole process",
        COLD_START_GATE.scaled(opts.slack),
    );
    let verify = (
        "cli.audit_verify",
        "`cfa audit verify`, 100,000-event chain, whole process",
        VERIFY_CHAIN_GATE.scaled(opts.slack),
    );
    let (Some(bin), Some(chain)) = (&opts.cfa_bin, chain) else {
        return Ok([cold, verify]
            .into_iter()
            .map(|(key, path, gate)| {
                Row::skipped(key, path, gate, "no cfa binary given (--cfa-bin)")
            })
            .collect());
    };
    eprintln!("cfa-gates: whole processes");
    let mut rows = Vec::new();
    for (i, (key, path, gate)) in [cold, verify].into_iter().enumerate() {
        let probe: [&str; 3] = if i == 0 {
            ["policy", "check", "--help"]
        } else {
            ["audit", "verify", "--help"]
        };
        rows.push(if supports(bin, &probe) {
            let stats = if i == 0 {
                measure_policy_check_cold_start(bin, dir, sig, 50)?
            } else {
                measure_audit_verify(bin, dir, chain, 10)?
            };
            Row::new(key, path, gate, stats)
        } else {
            Row::skipped(
                key,
                path,
                gate,
                format!("`{} {}` fails", bin.display(), probe.join(" ")),
            )
        });
    }
    Ok(rows)
}

/// True when `bin ARGS` (e.g. `policy check --help`) exits 0.
pub fn supports(bin: &Path, args: &[&str]) -> bool {
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_ok(bin: &Path, args: &[&std::ffi::OsStr], dir: &Path) -> Result<(), String> {
    let status = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} {args:?} exited with {status}", bin.display()))
    }
}

/// Wall time of `bin policy check --signature SIG` as a whole process (spawn to
/// exit), `samples` times after one unmeasured run, in `dir`. It must exit 0 (approve).
pub fn measure_policy_check_cold_start(
    bin: &Path,
    dir: &Path,
    sig: &Path,
    samples: u64,
) -> Result<Stats, GateError> {
    let args = [
        "policy".as_ref(),
        "check".as_ref(),
        "--signature".as_ref(),
        sig.as_os_str(),
    ];
    Ok(measure_fallible(|| run_ok(bin, &args, dir), samples)?)
}

/// Wall time of `bin audit verify --file CHAIN` as a whole process, `samples` times
/// after one unmeasured run. It must exit 0 (chain intact).
pub fn measure_audit_verify(
    bin: &Path,
    dir: &Path,
    chain: &Path,
    samples: u64,
) -> Result<Stats, GateError> {
    let args = [
        "audit".as_ref(),
        "verify".as_ref(),
        "--file".as_ref(),
        chain.as_os_str(),
    ];
    Ok(measure_fallible(|| run_ok(bin, &args, dir), samples)?)
}

/// Runs scripts/bench-reference.py in the reference's virtualenv and reads its report.
fn run_reference(
    r: &ReferenceCmd,
    opts: &Options,
    dir: &Path,
    sig: &Path,
    chain: Option<&Path>,
) -> Result<ReferenceReport, GateError> {
    eprintln!("cfa-gates: the reference ({})", r.python.display());
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.json");
    let mut cmd = Command::new(&r.python);
    cmd.arg(&r.script)
        .arg("--scratch")
        .arg(dir.join("reference"))
        .args(["--budget-ms", &opts.budget.as_millis().to_string()])
        .args(["--runs", &opts.runs.to_string()])
        .args(["--kernel-calls", &r.kernel_calls.to_string()])
        .arg("--signature")
        .arg(sig)
        .arg("--catalog")
        .arg(catalog);
    if let Some(chain) = chain {
        cmd.arg("--chain").arg(chain);
    }
    let out = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| GateError::Reference(format!("cannot run {}: {e}", r.python.display())))?;
    if !out.status.success() {
        return Err(GateError::Reference(format!(
            "{} exited with {}",
            r.script.display(),
            out.status
        )));
    }
    report::parse_reference(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| GateError::Reference(e.to_string()))
}

/// The timer-floor line printed under the table.
pub fn render_floor(f: &Floor) -> String {
    format!(
        "Timer floor: a fixed busy loop of ~{} timed {} times measures p50 {}, p99 {}, p99.9 {}; \
         {:.2}% of samples are more than 10 µs above the median (timer ticks, preemption), so \
         on this machine a p99 below ~{} is not reachable for a call of that length.",
        fmt_ns(f.p50_ns),
        f.samples,
        fmt_ns(f.p50_ns),
        fmt_ns(f.p99_ns),
        fmt_ns(f.p999_ns),
        f.over_10us * 100.0,
        fmt_ns(f.p99_ns)
    )
}

/// What the README's Performance section shows between its markers: when, with
/// which command, on which machine, the table, the timer floor and the reference.
pub fn readme_block(report: &Report, date: &str, command: &str, machine: &str) -> String {
    let reference = report.reference.as_ref().map_or_else(
        || "not measured in this run".to_owned(),
        |r| {
            format!(
                "{} on Python {}, timed in the same run by `scripts/bench-reference.py`",
                r.reference, r.python
            )
        },
    );
    format!(
        "Measured {date} with `{command}` on {machine}. Reference: {reference}. \
         Ratios are reference p50 / ours p50.\n\n{}\n{}\n",
        report::render_markdown(&report.rows),
        render_floor(&report.floor)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_decide_as_named() {
        let engine = PolicyEngine::default();
        for (name, sig, want) in [
            (
                "approve",
                fixtures::approve_signature(),
                PolicyAction::Approve,
            ),
            ("replan", fixtures::replan_signature(), PolicyAction::Replan),
            ("block", fixtures::block_signature(), PolicyAction::Block),
        ] {
            let sig = sig.unwrap();
            expect_action(name, &engine, &sig, want).unwrap();
        }
        let replan = engine.evaluate(&fixtures::replan_signature().unwrap(), 0);
        assert_eq!(replan.faults.len(), 3);
    }

    #[test]
    fn gates_are_the_documented_ones() {
        let s = |p50: f64, p99: f64| Stats {
            p50_ns: p50,
            p99_ns: p99,
            max_ns: p99,
            samples: 1,
            batch: 1,
        };
        assert!(EVALUATE_REPLAN_GATE.met_by(&s(200.0, 1e9)));
        assert!(!EVALUATE_REPLAN_GATE.met_by(&s(201.0, 0.0)));
        assert!(KERNEL_GATE.met_by(&s(20_000.0, 35_000.0)));
        assert!(!KERNEL_GATE.met_by(&s(20_000.0, 35_001.0)));
        assert!(!VERIFY_CHAIN_GATE.met_by(&s(40_000_001.0, 0.0)));
        assert!(HTTP_GATE.met_by(&s(0.0, 2_000_000.0)));
    }

    #[test]
    fn every_generated_bundle_approves_the_ok_signature() {
        let approve = fixtures::approve_signature().unwrap();
        for n in BUNDLE_SIZES {
            let e = PolicyEngine::from_bundle(cfa_policy::synth::generated_bundle(n)).unwrap();
            expect_action("bundle", &e, &approve, PolicyAction::Approve).unwrap();
        }
        assert_eq!(report::group_thousands(10_000), "10,000");
        assert_eq!(report::group_thousands(100), "100");
    }

    #[test]
    fn compact_body_is_the_ok_signature_on_one_line() {
        let body = compact_ok().unwrap();
        assert!(!body.contains('\n'));
        assert!(body.starts_with("{\"domain\":\"fiscal\",\"intent\":"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::from_str::<serde_json::Value>(fixtures::OK_SIGNATURE).unwrap()
        );
    }
}
