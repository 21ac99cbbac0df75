#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The execution slot filled by [`SandboxExecution`]: sandbox outcomes become final
//! states, a held lease blocks, the skill state is reported beside the decision (B1).
//! The lease, record and skill tests need a lifecycle database: they run with the
//! kernel's `sqlite` feature (on in workspace builds).

use crate::common;

use cfa_audit::AuditStore;
use cfa_kernel::{ExecutionClock, KernelResult, Phase, PublishState, SandboxExecution, testing};
#[cfg(feature = "sqlite")]
use cfa_lifecycle::LifecycleDb;
use cfa_lifecycle::{ExecutionService, MemoryStateStore, PromotionEngine, PromotionPolicy};
use cfa_sandbox::{
    ExecutionConfig, FailurePolicy, MockConfig, RuntimeThresholds, RuntimeValidator,
    SandboxOptions, SandboxRegistry,
};
use cfa_types::DecisionState;
use common::{APPROVE, config, events, kernel_with, types};
use jiff::Timestamp;
use std::sync::Arc;

fn clock() -> ExecutionClock {
    Box::new(|| Timestamp::from_second(1_767_225_600).unwrap())
}

/// A lifecycle database for the service, when the kernel is built with SQLite.
#[cfg(feature = "sqlite")]
type Db = Option<Arc<LifecycleDb>>;
/// Without SQLite there is no lifecycle database to give.
#[cfg(not(feature = "sqlite"))]
type Db = Option<std::convert::Infallible>;

fn service(
    sandbox: &str,
    opts: &SandboxOptions,
    cfg: ExecutionConfig,
    db: Db,
    holder: &str,
) -> ExecutionService {
    let mut svc = ExecutionService::new(
        SandboxRegistry::with_builtins()
            .create(sandbox, opts)
            .unwrap(),
        cfg,
        Arc::new(MemoryStateStore::new(100)),
    );
    svc.engine = PromotionEngine::new(PromotionPolicy::default(), "test");
    holder.clone_into(&mut svc.holder);
    svc.lease_ttl_secs = 600;
    #[cfg(feature = "sqlite")]
    {
        svc.db = db;
    }
    #[cfg(not(feature = "sqlite"))]
    let _ = db;
    svc
}

fn run(svc: ExecutionService) -> (KernelResult, Vec<String>, Arc<cfa_audit::MemoryStore>) {
    let (k, store) = kernel_with(config("prod-v1"), |b| {
        b.executor(SandboxExecution::new(svc, clock()))
    });
    let r = k.process(APPROVE);
    testing::assert_audit_intact(store.as_ref() as &dyn AuditStore, &r).unwrap();
    let t = types(store.as_ref());
    (r, t, store)
}

fn failing(policy: FailurePolicy) -> (KernelResult, Vec<String>) {
    let opts = SandboxOptions {
        mock: MockConfig::default().fail_always("load_target"),
        ..SandboxOptions::default()
    };
    let cfg = ExecutionConfig {
        failure_policy: policy,
        ..ExecutionConfig::default()
    };
    let (r, t, _) = run(service("mock", &opts, cfg, None, "k1"));
    (r, t)
}

#[test]
fn mock_run_is_approved_with_details_and_projection() {
    let (r, t, store) = run(service(
        "mock",
        &SandboxOptions::default(),
        ExecutionConfig::default(),
        None,
        "k1",
    ));
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    assert!(r.phases_run.contains(&Phase::Execute));
    assert!(r.phases_run.contains(&Phase::Validate));
    let ex = r.execution.as_ref().unwrap();
    assert_eq!(ex.executor, "mock");
    assert_eq!(ex.publish_state, PublishState::Published);
    assert_eq!(ex.details["sandbox"], "mock");
    assert_eq!(ex.details["retries"], 0);
    assert!(ex.details["metrics"]["rows_output"].as_u64().unwrap() > 0);
    // No lifecycle database: no skill evaluated.
    assert!(ex.details["lifecycle"]["skill_state"].is_null());
    assert!(t.ends_with(&[
        "execution_completed".to_owned(),
        "state_projected".to_owned(),
        "final_decision".to_owned()
    ]));
    let ev = events(store.as_ref());
    let projected = ev
        .iter()
        .find(|e| e.event_type == "state_projected")
        .unwrap();
    let expected_version = cfa_kernel::version_id_for(&r.decision_id);
    assert!(expected_version.starts_with("v_") && expected_version.len() == 10);
    assert_eq!(projected.details["version_id"], expected_version.as_str());
    assert_eq!(projected.details["projection_type"], "full");
    assert_eq!(
        projected.details["target_scope"][0],
        r.signature.as_ref().unwrap().target_dataset_name().as_str()
    );
    let completed = ev
        .iter()
        .find(|e| e.event_type == "execution_completed")
        .unwrap();
    assert_eq!(completed.details["sandbox"], "mock");
}

#[test]
fn failing_load_step_ends_in_the_policy_state() {
    let (r, t) = failing(FailurePolicy::FullRollback);
    assert_eq!(r.state, DecisionState::RolledBack);
    assert_eq!(
        r.execution.as_ref().unwrap().publish_state,
        PublishState::RolledBack
    );
    assert!(!r.faults.is_empty());
    // A rollback is not projected into state.
    assert!(!t.contains(&"state_projected".to_owned()));

    let (r, t) = failing(FailurePolicy::SelectiveQuarantine);
    assert_eq!(r.state, DecisionState::Quarantined, "{}", r.blocked_reason);
    match &r.execution.as_ref().unwrap().publish_state {
        PublishState::Quarantined { steps } => assert!(steps.contains(&"load_target".to_owned())),
        other => panic!("{other:?}"),
    }
    assert!(t.contains(&"state_projected".to_owned()));

    let (r, _) = failing(FailurePolicy::PartialCommitNoPublish);
    assert_eq!(r.state, DecisionState::PartiallyCommitted);

    let (r, _) = failing(FailurePolicy::DegradedPublish);
    // B6: degraded is its own final state, never approved.
    assert_eq!(r.state, DecisionState::Degraded, "{}", r.blocked_reason);
    assert!(!r.is_executable());
    match &r.execution.as_ref().unwrap().publish_state {
        PublishState::Degraded { failed_steps } => {
            assert_eq!(failed_steps, &vec!["load_target".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retried_step_that_succeeds_is_approved_with_warnings() {
    let opts = SandboxOptions {
        mock: MockConfig::default().fail_first("load_target", 1),
        ..SandboxOptions::default()
    };
    let (r, _, _) = run(service(
        "mock",
        &opts,
        ExecutionConfig::default(),
        None,
        "k1",
    ));
    assert_eq!(
        r.state,
        DecisionState::ApprovedWithWarnings,
        "{}",
        r.blocked_reason
    );
    assert_eq!(r.execution.as_ref().unwrap().details["retries"], 1);
    assert_eq!(
        r.execution.as_ref().unwrap().details["final_state"],
        "approved_with_warnings"
    );
}

#[test]
fn panic_sandbox_rolls_back_with_environmental_panic() {
    let (r, _, _) = run(service(
        "panic",
        &SandboxOptions::default(),
        ExecutionConfig::default(),
        None,
        "k1",
    ));
    assert_eq!(r.state, DecisionState::RolledBack);
    assert!(
        r.fault_codes().contains(&"ENVIRONMENTAL_PANIC"),
        "{:?}",
        r.fault_codes()
    );
    assert_eq!(
        r.execution.as_ref().unwrap().details["sandbox_status"],
        "panic"
    );
}

#[test]
fn runtime_threshold_breach_ends_in_the_policy_state_with_the_runtime_fault() {
    for (policy, state) in [
        (
            FailurePolicy::SelectiveQuarantine,
            DecisionState::Quarantined,
        ),
        (FailurePolicy::FullRollback, DecisionState::RolledBack),
    ] {
        let cfg = ExecutionConfig {
            failure_policy: policy,
            validator: RuntimeValidator::new(RuntimeThresholds {
                max_rows: 10,
                ..RuntimeThresholds::default()
            }),
            ..ExecutionConfig::default()
        };
        let (r, _, _) = run(service("mock", &SandboxOptions::default(), cfg, None, "k1"));
        assert_eq!(r.state, state, "{}", r.blocked_reason);
        assert!(!r.is_executable());
        assert!(
            r.fault_codes()
                .contains(&"RUNTIME_CARDINALITY_ABOVE_MAXIMUM"),
            "{:?}",
            r.fault_codes()
        );
        assert_eq!(
            r.execution.as_ref().unwrap().details["runtime_validation"],
            false
        );
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn lease_held_by_another_holder_blocks_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("l.db")).unwrap());
    // Find the target first with an unleased run.
    let (r0, _, _) = run(service(
        "mock",
        &SandboxOptions::default(),
        ExecutionConfig::default(),
        None,
        "k1",
    ));
    let target = r0.signature.as_ref().unwrap().target_dataset_name();
    db.acquire_lease(
        &target,
        "other-kernel",
        Timestamp::from_second(1_767_225_500).unwrap(),
        3600,
    )
    .unwrap();
    let (r, t, store) = run(service(
        "mock",
        &SandboxOptions::default(),
        ExecutionConfig::default(),
        Some(db.clone()),
        "k1",
    ));
    testing::assert_blocked_with(&r, "STATE_TARGET_LEASED").unwrap();
    assert_eq!(r.blocked_reason, "Execution refused: STATE_TARGET_LEASED");
    let ex = r.execution.as_ref().unwrap();
    assert_eq!(ex.publish_state, PublishState::NotExecuted);
    assert_eq!(ex.details["executed"], false);
    assert_eq!(ex.details["lease_holder"], "other-kernel");
    assert!(t.contains(&"execution_completed".to_owned()));
    let ev = events(store.as_ref());
    let done = ev
        .iter()
        .find(|e| e.event_type == "execution_completed")
        .unwrap();
    assert_eq!(done.outcome, "not_executed");
    assert_eq!(done.details["committed"], false);
    let fin = ev.into_iter().last().unwrap();
    assert_eq!(fin.event_type, "final_decision");
    assert_eq!(fin.outcome, "blocked");
    assert_eq!(fin.details["faults"][0], "STATE_TARGET_LEASED");
    // Nothing was recorded for the blocked run, and the other holder keeps its lease.
    assert!(db.execution_load(None).unwrap().is_empty());
    assert_eq!(db.lease(&target).unwrap().unwrap().holder, "other-kernel");
}

#[cfg(feature = "sqlite")]
#[test]
fn skill_promotion_is_reported_beside_an_unchanged_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("l.db")).unwrap());
    let mut skills = Vec::new();
    for _ in 0..4 {
        let (r, _, _) = run(service(
            "mock",
            &SandboxOptions::default(),
            ExecutionConfig::default(),
            Some(db.clone()),
            "k1",
        ));
        // B1: the decision stays approved and executable whatever the skill does.
        assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
        assert!(r.is_executable());
        let skill = r.execution.as_ref().unwrap().details["lifecycle"]["skill_state"]
            .as_str()
            .unwrap()
            .to_owned();
        skills.push(skill);
    }
    assert_eq!(skills[0], "candidate");
    assert_eq!(skills[3], "active", "{skills:?}");
    assert_eq!(db.execution_load(None).unwrap().len(), 4);
}

#[cfg(feature = "sqlite")]
#[test]
fn replans_and_policy_faults_reach_the_execution_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("l.db")).unwrap());
    let svc = service(
        "mock",
        &SandboxOptions::default(),
        ExecutionConfig::default(),
        Some(db.clone()),
        "k1",
    );
    let (k, _) = kernel_with(config("prod-v1"), |b| {
        b.executor(SandboxExecution::new(svc, clock()))
    });
    let r = k.process(common::REPLAN);
    assert_eq!(
        r.state,
        DecisionState::ApprovedWithWarnings,
        "{}",
        r.blocked_reason
    );
    assert!(r.replan_count > 0);
    let records = db.execution_load(None).unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].replanned);
    assert_eq!(records[0].signature_hash, r.signature_hash);
    let policy_codes: Vec<String> = r
        .policy_result
        .as_ref()
        .unwrap()
        .faults
        .iter()
        .map(|f| f.code.to_string())
        .collect();
    for code in &policy_codes {
        assert!(
            records[0].faults.contains(code),
            "{code} not in {:?}",
            records[0].faults
        );
    }
}
