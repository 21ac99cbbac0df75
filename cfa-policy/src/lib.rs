//! Γ govern: this crate owns the policy decision of CFA — the `Condition` trait and
//! its registry, the ten built-in conditions and the fixes they declare as patches,
//! policy bundles (YAML/JSON loading with located validation issues, the built-in
//! bundles resolved by name), the default ruleset, and the pure `PolicyEngine` that
//! turns a signature, a bundle, an optional catalog and a replan count into approve,
//! replan or block, and behaviour specs ([`spec`]: failure modes turned into rules, a
//! taxonomy and test intents), and golden policy test cases ([`cases`]: parsing, running,
//! rule coverage, JUnit). It also holds the project's only YAML reader ([`yaml`]). It does
//! no I/O, reads no clock and draws no randomness, and it must not know about
//! planning, code generation, execution, audit storage or the CLI.
//!
//! # Example: deciding a signature against a catalog
//!
//! Load a built-in bundle by name, read a catalog and a signature (both through
//! `cfa-types`), decide, and apply the decision's own fix:
//!
//! ```
//! use cfa_policy::PolicyEngine;
//! use cfa_types::{Catalog, PolicyAction, StateSignature};
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
//!     "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [],
//!             "partition_column": "processing_date", "merge_keys": ["nfe_id"]}}}))?;
//! let engine = PolicyEngine::builtin("prod-v1")?; // also finops-strict-v1, eu-ai-act-v1, ...
//! assert_eq!(engine.version(), "prod-v1.0");
//!
//! let sig = StateSignature::parse_validated(
//!     r#"{"domain": "fiscal", "intent": "ingest", "target_layer": "silver",
//!         "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
//!                       "pii_columns": [], "partition_column": "processing_date",
//!                       "merge_keys": ["nfe_id"]}],
//!         "constraints": {"partition_by": []},
//!         "execution_context": {"policy_bundle_version": "prod-v1.0",
//!             "catalog_snapshot_version": "c1", "context_registry_version_id": "v1"}}"#,
//!     true,
//! )?;
//!
//! // A 4 TB scan without a partition filter: replan, with the fix as data.
//! let decision = engine.evaluate_with_catalog(&sig, Some(&catalog), 0);
//! assert_eq!(decision.action, PolicyAction::Replan);
//! assert_eq!(decision.faults[0].code, "FINOPS_MISSING_TEMPORAL_PREDICATE");
//! assert_eq!(decision.patches[0].path, "constraints.partition_by");
//! assert_eq!(
//!     decision.reasoning,
//!     "action=replan | faults=[FINOPS_MISSING_TEMPORAL_PREDICATE] | replan 1/3"
//! );
//!
//! // The patch uses the dataset's own partition column; the fixed signature is approved.
//! let fixed = sig.apply_patches(&decision.patches)?;
//! assert_eq!(fixed.constraints.partition_by, ["processing_date"]);
//! let again = engine.evaluate_with_catalog(&fixed, Some(&catalog), 1);
//! assert_eq!(again.action, PolicyAction::Approve);
//! assert_eq!(again.reasoning, "All rules passed. Execution approved.");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod builtin;
mod builtins;
mod bundle;
pub mod cases;
mod condition;
mod defaults;
mod engine;
mod fired;
mod locate;
mod registry;
pub mod spec;
pub mod synth;
mod validate;
pub mod yaml;

pub use builtins::{BUILTIN_NAMES, BuiltinCondition};
pub use bundle::{
    BundleError, BundleFormat, InvalidBundle, LocatedIssue, ParseError, PolicyBundle, RuleSpec,
    load_bundle, load_bundle_with, parse_text,
};
pub use condition::{
    Condition, ConditionError, ConditionFactory, DEFAULT_MAX_SHUFFLE_GB, DEFAULT_MIN_SIZE_GB,
    EvalContext, RuleParams, Verdict,
};
pub use defaults::DEFAULT_VERSION;
pub use engine::{
    CONDITION_ERROR_CODE, DEFAULT_MAX_REPLAN_ATTEMPTS, ExtendError, MAX_REPLAN_CODE, PolicyEngine,
    RuleDescription, STAGE,
};
pub use locate::{Position, PositionMap};
pub use registry::{
    BuildError, CompiledCondition, ConditionRegistry, PluginRejected, UnknownCondition,
};
pub use validate::{validate_bundle_value, validate_bundle_value_with};
