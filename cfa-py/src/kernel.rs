//! `Kernel`: the governed flow (formalize, govern, generate, validate, execute) built
//! once as `cfa evaluate` builds it, reusable across calls and threads.

use crate::audit::PyVerifyReport;
use crate::decision::{enum_str, fault_list};
use crate::ids::FastUuids;
use crate::recent::RecentResolution;
use crate::{convert, load};
use cfa::execute::{
    ExecutionConfig, MockConfig, RetryPolicy, RuntimeThresholds, RuntimeValidator, SandboxOptions,
    SandboxRegistry,
};
use cfa::lifecycle::{
    DEFAULT_HISTORY_CAP, ExecutionService, LifecycleDb, LifecycleExecution, MemoryStateStore,
    PromotionEngine, PromotionPolicy, StateStore,
};
use cfa::resolve::{KeywordPack, RuleBasedNormalizer};
use cfa::{
    AuditStore, Durability, Grounding, JsonlStore, Kernel, KernelConfig, KernelResult, MemoryStore,
    SystemClock, VerifyOptions,
};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// The lease lifetime `cfa evaluate` uses by default, seconds.
const LEASE_TTL_SECS: u32 = 600;

/// How many events an in-memory audit log keeps by default (`audit_keep=`): about
/// 1 KB each, so a kernel without `audit_log=` holds a few MB at most however long it
/// runs.
pub const DEFAULT_AUDIT_KEEP: usize = 4096;

/// A kernel built once and reused: `evaluate(intent)` decides any number of intents,
/// from any number of threads (the GIL is released while the kernel runs).
#[pyclass(frozen, module = "cfa._native", name = "Kernel")]
pub struct PyKernel {
    kernel: Kernel,
    store: Arc<dyn AuditStore>,
    audit_log: Option<PathBuf>,
    policy_source: String,
}

fn build_error(py: Python<'_>, what: String) -> PyErr {
    load::raise(py, "CfaError", (what,))
}

#[pymethods]
impl PyKernel {
    /// `Kernel(catalog=None, bundle=None, audit_log=None, db=None, sandbox="mock",
    /// backend="pyspark", lenient=False, warnings_blocking=False, normalizer="rule_based",
    /// generate=True, audit_keep=4096)`; `generate=False` stops after govern (no plan,
    /// code or static validation, and so no execution). Without `audit_log` the chain
    /// is kept in memory, bounded: the chain head and the last `audit_keep` events
    /// (`None`: every event).
    #[new]
    #[pyo3(signature = (catalog=None, bundle=None, audit_log=None, db=None, sandbox=Some("mock".to_owned()), backend=None, lenient=false, warnings_blocking=false, normalizer="rule_based", generate=true, audit_keep=Some(DEFAULT_AUDIT_KEEP)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        catalog: Option<&Bound<'_, PyAny>>,
        bundle: Option<&Bound<'_, PyAny>>,
        audit_log: Option<PathBuf>,
        db: Option<PathBuf>,
        sandbox: Option<String>,
        backend: Option<String>,
        lenient: bool,
        warnings_blocking: bool,
        normalizer: &str,
        generate: bool,
        audit_keep: Option<usize>,
    ) -> PyResult<Self> {
        let policy = load::policy(py, bundle)?;
        let catalog =
            load::catalog(py, catalog)?.map_or_else(cfa::Catalog::empty, |c| c.catalog.clone());
        let packs = match normalizer {
            "rule_based" => vec![KeywordPack::english()],
            "rule_based_pt" => vec![KeywordPack::english(), KeywordPack::portuguese()],
            other => {
                return Err(build_error(
                    py,
                    format!("unknown normalizer '{other}' (rule_based, rule_based_pt)"),
                ));
            }
        };
        let sandbox = sandbox.filter(|s| s != "none");
        let mut kc = KernelConfig::new(policy.engine.clone(), catalog);
        kc.policy_bundle_hash = policy.hash.clone();
        kc.backend = backend.unwrap_or_else(|| "pyspark".to_owned());
        kc.warnings_are_blocking = warnings_blocking;
        kc.phases.generate = generate;
        kc.grounding = if lenient {
            Grounding::Lenient
        } else {
            Grounding::Strict
        };
        let store: Arc<dyn AuditStore> = match &audit_log {
            Some(path) => Arc::new(JsonlStore::open(path, Durability::Always).map_err(|e| {
                build_error(
                    py,
                    format!("cannot open the audit log {}: {e}", path.display()),
                )
            })?),
            None => Arc::new(match audit_keep {
                Some(0) => {
                    return Err(build_error(
                        py,
                        "audit_keep must be at least 1 (None keeps every event)".into(),
                    ));
                }
                Some(n) => MemoryStore::keeping_last(n),
                None => MemoryStore::new(),
            }),
        };
        let mut builder = Kernel::builder(kc)
            .normalizer(RecentResolution::new(RuleBasedNormalizer::new(packs)))
            .audit(store.clone())
            .ids(FastUuids)
            .clock(SystemClock);
        if let Some(name) = sandbox {
            builder = builder.executor(execution(py, &name, db.as_ref())?);
        } else if db.is_some() {
            return Err(build_error(
                py,
                "db= records executions: it needs a sandbox (mock or panic)".into(),
            ));
        }
        let kernel = builder
            .build()
            .map_err(|e| build_error(py, e.to_string()))?;
        Ok(Self {
            kernel,
            store,
            audit_log,
            policy_source: policy.source.clone(),
        })
    }

    /// Runs the governed flow on `intent` and returns the kernel result. Never raises
    /// for a decision: any failure blocks (see `KernelResult.blocked_reason`).
    fn evaluate(&self, py: Python<'_>, intent: &str) -> PyResult<PyKernelResult> {
        let (result, flushed) = py.detach(|| {
            let r = self.kernel.process(intent);
            (r, self.store.flush())
        });
        flushed.map_err(|e| build_error(py, format!("cannot flush the audit log: {e}")))?;
        Ok(PyKernelResult {
            intent: intent.to_owned(),
            inner: Box::new(result),
        })
    }

    /// Verifies this kernel's audit chain (the file when `audit_log` was given, else the
    /// in-memory log: every kept event's hash and link, the first kept event's link to
    /// the recorded hash of the last one let go; `events` counts the kept events).
    fn verify_audit(&self, py: Python<'_>) -> PyResult<PyVerifyReport> {
        let report = py
            .detach(|| self.store.verify(&VerifyOptions::default()))
            .map_err(|e| load::raise(py, "AuditError", (e.to_string(),)))?;
        let file = self
            .audit_log
            .as_ref()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        Ok(PyVerifyReport::new(report, file, None))
    }

    /// The number of audit events written so far (in memory: the ones let go included).
    fn audit_len(&self, py: Python<'_>) -> PyResult<u64> {
        self.store
            .len()
            .map_err(|e| load::raise(py, "AuditError", (e.to_string(),)))
    }

    /// The audit log path, or `None` for an in-memory log.
    #[getter]
    fn audit_log(&self) -> Option<PathBuf> {
        self.audit_log.clone()
    }

    /// How the bundle was named (`default`, a built-in name, or the path).
    #[getter]
    fn policy_source(&self) -> &str {
        &self.policy_source
    }

    fn __repr__(&self) -> String {
        format!(
            "Kernel(bundle={:?}, audit_log={:?})",
            self.policy_source, self.audit_log
        )
    }
}

/// The execute slot `cfa evaluate --sandbox NAME [--db FILE]` builds with its defaults.
fn execution(py: Python<'_>, name: &str, db: Option<&PathBuf>) -> PyResult<LifecycleExecution> {
    if !matches!(name, "mock" | "panic") {
        return Err(build_error(
            py,
            format!("unknown sandbox '{name}' (mock, panic, or None for no execution)"),
        ));
    }
    let opts = SandboxOptions {
        dsn: None,
        partition_start: None,
        mock: MockConfig::default(),
        panic_on_step: None,
        ..SandboxOptions::default()
    };
    let sandbox = SandboxRegistry::with_builtins()
        .create(name, &opts)
        .map_err(|e| build_error(py, format!("cannot create the {name} sandbox: {e}")))?;
    let db = match db {
        Some(path) => Some(Arc::new(LifecycleDb::open(path).map_err(|e| {
            build_error(
                py,
                format!("cannot open the lifecycle database {}: {e}", path.display()),
            )
        })?)),
        None => None,
    };
    let store: Arc<dyn StateStore> = match &db {
        Some(db) => db.clone(),
        None => Arc::new(MemoryStateStore::new(DEFAULT_HISTORY_CAP)),
    };
    let service = ExecutionService {
        sandbox,
        config: ExecutionConfig {
            retry: RetryPolicy::default(),
            validator: RuntimeValidator::new(RuntimeThresholds::default()),
            ..ExecutionConfig::default()
        },
        store,
        db,
        leases: cfa::lifecycle::LeasePolicy::default(),
        engine: PromotionEngine::new(PromotionPolicy::default(), env!("CARGO_PKG_VERSION")),
        holder: format!("cfa-{}", std::process::id()),
        lease_ttl_secs: LEASE_TTL_SECS,
    };
    Ok(LifecycleExecution::new(
        service,
        Box::new(jiff::Timestamp::now),
    ))
}

/// What the kernel decided for one intent.
#[pyclass(frozen, module = "cfa._native", name = "KernelResult")]
pub struct PyKernelResult {
    intent: String,
    // Boxed: inline it would make every result object too large for Python's
    // small-object allocator.
    inner: Box<KernelResult>,
}

#[pymethods]
impl PyKernelResult {
    /// The intent text.
    #[getter]
    fn intent(&self) -> &str {
        &self.intent
    }
    /// The final state (`approved`, `approved_with_warnings`, `blocked`, …).
    #[getter]
    fn state(&self) -> String {
        enum_str(&self.inner.state)
    }
    /// True when the work may run (`approved` or `approved_with_warnings`).
    #[getter]
    fn executable(&self) -> bool {
        self.inner.is_executable()
    }
    /// Same as `executable`.
    #[getter]
    fn passed(&self) -> bool {
        self.inner.is_executable()
    }
    /// True when the work may not run.
    #[getter]
    fn blocked(&self) -> bool {
        !self.inner.is_executable()
    }
    /// True when any fault is a warning.
    #[getter]
    fn has_warnings(&self) -> bool {
        self.inner.has_warnings()
    }
    /// Why the run did not end approved (`""` when approved).
    #[getter]
    fn blocked_reason(&self) -> &str {
        &self.inner.blocked_reason
    }
    /// Faults of every phase.
    #[getter]
    fn faults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        fault_list(py, &self.inner.faults)
    }
    /// The fault codes of every phase, in order.
    #[getter]
    fn fault_codes(&self) -> Vec<String> {
        self.inner
            .faults
            .iter()
            .map(|f| f.code.to_string())
            .collect()
    }
    /// The fault codes of the last policy evaluation.
    #[getter]
    fn policy_fault_codes(&self) -> Vec<String> {
        self.inner
            .policy_result
            .as_ref()
            .map(|p| p.faults.iter().map(|f| f.code.to_string()).collect())
            .unwrap_or_default()
    }
    /// The last policy action (`approve`, `replan`, `block`), or `None`.
    #[getter]
    fn policy_action(&self) -> Option<String> {
        self.inner
            .policy_result
            .as_ref()
            .map(|p| enum_str(&p.action))
    }
    /// Replans applied.
    #[getter]
    fn replan_count(&self) -> u32 {
        self.inner.replan_count
    }
    /// The kernel's id for this intent.
    #[getter]
    fn intent_id(&self) -> &str {
        &self.inner.intent_id
    }
    /// This decision's id.
    #[getter]
    fn decision_id(&self) -> &str {
        &self.inner.decision_id
    }
    /// The governed signature's hash (`""` without one).
    #[getter]
    fn signature_hash(&self) -> &str {
        &self.inner.signature_hash
    }
    /// The governed signature's content hash (`""` without one).
    #[getter]
    fn content_hash(&self) -> &str {
        &self.inner.content_hash
    }
    /// The bundle version.
    #[getter]
    fn policy_bundle(&self) -> &str {
        &self.inner.policy_bundle
    }
    /// `event_hash` of every audit event written for this intent.
    #[getter]
    fn audit_event_hashes(&self) -> Vec<String> {
        self.inner.audit_event_hashes.clone()
    }
    /// The governed signature as a dict, or `None`.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self
            .inner
            .signature
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        convert::to_py(py, &v)
    }
    /// The whole result as `cfa evaluate -f json` prints it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.json())
    }
    /// [`to_dict`](Self::to_dict) as JSON text.
    fn to_json(&self) -> String {
        self.json().to_string()
    }
    fn __bool__(&self) -> bool {
        self.inner.is_executable()
    }
    fn __repr__(&self) -> String {
        format!(
            "KernelResult(state={:?}, faults={:?}, replan_count={})",
            self.state(),
            self.fault_codes(),
            self.inner.replan_count
        )
    }
}

impl PyKernelResult {
    /// `{"intent": …}`, every field of the kernel result, then `lifecycle` when the
    /// execute phase reported one (the shape of `cfa evaluate -f json`).
    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("intent".into(), self.intent.clone().into());
        if let Ok(Value::Object(fields)) = serde_json::to_value(&self.inner) {
            m.extend(fields);
        }
        if let Some(lifecycle) = self
            .inner
            .execution
            .as_ref()
            .and_then(|e| e.details.get("lifecycle"))
        {
            m.insert("lifecycle".into(), lifecycle.clone());
        }
        Value::Object(m)
    }
}
