//! `check()` and the typed results it and the kernel return: [`PyDecision`] (a policy
//! decision of one signature) and [`PyFault`].

use crate::{convert, load};
use cfa::kernel::{Decision, PolicyCheck, UuidIds};
use cfa::{Fault, SystemClock};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::Value;

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

/// The decision of one signature against one bundle (and catalog): the policy result
/// and the hashes that identify what was decided.
#[pyclass(frozen, module = "cfa._native", name = "Decision")]
#[derive(Debug)]
pub struct PyDecision {
    inner: Decision,
}

#[pymethods]
impl PyDecision {
    /// `approve`, `replan` or `block`.
    #[getter]
    fn action(&self) -> String {
        enum_str(&self.inner.result.action)
    }
    /// True when the action is `approve`.
    #[getter]
    fn passed(&self) -> bool {
        self.inner.result.passed()
    }
    /// Every fault that fired, in rule order.
    #[getter]
    fn faults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        fault_list(py, &self.inner.result.faults)
    }
    /// The fault codes, in order.
    #[getter]
    fn fault_codes(&self) -> Vec<String> {
        self.inner
            .result
            .faults
            .iter()
            .map(|f| f.code.to_string())
            .collect()
    }
    /// The remediation of every fault (replan only).
    #[getter]
    fn interventions(&self) -> Vec<String> {
        self.inner
            .result
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
            &serde_json::to_value(&self.inner.result.patches).unwrap_or(Value::Null),
        )
    }
    /// Faults without an automatic fix, with what to change (`[{code, reason}]`).
    #[getter]
    fn manual_fixes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(
            py,
            &serde_json::to_value(&self.inner.result.manual_fixes).unwrap_or(Value::Null),
        )
    }
    /// The reference's reasoning string.
    #[getter]
    fn reasoning(&self) -> &str {
        &self.inner.result.reasoning
    }
    /// The replan counter the evaluation ran with.
    #[getter]
    fn replan_count(&self) -> u32 {
        self.inner.result.replan_count
    }
    /// The signature's hash (the reference's `signature_hash`).
    #[getter]
    fn signature_hash(&self) -> &str {
        &self.inner.signature_hash
    }
    /// The hash of the signature's content without ids.
    #[getter]
    fn content_hash(&self) -> &str {
        &self.inner.content_hash
    }
    /// This decision's id.
    #[getter]
    fn decision_id(&self) -> &str {
        &self.inner.decision_id
    }
    /// The signature's `intent_id`.
    #[getter]
    fn intent_id(&self) -> &str {
        &self.inner.intent_id
    }
    /// The bundle version.
    #[getter]
    fn policy_bundle(&self) -> &str {
        &self.inner.policy_bundle
    }
    /// The bundle source's SHA-256 (`""` for the default rules).
    #[getter]
    fn policy_bundle_hash(&self) -> &str {
        &self.inner.policy_bundle_hash
    }
    /// The catalog's hash (`""` without a catalog).
    #[getter]
    fn catalog_hash(&self) -> &str {
        &self.inner.catalog_hash
    }
    /// The `policy_check` event's hash when the decision was audited, else `""`.
    #[getter]
    fn audit_event_hash(&self) -> &str {
        &self.inner.audit_event_hash
    }
    /// The decision document (`decision` holds the policy result as `cfa schema
    /// decision` describes it).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.document())
    }
    /// [`to_dict`](Self::to_dict) as JSON text.
    fn to_json(&self) -> String {
        self.inner.document().to_string()
    }
    fn __bool__(&self) -> bool {
        self.passed()
    }
    fn __repr__(&self) -> String {
        format!(
            "Decision(action={:?}, faults={:?}, signature_hash={:?})",
            self.action(),
            self.fault_codes(),
            self.inner.signature_hash
        )
    }
}

/// `check(signature, bundle=None, catalog=None, replan_count=0)`: decides one signature
/// (a dict or JSON text) against a bundle (built-in name, `default`, or a path) and a
/// catalog (a dict or a path), as `cfa policy check` does. The GIL is released while
/// the kernel decides.
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
    let input = load::signature_input(py, signature)?;
    // One release of the GIL for the parse and the decision.
    let decided = py.detach(|| {
        input.parse().map(|sig| {
            PolicyCheck::new(&policy.engine, &UuidIds, &SystemClock)
                .bundle_hash(&policy.hash)
                .catalog(catalog.as_ref())
                .replan_count(replan_count)
                .decide(&sig)
        })
    });
    match decided {
        Ok(Ok(inner)) => Ok(PyDecision { inner }),
        Ok(Err(e)) => Err(load::raise(
            py,
            "CfaError",
            (format!("cannot decide: {e}"),),
        )),
        Err(e) => Err(load::signature_error(py, e)),
    }
}
