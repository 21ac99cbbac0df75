//! Φ formalize: turns intent text into a `StateSignature` grounded in a catalog
//! (the [`Normalizer`] trait, the whole-word [`RuleBasedNormalizer`] over data-driven
//! [`KeywordPack`]s, and an opt-in LLM normaliser behind the `llm` feature), turns the
//! models of a dbt `manifest.json` into signatures ([`dbt`]), and decides how much
//! confirmation the result needs ([`confirm()`], [`ConfirmationHandler`]). It must not
//! know about policy rules, planning, code generation, execution, storage or audit: it
//! reads no clock, generates no ids, reads no files and parses no YAML (callers hand it
//! JSON values or JSON text).
//!
//! The rule-based normaliser memoises what an intent text's words alone say (layer,
//! domain and intent labels, constraint cues) in a small bounded cache keyed by the
//! full text (docs/architecture.md#performance-gates); a hit is what reading the words
//! returns.
//!
//! # Example
//!
//! ```
//! use cfa_resolve::{AlwaysReject, NormalizerInput, RuleBasedNormalizer, confirm};
//! use cfa_types::{Catalog, ConfirmationMode, TargetLayer};
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
//!     "nfe": {"classification": "high_volume", "size_gb": 4000,
//!             "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
//!     "clientes": {"classification": "sensitive", "pii_columns": ["cpf", "email"],
//!                  "partition_column": "processing_date", "merge_keys": ["cliente_id"]}}}))?;
//! let normalizer = RuleBasedNormalizer::default(); // English keywords
//!
//! let intent = "Join nfe with clientes daily, anonymize pii, into silver";
//! let r = normalizer.resolve(&NormalizerInput::new(intent, &catalog, "intent-1"));
//! let sig = &r.signature;
//! assert_eq!(sig.target_layer, TargetLayer::Silver);
//! assert_eq!(sig.intent, "reconciliation_and_persist");
//! let names: Vec<&str> = sig.datasets.iter().map(|d| d.name.as_str()).collect();
//! assert_eq!(names, ["nfe", "clientes"]); // catalog order, catalog metadata
//! // Grounded constraints: "anonymize pii" and "daily" are what make them safe.
//! assert!(sig.constraints.no_pii_raw);
//! assert_eq!(sig.constraints.partition_by, ["processing_date"]);
//! // PII written to silver needs a hard confirmation; a rejecting handler blocks.
//! assert_eq!(r.confirmation_mode, ConfirmationMode::Hard);
//! assert!(!confirm(&r, &AlwaysReject).approved);
//!
//! // Whole words only: "conference" does not name the dataset `nfe`.
//! let r = normalizer.resolve(&NormalizerInput::new("load the conference room", &catalog, "i2"));
//! assert!(r.signature.datasets.is_empty());
//!
//! // Without "anonymize", the PII is raw: policy will replan or block this signature.
//! let r = normalizer.resolve(&NormalizerInput::new("Join nfe with clientes", &catalog, "i3"));
//! assert!(!r.signature.constraints.no_pii_raw);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Matching (docs/differences.md#whole-word-keyword-matching)
//!
//! The intent is lowercased and split on every char that is not a Unicode letter, a
//! Unicode digit or `_`. A layer, intent, domain or constraint keyword matches a word
//! that *starts with* it (multi-word keywords match consecutive words; `#` is any
//! number). A dataset matches when a word *equals* its lowercased name, so
//! "conference" never matches `nfe` and `nfe_backup` never matches `nfe` (names with
//! separators such as `sales.orders` must occur with word boundaries on both sides).
//! Layers are tried gold, silver, bronze (default silver); intents and domains in pack
//! order (defaults `transform_and_persist` and `general`); datasets in catalog key
//! order, with their catalog metadata. Confidence, ambiguity, overrides and the
//! confirmation mode follow docs/compatibility.md#normaliser exactly.
//!
//! # Constraints (docs/differences.md#grounded-constraints)
//!
//! The reference always emitted safe constraints, so no policy rule could ever fire on
//! its output. Here every constraint states what the words and the catalog say:
//!
//! | constraint | value |
//! |---|---|
//! | `no_pii_raw` | `true` when no matched dataset has PII columns (vacuously safe), or when the words ask for anonymisation (EN: anonymi…, pseudonymi…, hash, mask, tokeni…, sha256, redact, encrypt, de-identif…, drop/remove/strip/exclude/without/no pii; PT: anonimiz…, pseudonimiz…, mascar…, hash, tokeniz…, criptograf…, sem pii, remover pii, sem/remover dados pessoais); otherwise `false`, so policy replans with `no_pii_raw=true` |
//! | `partition_by` | the matched datasets' own `partition_column`s (deduplicated, catalog order) when the words ask for a time-bounded or incremental scope (EN: daily, today, yesterday, hourly, incremental, partition…, last/past N, last day/week/month/hour, this week/month, for (the) date, date range; PT: diári…, hoje, ontem, incremental, partiç…/particion…, últimos/últimas N, último dia, última semana, último mês, por data, para a data); otherwise `[]`, so policy replans with the catalog's partition column |
//! | `merge_key_required` | `true` on silver and gold unless the words ask for an append or a full overwrite (EN: append…, overwrit…, full refresh/reload/load, replace all, insert only, truncate; PT: acrescentar, anexar, sobrescrev…, carga completa/total, substituir tudo, somente inserç…, truncar); `false` on bronze |
//! | `enforce_types` | always `true` |
//! | `max_cost_dbu` | the number (as a float) of the first `<number> dbu` (`max 20 DBU`), else of the first budget word followed within two words by a number (`budget 20`, `budget of 12.5`, `custo máximo 20`, `orçamento de 12,5`); otherwise `null`. `1,000` is a thousand, `12,5` and `12.5` are twelve and a half |
//! | `custom` | always `{}` |
//!
//! Environment constraints: every environment dataset in state `partially_committed`
//! or `committed_not_published` (B13) gives `"{name}.state={state} -> publish_allowed=false"`.
//!
//! # Reasoning strings
//!
//! The reference's fixed sentences are paraphrased (see the constants in
//! [`rule_based`]); a grounded resolution reads
//! `Rule-based resolution: layer=silver, datasets=['nfe', 'clientes'], pii=True.`

mod compiled;
pub mod confirm;
pub mod dbt;
mod facts;
pub mod faults;
mod grounding;
#[cfg(feature = "llm")]
pub mod llm;
mod normalizer;
mod pack;
mod pyfmt;
pub mod rule_based;
mod words;

pub use confirm::{
    AlwaysReject, AutoApprove, ConfirmationAnswer, ConfirmationHandler, ConfirmationOutcome,
    ConfirmationRequest, TerminalHandler, confirm, confirmation_mode, handler_reason,
};
pub use normalizer::{
    BackendError, DEFAULT_MIN_CONFIDENCE, DatasetState, InvalidAnswerError, LlmAudit,
    NormalizeError, Normalizer, NormalizerInput, Resolution,
};
pub use pack::{
    ConstraintKeywords, DEFAULT_DOMAIN, EmptyKeywordError, FALLBACK_INTENT, InvalidFieldError,
    KeywordPack, LayerKeywords, PackError, UnknownKeyError,
};
pub use rule_based::RuleBasedNormalizer;
