//! `cfa-gates`: measures the CFA hot paths against the latency gates of docs/architecture.md#performance-gates,
//! prints a Markdown table, and exits 1 when a gate is missed (2 on a broken run).
//! Run it in release mode; `cargo xtask bench` does.

use cfa_benches::gates::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The allocator the `cfa` binary ships with, so the gates measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: cfa-gates [--budget-ms N] [--runs N] [--slack X] [--cfa-bin PATH]

  --budget-ms N   sampling time per path and run (default 400)
  --runs N        runs per path; the best median and p99 are kept (default 3)
  --slack X       multiply every gate by X (default 1.0: docs/architecture.md#performance-gates as written)
  --cfa-bin PATH  also time `PATH policy check` as a whole process (cold start)
";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--budget-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--budget-ms: {e}"))?;
                opts.budget = Duration::from_millis(ms.max(1));
            }
            "--runs" => opts.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--slack" => {
                let x: f64 = value()?.parse().map_err(|e| format!("--slack: {e}"))?;
                if !(x.is_finite() && x > 0.0) {
                    return Err(format!("--slack must be a positive number, got {x}"));
                }
                opts.slack = x;
            }
            "--cfa-bin" => opts.cfa_bin = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cfa-gates: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("cfa-gates: warning: debug build; numbers are meaningless (use --release)");
    }
    match gates::run(&opts) {
        Ok(rows) => {
            print!("{}", gates::render_markdown(&rows));
            let missed: Vec<&str> = rows
                .iter()
                .filter(|r| !r.passed())
                .map(|r| r.path.as_str())
                .collect();
            if missed.is_empty() {
                println!(
                    "\nall gates met (best of {} runs, slack {})",
                    opts.runs, opts.slack
                );
                ExitCode::SUCCESS
            } else {
                println!("\ngates missed: {}", missed.join("; "));
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("cfa-gates: {e}");
            ExitCode::from(2)
        }
    }
}
