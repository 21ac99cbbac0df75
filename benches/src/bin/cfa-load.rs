//! `cfa-load`: a bounded loopback HTTP/1.1 load generator for `cfa serve` (keep-alive
//! connections over std TCP, one request in flight per connection, HDR latency).
//! By default it posts the approving reference signature to /v1/decisions, as
//! scripts/bench-http.lua does for wrk.

use cfa_benches::load::{self, LoadOptions};
use cfa_benches::report::{fmt_ns, fmt_rate};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: cfa-load [OPTIONS] ADDR

  ADDR                host:port of `cfa serve` (e.g. 127.0.0.1:8765)
  -c, --connections N keep-alive connections (default 32)
  -t, --threads N     threads the connections are spread over (default 2)
  -d, --seconds N     measured seconds (default 10)
  --warmup-ms N       unmeasured warm-up (default 500)
  --path PATH         request path (default /v1/decisions)
  --body-file FILE    JSON body (default: the ok reference signature)
";

fn parse(args: &[String]) -> Result<LoadOptions, String> {
    let mut addr = None;
    let mut connections = 32;
    let mut threads = 2;
    let mut seconds = 10.0_f64;
    let mut warmup_ms = 500;
    let mut path = "/v1/decisions".to_owned();
    let mut body: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "-c" | "--connections" => {
                connections = value()?.parse().map_err(|e| format!("{a}: {e}"))?;
            }
            "-t" | "--threads" => threads = value()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "-d" | "--seconds" => seconds = value()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--warmup-ms" => warmup_ms = value()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--path" => path = value()?,
            "--body-file" => {
                let f = value()?;
                body = Some(std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown argument '{other}'")),
            other => {
                let resolved = std::net::ToSocketAddrs::to_socket_addrs(other)
                    .map_err(|e| format!("{other}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{other}: no address"))?;
                addr = Some(resolved);
            }
        }
    }
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("--seconds must be positive, got {seconds}"));
    }
    let body = match body {
        Some(b) => b,
        None => serde_json::from_str::<serde_json::Value>(cfa_benches::fixtures::OK_SIGNATURE)
            .map_err(|e| e.to_string())?
            .to_string(),
    };
    Ok(LoadOptions {
        addr: addr.ok_or("no ADDR given")?,
        path,
        body,
        connections,
        threads,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_millis(warmup_ms),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cfa-load: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match load::run(&opts) {
        Ok(r) => {
            println!(
                "{} responses in {:.2} s: {}, latency p50 {} p99 {} max {}, {} non-2xx, {} reconnects",
                r.requests,
                r.elapsed.as_secs_f64(),
                fmt_rate(r.per_second()),
                fmt_ns(r.latency.p50_ns),
                fmt_ns(r.latency.p99_ns),
                fmt_ns(r.latency.max_ns),
                r.non_2xx,
                r.reconnects
            );
            if r.non_2xx == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("cfa-load: {e}");
            ExitCode::from(2)
        }
    }
}
