//! The formalize-stage faults of docs/compatibility.md#the-governed-run (strict mode), with their exact texts
//! (they reach `cfa evaluate --strict` output). The kernel decides when to apply them;
//! docs/differences.md#b2-fail-closed blocks an ungrounded intent by default, not only in strict mode.

use crate::normalizer::Resolution;
use crate::pyfmt::fmt2;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};

/// The stage named in normalisation faults.
pub const NORMALIZER_STAGE: &str = "intent_normalizer";
/// Fault code: no catalog dataset matched.
pub const NO_CATALOG_DATASET_MATCH: &str = "NORMALIZATION_NO_CATALOG_DATASET_MATCH";
/// Fault code: confidence below the minimum.
pub const LOW_CONFIDENCE: &str = "NORMALIZATION_LOW_CONFIDENCE";

/// `NORMALIZATION_NO_CATALOG_DATASET_MATCH` (critical, block).
pub fn no_dataset_match_fault() -> Fault {
    Fault {
        code: NO_CATALOG_DATASET_MATCH.into(),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::Critical,
        stage: NORMALIZER_STAGE.into(),
        message: "Strict normalization blocked the intent because no catalog dataset was matched."
            .into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![
            "Reference datasets that exist in the catalog or update the catalog.".to_owned(),
        ]
        .into(),
        detected_before_execution: true,
    }
}

/// `NORMALIZATION_LOW_CONFIDENCE` (high, block) for `confidence` below `min_confidence`.
pub fn low_confidence_fault(confidence: f64, min_confidence: f64) -> Fault {
    Fault {
        code: LOW_CONFIDENCE.into(),
        family: FaultFamily::Semantic,
        severity: FaultSeverity::High,
        stage: NORMALIZER_STAGE.into(),
        message: format!(
            "Strict normalization blocked: confidence {} below {}.",
            fmt2(confidence),
            fmt2(min_confidence)
        )
        .into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![
            "Make the requested datasets, target layer, and operation explicit.".to_owned(),
        ]
        .into(),
        detected_before_execution: true,
    }
}

/// The reference's strict check, in its order: no dataset matched, otherwise
/// confidence below `min_confidence` (pass `None` to skip the confidence check, as
/// `evaluate` without `--strict` does under docs/differences.md#b2-fail-closed).
pub fn grounding_fault(resolution: &Resolution, min_confidence: Option<f64>) -> Option<Fault> {
    if resolution.signature.datasets.is_empty() {
        return Some(no_dataset_match_fault());
    }
    match min_confidence {
        Some(min) if resolution.confidence < min => {
            Some(low_confidence_fault(resolution.confidence, min))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NormalizerInput, RuleBasedNormalizer};
    use cfa_types::Catalog;
    use serde_json::json;

    #[test]
    fn strict_faults_in_reference_order() {
        let cat = Catalog::from_value(&json!({"datasets": {
            "nfe": {}, "clientes": {"pii_columns": ["cpf"]}
        }}))
        .unwrap();
        let n = RuleBasedNormalizer::default();
        let none = n.resolve(&NormalizerInput::new("load unknown", &cat, "i"));
        let f = grounding_fault(&none, Some(0.65)).unwrap();
        assert_eq!(f.code, NO_CATALOG_DATASET_MATCH);
        assert_eq!(
            f.to_string(),
            "[CRITICAL] NORMALIZATION_NO_CATALOG_DATASET_MATCH: Strict normalization blocked the intent because no catalog dataset was matched."
        );
        let low = n.resolve(&NormalizerInput::new("join nfe with clientes", &cat, "i"));
        assert_eq!(low.confidence, 0.75);
        let f = grounding_fault(&low, Some(0.8)).unwrap();
        assert_eq!(
            f.message,
            "Strict normalization blocked: confidence 0.75 below 0.80."
        );
        assert_eq!(f.severity, FaultSeverity::High);
        assert!(grounding_fault(&low, Some(0.65)).is_none());
        assert!(grounding_fault(&low, None).is_none());
    }
}
