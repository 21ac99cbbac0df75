//! CFA reports: turns an audit log (JSONL or SQLite), optionally with the lifecycle
//! database and the rules of a policy bundle, into one self-contained HTML page — no
//! script, no CDN, no fetch of any kind (a Content-Security-Policy forbids it), charts
//! drawn as inline SVG, every value from the log escaped. Five pages
//! ([`ReportKind`]): `execution` (one run), `audit` (chain integrity and the last
//! checkpoint, events per stage), `lifecycle` (IFo/IFs/IFg/IDI per skill and their
//! trend), `compliance` (blocked reasons, PII incidents, rule hits over time) and
//! `dashboard` (the overview). The same input gives the same bytes: "generated at" is
//! the injected [`ReportOptions::now`], else the log's last timestamp.
//!
//! It owns reading for reporting ([`LogData`], [`LifecycleData`]), the summaries and
//! the HTML, and the [`evidence`] bundles of a run (export and offline verification:
//! manifest, provenance, in-toto statement, inclusion proofs). It must NOT know about the CLI, HTTP, policy evaluation (a bundle arrives
//! as plain [`BundleInfo`]) or the kernel; it never writes to a log or database (an evidence export signs a
//! checkpoint into the bundle only).
//!
//! ```
//! use cfa_audit::NewEvent;
//! use cfa_report::{Integrity, LogData, ReportInput, ReportKind, ReportOptions, render};
//!
//! let first = NewEvent::new("i-1", "policy_check", "policy_evaluation", "block",
//!     "2026-01-05T10:00:00+00:00")
//!     .detail("faults", serde_json::json!(["GOVERNANCE_PII_WITHOUT_POLICY"]))
//!     .seal("");
//! let log = LogData::from_events("audit.jsonl", vec![first], Integrity {
//!     events: 1, first_bad: None, tail_hash: String::new(), checkpoint: None });
//! let html = render(ReportKind::Compliance,
//!     &ReportInput { log: Some(&log), ..ReportInput::default() },
//!     &ReportOptions::default())?;
//! assert!(html.contains("data-k=\"pii_incidents\">1<"));
//! assert!(html.contains("generated at 2026-01-05 10:00 UTC"));
//! # Ok::<(), cfa_report::ReportError>(())
//! ```

mod data;
mod error;
pub mod evidence;
pub mod html;
mod pages;
pub mod summary;
pub mod svg;

pub use data::{
    BadLink, BundleInfo, CheckpointView, Integrity, LifecycleData, LoadOptions, LogData, RuleInfo,
    Signature, default_checkpoint_path,
};
pub use error::ReportError;
pub use html::CSP;

use jiff::Timestamp;
use std::io::Write as _;
use std::path::Path;

/// The five reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// One run: phases, violations, sandbox metrics, the decision.
    Execution,
    /// Chain integrity, the last checkpoint, events per stage and type.
    Audit,
    /// Indices per skill and their trend (needs the lifecycle database).
    Lifecycle,
    /// Blocked reasons, PII incidents, rule hits over time, replan loops.
    Compliance,
    /// The overview.
    Dashboard,
}

impl ReportKind {
    /// Every kind, in the CLI's order.
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Execution,
        ReportKind::Audit,
        ReportKind::Lifecycle,
        ReportKind::Compliance,
        ReportKind::Dashboard,
    ];

    /// The kind's name (`execution`, `audit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Execution => "execution",
            ReportKind::Audit => "audit",
            ReportKind::Lifecycle => "lifecycle",
            ReportKind::Compliance => "compliance",
            ReportKind::Dashboard => "dashboard",
        }
    }
}

/// What a report is built from; every part is optional and a page says what is missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportInput<'a> {
    /// The audit log.
    pub log: Option<&'a LogData>,
    /// The lifecycle database.
    pub lifecycle: Option<&'a LifecycleData>,
    /// The policy bundle whose rules name the fault codes.
    pub bundle: Option<&'a BundleInfo>,
}

/// How a report is built.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// "Now": the end of the period and the page's "generated at". Default: the log's
    /// last timestamp (else the lifecycle database's last record), so output is
    /// deterministic.
    pub now: Option<Timestamp>,
    /// The period, days before `now` (events outside it are left out).
    pub period_days: u32,
    /// `execution`: the intent to report (default: the latest run).
    pub intent_id: Option<String>,
    /// The lifecycle indices' window, days (the promotion policy's, 7 by default).
    pub index_window_days: u32,
    /// Make the page reload itself every N seconds (the served dashboard).
    pub refresh_secs: Option<u32>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            now: None,
            period_days: 90,
            intent_id: None,
            index_window_days: 7,
            refresh_secs: None,
        }
    }
}

/// Renders one report as a complete HTML document.
pub fn render(
    kind: ReportKind,
    input: &ReportInput<'_>,
    opts: &ReportOptions,
) -> Result<String, ReportError> {
    let events = input.log.map(|l| l.events.as_slice()).unwrap_or_default();
    let now = opts.now.or_else(|| summary::last_time(events)).or_else(|| {
        input
            .lifecycle
            .and_then(|l| l.records.iter().map(|r| r.timestamp).max())
    });
    let from = now.map(|n| cfa_lifecycle::time::minus_days(n, opts.period_days));
    let ctx = pages::Ctx {
        log: input.log,
        lifecycle: input.lifecycle,
        bundle: input.bundle,
        summary: summary::summarise(events, from, now),
        now,
        period_days: opts.period_days,
        index_window_days: opts.index_window_days.max(1),
    };
    Ok(match kind {
        ReportKind::Dashboard => pages::dashboard(&ctx, opts.refresh_secs),
        ReportKind::Compliance => pages::compliance(&ctx),
        ReportKind::Lifecycle => pages::lifecycle(&ctx),
        ReportKind::Audit => pages::audit(&ctx),
        ReportKind::Execution => {
            let source = input
                .log
                .map_or_else(|| "no audit log".to_owned(), |l| l.source.clone());
            let runs = &ctx.summary.runs;
            let (run, same) = match &opts.intent_id {
                Some(id) => {
                    let same: Vec<_> = runs.iter().filter(|r| &r.intent_id == id).collect();
                    match same.last() {
                        Some(r) => (*r, same.len()),
                        None => {
                            return Err(ReportError::UnknownIntent {
                                intent_id: id.clone(),
                                source_name: source,
                                period_days: opts.period_days,
                            });
                        }
                    }
                }
                None => match runs.iter().max_by_key(|r| r.events.last().copied()) {
                    Some(r) => (r, 1),
                    None => {
                        return Err(ReportError::NoRun {
                            source_name: source,
                        });
                    }
                },
            };
            pages::execution(&ctx, run, same)
        }
    })
}

/// Writes `html` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`. On failure `path` is untouched and no temporary is left.
pub fn write_atomic(path: &Path, html: &str) -> Result<(), ReportError> {
    let err = |e: std::io::Error| ReportError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(html.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests;
