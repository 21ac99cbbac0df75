//! What the SQLite and PostgreSQL budget stores share: the `budgets` row as a
//! [`Budget`], the per-state sums of a window as (spent, reserved), and the steps of a
//! reservation and a settlement over any store (read a budget, read a window's usage).
//! Both stores call these inside their own transaction, so they admit, refuse and
//! answer alike; only the SQL and the locking differ.

use super::{
    Budget, BudgetError, BudgetExceeded, BudgetStatus, Limits, Reservation, ReservationLine,
    ReserveRequest, Scope, Usage, Window, admit,
};

/// A stored integer of an amount (saturating at `i64::MAX`).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An amount of a stored integer (negative reads as 0).
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A `budgets` row: scope, window seconds, the three caps.
pub(crate) type BudgetRow = (String, i64, Option<i64>, Option<i64>, Option<i64>);

/// The budget of a stored row.
pub(crate) fn budget_of(
    (scope, window_secs, dbu, runs, rows): BudgetRow,
) -> Result<Budget, BudgetError> {
    Ok(Budget {
        scope: scope.parse()?,
        window: Window::from_secs(to_u64(window_secs))?,
        limits: Limits {
            dbu_micros: dbu.map(to_u64),
            runs: runs.map(to_u64),
            rows: rows.map(to_u64),
        },
    })
}

/// The usage of stored sums (micro-DBU, runs, rows).
pub(crate) fn usage_of(dbu_micros: i64, runs: i64, rows: i64) -> Usage {
    Usage {
        dbu_micros: to_u64(dbu_micros),
        runs: to_u64(runs),
        rows: to_u64(rows),
    }
}

/// (reconciled, reserved) of a window's sums grouped by state (`released` rows are
/// never summed).
pub(crate) fn split_usage(groups: impl IntoIterator<Item = (String, Usage)>) -> (Usage, Usage) {
    let mut spent = Usage::default();
    let mut reserved = Usage::default();
    for (state, u) in groups {
        if state == "reserved" {
            reserved = u;
        } else {
            spent = u;
        }
    }
    (spent, reserved)
}

/// Where `budget` stands at `now`, its window's usage read by `usage`.
pub(crate) fn status_of<E>(
    budget: Budget,
    now: i64,
    usage: impl FnOnce(&Scope, Window, i64) -> Result<(Usage, Usage), E>,
) -> Result<BudgetStatus, E> {
    let start = budget.window.start_of(now);
    let (spent, reserved) = usage(&budget.scope, budget.window, start)?;
    Ok(BudgetStatus {
        budget,
        window_start: start,
        spent,
        reserved,
    })
}

/// The lines admitting `request` against every budget of its scopes, in the order of
/// its scopes (`Ok(Err(_))`: a budget refuses it), reading budgets with `budget` and a
/// window's (spent, reserved) with `usage`.
pub(crate) fn admit_lines<E>(
    request: &ReserveRequest,
    mut budget: impl FnMut(&Scope) -> Result<Option<Budget>, E>,
    mut usage: impl FnMut(&Scope, Window, i64) -> Result<(Usage, Usage), E>,
) -> Result<Result<Vec<ReservationLine>, Box<BudgetExceeded>>, E> {
    let mut lines = Vec::new();
    for scope in &request.scopes {
        let Some(b) = budget(scope)? else {
            continue;
        };
        let start = b.window.start_of(request.now);
        let (spent, reserved) = usage(scope, b.window, start)?;
        match admit(&b, start, spent.plus(reserved), request.estimate) {
            Ok(line) => lines.push(line),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(lines))
}

/// The state a settlement leaves a reservation in, and what it now charges.
pub(crate) fn settled(actual: Option<&Usage>) -> (&'static str, Usage) {
    match actual {
        Some(u) => ("reconciled", *u),
        None => ("released", Usage::default()),
    }
}

/// The lines of a settled `reservation` charging `amount`, each window's usage read
/// afterwards by `usage`.
pub(crate) fn settled_lines<E>(
    reservation: &Reservation,
    amount: Usage,
    mut usage: impl FnMut(&Scope, Window, i64) -> Result<(Usage, Usage), E>,
) -> Result<Vec<ReservationLine>, E> {
    let mut lines = Vec::with_capacity(reservation.lines.len());
    for l in &reservation.lines {
        let (spent, reserved) = usage(&l.budget.scope, l.budget.window, l.window_start)?;
        lines.push(ReservationLine {
            budget: l.budget.clone(),
            window_start: l.window_start,
            amount,
            used: spent.plus(reserved),
        });
    }
    Ok(lines)
}
