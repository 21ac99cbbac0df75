//! `cargo xtask`: the one entry point for CI, formatting, linting, tests and benchmarks.
//! CI runs `cargo xtask ci`, which is exactly what a developer runs locally.

use std::process::{Command, ExitCode};

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn ci() -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["fmt", "--all", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    for (package, feature, _) in FEATURE_SUITES {
        run(
            &cargo,
            &[
                "clippy",
                "-p",
                package,
                "--features",
                feature,
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    test()
}

/// Opt-in cargo features whose code has its own tests; CI lints and tests each one:
/// (package, feature, test binary — `None` for all of the package's tests).
const FEATURE_SUITES: &[(&str, &str, Option<&str>)] = &[
    ("cfa-resolve", "llm", None),
    ("cfa-cli", "otel", Some("serve_otel")),
];

/// Ignored tests too long for a debug build, which CI runs in release:
/// (package, test binary). `memory_flat` is 1,000,000 kernel calls.
const RELEASE_SUITES: &[(&str, &str)] = &[("cfa-kernel", "memory_flat")];

/// Every test: doc tests, the release suites, the opt-in feature suites and the fuzz
/// smoke first, then the whole workspace through nextest, so the run closes on the
/// main suite's summary.
fn test() -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["test", "--workspace", "--doc", "--locked"])?;
    for (package, test) in RELEASE_SUITES {
        run(
            &cargo,
            &[
                "nextest",
                "run",
                "--release",
                "--locked",
                "-p",
                package,
                "--test",
                test,
                "--run-ignored",
                "only",
                "--success-output",
                "immediate",
            ],
        )?;
    }
    for (package, feature, test) in FEATURE_SUITES {
        let mut args = vec![
            "nextest",
            "run",
            "-p",
            package,
            "--features",
            feature,
            "--locked",
            "--no-fail-fast",
        ];
        if let Some(test) = test {
            args.extend(["--test", test]);
        }
        run(&cargo, &args)?;
    }
    let workspace = ["nextest", "run", "--workspace", "--locked"];
    // Build the workspace's test binaries (and the debug `cfa` they use) first, so
    // the fuzz smoke drives that same binary and the run still closes on the main
    // suite's summary.
    run(&cargo, &[&workspace[..], &["--no-run"]].concat())?;
    fuzz_smoke()?;
    run(&cargo, &[&workspace[..], &["--no-fail-fast"]].concat())
}

/// Seconds and seed of the fuzz smoke of `cargo xtask test`/`ci`. The seed
/// is fixed so that a failure reproduces with `cargo xtask fuzz --seed 1`.
const FUZZ_SMOKE: (&str, &str) = ("6", "1");

/// A short fuzz run: the fuzzer in release (its dependencies are the ones the
/// release soak suite just built, so only the crate itself compiles, ~10 s), the
/// process targets against the debug `cfa` the workspace tests just built (building
/// it again outside the tests would recompile it with other features).
fn fuzz_smoke() -> Result<(), String> {
    let (seconds, seed) = FUZZ_SMOKE;
    let args = [
        "--seconds".to_owned(),
        seconds.to_owned(),
        "--seed".to_owned(),
        seed.to_owned(),
    ];
    let built = target_dir().join("debug").join("cfa").is_file();
    fuzz_with(&args, !built)
}

/// `cargo xtask fuzz [--seconds N] [--target NAME]... [--seed S] [--no-process]
/// [--crash-dir DIR]`: builds `cfa-fuzz` in release and `cfa` (debug, for the
/// process targets), then runs the fuzzer; fails on any finding.
fn fuzz(args: &[String]) -> Result<(), String> {
    fuzz_with(args, true)
}

fn fuzz_with(args: &[String], build_cfa: bool) -> Result<(), String> {
    let cargo = cargo();
    const PROCESS: [&str; 3] = ["mcp", "http", "cli"];
    let mut targets = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--target" => targets.extend(rest.next().map(String::as_str)),
            "--seconds" | "--seed" | "--crash-dir" => {
                rest.next()
                    .ok_or_else(|| format!("fuzz: {a} needs a value"))?;
            }
            "--no-process" => {}
            other => return Err(format!("fuzz: unknown argument '{other}'\n\n{HELP}")),
        }
    }
    let needs_cfa = !args.iter().any(|a| a == "--no-process")
        && (targets.is_empty() || targets.iter().any(|t| PROCESS.contains(t)));
    run(
        &cargo,
        &["build", "--release", "--locked", "-p", "cfa-fuzz"],
    )?;
    let mut fuzz_args: Vec<String> = args.to_vec();
    if needs_cfa {
        if build_cfa {
            run(
                &cargo,
                &["build", "--locked", "-p", "cfa-cli", "--bin", "cfa"],
            )?;
        }
        let cfa = target_dir().join("debug").join("cfa");
        fuzz_args.push("--cfa".into());
        fuzz_args.push(
            cfa.to_str()
                .ok_or("fuzz: target dir is not UTF-8")?
                .to_owned(),
        );
    }
    let bin = target_dir().join("release").join("cfa-fuzz");
    let bin = bin.to_str().ok_or("fuzz: target dir is not UTF-8")?;
    let refs: Vec<&str> = fuzz_args.iter().map(String::as_str).collect();
    run(bin, &refs)
        .map_err(|e| format!("fuzzing found a problem (inputs under target/fuzz/crashes): {e}"))
}

/// `cargo xtask bench`: the latency gates of docs/architecture.md#performance-gates (release build of
/// `cfa-gates`, which prints p50/p99 from an HDR histogram and exits 1 on a missed
/// gate), then optionally the criterion benches and the `cfa policy check` cold start.
fn bench(args: &[String]) -> Result<(), String> {
    let cargo = cargo();
    let mut criterion = false;
    let mut cold_start = false;
    let mut gate_args: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--criterion" => criterion = true,
            "--cold-start" | "--cli" => cold_start = true,
            "--" => gate_args.extend(rest.by_ref().map(String::as_str)),
            other => return Err(format!("bench: unknown argument '{other}'\n\n{HELP}")),
        }
    }
    let cfa_bin;
    if cold_start {
        run(
            &cargo,
            &[
                "build",
                "--release",
                "--locked",
                "-p",
                "cfa-cli",
                "--bin",
                "cfa",
            ],
        )?;
        cfa_bin = target_dir().join("release").join("cfa");
        gate_args.push("--cfa-bin");
        gate_args.push(cfa_bin.to_str().ok_or("bench: target dir is not UTF-8")?);
    }
    let mut gates = vec![
        "run",
        "--release",
        "--locked",
        "-p",
        "cfa-benches",
        "--bin",
        "cfa-gates",
        "--",
    ];
    gates.extend(gate_args);
    let gate_result = run(&cargo, &gates);
    if criterion {
        run(
            &cargo,
            &[
                "bench",
                "--locked",
                "-p",
                "cfa-benches",
                "--bench",
                "hot_paths",
            ],
        )?;
    }
    gate_result.map_err(|e| format!("latency gates missed or failed: {e}"))
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    )
}

const HELP: &str = "cargo xtask <command>

commands:
  ci      what CI runs: fmt check, clippy -D warnings, every test
  test    every test: doc tests, feature suites, the release-only soak
          (1,000,000 kernel calls, memory flat), a 6 s fuzz smoke (seed 1),
          then the workspace (nextest)
  fmt     format the workspace
  fuzz    structure-aware fuzzing of every parser and face (release build of
          cfa-fuzz; fails on any panic, hang or broken invariant)
            --seconds N    how long (default 60)
            --target NAME  only this target (repeatable; `cfa-fuzz --list`)
            --seed S       run seed (default from the clock; printed)
            --no-process   skip the `cfa mcp`/`cfa serve`/CLI process targets
            --crash-dir D  where failing inputs go (default target/fuzz/crashes)
  bench   latency gates of docs/architecture.md#performance-gates (release build; p50/p99 from an HDR
          histogram; fails when a gate is missed)
            --criterion    also run the criterion benches (cargo bench)
            --cold-start   also build `cfa` (release) and time whole processes:
                           `cfa policy check` cold start, `cfa audit verify` of a
                           100k-event chain
            -- ARGS        passed to cfa-gates (--budget-ms N, --runs N, --slack X)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => test(),
        Some("fmt") => run(&cargo(), &["fmt", "--all"]),
        Some("bench") => bench(args.get(1..).unwrap_or_default()),
        Some("fuzz") => fuzz(args.get(1..).unwrap_or_default()),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
