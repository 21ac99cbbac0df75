#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Budgets around the execute phase: an approved run is charged before it executes,
//! reconciled with the mock sandbox's measured metrics, released when it rolls back,
//! and blocked with `BUDGET_EXCEEDED` (and what remains) when it does not fit; the
//! `control` events are in the chain, and a kernel without budgets writes none.

use crate::common;

use cfa_audit::AuditStore;
use cfa_control::budget::{Budget, BudgetLedger, Limits, MemoryBudgets, dbu_to_micros};
use cfa_kernel::{KernelResult, SandboxExecution, testing};
use cfa_lifecycle::{ExecutionService, MemoryStateStore};
use cfa_sandbox::{ExecutionConfig, FailurePolicy, MockConfig, SandboxOptions, SandboxRegistry};
use cfa_types::DecisionState;
use common::{config, events, kernel_with, steps};
use std::sync::Arc;

const WITH_COST: &str = "Join nfe with clientes daily, anonymize pii, into silver, max 20 DBU";
const NOW: i64 = 1_767_225_600;

fn execution(fail_load: bool) -> SandboxExecution {
    let mut mock = MockConfig::default();
    if fail_load {
        mock = mock.fail_always("load_target");
    }
    let opts = SandboxOptions {
        mock,
        ..SandboxOptions::default()
    };
    let cfg = ExecutionConfig {
        failure_policy: FailurePolicy::FullRollback,
        ..ExecutionConfig::default()
    };
    let svc = ExecutionService::new(
        SandboxRegistry::with_builtins()
            .create("mock", &opts)
            .unwrap(),
        cfg,
        Arc::new(MemoryStateStore::new(100)),
    );
    SandboxExecution::new(svc, Box::new(|| jiff::Timestamp::from_second(NOW).unwrap()))
}

fn run(
    ledger: &Arc<MemoryBudgets>,
    fail_load: bool,
) -> (KernelResult, Arc<cfa_audit::MemoryStore>) {
    let dyn_ledger: Arc<dyn BudgetLedger> = ledger.clone();
    let (k, store) = kernel_with(config("prod-v1"), |b| {
        b.executor(execution(fail_load))
            .budgets(dyn_ledger, Some("bot-1".into()))
    });
    let r = k.process(WITH_COST);
    testing::assert_audit_intact(store.as_ref() as &dyn AuditStore, &r).unwrap();
    (r, store)
}

fn domain_budget(dbu: f64) -> Budget {
    Budget::new(
        "domain:finance".parse().unwrap(),
        "24h".parse().unwrap(),
        Limits {
            dbu_micros: Some(dbu_to_micros(dbu).unwrap()),
            runs: Some(10),
            rows: None,
        },
    )
    .unwrap()
}

fn control_steps(store: &cfa_audit::MemoryStore) -> Vec<(String, String)> {
    steps(store)
        .into_iter()
        .filter(|(stage, ..)| stage == "control")
        .map(|(_, t, o)| (t, o))
        .collect()
}

#[test]
fn an_approved_run_is_reserved_then_reconciled_with_the_measured_metrics() {
    let ledger = Arc::new(MemoryBudgets::new());
    // Find the run's domain first: a budget of another scope charges nothing.
    let (r, store) = run(&ledger, false);
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    assert!(control_steps(&store).is_empty());
    let domain = r.signature.as_ref().unwrap().domain.clone();

    let ledger = Arc::new(MemoryBudgets::new());
    let mut b = domain_budget(50.0);
    b.scope = format!("domain:{domain}").parse().unwrap();
    ledger.set(b);
    let (r, store) = run(&ledger, false);
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    assert_eq!(
        control_steps(&store),
        [
            ("budget_reserved".to_owned(), "reserved".to_owned()),
            ("budget_reconciled".to_owned(), "reconciled".to_owned())
        ]
    );
    let evs = events(store.as_ref());
    let reserved = evs
        .iter()
        .find(|e| e.event_type == "budget_reserved")
        .unwrap();
    assert_eq!(reserved.details["budgets"][0]["amount"]["dbu"], 20.0);
    assert_eq!(reserved.details["budgets"][0]["remaining"]["dbu"], 30.0);
    assert_eq!(reserved.details["reservation_id"], r.decision_id.as_str());
    // Reconciled after execution_completed and state_projected, with the mock's metrics.
    let types: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
    let at = |t: &str| types.iter().position(|x| *x == t).unwrap();
    assert!(at("budget_reserved") < at("execution_completed"));
    assert!(at("state_projected") < at("budget_reconciled"));
    let metrics = &r.execution.as_ref().unwrap().details["metrics"];
    let reconciled = &evs[at("budget_reconciled")].details["budgets"][0];
    assert_eq!(reconciled["amount"]["dbu"], metrics["cost_dbu"]);
    assert_eq!(reconciled["amount"]["rows"], metrics["rows_output"]);
    let status = &ledger.list(NOW)[0];
    assert_eq!(status.reserved.runs, 0);
    assert_eq!(status.spent.runs, 1);
    assert_eq!(status.spent.rows, metrics["rows_output"].as_u64().unwrap());
}

#[test]
fn a_rolled_back_run_is_released_and_an_exhausted_budget_blocks_with_what_remains() {
    let ledger = Arc::new(MemoryBudgets::new());
    let (probe, _) = run(&ledger, false);
    let domain = probe.signature.as_ref().unwrap().domain.clone();
    let ledger = Arc::new(MemoryBudgets::new());
    let mut b = domain_budget(30.0);
    b.scope = format!("domain:{domain}").parse().unwrap();
    ledger.set(b);

    let (r, store) = run(&ledger, true);
    assert_eq!(r.state, DecisionState::RolledBack, "{}", r.blocked_reason);
    assert_eq!(
        control_steps(&store),
        [
            ("budget_reserved".to_owned(), "reserved".to_owned()),
            ("budget_released".to_owned(), "released".to_owned())
        ]
    );
    assert_eq!(ledger.list(NOW)[0].used().runs, 0);

    // 20 of 30 DBU reserved and reconciled to the mock's cost; then a second estimate
    // of 20 does not fit.
    let (ok, _) = run(&ledger, false);
    assert_eq!(ok.state, DecisionState::Approved, "{}", ok.blocked_reason);
    let spent = ledger.list(NOW)[0].spent.dbu_micros;
    let (ok2, _) = run(&ledger, false);
    let fits = spent + 20_000_000 <= 30_000_000;
    assert_eq!(ok2.is_executable(), fits);
    // Fill the window, then the next run is refused before it executes.
    let mut blocked = None;
    for _ in 0..5 {
        let (r, store) = run(&ledger, false);
        if r.state == DecisionState::Blocked {
            blocked = Some((r, store));
            break;
        }
    }
    let (r, store) = blocked.expect("the budget ran out");
    testing::assert_blocked_with(&r, "BUDGET_EXCEEDED").unwrap();
    assert!(r.execution.is_none(), "nothing ran");
    let fault = r
        .faults
        .iter()
        .find(|f| f.code == "BUDGET_EXCEEDED")
        .unwrap();
    assert!(fault.message.contains("remaining"), "{}", fault.message);
    assert!(
        r.blocked_reason
            .starts_with("Budget exceeded: budget domain:"),
        "{}",
        r.blocked_reason
    );
    let evs = events(store.as_ref());
    let ex = evs
        .iter()
        .find(|e| e.event_type == "budget_exceeded")
        .unwrap();
    assert_eq!(ex.stage, "control");
    assert_eq!(ex.outcome, "blocked");
    assert_eq!(ex.details["dimension"], "dbu");
    assert_eq!(ex.details["requested"], 20.0);
    let used = ledger.list(NOW)[0].used();
    assert_eq!(
        ex.details["remaining"].as_f64().unwrap(),
        (30_000_000 - used.dbu_micros) as f64 / 1e6
    );
    assert_eq!(evs.last().unwrap().event_type, "final_decision");
    assert_eq!(evs.last().unwrap().outcome, "blocked");
}

#[test]
fn the_agent_scope_is_charged_and_no_event_is_written_without_budgets() {
    let ledger = Arc::new(MemoryBudgets::new());
    ledger.set(
        Budget::new(
            "agent:bot-1".parse().unwrap(),
            "1h".parse().unwrap(),
            Limits {
                runs: Some(1),
                ..Limits::default()
            },
        )
        .unwrap(),
    );
    let (r, _) = run(&ledger, false);
    assert!(r.is_executable(), "{}", r.blocked_reason);
    let (r, _) = run(&ledger, false);
    testing::assert_blocked_with(&r, "BUDGET_EXCEEDED").unwrap();
    assert!(
        r.faults[0].message.contains("0 of 1 remaining"),
        "{}",
        r.faults[0].message
    );

    // The same run without budgets writes exactly the events it always did.
    let (plain, plain_store) = kernel_with(config("prod-v1"), |b| b.executor(execution(false)));
    let r = plain.process(WITH_COST);
    assert!(r.is_executable());
    assert!(
        steps(plain_store.as_ref())
            .iter()
            .all(|(s, ..)| s != "control")
    );
}

#[test]
fn approved_work_not_executed_here_is_charged_its_estimate() {
    let ledger = Arc::new(MemoryBudgets::new());
    ledger.set(
        Budget::new(
            "agent:bot-1".parse().unwrap(),
            "24h".parse().unwrap(),
            Limits {
                dbu_micros: Some(dbu_to_micros(30.0).unwrap()),
                ..Limits::default()
            },
        )
        .unwrap(),
    );
    let dyn_ledger: Arc<dyn BudgetLedger> = ledger.clone();
    let (k, store) = kernel_with(config("prod-v1"), |b| {
        b.budgets(dyn_ledger, Some("bot-1".into()))
    });
    let r = k.process(WITH_COST);
    assert!(r.is_executable(), "{}", r.blocked_reason);
    assert!(r.execution.is_none());
    assert_eq!(
        control_steps(&store),
        [
            ("budget_reserved".to_owned(), "reserved".to_owned()),
            ("budget_reconciled".to_owned(), "reconciled".to_owned())
        ]
    );
    let st = &ledger.list(NOW)[0];
    assert_eq!(st.spent.dbu_micros, 20_000_000);
    assert_eq!(st.reserved.runs, 0);
    // 10 DBU left: the next 20 DBU estimate does not fit.
    let r = k.process(WITH_COST);
    testing::assert_blocked_with(&r, "BUDGET_EXCEEDED").unwrap();
}
