//! The bundles that ship inside the crate and resolve by name (docs/differences.md#b7-bundle-semantics).

use crate::bundle::{BundleError, BundleFormat, load_bundle};
use crate::engine::PolicyEngine;
use crate::registry::BuildError;

const BUNDLES: [(&str, &str); 5] = [
    (
        "compliance-strict-v1",
        include_str!("../bundles/compliance-strict-v1.yaml"),
    ),
    ("eu-ai-act-v1", include_str!("../bundles/eu-ai-act-v1.yaml")),
    (
        "finops-strict-v1",
        include_str!("../bundles/finops-strict-v1.yaml"),
    ),
    ("lgpd-v1", include_str!("../bundles/lgpd-v1.yaml")),
    ("prod-v1", include_str!("../bundles/prod-v1.yaml")),
];

/// Why a built-in bundle could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    /// No built-in has that name.
    #[error(transparent)]
    Unknown(#[from] UnknownBuiltin),
    /// The shipped text does not load (a defect caught by this crate's tests).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The shipped rules do not compile (a defect caught by this crate's tests).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// A bundle name that is not built in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown built-in policy bundle '{name}'. Built-in bundles: {}", .available.join(", "))]
pub struct UnknownBuiltin {
    /// The name asked for.
    pub name: String,
    /// Every built-in name, sorted.
    pub available: Vec<String>,
}

/// Built-in bundle names, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUNDLES.iter().map(|(n, _)| *n)
}

/// The YAML source of a built-in bundle.
pub fn source(name: &str) -> Option<&'static str> {
    BUNDLES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// True when `name` is a built-in bundle name.
pub fn is_builtin(name: &str) -> bool {
    source(name).is_some()
}

/// Parses and validates the built-in bundle `name`.
pub fn load(name: &str) -> Result<crate::bundle::PolicyBundle, BuiltinError> {
    let text = source(name).ok_or_else(|| UnknownBuiltin {
        name: name.to_owned(),
        available: names().map(str::to_owned).collect(),
    })?;
    Ok(load_bundle(
        text,
        BundleFormat::Yaml,
        &format!("builtin:{name}"),
    )?)
}

impl PolicyEngine {
    /// The engine of the built-in bundle `name` (e.g. `prod-v1`).
    pub fn builtin(name: &str) -> Result<Self, BuiltinError> {
        Ok(PolicyEngine::from_bundle(load(name)?)?)
    }
}
