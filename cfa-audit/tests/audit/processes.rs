//! Several writers, one chain: threads and processes appending to one JSONL file and
//! one SQLite file; and a crash test where a child appending with fsync=always is
//! SIGKILLed at random moments. Child processes are this test binary re-executed
//! (`current_exe() --exact <test>`), selected by the `CFA_AUDIT_CHILD` variable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::verify::BadReason;
use cfa_audit::{
    AuditStore, Durability, JsonlStore, NewEvent, RepairOutcome, SqliteStore, VerifyOptions,
};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const CHILD: &str = "CFA_AUDIT_CHILD";

fn event(worker: u64, seq: u64) -> NewEvent {
    NewEvent::new(
        format!("w{worker}"),
        "test",
        "append",
        "ok",
        cfa_audit::time::isoformat_utc(1_795_000_000 + seq as i64, 0),
    )
    .detail("worker", worker)
    .detail("seq", seq)
}

/// Runs the child side and returns true when this process is a child.
fn child() -> bool {
    let Ok(spec) = std::env::var(CHILD) else {
        return false;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (kind, path, worker) = (
        parts[0],
        Path::new(parts[1]),
        parts[2].parse::<u64>().unwrap(),
    );
    match kind {
        "jsonl" | "sqlite" => {
            let count: u64 = parts[3].parse().unwrap();
            let store: Box<dyn AuditStore> = if kind == "jsonl" {
                Box::new(JsonlStore::open(path, Durability::Never).unwrap())
            } else {
                Box::new(SqliteStore::open(path, Durability::Never).unwrap())
            };
            for seq in 0..count {
                store.append(event(worker, seq)).unwrap();
            }
        }
        "crash" => {
            let store = JsonlStore::open(path, Durability::Always).unwrap();
            let mut out = std::io::stdout().lock();
            // libtest has printed "test … " without a newline: start on a fresh line.
            writeln!(out).unwrap();
            for seq in 0.. {
                match store.append(event(worker, seq)) {
                    Ok(_) => {
                        writeln!(out, "ACK {seq}").unwrap();
                        out.flush().unwrap();
                    }
                    Err(e) => {
                        writeln!(out, "ERR {e}").unwrap();
                        out.flush().unwrap();
                        std::process::exit(3);
                    }
                }
            }
        }
        other => panic!("unknown child kind {other}"),
    }
    true
}

fn spawn(test: &str, spec: String, stdout: Stdio) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &cfa_test_support::test_path(module_path!(), test),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, spec)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// (worker → sequence numbers in chain order) of a verified store.
fn by_worker(store: &dyn AuditStore) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    store
        .scan(&mut |e| {
            m.entry(e.details["worker"].as_u64().unwrap())
                .or_default()
                .push(e.details["seq"].as_u64().unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    m
}

fn eight_processes(kind: &str, test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if kind == "jsonl" {
        "audit.jsonl"
    } else {
        "audit.db"
    });
    if kind == "sqlite" {
        // Create the schema once so the children only race on appends.
        drop(SqliteStore::open(&path, Durability::Never).unwrap());
    }
    let children: Vec<_> = (0..8)
        .map(|w| {
            spawn(
                test,
                format!("{kind}|{}|{w}|1000", path.display()),
                Stdio::null(),
            )
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store: Box<dyn AuditStore> = if kind == "jsonl" {
        Box::new(JsonlStore::open(&path, Durability::Never).unwrap())
    } else {
        Box::new(SqliteStore::open(&path, Durability::Never).unwrap())
    };
    let report = store.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, 8000);
    let m = by_worker(store.as_ref());
    assert_eq!(m.len(), 8);
    for seqs in m.values() {
        assert_eq!(
            seqs,
            &(0..1000).collect::<Vec<_>>(),
            "each writer's events in order"
        );
    }
}

#[test]
fn eight_processes_one_jsonl_chain() {
    if child() {
        return;
    }
    eight_processes("jsonl", "eight_processes_one_jsonl_chain");
}

#[test]
fn eight_processes_one_sqlite_chain() {
    if child() {
        return;
    }
    eight_processes("sqlite", "eight_processes_one_sqlite_chain");
}

#[test]
fn eight_threads_shared_and_separate_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let shared = Arc::new(JsonlStore::open(&path, Durability::Batch(16)).unwrap());
    std::thread::scope(|s| {
        for w in 0..8u64 {
            let shared = Arc::clone(&shared);
            let path = path.clone();
            s.spawn(move || {
                let own;
                let store: &JsonlStore = if w % 2 == 0 {
                    &shared
                } else {
                    own = JsonlStore::open(&path, Durability::Never).unwrap();
                    &own
                };
                for seq in 0..250 {
                    store.append(event(w, seq)).unwrap();
                }
            });
        }
    });
    shared.flush().unwrap();
    let report = shared.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact(), "{:?}", report.first_bad);
    assert_eq!(report.events, 2000);
    assert_eq!(shared.len().unwrap(), 2000);
    assert!(by_worker(shared.as_ref()).values().all(|v| v.len() == 250));
}

/// xorshift64*: a tiny seeded RNG (no dependency, reproducible trials).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_event() {
    if child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.jsonl");
    let mut rng = Rng(0x5eed_cfa0_0000_0001);
    let mut acked: HashSet<(u64, u64)> = HashSet::new();
    let mut repairs = 0;
    for trial in 0..50u64 {
        let injected = trial % 10 == 5;
        if injected {
            // Simulate a write cut short by the crash: half an event, no newline.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .unwrap();
            f.write_all(b"{\"intent_id\": \"w99\", \"stage\": \"te")
                .unwrap();
        }
        let mut child = spawn(
            "sigkill_during_appends_loses_no_acknowledged_event",
            format!("crash|{}|{trial}", path.display()),
            Stdio::piped(),
        );
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // A torn tail (injected, or left by the previous kill) is moved aside when
        // the child opens the log, and its appends go on.
        std::thread::sleep(Duration::from_millis(2 + rng.next() % 40));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for line in reader.join().unwrap() {
            if let Some(seq) = line.strip_prefix("ACK ") {
                acked.insert((trial, seq.parse().unwrap()));
            } else if let Some(err) = line.strip_prefix("ERR ") {
                panic!("trial {trial}: unexpected error {err}");
            }
        }
        if !path.exists() {
            // Killed (under load) before it even opened the log: nothing to check,
            // and nothing may have been acknowledged.
            assert!(
                !acked.iter().any(|(t, _)| *t == trial),
                "trial {trial}: acked without a log"
            );
            continue;
        }
        let opts = VerifyOptions::default();
        let mut report = cfa_audit::verify_file(&path, &opts, &mut |_| {}).unwrap();
        if let Some(bad) = &report.first_bad {
            assert!(
                matches!(bad.reason, BadReason::TornTail { .. }),
                "trial {trial}: {bad:?}"
            );
            assert!(matches!(
                cfa_audit::repair(&path).unwrap(),
                RepairOutcome::Repaired { .. }
            ));
            repairs += 1;
            report = cfa_audit::verify_file(&path, &opts, &mut |_| {}).unwrap();
        }
        assert!(report.intact(), "trial {trial}: {:?}", report.first_bad);
    }
    let store = JsonlStore::open(&path, Durability::Never).unwrap();
    let mut present: HashSet<(u64, u64)> = HashSet::new();
    store
        .scan(&mut |e| {
            if e.event_type == "audit_repair" {
                repairs += 1;
                return ControlFlow::Continue(());
            }
            present.insert((
                e.details["worker"].as_u64().unwrap(),
                e.details["seq"].as_u64().unwrap(),
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
    let missing: Vec<_> = acked.difference(&present).collect();
    assert!(missing.is_empty(), "acknowledged events lost: {missing:?}");
    assert!(
        acked.len() > 50,
        "the children made progress ({} acks)",
        acked.len()
    );
    // Each injected tail was moved aside into a sidecar, by the child that opened the
    // log after it or by the parent's repair (a kill in the middle of a move can leave
    // one copy more, never one fewer). (Counting `audit_repair`
    // events instead is load-sensitive: a kill between moving the bytes aside and
    // appending the event leaves the bytes safe but no event.)
    let injected_moved_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("crash.jsonl.torn-"))
        })
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(b"\"w99\"".len())
                .any(|w| w == b"\"w99\"")
        })
        .count();
    assert!(
        injected_moved_aside >= 5,
        "every injected torn tail was repaired ({injected_moved_aside} of 5 moved aside; {repairs} repairs)"
    );
    eprintln!(
        "crash test: {} acked events, {repairs} repairs",
        acked.len()
    );
}
