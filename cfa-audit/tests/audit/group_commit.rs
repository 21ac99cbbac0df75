//! Group commit in the JSONL store: many threads appending through one store form one
//! linear chain, each call's events contiguous and in the order it gave them; a failed
//! write fails every appender of its group and leaves no torn line; at
//! `Durability::Always` an append returns only after an fsync covering its events; the
//! store follows the path when the log is replaced (rename over it, also with a second
//! hard link to the old file) or moved away.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::{AuditEvent, AuditStore, Durability, JsonlStore, NewEvent, VerifyOptions};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

fn event(worker: u64, call: u64, part: u64) -> NewEvent {
    NewEvent::new(
        format!("w{worker}"),
        "govern",
        "policy_evaluation",
        "approve",
        cfa_audit::time::isoformat_utc(1_795_000_000 + call as i64, 0),
    )
    .detail("worker", worker)
    .detail("call", call)
    .detail("part", part)
}

/// The events of the log at `path`, in file order.
fn read_all(path: &Path) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    cfa_audit::jsonl::scan_file(path, &mut |e| {
        out.push(e);
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

/// `threads` threads make `calls` calls each (1–3 events per call) through one store;
/// returns what each call got back, per thread in call order.
fn hammer(store: &JsonlStore, threads: u64, calls: u64) -> Vec<Vec<Vec<AuditEvent>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    (0..calls)
                        .map(|c| {
                            let n = 1 + (w + c) % 3;
                            let batch = (0..n).map(|p| event(w, c, p)).collect();
                            let mut got = Vec::new();
                            store.append_batch(batch, &mut got).unwrap();
                            assert_eq!(got.len() as u64, n);
                            got
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn check_linear(path: &Path, results: &[Vec<Vec<AuditEvent>>]) {
    let report = cfa_audit::verify_file(path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    let file = read_all(path);
    let total: usize = results.iter().flatten().map(Vec::len).sum();
    assert_eq!(
        file.len(),
        total,
        "every returned event is in the file, nothing else"
    );
    let index: HashMap<&str, usize> = file
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_hash.as_str(), i))
        .collect();
    assert_eq!(index.len(), total, "hashes are unique");
    for (w, calls) in results.iter().enumerate() {
        let mut last_end = None;
        for (c, got) in calls.iter().enumerate() {
            // The call's events are contiguous and in the order given …
            let start = index[got[0].event_hash.as_str()];
            for (k, e) in got.iter().enumerate() {
                assert_eq!(index[e.event_hash.as_str()], start + k, "w{w} call {c}");
                // … and exactly the stored events (hash, link and content).
                assert_eq!(&file[start + k], e);
                assert_eq!(e.details["part"].as_u64(), Some(k as u64));
                assert_eq!(e.details["call"].as_u64(), Some(c as u64));
            }
            // A thread's calls land in the order it made them.
            if let Some(end) = last_end {
                assert!(start > end, "w{w} call {c} before its predecessor");
            }
            last_end = Some(start + got.len() - 1);
        }
    }
}

#[test]
fn sixteen_threads_form_one_linear_chain() {
    for durability in [Durability::Never, Durability::Batch(8)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let store = JsonlStore::open(&path, durability).unwrap();
        let results = hammer(&store, 16, 150);
        store.flush().unwrap();
        check_linear(&path, &results);
        assert_eq!(store.len().unwrap(), 16 * 150 * 2, "{durability:?}");
        let last = read_all(&path).pop().unwrap();
        assert_eq!(store.tail_hash().unwrap(), last.event_hash);
        // After flush every written event is covered by a completed fsync.
        assert_eq!(store.synced_events(), 16 * 150 * 2);
    }
}

#[test]
fn always_returns_only_after_an_fsync_covering_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Always).unwrap();
    // (the returned events, synced_events() right after the call returned)
    let per_thread: Vec<Vec<(Vec<AuditEvent>, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    (0..25u64)
                        .map(|c| {
                            let mut got = Vec::new();
                            store
                                .append_batch(vec![event(w, c, 0), event(w, c, 1)], &mut got)
                                .unwrap();
                            (got, store.synced_events())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let file = read_all(&path);
    let index: HashMap<&str, usize> = file
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_hash.as_str(), i))
        .collect();
    for (got, synced) in per_thread.iter().flatten() {
        // The store wrote every event of the file, so an event's position + 1 is the
        // count of written events an fsync must cover for it to be durable.
        let needed = index[got[1].event_hash.as_str()] as u64 + 1;
        assert!(
            *synced >= needed,
            "returned with {synced} events synced, its last is event {needed}"
        );
    }
    let results: Vec<Vec<Vec<AuditEvent>>> = per_thread
        .into_iter()
        .map(|calls| calls.into_iter().map(|(got, _)| got).collect())
        .collect();
    check_linear(&path, &results);
    assert_eq!(store.synced_events(), 8 * 25 * 2);
}

#[test]
fn never_leaves_syncing_to_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Never).unwrap();
    for c in 0..10 {
        store.append(event(0, c, 0)).unwrap();
    }
    assert_eq!(store.synced_events(), 0);
    store.flush().unwrap();
    assert_eq!(store.synced_events(), 10);
    // Batch(4): no append waits for the fsync due every 4 events; the background
    // fsync catches up, and flush covers the rest.
    let batch = JsonlStore::open(dir.path().join("b.jsonl"), Durability::Batch(4)).unwrap();
    for c in 0..9 {
        batch.append(event(0, c, 0)).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while batch.synced_events() < 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "the due fsync never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(batch.synced_events() <= 9);
    batch.flush().unwrap();
    assert_eq!(batch.synced_events(), 9);
}

const CHILD_ENV: &str = "CFA_AUDIT_GROUP_DISKFULL_CHILD";
const DISK_FULL_TEST: &str = "a_failed_group_write_fails_its_appenders_and_is_cut_back";

/// Eight threads append (1–3 events a call) until the file size limit stops them;
/// prints how many events were acknowledged and each thread's error.
fn disk_full_child(log: &Path) {
    let store = JsonlStore::open(log, Durability::Never).unwrap();
    let outcomes: Vec<(u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    let mut acked = 0u64;
                    for c in 0..100_000u64 {
                        let batch: Vec<NewEvent> = (0..1 + (w + c) % 3)
                            .map(|p| event(w, c, p).detail("pad", "x".repeat(40 + 13 * p as usize)))
                            .collect();
                        let mut got = Vec::new();
                        match store.append_batch(batch, &mut got) {
                            Ok(()) => acked += got.len() as u64,
                            Err(e) => {
                                assert!(got.is_empty(), "a failed call returns no event");
                                return (acked, e.to_string());
                            }
                        }
                    }
                    panic!("the file size limit was never reached");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("ACKED {}", outcomes.iter().map(|(n, _)| n).sum::<u64>());
    for (_, e) in &outcomes {
        println!("ERROR {e}");
    }
}

#[test]
fn a_failed_group_write_fails_its_appenders_and_is_cut_back() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        disk_full_child(Path::new(&log));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let (stdout, acked) =
        crate::common::run_under_file_limit(module_path!(), DISK_FULL_TEST, CHILD_ENV, &log, 128);
    let errors: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ERROR "))
        .collect();
    assert_eq!(errors.len(), 8, "every thread was told: {stdout}");
    for e in &errors {
        assert!(
            e.starts_with(&format!("cannot append to {}: ", log.display())),
            "a clear error naming the log: {e}"
        );
    }
    assert!(acked > 0, "{stdout}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the log ends in a torn line");
    let report = cfa_audit::verify_file(&log, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.first_bad.is_none(), "{:?}", report.first_bad);
    assert_eq!(
        report.events, acked,
        "acknowledged events are all there, and no event of a failed group"
    );
}

#[test]
fn appends_follow_a_rename_over_the_log_even_with_a_second_hard_link() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&log, Durability::Never).unwrap();
    for c in 0..3 {
        store.append(event(0, c, 0)).unwrap();
    }
    // A backup hard link keeps the old file alive (its link count drops from 2 to 1,
    // not to 0, when the log is replaced).
    std::fs::hard_link(&log, dir.path().join("backup.jsonl")).unwrap();
    store.append(event(0, 3, 0)).unwrap();
    // Replace the log by rename, as retention does (here: the same events, kept).
    let tmp = dir.path().join("audit.jsonl.tmp");
    std::fs::copy(&log, &tmp).unwrap();
    std::fs::rename(&tmp, &log).unwrap();
    let after = store.append(event(0, 4, 0)).unwrap();
    let events = read_all(&log);
    assert_eq!(
        events.len(),
        5,
        "the append went to the file the path names"
    );
    assert_eq!(events[4], after);
    assert_eq!(read_all(&dir.path().join("backup.jsonl")).len(), 4);
    // Retention itself, with another store holding the file.
    let other = JsonlStore::open(&log, Durability::Never).unwrap();
    other.append(event(1, 0, 0)).unwrap();
    cfa_audit::retain::retain_suffix(&log, 2, &dir.path().join("anchor.json"), None).unwrap();
    let a = store.append(event(0, 5, 0)).unwrap();
    let b = other.append(event(1, 1, 0)).unwrap();
    let events = read_all(&log);
    assert_eq!(events.len(), 6);
    assert_eq!(events[4], a);
    assert_eq!(events[5], b);
    assert_eq!(b.previous_hash, a.event_hash);
}

#[test]
fn a_log_moved_away_is_left_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&log, Durability::Never).unwrap();
    store.append(event(0, 0, 0)).unwrap();
    let moved = dir.path().join("audit.jsonl.1");
    std::fs::rename(&log, &moved).unwrap();
    // Nothing about the held file changed (same length, same link count): once the
    // recheck interval has passed, the store compares the path again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = store.append(event(0, 1, 0)).unwrap();
    assert_eq!(fresh.previous_hash, "", "a new log starts a new chain");
    assert_eq!(read_all(&log), vec![fresh]);
    assert_eq!(read_all(&moved).len(), 1);
}

#[test]
fn separate_handles_and_a_shared_one_interleave_into_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let shared = Arc::new(JsonlStore::open(&path, Durability::Batch(4)).unwrap());
    let own = JsonlStore::open(&path, Durability::Never).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| hammer(&shared, 4, 60));
        s.spawn(|| hammer(&own, 2, 60));
    });
    shared.flush().unwrap();
    let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, 6 * 60 * 2);
}

/// Polls `f` once with a waker that counts its wake-ups.
fn poll_once<F: std::future::Future + Unpin>(
    f: &mut F,
    wakes: &Arc<Counter>,
) -> std::task::Poll<F::Output> {
    let waker = std::task::Waker::from(Arc::clone(wakes));
    let mut cx = std::task::Context::from_waker(&waker);
    std::pin::Pin::new(f).poll(&mut cx)
}

#[derive(Default)]
struct Counter(std::sync::atomic::AtomicUsize);
impl std::task::Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
impl Counter {
    fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn queued_appends_lead_and_complete_without_blocking() {
    use cfa_audit::Turn;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Always).unwrap();
    let (wa, wb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    // The first queued append leads; the second waits for it.
    let mut a = store.enqueue(vec![event(0, 0, 0), event(0, 0, 1)]);
    let mut b = store.enqueue(vec![event(1, 0, 0)]);
    assert!(matches!(poll_once(&mut a, &wa), Poll::Ready(Turn::Lead)));
    assert!(poll_once(&mut b, &wb).is_pending());
    store.lead_queued();
    // One group: both complete (and fsynced), b was woken.
    assert!(wb.get() >= 1);
    let Poll::Ready(Turn::Done(Ok(got_a))) = poll_once(&mut a, &wa) else {
        panic!("a is complete")
    };
    let Poll::Ready(Turn::Done(Ok(got_b))) = poll_once(&mut b, &wb) else {
        panic!("b is complete")
    };
    assert_eq!(got_b[0].previous_hash, got_a[1].event_hash);
    assert_eq!(store.synced_events(), 3);
    assert_eq!(read_all(&path), [got_a, got_b].concat());
    // Nothing to queue: complete at once.
    let mut empty = store.enqueue(Vec::new());
    assert!(matches!(
        poll_once(&mut empty, &wa),
        Poll::Ready(Turn::Done(Ok(v))) if v.is_empty()
    ));
}

#[test]
fn a_dropped_queued_append_passes_the_lead_on() {
    use cfa_audit::Turn;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Never).unwrap();
    let w = Arc::new(Counter::default());
    let a = store.enqueue(vec![event(0, 0, 0)]);
    let mut b = store.enqueue(vec![event(1, 0, 0)]);
    assert!(poll_once(&mut b, &w).is_pending());
    // The leader goes away (e.g. its request timed out) before leading: b leads, and
    // a's events, still queued, are written with b's group (unacknowledged).
    drop(a);
    assert_eq!(w.get(), 1, "b was woken to lead");
    assert!(matches!(poll_once(&mut b, &w), Poll::Ready(Turn::Lead)));
    store.lead_queued();
    let Poll::Ready(Turn::Done(Ok(got))) = poll_once(&mut b, &w) else {
        panic!("b is complete")
    };
    let events = read_all(&path);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], got[0]);
    // A blocking append after that finds no leader and leads itself.
    let c = store.append(event(2, 0, 0)).unwrap();
    assert_eq!(c.previous_hash, got[0].event_hash);
    // A queued append dropped while waiting is still written by the next leader.
    let mut d = store.enqueue(vec![event(3, 0, 0)]);
    assert!(matches!(poll_once(&mut d, &w), Poll::Ready(Turn::Lead)));
    let e = store.enqueue(vec![event(4, 0, 0)]);
    drop(e);
    store.lead_queued();
    assert!(matches!(
        poll_once(&mut d, &w),
        Poll::Ready(Turn::Done(Ok(_)))
    ));
    assert_eq!(read_all(&path).len(), 5);
    let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
}

#[test]
fn threads_wait_for_a_queued_leader_and_then_lead_themselves() {
    use cfa_audit::Turn;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Batch(3)).unwrap();
    let w = Arc::new(Counter::default());
    let mut a = store.enqueue(vec![event(0, 0, 0)]);
    assert!(matches!(poll_once(&mut a, &w), Poll::Ready(Turn::Lead)));
    std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            (0..20)
                .map(|c| store.append(event(1, c, 0)).unwrap())
                .collect::<Vec<_>>()
        });
        // The thread's first append queues behind the async leader.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!blocked.is_finished());
        store.lead_queued();
        let got = blocked.join().unwrap();
        assert_eq!(got.len(), 20);
    });
    assert!(matches!(
        poll_once(&mut a, &w),
        Poll::Ready(Turn::Done(Ok(_)))
    ));
    store.flush().unwrap();
    let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, 21);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_group_commit_forms_one_linear_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        cfa_audit::SqliteStore::open(dir.path().join("audit.db"), Durability::Batch(8)).unwrap();
    let results: Vec<Vec<Vec<AuditEvent>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    (0..40u64)
                        .map(|c| {
                            let batch = (0..1 + (w + c) % 3).map(|p| event(w, c, p)).collect();
                            let mut got = Vec::new();
                            store.append_batch(batch, &mut got).unwrap();
                            got
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let report = store.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    let mut file = Vec::new();
    store
        .scan(&mut |e| {
            file.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    let total: usize = results.iter().flatten().map(Vec::len).sum();
    assert_eq!(file.len(), total);
    let index: HashMap<&str, usize> = file
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_hash.as_str(), i))
        .collect();
    for got in results.iter().flatten() {
        let start = index[got[0].event_hash.as_str()];
        for (k, e) in got.iter().enumerate() {
            assert_eq!(
                &file[start + k],
                e,
                "a call's events are contiguous, in order"
            );
        }
    }
}

/// `event(worker, call, part)` built as text (no `NewEvent`), as the kernel builds its
/// decisions' events: the same event.
fn prepared(worker: u64, call: u64, part: u64) -> cfa_audit::PreparedEvent {
    let ts = cfa_audit::time::isoformat_utc(1_795_000_000 + call as i64, 0);
    let mut b = cfa_audit::EventBuilder::new(
        &format!("w{worker}"),
        "govern",
        "policy_evaluation",
        "approve",
        "",
        ts,
    );
    b.detail_u64("worker", worker)
        .detail_u64("call", call)
        .detail_u64("part", part);
    b.finish()
}

#[test]
fn queued_prepared_appends_lead_complete_and_hand_back_hashes() {
    use cfa_audit::HashTurn;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Always).unwrap();
    let (wa, wb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    // A prepared append and a whole-event one share the queue: the first leads.
    let mut a = store.enqueue_prepared(vec![prepared(0, 0, 0), prepared(0, 0, 1)]);
    let mut b = store.enqueue(vec![event(1, 0, 0)]);
    assert!(matches!(
        poll_once(&mut a, &wa),
        Poll::Ready(HashTurn::Lead)
    ));
    assert!(poll_once(&mut b, &wb).is_pending());
    // Nothing is written before the lead commits the group.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(store.synced_events(), 0);
    store.lead_queued();
    assert!(wb.get() >= 1);
    let Poll::Ready(HashTurn::Done(Ok(hashes))) = poll_once(&mut a, &wa) else {
        panic!("a is complete")
    };
    let Poll::Ready(cfa_audit::Turn::Done(Ok(got_b))) = poll_once(&mut b, &wb) else {
        panic!("b is complete")
    };
    assert_eq!(store.synced_events(), 3);
    let file = read_all(&path);
    // The hashes are those of the events written, which are the events `event` makes.
    assert_eq!(
        hashes,
        [file[0].event_hash.clone(), file[1].event_hash.clone()]
    );
    assert_eq!(got_b[0].previous_hash, hashes[1]);
    assert_eq!(file[2], got_b[0]);
    let mut twin = Vec::new();
    let other = dir.path().join("twin.jsonl");
    JsonlStore::open(&other, Durability::Never)
        .unwrap()
        .append_batch(vec![event(0, 0, 0), event(0, 0, 1)], &mut twin)
        .unwrap();
    assert_eq!(file[..2], twin[..]);
    // Nothing to queue: complete at once.
    let mut empty = store.enqueue_prepared(Vec::new());
    assert!(matches!(
        poll_once(&mut empty, &wa),
        Poll::Ready(HashTurn::Done(Ok(v))) if v.is_empty()
    ));
    // A dropped prepared append that was handed the lead passes it on; its events are
    // still written with the next group.
    let c = store.enqueue_prepared(vec![prepared(2, 0, 0)]);
    let mut d = store.enqueue_prepared(vec![prepared(3, 0, 0)]);
    assert!(poll_once(&mut d, &wb).is_pending());
    drop(c);
    assert!(matches!(
        poll_once(&mut d, &wb),
        Poll::Ready(HashTurn::Lead)
    ));
    store.lead_queued();
    let Poll::Ready(HashTurn::Done(Ok(last))) = poll_once(&mut d, &wb) else {
        panic!("d is complete")
    };
    let file = read_all(&path);
    assert_eq!(file.len(), 5);
    assert_eq!(last, [file[4].event_hash.clone()]);
    let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
}

/// Runs `f` to completion on this thread, parking it while `f` is pending.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn async_prepared_appends_from_many_threads_form_one_linear_chain() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Batch(4), Durability::Always] {
        let path = dir.path().join(format!("{durability:?}.jsonl"));
        let store = Arc::new(JsonlStore::open(&path, durability).unwrap());
        // (each call's hashes, synced_events() right after it returned), per thread
        let per_thread: Vec<Vec<(Vec<String>, u64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|w| {
                    let store = &store;
                    s.spawn(move || {
                        (0..20u64)
                            .map(|c| {
                                let n = 1 + (w + c) % 3;
                                let events = (0..n).map(|p| prepared(w, c, p)).collect();
                                let hashes =
                                    block_on(store.append_prepared_async(events, |s| async move {
                                        s.lead_queued()
                                    }))
                                    .unwrap();
                                assert_eq!(hashes.len() as u64, n);
                                (hashes, store.synced_events())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        store.flush().unwrap();
        let file = read_all(&path);
        let index: HashMap<&str, usize> = file
            .iter()
            .enumerate()
            .map(|(i, e)| (e.event_hash.as_str(), i))
            .collect();
        let total: usize = (0..8u64)
            .map(|w| (0..20u64).map(|c| 1 + (w + c) % 3).sum::<u64>() as usize)
            .sum();
        assert_eq!(file.len(), total);
        assert_eq!(index.len(), total);
        for (w, calls) in per_thread.iter().enumerate() {
            let mut last = None;
            for (c, (hashes, synced)) in calls.iter().enumerate() {
                // Each call's events contiguous, in order, and holding what it gave.
                let first = index[hashes[0].as_str()];
                for (p, h) in hashes.iter().enumerate() {
                    let e = &file[first + p];
                    assert_eq!(&e.event_hash, h);
                    assert_eq!(e.intent_id, format!("w{w}"));
                    assert_eq!(e.details["call"], c as u64);
                    assert_eq!(e.details["part"], p as u64);
                }
                if durability == Durability::Always {
                    // Acknowledged only once an fsync covers its last event.
                    let needed = (first + hashes.len()) as u64;
                    assert!(*synced >= needed, "{synced} synced, needed {needed}");
                }
                // A thread's calls in the order it made them.
                assert!(last.is_none_or(|l| l < first));
                last = Some(first);
            }
        }
        let report = cfa_audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(report.intact(), "{:?}", report.first_bad);
    }
}
