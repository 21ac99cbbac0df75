//! The PySpark backend's output mode and the `spark` sandbox's settings, as `cfa.yaml`
//! and the flags give them:
//!
//! ```yaml
//! backends:
//!   pyspark: { mode: spark }         # delta (the default) | spark
//! execution:
//!   sandbox: spark
//!   partition_start: "2026-01-01"
//!   spark:
//!     python: target/cfa-cache/venv-spark/bin/python   # else $CFA_SPARK_PYTHON
//!     warehouse: warehouse                             # <warehouse>/<dataset>/ parquet
//! ```
//!
//! Relative paths are resolved against the config file's directory. `--spark-warehouse`
//! beats `execution.spark.warehouse`; `execution.spark.python` beats
//! `$CFA_SPARK_PYTHON`. `cfa evaluate --sandbox spark` always generates in the `spark`
//! mode (the sandbox runs nothing else).

use crate::config::CfaConfig;
use cfa::codegen::{BackendOptions, BackendRegistry, PySparkConfig, PySparkMode};
use cfa::execute::SparkOptions;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `backends` section as written (unknown keys are errors).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSettings {
    /// `backends.pyspark`.
    #[serde(default)]
    pub pyspark: Option<PySparkConfig>,
}

impl BackendSettings {
    /// The backend options these settings give (unset: the defaults).
    pub fn options(&self) -> BackendOptions {
        BackendOptions {
            pyspark: self.pyspark.unwrap_or_default(),
            ..BackendOptions::default()
        }
    }
}

/// `execution.spark` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparkSettings {
    /// The Spark virtualenv's python.
    pub python: Option<String>,
    /// The directory holding the parquet tables.
    pub warehouse: Option<String>,
}

/// The backends `cfa generate` and `cfa evaluate` generate with: the config's
/// `backends` options, with the PySpark mode forced to `spark` when `spark_sandbox`.
pub fn registry(cfg: Option<&CfaConfig>, spark_sandbox: bool) -> BackendRegistry {
    let mut options = cfg.map(|c| c.backends.clone()).unwrap_or_default();
    if spark_sandbox {
        options.pyspark.mode = PySparkMode::Spark;
    }
    BackendRegistry::with_options(&options)
}

fn relative_to_config(cfg: &CfaConfig, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    cfg.path
        .parent()
        .map_or_else(|| p.to_path_buf(), |d| d.join(p))
}

/// The `spark` sandbox's python and warehouse: `--spark-warehouse`, else the config's
/// (relative to its directory); python from the config, else the factory reads
/// `$CFA_SPARK_PYTHON`.
pub fn options(warehouse_flag: Option<&Path>, cfg: Option<&CfaConfig>) -> SparkOptions {
    let settings = cfg.map(|c| (c, &c.execution.spark));
    SparkOptions {
        python: settings.and_then(|(c, s)| s.python.as_deref().map(|p| relative_to_config(c, p))),
        warehouse: warehouse_flag.map(Path::to_path_buf).or_else(|| {
            settings.and_then(|(c, s)| s.warehouse.as_deref().map(|p| relative_to_config(c, p)))
        }),
    }
}
