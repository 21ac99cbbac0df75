//! The PostgreSQL stores on a throwaway PostgreSQL 15 cluster (skipped by the quick
//! profile; `cargo xtask ci` runs it): the semantics of the SQLite stores (tickets,
//! kill switches, budgets), four sessions racing to spend one granted ticket (exactly
//! one does), a switch engaged through one connection blocking a decision gated on a
//! snapshot read through another, and eight sessions reserving against a cap of three
//! runs (exactly three are admitted). One cluster, so one test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_test_support::pg::PgCluster;

use crate::budget::{
    Budget, BudgetError, BudgetLedger, Dimension, Limits, PgBudgets, ReserveError, ReserveRequest,
    Scope as BudgetScope, Usage, dbu_to_micros,
};
use crate::snapshot::{ControlRequest, ControlStore, ControlVerdict, bound_content_hash, gate};
use crate::{ControlError, KillSwitch, PgControl, Resolution, Scope, Ticket, TicketStatus};
use cfa_types::{PolicyAction, PolicyResult, StateSignature};
use serde_json::json;
use std::sync::{Arc, Barrier};

const SECRET: &str = "ctl-pw-never-shown";
const T0: &str = "2026-01-01T00:00:00+00:00";
const T1: &str = "2026-01-01T01:00:00+00:00";
const NOW: i64 = 1_767_225_600;

fn ticket(id: &str, status: TicketStatus) -> Ticket {
    Ticket {
        id: id.into(),
        status,
        intent_id: "i".into(),
        content_hash: "c".into(),
        policy_bundle_hash: "b".into(),
        policy_bundle: "v".into(),
        requester: "r".into(),
        reason: "GOLD: needs approval".into(),
        fault_codes: vec!["GOLD".into()],
        created_at: T0.into(),
        expires_at: "2026-01-02T00:00:00+00:00".into(),
        decided_by: None,
        decided_at: None,
        note: None,
        spent_at: None,
    }
}

fn signature() -> StateSignature {
    StateSignature::from_value(&json!({
        "domain": "fiscal", "intent": "publish", "target_layer": "silver",
        "datasets": [{"name": "nfe", "classification": "internal", "size_gb": 1,
                      "pii_columns": [], "partition_column": "d", "merge_keys": ["id"]}],
        "constraints": {"partition_by": ["d"]},
        "intent_id": "i-1"
    }))
    .unwrap()
}

fn approved() -> PolicyResult {
    PolicyResult {
        action: PolicyAction::Approve,
        faults: cfa_types::FaultList::new(),
        interventions: cfa_types::SharedList::new(),
        replan_count: 0,
        reasoning: cfa_types::SharedStr::default(),
        patches: vec![],
        manual_fixes: vec![],
    }
}

fn request(id: &str) -> ReserveRequest {
    ReserveRequest {
        id: id.into(),
        intent_id: format!("i-{id}"),
        scopes: vec!["target:silver.t".parse().unwrap()],
        estimate: Usage::estimate(Some(0.0)).unwrap(),
        now: NOW,
    }
}

fn tickets_and_kills(dsn: &str) {
    let a = PgControl::connect(dsn).unwrap();
    let b = PgControl::connect(dsn).unwrap();
    assert!(!format!("{a:?}").contains(SECRET));
    assert!(
        a.database().starts_with("postgres@127.0.0.1:"),
        "{}",
        a.database()
    );

    // Tickets: the SQLite store's semantics.
    a.open_ticket(&ticket("t1", TicketStatus::Pending)).unwrap();
    assert!(matches!(
        b.open_ticket(&ticket("t1", TicketStatus::Pending)),
        Err(ControlError::DuplicateTicket { .. })
    ));
    assert_eq!(
        b.ticket("t1").unwrap().unwrap(),
        ticket("t1", TicketStatus::Pending)
    );
    assert!(
        !b.spend_ticket("t1", T1).unwrap(),
        "pending: nothing to spend"
    );
    assert!(matches!(
        a.resolve("nope", Resolution::Grant, "ana", None, T1),
        Err(ControlError::UnknownTicket { .. })
    ));
    assert!(matches!(
        a.resolve("t1", Resolution::Grant, " ", None, T1),
        Err(ControlError::Empty { .. })
    ));
    assert!(matches!(
        a.resolve(
            "t1",
            Resolution::Grant,
            "ana",
            None,
            "2026-01-03T00:00:00+00:00"
        ),
        Err(ControlError::Expired { .. })
    ));
    let t = a
        .resolve("t1", Resolution::Grant, "ana", Some("CHG-42"), T1)
        .unwrap();
    assert_eq!(
        (t.status, t.decided_by.as_deref(), t.note.as_deref()),
        (TicketStatus::Granted, Some("ana"), Some("CHG-42"))
    );
    assert!(matches!(
        b.resolve("t1", Resolution::Deny, "bob", None, T1),
        Err(ControlError::NotPending {
            status: TicketStatus::Granted,
            ..
        })
    ));
    a.open_ticket(&ticket("t2", TicketStatus::Pending)).unwrap();
    let d = b.resolve("t2", Resolution::Deny, "bob", None, T1).unwrap();
    assert_eq!(d.status, TicketStatus::Denied);
    assert_eq!(b.tickets(None).unwrap().len(), 2);
    assert_eq!(b.tickets(Some(TicketStatus::Denied)).unwrap()[0].id, "t2");
    assert!(b.tickets(Some(TicketStatus::Pending)).unwrap().is_empty());
    // The JSON is the SQLite store's: the same Ticket value.
    assert_eq!(
        serde_json::to_value(b.ticket("t2").unwrap().unwrap()).unwrap()["status"],
        "denied"
    );

    // Four sessions race for one granted ticket: exactly one spends it.
    let barrier = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let dsn = dsn.to_owned();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let s = PgControl::connect(&dsn).unwrap();
                barrier.wait();
                s.spend_ticket("t1", T1).unwrap()
            })
        })
        .collect();
    let spent = racers
        .into_iter()
        .map(|r| r.join().unwrap())
        .filter(|s| *s)
        .count();
    assert_eq!(spent, 1);
    let t = a.ticket("t1").unwrap().unwrap();
    assert_eq!(
        (t.status, t.spent_at.as_deref()),
        (TicketStatus::Spent, Some(T1))
    );

    // A switch engaged through one connection blocks a decision read through another.
    let sig = signature();
    let no_approval = |_: &str| false;
    let req = ControlRequest::of(&sig, "bh", &no_approval);
    assert_eq!(req.content_hash, bound_content_hash(&sig));
    let before = b.snapshot(None).unwrap();
    assert!(matches!(
        gate(&approved(), &req, &before, T1),
        ControlVerdict::Pass
    ));
    let k = KillSwitch {
        scope: Scope::Domain("fiscal".into()),
        reason: "incident 42".into(),
        by: "ana".into(),
        engaged_at: T1.into(),
    };
    assert!(matches!(
        a.engage(&KillSwitch {
            reason: " ".into(),
            ..k.clone()
        }),
        Err(ControlError::Empty { .. })
    ));
    a.engage(&k).unwrap();
    let after = b.snapshot(None).unwrap();
    assert_eq!(after.kills, vec![k.clone()]);
    match gate(&approved(), &req, &after, T1) {
        ControlVerdict::Killed(kill) => assert_eq!(kill.reason, "incident 42"),
        other => panic!("{other:?}"),
    }
    // Re-engaging replaces reason and operator.
    a.engage(&KillSwitch {
        reason: "still on".into(),
        ..k.clone()
    })
    .unwrap();
    assert_eq!(b.kills().unwrap()[0].reason, "still on");
    assert_eq!(
        b.release(&k.scope).unwrap().map(|k| k.reason),
        Some("still on".into())
    );
    assert_eq!(a.release(&k.scope).unwrap(), None);
    assert!(a.kills().unwrap().is_empty());
    assert!(matches!(
        gate(&approved(), &req, &b.snapshot(None).unwrap(), T1),
        ControlVerdict::Pass
    ));
}

fn budgets(dsn: &str) {
    let db = PgBudgets::connect(dsn).unwrap();
    let other = PgBudgets::connect(dsn).unwrap();
    let scope: BudgetScope = "target:silver.t".parse().unwrap();
    let budget = Budget::new(
        scope.clone(),
        "24h".parse().unwrap(),
        Limits {
            dbu_micros: Some(dbu_to_micros(30.0).unwrap()),
            runs: None,
            rows: Some(500),
        },
    )
    .unwrap();
    assert_eq!(db.set(&budget, T0).unwrap(), None);
    assert_eq!(other.get(&scope).unwrap(), Some(budget.clone()));
    let twenty = |id: &str| ReserveRequest {
        estimate: Usage::estimate(Some(20.0)).unwrap(),
        ..request(id)
    };
    let a = db.reserve(&twenty("a")).unwrap();
    assert_eq!(a.lines.len(), 1);
    match other.reserve(&twenty("b")) {
        Err(ReserveError::Exceeded(e)) => {
            assert_eq!((e.dimension, e.remaining), (Dimension::Dbu, 10_000_000));
        }
        r => panic!("{r:?}"),
    }
    let s = db
        .reconcile(
            &a,
            &Usage {
                dbu_micros: 4_000_000,
                runs: 1,
                rows: 100,
            },
        )
        .unwrap();
    assert_eq!(s.lines[0].used.dbu_micros, 4_000_000);
    let b = other.reserve(&twenty("b")).unwrap();
    let st = db.status(&scope, NOW + 60).unwrap();
    assert_eq!((st.spent.rows, st.reserved.dbu_micros), (100, 20_000_000));
    other.release(&b).unwrap();
    let listed = db.list(NOW).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].remaining().dbu_micros, Some(26_000_000));
    assert_eq!(
        listed[0].document(),
        db.status(&scope, NOW).unwrap().document()
    );
    assert_eq!(db.remove(&scope).unwrap(), budget);
    assert!(matches!(db.remove(&scope), Err(BudgetError::NotFound(_))));
    assert!(matches!(
        db.status(&scope, NOW),
        Err(BudgetError::NotFound(_))
    ));
    assert!(
        db.reserve(&request("none")).unwrap().is_empty(),
        "no budget applies"
    );

    // Eight sessions reserve against a cap of three runs: exactly three are admitted.
    let race: BudgetScope = "target:silver.race".parse().unwrap();
    db.set(
        &Budget::new(
            race.clone(),
            "24h".parse().unwrap(),
            Limits {
                runs: Some(3),
                ..Limits::default()
            },
        )
        .unwrap(),
        T0,
    )
    .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let dsn = dsn.to_owned();
            let barrier = Arc::clone(&barrier);
            let race = race.clone();
            std::thread::spawn(move || {
                let mine = PgBudgets::connect(&dsn).unwrap();
                barrier.wait();
                match mine.reserve(&ReserveRequest {
                    scopes: vec![race],
                    ..request(&format!("r{i}"))
                }) {
                    Ok(r) => !r.is_empty(),
                    Err(ReserveError::Exceeded(e)) => {
                        assert_eq!(e.dimension, Dimension::Runs);
                        false
                    }
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let admitted = racers
        .into_iter()
        .map(|r| r.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(admitted, 3);
    assert_eq!(db.status(&race, NOW).unwrap().reserved.runs, 3);
}

/// Waits up to ten seconds for `done` (a notification, a reconnection).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn scopes(store: &PgControl) -> Vec<String> {
    store
        .snapshot(None)
        .unwrap()
        .kills
        .iter()
        .map(|k| k.scope.to_string())
        .collect()
}

/// A watching store serves the switches from memory (a renamed table, which notifies
/// nobody, does not disturb it) and drops them on every change: through another
/// store, through plain SQL (the trigger), through itself (at once); with its
/// listener's connection terminated or the server restarted it reads the table until
/// it listens again, so no change made meanwhile is missed.
fn watched_switches(pg: &PgCluster, dsn: &str) {
    let watched = PgControl::connect(dsn).unwrap().watching();
    let other = PgControl::connect(dsn).unwrap();
    assert!(!other.listening(), "only a watching store listens");
    eventually("the listener listens", || watched.listening());
    assert_eq!(scopes(&watched), Vec::<String>::new());

    // Served from memory: the table renamed away (no notification) goes unnoticed by
    // the watching store; a plain store cannot read it.
    pg.psql(
        "control",
        "ALTER TABLE cfa_control_kills RENAME TO cfa_control_kills_away",
    )
    .unwrap();
    assert_eq!(scopes(&watched), Vec::<String>::new());
    assert!(other.snapshot(None).is_err());
    pg.psql(
        "control",
        "ALTER TABLE cfa_control_kills_away RENAME TO cfa_control_kills",
    )
    .unwrap();

    // A change through another store, then through plain SQL: each notifies.
    let kill = |scope: &str| KillSwitch {
        scope: Scope::parse(scope).unwrap(),
        reason: "incident".into(),
        by: "ana".into(),
        engaged_at: T0.into(),
    };
    other.engage(&kill("domain:fiscal")).unwrap();
    eventually("another store's switch arrives", || {
        scopes(&watched) == ["domain:fiscal"]
    });
    pg.psql(
        "control",
        "INSERT INTO cfa_control_kills VALUES ('*', 'by hand', 'dba', '2026-01-01T00:00:00+00:00')",
    )
    .unwrap();
    eventually("a switch inserted by SQL arrives", || {
        scopes(&watched) == ["*", "domain:fiscal"]
    });
    // Through itself: the very next snapshot.
    watched.release(&Scope::parse("*").unwrap()).unwrap();
    assert_eq!(scopes(&watched), ["domain:fiscal"]);
    watched.engage(&kill("domain:rh")).unwrap();
    assert_eq!(scopes(&watched), ["domain:fiscal", "domain:rh"]);

    // The listener's connection terminated: reads go to the table until it listens
    // again, so a change made while it is down is seen.
    pg.psql(
        "control",
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}'",
            crate::pg_watch::APPLICATION_NAME
        ),
    )
    .unwrap();
    pg.psql(
        "control",
        "DELETE FROM cfa_control_kills WHERE scope = 'domain:rh'",
    )
    .unwrap();
    eventually(
        "the change made while the listener was down is seen",
        || scopes(&watched) == ["domain:fiscal"],
    );
    eventually("the listener listens again", || watched.listening());

    // The server restarted: the store fails closed while it is down, then recovers.
    pg.restart().unwrap();
    eventually("the store reads again after the restart", || {
        watched.snapshot(None).is_ok()
    });
    eventually("the listener listens after the restart", || {
        watched.listening()
    });
    // (A pooled connection from before the restart fails its first call: closed.)
    eventually("another store writes after the restart", || {
        other
            .release(&Scope::parse("domain:fiscal").unwrap())
            .is_ok()
    });
    eventually("a change after the restart arrives", || {
        scopes(&watched).is_empty()
    });
}

#[test]
fn control_state_in_postgres_is_shared_and_single_use() {
    let pg = PgCluster::start().unwrap();
    pg.create_database("control").unwrap();
    let dsn = pg.dsn("control", Some(SECRET));
    tickets_and_kills(&dsn);
    watched_switches(&pg, &dsn);
    budgets(&dsn);

    // Errors name the server, never the password; a missing variable is named.
    let e = PgControl::connect(&format!(
        "host=127.0.0.1 port=1 user=u password={SECRET} dbname=d"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("u@127.0.0.1:1/d") && !e.contains(SECRET), "{e}");
    let e = PgBudgets::connect(&format!(
        "host=127.0.0.1 port=1 user=u password={SECRET} dbname=d"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("u@127.0.0.1:1/d") && !e.contains(SECRET), "{e}");
    let e = PgControl::connect_env("CFA_CONTROL_TEST_UNSET_VARIABLE")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CFA_CONTROL_TEST_UNSET_VARIABLE is not set"),
        "{e}"
    );
}
