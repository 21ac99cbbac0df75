//! `cargo xtask`: the one entry point for CI, formatting, linting, tests and benchmarks.
//! CI runs `cargo xtask ci`, which is exactly what a developer runs locally.

mod bench;
mod spark;

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set by `cargo xtask ci`: every child runs with `CARGO_INCREMENTAL=0`.
static NO_INCREMENTAL: AtomicBool = AtomicBool::new(false);

/// `clippy-driver`, when the debug lane lints while it compiles (`cargo xtask ci`): set
/// as `RUSTC_WORKSPACE_WRAPPER` on every cargo command [`run`] starts, as `cargo clippy`
/// itself does, so the workspace's crates are linted by the one build that also
/// produces the test binaries instead of by a second, check-only build of every
/// dependency.
static LINT_DRIVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_linted(program, args, true)
}

/// [`run`], with the lint driver of [`LINT_DRIVER`] only when `lint` (the release
/// builds of [`soak`] are never linted: the debug lane already linted the same code).
fn run_linted(program: &str, args: &[&str], lint: bool) -> Result<(), String> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    if NO_INCREMENTAL.load(Ordering::Relaxed) {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    if let Some(driver) = LINT_DRIVER.get().filter(|_| lint) {
        // What `cargo clippy -- -D warnings` sets: the driver for workspace members
        // only (dependencies build as usual), and its arguments.
        cmd.env("RUSTC_WORKSPACE_WRAPPER", driver).env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    }
    let status = cmd
        .args(args)
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo xtask all`: what CI runs (`.ci/run`): [`ci`] (the five-minute budget), then
/// the slow suites that have their own steps, [`soak`], [`browser`], [`spark::spark`],
/// [`scale`] and [`python`]; each step's time is printed, and the first failure stops the
/// run.
fn all() -> Result<(), String> {
    let started = Instant::now();
    step("ci", ci)?;
    step("soak", soak)?;
    step("browser", browser)?;
    step("spark", spark::spark)?;
    step("scale", scale)?;
    step("python", python)?;
    eprintln!("xtask: all passed in {} s", started.elapsed().as_secs());
    Ok(())
}

/// `cargo xtask ci`: the fmt check, clippy, then every test ([`test`]). On a fresh
/// clone incremental compilation only costs time and disk, so it is off unless the
/// caller set `CARGO_INCREMENTAL`.
fn ci() -> Result<(), String> {
    let cargo = cargo();
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        NO_INCREMENTAL.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    step("fmt", || run(&cargo, &["fmt", "--all", "--check"]))?;
    // pip installs are network and disk bound: they run while clippy and the debug
    // build use the cores.
    let venvs = Venvs::warm();
    let result = lint_while_building().and_then(|()| test_with(venvs));
    eprintln!(
        "xtask: ci {} in {} s",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs()
    );
    result
}

/// Turns on linting in every later debug-lane build (see [`LINT_DRIVER`]; the
/// lints are those of `cargo clippy --workspace --all-targets -- -D warnings`, the
/// workspace's `[lints]` included), then lints what the test build does not compile: the
/// examples and benches. [`test_with`] builds the rest. There is no separate build of
/// `cfa-cli` with its default features: its dev-dependencies change the features of
/// `libc`, `tokio` and a dozen more, so such a build compiled the whole dependency tree a
/// second time; the code only such a build would compile (`cfa-cli/src/telemetry.rs`
/// without `otel`) is written so that every build compiles it.
fn lint_while_building() -> Result<(), String> {
    let cargo = cargo();
    let driver = clippy_driver()?;
    eprintln!("xtask: linting while building, with {driver}");
    let _ = LINT_DRIVER.set(driver);
    step("lint: examples and benches", || {
        run(
            &cargo,
            &[
                "build",
                "--workspace",
                "--exclude",
                PYTHON_CRATE,
                "--locked",
                "--features",
                CI_FEATURES,
                "--examples",
                "--benches",
                "--profile",
                "dev",
            ],
        )
    })
}

/// The `clippy-driver` of the toolchain running us (beside `cargo`, else in the
/// sysroot's `bin`).
fn clippy_driver() -> Result<String, String> {
    let cargo = cargo();
    let beside = std::path::Path::new(&cargo).with_file_name("clippy-driver");
    if beside.is_file() {
        return Ok(beside.display().to_string());
    }
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let driver = std::path::Path::new(&sysroot)
        .join("bin")
        .join("clippy-driver");
    if driver.is_file() {
        Ok(driver.display().to_string())
    } else {
        Err(format!(
            "clippy-driver not found beside {cargo} or in {sysroot}/bin: install the clippy component (rustup component add clippy)"
        ))
    }
}

/// `cargo xtask clippy`: clippy with `-D warnings`, the workspace with its default
/// features, then with the
/// opt-in features ([`CI_FEATURES`]) on — that pass re-checks only the crates the
/// features change.
fn lint() -> Result<(), String> {
    let cargo = cargo();
    let clippy = |features: Option<&str>| {
        let mut args = vec![
            "clippy",
            "--workspace",
            "--exclude",
            PYTHON_CRATE,
            "--all-targets",
            "--locked",
        ];
        if let Some(f) = features {
            args.extend(["--features", f]);
        }
        args.extend(["--", "-D", "warnings"]);
        run(&cargo, &args)
    };
    step("clippy", || clippy(None))?;
    step("clippy --features", || clippy(Some(CI_FEATURES)))
}

/// The opt-in cargo features with their own tests (`cfa-resolve/llm`: the LLM
/// normaliser; `cfa-cli/otel`: the OTLP exporter). No test needs them off, so the whole
/// workspace is built and tested once with them on instead of building the two crates
/// (and their dependents) again per feature.
const CI_FEATURES: &str = "cfa-resolve/llm,cfa-cli/otel";

/// The Python package's crate (pyo3): built and linted only by `cargo xtask python`,
/// never by the debug lane of `ci`/`test`/`clippy`.
const PYTHON_CRATE: &str = "cfa-py";

/// `cargo nextest run` over the workspace (without [`PYTHON_CRATE`]) with
/// [`CI_FEATURES`]: the one build `test`, `browser` and `python` share, so a step after
/// `ci` recompiles nothing.
pub(crate) const CI_NEXTEST: [&str; 8] = [
    "nextest",
    "run",
    "--workspace",
    "--exclude",
    PYTHON_CRATE,
    "--locked",
    "--features",
    CI_FEATURES,
];

/// `cargo xtask python`: lints the Python package's crate (`cargo clippy -p cfa-py -D
/// warnings`), builds the debug `cfa` its tests compare against (as `test` builds it),
/// builds and installs the
/// package into its virtualenv with one `pip install ./cfa-py` (scripts/python-setup.sh:
/// maturin, cargo's dev profile) and runs `pytest cfa-py/tests`.
fn python() -> Result<(), String> {
    let cargo = cargo();
    // As in `ci`: incremental compilation only costs time and disk here.
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        NO_INCREMENTAL.store(true, Ordering::Relaxed);
    }
    step("python: clippy -p cfa-py", || {
        run(
            &cargo,
            &[
                "clippy",
                "-p",
                PYTHON_CRATE,
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    // The `cfa` the workspace tests use, built as `test` builds it: after `cargo xtask
    // ci` (as in .ci/run) this is a no-op, where a plain `cargo build -p cfa-cli` would
    // rebuild the tree with other features.
    step("python: the debug cfa (as test builds it)", || {
        run(&cargo, &[&CI_NEXTEST[..], &["--no-run"]].concat())
    })?;
    let root = workspace_root();
    let setup = root.join("scripts").join("python-setup.sh");
    let setup = setup
        .to_str()
        .ok_or("python: workspace path is not UTF-8")?;
    let mut python = String::new();
    step("python: pip install ./cfa-py", || {
        python = python_setup(setup, &[])?;
        Ok(())
    })?;
    let tests = root.join("cfa-py").join("tests");
    let tests = tests
        .to_str()
        .ok_or("python: workspace path is not UTF-8")?;
    step("python: pytest cfa-py/tests", || {
        let cfa = target_dir().join("debug").join("cfa");
        eprintln!("xtask: CFA_BIN={}", cfa.display());
        let status = Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", tests])
            .env("CFA_BIN", &cfa)
            .status()
            .map_err(|e| format!("cannot start {python}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pytest {tests} failed ({status})"))
        }
    })
}

/// Runs scripts/python-setup.sh with `args` and returns the venv's python (the last
/// line of its stdout).
pub(crate) fn python_setup(script: &str, args: &[&str]) -> Result<String, String> {
    eprintln!("xtask: running bash {script} {}", args.join(" "));
    let mut cmd = Command::new("bash");
    if NO_INCREMENTAL.load(Ordering::Relaxed) {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    let out = cmd
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{script} failed ({})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| format!("{script} printed no python path"))
}

/// Ignored tests too long for a debug build, which CI runs in release:
/// (package, test binary). `memory_flat` is 1,000,000 kernel calls.
const RELEASE_SUITES: &[(&str, &str)] = &[("cfa-kernel", "memory_flat")];

/// The nextest profile of `cargo xtask test --quick` (.config/nextest.toml).
const QUICK_PROFILE: &str = "quick";

/// `cargo xtask test [--quick]`.
fn test_cmd(args: &[String]) -> Result<(), String> {
    match args {
        [] => test_with(Venvs::warm()),
        [q] if q == "--quick" => quick(),
        other => Err(format!("test: unknown arguments {other:?}\n\n{HELP}")),
    }
}

/// The edit loop: the workspace's tests through nextest's `quick` profile (no
/// PostgreSQL, no Python virtualenvs, no dbt, no 10,000-request load test, no soak, no
/// fuzzing, no doc tests), with the default features and incremental builds.
fn quick() -> Result<(), String> {
    let cargo = cargo();
    step("nextest (quick profile)", || {
        run(
            &cargo,
            &[
                "nextest",
                "run",
                "--workspace",
                "--exclude",
                PYTHON_CRATE,
                "--locked",
                "--profile",
                QUICK_PROFILE,
            ],
        )
    })
}

/// Every test of the debug lane: the workspace's test binaries with [`CI_FEATURES`],
/// the doc tests, then the whole workspace through nextest. The Python virtualenvs
/// (`venvs`) must be ready before nextest runs. The release soak and the fuzz smoke
/// are [`soak`]'s.
fn test_with(venvs: Venvs) -> Result<(), String> {
    let cargo = cargo();
    let workspace = CI_NEXTEST;
    // Build the workspace's test binaries (and the debug `cfa` they use) first, so
    // the doc tests reuse its libraries.
    step("build test binaries", || {
        run(&cargo, &[&workspace[..], &["--no-run"]].concat())
    })?;
    step("doc tests", || {
        run(
            &cargo,
            &[
                "test",
                "--workspace",
                "--exclude",
                PYTHON_CRATE,
                "--doc",
                "--locked",
                "--features",
                CI_FEATURES,
            ],
        )
    })?;
    step("python virtualenvs (ready)", || venvs.wait())?;
    step("nextest", || {
        run(&cargo, &[&workspace[..], &["--no-fail-fast"]].concat())
    })
}

/// `cargo xtask soak`: what is too long for a debug build and for `ci`'s five minutes.
/// One release build of the soak suites and the fuzzer (their shared dependencies
/// compile once), the soak (`memory_flat`: 1,000,000 kernel calls with flat memory),
/// then a 6 s fuzz smoke against the debug `cfa` of the `ci` build (built here with
/// the same arguments when `ci` did not run first).
fn soak() -> Result<(), String> {
    let cargo = cargo();
    let build = release_build_args();
    let build: Vec<&str> = build.iter().map(String::as_str).collect();
    step("soak: release build", || run_linted(&cargo, &build, false))?;
    let suites = release_soak_args();
    let suites: Vec<&str> = suites.iter().map(String::as_str).collect();
    step("soak: release suites", || {
        run_linted(&cargo, &suites, false)
    })?;
    step("soak: debug cfa", || {
        run(&cargo, &[&CI_NEXTEST[..], &["--no-run"]].concat())
    })?;
    step("fuzz smoke", fuzz_smoke)
}

/// The release soak suites' test binaries and the fuzzer in one cargo invocation, so
/// their shared dependencies are resolved with one feature set and compiled once.
fn release_build_args() -> Vec<String> {
    let mut args = release_args();
    args.extend(["--bin", "cfa-fuzz"]);
    args.into_iter().map(str::to_owned).collect()
}

/// `cargo build --release --locked -p <each soak package> -p cfa-fuzz --test <each>`.
fn release_args() -> Vec<&'static str> {
    let mut args = vec!["build", "--release", "--locked", "-p", "cfa-fuzz"];
    for (package, test) in RELEASE_SUITES {
        args.extend(["-p", package, "--test", test]);
    }
    args
}

/// Runs the ignored release suites (built by the release build, same packages and so
/// the same features: nothing recompiles).
fn release_soak_args() -> Vec<String> {
    let mut args = vec!["nextest", "run", "--release", "--locked", "-p", "cfa-fuzz"];
    for (package, test) in RELEASE_SUITES {
        args.extend(["-p", package, "--test", test]);
    }
    args.extend(["--run-ignored", "only", "--success-output", "immediate"]);
    args.into_iter().map(str::to_owned).collect()
}

/// The Python virtualenvs some tests use (dbt, the reference cfa-kernel, the MCP SDK),
/// created by their scripts' `--setup` in the background; each script reuses a venv
/// that is already there, so a warm cache costs nothing.
struct Venvs(Vec<(&'static str, std::path::PathBuf, Result<Child, String>)>);

/// (script, log name) of each virtualenv setup.
const VENV_SETUPS: &[(&str, &str)] = &[
    ("scripts/dbt-setup.sh", "venv-dbt"),
    ("scripts/reference-audit-verify.sh", "venv-ref"),
    ("scripts/mcp-python-client.sh", "venv-mcp"),
];

impl Venvs {
    /// Starts every setup script; output goes to `target/cfa-cache/<venv>.setup.log`.
    fn warm() -> Self {
        let root = workspace_root();
        let cache = std::env::var_os("CFA_CACHE_DIR")
            .map_or_else(|| root.join("target/cfa-cache"), std::path::PathBuf::from);
        let _ = std::fs::create_dir_all(&cache);
        let jobs = VENV_SETUPS
            .iter()
            .map(|(script, name)| {
                let log = cache.join(format!("{name}.setup.log"));
                let child = std::fs::File::create(&log)
                    .and_then(|out| Ok((out.try_clone()?, out)))
                    .map_err(|e| format!("cannot write {}: {e}", log.display()))
                    .and_then(|(out, err)| {
                        eprintln!("xtask: starting {script} --setup (log: {})", log.display());
                        let mut cmd = Command::new("bash");
                        #[cfg(unix)]
                        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
                        cmd.arg(root.join(script))
                            .arg("--setup")
                            .stdin(Stdio::null())
                            .stdout(out)
                            .stderr(err)
                            .spawn()
                            .map_err(|e| format!("cannot start {script}: {e}"))
                    });
                (*script, log, child)
            })
            .collect();
        Self(jobs)
    }

    /// Waits for every setup; a failure shows its log and fails the run.
    fn wait(mut self) -> Result<(), String> {
        let mut failed = Vec::new();
        for (script, log, child) in std::mem::take(&mut self.0) {
            let status = child.and_then(|mut c| {
                c.wait()
                    .map_err(|e| format!("cannot wait for {script}: {e}"))
            });
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    eprintln!(
                        "xtask: {script} --setup failed ({s}); {}:\n{text}",
                        log.display()
                    );
                    failed.push(script);
                }
                Err(e) => {
                    eprintln!("xtask: {e}");
                    failed.push(script);
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "python virtualenv setup failed: {}",
                failed.join(", ")
            ))
        }
    }
}

impl Drop for Venvs {
    /// A run that fails before [`Venvs::wait`] stops the setups it started.
    fn drop(&mut self) {
        for (_, _, child) in &mut self.0 {
            if let Ok(c) = child {
                // The script runs in its own process group: stop pip with it.
                let _ = Command::new("kill")
                    .args(["-TERM", "--", &format!("-{}", c.id())])
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Runs one named step and prints its wall time and, on Linux, the CPU time
/// (user + system) of the processes it ran — the figure that does not depend on what
/// else the machine is doing.
pub(crate) fn step(name: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let t = Instant::now();
    let cpu = children_cpu_seconds();
    let r = f();
    let cpu = match (cpu, children_cpu_seconds()) {
        (Some(before), Some(after)) => {
            format!(", {:.1} s CPU", after - before)
        }
        _ => String::new(),
    };
    eprintln!(
        "xtask: step '{name}' {} in {:.1} s{cpu}",
        if r.is_ok() { "done" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    r
}

/// User + system time of this process's finished children, from `/proc/self/stat`
/// (`cutime`, `cstime`; clock ticks of 1/100 s). `None` where there is no procfs.
fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(13)? + ticks(14)?) / 100.0)
}

/// Seconds and seed of the fuzz smoke of `cargo xtask soak`. The seed
/// is fixed so that a failure reproduces with `cargo xtask fuzz --seed 1`.
const FUZZ_SMOKE: (&str, &str) = ("6", "1");

/// A short fuzz run: the release fuzzer from [`soak`]'s build, the process targets
/// against the debug `cfa` the workspace tests just built (building either again here
/// would recompile it with other features).
fn fuzz_smoke() -> Result<(), String> {
    let (seconds, seed) = FUZZ_SMOKE;
    let args = [
        "--seconds".to_owned(),
        seconds.to_owned(),
        "--seed".to_owned(),
        seed.to_owned(),
    ];
    fuzz_with(&args, false)
}

/// `cargo xtask fuzz [--seconds N] [--target NAME]... [--seed S] [--no-process]
/// [--crash-dir DIR]`: builds `cfa-fuzz` in release and `cfa` (debug, for the
/// process targets), then runs the fuzzer; fails on any finding.
fn fuzz(args: &[String]) -> Result<(), String> {
    fuzz_with(args, true)
}

/// Runs the fuzzer; `build`: build it (release) and the debug `cfa` first.
fn fuzz_with(args: &[String], build: bool) -> Result<(), String> {
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
    if build {
        run(
            &cargo,
            &["build", "--release", "--locked", "-p", "cfa-fuzz"],
        )?;
    }
    let mut fuzz_args: Vec<String> = args.to_vec();
    if needs_cfa {
        if build {
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

/// `cargo xtask browser`: the HTML reports in Debian's headless Chromium (the ignored
/// `report_browser` tests of the cfa-cli binary, built with the same arguments as the
/// `ci` nextest run, so after `ci` nothing is rebuilt). Chromium is installed with
/// `apt-get install -y chromium` when missing; CI runs as root, so a failed install
/// fails the step instead of skipping it.
fn browser() -> Result<(), String> {
    step("browser: chromium", ensure_chromium)?;
    let cargo = cargo();
    step("browser: reports in headless Chromium", || {
        run(
            &cargo,
            &[
                &CI_NEXTEST[..],
                &["--run-ignored", "only", "-E", "test(/^report_browser::/)"],
            ]
            .concat(),
        )
    })
}

/// `cargo xtask scale`: the scale-out suite (the ignored `scale_out` tests of the
/// cfa-cli binary, built with the same arguments as the `ci` nextest run): three `cfa
/// serve` replicas on one PostgreSQL chain on a durable throwaway cluster (30,000
/// decisions, a replica SIGKILLed mid-load, `pg_ctl restart` mid-load, a lease race).
/// One test at a time: each starts its own cluster and replicas, and the 2-core
/// budget is theirs.
fn scale() -> Result<(), String> {
    let cargo = cargo();
    step("scale: replicas on one PostgreSQL chain", || {
        run(
            &cargo,
            &[
                &CI_NEXTEST[..],
                &[
                    "--run-ignored",
                    "only",
                    "--test-threads",
                    "1",
                    "-E",
                    "test(/^scale_out::/)",
                ],
            ]
            .concat(),
        )
    })
}

/// `chromium --version` answers, else apt-get installs it (after an `apt-get update`
/// when the first attempt fails).
fn ensure_chromium() -> Result<(), String> {
    let chromium = std::env::var("CFA_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let works = || {
        Command::new(&chromium)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works() {
        return Ok(());
    }
    eprintln!("xtask: {chromium} not found: installing Debian's chromium (apt-get, needs root)");
    let installed = run("apt-get", &["install", "-y", "chromium"]).or_else(|_| {
        run("apt-get", &["update"])?;
        run("apt-get", &["install", "-y", "chromium"])
    });
    match installed {
        Ok(()) if works() => Ok(()),
        Ok(()) => Err(format!(
            "{chromium} still does not run after apt-get install -y chromium"
        )),
        Err(e) => Err(format!(
            "cannot install chromium ({e}): `cargo xtask browser` needs `apt-get install -y chromium` (root)"
        )),
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub(crate) fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), std::path::PathBuf::from)
}

pub(crate) const HELP: &str = "cargo xtask <command>

commands:
  all     what CI runs (bash .ci/run): `ci`, then `soak`, `browser`, `spark`,
          `scale` and `python`, each timed; stops at the first that fails
  ci      the checks and tests within the five-minute budget, with CARGO_INCREMENTAL=0:
            1. cargo fmt --all --check
            2. in the background: the Python venv setups (dbt, reference
               cfa-kernel, MCP SDK; logs in target/cfa-cache/*.setup.log)
            3. the lints of `clippy`, checked while the debug lane builds
               (clippy-driver as RUSTC_WORKSPACE_WRAPPER, -D warnings, as
               `cargo clippy` does): the examples and benches, then every
               target `test` builds, opt-in features on; no separate
               check-only build of the dependencies
            4. everything `test` runs
  test    every test of the debug build:
            1. the background jobs of `ci` step 2 (unless `ci` started them)
            2. the workspace's test binaries, opt-in features on (one build)
            3. doc tests (reusing that build's libraries)
            4. wait for the Python venvs, then nextest on the whole workspace
            --quick   the edit loop instead: nextest profile `quick` (default
                      features, incremental; skips PostgreSQL, the Python venvs,
                      dbt, the 10k-request load test and the 50 MB input test;
                      no doc tests)
  soak    what is too slow for a debug build (after `ci` in `all`): one
          release build of the soak suite and the fuzzer, the soak
          memory_flat (1,000,000 kernel calls, memory flat), then a 6 s fuzz
          smoke (seed 1) against the debug `cfa` of the `ci` build
  browser the HTML reports in Debian's headless Chromium (after `ci` in
          `all`): installs chromium with apt-get when missing (root; fails
          loudly otherwise), renders each `cfa report` page from a log written
          by real `cfa evaluate` runs, offline (proxy 127.0.0.1:9, no name
          resolves), checks the DOM's counts against the log and that the
          screenshot is not blank (the ignored cfa-cli tests report_browser::*,
          same build as `ci`'s nextest run); screenshots in
          target/report-browser/
  spark   generated PySpark on a local Spark session (after `browser` in
          `all`): scripts/spark-setup.sh (venv target/cfa-cache/venv-spark:
          pyspark 3.5 with Spark's jars, delta-spark's Python API; Java 17),
          then the ignored cfa-cli tests spark_run::* with CFA_SPARK_PYTHON
          (same build as `ci`'s nextest run): spark-mode scripts run on
          parquet fixtures and read back (rows, PII hashes, partitions, merge
          semantics), the Delta scripts checked against delta-spark's API,
          `cfa evaluate --sandbox spark` committing only validated runs
  scale   the scale-out suite (after `browser` in `all`, never in `ci`): three
          `cfa serve` replicas on one PostgreSQL 15 chain (throwaway cluster,
          fsync=on, synchronous_commit=on): 3 x 10,000 decisions -> one chain
          of exactly 30,000 events that verifies; a replica SIGKILLed mid-load
          loses no acknowledged decision; `pg_ctl restart` mid-load -> 500
          audit_error, never an unaudited 200, then recovery; a lease race has
          one holder (the ignored cfa-cli tests scale_out::*, one at a time,
          same build as `ci`'s nextest run; prints `SCALE:` figures).
          CFA_SCALE_BIN=target/release/cfa runs the replicas from a release build;
          the release-build figure is `bench --scale`
  fmt     format the workspace
  clippy  cargo clippy --workspace --all-targets -D warnings, default features
          and then with the opt-in features (cfa-resolve/llm, cfa-cli/otel)
  python  the Python package cfa-py (not built by ci/test/clippy above):
          clippy -p cfa-py -D warnings, the debug `cfa` as `test` builds it
          (a no-op after `ci`), then
          scripts/python-setup.sh (venv target/cfa-cache/venv-py, maturin +
          pytest; `pip install ./cfa-py` in cargo's dev profile) and
          pytest cfa-py/tests
  fuzz    structure-aware fuzzing of every parser and face (release build of
          cfa-fuzz; fails on any panic, hang or broken invariant)
            --seconds N    how long (default 60)
            --target NAME  only this target (repeatable; `cfa-fuzz --list`)
            --seed S       run seed (default from the clock; printed)
            --no-process   skip the `cfa mcp`/`cfa serve`/CLI process targets
            --crash-dir D  where failing inputs go (default target/fuzz/crashes)
  bench   the gates of docs/architecture.md#performance-gates (release build of
          cfa-gates; p50/p99 from an HDR histogram; fails when a gate is missed):
          evaluate, JSON → decision, audited decisions (sequential and 8/32
          threads through one JSONL store, fsync batch:64), the full kernel
          (executed runs, flatness, RSS), the 10…10,000-rule bundle sweep,
          and a timer-floor measurement
            --cold-start   also build `cfa` (release) and time whole processes
                           (`cfa policy check` cold start, `cfa audit verify` of
                           a 100k-event chain) and `cfa serve` /v1/decisions
                           under HTTP load, with and without --audit-log
                           (cfa-load: 32 keep-alive connections, 10 s)
            --vs-reference the same plus the Python reference cfa-kernel 1.1.0
                           timed in the same run (venv from
                           scripts/reference-audit-verify.sh --setup, timings
                           by scripts/bench-reference.py): one table of ours,
                           the reference and the ratio
            --write-readme replace the README's Performance table (between the
                           bench-table markers) with this run's
            --calls N      full-kernel calls (default 200,000; 1,000,000 for
                           the flatness claim)
            --cold-page-cache  time the full kernel without first writing and
                           deleting twice its log (this VM hands long-free
                           memory back to its host, and a log growing into it
                           slows down: docs/development.md)
            --http-seconds N  measured seconds per HTTP load run (default 10)
            --criterion    also run the criterion benches (cargo bench)
            --scale        only the scale-out figure: one release build of cfa
                           and cfa-scale, then three release replicas on one
                           durable throwaway PostgreSQL 15 chain (fsync=on,
                           synchronous_commit=on) driven by the bounded load
                           generator at 16, 64 and 128 keep-alive connections
                           per replica; prints decisions/s, p50/p99, events per
                           commit, commits/s and where the CPU went, then
                           verifies the chain (fails on a non-2xx or a broken
                           chain, never on a rate; -- --connections 32,256
                           --seconds 5 …: `cfa-scale --help`)
            --python       only the Python package against the reference:
                           cfa-py built in release into venv-py, the
                           reference's venv, scripts/bench-python.py (guard
                           overhead and check, p50/p99 and ratios; prints,
                           never fails on a missed goal)
            -- ARGS        passed to cfa-gates (--budget-ms N, --runs N,
                           --slack X, --threads N,N, --http-connections N, …;
                           `cfa-gates --help`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("all") => all(),
        Some("ci") => ci(),
        Some("test") => test_cmd(args.get(1..).unwrap_or_default()),
        Some("fmt") => run(&cargo(), &["fmt", "--all"]),
        Some("clippy") => lint(),
        Some("python") => python(),
        Some("bench") => bench::bench(args.get(1..).unwrap_or_default()),
        Some("fuzz") => fuzz(args.get(1..).unwrap_or_default()),
        Some("browser") => browser(),
        Some("soak") => soak(),
        Some("spark") => spark::spark(),
        Some("scale") => scale(),
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
