//! Intent normalisation in depth: the [`Normalizer`] trait (plug in your own), the
//! whole-word [`RuleBasedNormalizer`] over data-driven [`KeywordPack`]s, what a
//! [`Resolution`] carries, and how much confirmation it needs ([`confirm()`],
//! [`ConfirmationHandler`]); and the models of a dbt manifest as signatures ([`dbt`]).
//! Re-exported from cfa-resolve.
//!
//! ```
//! use cfa::resolve::{Normalizer, NormalizerInput, RuleBasedNormalizer};
//! use cfa::Catalog;
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {"nfe": {}}}))?;
//! let input = NormalizerInput::new("ingest nfe into bronze", &catalog, "intent-1");
//! let r = RuleBasedNormalizer::default().normalize(&input)?;
//! assert_eq!(r.signature.datasets.first().map(|d| d.name.as_str()), Some("nfe"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use cfa_resolve::{
    AlwaysReject, AutoApprove, BackendError, ConfirmationAnswer, ConfirmationHandler,
    ConfirmationOutcome, ConfirmationRequest, ConstraintKeywords, DEFAULT_DOMAIN,
    DEFAULT_MIN_CONFIDENCE, DatasetState, EmptyKeywordError, FALLBACK_INTENT, InvalidAnswerError,
    InvalidFieldError, KeywordPack, LayerKeywords, LlmAudit, NormalizeError, Normalizer,
    NormalizerInput, PackError, Resolution, RuleBasedNormalizer, TerminalHandler, UnknownKeyError,
    confirm, confirmation_mode, handler_reason,
};

/// dbt manifests to signatures: one [`StateSignature`](crate::StateSignature) per model
/// (re-exported from cfa-resolve).
pub mod dbt {
    pub use cfa_resolve::dbt::{
        DBT_INTENT, DbtError, LayerSource, Manifest, ModelSignature, SUPPORTED_SCHEMA_VERSIONS,
        Selector, derive, glob_match,
    };
}

/// The fault codes of grounding (an intent that matches no catalog dataset, a low
/// confidence) and the faults they build.
pub mod faults {
    pub use cfa_resolve::faults::{
        LOW_CONFIDENCE, NO_CATALOG_DATASET_MATCH, NORMALIZER_STAGE, grounding_fault,
        low_confidence_fault, no_dataset_match_fault,
    };
}
