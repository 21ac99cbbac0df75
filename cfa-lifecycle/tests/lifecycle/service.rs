//! The Ω+Σ service end to end with the mock and panic sandboxes: leases, projection,
//! execution records and promotion after three clean runs (reported, B1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_lifecycle::time::parse;
use cfa_lifecycle::*;
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_sandbox::{ExecutionConfig, MockConfig, MockSandbox, PanicSandbox, Sandbox};
use cfa_types::{DecisionState, StateSignature};
use serde_json::json;
use std::sync::Arc;

fn sig() -> StateSignature {
    StateSignature::from_value(&json!({
      "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
      "datasets": [
        {"name": "nfe", "size_gb": 4000, "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
        {"name": "clientes", "size_gb": 0.5, "pii_columns": ["cpf"], "partition_column": "processing_date",
         "merge_keys": ["cliente_id"]}
      ],
      "constraints": {"no_pii_raw": true, "merge_key_required": true, "partition_by": ["processing_date"]},
      "intent_id": cfa_test_support::REFERENCE_INTENT_ID
    }))
    .unwrap()
}

/// A catalog declaring the nfe/clientes join key (the planner never guesses one).
fn join_catalog() -> cfa_types::Catalog {
    cfa_types::Catalog::from_value(&json!({"datasets": {
        "clientes": {"join_keys": {"nfe": ["cliente_id"]}}
    }}))
    .unwrap()
}

fn service(sandbox: Box<dyn Sandbox>, db: &Arc<LifecycleDb>) -> ExecutionService {
    ExecutionService {
        sandbox,
        config: ExecutionConfig::default(),
        store: db.clone(),
        db: Some(db.clone()),
        leases: cfa_lifecycle::LeasePolicy::default(),
        engine: PromotionEngine::new(PromotionPolicy::default(), "cfa-rs-test"),
        holder: "kernel-a".into(),
        lease_ttl_secs: 300,
    }
}

#[test]
fn three_clean_runs_promote_and_a_held_lease_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("cfa.db")).unwrap());
    let s = sig();
    let plan = ExecutionPlanner::default()
        .plan(&s, Some(&join_catalog()))
        .unwrap();
    let svc = service(Box::new(MockSandbox::default()), &db);
    let target = s.target_dataset_name();
    for d in 1..=3u32 {
        let v = format!("v_0000000{d}");
        let now = parse(&format!("2026-01-0{d}T10:00:00Z")).unwrap();
        let r = svc
            .run(&ServiceRequest {
                intent_id: "i",
                signature: &s,
                signature_hash: None,
                plan: &plan,
                artifact: None,
                version_id: &v,
                now,
                replan_count: 0,
                policy_faults: &[],
                policy_bundle_version: "prod-v1",
                catalog_snapshot_version: "cat-1",
            })
            .unwrap();
        assert_eq!(
            r.decision_state,
            DecisionState::Approved,
            "B1: promotion never changes the decision"
        );
        assert_eq!(r.projection.projection_type, ProjectionType::Full);
        let expected = if d < 3 {
            SkillState::Candidate
        } else {
            SkillState::Active
        };
        assert_eq!(r.skill_state, Some(expected));
        assert!(
            db.lease(&target).unwrap().is_none(),
            "the lease is released after the run"
        );
    }
    assert_eq!(
        db.dataset_state(&target).unwrap().unwrap().state,
        "published"
    );
    assert_eq!(db.version_id().unwrap(), "v_00000003");

    // Another kernel holds the target: refused, nothing recorded.
    let now = parse("2026-01-04T10:00:00Z").unwrap();
    db.acquire_lease(&target, "kernel-b", now, 600).unwrap();
    let err = svc
        .run(&ServiceRequest {
            intent_id: "i",
            signature: &s,
            signature_hash: None,
            plan: &plan,
            artifact: None,
            version_id: "v_x",
            now,
            replan_count: 0,
            policy_faults: &[],
            policy_bundle_version: "prod-v1",
            catalog_snapshot_version: "cat-1",
        })
        .unwrap_err();
    let ServiceError::Leased(held) = err else {
        panic!("{err}")
    };
    assert_eq!(held.holder, "kernel-b");
    assert_eq!(lease_fault(&held).code, "STATE_TARGET_LEASED");
    assert_eq!(db.execution_load(None).unwrap().len(), 3);
    assert_eq!(
        db.lease(&target).unwrap().unwrap().holder,
        "kernel-b",
        "the other holder keeps its lease"
    );
}

#[test]
fn panic_rolls_back_and_warnings_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("cfa.db")).unwrap());
    let s = sig();
    let plan = ExecutionPlanner::default()
        .plan(&s, Some(&join_catalog()))
        .unwrap();
    let req = |v: &'static str, d: u32| ServiceRequest {
        intent_id: "i",
        signature: &s,
        signature_hash: None,
        plan: &plan,
        artifact: None,
        version_id: v,
        now: parse(&format!("2026-01-0{d}T10:00:00Z")).unwrap(),
        replan_count: 0,
        policy_faults: &[],
        policy_bundle_version: "b",
        catalog_snapshot_version: "c",
    };
    let r = service(Box::new(PanicSandbox::default()), &db)
        .run(&req("v_1", 1))
        .unwrap();
    assert_eq!(r.decision_state, DecisionState::RolledBack);
    assert_eq!(r.projection.projection_type, ProjectionType::Rollback);
    assert!(
        db.dataset_state(&s.target_dataset_name())
            .unwrap()
            .is_none()
    );
    let rec = &db.execution_load(None).unwrap()[0];
    assert!(!rec.success && !rec.layer_adherent);
    assert_eq!(rec.faults, ["ENVIRONMENTAL_PANIC"]);

    let noisy = MockSandbox::new(MockConfig {
        null_ratio: 0.5,
        ..MockConfig::default()
    });
    let r = service(Box::new(noisy), &db).run(&req("v_2", 2)).unwrap();
    assert_eq!(r.decision_state, DecisionState::ApprovedWithWarnings);
    let failing = MockSandbox::new(MockConfig::default().fail_always("load_target"));
    let mut svc = service(Box::new(failing), &db);
    svc.config.failure_policy = cfa_sandbox::FailurePolicy::DegradedPublish;
    let r = svc.run(&req("v_3", 3)).unwrap();
    assert_eq!(r.decision_state, DecisionState::Degraded, "B6");
    assert_eq!(r.projection.projection_type, ProjectionType::Degraded);
}

/// A lease table that records who asked, in front of a lifecycle database.
struct Recording {
    inner: LifecycleDb,
    asked: std::sync::Mutex<Vec<String>>,
}

impl LeaseStore for Recording {
    fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: jiff::Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError> {
        self.asked.lock().unwrap().push(format!("acquire {holder}"));
        self.inner.acquire_lease(target, holder, now, ttl_secs)
    }

    fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError> {
        self.asked.lock().unwrap().push(format!("release {holder}"));
        self.inner.release_lease(target, holder)
    }
}

#[test]
fn a_lease_policy_names_the_table_and_a_holder_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(LifecycleDb::open(dir.path().join("cfa.db")).unwrap());
    let table = Arc::new(Recording {
        inner: LifecycleDb::open(dir.path().join("leases.db")).unwrap(),
        asked: std::sync::Mutex::default(),
    });
    let s = sig();
    let target = s.target_dataset_name();
    let plan = ExecutionPlanner::default()
        .plan(&s, Some(&join_catalog()))
        .unwrap();
    let now = parse("2026-01-05T10:00:00Z").unwrap();
    let request = |intent_id| ServiceRequest {
        intent_id,
        signature: &s,
        signature_hash: None,
        plan: &plan,
        artifact: None,
        version_id: "v_1",
        now,
        replan_count: 0,
        policy_faults: &[],
        policy_bundle_version: "prod-v1",
        catalog_snapshot_version: "cat-1",
    };
    let mut svc = service(Box::new(MockSandbox::default()), &db);
    svc.leases = LeasePolicy {
        store: Some(table.clone()),
        per_run: true,
    };
    // The process's own holder id holds the target (another of its runs, say): a run
    // holding its own lease is refused instead of renewing it.
    table
        .inner
        .acquire_lease(&target, "kernel-a", now, 600)
        .unwrap();
    let ServiceError::Leased(held) = svc.run(&request("i-2")).unwrap_err() else {
        panic!("expected a held lease");
    };
    assert_eq!(held.holder, "kernel-a");
    assert!(table.inner.release_lease(&target, "kernel-a").unwrap());
    let r = svc.run(&request("i-3")).unwrap();
    assert_eq!(r.decision_state, DecisionState::Approved);
    assert_eq!(
        *table.asked.lock().unwrap(),
        [
            "acquire kernel-a/i-2",
            "acquire kernel-a/i-3",
            "release kernel-a/i-3"
        ]
    );
    assert!(table.inner.lease(&target).unwrap().is_none());
    // The lifecycle database's own table was not used; it still records the run.
    assert!(db.lease(&target).unwrap().is_none());
    assert_eq!(db.execution_load(None).unwrap().len(), 1);

    // Without a holder per run, the same holder renews its lease (a one-run process).
    svc.leases.per_run = false;
    table
        .inner
        .acquire_lease(&target, "kernel-a", now, 600)
        .unwrap();
    assert!(svc.run(&request("i-4")).is_ok());
}
