//! `cargo xtask bench`: builds the gate runner (and, for the whole-process, HTTP and
//! reference rows, the release `cfa`) in one release build, sets up the reference's
//! virtualenv when asked, and runs `cfa-gates` (docs/development.md#cargo-xtask-bench).

use crate::{HELP, cargo, python_setup, run, target_dir, workspace_root};
use std::path::PathBuf;

/// What `cargo xtask bench ARGS` asked for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BenchArgs {
    /// Also run the criterion benches.
    pub criterion: bool,
    /// Build `cfa` and time whole processes and `cfa serve`.
    pub processes: bool,
    /// Time the Python reference in the same run.
    pub vs_reference: bool,
    /// Rewrite the README's Performance table.
    pub write_readme: bool,
    /// Only the Python package against the reference (scripts/bench-python.py).
    pub python: bool,
    /// Only the scale-out measurement: release `cfa` replicas on one PostgreSQL chain
    /// (`cfa-scale`).
    pub scale: bool,
    /// Arguments for `cfa-gates`.
    pub gate_args: Vec<String>,
}

/// Parses `cargo xtask bench` arguments (`--vs-reference` implies `--cold-start`).
pub(crate) fn parse(args: &[String]) -> Result<BenchArgs, String> {
    let mut b = BenchArgs::default();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--criterion" => b.criterion = true,
            "--cold-start" | "--cli" => b.processes = true,
            "--vs-reference" => {
                b.vs_reference = true;
                b.processes = true;
            }
            "--write-readme" => b.write_readme = true,
            "--python" => b.python = true,
            "--scale" => b.scale = true,
            "--cold-page-cache" => b.gate_args.push(a.clone()),
            "--calls" | "--http-seconds" => {
                let v = rest
                    .next()
                    .ok_or_else(|| format!("bench: {a} needs a value"))?;
                b.gate_args.extend([a.clone(), v.clone()]);
            }
            "--" => b.gate_args.extend(rest.by_ref().cloned()),
            other => return Err(format!("bench: unknown argument '{other}'\n\n{HELP}")),
        }
    }
    Ok(b)
}

/// The reference's virtualenv (the one scripts/reference-audit-verify.sh creates).
fn reference_python() -> PathBuf {
    let cache = std::env::var_os("CFA_CACHE_DIR")
        .map_or_else(|| workspace_root().join("target/cfa-cache"), PathBuf::from);
    cache.join("venv-ref").join("bin").join("python")
}

fn utf8(p: &std::path::Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("bench: {} is not UTF-8", p.display()))
}

/// `cargo xtask bench [--cold-start] [--vs-reference] [--write-readme] [--calls N]
/// [--http-seconds N] [--criterion] [-- CFA-GATES-ARGS]`.
pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let b = parse(args)?;
    if b.python {
        return python_bench(&b.gate_args);
    }
    if b.scale {
        return scale_bench(&b.gate_args);
    }
    let cargo = cargo();
    let root = workspace_root();
    let mut build = vec![
        "build",
        "--release",
        "--locked",
        "-p",
        "cfa-benches",
        "--bin",
        "cfa-gates",
    ];
    if b.processes {
        // One build: the CLI and the gate runner share their dependencies' features.
        build.extend(["-p", "cfa-cli", "--bin", "cfa"]);
    }
    run(&cargo, &build)?;
    let release = target_dir().join("release");
    let mut gate_args = b.gate_args.clone();
    if b.processes {
        gate_args.extend(["--cfa-bin".to_owned(), utf8(&release.join("cfa"))?]);
    }
    if b.vs_reference {
        let script = root.join("scripts/reference-audit-verify.sh");
        run("bash", &[&utf8(&script)?, "--setup"])?;
        gate_args.extend([
            "--reference-python".to_owned(),
            utf8(&reference_python())?,
            "--reference-script".to_owned(),
            utf8(&root.join("scripts/bench-reference.py"))?,
        ]);
    }
    if b.write_readme {
        let shown: Vec<&str> = args.iter().map(String::as_str).collect();
        gate_args.extend([
            "--write-readme".to_owned(),
            utf8(&root.join("README.md"))?,
            "--command".to_owned(),
            format!("cargo xtask bench {}", shown.join(" ")),
        ]);
    }
    let refs: Vec<&str> = gate_args.iter().map(String::as_str).collect();
    let gate_result = run(&utf8(&release.join("cfa-gates"))?, &refs);
    if b.criterion {
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
    gate_result.map_err(|e| format!("gates missed or failed: {e}"))
}

/// `cargo xtask bench --scale [-- ARGS]`: one release build of `cfa` and `cfa-scale`,
/// then `cfa-scale --cfa-bin target/release/cfa ARGS` (three replicas on a durable
/// throwaway PostgreSQL 15 cluster; `--connections 16,64,128`, `--seconds N`, …). It
/// fails when a response is not 2xx or the chain does not verify, never on a rate.
fn scale_bench(extra: &[String]) -> Result<(), String> {
    run(
        &cargo(),
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "cfa-benches",
            "--bin",
            "cfa-scale",
            "-p",
            "cfa-cli",
            "--bin",
            "cfa",
        ],
    )?;
    let release = target_dir().join("release");
    let cfa = utf8(&release.join("cfa"))?;
    let mut args = vec!["--cfa-bin", cfa.as_str()];
    args.extend(extra.iter().map(String::as_str));
    run(&utf8(&release.join("cfa-scale"))?, &args)
}

/// `cargo xtask bench --python [-- ARGS]`: installs the Python package built in release
/// into its venv (scripts/python-setup.sh --release), sets up the reference's venv, and
/// runs scripts/bench-python.py with both (ARGS: `--budget-ms N`, `--runs N`, `--json`).
/// It prints figures and ratios; it does not fail on a missed goal.
fn python_bench(extra: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let ours = python_setup(
        &utf8(&root.join("scripts/python-setup.sh"))?,
        &["--release"],
    )?;
    run(
        "bash",
        &[
            &utf8(&root.join("scripts/reference-audit-verify.sh"))?,
            "--setup",
        ],
    )?;
    let script = utf8(&root.join("scripts/bench-python.py"))?;
    let reference = utf8(&reference_python())?;
    let mut args = vec![
        script.as_str(),
        "--ours",
        ours.as_str(),
        "--reference",
        reference.as_str(),
    ];
    args.extend(extra.iter().map(String::as_str));
    run("python3", &args)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn vs_reference_implies_the_process_rows() {
        let b = parse(&args(&["--vs-reference", "--calls", "1000000"])).unwrap();
        assert!(b.vs_reference && b.processes && !b.write_readme && !b.criterion);
        assert_eq!(b.gate_args, args(&["--calls", "1000000"]));
    }

    #[test]
    fn passes_the_rest_to_cfa_gates() {
        let b = parse(&args(&[
            "--cold-start",
            "--write-readme",
            "--http-seconds",
            "3",
            "--",
            "--runs",
            "5",
        ]))
        .unwrap();
        assert!(b.processes && b.write_readme && !b.vs_reference);
        assert_eq!(b.gate_args, args(&["--http-seconds", "3", "--runs", "5"]));
        let cold = parse(&args(&["--cold-page-cache", "--calls", "9"])).unwrap();
        assert_eq!(cold.gate_args, args(&["--cold-page-cache", "--calls", "9"]));
        assert!(parse(&args(&["--calls"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
        assert_eq!(parse(&[]).unwrap(), BenchArgs::default());
        let py = parse(&args(&["--python", "--", "--runs", "1"])).unwrap();
        assert!(py.python && !py.processes);
        assert_eq!(py.gate_args, args(&["--runs", "1"]));
        let scale = parse(&args(&["--scale", "--", "--connections", "64"])).unwrap();
        assert!(scale.scale && !scale.python && !scale.processes);
        assert_eq!(scale.gate_args, args(&["--connections", "64"]));
    }
}
