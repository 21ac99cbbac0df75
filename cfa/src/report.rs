//! Reports people look at: one self-contained HTML page (inline CSS and SVG, no
//! script, nothing fetched) per report kind, built from the audit log, the lifecycle
//! database and the rules of a bundle. Re-exported from cfa-report (feature `sqlite`).
//!
//! ```
//! use cfa::report::{ReportInput, ReportKind, ReportOptions, render};
//!
//! // No data: the page says so instead of plotting zeros.
//! let html = render(ReportKind::Dashboard, &ReportInput::default(), &ReportOptions::default())?;
//! assert!(html.contains("No data: no audit log was given"));
//! # Ok::<(), cfa::report::ReportError>(())
//! ```

/// Evidence bundles per run: export and offline verification (see [`cfa_report::evidence`]).
pub use cfa_report::evidence;
pub use cfa_report::{
    BadLink, BundleInfo, CSP, CheckpointView, Integrity, LifecycleData, LoadOptions, LogData,
    ReportError, ReportInput, ReportKind, ReportOptions, RuleInfo, Signature,
    default_checkpoint_path, render, write_atomic,
};
