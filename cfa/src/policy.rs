//! Policy in depth: the [`PolicyEngine`] and its bundles (YAML/JSON loading with located
//! issues, the built-in bundles by name in [`builtin`]), behaviour specs ([`spec`]), the [`Condition`] trait and its
//! registry for custom conditions, and the project's YAML reader ([`yaml`]). Re-exported
//! from cfa-policy.
//!
//! ```
//! use cfa::policy::{PolicyEngine, builtin};
//! use cfa::{PolicyAction, StateSignature};
//!
//! assert!(builtin::is_builtin("prod-v1"));
//! let engine = PolicyEngine::builtin("prod-v1")?;
//! let sig = StateSignature::from_json_str(
//!     r#"{"domain":"d","intent":"i","target_layer":"gold",
//!         "datasets":[{"name":"c","pii_columns":["cpf"]}],"constraints":{"no_pii_raw":false}}"#,
//! )
//! .map_err(|e| e.to_string())?;
//! assert_eq!(engine.evaluate(&sig, 0).action, PolicyAction::Block);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use cfa_policy::{
    BUILTIN_NAMES, BuildError, BuiltinCondition, BundleError, BundleFormat, CONDITION_ERROR_CODE,
    CompiledCondition, Condition, ConditionError, ConditionFactory, ConditionRegistry,
    DEFAULT_MAX_REPLAN_ATTEMPTS, DEFAULT_MAX_SHUFFLE_GB, DEFAULT_MIN_SIZE_GB, DEFAULT_VERSION,
    EvalContext, ExtendError, InvalidBundle, LocatedIssue, MAX_REPLAN_CODE, ParseError,
    PluginRejected, PolicyBundle, PolicyEngine, Position, PositionMap, RuleDescription, RuleParams,
    RuleSpec, STAGE, UnknownCondition, Verdict, load_bundle, load_bundle_with, parse_text,
    validate_bundle_value, validate_bundle_value_with,
};

/// The built-in bundles, resolved by name (`prod-v1`, …).
pub mod builtin {
    pub use cfa_policy::builtin::{BuiltinError, UnknownBuiltin, is_builtin, load, names, source};
}

/// Golden policy test cases (`cfa policy test`): parsing, running, rule coverage, reports.
pub mod cases {
    pub use cfa_policy::cases::{
        CaseError, CaseFormat, CaseResult, CaseSource, CaseStatus, Difference, Expectation,
        ExpectedPatch, PolicyCase, RuleCoverage, SuiteReport, case_value, fired_rules, parse_cases,
        run_case,
    };
}

/// Behaviour specs: failure modes turned into rules, a taxonomy and test intents.
pub mod spec {
    pub use cfa_policy::spec::{
        BehaviorSpec, DEFAULT_TEST_INTENTS, FailureMode, InvalidSpec, MAX_INTENTS_PER_CATEGORY,
        SpecAction, SpecError, load_spec, load_spec_with,
    };
}

/// The project's only YAML reader: YAML text to a JSON value, with located errors.
pub mod yaml {
    pub use cfa_policy::yaml::{YamlError, from_str, parse_value};
}
