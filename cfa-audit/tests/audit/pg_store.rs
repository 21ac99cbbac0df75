//! The PostgreSQL store on a throwaway PostgreSQL 15 cluster: appends and batches,
//! concurrent appenders on two stores (two "replicas") forming one gap-free chain,
//! streaming verification, tampering and truncation caught, the export byte-identical
//! to the JSONL store's file for the same events, a server restart failing appends
//! (nothing acknowledged) and the store recovering, and a bad DSN's password never in
//! an error. One cluster, so every scenario lives in the one test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cfa_audit::{AuditStore, Durability, JsonlStore, NewEvent, PgStore, VerifyOptions};
use cfa_test_support::pg::PgCluster;
use std::sync::Arc;

fn event(i: u32) -> NewEvent {
    NewEvent::new(
        format!("intent-{i}"),
        "policy_check",
        "policy_evaluation",
        if i.is_multiple_of(3) {
            "block"
        } else {
            "approve"
        },
        format!("2026-01-01T00:00:{:02}+00:00", i % 60),
    )
    .detail("reasoning", format!("rule set {i} — ünïcode \"quoted\""))
    .detail("n", i)
}

fn dsn(pg: &PgCluster, db: &str) -> String {
    pg.dsn(db, Some("hunter2-pw"))
}

#[test]
fn one_chain_in_postgres_shared_by_stores() {
    let pg = PgCluster::start().unwrap();

    // --- appends, batches, export == the JSONL store's bytes -------------------
    pg.create_database("a").unwrap();
    let store = PgStore::connect(&dsn(&pg, "a")).unwrap();
    assert!(format!("{store:?}").contains("postgres@127.0.0.1"));
    assert!(!format!("{store:?}").contains("hunter2"));
    assert_eq!(store.len().unwrap(), 0);
    assert_eq!(store.tail_hash().unwrap(), "");
    let dir = tempfile::tempdir().unwrap();
    let jsonl_path = dir.path().join("same.jsonl");
    let jsonl = JsonlStore::open(&jsonl_path, Durability::Never).unwrap();
    let first = store.append(event(0)).unwrap();
    assert_eq!(first.previous_hash, "");
    assert_eq!(jsonl.append(event(0)).unwrap(), first);
    let mut written = Vec::new();
    store
        .append_batch((1..40).map(event).collect(), &mut written)
        .unwrap();
    let mut same = Vec::new();
    jsonl
        .append_batch((1..40).map(event).collect(), &mut same)
        .unwrap();
    assert_eq!(written, same);
    assert_eq!(written[0].previous_hash, first.event_hash);
    drop(jsonl);
    assert_eq!(store.len().unwrap(), 40);
    let mut exported = Vec::new();
    let report = store.export(&mut exported).unwrap();
    assert_eq!(report.events, 40);
    assert_eq!(report.head.seq, 40);
    assert_eq!(exported, std::fs::read(&jsonl_path).unwrap());
    let out = dir.path().join("export.jsonl");
    store.export_file(&out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), exported);
    let v = cfa_audit::verify_file(&out, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(v.intact() && v.events == 40);
    let v = store
        .verify(&VerifyOptions {
            merkle: true,
            intent_id: Some("intent-7".into()),
            ..VerifyOptions::default()
        })
        .unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.events, 40);
    assert_eq!(v.intent_events, Some(1));
    let mut seen = 0;
    store
        .scan(&mut |e| {
            assert_eq!(e.intent_id, format!("intent-{seen}"));
            seen += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, 40);

    // --- tampering and truncation ----------------------------------------------
    let q = |sql: &str| pg.psql("a", sql).unwrap().trim().to_owned();
    q(
        "UPDATE cfa_audit_events SET line = replace(line, '\"approve\"', '\"replan\"') WHERE seq = 5",
    );
    let v = store.verify(&VerifyOptions::default()).unwrap();
    assert_eq!(v.first_bad.as_ref().map(|b| b.index), Some(4), "{v:?}");
    q(
        "UPDATE cfa_audit_events SET line = replace(line, '\"replan\"', '\"approve\"') WHERE seq = 5",
    );
    assert!(store.verify(&VerifyOptions::default()).unwrap().intact());
    q("DELETE FROM cfa_audit_events WHERE seq = 40");
    let e = store
        .verify(&VerifyOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("head row names 40 events"), "{e}");
    q("DELETE FROM cfa_audit_events WHERE seq = 20");
    let e = store
        .verify(&VerifyOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("jump from 19 to 21"), "{e}");

    // --- concurrent appenders on two stores: one gap-free chain ------------------
    pg.create_database("b").unwrap();
    let stores = [
        Arc::new(PgStore::connect(&dsn(&pg, "b")).unwrap()),
        Arc::new(PgStore::connect(&dsn(&pg, "b")).unwrap()),
    ];
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let s = Arc::clone(&stores[(t % 2) as usize]);
            std::thread::spawn(move || {
                let mut hashes = Vec::new();
                for i in 0..60 {
                    if i % 10 == 0 {
                        let mut w = Vec::new();
                        s.append_batch(
                            vec![event(t * 1000 + i), event(t * 1000 + i + 500)],
                            &mut w,
                        )
                        .unwrap();
                        assert_eq!(w[1].previous_hash, w[0].event_hash);
                        hashes.extend(w.into_iter().map(|e| e.event_hash));
                    } else {
                        hashes.push(s.append(event(t * 1000 + i)).unwrap().event_hash);
                    }
                }
                hashes
            })
        })
        .collect();
    let acked: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(acked.len(), 8 * 66);
    let v = stores[0].verify(&VerifyOptions::default()).unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.events, 8 * 66);
    let b = |sql: &str| pg.psql("b", sql).unwrap().trim().to_owned();
    assert_eq!(
        b("SELECT count(*), min(seq), max(seq), count(DISTINCT event_hash) FROM cfa_audit_events"),
        "528|1|528|528"
    );
    let mut stored: Vec<String> = b("SELECT event_hash FROM cfa_audit_events ORDER BY event_hash")
        .lines()
        .map(str::to_owned)
        .collect();
    let mut acked_sorted = acked.clone();
    acked_sorted.sort();
    stored.sort();
    assert_eq!(
        stored, acked_sorted,
        "every acknowledged event is stored, once"
    );

    // --- lines with quotes, backslashes and SQL-looking text store byte for byte --
    pg.create_database("c").unwrap();
    let awkward = PgStore::connect(&dsn(&pg, "c")).unwrap();
    let odd_path = dir.path().join("odd.jsonl");
    let odd_jsonl = JsonlStore::open(&odd_path, Durability::Never).unwrap();
    let odd = |i: u32| {
        event(i).detail(
            "note",
            format!("it's {i} \\ back\\slash \\' E'x' $$ $q$ ');COMMIT;-- \n ünï"),
        )
    };
    let mut w = Vec::new();
    awkward
        .append_batch((0..5).map(odd).collect(), &mut w)
        .unwrap();
    let mut same = Vec::new();
    odd_jsonl
        .append_batch((0..5).map(odd).collect(), &mut same)
        .unwrap();
    assert_eq!(w, same);
    drop(odd_jsonl);
    let mut exported = Vec::new();
    awkward.export(&mut exported).unwrap();
    assert_eq!(exported, std::fs::read(&odd_path).unwrap());

    // --- appends that arrive while the head is locked join the leader's group ----
    let blocker = std::thread::spawn({
        let dsn = dsn(&pg, "c");
        move || {
            let mut c = postgres::Client::connect(&dsn, postgres::NoTls).unwrap();
            let mut tx = c.transaction().unwrap();
            tx.query("SELECT 1 FROM cfa_audit_head WHERE id = 1 FOR UPDATE", &[])
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1500));
            tx.rollback().unwrap();
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let awkward = Arc::new(awkward);
    let waiting: Vec<_> = (0..12u32)
        .map(|i| {
            let s = Arc::clone(&awkward);
            std::thread::spawn(move || s.append(event(100 + i)).unwrap().event_hash)
        })
        .collect();
    let hashes: Vec<String> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
    blocker.join().unwrap();
    assert_eq!(hashes.len(), 12);
    let c = |sql: &str| pg.psql("c", sql).unwrap().trim().to_owned();
    assert_eq!(
        c("SELECT count(*), count(DISTINCT xmin::text) FROM cfa_audit_events WHERE seq > 5"),
        "12|1",
        "the twelve appends queued behind the lock commit as one group"
    );
    assert!(awkward.verify(&VerifyOptions::default()).unwrap().intact());

    // --- the server down: appends fail (nothing acknowledged); back: they recover -
    let before = b("SELECT count(*) FROM cfa_audit_events");
    pg.stop().unwrap();
    for s in &stores {
        let text = s.append(event(9999)).unwrap_err().to_string();
        assert!(
            text.starts_with("postgres audit store postgres@127.0.0.1:"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
    pg.start_again().unwrap();
    assert_eq!(b("SELECT count(*) FROM cfa_audit_events"), before);
    let after = stores[0].append(event(10_000)).unwrap();
    // A restart breaks every open connection: the next group reconnects by itself.
    pg.restart().unwrap();
    assert_eq!(
        stores[1].append(event(10_001)).unwrap().previous_hash,
        after.event_hash
    );
    let last = stores[0].append(event(10_002)).unwrap();
    assert_eq!(stores[1].tail_hash().unwrap(), last.event_hash);
    assert!(
        stores[1]
            .verify(&VerifyOptions::default())
            .unwrap()
            .intact()
    );

    // --- bad DSNs never echo the password ---------------------------------------
    let bad_port =
        "host=127.0.0.1 port=1 user=postgres password=s3cret-pw dbname=a connect_timeout=5";
    let e = PgStore::connect(bad_port).unwrap_err().to_string();
    assert!(e.contains("postgres@127.0.0.1:1/a"), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");
    let e = PgStore::connect("postgresql://u:s3cret-pw@127.0.0.1:1/a?bogus=1")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cret-pw"), "{e}");
    let e = PgStore::connect("host=127.0.0.1 password='s3cret-pw")
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not parse"), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");
    let e = PgStore::connect_env("CFA_TEST_SURELY_UNSET_DSN")
        .unwrap_err()
        .to_string();
    assert!(e.contains("CFA_TEST_SURELY_UNSET_DSN is not set"), "{e}");
}
