//! State projection into memory and SQLite stores, bounded history (B10), and target
//! leases, including two processes racing for one target.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_lifecycle::time::parse;
use cfa_lifecycle::*;
use cfa_sandbox::{AggregateMetrics, PublishState, RunOutcome, SandboxStatus};
use std::process::Command;

fn outcome(state: PublishState) -> RunOutcome {
    RunOutcome {
        sandbox: "mock".into(),
        sandbox_status: SandboxStatus::Completed,
        publish_state: state,
        step_results: vec![],
        metrics: AggregateMetrics {
            rows_output: 100_000,
            cost_dbu: 5.0,
            duration_seconds: 12.5,
            ..Default::default()
        },
        runtime_validation: Some(true),
        runtime_faults: vec![],
        retries: 0,
        quarantined_steps: vec!["load_target".into()],
        committed_steps: vec!["extract_nfe".into()],
        skipped_steps: vec![],
    }
}

fn input(o: &RunOutcome) -> ProjectionInput<'_> {
    ProjectionInput {
        intent_id: "i-1",
        target: "silver_fiscal",
        signature_hash: "h1",
        target_layer: "silver",
        outcome: o,
    }
}

fn check_projections(store: &dyn StateStore) {
    assert_eq!(store.version_id().unwrap(), "v_initial");
    let o = outcome(PublishState::Published);
    let p = project(store, &input(&o), "v_00000001", "2026-01-01T00:00:00+00:00").unwrap();
    assert_eq!(p.projection_type, ProjectionType::Full);
    assert!(p.projected && !p.audit_only);
    assert_eq!(p.target_scope, ["silver_fiscal"]);
    let st = store.dataset_state("silver_fiscal").unwrap().unwrap();
    assert_eq!(st.state, "published");
    assert_eq!(
        st.metrics,
        DatasetMetrics {
            rows_output: 100_000,
            cost_dbu: 5.0,
            duration_seconds: 12.5
        }
    );
    assert_eq!(st.quarantined_steps, None);
    assert_eq!(
        serde_json::to_value(&st).unwrap(),
        serde_json::json!({"state": "published", "signature_hash": "h1", "target_layer": "silver",
            "last_updated": "2026-01-01T00:00:00+00:00",
            "metrics": {"rows_output": 100000, "cost_dbu": 5.0, "duration_seconds": 12.5}})
    );
    assert_eq!(store.version_id().unwrap(), "v_00000001");

    // Rollback: audit only, registry unchanged.
    let o = outcome(PublishState::RolledBack);
    let p = project(store, &input(&o), "v_00000002", "2026-01-02T00:00:00+00:00").unwrap();
    assert_eq!(p.projection_type, ProjectionType::Rollback);
    assert!(!p.projected && p.audit_only && p.dataset_state.is_none());
    assert_eq!(store.version_id().unwrap(), "v_00000001");
    assert_eq!(
        store.dataset_state("silver_fiscal").unwrap().unwrap().state,
        "published"
    );

    let cases = [
        (
            PublishState::Degraded {
                failed_steps: vec!["load_target".into()],
            },
            ProjectionType::Degraded,
            "degraded",
            true,
            true,
        ),
        (
            PublishState::CommittedNotPublished,
            ProjectionType::Partial,
            "committed_not_published",
            false,
            false,
        ),
        (
            PublishState::Quarantined {
                steps: vec!["load_target".into()],
            },
            ProjectionType::Quarantine,
            "quarantined",
            true,
            false,
        ),
    ];
    for (i, (ps, pt, name, q, c)) in cases.into_iter().enumerate() {
        let o = outcome(ps);
        let v = format!("v_1000000{i}");
        let p = project(store, &input(&o), &v, "2026-01-03T00:00:00+00:00").unwrap();
        assert_eq!(p.projection_type, pt);
        let st = store.dataset_state("silver_fiscal").unwrap().unwrap();
        assert_eq!(st.state, name);
        assert_eq!(st.quarantined_steps.is_some(), q);
        assert_eq!(st.committed_steps.is_some(), c);
        assert_eq!(store.version_id().unwrap(), v);
    }
    let h = store.recent_history(10).unwrap();
    assert_eq!(h.len(), 5);
    assert_eq!(h[1].outcome, "rolled_back");
    assert_eq!(h[1].version_id, "v_00000001");
    assert_eq!(h[4].outcome, "quarantined");
}

#[test]
fn projection_into_memory_store() {
    check_projections(&MemoryStateStore::default());
}

#[test]
fn projection_into_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfa.db");
    check_projections(&LifecycleDb::open(&path).unwrap());
    // Reopening sees the same state.
    let db = LifecycleDb::open(&path).unwrap();
    assert_eq!(
        db.dataset_state("silver_fiscal").unwrap().unwrap().state,
        "quarantined"
    );
    assert_eq!(db.history_len().unwrap(), 5);
}

#[test]
fn memory_history_stays_bounded_over_100k_projections() {
    let store = MemoryStateStore::new(100);
    let o = outcome(PublishState::Published);
    for i in 0..100_000u32 {
        let v = format!("v_{i:08x}");
        project(&store, &input(&o), &v, "2026-01-01T00:00:00+00:00").unwrap();
        assert!(store.history_len().unwrap() <= 100);
    }
    assert_eq!(store.history_len().unwrap(), 100);
    let h = store.recent_history(1000).unwrap();
    assert_eq!(h.len(), 100);
    assert_eq!(h[0].version_id, format!("v_{:08x}", 99_900));
    assert_eq!(h[99].version_id, format!("v_{:08x}", 99_999));
}

#[test]
fn sqlite_history_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = LifecycleDb::open(dir.path().join("cfa.db"))
        .unwrap()
        .with_history_cap(10);
    let o = outcome(PublishState::Published);
    for i in 0..250u32 {
        project(
            &db,
            &input(&o),
            &format!("v_{i:08x}"),
            "2026-01-01T00:00:00+00:00",
        )
        .unwrap();
        assert!(db.history_len().unwrap() <= 10);
    }
    let h = db.recent_history(100).unwrap();
    assert_eq!(h.len(), 10);
    assert_eq!(h[0].version_id, format!("v_{:08x}", 240));
    assert_eq!(h[9].version_id, format!("v_{:08x}", 249));
}

/// Several connections (as several `cfa` processes sharing one `--db`) projecting into
/// one SQLite file at once: every projection lands and none fails with "database is
/// locked". History numbering reads before it writes, which a deferred transaction
/// cannot do under WAL while another connection commits (its lock upgrade fails at
/// once, without waiting out the busy timeout).
#[test]
fn concurrent_connections_project_into_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    drop(LifecycleDb::open(&path).unwrap());
    let o = outcome(PublishState::Published);
    let (threads, each) = (8u32, 150u32);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (path, o) = (&path, &o);
            s.spawn(move || {
                let db = LifecycleDb::open(path).unwrap().with_history_cap(2_000);
                for i in 0..each {
                    project(
                        &db,
                        &input(o),
                        &format!("v_{t}_{i:04}"),
                        "2026-01-01T00:00:00+00:00",
                    )
                    .unwrap_or_else(|e| panic!("connection {t}, projection {i}: {e}"));
                }
            });
        }
    });
    let db = LifecycleDb::open(&path).unwrap().with_history_cap(2_000);
    let h = db.recent_history(2_000).unwrap();
    assert_eq!(h.len(), (threads * each) as usize);
    let mut versions: Vec<_> = h.iter().map(|e| e.version_id.clone()).collect();
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        (threads * each) as usize,
        "no history entry overwritten"
    );
}

#[test]
fn lease_refuses_a_second_holder_until_release_or_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfa.db");
    let a = LifecycleDb::open(&path).unwrap();
    let b = LifecycleDb::open(&path).unwrap();
    let t0 = parse("2026-01-01T00:00:00Z").unwrap();
    let l = a
        .acquire_lease("silver_fiscal", "kernel-a", t0, 60)
        .unwrap();
    assert_eq!(l.expires_at, "2026-01-01T00:01:00+00:00");
    let err = b
        .acquire_lease("silver_fiscal", "kernel-b", t0, 60)
        .unwrap_err();
    let LifecycleError::Leased(held) = err else {
        panic!("{err}")
    };
    assert_eq!(held.holder, "kernel-a");
    let f = lease_fault(&held);
    assert_eq!(f.code, "STATE_TARGET_LEASED");
    assert!(f.message.contains("kernel-a") && f.message.contains("silver_fiscal"));
    // Another target is free; the holder may renew.
    b.acquire_lease("gold_x", "kernel-b", t0, 60).unwrap();
    a.acquire_lease("silver_fiscal", "kernel-a", t0, 120)
        .unwrap();
    // Expiry (injected clock) frees it.
    let later = parse("2026-01-01T00:02:01Z").unwrap();
    assert_eq!(
        b.acquire_lease("silver_fiscal", "kernel-b", later, 60)
            .unwrap()
            .holder,
        "kernel-b"
    );
    assert!(!a.release_lease("silver_fiscal", "kernel-a").unwrap());
    assert!(b.release_lease("silver_fiscal", "kernel-b").unwrap());
    assert!(a.lease("silver_fiscal").unwrap().is_none());
    a.acquire_lease("silver_fiscal", "kernel-a", later, 60)
        .unwrap();
}

const CHILD_DB: &str = "CFA_LEASE_CHILD_DB";
const CHILD_ID: &str = "CFA_LEASE_CHILD_ID";

/// In a child process: try to take the lease and print the result. In the parent:
/// nothing (the env var is unset).
#[test]
fn lease_child() {
    let (Ok(db), Ok(id)) = (std::env::var(CHILD_DB), std::env::var(CHILD_ID)) else {
        return;
    };
    let store = LifecycleDb::open(&db).unwrap();
    let now = parse("2026-01-01T00:00:00Z").unwrap();
    match store.acquire_lease("silver_fiscal", &id, now, 3600) {
        Ok(l) => println!("LEASE-WON {}", l.holder),
        Err(LifecycleError::Leased(h)) => println!("LEASE-REFUSED held-by {}", h.holder),
        Err(e) => println!("LEASE-ERROR {e}"),
    }
}

#[test]
fn two_processes_race_for_one_target() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    LifecycleDb::open(&db).unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = |id: &str| {
        Command::new(&exe)
            .args([
                "--exact",
                &cfa_test_support::test_path(module_path!(), "lease_child"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_ID, id)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let children = [spawn("proc-1"), spawn("proc-2")];
    let outs: Vec<String> = children
        .into_iter()
        .map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap())
        .collect();
    let won: Vec<&String> = outs.iter().filter(|o| o.contains("LEASE-WON")).collect();
    let refused: Vec<&String> = outs
        .iter()
        .filter(|o| o.contains("LEASE-REFUSED"))
        .collect();
    assert_eq!(won.len(), 1, "{outs:?}");
    assert_eq!(refused.len(), 1, "{outs:?}");
    let winner = if won[0].contains("proc-1") {
        "proc-1"
    } else {
        "proc-2"
    };
    assert!(
        refused[0].contains(&format!("held-by {winner}")),
        "{outs:?}"
    );
    let lease = LifecycleDb::open(&db)
        .unwrap()
        .lease("silver_fiscal")
        .unwrap()
        .unwrap();
    assert_eq!(lease.holder, winner);
}
