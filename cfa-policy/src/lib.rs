//! Γ govern: this crate owns the policy decision of CFA — the `Condition` trait and
//! its registry, the ten built-in conditions and the fixes they declare as patches,
//! policy bundles (YAML/JSON loading with located validation issues, the built-in
//! bundles resolved by name), the default ruleset, and the pure `PolicyEngine` that
//! turns a signature, a bundle, an optional catalog and a replan count into approve,
//! replan or block. It also holds the project's only YAML reader ([`yaml`]). It does
//! no I/O, reads no clock and draws no randomness, and it must not know about
//! planning, code generation, execution, audit storage or the CLI.

pub mod builtin;
mod builtins;
mod bundle;
mod condition;
mod defaults;
mod engine;
mod locate;
mod registry;
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
    CONDITION_ERROR_CODE, DEFAULT_MAX_REPLAN_ATTEMPTS, MAX_REPLAN_CODE, PolicyEngine,
    RuleDescription, STAGE,
};
pub use locate::{Position, PositionMap};
pub use registry::{
    BuildError, CompiledCondition, ConditionRegistry, PluginRejected, UnknownCondition,
};
pub use validate::{validate_bundle_value, validate_bundle_value_with};
