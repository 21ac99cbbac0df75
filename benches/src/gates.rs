//! The latency gates of docs/architecture.md#performance-gates: each path measured in-process (best of several
//! runs), compared with its gate, and rendered as a Markdown table.

use crate::fixtures;
use crate::measure::{MeasureError, Stats, measure, measure_fallible};
use cfa_policy::PolicyEngine;
use cfa_types::{PolicyAction, StateSignature, canonical};
use std::hint::black_box;
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
}

/// Upper bounds for one path, in nanoseconds per call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gate {
    /// Bound on the median.
    pub p50_ns: Option<f64>,
    /// Bound on the 99th percentile.
    pub p99_ns: Option<f64>,
}

impl Gate {
    const NONE: Gate = Gate {
        p50_ns: None,
        p99_ns: None,
    };

    fn scaled(self, slack: f64) -> Gate {
        Gate {
            p50_ns: self.p50_ns.map(|g| g * slack),
            p99_ns: self.p99_ns.map(|g| g * slack),
        }
    }

    /// True when `s` meets every bound.
    pub fn met_by(&self, s: &Stats) -> bool {
        self.p50_ns.is_none_or(|g| s.p50_ns <= g) && self.p99_ns.is_none_or(|g| s.p99_ns <= g)
    }
}

/// One measured path.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Path name.
    pub path: String,
    /// The measurement, or `None` when the path was skipped.
    pub stats: Option<Stats>,
    /// The gate (already scaled by the slack).
    pub gate: Gate,
    /// Why a path was skipped, or other remarks.
    pub note: String,
}

impl Row {
    /// True unless the path was measured and missed its gate.
    pub fn passed(&self) -> bool {
        self.stats.as_ref().is_none_or(|s| self.gate.met_by(s))
    }
}

/// How the gates are run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time spent sampling each path in each run.
    pub budget: Duration,
    /// Runs per path; the best median and best p99 are kept.
    pub runs: u32,
    /// Multiplier on every gate (1.0 = docs/architecture.md#performance-gates as written).
    pub slack: f64,
    /// A `cfa` binary for the cold-start measurement, if any.
    pub cfa_bin: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Duration::from_millis(400),
            runs: 3,
            slack: 1.0,
            cfa_bin: None,
        }
    }
}

/// docs/architecture.md#performance-gates as written: default rules, parsed signature. The reference figure it
/// is set against (6.2 / 9.8 µs) is the `ok` → approve row of docs/architecture.md#performance-gates.
const EVALUATE_GATE: Gate = Gate {
    p50_ns: Some(200.0),
    p99_ns: Some(1_000.0),
};
/// docs/architecture.md#performance-gates sets no absolute gate for decisions that carry faults; these are ratio
/// gates (docs/architecture.md#performance-gates allows them): at least 10× faster than the reference's
/// `replan_multi` row (19.4 / 35.8 µs, docs/architecture.md#performance-gates). Faults own their strings,
/// so a 3-fault replan costs ~35 small allocations (see the README's follow-ups).
const EVALUATE_REPLAN_GATE: Gate = Gate {
    p50_ns: Some(19_400.0 / 10.0),
    p99_ns: Some(35_800.0 / 10.0),
};
/// At least 10× faster than the reference's `raw_pii` → block row (14.1 / 28.8 µs).
const EVALUATE_BLOCK_GATE: Gate = Gate {
    p50_ns: Some(14_100.0 / 10.0),
    p99_ns: Some(28_800.0 / 10.0),
};
const JSON_TO_DECISION_GATE: Gate = Gate {
    p50_ns: None,
    p99_ns: Some(5_000.0),
};
const BUNDLE_1000_GATE: Gate = Gate {
    p50_ns: None,
    p99_ns: Some(50_000.0),
};
const COLD_START_GATE: Gate = Gate {
    p50_ns: Some(5_000_000.0),
    p99_ns: None,
};
/// docs/architecture.md#performance-gates: verify a 100,000-event chain, whole CLI process, ≤ 100 ms (median).
const VERIFY_CHAIN_GATE: Gate = Gate {
    p50_ns: Some(100_000_000.0),
    p99_ns: None,
};
/// Events in the chain the verify gate reads.
pub const CHAIN_EVENTS: u64 = 100_000;

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

/// Runs every path and returns one row each, in a fixed order.
pub fn run(opts: &Options) -> Result<Vec<Row>, GateError> {
    let approve = fixture("approve", fixtures::approve_signature())?;
    let replan = fixture("replan", fixtures::replan_signature())?;
    let block = fixture("block", fixtures::block_signature())?;
    let engine = PolicyEngine::default();
    expect_action("approve", &engine, &approve, PolicyAction::Approve)?;
    expect_action("replan", &engine, &replan, PolicyAction::Replan)?;
    expect_action("block", &engine, &block, PolicyAction::Block)?;
    let big = fixture(
        "bundle-1000",
        PolicyEngine::from_bundle(cfa_policy::synth::generated_bundle(1000)),
    )?;
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

    let mut rows = Vec::new();
    let mut add = |path: &str, gate: Gate, stats: Stats| {
        rows.push(Row {
            path: path.to_owned(),
            stats: Some(stats),
            gate: gate.scaled(opts.slack),
            note: String::new(),
        });
    };
    add(
        "evaluate, default rules, approve (ok)",
        EVALUATE_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&approve), 0));
        })?,
    );
    add(
        "evaluate, default rules, replan (3 faults)",
        EVALUATE_REPLAN_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&replan), 0));
        })?,
    );
    add(
        "evaluate, default rules, block (raw PII)",
        EVALUATE_BLOCK_GATE,
        best_of(opts, || {
            black_box(engine.evaluate(black_box(&block), 0));
        })?,
    );
    add(
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
        "1,000-rule bundle, one decision",
        BUNDLE_1000_GATE,
        best_of(opts, || {
            black_box(big.evaluate(black_box(&approve), 0));
        })?,
    );
    add(
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
        Gate::NONE,
        best_of(opts, || {
            black_box(black_box(&approve).signature_hash());
        })?,
    );
    add(
        "canonical_string, audit event",
        Gate::NONE,
        best_of(opts, || {
            black_box(canonical::canonical_string(black_box(&event)));
        })?,
    );
    rows.extend(process_rows(opts)?);
    Ok(rows)
}

/// The whole-process rows (`cfa policy check` cold start, `cfa audit verify` of a
/// 100k chain), run in a scratch directory that is removed afterwards.
fn process_rows(opts: &Options) -> Result<Vec<Row>, GateError> {
    let cold = (
        "`cfa policy check` cold start, whole process".to_owned(),
        COLD_START_GATE.scaled(opts.slack),
        ["policy", "check", "--help"],
    );
    let verify = (
        format!("`cfa audit verify` of a {CHAIN_EVENTS}-event chain, whole process"),
        VERIFY_CHAIN_GATE.scaled(opts.slack),
        ["audit", "verify", "--help"],
    );
    let Some(bin) = &opts.cfa_bin else {
        return Ok([cold, verify]
            .into_iter()
            .map(|(path, gate, _)| Row {
                path,
                stats: None,
                gate,
                note: "skipped: no cfa binary given (--cfa-bin)".into(),
            })
            .collect());
    };
    let dir = std::env::temp_dir().join(format!("cfa-gates-{}", std::process::id()));
    let result = (|| -> Result<Vec<Row>, GateError> {
        std::fs::create_dir_all(&dir).map_err(|e| GateError::Fixture {
            name: "scratch directory",
            reason: e.to_string(),
        })?;
        let mut rows = Vec::new();
        for (i, (path, gate, probe)) in [cold, verify].into_iter().enumerate() {
            let row = if supports(bin, &probe) {
                let stats = if i == 0 {
                    measure_policy_check_cold_start(bin, &dir, 50)?
                } else {
                    measure_audit_verify(bin, &dir, 10)?
                };
                Row {
                    path,
                    stats: Some(stats),
                    gate,
                    note: String::new(),
                }
            } else {
                let note = format!("skipped: `{} {}` fails", bin.display(), probe.join(" "));
                Row {
                    path,
                    stats: None,
                    gate,
                    note,
                }
            };
            rows.push(row);
        }
        Ok(rows)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
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

/// Wall time of `bin policy check --signature <ok.json>` as a whole process (spawn to
/// exit), `samples` times after one unmeasured run, with `dir` as scratch and working
/// directory. The process must exit 0 (approve).
pub fn measure_policy_check_cold_start(
    bin: &Path,
    dir: &Path,
    samples: u64,
) -> Result<Stats, GateError> {
    let sig = dir.join("ok.json");
    std::fs::write(&sig, fixtures::OK_SIGNATURE).map_err(|e| GateError::Fixture {
        name: "ok.json",
        reason: e.to_string(),
    })?;
    let args = [
        "policy".as_ref(),
        "check".as_ref(),
        "--signature".as_ref(),
        sig.as_os_str(),
    ];
    Ok(measure_fallible(|| run_ok(bin, &args, dir), samples)?)
}

/// Wall time of `bin audit verify --file <chain>` as a whole process on a fresh
/// [`CHAIN_EVENTS`]-event chain written into `dir`, `samples` times after one
/// unmeasured run. The process must exit 0 (chain intact).
pub fn measure_audit_verify(bin: &Path, dir: &Path, samples: u64) -> Result<Stats, GateError> {
    let chain = dir.join("chain.jsonl");
    fixtures::write_audit_chain(&chain, CHAIN_EVENTS).map_err(|e| GateError::Fixture {
        name: "audit chain",
        reason: e.to_string(),
    })?;
    let args = [
        "audit".as_ref(),
        "verify".as_ref(),
        "--file".as_ref(),
        chain.as_os_str(),
    ];
    Ok(measure_fallible(|| run_ok(bin, &args, dir), samples)?)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn fmt_gate(g: &Gate) -> String {
    match (g.p50_ns, g.p99_ns) {
        (None, None) => "—".into(),
        (Some(a), None) => format!("p50 ≤ {}", fmt_ns(a)),
        (None, Some(b)) => format!("p99 ≤ {}", fmt_ns(b)),
        (Some(a), Some(b)) => format!("p50 ≤ {}, p99 ≤ {}", fmt_ns(a), fmt_ns(b)),
    }
}

/// The rows as a Markdown table: path | p50 | p99 | batch | gate | ok.
pub fn render_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| path | p50 | p99 | samples × batch | gate | ok |\n|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let (p50, p99, n) = match &r.stats {
            Some(s) => (
                fmt_ns(s.p50_ns),
                fmt_ns(s.p99_ns),
                format!("{} × {}", s.samples, s.batch),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let ok = match (&r.stats, r.passed()) {
            (None, _) => r.note.clone(),
            (Some(_), true) if r.gate == Gate::NONE => "(info)".into(),
            (Some(_), true) => "✓".into(),
            (Some(_), false) => "✗ MISSED".into(),
        };
        out.push_str(&format!(
            "| {} | {p50} | {p99} | {n} | {} | {ok} |\n",
            r.path,
            fmt_gate(&r.gate)
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn stats(p50: f64, p99: f64) -> Stats {
        Stats {
            p50_ns: p50,
            p99_ns: p99,
            max_ns: p99,
            samples: 10,
            batch: 1,
        }
    }

    #[test]
    fn gates_bound_median_and_p99() {
        assert!(EVALUATE_GATE.met_by(&stats(200.0, 1_000.0)));
        assert!(!EVALUATE_GATE.met_by(&stats(201.0, 500.0)));
        assert!(!EVALUATE_GATE.met_by(&stats(100.0, 1_001.0)));
        assert!(EVALUATE_GATE.scaled(2.0).met_by(&stats(399.0, 1_999.0)));
        assert!(JSON_TO_DECISION_GATE.met_by(&stats(1e9, 5_000.0)));
        assert!(Gate::NONE.met_by(&stats(1e12, 1e12)));
    }

    #[test]
    fn best_of_runs_keeps_the_lower_percentiles() {
        let b = stats(300.0, 900.0).best(stats(250.0, 1_200.0));
        assert_eq!((b.p50_ns, b.p99_ns), (250.0, 900.0));
    }

    #[test]
    fn table_marks_misses_and_skips() {
        let rows = [
            Row {
                path: "fast".into(),
                stats: Some(stats(10.0, 20.0)),
                gate: EVALUATE_GATE,
                note: String::new(),
            },
            Row {
                path: "slow".into(),
                stats: Some(stats(1_500.0, 2_000_000.0)),
                gate: EVALUATE_GATE,
                note: String::new(),
            },
            Row {
                path: "cold".into(),
                stats: None,
                gate: COLD_START_GATE,
                note: "skipped: no binary".into(),
            },
        ];
        assert!(rows[0].passed() && !rows[1].passed() && rows[2].passed());
        let table = render_markdown(&rows);
        assert!(
            table.contains("| fast | 10 ns | 20 ns | 10 × 1 | p50 ≤ 200 ns, p99 ≤ 1.00 µs | ✓ |")
        );
        assert!(table.contains("| slow | 1.50 µs | 2.00 ms |"));
        assert!(table.contains("✗ MISSED"));
        assert!(table.contains("| cold | — | — | — | p50 ≤ 5.00 ms | skipped: no binary |"));
    }

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
}
