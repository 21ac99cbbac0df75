//! Budgets around Ω execute: an approved run is charged to its scopes' budgets before
//! it executes (`budget_reserved`, or `budget_exceeded` and a block with
//! `BUDGET_EXCEEDED`), and the charge is settled once the execution phase answered:
//! reconciled with the sandbox's measured metrics when something was committed
//! (`budget_reconciled`), released otherwise (`budget_released`). The events are stage
//! `control`; a run no budget applies to writes none of them. Approved work the kernel
//! does not execute itself (no execution phase: the caller runs it) is charged its
//! estimate: reserved, then reconciled at once at the estimate, since nobody measures
//! it here. The window is the one of
//! the kernel's clock: the ledger is handed the time, it never reads one.

use super::record::Details;
use super::record::qkey;
use super::{Run, Step};
use crate::faults::{self, kernel_fault};
use crate::result::Phase;
use cfa_control::budget::{
    BUDGET_EXCEEDED, BudgetExceeded, BudgetLedger, Dimension, Limits, Reservation, ReserveError,
    ReserveRequest, Scope, ScopeKind, Settlement, Usage, epoch_seconds, iso_of, micros_as_dbu,
};
use cfa_plan::ExecutionPlan;
use cfa_sandbox::ExecutionOutcome;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction, StateSignature};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The stage of the budget events.
const STAGE: &str = "control";

/// The budgets a kernel charges and the agent id it charges to.
pub(crate) struct Budgets {
    pub(crate) ledger: Arc<dyn BudgetLedger>,
    pub(crate) agent: Option<String>,
}

/// The amount of `dim` as JSON: DBU as a number of DBU.
fn amount(dim: Dimension, n: u64) -> Value {
    match dim {
        Dimension::Dbu => Value::from(micros_as_dbu(n)),
        Dimension::Runs | Dimension::Rows => Value::from(n),
    }
}

fn usage_json(u: &Usage) -> Value {
    let mut m = Map::new();
    for d in Dimension::ALL {
        m.insert(d.as_str().into(), amount(d, u.get(d)));
    }
    Value::Object(m)
}

fn limits_json(l: &Limits) -> Value {
    let mut m = Map::new();
    for d in Dimension::ALL {
        m.insert(
            d.as_str().into(),
            l.get(d).map_or(Value::Null, |n| amount(d, n)),
        );
    }
    Value::Object(m)
}

/// One JSON line per budget of a reservation or settlement.
fn lines_json(lines: &[cfa_control::budget::ReservationLine]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| {
                let mut m = Map::new();
                m.insert("scope".into(), l.budget.scope.to_string().into());
                m.insert("window".into(), l.budget.window.to_string().into());
                m.insert("window_start".into(), iso_of(l.window_start).into());
                m.insert("amount".into(), usage_json(&l.amount));
                m.insert("used".into(), usage_json(&l.used));
                m.insert("remaining".into(), limits_json(&l.remaining()));
                Value::Object(m)
            })
            .collect(),
    )
}

/// What a run measured, from its outcome's `metrics` detail: 1 run, `cost_dbu` (the
/// estimate when the sandbox measured none), `rows_output`.
fn measured(outcome: &ExecutionOutcome, estimate: &Usage) -> Usage {
    let metrics = outcome.details.get("metrics");
    let cost = metrics
        .and_then(|m| m.get("cost_dbu"))
        .and_then(Value::as_f64)
        .and_then(|c| cfa_control::budget::dbu_to_micros(c).ok());
    Usage {
        dbu_micros: cost.unwrap_or(estimate.dbu_micros),
        runs: 1,
        rows: metrics
            .and_then(|m| m.get("rows_output"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// The `BUDGET_EXCEEDED` fault of a refusal.
fn exceeded_fault(e: &BudgetExceeded) -> Fault {
    let resets = iso_of(e.budget.window.end_of(e.window_start));
    Fault {
        code: BUDGET_EXCEEDED.into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: STAGE.into(),
        message: e.to_string().into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![format!(
            "Wait for the window to reset at {resets}, raise the budget (cfa budget set {} --window {} …), or lower the run's estimate (max_cost_dbu).",
            e.budget.scope, e.budget.window
        )]
        .into(),
        detected_before_execution: true,
    }
}

impl Run<'_> {
    /// Charges the run's estimate to its budgets. `Ok(None)`: no budgets configured.
    pub(super) fn reserve_budget(
        &mut self,
        sig: &StateSignature,
        plan: &ExecutionPlan,
    ) -> Step<Option<(Reservation, Usage)>> {
        let k = self.k;
        let Some(b) = k.budgets.as_ref() else {
            return Ok(None);
        };
        let phase = Phase::Execute;
        let mut scopes = vec![
            Scope::new(ScopeKind::Domain, sig.domain.clone()),
            Scope::new(ScopeKind::Target, plan.target.clone()),
        ];
        if let Some(agent) = &b.agent {
            scopes.push(Scope::new(ScopeKind::Agent, agent.clone()));
        }
        let prepared = epoch_seconds(&k.clock.now_isoformat()).and_then(|now| {
            Ok(ReserveRequest {
                id: self.r.decision_id.clone(),
                intent_id: self.r.intent_id.clone(),
                scopes,
                estimate: Usage::estimate(sig.constraints.max_cost_dbu_f64())?,
                now,
            })
        });
        let reserved = prepared.map_err(ReserveError::Store).and_then(|req| {
            faults::guarded(|| b.ledger.reserve(&req))
                .map_err(|e| ReserveError::Store(cfa_control::budget::BudgetError::Invalid(e)))
                .and_then(|r| r.map(|res| (res, req.estimate)))
        });
        match reserved {
            Ok((res, estimate)) => {
                if !res.is_empty() {
                    let details = Details::new()
                        .with(qkey!("reservation_id"), res.id.as_str())
                        .with(qkey!("budgets"), lines_json(&res.lines));
                    self.emit_in(phase, STAGE, "budget_reserved", "reserved", details)?;
                }
                Ok(Some((res, estimate)))
            }
            Err(ReserveError::Exceeded(e)) => {
                let d = e.dimension;
                let details = Details::new()
                    .with(qkey!("scope"), e.budget.scope.to_string())
                    .with(qkey!("window"), e.budget.window.to_string())
                    .with(qkey!("window_start"), iso_of(e.window_start))
                    .with(qkey!("dimension"), d.as_str())
                    .with(qkey!("limit"), amount(d, e.limit))
                    .with(qkey!("used"), amount(d, e.used))
                    .with(qkey!("requested"), amount(d, e.requested))
                    .with(qkey!("remaining"), amount(d, e.remaining));
                let stop = self.block(
                    phase,
                    format!("Budget exceeded: {e}"),
                    vec![exceeded_fault(&e)],
                );
                self.emit_in(phase, STAGE, "budget_exceeded", "blocked", details)?;
                Err(stop)
            }
            Err(ReserveError::Store(e)) => {
                // Fail closed: a budget that cannot be read never approves.
                let reason = format!("Budget check failed: {e}");
                let fault = kernel_fault(
                    faults::BUDGET_FAILED,
                    phase,
                    reason.clone(),
                    "Make the budget store (the lifecycle database) readable and writable, then retry.",
                );
                Err(self.block(phase, reason, vec![fault]))
            }
        }
    }

    /// Settles the charge with the ledger (no event yet): reconciled with what the
    /// outcome measured when it committed something, released otherwise (`None`: the
    /// execution phase failed). A failure to settle is reported in the event.
    pub(super) fn settle_budget(
        &self,
        charge: Option<(Reservation, Usage)>,
        outcome: Option<&ExecutionOutcome>,
    ) -> Option<(&'static str, Result<Settlement, String>)> {
        let (res, estimate) = charge?;
        if res.is_empty() {
            return None;
        }
        let ledger = &self.k.budgets.as_ref()?.ledger;
        Some(match outcome {
            Some(o) if o.publish_state.is_committed() => {
                let actual = measured(o, &estimate);
                (
                    "budget_reconciled",
                    faults::guarded_try(|| ledger.reconcile(&res, &actual)),
                )
            }
            _ => (
                "budget_released",
                faults::guarded_try(|| ledger.release(&res)),
            ),
        })
    }

    /// Charges approved work that is not executed here its estimate (reserved, then
    /// reconciled at the estimate).
    pub(super) fn charge_estimate(
        &mut self,
        sig: &StateSignature,
        plan: &ExecutionPlan,
    ) -> Step<()> {
        let Some((res, estimate)) = self.reserve_budget(sig, plan)? else {
            return Ok(());
        };
        if res.is_empty() {
            return Ok(());
        }
        let Some(b) = self.k.budgets.as_ref() else {
            return Ok(());
        };
        let settled = faults::guarded_try(|| b.ledger.reconcile(&res, &estimate));
        self.record_settlement(Some(("budget_reconciled", settled)))
    }

    /// Records a settlement of [`Run::settle_budget`].
    pub(super) fn record_settlement(
        &mut self,
        settled: Option<(&'static str, Result<Settlement, String>)>,
    ) -> Step<()> {
        let Some((event_type, settled)) = settled else {
            return Ok(());
        };
        let outcome = if event_type == "budget_reconciled" {
            "reconciled"
        } else {
            "released"
        };
        let details = match &settled {
            Ok(s) => Details::new()
                .with(qkey!("reservation_id"), s.id.as_str())
                .with(qkey!("budgets"), lines_json(&s.lines)),
            Err(e) => Details::new().with(qkey!("error"), e.as_str()),
        };
        let outcome = if settled.is_ok() { outcome } else { "error" };
        self.emit_in(Phase::Execute, STAGE, event_type, outcome, details)
    }
}
