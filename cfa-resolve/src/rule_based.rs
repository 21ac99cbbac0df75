//! The deterministic rule-based normaliser (docs/compatibility.md#normaliser) with whole-word matching
//! (docs/differences.md#whole-word-keyword-matching) and constraints grounded in the catalog (docs/differences.md#grounded-constraints).

use crate::compiled::CompiledPacks;
use crate::confirm::confirmation_mode;
use crate::facts::FactsCache;
use crate::grounding;
use crate::normalizer::{NormalizeError, Normalizer, NormalizerInput, Resolution};
use crate::pack::{DEFAULT_DOMAIN, FALLBACK_INTENT, KeywordPack};
use crate::pyfmt::{fmt2, py_bool, py_list_repr, round2};
use crate::words::Words;
use cfa_types::{AmbiguityLevel, DatasetRef, StateSignature, TargetLayer};
use std::borrow::Cow;

/// Competing interpretation when the catalog has no datasets.
pub const NO_CATALOG_INTERPRETATION: &str =
    "No catalog was provided, so the datasets of the intent cannot be grounded.";
/// Reasoning when the catalog has no datasets.
pub const NO_CATALOG_REASONING: &str =
    "No catalog datasets are available; the intent could not be grounded in any dataset.";
/// Competing interpretation when no catalog dataset matched.
pub const NO_MATCH_INTERPRETATION: &str =
    "No catalog dataset matched the intent; it may refer to datasets the catalog does not know.";
/// Reasoning when no catalog dataset matched.
pub const NO_MATCH_REASONING: &str = "No catalog dataset name appears in the intent as a word.";

/// States of an environment dataset that forbid publishing (B13: the reference only
/// looked for `partially_committed`, which state projection never writes).
pub const UNPUBLISHED_STATES: [&str; 2] = ["partially_committed", "committed_not_published"];

/// The rule-based normaliser over one or more keyword packs.
#[derive(Debug, Clone)]
pub struct RuleBasedNormalizer {
    packs: Vec<KeywordPack>,
    compiled: CompiledPacks,
    /// What recent intent texts' words say (a bounded cache; see [`FactsCache`]).
    facts: FactsCache,
}

impl Default for RuleBasedNormalizer {
    /// English only: reference-compatible layers, intents and domain (`general`).
    fn default() -> Self {
        Self::new(vec![KeywordPack::english()])
    }
}

impl RuleBasedNormalizer {
    /// A normaliser over `packs`, pooled in order (see [`KeywordPack`]). With no pack
    /// nothing matches: layer silver, intent `transform_and_persist`.
    pub fn new(packs: Vec<KeywordPack>) -> Self {
        let compiled = CompiledPacks::new(&packs);
        RuleBasedNormalizer {
            packs,
            compiled,
            facts: FactsCache::new(),
        }
    }

    /// English and Portuguese together.
    pub fn english_and_portuguese() -> Self {
        Self::new(vec![KeywordPack::english(), KeywordPack::portuguese()])
    }

    /// The packs in use.
    pub fn packs(&self) -> &[KeywordPack] {
        &self.packs
    }

    /// Resolves an intent; the rule-based normaliser cannot fail.
    pub fn resolve(&self, input: &NormalizerInput<'_>) -> Resolution {
        let words = Words::new(input.raw_intent);
        let facts = self.facts.get(input.raw_intent, &words, &self.compiled);
        let layer = facts.layer.unwrap_or(TargetLayer::Silver);
        let datasets: Vec<DatasetRef> = input
            .catalog
            .datasets
            .keys()
            .filter(|name| words.contains_name(&lowercase(name)))
            .filter_map(|name| input.catalog.dataset_ref(name))
            .collect();
        let domain = facts.domain.as_deref().unwrap_or(DEFAULT_DOMAIN).to_owned();
        let intent = facts
            .intent
            .as_deref()
            .unwrap_or(FALLBACK_INTENT)
            .to_owned();
        let constraints = grounding::constraints_from(&facts.cues, &datasets, layer);
        let signature = StateSignature {
            domain,
            intent,
            target_layer: layer,
            datasets,
            constraints,
            execution_context: input.execution_context.clone(),
            intent_id: input.intent_id.to_owned(),
            source_intent_raw: input.raw_intent.to_owned(),
        };
        finish(signature, input, "Rule-based resolution")
    }

    /// The pooled, compiled keywords (for other normalisers that share the rules).
    #[cfg_attr(not(feature = "llm"), allow(dead_code))]
    pub(crate) fn compiled(&self) -> &CompiledPacks {
        &self.compiled
    }

    /// Every intent label the packs know, plus the fallback.
    pub fn intent_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = self
            .compiled
            .intents
            .iter()
            .map(|(l, _)| l.as_str())
            .collect();
        if !labels.contains(&FALLBACK_INTENT) {
            labels.push(FALLBACK_INTENT);
        }
        labels
    }
}

/// Completes a resolution from a built signature: confidence, ambiguity, the
/// reference's overrides, environment constraints and the confirmation mode. The
/// grounded reasoning starts with `label`.
pub(crate) fn finish(
    signature: StateSignature,
    input: &NormalizerInput<'_>,
    label: &str,
) -> Resolution {
    let catalog_empty = input.catalog.is_empty();
    let mut confidence = base_confidence(&signature, catalog_empty);
    let mut ambiguity = ambiguity(confidence, input.strict, input.min_confidence);
    let mut competing = Vec::new();
    let reasoning;
    if catalog_empty {
        confidence = confidence.min(0.20);
        ambiguity = AmbiguityLevel::High;
        competing.push(NO_CATALOG_INTERPRETATION.to_owned());
        reasoning = NO_CATALOG_REASONING.to_owned();
    } else if signature.datasets.is_empty() {
        confidence = confidence.min(0.30);
        ambiguity = AmbiguityLevel::High;
        competing.push(NO_MATCH_INTERPRETATION.to_owned());
        reasoning = NO_MATCH_REASONING.to_owned();
    } else {
        if input.strict && confidence < input.min_confidence {
            ambiguity = AmbiguityLevel::High;
            competing.push(format!(
                "Confidence {} is below the minimum {}; the intent may mean something else.",
                fmt2(confidence),
                fmt2(input.min_confidence)
            ));
        }
        reasoning = format!(
            "{label}: layer={}, datasets={}, pii={}.",
            signature.target_layer,
            py_list_repr(signature.datasets.iter().map(|d| d.name.as_str())),
            py_bool(signature.contains_pii())
        );
    }
    let environment_constraints = input
        .environment
        .iter()
        .filter(|d| UNPUBLISHED_STATES.contains(&d.state.as_str()))
        .map(|d| format!("{}.state={} -> publish_allowed=false", d.name, d.state))
        .collect();
    let confirmation_mode = confirmation_mode(&signature, confidence, ambiguity, competing.len());
    Resolution {
        signature,
        confidence,
        ambiguity,
        confirmation_mode,
        competing_interpretations: competing,
        reasoning,
        environment_constraints,
        llm: None,
    }
}

impl Normalizer for RuleBasedNormalizer {
    fn normalize(&self, input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError> {
        Ok(self.resolve(input))
    }
}

fn lowercase(name: &str) -> Cow<'_, str> {
    if name.chars().any(char::is_uppercase) {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// docs/compatibility.md#confidence-and-ambiguity: 0.85 with datasets (0.45 without), −0.1 for PII on a
/// protected layer, −0.3 for an empty catalog, clamped to [0.05, 0.99], 2 decimals.
pub fn base_confidence(signature: &StateSignature, catalog_empty: bool) -> f64 {
    let mut c: f64 = if signature.datasets.is_empty() {
        0.45
    } else {
        0.85
    };
    if signature.contains_pii() && signature.writes_to_protected_layer() {
        c -= 0.1;
    }
    if catalog_empty {
        c -= 0.3;
    }
    round2(c.clamp(0.05, 0.99))
}

/// docs/compatibility.md#confidence-and-ambiguity (strict mode uses `min_confidence`, 0.65 by default).
pub fn ambiguity(confidence: f64, strict: bool, min_confidence: f64) -> AmbiguityLevel {
    if strict && confidence < min_confidence {
        AmbiguityLevel::High
    } else if confidence > 0.80 {
        AmbiguityLevel::Low
    } else if confidence > 0.60 {
        AmbiguityLevel::Medium
    } else {
        AmbiguityLevel::High
    }
}
