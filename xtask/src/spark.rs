//! `cargo xtask spark`: generated PySpark on a real local Spark session. Slow (Spark's
//! JVM starts three times), so it is its own step: `cargo xtask all` runs it after
//! `browser`; `ci` and the quick loop never do (its tests are `#[ignore]`d).

use crate::{CI_NEXTEST, python_setup, step, workspace_root};
use std::process::Command;

/// The ignored tests this step runs: cfa-cli's `spark_run::*`.
const FILTER: &str = "test(/^spark_run::/)";

/// Creates (or reuses) the Spark virtualenv (scripts/spark-setup.sh: PySpark, whose
/// package carries Spark's jars, and delta-spark's Python API; needs Java 17), then
/// runs the ignored `spark_run` tests of cfa-cli with `CFA_SPARK_PYTHON` naming its
/// python, from the build `ci` made (no recompilation after `ci`).
pub(crate) fn spark() -> Result<(), String> {
    let setup = workspace_root().join("scripts").join("spark-setup.sh");
    let setup = setup.to_str().ok_or("spark: workspace path is not UTF-8")?;
    let mut python = String::new();
    step("spark: virtualenv (scripts/spark-setup.sh)", || {
        python = python_setup(setup, &[])?;
        Ok(())
    })?;
    step("spark: generated PySpark on local Spark", || {
        let cargo = crate::cargo();
        let args = [&CI_NEXTEST[..], &["--run-ignored", "only", "-E", FILTER]].concat();
        eprintln!(
            "xtask: running {cargo} {} with CFA_SPARK_PYTHON={python}",
            args.join(" ")
        );
        let mut cmd = Command::new(&cargo);
        // As `ci` builds: incremental compilation off unless the caller chose.
        if std::env::var_os("CARGO_INCREMENTAL").is_none() {
            cmd.env("CARGO_INCREMENTAL", "0");
        }
        let status = cmd
            .args(&args)
            .env("CFA_SPARK_PYTHON", &python)
            .status()
            .map_err(|e| format!("cannot start {cargo}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the Spark tests failed ({status})"))
        }
    })
}
