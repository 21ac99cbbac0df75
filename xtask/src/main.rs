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

/// Every test: doc tests, the opt-in feature suites and the release suites first,
/// then the whole workspace through nextest, so the run closes on the main suite's
/// summary.
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
    run(
        &cargo,
        &[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ],
    )
}

/// `cargo xtask bench`: the latency gates of design.md §6 (release build of
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
          (1,000,000 kernel calls, memory flat), then the workspace (nextest)
  fmt     format the workspace
  bench   latency gates of design.md §6 (release build; p50/p99 from an HDR
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
