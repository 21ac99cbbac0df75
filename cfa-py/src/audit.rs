//! Audit verification from Python: `verify(path)` (the chain, optionally against a
//! signed checkpoint), signing keys, checkpoints, and offline inclusion proofs, as the
//! `cfa audit` commands do them.

use crate::{convert, load};
use cfa::audit::checkpoint::{create_checkpoint, prove_event, verify_with_checkpoint};
use cfa::audit::{AuditTarget, OfflineProof, SignerKey, VerifierKey, VerifyOptions, VerifyReport};
use pyo3::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The verdict on an audit chain.
#[pyclass(frozen, module = "cfa._native", name = "VerifyReport")]
pub struct PyVerifyReport {
    report: VerifyReport,
    file: String,
    intent_id: Option<String>,
    checkpoint_problem: Option<String>,
    checkpoint_size: Option<u64>,
}

impl PyVerifyReport {
    /// Wraps a report of `file`.
    pub fn new(report: VerifyReport, file: String, intent_id: Option<String>) -> Self {
        Self {
            report,
            file,
            intent_id,
            checkpoint_problem: None,
            checkpoint_size: None,
        }
    }

    fn json(&self) -> Value {
        let mut v = self.report.to_json(&self.file, self.intent_id.as_deref());
        if let (Some(size), Some(obj)) = (self.checkpoint_size, v.as_object_mut()) {
            obj.insert(
                "checkpoint".into(),
                serde_json::json!({"size": size, "problem": self.checkpoint_problem}),
            );
        }
        v
    }
}

#[pymethods]
impl PyVerifyReport {
    /// True when every event verifies (and, with a checkpoint, the log extends it).
    #[getter]
    fn intact(&self) -> bool {
        self.report.intact() && self.checkpoint_problem.is_none()
    }
    /// Events read.
    #[getter]
    fn events(&self) -> u64 {
        self.report.events
    }
    /// Events of `intent_id`, when one was given.
    #[getter]
    fn intent_events(&self) -> Option<u64> {
        self.report.intent_events
    }
    /// `event_hash` of the last event (`""` for an empty log).
    #[getter]
    fn tail_hash(&self) -> &str {
        &self.report.tail_hash
    }
    /// Index (0-based) of the first bad event, or `None`.
    #[getter]
    fn first_bad_index(&self) -> Option<u64> {
        self.report.first_bad.as_ref().map(|b| b.index)
    }
    /// Line (1-based) of the first bad event, or `None`.
    #[getter]
    fn first_bad_line(&self) -> Option<u64> {
        self.report.first_bad.as_ref().map(|b| b.line)
    }
    /// Why the first bad event is bad (or why the log does not extend the checkpoint).
    #[getter]
    fn reason(&self) -> Option<String> {
        self.report
            .first_bad
            .as_ref()
            .map(|b| b.reason.to_string())
            .or_else(|| self.checkpoint_problem.clone())
    }
    /// The machine code of the first bad event's reason, or `None`.
    #[getter]
    fn reason_code(&self) -> Option<String> {
        self.report
            .first_bad
            .as_ref()
            .map(|b| b.reason.code().to_string())
    }
    /// The size the checkpoint covers, when one was checked.
    #[getter]
    fn checkpoint_size(&self) -> Option<u64> {
        self.checkpoint_size
    }
    /// The report as `cfa audit verify -f json` prints it (`chain_intact`,
    /// `total_events`, `tail_hash`, `first_bad`, …; `checkpoint` when one was checked).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.json())
    }
    fn __bool__(&self) -> bool {
        self.intact()
    }
    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(intact={}, events={}, first_bad_index={})",
            if self.intact() { "True" } else { "False" },
            self.report.events,
            self.first_bad_index()
                .map_or_else(|| "None".to_owned(), |i| i.to_string())
        )
    }
}

fn target(path: &Path) -> AuditTarget {
    let lower = path.display().to_string().to_ascii_lowercase();
    if lower.ends_with(".db") || lower.ends_with(".sqlite") || lower.ends_with(".sqlite3") {
        AuditTarget::Sqlite(path.to_path_buf())
    } else {
        AuditTarget::Jsonl(path.to_path_buf())
    }
}

fn audit_err(py: Python<'_>, e: impl std::fmt::Display) -> PyErr {
    load::raise(py, "AuditError", (e.to_string(),))
}

fn read(py: Python<'_>, path: &Path, what: &str) -> PyResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| audit_err(py, format!("cannot read {what} {}: {e}", path.display())))
}

/// Text given directly, or read from a path (`os.PathLike`, or a `str` naming a file).
fn text_or_file(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if let Ok(s) = obj.extract::<String>() {
        let p = Path::new(&s);
        if !s.contains('\n') && p.is_file() {
            return read(py, p, what);
        }
        return Ok(s);
    }
    let p: PathBuf = obj.extract()?;
    read(py, &p, what)
}

/// `verify(path, intent_id=None, checkpoint=None, pubkey=None)`: verifies a JSONL (or
/// SQLite, `.db`) audit log in one pass, as `cfa audit verify` does; with `checkpoint`
/// (a signed note, text or file) and `pubkey` (verifier key, text or file) also checks
/// that the log extends the checkpointed log. A missing file raises `AuditError`; a
/// broken chain is a report with `intact == False`.
#[pyfunction]
#[pyo3(signature = (path, intent_id=None, checkpoint=None, pubkey=None))]
pub fn verify(
    py: Python<'_>,
    path: PathBuf,
    intent_id: Option<String>,
    checkpoint: Option<&Bound<'_, PyAny>>,
    pubkey: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyVerifyReport> {
    let t = target(&path);
    if !path.exists() {
        return Err(audit_err(py, format!("no audit log at {}", path.display())));
    }
    let opts = VerifyOptions {
        intent_id: intent_id.clone(),
        ..VerifyOptions::default()
    };
    let file = path.display().to_string();
    match (checkpoint, pubkey) {
        (None, None) => {
            let report = py
                .detach(|| cfa::audit::checkpoint::verify_target(&t, &opts, &mut |_| {}))
                .map_err(|e| audit_err(py, e))?;
            Ok(PyVerifyReport::new(report, file, intent_id))
        }
        (Some(cp), Some(key)) => {
            let note = text_or_file(py, cp, "checkpoint")?;
            let key = VerifierKey::parse(text_or_file(py, key, "verifier key")?.trim())
                .map_err(|e| audit_err(py, format!("invalid verifier key: {e}")))?;
            let check = py
                .detach(|| verify_with_checkpoint(&t, &note, &key, &opts, &mut |_| {}))
                .map_err(|e| audit_err(py, e))?;
            let mut out = PyVerifyReport::new(check.report, file, intent_id);
            out.checkpoint_size = Some(check.checkpoint.size);
            out.checkpoint_problem = check.problem;
            Ok(out)
        }
        _ => Err(audit_err(py, "give both checkpoint= and pubkey=")),
    }
}

/// `generate_key(name) -> (private_key_text, verifier_key_text)`: a new Ed25519 signing
/// key in the note format `cfa audit keygen` writes.
#[pyfunction]
pub fn generate_key(py: Python<'_>, name: &str) -> PyResult<(String, String)> {
    let key = SignerKey::generate(name).map_err(|e| audit_err(py, e))?;
    Ok((key.to_text(), key.verifier().to_text()))
}

/// `checkpoint(path, key, origin=None) -> str`: verifies the log (it must be intact)
/// and returns a signed checkpoint note over its size and Merkle root (`key`: private
/// key text or file).
#[pyfunction]
#[pyo3(signature = (path, key, origin=None))]
pub fn checkpoint(
    py: Python<'_>,
    path: PathBuf,
    key: &Bound<'_, PyAny>,
    origin: Option<String>,
) -> PyResult<String> {
    let key = SignerKey::parse(text_or_file(py, key, "private key")?.trim())
        .map_err(|e| audit_err(py, format!("invalid private key: {e}")))?;
    let origin = origin.unwrap_or_else(|| key.name().to_owned());
    py.detach(|| create_checkpoint(&target(&path), &origin, &key, false))
        .map(|(_, note)| note)
        .map_err(|e| audit_err(py, e))
}

/// `prove(path, index, checkpoint) -> str`: an offline inclusion proof of event
/// `index` under a signed checkpoint (text or file).
#[pyfunction]
pub fn prove(
    py: Python<'_>,
    path: PathBuf,
    index: u64,
    checkpoint: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let note = text_or_file(py, checkpoint, "checkpoint")?;
    py.detach(|| prove_event(&target(&path), index, note, false))
        .map(|p| p.to_text())
        .map_err(|e| audit_err(py, e))
}

/// `verify_proof(proof, pubkey) -> dict`: checks an offline proof (text or file)
/// against a verifier key (text or file) and returns `{index, event, checkpoint:
/// {origin, size}}`; a proof that does not verify raises `AuditError`.
#[pyfunction]
pub fn verify_proof<'py>(
    py: Python<'py>,
    proof: &Bound<'py, PyAny>,
    pubkey: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let text = text_or_file(py, proof, "proof")?;
    let key = VerifierKey::parse(text_or_file(py, pubkey, "verifier key")?.trim())
        .map_err(|e| audit_err(py, format!("invalid verifier key: {e}")))?;
    let proven = OfflineProof::parse(&text)
        .and_then(|p| p.verify(&key, false))
        .map_err(|e| audit_err(py, e))?;
    let v = serde_json::json!({
        "index": proven.index,
        "event": proven.event.to_value(),
        "checkpoint": {"origin": proven.checkpoint.origin, "size": proven.checkpoint.size},
    });
    convert::to_py(py, &v)
}
