//! `ConditionRegistry`: condition names to implementations. The ten built-ins
//! register themselves; plugins add factories by name.

use crate::builtins::{BUILTIN_NAMES, BuiltinCondition};
use crate::condition::{Condition, ConditionError, ConditionFactory, RuleParams};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A condition name that no one registered (docs/compatibility.md#conditions wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown condition '{name}'. Registered conditions: {}", .registered.join(", "))]
pub struct UnknownCondition {
    /// The name that was asked for.
    pub name: String,
    /// Every registered name, sorted.
    pub registered: Vec<String>,
}

/// Why a rule's condition could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No condition has that name.
    #[error(transparent)]
    Unknown(#[from] UnknownCondition),
    /// A plugin rejected the rule's parameters.
    #[error(transparent)]
    Plugin(#[from] PluginRejected),
}

/// A plugin condition refused the parameters of a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition '{name}' rejected its parameters: {source}")]
pub struct PluginRejected {
    /// The condition name.
    pub name: String,
    /// The plugin's error.
    pub source: ConditionError,
}

/// A compiled condition: built-ins by enum, plugins behind a trait object.
#[derive(Debug, Clone)]
pub enum CompiledCondition {
    /// A built-in condition.
    Builtin(BuiltinCondition),
    /// A plugin condition.
    Plugin(Arc<dyn Condition>),
}

#[derive(Clone)]
enum Entry {
    Builtin,
    Plugin(Arc<dyn ConditionFactory>),
}

/// Condition names to implementations.
#[derive(Clone)]
pub struct ConditionRegistry {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for ConditionRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionRegistry")
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for ConditionRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl ConditionRegistry {
    /// A registry holding the ten built-in conditions.
    pub fn with_builtins() -> Self {
        let entries = BUILTIN_NAMES
            .iter()
            .map(|n| ((*n).to_owned(), Entry::Builtin))
            .collect();
        ConditionRegistry { entries }
    }

    /// Registers (or replaces) a plugin condition under `name`.
    pub fn register(&mut self, name: impl Into<String>, factory: impl ConditionFactory + 'static) {
        self.entries
            .insert(name.into(), Entry::Plugin(Arc::new(factory)));
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// True when `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The error for an unknown `name`.
    pub fn unknown(&self, name: &str) -> UnknownCondition {
        UnknownCondition {
            name: name.to_owned(),
            registered: self.names().map(str::to_owned).collect(),
        }
    }

    /// Compiles the condition `name` with a rule's parameters.
    pub fn build(&self, name: &str, params: &RuleParams) -> Result<CompiledCondition, BuildError> {
        match self.entries.get(name) {
            None => Err(self.unknown(name).into()),
            Some(Entry::Builtin) => BuiltinCondition::build(name, params)
                .map(CompiledCondition::Builtin)
                .ok_or_else(|| self.unknown(name).into()),
            Some(Entry::Plugin(f)) => f
                .build(params)
                .map(|b| CompiledCondition::Plugin(Arc::from(b)))
                .map_err(|source| {
                    BuildError::Plugin(PluginRejected {
                        name: name.to_owned(),
                        source,
                    })
                }),
        }
    }
}
