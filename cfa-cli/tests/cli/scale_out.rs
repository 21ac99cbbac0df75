#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The scale-out suite (`cargo xtask scale`; ignored elsewhere, outside `cargo xtask
//! ci` and the quick profile): three `cfa serve` replicas on loopback ports recording
//! into one PostgreSQL 15 chain (`fsync=on`, `synchronous_commit=on`) under concurrent
//! load. Each test starts its own durable throwaway cluster:
//! - 3 × 10,000 decisions → exactly 30,000 events, gap-free, verifying, every
//!   acknowledged hash in the chain; the sustained rate is printed (`SCALE:` lines);
//! - a replica killed with SIGKILL mid-load loses no acknowledged decision;
//! - `pg_ctl restart` mid-load: replicas answer 500 `audit_error` (never an unaudited
//!   200), recover, and the chain verifies;
//! - sessions racing for one target's lease: exactly one holder;
//! - governed runs (`POST /v1/evaluate`, `--sandbox mock`) of one target racing across
//!   the three replicas: exactly one holds the PostgreSQL lease, the others are
//!   blocked with `STATE_TARGET_LEASED` naming it, and the chain verifies.

use cfa_test_support::pg::PgCluster;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ENV: &str = "CFA_SCALE_PG_DSN";
const PER_REPLICA: usize = 10_000;
const CONNS_PER_REPLICA: usize = 24;

fn dsn(pg: &PgCluster) -> String {
    pg.dsn("chain", None)
}

fn durable_cluster() -> PgCluster {
    let pg = PgCluster::start_durable().unwrap();
    pg.create_database("chain").unwrap();
    let mode = pg.psql("chain", "SHOW synchronous_commit").unwrap();
    assert_eq!(mode.trim(), "on");
    assert_eq!(pg.psql("chain", "SHOW fsync").unwrap().trim(), "on");
    pg
}

/// A `cfa serve` replica on its own loopback port, killed when dropped.
struct Replica {
    child: Child,
    addr: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `cfa` the replicas run: `$CFA_SCALE_BIN` (e.g. a release build, for
/// measurements), else the test build's.
fn cfa_bin() -> String {
    std::env::var("CFA_SCALE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_cfa").to_owned())
}

fn replica(dsn: &str) -> Replica {
    use std::io::BufRead;
    let mut child = Command::new(cfa_bin())
        .args(["serve", "--port", "0", "--audit-pg-env", ENV])
        .env(ENV, dsn)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Replica {
        child,
        addr: crate::support::listening_addr(&line),
    }
}

fn body(i: usize) -> Vec<u8> {
    let mut sig = cfa_test_support::ok_signature();
    sig["intent_id"] = json!(format!("scale-{i}"));
    sig.to_string().into_bytes()
}

/// One keep-alive connection that reports errors instead of panicking (a replica may
/// be killed under it).
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn open(addr: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(s),
        })
    }

    async fn decide(&mut self, body: &[u8]) -> std::io::Result<(u16, Value)> {
        let head = format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut status = String::new();
        if self.stream.read_line(&mut status).await? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status:?}")))?;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if self.stream.read_line(&mut h).await? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await?;
        Ok((code, serde_json::from_slice(&buf).unwrap_or(Value::Null)))
    }
}

/// What a load run saw.
#[derive(Default)]
struct Seen {
    /// `audit_event_hash` of every 200.
    acked: Vec<String>,
    /// Bodies of every non-200 answer.
    refused: Vec<Value>,
    /// Requests that got no answer (connection lost).
    lost: usize,
}

/// Sends `n` decisions to `addr` over `conns` connections (reconnecting after a lost
/// one; a refused reconnection ends that connection's share).
async fn load(addr: String, n: usize, conns: usize, offset: usize) -> Seen {
    let mut tasks = Vec::new();
    for c in 0..conns {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut client: Option<Client> = None;
            let mut i = c;
            while i < n {
                if client.is_none() {
                    client = Client::open(&addr).await.ok();
                }
                let Some(cl) = client.as_mut() else {
                    // The replica is gone (killed): the rest of this share is lost.
                    seen.lost += n.saturating_sub(i).div_ceil(conns);
                    break;
                };
                let answer =
                    tokio::time::timeout(Duration::from_secs(60), cl.decide(&body(offset + i)))
                        .await;
                match answer {
                    Ok(Ok((200, v))) => {
                        let h = v["audit_event_hash"].as_str().unwrap_or_default();
                        assert_eq!(h.len(), 64, "a 200 without its audit event: {v}");
                        seen.acked.push(h.to_owned());
                    }
                    Ok(Ok((_, v))) => seen.refused.push(v),
                    Ok(Err(_)) | Err(_) => {
                        seen.lost += 1;
                        client = None;
                    }
                }
                i += conns;
            }
            seen
        }));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.unwrap();
        all.acked.extend(s.acked);
        all.refused.extend(s.refused);
        all.lost += s.lost;
    }
    all
}

/// `cfa audit verify --pg-env` of the chain: (exit code, stdout).
fn verify(dsn: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["audit", "verify", "--pg-env", ENV, "-f", "json"])
        .env(ENV, dsn)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The chain's rows: count, min and max sequence numbers, distinct hashes.
fn rows(pg: &PgCluster) -> String {
    pg.psql(
        "chain",
        "SELECT count(*), min(seq), max(seq), count(DISTINCT event_hash) FROM cfa_audit_events",
    )
    .unwrap()
    .trim()
    .to_owned()
}

/// Every acknowledged hash is in the chain, once.
fn all_in_chain(pg: &PgCluster, acked: &[String], dir: &Path) {
    let stored: HashSet<String> = pg
        .psql("chain", "SELECT event_hash FROM cfa_audit_events")
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|h| !stored.contains(*h)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged decisions are not in the chain (first: {:?}); dir {}",
        missing.len(),
        missing.first(),
        dir.display()
    );
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "a hash was acknowledged twice");
}

fn chain_verifies(dsn: &str, events: usize) {
    let (code, out) = verify(dsn);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chain_intact"], true, "{v}");
    assert_eq!(v["total_events"], events, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale-out suite: cargo xtask scale"]
async fn three_replicas_one_chain_of_30000() {
    let pg = durable_cluster();
    let dsn = dsn(&pg);
    let replicas: Vec<Replica> = (0..3).map(|_| replica(&dsn)).collect();
    let ports: HashSet<&str> = replicas.iter().map(|r| r.addr.as_str()).collect();
    assert_eq!(ports.len(), 3);
    let started = Instant::now();
    let runs: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(k, r)| {
            tokio::spawn(load(
                r.addr.clone(),
                PER_REPLICA,
                CONNS_PER_REPLICA,
                k * PER_REPLICA,
            ))
        })
        .collect();
    let mut acked = Vec::new();
    for r in runs {
        let seen = r.await.unwrap();
        assert!(seen.refused.is_empty(), "{:?}", seen.refused.first());
        assert_eq!(seen.lost, 0);
        assert_eq!(seen.acked.len(), PER_REPLICA);
        acked.extend(seen.acked);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "SCALE: 3 replicas x {PER_REPLICA} audited decisions (synchronous_commit=on, fsync=on, {} connections each) in {secs:.2} s = {:.0} decisions/s",
        CONNS_PER_REPLICA,
        acked.len() as f64 / secs
    );
    assert_eq!(rows(&pg), "30000|1|30000|30000");
    all_in_chain(&pg, &acked, Path::new("."));
    chain_verifies(&dsn, 30_000);
    // Transactions the replicas committed (group commit: far fewer than events).
    let commits = pg
        .psql(
            "chain",
            "SELECT xact_commit FROM pg_stat_database WHERE datname = 'chain'",
        )
        .unwrap();
    eprintln!(
        "SCALE: transactions committed in the database: {}",
        commits.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale-out suite: cargo xtask scale"]
async fn a_replica_killed_mid_load_loses_no_acknowledged_decision() {
    let pg = durable_cluster();
    let dsn = dsn(&pg);
    let steady = replica(&dsn);
    let mut victim = replica(&dsn);
    let a = tokio::spawn(load(steady.addr.clone(), 3000, 8, 0));
    let b = tokio::spawn(load(victim.addr.clone(), 100_000, 8, 1_000_000));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL (Child::kill): no shutdown, no flush.
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let a = a.await.unwrap();
    let b = b.await.unwrap();
    assert!(a.refused.is_empty() && a.lost == 0);
    assert!(
        !b.acked.is_empty(),
        "the victim acknowledged nothing before the kill"
    );
    assert!(b.lost > 0, "the victim was not killed mid-load");
    let mut acked = a.acked;
    acked.extend(b.acked);
    eprintln!(
        "SCALE: SIGKILL mid-load: {} decisions acknowledged (by the victim: {}), {} requests lost with it",
        acked.len(),
        acked.len() - 3000,
        b.lost
    );
    all_in_chain(&pg, &acked, Path::new("."));
    let n: usize = pg
        .psql("chain", "SELECT count(*) FROM cfa_audit_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(n >= acked.len());
    assert_eq!(rows(&pg), format!("{n}|1|{n}|{n}"));
    chain_verifies(&dsn, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale-out suite: cargo xtask scale"]
async fn pg_restart_mid_load_fails_closed_and_recovers() {
    let pg = Arc::new(durable_cluster());
    let dsn = dsn(&pg);
    let replicas: Vec<Replica> = (0..3).map(|_| replica(&dsn)).collect();
    let runs: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(k, r)| tokio::spawn(load(r.addr.clone(), 4000, 8, k * 4000)))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let restarter = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || restarter.restart().unwrap())
        .await
        .unwrap();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for r in runs {
        let seen = r.await.unwrap();
        assert_eq!(seen.lost, 0, "replicas stay up through a database restart");
        acked.extend(seen.acked);
        refused.extend(seen.refused);
    }
    eprintln!(
        "SCALE: pg_ctl restart mid-load: {} acknowledged, {} refused with audit_error",
        acked.len(),
        refused.len()
    );
    for v in &refused {
        assert_eq!(v["error"]["code"], "audit_error", "{v}");
    }
    assert!(
        !refused.is_empty(),
        "the restart was not seen by any request"
    );
    // Recovered: every replica decides again.
    for r in &replicas {
        let mut c = Client::open(&r.addr).await.unwrap();
        let (code, v) = c.decide(&body(999_999)).await.unwrap();
        assert_eq!(code, 200, "{v}");
        acked.push(v["audit_event_hash"].as_str().unwrap().to_owned());
    }
    all_in_chain(&pg, &acked, Path::new("."));
    let n: usize = pg
        .psql("chain", "SELECT count(*) FROM cfa_audit_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rows(&pg), format!("{n}|1|{n}|{n}"));
    chain_verifies(&dsn, n);
}

#[test]
#[ignore = "scale-out suite: cargo xtask scale"]
fn a_lease_race_across_sessions_has_one_holder() {
    let pg = PgCluster::start_durable().unwrap();
    pg.create_database("chain").unwrap();
    let dsn = dsn(&pg);
    let barrier = Arc::new(std::sync::Barrier::new(12));
    let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let racers: Vec<_> = (0..12)
        .map(|i| {
            let dsn = dsn.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let leases = cfa_lifecycle::PgLeases::connect(&dsn).unwrap();
                barrier.wait();
                leases
                    .acquire_lease("silver_fiscal", &format!("replica-{i}"), now, 600)
                    .ok()
                    .map(|l| l.holder)
            })
        })
        .collect();
    let holders: Vec<String> = racers
        .into_iter()
        .filter_map(|r| r.join().unwrap())
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(
        pg.psql(
            "chain",
            "SELECT holder FROM cfa_leases WHERE target = 'silver_fiscal'"
        )
        .unwrap()
        .trim(),
        holders[0]
    );
}

/// A `cfa serve` replica executing approved intents in the mock sandbox (each run
/// holding its target lease `pause_ms`), leasing in the PostgreSQL database of
/// `--audit-pg-env`.
fn executing_replica(dsn: &str, holder: &str, pause_ms: u64) -> Replica {
    use std::io::BufRead;
    let catalog = cfa_test_support::example("catalog.json");
    let mut child = Command::new(cfa_bin())
        .args(["serve", "--port", "0", "--audit-pg-env", ENV, "-c"])
        .arg(&catalog)
        .args(["--sandbox", "mock", "--lease-holder", holder])
        .args(["--mock-delay-ms", &pause_ms.to_string()])
        .env(ENV, dsn)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Replica {
        child,
        addr: crate::support::listening_addr(&line),
    }
}

/// `POST /v1/evaluate` of `intent` on a fresh connection: the kernel result.
async fn evaluate(addr: String, intent: &str) -> Value {
    let body = json!({"intent": intent}).to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/evaluate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (status, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{raw}");
    serde_json::from_str(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale-out suite: cargo xtask scale"]
async fn governed_runs_racing_across_replicas_have_one_lease_holder() {
    const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
    const PER_REPLICA: usize = 4;
    let pg = durable_cluster();
    let dsn = dsn(&pg);
    let replicas: Vec<Replica> = (0..3)
        .map(|k| executing_replica(&dsn, &format!("replica-{k}"), 3000))
        .collect();
    // 12 governed runs of one target at once, 4 on each replica.
    let started = Instant::now();
    let runs: Vec<_> = replicas
        .iter()
        .flat_map(|r| (0..PER_REPLICA).map(|_| tokio::spawn(evaluate(r.addr.clone(), APPROVE))))
        .collect();
    let mut results = Vec::new();
    for r in runs {
        results.push(r.await.unwrap());
    }
    let elapsed = started.elapsed();
    let approved: Vec<&Value> = results
        .iter()
        .filter(|v| v["state"] == "approved")
        .collect();
    let leased: Vec<&Value> = results
        .iter()
        .filter(|v| v["faults"][0]["code"] == "STATE_TARGET_LEASED")
        .collect();
    assert_eq!(approved.len(), 1, "exactly one lease holder: {results:?}");
    assert_eq!(leased.len(), results.len() - 1, "{results:?}");
    let winner = approved[0];
    assert_eq!(
        winner["execution"]["publish_state"], "published",
        "{winner}"
    );
    let holder = format!(
        "{}/{}",
        (0..3)
            .map(|k| format!("replica-{k}"))
            .find(|h| {
                leased[0]["execution"]["details"]["lease_holder"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{h}/"))
            })
            .unwrap(),
        winner["intent_id"].as_str().unwrap()
    );
    for v in &leased {
        assert_eq!(v["state"], "blocked", "{v}");
        assert_eq!(v["execution"]["details"]["executed"], false, "{v}");
        // Every refused run names the one run holding the lease.
        assert_eq!(
            v["execution"]["details"]["lease_holder"],
            holder.as_str(),
            "{v}"
        );
    }
    eprintln!(
        "SCALE: {} governed runs of one target across 3 replicas: 1 holder ({holder}), {} refused with STATE_TARGET_LEASED, {elapsed:.2?}",
        results.len(),
        leased.len()
    );
    // Released: the next run, on any replica, takes the lease and executes.
    assert_eq!(
        pg.psql("chain", "SELECT count(*) FROM cfa_leases")
            .unwrap()
            .trim(),
        "0"
    );
    let next = evaluate(replicas[2].addr.clone(), APPROVE).await;
    assert_eq!(next["state"], "approved", "{next}");
    // Every run was audited into the one chain, which verifies.
    let n: usize = pg
        .psql("chain", "SELECT count(*) FROM cfa_audit_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hashes: usize = results
        .iter()
        .chain(std::iter::once(&next))
        .map(|v| v["audit_event_hashes"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, hashes);
    assert_eq!(rows(&pg), format!("{n}|1|{n}|{n}"));
    chain_verifies(&dsn, n);
}
