//! Evidence bundles for the long-running faces: `GET /v1/evidence/{intent_id}` and
//! `POST /v1/evidence/verify` (`cfa serve`), `cfa_evidence_export` and
//! `cfa_evidence_verify` (`cfa mcp`). The bundle comes back as one JSON document
//! (`{"format", "files": {path: text}}`, the exact bytes `cfa evidence export` writes);
//! the checkpoint is `<log>.checkpoint` beside the server's log (a server holds no
//! signing key, so the statement is unsigned and a run the checkpoint does not cover is
//! refused with `no_checkpoint`).

use super::FaceError;
use super::decide::Governance;
use cfa::audit::VerifierKey;
use cfa::report::evidence::{self, Bundle, EvidenceError};
use serde_json::Value;
use std::path::Path;

/// The bundle of `intent_id` as one JSON document.
pub fn export_json(
    gov: &Governance,
    intent_id: &str,
    lifecycle_db: Option<&Path>,
) -> Result<Value, FaceError> {
    let Some(audit) = gov.audit() else {
        return Err(FaceError::new(
            "no_audit_log",
            "no audit log is configured (start the server with --audit-log FILE)",
        ));
    };
    audit.flush()?;
    let bundle = crate::evidence_cmd::export_from_log(audit.path(), intent_id, lifecycle_db)
        .map_err(|e| {
            let code = match &e {
                EvidenceError::UnknownIntent { .. } => "unknown_intent",
                EvidenceError::NoCheckpoint { .. } => "no_checkpoint",
                EvidenceError::Broken { .. } => "audit_broken",
                _ => "evidence_error",
            };
            FaceError::new(code, e.to_string())
        })?;
    let mut doc = bundle.to_json();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("intent_id".into(), Value::String(intent_id.to_owned()));
    }
    Ok(doc)
}

/// Verifies a bundle document (as [`export_json`] returns it), with the verifier keys
/// in its `pubkeys` list (vkey texts; none: signatures are not checked). Returns the
/// report (`ok: false` with the failed checks when anything differs).
pub fn verify_json(doc: &Value) -> Result<Value, FaceError> {
    let bundle =
        Bundle::from_json(doc).map_err(|e| FaceError::new("invalid_evidence", e.to_string()))?;
    let mut keys = Vec::new();
    if let Some(list) = doc.get("pubkeys") {
        let list = list.as_array().ok_or_else(|| {
            FaceError::new("invalid_evidence", "pubkeys must be a list of vkey texts")
        })?;
        for k in list {
            let text = k.as_str().unwrap_or_default();
            keys.push(
                VerifierKey::parse(text)
                    .map_err(|e| FaceError::new("invalid_evidence", format!("pubkeys: {e}")))?,
            );
        }
    }
    Ok(evidence::verify(&bundle, &keys).to_json())
}
