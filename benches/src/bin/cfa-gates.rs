//! `cfa-gates`: measures the CFA hot paths against the gates of
//! docs/architecture.md#performance-gates, optionally beside the Python reference
//! timed in the same run, prints a Markdown table, and exits 1 when a gate is missed
//! (2 on a broken run). Run it in release mode; `cargo xtask bench` does.

use cfa_benches::gates::{self, Options, ReferenceCmd};
use cfa_benches::report;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The allocator the `cfa` binary ships with, so the gates measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: cfa-gates [OPTIONS]

  --budget-ms N            sampling time per in-process path and run (default 400)
  --runs N                 runs per path; the best median and p99 are kept (default 3)
  --slack X                multiply every gate by X (default 1.0: docs/architecture.md#performance-gates as written)
  --calls N                full-kernel calls (default 200000; the flatness claim is made at 1000000)
  --cold-page-cache        do not write and delete twice the full kernel's log before its timed
                           calls (this VM hands long-free memory back to its host, and a log
                           growing into it slows down: docs/development.md)
  --threads N[,N...]       thread counts of the concurrent audited-decision rows (default 8,32)
  --decisions N            decisions per concurrent run, over all threads (default 256000)
  --tasks N                tokio tasks of the async audited-decision row (default 256)
  --workers N              worker threads of its runtime (default 2)
  --cfa-bin PATH           also time `PATH policy check`, `PATH audit verify` (whole processes)
                           and `PATH serve` under HTTP load
  --http-seconds N         measured seconds of each HTTP load run (default 10)
  --http-connections N     keep-alive connections (default 32)
  --http-threads N         load-generator threads the connections are spread over (default 2)
  --reference-python PATH  time the Python reference too, with this interpreter (its venv)
  --reference-script PATH  scripts/bench-reference.py (default: beside this workspace)
  --reference-calls N      full-kernel calls in the reference (default 2000)
  --only GROUP[,GROUP...]  run only these groups of rows: evaluate, audited, budgets,
                           bundles, control, http, processes (default: all); e.g.
                           `--only control,processes` for the control plane's rows and
                           the whole processes
  --write-readme PATH      replace the table between the bench-table markers of PATH
  --command TEXT           the command line the README names (with --write-readme)
";

#[derive(Debug, Default)]
struct Cli {
    opts: Options,
    readme: Option<PathBuf>,
    command: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let opts = &mut cli.opts;
    let mut reference_python: Option<PathBuf> = None;
    let mut reference_script: Option<PathBuf> = None;
    let mut reference_calls: usize = 2_000;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| format!("{flag}: {e}"))
        }
        match flag.as_str() {
            "--budget-ms" => {
                let ms: u64 = num(flag, value()?)?;
                opts.budget = Duration::from_millis(ms.max(1));
            }
            "--runs" => opts.runs = num(flag, value()?)?,
            "--tasks" => opts.decide_tasks = num(flag, value()?)?,
            "--workers" => opts.decide_workers = num(flag, value()?)?,
            "--slack" => {
                let x: f64 = num(flag, value()?)?;
                if !(x.is_finite() && x > 0.0) {
                    return Err(format!("--slack must be a positive number, got {x}"));
                }
                opts.slack = x;
            }
            "--calls" => opts.kernel_calls = num(flag, value()?)?,
            "--cold-page-cache" => opts.warm_page_cache = false,
            "--threads" => {
                opts.decide_threads = value()?
                    .split(',')
                    .map(|t| num::<usize>(flag, t.trim().to_owned()))
                    .collect::<Result<_, _>>()?;
            }
            "--decisions" => opts.decide_total = num(flag, value()?)?,
            "--cfa-bin" => opts.cfa_bin = Some(PathBuf::from(value()?)),
            "--http-seconds" => {
                let s: f64 = num(flag, value()?)?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("--http-seconds must be positive, got {s}"));
                }
                opts.http_duration = Duration::from_secs_f64(s);
            }
            "--http-connections" => opts.http_connections = num(flag, value()?)?,
            "--http-threads" => opts.http_threads = num(flag, value()?)?,
            "--reference-python" => reference_python = Some(PathBuf::from(value()?)),
            "--reference-script" => reference_script = Some(PathBuf::from(value()?)),
            "--reference-calls" => reference_calls = num(flag, value()?)?,
            "--only" => {
                opts.only = value()?
                    .split(',')
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect();
                if let Some(bad) = opts
                    .only
                    .iter()
                    .find(|g| !gates::GROUPS.contains(&g.as_str()))
                {
                    return Err(format!(
                        "--only: unknown group '{bad}' (groups: {})",
                        gates::GROUPS.join(", ")
                    ));
                }
            }
            "--write-readme" => cli.readme = Some(PathBuf::from(value()?)),
            "--command" => cli.command = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if let Some(python) = reference_python {
        let script = reference_script.unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench-reference.py")
        });
        opts.reference = Some(ReferenceCmd {
            python,
            script,
            kernel_calls: reference_calls,
        });
    }
    if cli.readme.is_some() && !cli.opts.only.is_empty() {
        return Err("--write-readme needs every row: drop --only".to_owned());
    }
    Ok(cli)
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn write_readme(path: &PathBuf, block: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let new =
        report::splice_readme(&text, block).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse_args(&args) {
        Ok(c) => c,
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
    let opts = &cli.opts;
    // The load before the run, for the README: a busy machine explains a missed gate.
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned));
    let report = match gates::run(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cfa-gates: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report::render_markdown(&report.rows));
    println!("\n{}", gates::render_floor(&report.floor));
    if let Some(path) = &cli.readme {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let nproc = std::thread::available_parallelism().map_or(1, usize::from);
        let mut machine = report::machine_description(nproc, &cpuinfo);
        if let Some(load) = &load_before {
            machine.push_str(&format!(" (load average {load} at the start)"));
        }
        machine.push_str(&format!(
            ", best of {} runs, slack {}",
            opts.runs, opts.slack
        ));
        let command = cli
            .command
            .clone()
            .unwrap_or_else(|| format!("cfa-gates {}", args.join(" ")));
        let block = gates::readme_block(&report, &today(), &command, &machine);
        match write_readme(path, &block) {
            Ok(()) => eprintln!("cfa-gates: updated {}", path.display()),
            Err(e) => {
                eprintln!("cfa-gates: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let missed: Vec<&str> = report
        .rows
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_set_the_options() {
        let cli = parse_args(&args(&[
            "--calls",
            "1000000",
            "--threads",
            "8, 32",
            "--http-seconds",
            "2.5",
            "--reference-python",
            "/v/bin/python",
            "--write-readme",
            "README.md",
        ]))
        .unwrap();
        assert_eq!(cli.opts.kernel_calls, 1_000_000);
        assert!(cli.opts.warm_page_cache);
        assert!(
            !parse_args(&args(&["--cold-page-cache"]))
                .unwrap()
                .opts
                .warm_page_cache
        );
        assert_eq!(cli.opts.decide_threads, vec![8, 32]);
        assert_eq!(cli.opts.http_duration, Duration::from_millis(2_500));
        assert!(cli.opts.only.is_empty() && cli.opts.runs_group("http"));
        let r = cli.opts.reference.unwrap();
        assert_eq!(r.python, PathBuf::from("/v/bin/python"));
        assert!(r.script.ends_with("scripts/bench-reference.py"));
        assert_eq!(cli.readme, Some(PathBuf::from("README.md")));
        let only = parse_args(&args(&["--only", "control, processes"])).unwrap();
        assert_eq!(only.opts.only, ["control", "processes"]);
        assert!(only.opts.runs_group("control") && !only.opts.runs_group("evaluate"));
        assert!(parse_args(&args(&["--only", "control,nope"])).is_err());
        assert!(parse_args(&args(&["--only", "control", "--write-readme", "R.md"])).is_err());
        assert!(parse_args(&args(&["--slack", "0"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert!(parse_args(&args(&["--calls"])).is_err());
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
