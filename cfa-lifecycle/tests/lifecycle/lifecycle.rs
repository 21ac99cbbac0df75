//! Indices against hand-computed values, the promotion state machine, and the SQLite
//! record/skill tables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_lifecycle::time::{isoformat, parse};
use cfa_lifecycle::*;
use jiff::Timestamp;

const H: &str = "abcdef0123456789abcdef";

fn at(s: &str) -> Timestamp {
    parse(s).unwrap()
}

/// A mock-sandbox run of the reference 5-step plan: 12.5 s, 5 DBU.
fn mock_run(ts: &str) -> ExecutionRecord {
    ExecutionRecord {
        duration_seconds: 12.5,
        cost_dbu: 5.0,
        ..ExecutionRecord::new(H, at(ts))
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn indices_match_hand_computed_values() {
    let recs: Vec<_> = (1..=3)
        .map(|d| mock_run(&format!("2026-01-0{d}T10:00:00Z")))
        .collect();
    let s = IndexCalculator::new(7).compute(H, &recs, at("2026-01-04T00:00:00Z"));
    // (1 - 12.5/300) * (1 - 5/50) * 1
    close(s.ifo, 0.8625);
    close(s.ifs, 1.0);
    close(s.ifg, 1.0);
    close(s.idi, 1.0);
    assert_eq!(s.execution_count, 3);
    assert!(s.promotion_eligible());
    // Window: only the last record is within 1 day of Jan 3 12:00.
    assert_eq!(
        IndexCalculator::new(1)
            .compute(H, &recs, at("2026-01-03T12:00:00Z"))
            .execution_count,
        1
    );
    // Other hashes are ignored; no records gives the reference's empty scores.
    let e = IndexCalculator::new(7).compute("other", &recs, at("2026-01-04T00:00:00Z"));
    assert_eq!(
        (e.ifo, e.ifs, e.ifg, e.idi, e.execution_count),
        (0.0, 0.0, 1.0, 1.0, 0)
    );
    // Mixed: one replanned with a fault, one failed and slow, one PII exposure.
    let mut a = mock_run("2026-01-01T10:00:00Z");
    a.replanned = true;
    a.faults = vec!["FINOPS_X".into()];
    let mut b = mock_run("2026-01-02T10:00:00Z");
    b.success = false;
    b.duration_seconds = 900.0; // clipped to 1
    b.cost_dbu = 25.0;
    let c = mock_run("2026-01-03T10:00:00Z");
    let s = IndexCalculator::new(7).compute(H, [&a, &b, &c], at("2026-01-04T00:00:00Z"));
    // dur mean = (12.5/300 + 1 + 12.5/300)/3 ; cost mean = (0.1 + 0.5 + 0.1)/3 ; success 2/3
    let dur = (12.5 / 300.0 + 1.0 + 12.5 / 300.0) / 3.0;
    let cost = (0.1 + 0.5 + 0.1) / 3.0;
    close(s.ifo, (1.0 - dur) * (1.0 - cost) * (2.0 / 3.0));
    close(s.ifs, 1.0 * (1.0 - 1.0 / 3.0) * (2.0 / 3.0));
    close(s.idi, 2.0 / 3.0);
    assert!(s.drift_detected() && !s.severe_drift());
    close(s.ifg, 1.0);
    let mut d = mock_run("2026-01-03T11:00:00Z");
    d.pii_exposure = true;
    close(
        IndexCalculator::new(7)
            .compute(H, [&c, &d], at("2026-01-04T00:00:00Z"))
            .ifg,
        0.0,
    );
}

#[test]
fn execution_record_from_run_follows_the_reference() {
    let f = |code: &str| cfa_types::Fault {
        code: code.into(),
        family: cfa_types::FaultFamily::Semantic,
        severity: cfa_types::FaultSeverity::High,
        stage: "s".into(),
        message: Default::default(),
        mandatory_action: cfa_types::PolicyAction::Block,
        remediation: Default::default(),
        detected_before_execution: true,
    };
    let r = ExecutionRecord::from_run(
        H,
        at("2026-01-01T00:00:00Z"),
        "quarantined",
        1,
        5.0,
        12.5,
        &[f("COMPLIANCE_PII_RAW")],
    );
    assert!(!r.success && r.replanned && r.pii_exposure && !r.policy_compliant && r.layer_adherent);
    assert_eq!(r.faults, ["COMPLIANCE_PII_RAW"]);
    let r = ExecutionRecord::from_run(
        H,
        at("2026-01-01T00:00:00Z"),
        "approved_with_warnings",
        0,
        5.0,
        12.5,
        &[],
    );
    assert!(r.success && !r.replanned && r.policy_compliant && r.layer_adherent);
    assert!(
        !ExecutionRecord::from_run(
            H,
            at("2026-01-01T00:00:00Z"),
            "rolled_back",
            0,
            0.0,
            0.0,
            &[]
        )
        .layer_adherent
    );
}

#[test]
fn promotion_after_three_clean_runs_then_drift_demotion() {
    let engine = PromotionEngine::new(PromotionPolicy::default(), "cfa-rs-0.1.0");
    let mut skill = SkillRecord::new(H);
    let mut recs = Vec::new();
    for d in 1..=3 {
        recs.push(mock_run(&format!("2026-01-0{d}T10:00:00Z")));
        let now = at(&format!("2026-01-0{d}T11:00:00Z"));
        let s = engine.evaluate(&mut skill, &recs, now, "prod-v1", "cat-1");
        assert_eq!(s.execution_count, d);
        if d < 3 {
            assert_eq!(skill.state, SkillState::Candidate, "needs 3 executions");
        }
    }
    assert_eq!(skill.state, SkillState::Active);
    assert_eq!(skill.history.len(), 1);
    assert_eq!(skill.history[0].reason, "Promotion gate passed");
    assert_eq!(skill.history[0].timestamp, "2026-01-03T11:00:00+00:00");
    assert_eq!(
        skill.last_evaluation.as_deref(),
        Some("2026-01-03T11:00:00+00:00")
    );
    let m = &skill.generation_metadata;
    assert_eq!(m["promoted_by_system_version"], "cfa-rs-0.1.0");
    assert_eq!(m["policy_bundle_at_promotion"], "prod-v1");
    assert_eq!(m["catalog_snapshot_at_promotion"], "cat-1");
    assert_eq!(m["promotion_scores"]["IFo"].as_f64().unwrap(), 0.8625);
    assert_eq!(m["execution_count_at_promotion"], 3);
    assert_eq!(m["evaluation_window"], "last_7_days");

    // Three replanned runs: IDI = 1 - 3/6 = 0.50 → drift (watchlist), not severe.
    for h in 12..=14 {
        recs.push(ExecutionRecord {
            replanned: true,
            ..mock_run(&format!("2026-01-04T{h}:00:00Z"))
        });
    }
    let s = engine.evaluate(
        &mut skill,
        &recs,
        at("2026-01-04T20:00:00Z"),
        "prod-v1",
        "cat-1",
    );
    close(s.idi, 0.5);
    assert_eq!(skill.state, SkillState::Watchlist);
    assert_eq!(
        skill.history.last().unwrap().reason,
        "Drift detected: IDI=0.50"
    );
    assert_eq!(skill.demotion_reason, "Drift detected: IDI=0.50");
    // One more: IDI = 1 - 4/7 = 0.43 → severe drift, demoted.
    recs.push(ExecutionRecord {
        replanned: true,
        ..mock_run("2026-01-04T21:00:00Z")
    });
    let s = engine.evaluate(
        &mut skill,
        &recs,
        at("2026-01-04T22:00:00Z"),
        "prod-v1",
        "cat-1",
    );
    close(s.idi, 1.0 - 4.0 / 7.0);
    assert_eq!(skill.state, SkillState::Demoted);
    assert_eq!(
        skill.history.last().unwrap().reason,
        "Severe drift: IDI=0.43"
    );
    assert_eq!(
        skill
            .history
            .iter()
            .map(|t| (t.from, t.to))
            .collect::<Vec<_>>(),
        [
            (SkillState::Candidate, SkillState::Active),
            (SkillState::Active, SkillState::Watchlist),
            (SkillState::Watchlist, SkillState::Demoted)
        ]
    );
}

#[test]
fn governance_violation_demotes_and_inactivity_deprecates() {
    let engine = PromotionEngine::new(PromotionPolicy::default(), "v1");
    let mut skill = SkillRecord::new(H);
    let mut recs: Vec<_> = (1..=3)
        .map(|d| mock_run(&format!("2026-01-0{d}T10:00:00Z")))
        .collect();
    engine.evaluate(&mut skill, &recs, at("2026-01-03T11:00:00Z"), "b", "c");
    assert_eq!(skill.state, SkillState::Active);
    recs.push(ExecutionRecord {
        pii_exposure: true,
        ..mock_run("2026-01-03T12:00:00Z")
    });
    engine.evaluate(&mut skill, &recs, at("2026-01-03T13:00:00Z"), "b", "c");
    assert_eq!(skill.state, SkillState::Demoted);
    assert_eq!(skill.demotion_reason, "Governance violation: IFg=0.0");

    // Inactivity: an active skill with empty windows.
    let mut skill = SkillRecord::new(H);
    let recs: Vec<_> = (1..=3)
        .map(|d| mock_run(&format!("2026-01-0{d}T10:00:00Z")))
        .collect();
    engine.evaluate(&mut skill, &recs, at("2026-01-03T11:00:00Z"), "b", "c");
    for (i, day) in ["2026-02-01", "2026-02-08", "2026-02-15"]
        .iter()
        .enumerate()
    {
        engine.evaluate(&mut skill, &recs, at(&format!("{day}T00:00:00Z")), "b", "c");
        if i < 2 {
            assert_eq!(
                skill.consecutive_inactive_windows,
                u32::try_from(i + 1).unwrap()
            );
        }
    }
    assert_eq!(skill.state, SkillState::Deprecated);
    assert_eq!(
        skill.history.last().unwrap().reason,
        "Low reuse \u{2014} no executions for multiple windows"
    );
    engine.retire_for_catalog_change(&mut skill, None, at("2026-03-01T00:00:00Z"));
    assert_eq!(skill.state, SkillState::Retired);
}

#[test]
fn demote_by_system_version_only_touches_that_version() {
    let engine = PromotionEngine::new(PromotionPolicy::default(), "v1");
    let recs: Vec<_> = (1..=3)
        .map(|d| mock_run(&format!("2026-01-0{d}T10:00:00Z")))
        .collect();
    let mut a = SkillRecord::new(H);
    engine.evaluate(&mut a, &recs, at("2026-01-03T11:00:00Z"), "b", "c");
    let mut b = SkillRecord::new("other");
    b.state = SkillState::Active;
    let mut skills = vec![a, b];
    assert_eq!(
        engine.demote_by_system_version(&mut skills, "v1", at("2026-01-05T00:00:00Z")),
        1
    );
    assert_eq!(skills[0].state, SkillState::Demoted);
    assert_eq!(skills[1].state, SkillState::Active);
}

#[test]
fn sqlite_records_and_skills_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = LifecycleDb::open(dir.path().join("cfa.db")).unwrap();
    let mut r = mock_run("2026-01-01T10:00:00.250Z");
    r.faults = vec!["A".into(), "B".into()];
    db.execution_append(&r).unwrap();
    db.execution_append(&ExecutionRecord::new("zzz", at("2026-01-02T00:00:00Z")))
        .unwrap();
    assert_eq!(db.execution_load(None).unwrap().len(), 2);
    assert_eq!(db.execution_load(Some(H)).unwrap(), vec![r]);
    let engine = PromotionEngine::new(PromotionPolicy::default(), "v1");
    let recs: Vec<_> = (1..=3)
        .map(|d| mock_run(&format!("2026-01-0{d}T10:00:00Z")))
        .collect();
    let mut s = SkillRecord::new(H);
    engine.evaluate(&mut s, &recs, at("2026-01-03T11:00:00Z"), "b", "c");
    db.skill_upsert(&s).unwrap();
    db.skill_upsert(&s).unwrap();
    assert_eq!(db.skill_load_all().unwrap(), vec![s]);
    // The stored text is the reference's.
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let (ts, faults): (String, String) = conn
        .query_row(
            "SELECT timestamp, faults_json FROM execution_records ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(ts, "2026-01-01T10:00:00.250000+00:00");
    assert_eq!(faults, "[\"A\",\"B\"]");
    let v: i64 = conn
        .query_row("SELECT version FROM _schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(
        isoformat(at("2026-01-01T10:00:00Z")),
        "2026-01-01T10:00:00+00:00"
    );
}
