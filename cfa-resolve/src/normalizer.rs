//! The `Normalizer` boundary: what a normaliser is given and what it returns.

use cfa_types::{AmbiguityLevel, Catalog, ConfirmationMode, ExecutionContext, StateSignature};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The reference's default minimum confidence in strict mode.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.65;

/// The state of one dataset in the environment (from state projection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetState {
    /// Dataset name.
    pub name: String,
    /// Its state, e.g. `committed_not_published`.
    pub state: String,
}

/// Everything a normaliser is given. Ids are injected: a normaliser never invents one.
#[derive(Debug, Clone)]
pub struct NormalizerInput<'a> {
    /// The raw intent text.
    pub raw_intent: &'a str,
    /// The catalog datasets are grounded in.
    pub catalog: &'a Catalog,
    /// Dataset states of the environment (may be empty).
    pub environment: &'a [DatasetState],
    /// The three artifact versions the signature is formed against.
    pub execution_context: ExecutionContext,
    /// The `intent_id` to put in the signature.
    pub intent_id: &'a str,
    /// Strict mode: low confidence is high ambiguity.
    pub strict: bool,
    /// The minimum confidence in strict mode.
    pub min_confidence: f64,
}

impl<'a> NormalizerInput<'a> {
    /// Input with no environment, the default (`unknown`) execution context,
    /// non-strict mode and the default minimum confidence.
    pub fn new(raw_intent: &'a str, catalog: &'a Catalog, intent_id: &'a str) -> Self {
        NormalizerInput {
            raw_intent,
            catalog,
            environment: &[],
            execution_context: ExecutionContext::default(),
            intent_id,
            strict: false,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }

    /// Sets the execution context.
    pub fn with_context(mut self, ctx: ExecutionContext) -> Self {
        self.execution_context = ctx;
        self
    }

    /// Sets the environment dataset states.
    pub fn with_environment(mut self, environment: &'a [DatasetState]) -> Self {
        self.environment = environment;
        self
    }

    /// Turns strict mode on with `min_confidence`.
    pub fn strict(mut self, min_confidence: f64) -> Self {
        self.strict = true;
        self.min_confidence = min_confidence;
        self
    }
}

/// What the LLM normaliser records for the audit trail (hashes via `cfa_types::canonical`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmAudit {
    /// The model name asked.
    pub model: String,
    /// SHA-256 of the prompt messages (canonical JSON).
    pub prompt_hash: String,
    /// SHA-256 of the raw model answer text (`""` when there was no answer).
    pub response_hash: String,
    /// `hash_governance_artifact` of the catalog.
    pub catalog_hash: String,
    /// Why the rule-based normaliser was used instead, in non-strict mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// A resolved intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The signature.
    pub signature: StateSignature,
    /// Confidence in [0.05, 0.99] (or lower after overrides), 2 decimals.
    pub confidence: f64,
    /// Ambiguity.
    pub ambiguity: AmbiguityLevel,
    /// How much confirmation the intent needs.
    pub confirmation_mode: ConfirmationMode,
    /// Other readings of the intent.
    pub competing_interpretations: Vec<String>,
    /// Why the normaliser resolved it this way.
    pub reasoning: String,
    /// Constraints from the environment, e.g. `x.state=partially_committed -> publish_allowed=false`.
    pub environment_constraints: Vec<String>,
    /// Provenance of an LLM resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmAudit>,
}

impl Resolution {
    /// The shape the CLI prints: `{"signature", "resolution": {confidence, ambiguity,
    /// confirmation_mode, competing_interpretations, reasoning}}`.
    pub fn to_cli_value(&self) -> Value {
        let mut r = Map::new();
        r.insert("confidence".into(), serde_json::json!(self.confidence));
        r.insert("ambiguity".into(), Value::from(self.ambiguity.as_str()));
        r.insert(
            "confirmation_mode".into(),
            Value::from(self.confirmation_mode.as_str()),
        );
        r.insert(
            "competing_interpretations".into(),
            Value::from(self.competing_interpretations.clone()),
        );
        r.insert("reasoning".into(), Value::from(self.reasoning.clone()));
        let mut m = Map::new();
        m.insert("signature".into(), self.signature.to_value());
        m.insert("resolution".into(), Value::Object(r));
        Value::Object(m)
    }
}

/// Why a normaliser could not resolve an intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The backend (e.g. the model endpoint) failed.
    #[error(transparent)]
    Backend(BackendError),
    /// The backend answered, but the answer is not a valid signature for this catalog.
    #[error(transparent)]
    InvalidAnswer(InvalidAnswerError),
}

/// A backend failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("normalizer backend '{backend}' failed: {message}")]
pub struct BackendError {
    /// Backend name, e.g. `llm`.
    pub backend: String,
    /// What failed.
    pub message: String,
}

/// An answer that does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("normalizer answer rejected: {path}: {message}")]
pub struct InvalidAnswerError {
    /// Path in the answer, e.g. `datasets[1]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Turns intent text into a [`Resolution`]. Implementations must be deterministic for
/// the same input (an LLM at temperature 0 as far as the endpoint allows), read no
/// clock and generate no ids.
pub trait Normalizer {
    /// Resolves `input`.
    fn normalize(&self, input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError>;
}
