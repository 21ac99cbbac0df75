//! Budgets per scope over a window: reservation, reconciliation, release.
//!
//! A [`Budget`] caps what runs charged to one [`Scope`] (`domain:NAME`, `target:NAME`
//! or `agent:ID`) may use in one [`Window`]: DBU (cost), runs and rows ([`Limits`]).
//! Windows are **fixed and anchored at the Unix epoch**: a `24h` window starts at
//! midnight UTC, a `1h` window on the hour, a `30d` window every 30 days from
//! 1970-01-01. What a window has used is the sum of its reservations that are not
//! released; a budget whose window (or limits) changes starts counting in the new
//! window's own slot.
//!
//! The life of a charge: [`BudgetLedger::reserve`] admits a run's estimate
//! ([`Usage`]: 1 run, the signature's `max_cost_dbu`, 0 rows) against every budget that
//! applies, or refuses it with [`BudgetExceeded`] (the scope, the dimension and what
//! remains); [`BudgetLedger::reconcile`] replaces the estimate with what the sandbox
//! measured; [`BudgetLedger::release`] gives it back (a rolled-back or failed run).
//! A dimension is admitted when `used + requested <= limit`; a request of 0 in a
//! limited dimension (rows, or DBU without an estimate) is admitted while something
//! remains (`used < limit`), so an exhausted budget blocks every run.
//!
//! DBU amounts are kept as integer micro-DBU ([`Usage::dbu_micros`]) so sums never drift.
//! Stores: [`MemoryBudgets`] (one process); with feature `sqlite`, `SqliteBudgets`
//! (the lifecycle database; one `BEGIN IMMEDIATE` transaction per reservation, so
//! processes sharing the file never overspend); with feature `postgres`, `PgBudgets`
//! (one PostgreSQL database every replica shares; the budget rows are locked
//! `FOR UPDATE` before a window's usage is read, so sessions never overspend).

#[cfg(feature = "postgres")]
mod pg;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use pg::PgBudgets;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBudgets;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

/// The fault code of a run a budget refuses.
pub const BUDGET_EXCEEDED: &str = "BUDGET_EXCEEDED";

/// Micro-DBU in one DBU.
pub const MICROS_PER_DBU: u64 = 1_000_000;

// ----- scopes -------------------------------------------------------------------------

/// What a budget is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// The signature's domain.
    Domain,
    /// The run's target table (the plan's target).
    Target,
    /// The agent or caller that asked for the run.
    Agent,
}

impl ScopeKind {
    /// `domain`, `target` or `agent`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Domain => "domain",
            ScopeKind::Target => "target",
            ScopeKind::Agent => "agent",
        }
    }
}

/// A budget scope: `KIND:NAME` (`domain:finance`, `target:silver.nfe`, `agent:bot-7`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// The kind.
    pub kind: ScopeKind,
    /// The name (non-empty, no surrounding spaces).
    pub name: String,
}

impl Scope {
    /// A scope of `kind` named `name`.
    pub fn new(kind: ScopeKind, name: impl Into<String>) -> Self {
        Scope {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

impl FromStr for Scope {
    type Err = BudgetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| BudgetError::Invalid(format!("scope '{s}': {why}"));
        let Some((kind, name)) = s.split_once(':') else {
            return Err(bad(
                "expected KIND:NAME with KIND domain, target or agent (e.g. domain:finance)",
            ));
        };
        let kind = match kind {
            "domain" => ScopeKind::Domain,
            "target" => ScopeKind::Target,
            "agent" => ScopeKind::Agent,
            _ => return Err(bad("the kind must be domain, target or agent")),
        };
        if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
            return Err(bad(
                "the name must be non-empty, without surrounding spaces or control characters",
            ));
        }
        Ok(Scope::new(kind, name))
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ----- windows ------------------------------------------------------------------------

/// A fixed window length, anchored at the Unix epoch (`30m`, `1h`, `24h`, `7d`, `30d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    secs: u64,
}

/// The longest window: 366 days.
pub const MAX_WINDOW_SECS: u64 = 366 * 86_400;

impl Window {
    /// A window of `secs` seconds (1 s to 366 days).
    pub fn from_secs(secs: u64) -> Result<Self, BudgetError> {
        if secs == 0 || secs > MAX_WINDOW_SECS {
            return Err(BudgetError::Invalid(format!(
                "window of {secs} s: it must be between 1 s and 366 days"
            )));
        }
        Ok(Window { secs })
    }

    /// The length in seconds.
    pub const fn secs(self) -> u64 {
        self.secs
    }

    /// The start (epoch seconds) of the window holding `now` (epoch seconds).
    pub fn start_of(self, now: i64) -> i64 {
        let len = i64::try_from(self.secs).unwrap_or(i64::MAX);
        now.saturating_sub(now.rem_euclid(len))
    }

    /// The end (exclusive, epoch seconds) of the window starting at `start`.
    pub fn end_of(self, start: i64) -> i64 {
        start.saturating_add(i64::try_from(self.secs).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Window {
    /// The largest unit that divides the length exactly (`86400` s is `24h`, shown in
    /// hours up to a day, days beyond).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        if s.is_multiple_of(86_400) && s > 86_400 {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl FromStr for Window {
    type Err = BudgetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            BudgetError::Invalid(format!(
                "window '{s}': expected a number and a unit s, m, h, d or w (e.g. 1h, 24h, 30d)"
            ))
        };
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = s.split_at(unit_at);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        Window::from_secs(n.checked_mul(per).ok_or_else(bad)?)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Epoch seconds of an ISO 8601 UTC timestamp `YYYY-MM-DDTHH:MM:SS[.f](Z|+00:00)` (what
/// the audit clocks give).
pub fn epoch_seconds(iso: &str) -> Result<i64, BudgetError> {
    let bad = || {
        BudgetError::Invalid(format!(
            "timestamp '{iso}': expected YYYY-MM-DDTHH:MM:SS+00:00"
        ))
    };
    let b = iso.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, BudgetError> {
        let part = iso.get(from..from.saturating_add(len)).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let sep = |at: usize, c: u8| b.get(at).copied() == Some(c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && (sep(10, b'T') || sep(10, b' '))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return Err(bad());
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = iso.get(19..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        rest = frac.get(digits..).ok_or_else(bad)?;
    }
    if !matches!(rest, "Z" | "+00:00" | "") {
        return Err(bad());
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    // Days from civil (H. Hinnant), proleptic Gregorian.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3_600 + mi * 60 + s)
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` of epoch seconds.
pub fn iso_of(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

// ----- amounts ------------------------------------------------------------------------

/// Micro-DBU of a DBU amount (finite, non-negative, rounded to the micro-DBU).
pub fn dbu_to_micros(dbu: f64) -> Result<u64, BudgetError> {
    if !dbu.is_finite() || !(0.0..=1e12).contains(&dbu) {
        return Err(BudgetError::Invalid(format!(
            "DBU amount {dbu}: it must be a non-negative number up to 1e12"
        )));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((dbu * 1e6).round() as u64)
}

/// A micro-DBU amount as DBU text (`12.5`, `0.000001`, `3`).
pub fn format_dbu(micros: u64) -> String {
    let whole = micros / MICROS_PER_DBU;
    let frac = micros % MICROS_PER_DBU;
    if frac == 0 {
        return whole.to_string();
    }
    let text = format!("{whole}.{frac:06}");
    text.trim_end_matches('0').to_owned()
}

/// A micro-DBU amount as a float DBU (JSON and gauges).
#[allow(clippy::cast_precision_loss)]
pub fn micros_as_dbu(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// One dimension of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Cost, DBU.
    Dbu,
    /// Number of runs.
    Runs,
    /// Rows written.
    Rows,
}

impl Dimension {
    /// Every dimension, in display order.
    pub const ALL: [Dimension; 3] = [Dimension::Dbu, Dimension::Runs, Dimension::Rows];

    /// `dbu`, `runs` or `rows`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Dbu => "dbu",
            Dimension::Runs => "runs",
            Dimension::Rows => "rows",
        }
    }

    /// An amount of this dimension as text (DBU as a decimal).
    pub fn format(self, amount: u64) -> String {
        match self {
            Dimension::Dbu => format_dbu(amount),
            Dimension::Runs | Dimension::Rows => amount.to_string(),
        }
    }
}

/// What runs use (or are estimated to use): DBU in micro-DBU, runs, rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Cost, micro-DBU.
    pub dbu_micros: u64,
    /// Runs.
    pub runs: u64,
    /// Rows written.
    pub rows: u64,
}

impl Usage {
    /// The estimate of one run: 1 run, `estimated_dbu` (the signature's `max_cost_dbu`
    /// or the planner's estimate; none counts 0), 0 rows (rows are known only after).
    pub fn estimate(estimated_dbu: Option<f64>) -> Result<Self, BudgetError> {
        Ok(Usage {
            dbu_micros: estimated_dbu.map(dbu_to_micros).transpose()?.unwrap_or(0),
            runs: 1,
            rows: 0,
        })
    }

    /// The amount of `dim`.
    pub const fn get(&self, dim: Dimension) -> u64 {
        match dim {
            Dimension::Dbu => self.dbu_micros,
            Dimension::Runs => self.runs,
            Dimension::Rows => self.rows,
        }
    }

    /// The sum of both, saturating.
    #[must_use]
    pub const fn plus(self, other: Usage) -> Usage {
        Usage {
            dbu_micros: self.dbu_micros.saturating_add(other.dbu_micros),
            runs: self.runs.saturating_add(other.runs),
            rows: self.rows.saturating_add(other.rows),
        }
    }
}

/// The caps of a budget; `None` is no cap in that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Cost cap, micro-DBU.
    pub dbu_micros: Option<u64>,
    /// Run cap.
    pub runs: Option<u64>,
    /// Row cap.
    pub rows: Option<u64>,
}

impl Limits {
    /// The cap of `dim`.
    pub const fn get(&self, dim: Dimension) -> Option<u64> {
        match dim {
            Dimension::Dbu => self.dbu_micros,
            Dimension::Runs => self.runs,
            Dimension::Rows => self.rows,
        }
    }

    /// Whether no dimension is capped.
    pub const fn is_empty(&self) -> bool {
        self.dbu_micros.is_none() && self.runs.is_none() && self.rows.is_none()
    }

    /// What remains of each capped dimension after `used` (never below 0).
    pub fn remaining(&self, used: &Usage) -> Limits {
        Limits {
            dbu_micros: self.dbu_micros.map(|l| l.saturating_sub(used.dbu_micros)),
            runs: self.runs.map(|l| l.saturating_sub(used.runs)),
            rows: self.rows.map(|l| l.saturating_sub(used.rows)),
        }
    }

    /// The first dimension (DBU, runs, rows) in which `request` does not fit beside
    /// `used`: `used + request > limit`, or, for a request of 0, nothing left.
    pub fn first_shortfall(&self, used: &Usage, request: &Usage) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|&dim| {
            let Some(limit) = self.get(dim) else {
                return false;
            };
            let (u, r) = (used.get(dim), request.get(dim));
            if r == 0 {
                u >= limit
            } else {
                u.saturating_add(r) > limit
            }
        })
    }
}

/// A budget: a scope, its window and its caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// What it is charged to.
    pub scope: Scope,
    /// The window length.
    pub window: Window,
    /// The caps (at least one).
    pub limits: Limits,
}

impl Budget {
    /// A budget; fails when no dimension is capped.
    pub fn new(scope: Scope, window: Window, limits: Limits) -> Result<Self, BudgetError> {
        if limits.is_empty() {
            return Err(BudgetError::Invalid(format!(
                "budget {scope}: give at least one limit (--dbu, --runs or --rows)"
            )));
        }
        Ok(Budget {
            scope,
            window,
            limits,
        })
    }
}

// ----- reservations -------------------------------------------------------------------

/// A run asking to be charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The reservation's id (unique per run: the decision id).
    pub id: String,
    /// The run's intent id.
    pub intent_id: String,
    /// The scopes the run is charged to (budgets of other scopes do not apply).
    pub scopes: Vec<Scope>,
    /// The estimate.
    pub estimate: Usage,
    /// Now, epoch seconds (injected).
    pub now: i64,
}

/// One budget's share of a reservation, and where that budget stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    /// The budget.
    pub budget: Budget,
    /// The window's start, epoch seconds.
    pub window_start: i64,
    /// What this run holds in it.
    pub amount: Usage,
    /// What the window has used, this run included.
    pub used: Usage,
}

impl ReservationLine {
    /// What remains of the window's caps.
    pub fn remaining(&self) -> Limits {
        self.budget.limits.remaining(&self.used)
    }
}

/// An admitted charge: one line per budget that applied (none: no budget applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's id.
    pub id: String,
    /// The lines.
    pub lines: Vec<ReservationLine>,
}

impl Reservation {
    /// Whether no budget applied (nothing was stored).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// A run refused by a budget: which, in which dimension, and what remains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "budget {} exceeded: {} {} requested, {} of {} remaining in the {} window from {}",
    budget.scope, dimension.format(*requested), dimension.as_str(), dimension.format(*remaining),
    dimension.format(*limit), budget.window, iso_of(*window_start)
)]
pub struct BudgetExceeded {
    /// The budget.
    pub budget: Budget,
    /// The window's start, epoch seconds.
    pub window_start: i64,
    /// The dimension that does not fit.
    pub dimension: Dimension,
    /// Its cap.
    pub limit: u64,
    /// What the window has used of it (reservations and reconciled runs).
    pub used: u64,
    /// What the run asked for.
    pub requested: u64,
    /// What remains (`limit - used`, never below 0).
    pub remaining: u64,
}

/// Why a reservation was not made.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// A budget refuses it.
    #[error(transparent)]
    Exceeded(Box<BudgetExceeded>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] BudgetError),
}

/// A budget store or input error.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Bad input (a scope, window, amount or timestamp); nothing was changed.
    #[error("invalid budget input: {0}")]
    Invalid(String),
    /// No budget for the scope.
    #[error("no budget for scope {0}")]
    NotFound(String),
    /// The store failed.
    #[error("budget store {path}: {message}")]
    Store {
        /// The store (a database path, or `memory`).
        path: String,
        /// What failed.
        message: String,
    },
}

/// Where a budget stands in the window holding `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// The budget.
    pub budget: Budget,
    /// The window's start, epoch seconds.
    pub window_start: i64,
    /// Reconciled runs (measured).
    pub spent: Usage,
    /// Open reservations (estimates of runs not yet reconciled or released).
    pub reserved: Usage,
}

impl BudgetStatus {
    /// Spent plus reserved.
    pub fn used(&self) -> Usage {
        self.spent.plus(self.reserved)
    }

    /// What remains of the caps.
    pub fn remaining(&self) -> Limits {
        self.budget.limits.remaining(&self.used())
    }

    /// The JSON document every face shows (`cfa budget show -f json`, `GET
    /// /v1/budgets`, `cfa_budget_status`): DBU as numbers of DBU, absent caps as `null`.
    pub fn document(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let limits = self.budget.limits;
        let remaining = self.remaining();
        let dim = |d: Dimension, v: Option<u64>| -> Value {
            match (d, v) {
                (_, None) => Value::Null,
                (Dimension::Dbu, Some(m)) => Value::from(micros_as_dbu(m)),
                (_, Some(n)) => Value::from(n),
            }
        };
        let block = |f: &dyn Fn(Dimension) -> Option<u64>| -> Value {
            let mut m = Map::new();
            for d in Dimension::ALL {
                m.insert(d.as_str().into(), dim(d, f(d)));
            }
            Value::Object(m)
        };
        let mut m = Map::new();
        m.insert("scope".into(), self.budget.scope.to_string().into());
        m.insert("window".into(), self.budget.window.to_string().into());
        m.insert("window_start".into(), iso_of(self.window_start).into());
        m.insert(
            "window_end".into(),
            iso_of(self.budget.window.end_of(self.window_start)).into(),
        );
        m.insert("limits".into(), block(&|d| limits.get(d)));
        m.insert("spent".into(), block(&|d| Some(self.spent.get(d))));
        m.insert("reserved".into(), block(&|d| Some(self.reserved.get(d))));
        m.insert("remaining".into(), block(&|d| remaining.get(d)));
        Value::Object(m)
    }
}

/// Where a reservation's budgets stand after it was reconciled or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The reservation's id.
    pub id: String,
    /// One line per budget: `amount` is what is now charged (0 when released), `used`
    /// what the window has used after it.
    pub lines: Vec<ReservationLine>,
}

/// The budget state a decision path charges: implemented by [`MemoryBudgets`], with
/// feature `sqlite` by `SqliteBudgets` and with feature `postgres` by `PgBudgets`.
pub trait BudgetLedger: Send + Sync {
    /// Admits `request` against every budget of its scopes, all or nothing.
    fn reserve(&self, request: &ReserveRequest) -> Result<Reservation, ReserveError>;

    /// Replaces the estimate of `reservation` with `actual` (what the run measured).
    fn reconcile(
        &self,
        reservation: &Reservation,
        actual: &Usage,
    ) -> Result<Settlement, BudgetError>;

    /// Gives the reservation back (the run did not commit anything).
    fn release(&self, reservation: &Reservation) -> Result<Settlement, BudgetError>;
}

/// Admits `estimate` into one budget's window beside `used`, or says why not.
pub fn admit(
    budget: &Budget,
    window_start: i64,
    used: Usage,
    estimate: Usage,
) -> Result<ReservationLine, Box<BudgetExceeded>> {
    if let Some(dimension) = budget.limits.first_shortfall(&used, &estimate) {
        let limit = budget.limits.get(dimension).unwrap_or(0);
        let u = used.get(dimension);
        return Err(Box::new(BudgetExceeded {
            budget: budget.clone(),
            window_start,
            dimension,
            limit,
            used: u,
            requested: estimate.get(dimension),
            remaining: limit.saturating_sub(u),
        }));
    }
    Ok(ReservationLine {
        budget: budget.clone(),
        window_start,
        amount: estimate,
        used: used.plus(estimate),
    })
}

// ----- in memory ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reconciled,
    Released,
}

/// A sum of [`Usage`]s too wide to saturate: read back saturated, it is exactly the
/// saturating sum of the same amounts in any order, and one amount can be taken out
/// of it again.
#[derive(Debug, Clone, Copy, Default)]
struct Wide {
    dbu_micros: u128,
    runs: u128,
    rows: u128,
}

impl Wide {
    fn add(&mut self, u: Usage) {
        self.dbu_micros += u128::from(u.dbu_micros);
        self.runs += u128::from(u.runs);
        self.rows += u128::from(u.rows);
    }

    /// Takes out an amount that was added before.
    fn sub(&mut self, u: Usage) {
        self.dbu_micros = self.dbu_micros.saturating_sub(u128::from(u.dbu_micros));
        self.runs = self.runs.saturating_sub(u128::from(u.runs));
        self.rows = self.rows.saturating_sub(u128::from(u.rows));
    }

    fn usage(self) -> Usage {
        let narrow = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        Usage {
            dbu_micros: narrow(self.dbu_micros),
            runs: narrow(self.runs),
            rows: narrow(self.rows),
        }
    }
}

/// One budget window's account: what its settled runs spent and what its open
/// reservations hold.
#[derive(Debug, Clone, Copy, Default)]
struct Account {
    spent: Wide,
    reserved: Wide,
}

/// Which account a charge is in.
type AccountKey = (Scope, Window, i64);

/// A charge of an open reservation.
#[derive(Debug, Clone)]
struct OpenCharge {
    account: AccountKey,
    amount: Usage,
}

/// The ledger: every window's running totals, and the charges of the reservations not
/// settled yet (by reservation id). A settled charge lives on only in its account's
/// totals, so a reservation, a settlement and a listing cost the same after a million
/// runs as after one, and the book's size is bounded by the windows and the open
/// reservations, not by the runs ever made.
#[derive(Debug, Default)]
struct Book {
    budgets: Vec<Budget>,
    accounts: std::collections::HashMap<AccountKey, Account>,
    open: std::collections::HashMap<String, Vec<OpenCharge>>,
}

impl Book {
    fn usage(&self, scope: &Scope, window: Window, start: i64) -> (Usage, Usage) {
        let key = (scope.clone(), window, start);
        self.accounts.get(&key).map_or_else(
            || (Usage::default(), Usage::default()),
            |a| (a.spent.usage(), a.reserved.usage()),
        )
    }
}

/// Budgets kept in memory (one process: tests, benchmarks, embedders without a database).
#[derive(Debug, Default)]
pub struct MemoryBudgets {
    book: Mutex<Book>,
}

impl MemoryBudgets {
    /// No budgets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the budget of its scope; returns the previous one.
    pub fn set(&self, budget: Budget) -> Option<Budget> {
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let old = book
            .budgets
            .iter()
            .position(|b| b.scope == budget.scope)
            .map(|i| book.budgets.swap_remove(i));
        book.budgets.push(budget);
        book.budgets.sort_by(|a, b| a.scope.cmp(&b.scope));
        old
    }

    /// Where every budget stands at `now` (epoch seconds), by scope.
    pub fn list(&self, now: i64) -> Vec<BudgetStatus> {
        let book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        book.budgets
            .iter()
            .map(|b| {
                let start = b.window.start_of(now);
                let (spent, reserved) = book.usage(&b.scope, b.window, start);
                BudgetStatus {
                    budget: b.clone(),
                    window_start: start,
                    spent,
                    reserved,
                }
            })
            .collect()
    }

    fn settle(&self, reservation: &Reservation, to: State, actual: &Usage) -> Settlement {
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let book = &mut *book;
        for c in book.open.remove(&reservation.id).unwrap_or_default() {
            let account = book.accounts.entry(c.account).or_default();
            account.reserved.sub(c.amount);
            if to == State::Reconciled {
                account.spent.add(*actual);
            }
        }
        let lines = reservation
            .lines
            .iter()
            .map(|l| {
                let (spent, reserved) =
                    book.usage(&l.budget.scope, l.budget.window, l.window_start);
                ReservationLine {
                    budget: l.budget.clone(),
                    window_start: l.window_start,
                    amount: if to == State::Released {
                        Usage::default()
                    } else {
                        *actual
                    },
                    used: spent.plus(reserved),
                }
            })
            .collect();
        Settlement {
            id: reservation.id.clone(),
            lines,
        }
    }
}

impl BudgetLedger for MemoryBudgets {
    fn reserve(&self, request: &ReserveRequest) -> Result<Reservation, ReserveError> {
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = Vec::new();
        for b in book
            .budgets
            .iter()
            .filter(|b| request.scopes.contains(&b.scope))
        {
            let start = b.window.start_of(request.now);
            let (spent, reserved) = book.usage(&b.scope, b.window, start);
            let line = admit(b, start, spent.plus(reserved), request.estimate)
                .map_err(ReserveError::Exceeded)?;
            lines.push(line);
        }
        let book = &mut *book;
        for l in &lines {
            let account = (l.budget.scope.clone(), l.budget.window, l.window_start);
            book.accounts
                .entry(account.clone())
                .or_default()
                .reserved
                .add(l.amount);
            book.open
                .entry(request.id.clone())
                .or_default()
                .push(OpenCharge {
                    account,
                    amount: l.amount,
                });
        }
        Ok(Reservation {
            id: request.id.clone(),
            lines,
        })
    }

    fn reconcile(
        &self,
        reservation: &Reservation,
        actual: &Usage,
    ) -> Result<Settlement, BudgetError> {
        Ok(self.settle(reservation, State::Reconciled, actual))
    }

    fn release(&self, reservation: &Reservation) -> Result<Settlement, BudgetError> {
        Ok(self.settle(reservation, State::Released, &Usage::default()))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        s.parse().unwrap()
    }

    fn request(id: &str, scopes: &[&str], dbu: Option<f64>, now: i64) -> ReserveRequest {
        ReserveRequest {
            id: id.into(),
            intent_id: format!("intent-{id}"),
            scopes: scopes.iter().map(|s| scope(s)).collect(),
            estimate: Usage::estimate(dbu).unwrap(),
            now,
        }
    }

    #[test]
    fn scopes_parse_and_print() {
        assert_eq!(scope("domain:finance").to_string(), "domain:finance");
        assert_eq!(scope("target:silver.nfe").kind, ScopeKind::Target);
        assert_eq!(scope("agent:a:b").name, "a:b");
        for bad in ["finance", "team:x", "domain:", "domain: x", ""] {
            let e = bad.parse::<Scope>().unwrap_err().to_string();
            assert!(e.contains("scope"), "{bad}: {e}");
        }
    }

    #[test]
    fn windows_parse_print_and_anchor_at_the_epoch() {
        let w: Window = "24h".parse().unwrap();
        assert_eq!(w.secs(), 86_400);
        assert_eq!(w.to_string(), "24h");
        assert_eq!("30d".parse::<Window>().unwrap().to_string(), "30d");
        assert_eq!("90m".parse::<Window>().unwrap().to_string(), "90m");
        assert_eq!("1w".parse::<Window>().unwrap().to_string(), "7d");
        assert_eq!("45s".parse::<Window>().unwrap().to_string(), "45s");
        for bad in [
            "",
            "h",
            "0h",
            "1y",
            "-1h",
            "1.5h",
            "367d",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
        let now = epoch_seconds("2026-01-01T13:45:10+00:00").unwrap();
        assert_eq!(iso_of(w.start_of(now)), "2026-01-01T00:00:00+00:00");
        let h: Window = "1h".parse().unwrap();
        assert_eq!(iso_of(h.start_of(now)), "2026-01-01T13:00:00+00:00");
        assert_eq!(
            iso_of(h.end_of(h.start_of(now))),
            "2026-01-01T14:00:00+00:00"
        );
        // Before the epoch too.
        assert_eq!(w.start_of(-1), -86_400);
    }

    #[test]
    fn timestamps_round_trip() {
        for iso in [
            "1970-01-01T00:00:00+00:00",
            "2000-02-29T23:59:59+00:00",
            "2026-12-01T21:39:17+00:00",
        ] {
            assert_eq!(iso_of(epoch_seconds(iso).unwrap()), iso);
        }
        assert_eq!(
            epoch_seconds("2026-01-01T00:00:00.123456+00:00").unwrap(),
            1_767_225_600
        );
        assert_eq!(
            epoch_seconds("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600
        );
        for bad in [
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00+02:00",
            "x",
        ] {
            assert!(epoch_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dbu_amounts_are_exact_micros() {
        assert_eq!(dbu_to_micros(12.5).unwrap(), 12_500_000);
        assert_eq!(dbu_to_micros(0.1).unwrap() * 3, dbu_to_micros(0.3).unwrap());
        assert_eq!(format_dbu(12_500_000), "12.5");
        assert_eq!(format_dbu(3_000_000), "3");
        assert_eq!(format_dbu(1), "0.000001");
        assert!(dbu_to_micros(-1.0).is_err());
        assert!(dbu_to_micros(f64::NAN).is_err());
    }

    #[test]
    fn admission_arithmetic() {
        let limits = Limits {
            dbu_micros: Some(100),
            runs: Some(3),
            rows: Some(1_000),
        };
        let used = Usage {
            dbu_micros: 60,
            runs: 2,
            rows: 999,
        };
        let ask = |dbu, runs, rows| Usage {
            dbu_micros: dbu,
            runs,
            rows,
        };
        assert_eq!(limits.first_shortfall(&used, &ask(40, 1, 0)), None);
        assert_eq!(
            limits.first_shortfall(&used, &ask(41, 1, 0)),
            Some(Dimension::Dbu)
        );
        assert_eq!(
            limits.first_shortfall(&used, &ask(0, 2, 0)),
            Some(Dimension::Runs)
        );
        // A request of 0 fits while something remains, not once it is exhausted.
        assert_eq!(limits.first_shortfall(&used, &ask(0, 1, 0)), None);
        let exhausted = Usage {
            rows: 1_000,
            ..used
        };
        assert_eq!(
            limits.first_shortfall(&exhausted, &ask(0, 1, 0)),
            Some(Dimension::Rows)
        );
        assert_eq!(
            limits
                .remaining(&Usage {
                    rows: 5_000,
                    ..used
                })
                .rows,
            Some(0)
        );
        assert!(
            Limits::default()
                .first_shortfall(&used, &ask(u64::MAX, 9, 9))
                .is_none()
        );
    }

    #[test]
    fn memory_ledger_reserves_reconciles_and_releases() {
        let ledger = MemoryBudgets::new();
        let budget = Budget::new(
            scope("domain:finance"),
            "1h".parse().unwrap(),
            Limits {
                dbu_micros: Some(dbu_to_micros(50.0).unwrap()),
                runs: Some(3),
                rows: None,
            },
        )
        .unwrap();
        assert!(ledger.set(budget.clone()).is_none());
        let now = 1_767_225_600;
        // Not charged to this scope: nothing applies, nothing stored.
        let r = ledger
            .reserve(&request("x", &["domain:other"], Some(20.0), now))
            .unwrap();
        assert!(r.is_empty());

        let a = ledger
            .reserve(&request("a", &["domain:finance"], Some(20.0), now))
            .unwrap();
        assert_eq!(a.lines[0].remaining().dbu_micros, Some(30_000_000));
        let b = ledger
            .reserve(&request("b", &["domain:finance"], Some(20.0), now))
            .unwrap();
        let e = match ledger.reserve(&request("c", &["domain:finance"], Some(20.0), now)) {
            Err(ReserveError::Exceeded(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.dimension, Dimension::Dbu);
        assert_eq!(e.remaining, 10_000_000);
        assert_eq!(
            e.to_string(),
            "budget domain:finance exceeded: 20 dbu requested, 10 of 50 remaining in the 1h window from 2026-01-01T00:00:00+00:00"
        );
        // Reconciled below the estimate: the difference comes back.
        let actual = Usage {
            dbu_micros: 5_000_000,
            runs: 1,
            rows: 100,
        };
        let s = ledger.reconcile(&a, &actual).unwrap();
        assert_eq!(s.lines[0].used.dbu_micros, 25_000_000);
        // Released: all of it comes back.
        let s = ledger.release(&b).unwrap();
        assert_eq!(s.lines[0].used.dbu_micros, 5_000_000);
        assert_eq!(s.lines[0].amount, Usage::default());
        // A settled reservation cannot be settled again.
        ledger.release(&a).unwrap();
        let st = &ledger.list(now)[0];
        assert_eq!(st.spent, actual);
        assert_eq!(st.reserved, Usage::default());
        assert_eq!(st.remaining().runs, Some(2));
        // The next window starts empty.
        let later = &ledger.list(now + 3_600)[0];
        assert_eq!(later.used(), Usage::default());
        let doc = st.document();
        assert_eq!(doc["remaining"]["dbu"], 45.0);
        assert_eq!(doc["limits"]["rows"], serde_json::Value::Null);
        assert_eq!(doc["window_end"], "2026-01-01T01:00:00+00:00");
    }

    /// A budget of `runs` runs a `window` on `scope`.
    fn runs_budget(scope_text: &str, window: Window, runs: u64) -> Budget {
        Budget::new(
            scope(scope_text),
            window,
            Limits {
                runs: Some(runs),
                ..Limits::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn the_memory_ledger_keeps_totals_not_every_run() {
        let ledger = MemoryBudgets::new();
        let w: Window = "24h".parse().unwrap();
        ledger.set(runs_budget("domain:d", w, 100_000));
        let actual = Usage {
            dbu_micros: 7,
            runs: 1,
            rows: u64::MAX / 2 + 1,
        };
        for i in 0..3_000 {
            let r = ledger
                .reserve(&request(&i.to_string(), &["domain:d"], Some(1.0), 60))
                .unwrap();
            if i % 3 == 0 {
                ledger.release(&r).unwrap();
            } else {
                ledger.reconcile(&r, &actual).unwrap();
            }
        }
        let open = ledger
            .reserve(&request("open", &["domain:d"], Some(2.0), 60))
            .unwrap();
        let status = &ledger.list(60)[0];
        // 2,000 runs reconciled, 1,000 released: their rows saturate as the old
        // per-charge sums did; the open reservation is held apart.
        assert_eq!(status.spent.runs, 2_000);
        assert_eq!(status.spent.dbu_micros, 14_000);
        assert_eq!(status.spent.rows, u64::MAX);
        assert_eq!(status.reserved.runs, 1);
        assert_eq!(status.reserved.dbu_micros, 2_000_000);
        {
            let book = ledger.book.lock().unwrap();
            assert_eq!(book.accounts.len(), 1);
            assert_eq!(book.open.len(), 1, "settled runs are not kept");
        }
        ledger.release(&open).unwrap();
        let status = &ledger.list(60)[0];
        assert_eq!(status.reserved, Usage::default());
        assert!(ledger.book.lock().unwrap().open.is_empty());
        // A settled reservation settles nothing again.
        ledger.reconcile(&open, &actual).unwrap();
        assert_eq!(ledger.list(60)[0].spent.runs, 2_000);
    }

    #[test]
    fn a_reservation_is_all_or_nothing_across_budgets() {
        let ledger = MemoryBudgets::new();
        let w: Window = "24h".parse().unwrap();
        ledger.set(runs_budget("domain:d", w, 5));
        ledger.set(runs_budget("agent:bot", w, 1));
        let scopes = ["domain:d", "agent:bot"];
        ledger.reserve(&request("1", &scopes, None, 0)).unwrap();
        assert!(matches!(
            ledger.reserve(&request("2", &scopes, None, 0)),
            Err(ReserveError::Exceeded(e)) if e.budget.scope == scope("agent:bot")
        ));
        // The refused run held nothing in the domain budget.
        let domain = ledger
            .list(0)
            .into_iter()
            .find(|s| s.budget.scope == scope("domain:d"))
            .unwrap();
        assert_eq!(domain.reserved.runs, 1);
        assert!(Budget::new(scope("domain:d"), w, Limits::default()).is_err());
    }
}
