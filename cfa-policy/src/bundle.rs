//! Policy bundles (docs/compatibility.md#policy-bundles): the typed rule list, and loading it from YAML
//! or JSON text with every problem located at its line and column.

use crate::condition::RuleParams;
use crate::locate::{Position, PositionMap};
use crate::registry::ConditionRegistry;
use crate::validate::{self, NUMERIC_PARAMS, REQUIRE_APPROVAL};
use crate::yaml;
use cfa_types::validate::Issue;
use cfa_types::{FaultFamily, FaultSeverity, PolicyAction, TargetLayer};
use serde_json::{Map, Value};
use std::fmt;

/// One rule of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Unique rule name.
    pub name: String,
    /// Registered condition name.
    pub condition: String,
    /// What the rule demands when it fires.
    pub action: PolicyAction,
    /// Unique fault code.
    pub fault_code: String,
    /// Severity of the fault.
    pub severity: FaultSeverity,
    /// Family of the fault (default semantic).
    pub family: FaultFamily,
    /// The fault message.
    pub message: String,
    /// Remediation steps.
    pub remediation: Vec<String>,
    /// Condition parameters.
    pub params: RuleParams,
}

impl RuleSpec {
    /// Whether an operator's approval can lift this rule's fault: the rule's action is
    /// `require_approval` (kept as `block` plus the flag `require_approval: true`, which
    /// may also be written beside `action: block`), or its condition is
    /// `unauthorized_gold_write` (whose fix is an approval id).
    pub fn requires_approval(&self) -> bool {
        self.condition == "unauthorized_gold_write"
            || self.params.extra.get(REQUIRE_APPROVAL) == Some(&Value::Bool(true))
    }
}

/// A validated bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBundle {
    /// The bundle version label.
    pub version: String,
    /// Free-text description, if any.
    pub description: Option<String>,
    /// The rules, in evaluation order.
    pub rules: Vec<RuleSpec>,
}

/// How bundle text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (anything else).
    Json,
}

impl BundleFormat {
    /// `.yaml`/`.yml` (any case) is YAML; anything else JSON, as the reference decides.
    pub fn from_path_str(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            BundleFormat::Yaml
        } else {
            BundleFormat::Json
        }
    }
}

/// A validation issue with where it sits in the text, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedIssue {
    /// The issue (reference path and message).
    pub issue: Issue,
    /// Line and column of the offending node (or of the object missing a key).
    pub position: Option<Position>,
}

impl fmt::Display for LocatedIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} (line {}, column {})", self.issue, p.line, p.column),
            None => write!(f, "{}", self.issue),
        }
    }
}

/// Bundle text that is not readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse policy bundle {origin}{}: {message}", .position.map(|p| format!(":{p}")).unwrap_or_default())]
pub struct ParseError {
    /// Where the text came from (a path or a label).
    pub origin: String,
    /// Line and column, when the parser knows.
    pub position: Option<Position>,
    /// What the parser said.
    pub message: String,
}

/// A readable bundle that breaks the format rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy bundle in {origin}: {}", join(.issues))]
pub struct InvalidBundle {
    /// Where the text came from.
    pub origin: String,
    /// Every issue, in the reference's order.
    pub issues: Vec<LocatedIssue>,
}

fn join(issues: &[LocatedIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a bundle could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The text is not YAML/JSON.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The document is not a valid bundle.
    #[error(transparent)]
    Invalid(#[from] InvalidBundle),
}

/// Parses bundle text and validates it against the built-in conditions.
/// `origin` names the input in messages (usually the file path).
pub fn load_bundle(
    text: &str,
    format: BundleFormat,
    origin: &str,
) -> Result<PolicyBundle, BundleError> {
    load_bundle_with(text, format, origin, &ConditionRegistry::with_builtins())
}

/// [`load_bundle`] with plugin conditions allowed.
pub fn load_bundle_with(
    text: &str,
    format: BundleFormat,
    origin: &str,
    registry: &ConditionRegistry,
) -> Result<PolicyBundle, BundleError> {
    let value = parse_text(text, format, origin)?;
    PolicyBundle::from_value_with(&value, registry).map_err(|issues| {
        let map = match format {
            BundleFormat::Yaml => PositionMap::from_yaml(text),
            BundleFormat::Json => PositionMap::from_json(text),
        };
        let issues = issues
            .into_iter()
            .map(|issue| LocatedIssue {
                position: map.as_ref().map(|m| m.locate_bundle_path(&issue.path)),
                issue,
            })
            .collect();
        BundleError::Invalid(InvalidBundle {
            origin: origin.to_owned(),
            issues,
        })
    })
}

/// Parses YAML or JSON bundle text into a value (an empty YAML file is `null`).
pub fn parse_text(text: &str, format: BundleFormat, origin: &str) -> Result<Value, ParseError> {
    match format {
        BundleFormat::Yaml => yaml::parse_value(text).map_err(|e| ParseError {
            origin: origin.to_owned(),
            position: e.position,
            message: e.message,
        }),
        BundleFormat::Json => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(text).map_err(|e| {
                let info = cfa_types::json_error::describe(text, &e);
                ParseError {
                    origin: origin.to_owned(),
                    position: (e.line() > 0).then_some(Position {
                        line: info.line,
                        column: info.column,
                    }),
                    message: info.message,
                }
            })
        }
    }
}

impl PolicyBundle {
    /// Validates a bundle value against the built-in conditions and builds it.
    pub fn from_value(data: &Value) -> Result<Self, Vec<Issue>> {
        Self::from_value_with(data, &ConditionRegistry::with_builtins())
    }

    /// Validates against `registry`'s condition names and builds the bundle.
    pub fn from_value_with(data: &Value, registry: &ConditionRegistry) -> Result<Self, Vec<Issue>> {
        let issues = validate::validate_bundle_value_with(data, registry);
        if !issues.is_empty() {
            return Err(issues);
        }
        let mut sink = Vec::new();
        let Some(bundle) = validate::unwrap_bundle(data, &mut sink) else {
            return Err(sink);
        };
        let rules = bundle
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(Value::as_object)
                    .map(rule_from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(PolicyBundle {
            version: str_of(bundle, "version"),
            description: bundle
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            rules,
        })
    }
}

fn str_of(m: &Map<String, Value>, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

const KNOWN_KEYS: [&str; 12] = [
    "name",
    "condition",
    "action",
    "fault_code",
    "severity",
    "family",
    "message",
    "remediation",
    "target_layer",
    "min_size_gb",
    "max_dbu",
    "max_shuffle_gb",
];

/// Builds a rule from a validated rule object. The fallbacks mirror the reference's
/// and are unreachable after validation.
fn rule_from(rule: &Map<String, Value>) -> RuleSpec {
    let num = |k: &str| rule.get(k).and_then(Value::as_f64);
    let action_text = rule.get("action").and_then(Value::as_str);
    let mut params = RuleParams {
        target_layer: rule
            .get("target_layer")
            .and_then(Value::as_str)
            .and_then(TargetLayer::parse),
        min_size_gb: num(NUMERIC_PARAMS[0]),
        max_dbu: num(NUMERIC_PARAMS[1]),
        max_shuffle_gb: num(NUMERIC_PARAMS[2]),
        extra: rule
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    if action_text == Some(REQUIRE_APPROVAL) {
        params
            .extra
            .insert(REQUIRE_APPROVAL.to_owned(), Value::Bool(true));
    }
    RuleSpec {
        name: rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("unnamed")
            .to_owned(),
        condition: str_of(rule, "condition"),
        action: match action_text {
            Some(REQUIRE_APPROVAL) => PolicyAction::Block,
            other => other
                .and_then(PolicyAction::parse)
                .unwrap_or(PolicyAction::Replan),
        },
        fault_code: str_of(rule, "fault_code"),
        severity: rule
            .get("severity")
            .and_then(Value::as_str)
            .and_then(FaultSeverity::parse)
            .unwrap_or(FaultSeverity::High),
        family: rule
            .get("family")
            .and_then(Value::as_str)
            .and_then(FaultFamily::from_short_name)
            .unwrap_or(FaultFamily::Semantic),
        message: str_of(rule, "message"),
        remediation: rule
            .get("remediation")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        params,
    }
}
