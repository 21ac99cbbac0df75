//! Exit codes (docs/differences.md#b2-fail-closed). Every command maps its outcome through these.

/// The decision approved the work, or the command succeeded.
pub const APPROVED: u8 = 0;
/// Invalid input or an I/O error.
pub const INVALID_INPUT: u8 = 1;
/// Usage error (bad flags); clap also exits with 2.
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// The decision requires a replan.
#[allow(dead_code)]
pub const REPLAN: u8 = 3;
/// The decision blocked the work.
#[allow(dead_code)]
pub const BLOCKED: u8 = 4;
/// Executed but not published (rolled back, quarantined, partial, degraded).
#[allow(dead_code)]
pub const NOT_PUBLISHED: u8 = 5;
