//! What a kernel is built from: the governance artifacts and the switches of the flow.

use cfa_policy::PolicyEngine;
use cfa_resolve::DEFAULT_MIN_CONFIDENCE;
use cfa_types::Catalog;

/// How strictly an intent must be grounded in the catalog before it is governed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grounding {
    /// The default (docs/differences.md#b2-fail-closed): the catalog is validated, an intent that matches no
    /// catalog dataset blocks (`NORMALIZATION_NO_CATALOG_DATASET_MATCH`), and so does a
    /// confidence below the minimum (`NORMALIZATION_LOW_CONFIDENCE`).
    #[default]
    Strict,
    /// Only an intent that matches no catalog dataset blocks.
    DatasetsOnly,
    /// Nothing blocks at grounding (`--lenient`): ungrounded intents reach the policy.
    Lenient,
}

/// Which optional phases run. Formalize and govern always run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Phases {
    /// Plan, generate code and validate it statically.
    pub generate: bool,
    /// Hand the artifact to the configured [`crate::ExecutionPhase`] (skipped, and said
    /// so in `phases_skipped`, when none is configured).
    pub execute: bool,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            generate: true,
            execute: true,
        }
    }
}

/// Everything that configures a [`crate::Kernel`] apart from its injected parts.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// The compiled policy bundle.
    pub policy: PolicyEngine,
    /// SHA-256 of the bundle file bytes (or of the built-in source); `""` for the
    /// default rules. Written into every audit event's details.
    pub policy_bundle_hash: String,
    /// The catalog intents are grounded in.
    pub catalog: Catalog,
    /// Catalog snapshot label put into signatures (`catalog_default` in the reference).
    pub catalog_snapshot_version: String,
    /// Context registry version id put into signatures (`v_initial` in the reference).
    pub context_registry_version_id: String,
    /// Code-generation backend name, looked up in the backend registry at build time.
    pub backend: String,
    /// Grounding mode (strict by default).
    pub grounding: Grounding,
    /// Minimum normaliser confidence in strict mode.
    pub min_confidence: f64,
    /// Warnings block the run (`Warnings treated as blocking (config).`).
    pub warnings_are_blocking: bool,
    /// Replan cap; `None` keeps the engine's (3 by default).
    pub max_replans: Option<u32>,
    /// Optional phases.
    pub phases: Phases,
}

impl KernelConfig {
    /// A config over `policy` and `catalog` with the defaults: bundle hash `""`,
    /// backend `pyspark`, strict grounding, minimum confidence 0.65, warnings not
    /// blocking, the engine's replan cap, every phase on.
    pub fn new(policy: PolicyEngine, catalog: Catalog) -> Self {
        KernelConfig {
            policy,
            policy_bundle_hash: String::new(),
            catalog,
            catalog_snapshot_version: "catalog_default".to_owned(),
            context_registry_version_id: "v_initial".to_owned(),
            backend: "pyspark".to_owned(),
            grounding: Grounding::Strict,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            warnings_are_blocking: false,
            max_replans: None,
            phases: Phases::default(),
        }
    }
}

impl Default for KernelConfig {
    /// The default rules over an empty catalog (every intent then blocks on grounding).
    fn default() -> Self {
        Self::new(PolicyEngine::default(), Catalog::empty())
    }
}
