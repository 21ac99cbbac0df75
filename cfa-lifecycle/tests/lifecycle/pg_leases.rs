//! Target leases in PostgreSQL on a throwaway PostgreSQL 15 cluster: the SQLite
//! semantics (refused while another holder's lease is live, taken over once expired,
//! renewed by the same holder, released only by its holder), and eight sessions racing
//! for one target: exactly one holds it. One cluster, so one test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cfa_lifecycle::{LifecycleError, PgLeases};
use cfa_test_support::pg::PgCluster;
use jiff::Timestamp;
use std::sync::{Arc, Barrier};

#[test]
fn leases_in_postgres_have_one_holder() {
    let pg = PgCluster::start().unwrap();
    pg.create_database("leases").unwrap();
    let dsn = pg.dsn("leases", Some("lease-pw"));
    let a = PgLeases::connect(&dsn).unwrap();
    let b = PgLeases::connect(&dsn).unwrap();
    assert!(!format!("{a:?}").contains("lease-pw"));
    let t0: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let l = a
        .acquire_lease("silver_fiscal", "kernel-a", t0, 60)
        .unwrap();
    assert_eq!(l.expires_at, "2026-01-05T10:01:00+00:00");
    match b.acquire_lease("silver_fiscal", "kernel-b", t0, 60) {
        Err(LifecycleError::Leased(h)) => {
            assert_eq!(h.holder, "kernel-a");
            assert_eq!(h.expires_at, "2026-01-05T10:01:00+00:00");
        }
        other => panic!("{other:?}"),
    }
    // Renewal by the same holder; another target is independent.
    a.acquire_lease("silver_fiscal", "kernel-a", t0, 120)
        .unwrap();
    b.acquire_lease("gold_x", "kernel-b", t0, 60).unwrap();
    // Expired: taken over.
    let later: Timestamp = "2026-01-05T10:05:00Z".parse().unwrap();
    b.acquire_lease("silver_fiscal", "kernel-b", later, 60)
        .unwrap();
    assert_eq!(
        a.lease("silver_fiscal").unwrap().unwrap().holder,
        "kernel-b"
    );
    assert!(!a.release_lease("silver_fiscal", "kernel-a").unwrap());
    assert!(b.release_lease("silver_fiscal", "kernel-b").unwrap());
    assert!(a.lease("silver_fiscal").unwrap().is_none());

    // Eight sessions race for one target: exactly one wins.
    let barrier = Arc::new(Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let dsn = dsn.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let s = PgLeases::connect(&dsn).unwrap();
                barrier.wait();
                match s.acquire_lease("race_target", &format!("replica-{i}"), t0, 600) {
                    Ok(l) => Some(l.holder),
                    Err(LifecycleError::Leased(_)) => None,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let winners: Vec<String> = racers
        .into_iter()
        .filter_map(|r| r.join().unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(a.lease("race_target").unwrap().unwrap().holder, winners[0]);

    // Errors name the server, never the password.
    let e = PgLeases::connect("host=127.0.0.1 port=1 user=u password=lease-pw dbname=d")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("u@127.0.0.1:1/d") && !e.contains("lease-pw"),
        "{e}"
    );
}
