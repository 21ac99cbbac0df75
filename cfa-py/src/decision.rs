//! `check()`, [`PyChecker`] and [`PySignature`] (a bundle, a catalog and a signature
//! read once, decided many times), and the typed results they and the kernel return:
//! [`PyDecision`] (a policy decision of one signature) and [`PyFault`].

use crate::convert;
use crate::ids::{self, FastUuids};
use crate::load::{self, LoadedCatalog, LoadedPolicy};
use cfa::kernel::{Decision, PolicyCheck};
use cfa::{Fault, PolicyResult, StateSignature, SystemClock};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// The JSON string of a unit enum (`"approve"`, `"high"`, …).
pub fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One fault: what fired, how bad, and what to do about it.
#[pyclass(frozen, module = "cfa._native", name = "Fault")]
#[derive(Debug, Clone)]
pub struct PyFault {
    inner: Fault,
}

impl PyFault {
    /// Wraps a fault.
    pub fn new(inner: Fault) -> Self {
        Self { inner }
    }
}

/// Faults as a Python list of [`PyFault`].
pub fn fault_list<'py>(py: Python<'py>, faults: &[Fault]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, faults.iter().map(|f| PyFault::new(f.clone())))
}

#[pymethods]
impl PyFault {
    /// The fault code, e.g. `GOVERNANCE_PII_WITHOUT_POLICY`.
    #[getter]
    fn code(&self) -> &str {
        self.inner.code.as_str()
    }
    /// The fault family (`governance`, `semantic`, …).
    #[getter]
    fn family(&self) -> String {
        enum_str(&self.inner.family)
    }
    /// The severity (`critical`, `high`, `medium`, `low`, `warning`).
    #[getter]
    fn severity(&self) -> String {
        enum_str(&self.inner.severity)
    }
    /// The phase that raised it.
    #[getter]
    fn stage(&self) -> &str {
        self.inner.stage.as_str()
    }
    /// The human message.
    #[getter]
    fn message(&self) -> &str {
        self.inner.message.as_str()
    }
    /// The action the fault mandates (`approve`, `replan`, `block`).
    #[getter]
    fn mandatory_action(&self) -> String {
        enum_str(&self.inner.mandatory_action)
    }
    /// What to change, one line each.
    #[getter]
    fn remediation(&self) -> Vec<String> {
        self.inner
            .remediation
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    /// True when found before anything ran.
    #[getter]
    fn detected_before_execution(&self) -> bool {
        self.inner.detected_before_execution
    }
    /// The fault as the JSON outputs write it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(
            py,
            &serde_json::to_value(&self.inner).unwrap_or(Value::Null),
        )
    }
    fn __repr__(&self) -> String {
        format!(
            "Fault(code={:?}, severity={:?}, family={:?})",
            self.inner.code.as_str(),
            self.severity(),
            self.family()
        )
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyFault>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
}

/// A parsed, validated signature with its hashes, each computed once, on first use.
#[derive(Debug)]
pub struct ParsedSignature {
    signature: StateSignature,
    signature_hash: OnceLock<String>,
    content_hash: OnceLock<String>,
}

impl ParsedSignature {
    fn new(signature: StateSignature) -> Self {
        Self {
            signature,
            signature_hash: OnceLock::new(),
            content_hash: OnceLock::new(),
        }
    }
    fn signature_hash(&self) -> &str {
        self.signature_hash
            .get_or_init(|| self.signature.signature_hash())
    }
    fn content_hash(&self) -> &str {
        self.content_hash
            .get_or_init(|| self.signature.content_hash())
    }
}

/// A signature parsed and validated once (`Signature(dict_or_json_text)`), to decide
/// it any number of times without reading it again; its hashes are computed once.
#[pyclass(frozen, module = "cfa._native", name = "Signature")]
#[derive(Debug)]
pub struct PySignature {
    inner: Arc<ParsedSignature>,
}

#[pymethods]
impl PySignature {
    /// `Signature(signature)`: a dict or JSON text (`str`/`bytes`), optionally wrapped
    /// in `{"signature": …}`, validated strictly as `check` validates it.
    #[new]
    fn new(py: Python<'_>, signature: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(s) = signature.cast::<PySignature>() {
            return Ok(Self {
                inner: Arc::clone(&s.get().inner),
            });
        }
        let input = load::signature_input(py, signature)?;
        let parsed = match input {
            // read in place under the GIL: nothing left to parse
            load::SignatureInput::Read(sig) => Ok(sig),
            other => py.detach(|| other.parse()),
        };
        parsed
            .map(|sig| Self {
                inner: Arc::new(ParsedSignature::new(sig)),
            })
            .map_err(|e| load::signature_error(py, e))
    }
    /// The signature's hash (the reference's `signature_hash`).
    #[getter]
    fn signature_hash(&self) -> &str {
        self.inner.signature_hash()
    }
    /// The hash of the signature's content without ids.
    #[getter]
    fn content_hash(&self) -> &str {
        self.inner.content_hash()
    }
    /// The signature's `intent_id`.
    #[getter]
    fn intent_id(&self) -> &str {
        &self.inner.signature.intent_id
    }
    /// The signature as a dict (its JSON form).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(
            py,
            &serde_json::to_value(&self.inner.signature).unwrap_or(Value::Null),
        )
    }
    fn __repr__(&self) -> String {
        format!(
            "Signature(intent={:?}, datasets={:?}, signature_hash={:?})",
            self.inner.signature.intent,
            self.inner
                .signature
                .datasets
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            self.inner.signature_hash()
        )
    }
}

/// The decision of one signature against one bundle (and catalog): the policy result
/// and the hashes that identify what was decided. The hashes and the decision id's text
/// are computed when first read (they do not change the decision; `check` is not
/// audited); the decision document is built once, when first asked for.
#[pyclass(frozen, module = "cfa._native", name = "Decision")]
#[derive(Debug)]
pub struct PyDecision {
    result: PolicyResult,
    signature: Arc<ParsedSignature>,
    policy: Arc<LoadedPolicy>,
    catalog: Option<Arc<LoadedCatalog>>,
    id: u128,
    decision_id: OnceLock<String>,
    // Boxed: it is built only when asked for, and inline it would make every result
    // object too large for Python's small-object allocator.
    document: OnceLock<Box<Decision>>,
}

impl PyDecision {
    /// The facade's [`Decision`] of this check (what `cfa policy check` identifies).
    fn decision(&self) -> &Decision {
        self.document.get_or_init(|| {
            Box::new(Decision {
                result: self.result.clone(),
                decision_id: self.decision_id().to_owned(),
                intent_id: self.signature.signature.intent_id.clone(),
                signature_hash: self.signature.signature_hash().to_owned(),
                content_hash: self.signature.content_hash().to_owned(),
                catalog_hash: self
                    .catalog
                    .as_ref()
                    .map(|c| c.hash().to_owned())
                    .unwrap_or_default(),
                policy_bundle: self.policy.engine.version().to_owned(),
                policy_bundle_hash: self.policy.hash.clone(),
                audit_event_hash: String::new(),
                // `check` has no control store: the policy's decision as it is.
                control: None,
            })
        })
    }
}

#[pymethods]
impl PyDecision {
    /// `approve`, `replan` or `block`.
    #[getter]
    fn action(&self) -> &'static str {
        self.result.action.as_str()
    }
    /// True when the action is `approve`.
    #[getter]
    fn passed(&self) -> bool {
        self.result.passed()
    }
    /// Every fault that fired, in rule order.
    #[getter]
    fn faults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        fault_list(py, &self.result.faults)
    }
    /// The fault codes, in order.
    #[getter]
    fn fault_codes(&self) -> Vec<&str> {
        self.result.faults.iter().map(|f| f.code.as_str()).collect()
    }
    /// The remediation of every fault (replan only).
    #[getter]
    fn interventions(&self) -> Vec<String> {
        self.result
            .interventions
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    /// The structured fixes (JSON-patch-like dicts; replan only).
    #[getter]
    fn patches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(
            py,
            &serde_json::to_value(&self.result.patches).unwrap_or(Value::Null),
        )
    }
    /// Faults without an automatic fix, with what to change (`[{code, reason}]`).
    #[getter]
    fn manual_fixes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(
            py,
            &serde_json::to_value(&self.result.manual_fixes).unwrap_or(Value::Null),
        )
    }
    /// The reference's reasoning string.
    #[getter]
    fn reasoning(&self) -> &str {
        &self.result.reasoning
    }
    /// The replan counter the evaluation ran with.
    #[getter]
    fn replan_count(&self) -> u32 {
        self.result.replan_count
    }
    /// The signature's hash (the reference's `signature_hash`).
    #[getter]
    fn signature_hash(&self) -> &str {
        self.signature.signature_hash()
    }
    /// The hash of the signature's content without ids.
    #[getter]
    fn content_hash(&self) -> &str {
        self.signature.content_hash()
    }
    /// This decision's id.
    #[getter]
    fn decision_id(&self) -> &str {
        self.decision_id.get_or_init(|| ids::format(self.id))
    }
    /// The signature's `intent_id`.
    #[getter]
    fn intent_id(&self) -> &str {
        &self.signature.signature.intent_id
    }
    /// The bundle version.
    #[getter]
    fn policy_bundle(&self) -> &str {
        self.policy.engine.version()
    }
    /// The bundle source's SHA-256 (`""` for the default rules).
    #[getter]
    fn policy_bundle_hash(&self) -> &str {
        &self.policy.hash
    }
    /// The catalog's hash (`""` without a catalog).
    #[getter]
    fn catalog_hash(&self) -> &str {
        self.catalog.as_ref().map_or("", |c| c.hash())
    }
    /// The `policy_check` event's hash when the decision was audited, else `""`
    /// (`check` is not audited).
    #[getter]
    fn audit_event_hash(&self) -> &str {
        ""
    }
    /// The decision document (`decision` holds the policy result as `cfa schema
    /// decision` describes it).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.decision().document())
    }
    /// [`to_dict`](Self::to_dict) as JSON text.
    fn to_json(&self) -> String {
        self.decision().document().to_string()
    }
    fn __bool__(&self) -> bool {
        self.passed()
    }
    fn __repr__(&self) -> String {
        format!(
            "Decision(action={:?}, faults={:?}, signature_hash={:?})",
            self.action(),
            self.fault_codes(),
            self.signature_hash()
        )
    }
}

/// Decides `signature` (a [`PySignature`], a dict or JSON text) against `policy` and
/// `catalog`; the GIL is released for the parse and the decision of JSON text or of a
/// dict the value path judges (a dict read in place is read and decided holding it).
fn decide(
    py: Python<'_>,
    policy: &Arc<LoadedPolicy>,
    catalog: Option<&Arc<LoadedCatalog>>,
    signature: &Bound<'_, PyAny>,
    replan_count: u32,
) -> PyResult<PyDecision> {
    let check = |sig: &StateSignature| {
        PolicyCheck::new(&policy.engine, &FastUuids, &SystemClock)
            .bundle_hash(&policy.hash)
            .catalog(catalog.map(|c| &c.catalog))
            .replan_count(replan_count)
            .evaluate(sig)
    };
    let (result, parsed) = if let Ok(s) = signature.cast::<PySignature>() {
        // A parsed signature is decided in well under a microsecond: the GIL is kept
        // (releasing and taking it back would cost more than the decision).
        let parsed = Arc::clone(&s.get().inner);
        (check(&parsed.signature), parsed)
    } else {
        match load::signature_input(py, signature)? {
            // A dict read in place: decided under the GIL, as a parsed signature is.
            load::SignatureInput::Read(sig) => (check(&sig), Arc::new(ParsedSignature::new(sig))),
            input => {
                let decided = py.detach(|| {
                    input.parse().map(|sig| {
                        let result = check(&sig);
                        (result, Arc::new(ParsedSignature::new(sig)))
                    })
                });
                decided.map_err(|e| load::signature_error(py, e))?
            }
        }
    };
    Ok(PyDecision {
        result,
        signature: parsed,
        policy: Arc::clone(policy),
        catalog: catalog.cloned(),
        id: ids::next(),
        decision_id: OnceLock::new(),
        document: OnceLock::new(),
    })
}

/// `check(signature, bundle=None, catalog=None, replan_count=0)`: decides one signature
/// (a dict, JSON text or a `Signature`) against a bundle (built-in name, `default`, or a
/// path) and a catalog (a dict or a path), as `cfa policy check` does, policy-only (no control
/// plane). The GIL is released while JSON text is parsed and decided.
#[pyfunction]
#[pyo3(signature = (signature, bundle=None, catalog=None, replan_count=0))]
pub fn check(
    py: Python<'_>,
    signature: &Bound<'_, PyAny>,
    bundle: Option<&Bound<'_, PyAny>>,
    catalog: Option<&Bound<'_, PyAny>>,
    replan_count: u32,
) -> PyResult<PyDecision> {
    let policy = load::policy(py, bundle)?;
    let catalog = load::catalog(py, catalog)?;
    decide(py, &policy, catalog.as_ref(), signature, replan_count)
}

/// A bundle and a catalog loaded once, to decide any number of signatures:
/// `Checker(bundle=None, catalog=None).check(signature, replan_count=0)` is
/// `check(signature, bundle, catalog, replan_count)` without loading either again.
#[pyclass(frozen, module = "cfa._native", name = "Checker")]
#[derive(Debug)]
pub struct PyChecker {
    policy: Arc<LoadedPolicy>,
    catalog: Option<Arc<LoadedCatalog>>,
}

#[pymethods]
impl PyChecker {
    /// `Checker(bundle=None, catalog=None)`: the bundle and catalog as `check` takes
    /// them (a catalog dict is read now: later changes to the dict are not seen).
    #[new]
    #[pyo3(signature = (bundle=None, catalog=None))]
    fn new(
        py: Python<'_>,
        bundle: Option<&Bound<'_, PyAny>>,
        catalog: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            policy: load::policy(py, bundle)?,
            catalog: load::catalog(py, catalog)?,
        })
    }
    /// Decides `signature` (a dict, JSON text or a `Signature`).
    #[pyo3(signature = (signature, replan_count=0))]
    fn check(
        &self,
        py: Python<'_>,
        signature: &Bound<'_, PyAny>,
        replan_count: u32,
    ) -> PyResult<PyDecision> {
        decide(
            py,
            &self.policy,
            self.catalog.as_ref(),
            signature,
            replan_count,
        )
    }
    /// The bundle version.
    #[getter]
    fn policy_bundle(&self) -> &str {
        self.policy.engine.version()
    }
    /// The bundle source's SHA-256 (`""` for the default rules).
    #[getter]
    fn policy_bundle_hash(&self) -> &str {
        &self.policy.hash
    }
    /// The catalog's hash (`""` without a catalog).
    #[getter]
    fn catalog_hash(&self) -> &str {
        self.catalog.as_ref().map_or("", |c| c.hash())
    }
    fn __repr__(&self) -> String {
        format!(
            "Checker(bundle={:?}, catalog={})",
            self.policy.source,
            if self.catalog.is_some() {
                "…"
            } else {
                "None"
            }
        )
    }
}
