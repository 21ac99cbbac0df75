//! The `Condition` trait, the parameters a rule hands to its condition, and what a
//! condition answers: whether it fires, and how to fix it (docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions).

use cfa_types::{Catalog, Fix, StateSignature, TargetLayer};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Everything a condition may look at: the signature and, when the caller has one,
/// the dataset catalog. Nothing else: conditions are pure.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// The signature being governed.
    pub signature: &'a StateSignature,
    /// The catalog, when one was given.
    pub catalog: Option<&'a Catalog>,
}

/// A condition's answer for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The condition does not hold; the rule stays silent.
    Pass,
    /// The condition holds.
    Fire,
    /// The condition holds, and the fault message gets this note appended in
    /// parentheses (e.g. which dataset disagrees with the catalog).
    FireWithNote(Cow<'static, str>),
}

impl Verdict {
    /// True for [`Verdict::Fire`] and [`Verdict::FireWithNote`].
    pub fn fired(&self) -> bool {
        !matches!(self, Verdict::Pass)
    }
}

/// A condition plugin could not decide. The engine turns this into a BLOCK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConditionError {
    /// What went wrong.
    pub message: String,
}

impl ConditionError {
    /// A new error.
    pub fn new(message: impl Into<String>) -> Self {
        ConditionError {
            message: message.into(),
        }
    }
}

/// A predicate over a signature, with the fix that makes it stop holding.
///
/// Built-in conditions are compiled to an enum and never go through this trait;
/// plugins implement it and register a [`ConditionFactory`] by name.
pub trait Condition: Send + Sync + std::fmt::Debug {
    /// Whether the condition holds for `ctx`.
    fn check(&self, ctx: &EvalContext<'_>) -> Result<Verdict, ConditionError>;

    /// The automatic fix for `ctx` (called only after the condition fired). The
    /// default says no automatic fix exists.
    fn fix(&self, ctx: &EvalContext<'_>) -> Fix {
        let _ = ctx;
        Fix::Manual {
            reason: "this condition declares no automatic fix; change the intent by hand".into(),
        }
    }
}

/// Builds a plugin [`Condition`] from a rule's parameters.
pub trait ConditionFactory: Send + Sync {
    /// Builds the condition, or explains why the parameters are unusable.
    fn build(&self, params: &RuleParams) -> Result<Box<dyn Condition>, ConditionError>;
}

impl<F> ConditionFactory for F
where
    F: Fn(&RuleParams) -> Result<Box<dyn Condition>, ConditionError> + Send + Sync,
{
    fn build(&self, params: &RuleParams) -> Result<Box<dyn Condition>, ConditionError> {
        self(params)
    }
}

/// The parameters a rule passes to its condition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleParams {
    /// Narrows the rule to writes into this layer (docs/differences.md#b7-bundle-semantics).
    pub target_layer: Option<TargetLayer>,
    /// `missing_partition`: size from which a dataset needs a partition filter (default 1.0).
    pub min_size_gb: Option<f64>,
    /// `cost_budget_exceeded`: the budget in DBU (default 0, meaning "ceiling must be positive").
    pub max_dbu: Option<f64>,
    /// `shuffle_budget_exceeded`: the largest allowed shuffle in GB (default 100.0).
    pub max_shuffle_gb: Option<f64>,
    /// Every other key of the rule object, for plugins with parameters of their own.
    pub extra: Map<String, Value>,
}

/// Default of `min_size_gb`.
pub const DEFAULT_MIN_SIZE_GB: f64 = 1.0;
/// Default of `max_shuffle_gb`.
pub const DEFAULT_MAX_SHUFFLE_GB: f64 = 100.0;
