//! Static validation of generated artifacts on a parsed form (docs/differences.md#b8-generated-code-is-correct-and-safe): SQL and the
//! compiled dbt model through sqlparser's AST, PySpark through a Python tokenizer. Fault
//! codes follow docs/compatibility.md#static-validation-codes; faults are family `static_safety_faults`.

pub mod jinja;
pub mod python;
pub mod sql;

use crate::artifact::{GeneratedArtifact, Language};
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction, StateSignature};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The outcome of static validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticValidationResult {
    /// True when no fault is high or critical.
    pub passed: bool,
    /// High and critical faults (they block).
    pub faults: Vec<Fault>,
    /// Warning and info faults (they do not block).
    pub warnings: Vec<Fault>,
    /// Number of check groups run.
    pub checks_performed: u32,
}

impl StaticValidationResult {
    /// Builds a result from every raised fault, splitting by severity.
    pub fn from_faults(all: Vec<Fault>, checks_performed: u32) -> Self {
        let (faults, warnings): (Vec<Fault>, Vec<Fault>) = all
            .into_iter()
            .partition(|f| matches!(f.severity, FaultSeverity::High | FaultSeverity::Critical));
        StaticValidationResult {
            passed: faults.is_empty(),
            faults,
            warnings,
            checks_performed,
        }
    }

    /// Codes of the blocking faults, in order.
    pub fn fault_codes(&self) -> Vec<&str> {
        self.faults.iter().map(|f| f.code.as_str()).collect()
    }
}

/// A static-safety fault (stage `static_validation`, action block).
pub fn fault(
    code: impl Into<cfa_types::SharedStr>,
    severity: FaultSeverity,
    message: impl Into<cfa_types::SharedStr>,
    remediation: &[&str],
) -> Fault {
    Fault {
        code: code.into(),
        family: FaultFamily::StaticSafety,
        severity,
        stage: "static_validation".into(),
        message: message.into(),
        mandatory_action: PolicyAction::Block,
        remediation: remediation.iter().map(|s| (*s).to_owned()).collect(),
        detected_before_execution: true,
    }
}

/// The code of a raw-PII fault for `column`: `STATIC_RAW_PII_REFERENCE_{COLUMN}`.
pub fn raw_pii_code(column: &str) -> String {
    format!("STATIC_RAW_PII_REFERENCE_{}", column.to_uppercase())
}

/// PII columns the signature asks to protect (empty unless `no_pii_raw`).
pub(crate) fn protected_pii(sig: &StateSignature) -> Vec<String> {
    if !sig.constraints.no_pii_raw {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for d in &sig.datasets {
        for c in &d.pii_columns {
            let l = c.to_lowercase();
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out
}

/// True when the write must be a merge (protected layer with `merge_key_required`).
pub(crate) fn merge_required(sig: &StateSignature) -> bool {
    sig.writes_to_protected_layer() && sig.constraints.merge_key_required
}

pub(crate) fn missing_partition_fault() -> Fault {
    fault(
        "STATIC_MISSING_PARTITION_FILTER",
        FaultSeverity::High,
        "partition filter required by constraints.partition_by is missing from the generated code",
        &["Add a filter / WHERE predicate on the temporal partition column."],
    )
}

pub(crate) fn missing_merge_fault(layer: &str) -> Fault {
    fault(
        "STATIC_MISSING_MERGE_OPERATION",
        FaultSeverity::High,
        format!("a merge operation is required for a {layer} write with merge_key_required"),
        &[
            "Use MERGE INTO (SQL), an incremental merge model (dbt) or DeltaTable.merge() instead of append.",
        ],
    )
}

pub(crate) fn raw_pii_fault(column: &str, context: &str) -> Fault {
    fault(
        raw_pii_code(column),
        FaultSeverity::Critical,
        format!("PII column '{column}' is referenced without anonymisation ({context})"),
        &["Reference PII columns only inside their SHA-256 hashing expression."],
    )
}

/// A schema contract (docs/compatibility.md#static-validation-codes, the schema contract): columns that must never be referenced
/// raw. Unlike the reference (bug B8), a column used only inside its own SHA-256
/// hashing expression does not count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaContract {
    /// Columns the code must not reference outside hashing.
    pub forbidden_columns: Vec<String>,
}

impl SchemaContract {
    pub(crate) fn lowercase(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.forbidden_columns {
            let l = c.to_lowercase();
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }
}

/// The code of a forbidden-column fault: `STATIC_FORBIDDEN_COLUMN_{COLUMN}`.
pub fn forbidden_column_code(column: &str) -> String {
    format!("STATIC_FORBIDDEN_COLUMN_{}", column.to_uppercase())
}

pub(crate) fn forbidden_column_fault(column: &str) -> Fault {
    fault(
        forbidden_column_code(column),
        FaultSeverity::Critical,
        format!("column '{column}' is forbidden by the schema contract"),
        &["Remove the column or reference it only inside its SHA-256 hashing expression."],
    )
}

/// Validates an artifact according to its language.
pub fn validate_artifact(
    artifact: &GeneratedArtifact,
    sig: &StateSignature,
) -> StaticValidationResult {
    validate_artifact_with(artifact, sig, None)
}

/// [`validate_artifact`] of an artifact behind a shared handle (the kernel's): the same
/// result; a PySpark artifact's is remembered by its handle for the thread (see
/// `python::validate_pyspark_shared`).
pub fn validate_artifact_shared(
    artifact: &Arc<GeneratedArtifact>,
    sig: &StateSignature,
) -> StaticValidationResult {
    match artifact.language {
        Language::Pyspark => python::validate_pyspark_shared(artifact, sig),
        Language::Sql | Language::Dbt => validate_artifact(artifact, sig),
    }
}

/// [`validate_artifact`] plus an optional schema contract.
pub fn validate_artifact_with(
    artifact: &GeneratedArtifact,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    let main = artifact
        .main_file()
        .map(|f| f.content.as_str())
        .unwrap_or("");
    match artifact.language {
        Language::Sql => sql::validate_sql_with(main, sig, contract),
        Language::Dbt => sql::validate_dbt_model_with(main, sig, contract),
        Language::Pyspark => python::validate_pyspark_with(main, sig, contract),
    }
}
