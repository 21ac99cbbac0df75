//! `cfa-scale`: sustained audited decisions/s across `cfa serve` replicas on one
//! PostgreSQL chain (`cargo xtask bench --scale`; docs/development.md#cargo-xtask-bench---scale).
//! A durable throwaway cluster (`fsync=on`, `synchronous_commit=on`), the replicas of
//! a release `cfa`, the bounded load generator of `cfa_benches::load` (keep-alive
//! connections, one request in flight each), one step per connection count; then the
//! chain is checked gap-free and verified.

use cfa_benches::load::{self, LoadOptions, Window};
use cfa_benches::scale::{
    self, CpuShare, CpuTicks, ScaleOptions, StepReport, machine_ticks, process_ticks,
};
use cfa_test_support::pg::PgCluster;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The environment variable the replicas read the DSN from.
const ENV: &str = "CFA_SCALE_PG_DSN";
const LISTENING: &str = "cfa serve: listening on http://";

/// A replica, killed when dropped.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replica(cfa: &str, dsn: &str) -> Result<Replica, String> {
    let mut child = Command::new(cfa)
        .args(["serve", "--port", "0", "--audit-pg-env", ENV])
        .env(ENV, dsn)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {cfa} serve: {e}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    let addr = line
        .trim()
        .strip_prefix(LISTENING)
        .and_then(|a| a.parse().ok());
    match addr {
        Some(addr) => Ok(Replica { child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{cfa} serve did not report its address (first line {line:?})"
            ))
        }
    }
}

fn sql(pg: &PgCluster, q: &str) -> Result<String, String> {
    pg.psql("chain", q).map(|s| s.trim().to_owned())
}

/// The chain's length (the head's sequence number).
fn head_seq(pg: &PgCluster) -> Result<u64, String> {
    let v = sql(pg, "SELECT seq FROM cfa_audit_head WHERE id = 1")?;
    v.parse().map_err(|_| format!("head seq {v:?}"))
}

/// The PostgreSQL server's processes (backends and auxiliary processes).
fn server_pids(pg: &PgCluster) -> Result<Vec<u32>, String> {
    Ok(sql(pg, "SELECT pid FROM pg_stat_activity")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// What is sampled at each end of a measured window.
struct Sample {
    seq: u64,
    machine: Option<CpuTicks>,
    replicas: u64,
    postgres: u64,
    load: u64,
}

fn sample(pg: &PgCluster, replicas: &[u32], server: &[u32]) -> Result<Sample, String> {
    Ok(Sample {
        seq: head_seq(pg)?,
        machine: machine_ticks(),
        replicas: process_ticks(replicas),
        postgres: process_ticks(server),
        load: process_ticks(&[std::process::id()]),
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn step(
    o: &ScaleOptions,
    pg: &PgCluster,
    replicas: &[Replica],
    connections: usize,
    body: &str,
) -> Result<StepReport, String> {
    let loads: Vec<LoadOptions> = replicas
        .iter()
        .map(|r| LoadOptions {
            addr: r.addr,
            path: "/v1/decisions".into(),
            body: body.to_owned(),
            connections,
            threads: o.threads,
            duration: o.duration,
            warmup: o.warmup,
        })
        .collect();
    let first = loads.first().ok_or("no replica")?;
    let window = Window::of(first, Instant::now() + Duration::from_millis(100));
    let replica_pids: Vec<u32> = replicas.iter().map(|r| r.child.id()).collect();
    let server = server_pids(pg)?;
    let (report, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            sleep_until(window.measure_from);
            let a = sample(pg, &replica_pids, &server)?;
            sleep_until(window.end);
            let b = sample(pg, &replica_pids, &server)?;
            Ok::<_, String>((a, b))
        });
        let report = load::run_together(&loads, window).map_err(|e| e.to_string());
        let samples = sampler
            .join()
            .unwrap_or_else(|_| Err("the sampler panicked".into()));
        (report, samples)
    });
    let report = report?;
    let (a, b) = samples?;
    if report.non_2xx > 0 {
        return Err(format!(
            "{} of {} responses were not 2xx",
            report.non_2xx, report.requests
        ));
    }
    let events = b.seq.saturating_sub(a.seq);
    let commits: u64 = {
        let v = sql(
            pg,
            &format!(
                "SELECT count(DISTINCT xmin::text) FROM cfa_audit_events WHERE seq > {} AND seq <= {}",
                a.seq, b.seq
            ),
        )?;
        v.parse().map_err(|_| format!("commit count {v:?}"))?
    };
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let cpu = match (a.machine, b.machine) {
        (Some(m0), Some(m1)) => Some(CpuShare::of(
            CpuTicks {
                total: m1.total.saturating_sub(m0.total),
                busy: m1.busy.saturating_sub(m0.busy),
            },
            b.replicas.saturating_sub(a.replicas),
            b.postgres.saturating_sub(a.postgres),
            b.load.saturating_sub(a.load),
            cores,
        )),
        _ => None,
    };
    Ok(StepReport {
        replicas: replicas.len(),
        connections,
        load: report,
        events,
        commits,
        cpu,
    })
}

/// Gap-free, one row per hash, and `cfa audit verify --pg-env` intact with every event.
fn check_chain(o: &ScaleOptions, pg: &PgCluster, dsn: &str) -> Result<u64, String> {
    let n = head_seq(pg)?;
    let rows = sql(
        pg,
        "SELECT count(*), min(seq), max(seq), count(DISTINCT event_hash) FROM cfa_audit_events",
    )?;
    if rows != format!("{n}|1|{n}|{n}") {
        return Err(format!(
            "the chain is not gap-free: head {n}, rows {rows} (count|min|max|distinct)"
        ));
    }
    let out = Command::new(&o.cfa_bin)
        .args(["audit", "verify", "--pg-env", ENV, "-f", "json"])
        .env(ENV, dsn)
        .output()
        .map_err(|e| format!("cannot run cfa audit verify: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("cfa audit verify: {e}: {text}"))?;
    if !out.status.success()
        || v.get("chain_intact") != Some(&serde_json::Value::Bool(true))
        || v.get("total_events").and_then(serde_json::Value::as_u64) != Some(n)
    {
        return Err(format!("cfa audit verify --pg-env: {text}"));
    }
    Ok(n)
}

fn run(o: &ScaleOptions) -> Result<(), String> {
    let pg = PgCluster::start_durable()?;
    pg.create_database("chain")?;
    for (setting, want) in [("synchronous_commit", "on"), ("fsync", "on")] {
        let got = sql(&pg, &format!("SHOW {setting}"))?;
        if got != want {
            return Err(format!("{setting} is {got}, not {want}"));
        }
    }
    let dsn = pg.dsn("chain", None);
    let replicas: Vec<Replica> = (0..o.replicas)
        .map(|_| replica(&o.cfa_bin, &dsn))
        .collect::<Result<_, _>>()?;
    let body = serde_json::from_str::<serde_json::Value>(cfa_benches::fixtures::OK_SIGNATURE)
        .map_err(|e| e.to_string())?
        .to_string();
    println!(
        "SCALE: {} replicas of {} on one PostgreSQL chain (fsync=on, synchronous_commit=on), {} load threads per replica, {:.1} s per step",
        o.replicas,
        o.cfa_bin,
        o.threads,
        o.duration.as_secs_f64()
    );
    let mut steps = Vec::new();
    for &c in &o.connections {
        let s = step(o, &pg, &replicas, c, &body)?;
        println!("{}", s.line());
        steps.push(s);
    }
    drop(replicas);
    let n = check_chain(o, &pg, &dsn)?;
    println!("SCALE: the chain holds {n} events, gap-free, and verifies");
    if let Some(best) = steps
        .iter()
        .max_by(|a, b| a.load.per_second().total_cmp(&b.load.per_second()))
    {
        println!("SCALE: best {}", best.line().trim_start_matches("SCALE: "));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match scale::parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{}", scale::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cfa-scale: {e}\n\n{}", scale::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfa-scale: {e}");
            ExitCode::FAILURE
        }
    }
}
