//! What the scale-out measurement (`cfa-scale`, `cargo xtask bench --scale`) reads and
//! works out: its arguments, CPU time from `/proc` (the whole machine's and a set of
//! processes'), and one sweep step's figures (decisions/s, latency, events per commit,
//! commits/s, where the CPU went). Starting the database and the replicas is the
//! binary's; this module only computes and formats.

use crate::load::LoadReport;
use crate::report::{fmt_ns, fmt_rate};
use std::time::Duration;

/// How a scale-out measurement is run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleOptions {
    /// The `cfa` binary the replicas run (a release build).
    pub cfa_bin: String,
    /// `cfa serve` replicas on one chain.
    pub replicas: usize,
    /// Keep-alive connections per replica, one sweep step each.
    pub connections: Vec<usize>,
    /// Load-generator threads per replica.
    pub threads: usize,
    /// Measured time per step.
    pub duration: Duration,
    /// Unmeasured warm-up per step.
    pub warmup: Duration,
}

/// `cfa-scale --help`.
pub const USAGE: &str = "usage: cfa-scale --cfa-bin PATH [OPTIONS]

Starts a durable throwaway PostgreSQL 15 cluster (fsync=on, synchronous_commit=on),
REPLICAS `cfa serve --audit-pg-env` replicas of PATH on one chain, and drives them with
keep-alive connections (one request in flight each) for each connection count in
turn; prints decisions/s, p50/p99 latency, events per commit, commits/s and where the
CPU went, then verifies the chain (`cfa audit verify --pg-env`).

  --cfa-bin PATH        the cfa binary (e.g. target/release/cfa)
  --replicas N          replicas (default 3)
  --connections LIST    connections per replica, comma-separated sweep (default 16,64,128)
  --threads N           load threads per replica (default 2)
  --seconds N           measured seconds per step (default 10)
  --warmup-ms N         unmeasured warm-up per step (default 1000)

example: cargo xtask bench --scale -- --connections 32,128 --seconds 5
";

/// Parses `cfa-scale` arguments; `Err("")` asks for the usage.
pub fn parse_args(args: &[String]) -> Result<ScaleOptions, String> {
    let mut cfa_bin = None;
    let mut o = ScaleOptions {
        cfa_bin: String::new(),
        replicas: 3,
        connections: vec![16, 64, 128],
        threads: 2,
        duration: Duration::from_secs(10),
        warmup: Duration::from_millis(1000),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let count = |v: String| -> Result<usize, String> {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{a}: '{v}' is not a positive integer"))
        };
        match a.as_str() {
            "--cfa-bin" => cfa_bin = Some(value()?),
            "--replicas" => o.replicas = count(value()?)?,
            "--threads" => o.threads = count(value()?)?,
            "--connections" => {
                o.connections = value()?
                    .split(',')
                    .map(|c| count(c.to_owned()))
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--seconds: '{v}' is not a positive number"))?;
                o.duration = Duration::from_secs_f64(s);
            }
            "--warmup-ms" => {
                let v = value()?;
                o.warmup = Duration::from_millis(
                    v.parse()
                        .map_err(|_| format!("--warmup-ms: '{v}' is not a number"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    o.cfa_bin = cfa_bin.ok_or("--cfa-bin PATH is required")?;
    Ok(o)
}

/// CPU time in clock ticks: the machine's (all cores) and that of the processes asked
/// about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Every core's ticks, idle included.
    pub total: u64,
    /// Ticks not idle (nor waiting for I/O).
    pub busy: u64,
}

/// The first (`cpu`) line of `/proc/stat`: total and busy ticks.
pub fn parse_proc_stat(text: &str) -> Option<CpuTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some(CpuTicks {
        total,
        busy: total.saturating_sub(idle),
    })
}

/// User plus system ticks of a process from its `/proc/PID/stat` line.
pub fn parse_pid_stat(text: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: fields follow the last `)`.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid (4), … utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU ticks now.
pub fn machine_ticks() -> Option<CpuTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The summed user and system ticks of `pids` now (processes gone count 0).
pub fn process_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|t| parse_pid_stat(&t))
        .sum()
}

/// Where the CPU went in a step, in cores (out of [`CpuShare::cores`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare {
    /// Cores of the machine.
    pub cores: f64,
    /// The replicas.
    pub replicas: f64,
    /// The PostgreSQL server's processes.
    pub postgres: f64,
    /// The load generator (this process).
    pub load: f64,
    /// Everything else that ran (other builds and tests on the machine).
    pub other: f64,
    /// Idle.
    pub idle: f64,
}

impl CpuShare {
    /// Shares from tick deltas over a step: the machine's, then the replicas', the
    /// server's and the load generator's.
    pub fn of(machine: CpuTicks, replicas: u64, postgres: u64, load: u64, cores: f64) -> Self {
        let total = machine.total.max(1) as f64;
        let part = |t: u64| t as f64 / total * cores;
        let busy = part(machine.busy);
        let (replicas, postgres, load) = (part(replicas), part(postgres), part(load));
        Self {
            cores,
            replicas,
            postgres,
            load,
            other: (busy - replicas - postgres - load).max(0.0),
            idle: (cores - busy).max(0.0),
        }
    }
}

/// One sweep step's figures.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Replicas.
    pub replicas: usize,
    /// Connections per replica.
    pub connections: usize,
    /// What the load generator measured.
    pub load: LoadReport,
    /// Events the chain grew by in the measured window.
    pub events: u64,
    /// Transactions that inserted them.
    pub commits: u64,
    /// Where the CPU went.
    pub cpu: Option<CpuShare>,
}

impl StepReport {
    /// Events per commit (the mean group size).
    pub fn events_per_commit(&self) -> f64 {
        self.events as f64 / self.commits.max(1) as f64
    }

    /// Commits per second in the window.
    pub fn commits_per_second(&self) -> f64 {
        self.commits as f64 / self.load.elapsed.as_secs_f64().max(1e-9)
    }

    /// The step as one `SCALE:` line.
    pub fn line(&self) -> String {
        let cpu = self.cpu.map_or_else(String::new, |c| {
            format!(
                "; CPU of {:.0} cores: replicas {:.2}, postgres {:.2}, load {:.2}, other {:.2}, idle {:.2}",
                c.cores, c.replicas, c.postgres, c.load, c.other, c.idle
            )
        });
        format!(
            "SCALE: {} replicas x {} connections: {} audited decisions ({} in {:.1} s), latency p50 {} p99 {}; {} events in {} commits = {:.1} events/commit, {:.0} commits/s{cpu}",
            self.replicas,
            self.connections,
            fmt_rate(self.load.per_second()),
            self.load.requests,
            self.load.elapsed.as_secs_f64(),
            fmt_ns(self.load.latency.p50_ns),
            fmt_ns(self.load.latency.p99_ns),
            self.events,
            self.commits,
            self.events_per_commit(),
            self.commits_per_second(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::measure::Stats;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_and_their_defaults() {
        let o = parse_args(&args(&["--cfa-bin", "target/release/cfa"])).unwrap();
        assert_eq!(o.connections, [16, 64, 128]);
        assert_eq!((o.replicas, o.threads), (3, 2));
        assert_eq!(o.duration, Duration::from_secs(10));
        let o = parse_args(&args(&[
            "--cfa-bin",
            "x",
            "--connections",
            "8, 256",
            "--seconds",
            "2.5",
            "--replicas",
            "2",
            "--warmup-ms",
            "0",
        ]))
        .unwrap();
        assert_eq!(o.connections, [8, 256]);
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!((o.replicas, o.warmup), (2, Duration::ZERO));
        assert!(parse_args(&args(&[])).unwrap_err().contains("--cfa-bin"));
        assert!(parse_args(&args(&["--cfa-bin", "x", "--connections", "8,0"])).is_err());
        assert!(parse_args(&args(&["--cfa-bin", "x", "--seconds", "-1"])).is_err());
        assert!(parse_args(&args(&["--cfa-bin", "x", "--bogus"])).is_err());
        assert_eq!(parse_args(&args(&["--help"])).unwrap_err(), "");
    }

    #[test]
    fn proc_lines_give_ticks() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(
            parse_proc_stat(stat),
            Some(CpuTicks {
                total: 1000,
                busy: 160
            })
        );
        assert_eq!(parse_proc_stat("intr 1 2 3"), None);
        let pid = "4242 (cfa serve (x)) S 1 4242 4242 0 -1 4194304 900 0 0 0 120 35 0 0 20 0 9 0";
        assert_eq!(parse_pid_stat(pid), Some(155));
        assert_eq!(parse_pid_stat("4242 (cut) S 1"), None);
    }

    #[test]
    fn a_step_reports_its_rates_and_cpu() {
        let cpu = CpuShare::of(
            CpuTicks {
                total: 2000,
                busy: 1800,
            },
            900,
            500,
            200,
            2.0,
        );
        assert!((cpu.replicas - 0.9).abs() < 1e-9 && (cpu.other - 0.2).abs() < 1e-9);
        assert!((cpu.idle - 0.2).abs() < 1e-9);
        let step = StepReport {
            replicas: 3,
            connections: 64,
            load: LoadReport {
                requests: 50_000,
                non_2xx: 0,
                reconnects: 0,
                elapsed: Duration::from_secs(10),
                latency: Stats {
                    p50_ns: 8e6,
                    p99_ns: 2e7,
                    max_ns: 3e7,
                    samples: 50_000,
                    batch: 1,
                },
            },
            events: 50_100,
            commits: 2_505,
            cpu: Some(cpu),
        };
        assert!((step.events_per_commit() - 20.0).abs() < 1e-9);
        assert!((step.commits_per_second() - 250.5).abs() < 1e-9);
        let line = step.line();
        assert!(
            line.starts_with("SCALE: 3 replicas x 64 connections: 5,000/s audited decisions"),
            "{line}"
        );
        assert!(line.contains("p50 8.00 ms p99 20.00 ms"), "{line}");
        assert!(line.contains("20.0 events/commit, 250 commits/s"), "{line}");
        assert!(
            line.contains("replicas 0.90, postgres 0.50, load 0.20"),
            "{line}"
        );
    }
}
