//! The pure half of the gate run: rows beside the reference's figures, ratio and gate
//! logic, the Markdown table, the reference's JSON report, and the README splice
//! (docs/architecture.md#performance-gates, docs/development.md#cargo-xtask-bench).

use crate::measure::Stats;
use serde_json::Value;
use std::collections::BTreeMap;

/// Upper bounds for one path, in nanoseconds per call, and an optional ratio
/// against the reference.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gate {
    /// Bound on the median.
    pub p50_ns: Option<f64>,
    /// Bound on the 99th percentile.
    pub p99_ns: Option<f64>,
    /// "At least X× faster than the reference": with the reference measured in the same
    /// run, the bounds become its p50/p99 divided by X; without it, `p50_ns`/`p99_ns`
    /// hold the stored fallback.
    pub vs_reference: Option<f64>,
}

impl Gate {
    /// No gate: the row is information.
    pub const NONE: Gate = Gate {
        p50_ns: None,
        p99_ns: None,
        vs_reference: None,
    };

    /// A bound on the median only.
    pub const fn p50(ns: f64) -> Gate {
        Gate {
            p50_ns: Some(ns),
            p99_ns: None,
            vs_reference: None,
        }
    }

    /// A bound on the 99th percentile only.
    pub const fn p99(ns: f64) -> Gate {
        Gate {
            p50_ns: None,
            p99_ns: Some(ns),
            vs_reference: None,
        }
    }

    /// Bounds on both.
    pub const fn both(p50: f64, p99: f64) -> Gate {
        Gate {
            p50_ns: Some(p50),
            p99_ns: Some(p99),
            vs_reference: None,
        }
    }

    /// Every bound multiplied by `slack` (the ratio itself is not changed: its
    /// bounds are derived again by [`Gate::against`]).
    pub fn scaled(self, slack: f64) -> Gate {
        Gate {
            p50_ns: self.p50_ns.map(|g| g * slack),
            p99_ns: self.p99_ns.map(|g| g * slack),
            vs_reference: self.vs_reference,
        }
    }

    /// A ratio gate resolved against the reference measured in this run (its p50 and
    /// p99 divided by the ratio, times `slack`); other gates are returned unchanged.
    pub fn against(self, reference: Option<&Stats>, slack: f64) -> Gate {
        match (self.vs_reference, reference) {
            (Some(x), Some(r)) if x > 0.0 => Gate {
                p50_ns: Some(r.p50_ns / x * slack),
                p99_ns: Some(r.p99_ns / x * slack),
                vs_reference: Some(x),
            },
            _ => self,
        }
    }

    /// True when `s` meets every bound.
    pub fn met_by(&self, s: &Stats) -> bool {
        self.p50_ns.is_none_or(|g| s.p50_ns <= g) && self.p99_ns.is_none_or(|g| s.p99_ns <= g)
    }

    /// True when the gate bounds nothing.
    pub fn is_none(&self) -> bool {
        self.p50_ns.is_none() && self.p99_ns.is_none()
    }
}

/// A pass/fail condition of a row beyond its percentiles (throughput, amortised cost,
/// flatness), already evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is claimed, with the measured figure (e.g. `amortised 0.61 µs ≤ 1.00 µs`).
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
}

impl Check {
    /// `measured ≤ bound`, rendered as `LABEL MEASURED ≤ BOUND`.
    pub fn at_most(label: &str, measured: f64, bound: f64, fmt: fn(f64) -> String) -> Check {
        Check {
            what: format!("{label} {} ≤ {}", fmt(measured), fmt(bound)),
            ok: measured <= bound,
        }
    }

    /// `measured ≥ bound`, rendered as `LABEL MEASURED ≥ BOUND`.
    pub fn at_least(label: &str, measured: f64, bound: f64, fmt: fn(f64) -> String) -> Check {
        Check {
            what: format!("{label} {} ≥ {}", fmt(measured), fmt(bound)),
            ok: measured >= bound,
        }
    }
}

/// One measured path.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Stable key, shared with scripts/bench-reference.py's report (e.g. `evaluate.approve`).
    pub key: String,
    /// Path name, as the table shows it.
    pub path: String,
    /// Our measurement, or `None` when the path was skipped.
    pub stats: Option<Stats>,
    /// The gate (already scaled by the slack and resolved against the reference).
    pub gate: Gate,
    /// Further conditions, already evaluated.
    pub checks: Vec<Check>,
    /// The reference's measurement of the same path in the same run, if any.
    pub reference: Option<Stats>,
    /// Why a path was skipped, or other remarks (printed under the table).
    pub note: String,
}

impl Row {
    /// A measured row without checks, reference or note.
    pub fn new(key: &str, path: impl Into<String>, gate: Gate, stats: Stats) -> Row {
        Row {
            key: key.to_owned(),
            path: path.into(),
            stats: Some(stats),
            gate,
            checks: Vec::new(),
            reference: None,
            note: String::new(),
        }
    }

    /// A skipped row.
    pub fn skipped(key: &str, path: impl Into<String>, gate: Gate, why: impl Into<String>) -> Row {
        Row {
            key: key.to_owned(),
            path: path.into(),
            stats: None,
            gate,
            checks: Vec::new(),
            reference: None,
            note: why.into(),
        }
    }

    /// True unless the path was measured and missed its gate or a check.
    pub fn passed(&self) -> bool {
        self.stats.as_ref().is_none_or(|s| self.gate.met_by(s)) && self.checks.iter().all(|c| c.ok)
    }

    /// True when nothing is gated (only information).
    pub fn is_info(&self) -> bool {
        self.gate.is_none() && self.checks.is_empty()
    }

    /// Reference p50 over ours: how many times faster we are (`None` without both).
    pub fn ratio(&self) -> Option<f64> {
        let ours = self.stats.as_ref()?.p50_ns;
        let theirs = self.reference.as_ref()?.p50_ns;
        (ours > 0.0 && theirs > 0.0).then(|| theirs / ours)
    }
}

/// Attaches the reference's measurements to the rows with the same key, and resolves
/// ratio gates against them (`slack` as for the other gates).
pub fn join_reference(rows: &mut [Row], reference: &ReferenceReport, slack: f64) {
    for r in rows {
        r.reference = reference.paths.get(&r.key).copied();
        r.gate = r.gate.against(r.reference.as_ref(), slack);
    }
}

/// A duration in the unit that keeps three significant digits (`31 ns`, `1.31 µs`, `2.55 ms`, `5.40 s`).
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// An integer with thousands separators (`10,000`).
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate, with thousands separators (`70,426/s`).
pub fn fmt_rate(per_s: f64) -> String {
    group_thousands(per_s.max(0.0).round() as u64) + "/s"
}

/// A plain ratio (`1.04×`).
pub fn fmt_times(x: f64) -> String {
    format!("{x:.2}×")
}

fn fmt_pair(s: Option<&Stats>) -> String {
    s.map_or_else(
        || "—".to_owned(),
        |s| format!("{} / {}", fmt_ns(s.p50_ns), fmt_ns(s.p99_ns)),
    )
}

/// The gate column: percentile bounds (with the ratio they come from) and checks.
pub fn fmt_gate(row: &Row) -> String {
    let g = &row.gate;
    let mut parts = Vec::new();
    if let Some(x) = g.vs_reference {
        parts.push(format!("≥ {x:.0}× the reference"));
    }
    match (g.p50_ns, g.p99_ns) {
        (None, None) => {}
        (Some(a), None) => parts.push(format!("p50 ≤ {}", fmt_ns(a))),
        (None, Some(b)) => parts.push(format!("p99 ≤ {}", fmt_ns(b))),
        (Some(a), Some(b)) => parts.push(format!("p50 ≤ {}, p99 ≤ {}", fmt_ns(a), fmt_ns(b))),
    }
    parts.extend(row.checks.iter().map(|c| c.what.clone()));
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

/// The rows as a Markdown table: path | ours p50 / p99 | reference p50 / p99 |
/// reference/ours (p50) | gate | ok, then each row's note as a list item.
pub fn render_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| path | ours p50 / p99 | reference p50 / p99 | reference/ours (p50) | gate | ok |\n\
         |---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let ok = match (&r.stats, r.passed()) {
            (None, _) => "skipped",
            (Some(_), true) if r.is_info() => "info",
            (Some(_), true) => "✓",
            (Some(_), false) => "✗",
        };
        let ratio = r.ratio().map_or_else(|| "—".to_owned(), fmt_times);
        out.push_str(&format!(
            "| {} | {} | {} | {ratio} | {} | {ok} |\n",
            r.path,
            fmt_pair(r.stats.as_ref()),
            fmt_pair(r.reference.as_ref()),
            fmt_gate(r),
        ));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("- {}: {}\n", r.path, r.note))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.extend(notes);
    }
    out
}

/// Why the reference's report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Not JSON, or not the expected shape.
    #[error("the reference's report is not valid: {0}")]
    Invalid(String),
}

/// What scripts/bench-reference.py printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceReport {
    /// The reference's name and version (`cfa-kernel 1.1.0`).
    pub reference: String,
    /// The Python version it ran on.
    pub python: String,
    /// Measurements by row key.
    pub paths: BTreeMap<String, Stats>,
    /// Extra figures by row key (e.g. `first_p50_ns`, `rss_end_kb` of the kernel row).
    pub extra: BTreeMap<String, BTreeMap<String, f64>>,
    /// Paths the reference skipped, with the reason.
    pub skipped: BTreeMap<String, String>,
}

/// Reads the JSON report of scripts/bench-reference.py (the last non-empty line of
/// `text` that starts with `{`, so warnings printed before it do not matter).
pub fn parse_reference(text: &str) -> Result<ReferenceReport, ReferenceError> {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| ReferenceError::Invalid("no JSON object in the output".into()))?;
    let v: Value =
        serde_json::from_str(line).map_err(|e| ReferenceError::Invalid(e.to_string()))?;
    let text_of = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut report = ReferenceReport {
        reference: text_of("reference"),
        python: text_of("python"),
        ..ReferenceReport::default()
    };
    let paths = v
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| ReferenceError::Invalid("no \"paths\" object".into()))?;
    for (key, p) in paths {
        let num = |k: &str| p.get(k).and_then(Value::as_f64);
        let (Some(p50), Some(p99)) = (num("p50_ns"), num("p99_ns")) else {
            return Err(ReferenceError::Invalid(format!(
                "path {key:?} lacks p50_ns/p99_ns"
            )));
        };
        if !(p50.is_finite() && p99.is_finite() && p50 >= 0.0 && p99 >= p50) {
            return Err(ReferenceError::Invalid(format!(
                "path {key:?}: p50 {p50} / p99 {p99} are not ordered non-negative numbers"
            )));
        }
        report.paths.insert(
            key.clone(),
            Stats {
                p50_ns: p50,
                p99_ns: p99,
                max_ns: num("max_ns").unwrap_or(p99),
                samples: p.get("samples").and_then(Value::as_u64).unwrap_or(0),
                batch: p
                    .get("batch")
                    .and_then(Value::as_u64)
                    .and_then(|b| u32::try_from(b).ok())
                    .unwrap_or(1),
            },
        );
        let extra: BTreeMap<String, f64> = p
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "p50_ns" | "p99_ns" | "max_ns" | "samples" | "batch"
                )
            })
            .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
            .collect();
        if !extra.is_empty() {
            report.extra.insert(key.clone(), extra);
        }
    }
    if let Some(s) = v.get("skipped").and_then(Value::as_object) {
        for (k, why) in s {
            report
                .skipped
                .insert(k.clone(), why.as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(report)
}

/// The README markers the generated Performance table sits between.
pub const README_START: &str = "<!-- bench-table:start -->";
/// See [`README_START`].
pub const README_END: &str = "<!-- bench-table:end -->";

/// Why the README could not be updated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpliceError {
    /// A marker is missing, repeated or out of order.
    #[error("the README must hold `{README_START}` once, followed by `{README_END}` once")]
    Markers,
}

/// `readme` with everything between the markers replaced by `block` (a newline after
/// the start marker and before the end marker); every byte outside them is kept.
pub fn splice_readme(readme: &str, block: &str) -> Result<String, SpliceError> {
    if readme.matches(README_START).count() != 1 || readme.matches(README_END).count() != 1 {
        return Err(SpliceError::Markers);
    }
    let (head, rest) = readme
        .split_once(README_START)
        .ok_or(SpliceError::Markers)?;
    let (_, tail) = rest.split_once(README_END).ok_or(SpliceError::Markers)?;
    let block = block.trim_end_matches('\n');
    Ok(format!("{head}{README_START}\n{block}\n{README_END}{tail}"))
}

/// Describes the machine: `N cores, CPU MODEL` from `nproc`'s figure and
/// `/proc/cpuinfo`'s first `model name`.
pub fn machine_description(nproc: usize, cpuinfo: &str) -> String {
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{nproc} cores, {model}")
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
    fn gates_bound_median_and_p99_and_scale() {
        let g = Gate::both(200.0, 1_000.0);
        assert!(g.met_by(&stats(200.0, 1_000.0)));
        assert!(!g.met_by(&stats(201.0, 500.0)));
        assert!(!g.met_by(&stats(100.0, 1_001.0)));
        assert!(g.scaled(2.0).met_by(&stats(399.0, 1_999.0)));
        assert!(Gate::p99(5_000.0).met_by(&stats(1e9, 5_000.0)));
        assert!(Gate::NONE.met_by(&stats(1e12, 1e12)));
    }

    #[test]
    fn ratio_gates_follow_the_live_reference() {
        let stored = Gate {
            p50_ns: Some(1_410.0),
            p99_ns: Some(2_880.0),
            vs_reference: Some(10.0),
        };
        // No reference measured: the stored fallback stays.
        assert_eq!(stored.against(None, 1.0), stored);
        let live = stored.against(Some(&stats(10_000.0, 20_000.0)), 1.0);
        assert_eq!((live.p50_ns, live.p99_ns), (Some(1_000.0), Some(2_000.0)));
        assert!(live.met_by(&stats(1_000.0, 2_000.0)));
        assert!(!live.met_by(&stats(1_001.0, 1_500.0)));
        let slack = stored.against(Some(&stats(10_000.0, 20_000.0)), 2.0);
        assert_eq!(slack.p50_ns, Some(2_000.0));
        // Absolute gates ignore the reference.
        assert_eq!(
            Gate::p50(5.0).against(Some(&stats(1.0, 2.0)), 1.0),
            Gate::p50(5.0)
        );
    }

    #[test]
    fn ratio_is_reference_over_ours() {
        let mut r = Row::new("k", "p", Gate::NONE, stats(50.0, 60.0));
        assert_eq!(r.ratio(), None);
        r.reference = Some(stats(5_000.0, 9_000.0));
        assert_eq!(r.ratio(), Some(100.0));
        r.stats = None;
        assert_eq!(r.ratio(), None);
    }

    #[test]
    fn checks_fail_a_row_that_meets_its_percentiles() {
        let mut r = Row::new("k", "p", Gate::p99(2e6), stats(1e5, 1e6));
        assert!(r.passed() && !r.is_info());
        r.checks
            .push(Check::at_least("throughput", 59_999.0, 60_000.0, fmt_rate));
        assert!(!r.passed());
        assert_eq!(r.checks[0].what, "throughput 59,999/s ≥ 60,000/s");
        let c = Check::at_most("amortised", 900.0, 1_000.0, fmt_ns);
        assert!(c.ok);
        assert_eq!(c.what, "amortised 900 ns ≤ 1.00 µs");
        assert!(!Check::at_most("x", 1.2, 1.1, fmt_times).ok);
    }

    #[test]
    fn table_shows_both_sides_ratio_and_verdict() {
        let mut fast = Row::new(
            "evaluate.approve",
            "fast",
            Gate::both(200.0, 1_000.0),
            stats(10.0, 20.0),
        );
        fast.reference = Some(stats(4_540.0, 5_830.0));
        let slow = Row::new(
            "x",
            "slow",
            Gate::both(200.0, 1_000.0),
            stats(1_500.0, 2_000_000.0),
        );
        let info = Row::new("y", "info", Gate::NONE, stats(5.0, 6.0));
        let cold = Row::skipped("z", "cold", Gate::p50(5e6), "no binary");
        let mut ratio = Row::new(
            "evaluate.block",
            "block",
            Gate {
                p50_ns: None,
                p99_ns: None,
                vs_reference: Some(10.0),
            },
            stats(100.0, 200.0),
        );
        ratio.reference = Some(stats(10_000.0, 20_000.0));
        ratio.gate = ratio.gate.against(ratio.reference.as_ref(), 1.0);
        let table = render_markdown(&[fast, slow, info, cold, ratio]);
        assert!(table.contains(
            "| fast | 10 ns / 20 ns | 4.54 µs / 5.83 µs | 454.00× | p50 ≤ 200 ns, p99 ≤ 1.00 µs | ✓ |"
        ));
        assert!(table.contains("| slow | 1.50 µs / 2.00 ms | — | — |"));
        assert!(table.contains("| ✗ |"));
        assert!(table.contains("| info | 5 ns / 6 ns | — | — | — | info |"));
        assert!(table.contains("| cold | — | — | — | p50 ≤ 5.00 ms | skipped |"));
        assert!(table.contains("- cold: no binary\n"));
        assert!(table.contains(
            "| block | 100 ns / 200 ns | 10.00 µs / 20.00 µs | 100.00× | ≥ 10× the reference; p50 ≤ 1.00 µs, p99 ≤ 2.00 µs | ✓ |"
        ));
    }

    #[test]
    fn formats_units_and_rates() {
        assert_eq!(fmt_ns(31.4), "31 ns");
        assert_eq!(fmt_ns(1_310.0), "1.31 µs");
        assert_eq!(fmt_ns(2_550_000.0), "2.55 ms");
        assert_eq!(fmt_ns(5_400_000_000.0), "5.40 s");
        assert_eq!(fmt_rate(70_425.6), "70,426/s");
        assert_eq!(fmt_rate(999.0), "999/s");
        assert_eq!(fmt_rate(1_234_567.0), "1,234,567/s");
    }

    #[test]
    fn reads_the_reference_report() {
        let out = "warning: something\n{\"reference\": \"cfa-kernel 1.1.0\", \"python\": \"3.11.7\", \
            \"paths\": {\"evaluate.approve\": {\"p50_ns\": 4540.0, \"p99_ns\": 5828.0, \"max_ns\": 9e6, \
            \"samples\": 5527, \"batch\": 1}, \"kernel.executed\": {\"p50_ns\": 8e5, \"p99_ns\": 1.4e7, \
            \"samples\": 200, \"first_p50_ns\": 845270.0, \"rss_end_kb\": 35072}}, \
            \"skipped\": {\"cli.audit_verify\": \"no --chain given\"}}\n";
        let r = parse_reference(out).unwrap();
        assert_eq!(r.reference, "cfa-kernel 1.1.0");
        assert_eq!(r.python, "3.11.7");
        let a = r.paths["evaluate.approve"];
        assert_eq!(
            (a.p50_ns, a.p99_ns, a.max_ns, a.samples, a.batch),
            (4540.0, 5828.0, 9e6, 5527, 1)
        );
        let k = r.paths["kernel.executed"];
        assert_eq!((k.max_ns, k.batch), (1.4e7, 1));
        assert_eq!(r.extra["kernel.executed"]["first_p50_ns"], 845_270.0);
        assert_eq!(r.extra["kernel.executed"]["rss_end_kb"], 35_072.0);
        assert!(!r.extra.contains_key("evaluate.approve"));
        assert_eq!(r.skipped["cli.audit_verify"], "no --chain given");

        let mut rows = vec![
            Row::new("evaluate.approve", "a", Gate::NONE, stats(10.0, 20.0)),
            Row::new("http.audit", "h", Gate::NONE, stats(10.0, 20.0)),
        ];
        join_reference(&mut rows, &r, 1.0);
        assert_eq!(rows[0].reference, Some(a));
        assert_eq!(rows[1].reference, None);
    }

    #[test]
    fn rejects_malformed_reference_reports() {
        assert!(parse_reference("").is_err());
        assert!(parse_reference("Traceback (most recent call last):").is_err());
        assert!(parse_reference("{\"paths\": 3}").is_err());
        assert!(parse_reference("{\"paths\": {\"a\": {\"p50_ns\": 1}}}").is_err());
        assert!(parse_reference("{\"paths\": {\"a\": {\"p50_ns\": 5, \"p99_ns\": 1}}}").is_err());
        assert!(parse_reference("{\"paths\": {\"a\": {\"p50_ns\": 1, \"p99_ns\": 5}}}").is_ok());
    }

    #[test]
    fn splice_keeps_everything_outside_the_markers() {
        let readme = "# T\r\n\nintro ✓\n<!-- bench-table:start -->\nold\ntable\n<!-- bench-table:end -->\ntail\n\n  trailing  ";
        let out = splice_readme(readme, "| new |\n\n").unwrap();
        assert_eq!(
            out,
            "# T\r\n\nintro ✓\n<!-- bench-table:start -->\n| new |\n<!-- bench-table:end -->\ntail\n\n  trailing  "
        );
        // Idempotent, and the bytes outside are identical.
        assert_eq!(splice_readme(&out, "| new |").unwrap(), out);
        let (head, _) = out.split_once(README_START).unwrap();
        assert_eq!(head, "# T\r\n\nintro ✓\n");
        assert!(out.ends_with("<!-- bench-table:end -->\ntail\n\n  trailing  "));
    }

    #[test]
    fn splice_refuses_missing_or_repeated_markers() {
        assert_eq!(splice_readme("no markers", "x"), Err(SpliceError::Markers));
        let twice = format!("{README_START}{README_END}{README_START}{README_END}");
        assert_eq!(splice_readme(&twice, "x"), Err(SpliceError::Markers));
        let reversed = format!("a{README_END}b{README_START}c");
        assert_eq!(splice_readme(&reversed, "x"), Err(SpliceError::Markers));
    }

    #[test]
    fn describes_the_machine() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            machine_description(2, cpuinfo),
            "2 cores, Intel(R) Xeon(R) CPU @ 2.20GHz"
        );
        assert_eq!(machine_description(4, ""), "4 cores, unknown CPU");
    }
}
