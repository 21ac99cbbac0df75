//! [`SandboxRegistry`]: sandbox factories by name; the built-ins register themselves.

use crate::error::{SandboxError, UnknownSandbox};
use crate::mock::{MockConfig, MockSandbox};
use crate::panic_sandbox::PanicSandbox;
use crate::sandbox::Sandbox;
use std::collections::BTreeMap;

/// What a factory may use to build a sandbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxOptions {
    /// Connection string of a database sandbox (`postgres`).
    pub dsn: Option<String>,
    /// Value of the `cfa.partition_start` session setting (`postgres`).
    pub partition_start: Option<String>,
    /// Mock configuration (`mock`, and the healthy steps of `panic`).
    pub mock: MockConfig,
    /// The step `panic` interrupts (default `extract_nfe`, else the plan's first step).
    pub panic_on_step: Option<String>,
    /// The `spark` sandbox's python and warehouse.
    pub spark: SparkOptions,
}

/// What the `spark` factory reads (see [`crate::SparkSandbox`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparkOptions {
    /// The virtualenv's python; else `$CFA_SPARK_PYTHON` ([`crate::SPARK_PYTHON_ENV`]).
    pub python: Option<std::path::PathBuf>,
    /// The directory holding the source and target tables (parquet).
    pub warehouse: Option<std::path::PathBuf>,
}

/// Builds a sandbox from options.
pub type SandboxFactory =
    Box<dyn Fn(&SandboxOptions) -> Result<Box<dyn Sandbox>, SandboxError> + Send + Sync>;

/// Sandbox factories by name.
pub struct SandboxRegistry {
    factories: BTreeMap<String, SandboxFactory>,
}

impl std::fmt::Debug for SandboxRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for SandboxRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl SandboxRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        SandboxRegistry {
            factories: BTreeMap::new(),
        }
    }

    /// `mock`, `panic`, `spark` and (with the `postgres` feature) `postgres`.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        r.factories.insert(
            "mock".into(),
            Box::new(|o: &SandboxOptions| {
                Ok(Box::new(MockSandbox::new(o.mock.clone())) as Box<dyn Sandbox>)
            }),
        );
        r.factories.insert(
            "panic".into(),
            Box::new(|o: &SandboxOptions| {
                let mut p = PanicSandbox::default();
                if let Some(step) = &o.panic_on_step {
                    // A step named on purpose is interrupted exactly, or the run fails.
                    step.clone_into(&mut p.panic_on_step);
                    p.first_step_when_absent = false;
                }
                p.inner = Box::new(MockSandbox::new(o.mock.clone()));
                Ok(Box::new(p) as Box<dyn Sandbox>)
            }),
        );
        r.factories.insert(
            "spark".into(),
            Box::new(|o: &SandboxOptions| {
                let python = o
                    .spark
                    .python
                    .clone()
                    .or_else(|| {
                        std::env::var_os(crate::SPARK_PYTHON_ENV)
                            .filter(|p| !p.is_empty())
                            .map(std::path::PathBuf::from)
                    })
                    .ok_or_else(|| {
                        SandboxError::failure(
                            "spark",
                            "start",
                            format!(
                                "the python of the Spark virtualenv is required: set ${} (scripts/spark-setup.sh prints it) or the config's execution.spark.python",
                                crate::SPARK_PYTHON_ENV
                            ),
                        )
                    })?;
                let warehouse = o.spark.warehouse.clone().ok_or_else(|| {
                    SandboxError::failure(
                        "spark",
                        "start",
                        "a warehouse directory holding the parquet tables is required (--spark-warehouse DIR or the config's execution.spark.warehouse)",
                    )
                })?;
                let mut config = crate::spark_sandbox::SparkConfig::new(python, warehouse);
                config.partition_start.clone_from(&o.partition_start);
                Ok(Box::new(crate::spark_sandbox::SparkSandbox::new(config)?) as Box<dyn Sandbox>)
            }),
        );
        #[cfg(feature = "postgres")]
        r.factories.insert(
            "postgres".into(),
            Box::new(|o: &SandboxOptions| {
                let dsn = o.dsn.as_deref().ok_or_else(|| {
                    SandboxError::failure(
                        "postgres",
                        "connect",
                        "a connection string (--dsn) is required",
                    )
                })?;
                let config = crate::postgres_sandbox::PostgresConfig {
                    partition_start: o.partition_start.clone(),
                    ..crate::postgres_sandbox::PostgresConfig::default()
                };
                Ok(
                    Box::new(crate::postgres_sandbox::PostgresSandbox::connect_with(
                        dsn, config,
                    )?) as Box<dyn Sandbox>,
                )
            }),
        );
        r
    }

    /// Registers a plugin factory under `name`; a taken name is an error.
    pub fn register(&mut self, name: &str, factory: SandboxFactory) -> Result<(), SandboxError> {
        if self.factories.contains_key(name) {
            return Err(SandboxError::Duplicate(name.to_owned()));
        }
        self.factories.insert(name.to_owned(), factory);
        Ok(())
    }

    /// Builds the sandbox `name`.
    pub fn create(
        &self,
        name: &str,
        options: &SandboxOptions,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        match self.factories.get(name) {
            Some(f) => f(options),
            None => Err(UnknownSandbox {
                name: name.to_owned(),
                available: self.names(),
            }
            .into()),
        }
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }
}
