//! Behaviour specs (docs/cli.md#behaviour-specs): a YAML document that names the ways a
//! pipeline or agent must not behave (`behavior.failure_modes`), each on one of the
//! registered conditions, and what this crate makes of it: one policy rule per failure
//! mode (`behavior_spec_{code}`, fault `BEHAVIOR_{CODE}`), a taxonomy that groups the
//! failure modes by category, and test intents that exercise them.
//!
//! Unlike the reference, a failure mode's `action` is honoured (`block` blocks,
//! `replan` replans with the condition's own fix, `warn` reports a warning), and a
//! condition nobody registered is a load error at its line and column.
//!
//! ```
//! use cfa_policy::spec::{SpecAction, load_spec};
//!
//! let spec = load_spec(
//!     "behavior:\n  name: pii-join\n  failure_modes:\n    - code: raw_pii\n      label: Raw PII\n      description: PII reaches a protected layer untreated\n      condition: pii_in_protected_layer\n      severity: medium\n      action: block\n",
//!     "pii-join.yaml",
//! )?;
//! let rules = spec.rules();
//! assert_eq!(rules[0].name, "behavior_spec_raw_pii");
//! assert_eq!(rules[0].fault_code, "BEHAVIOR_RAW_PII");
//! assert_eq!(rules[0].message, "Raw PII: PII reaches a protected layer untreated");
//! assert_eq!(rules[0].severity.as_str(), "high"); // medium maps to high
//! assert_eq!(spec.failure_modes[0].action, SpecAction::Block);
//!
//! let bad = load_spec(
//!     "behavior:\n  name: x\n  failure_modes:\n    - code: a\n      label: A\n      description: d\n      condition: no_such_condition\n",
//!     "x.yaml",
//! )
//! .unwrap_err();
//! assert!(bad.to_string().contains("x.yaml:7:18"), "{bad}");
//! # Ok::<(), cfa_policy::spec::SpecError>(())
//! ```

use crate::bundle::{LocatedIssue, ParseError, RuleSpec};
use crate::condition::RuleParams;
use crate::locate::PositionMap;
use crate::registry::ConditionRegistry;
use crate::yaml;
use cfa_types::validate::{Issue, is_non_empty_str, is_non_negative_number};
use cfa_types::{FaultFamily, FaultSeverity, PolicyAction, TargetLayer};
use serde_json::{Map, Value, json};

/// Test intents per category at most, whatever `--count` asks (the reference's cap).
pub const MAX_INTENTS_PER_CATEGORY: usize = 3;
/// Test intents per category when neither the caller nor `generate.test_intents` says.
pub const DEFAULT_TEST_INTENTS: usize = 5;

/// What a failure mode demands when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecAction {
    /// Stop: the rule's action is `block`.
    Block,
    /// Apply the condition's fix and decide again: the rule's action is `replan`.
    Replan,
    /// Report and go on: the rule approves with a `warning` fault, so the run ends
    /// `approved_with_warnings` (blocked under `--warnings-blocking`).
    Warn,
}

impl SpecAction {
    /// The value as written in a spec.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpecAction::Block => "block",
            SpecAction::Replan => "replan",
            SpecAction::Warn => "warn",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "block" => Some(SpecAction::Block),
            "replan" => Some(SpecAction::Replan),
            "warn" => Some(SpecAction::Warn),
            _ => None,
        }
    }

    /// The policy action of the rule a failure mode becomes.
    pub const fn policy_action(self) -> PolicyAction {
        match self {
            SpecAction::Block => PolicyAction::Block,
            SpecAction::Replan => PolicyAction::Replan,
            SpecAction::Warn => PolicyAction::Approve,
        }
    }
}

/// One failure mode of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureMode {
    /// The code as written (`raw_pii`); the rule is `behavior_spec_{code}`.
    pub code: String,
    /// Short label, the first part of the fault message.
    pub label: String,
    /// What goes wrong, the second part of the fault message.
    pub description: String,
    /// Registered condition name.
    pub condition: String,
    /// Severity of the fault (`medium` already mapped to `high`; `warning` for `warn`).
    pub severity: FaultSeverity,
    /// What the rule demands.
    pub action: SpecAction,
    /// The condition's parameters (`target_layer` narrows the rule to that layer).
    pub params: RuleParams,
    /// Remediation steps.
    pub remediation: Vec<String>,
    /// Free-form metadata, carried into the taxonomy (`category` groups failure modes).
    pub metadata: Map<String, Value>,
}

impl FailureMode {
    /// `behavior_spec_{code}`.
    pub fn rule_name(&self) -> String {
        format!("behavior_spec_{}", self.code)
    }

    /// `BEHAVIOR_{CODE}`.
    pub fn fault_code(&self) -> String {
        format!("BEHAVIOR_{}", self.code.to_ascii_uppercase())
    }

    /// `{label}: {description}`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.label, self.description)
    }

    /// `metadata.category` when it is a non-empty string, else the condition's family
    /// (`governance`, `finops`, `contract`; `custom` for plugin conditions).
    pub fn category(&self) -> String {
        match self.metadata.get("category").and_then(Value::as_str) {
            Some(c) if !c.trim().is_empty() => c.trim().to_owned(),
            _ => condition_category(&self.condition).to_owned(),
        }
    }

    /// The policy rule this failure mode becomes.
    pub fn rule(&self) -> RuleSpec {
        RuleSpec {
            name: self.rule_name(),
            condition: self.condition.clone(),
            action: self.action.policy_action(),
            fault_code: self.fault_code(),
            severity: self.severity,
            family: FaultFamily::Semantic,
            message: self.message(),
            remediation: self.remediation.clone(),
            params: self.params.clone(),
        }
    }
}

/// The category of a built-in condition.
fn condition_category(condition: &str) -> &'static str {
    match condition {
        "pii_in_protected_layer" | "pii_without_policy" | "unauthorized_gold_write" => "governance",
        "missing_partition"
        | "sensitive_without_partition"
        | "cost_budget_exceeded"
        | "shuffle_budget_exceeded" => "finops",
        "missing_merge_key" | "enforce_types_disabled" | "schema_mismatch" => "contract",
        _ => "custom",
    }
}

/// A loaded, validated behaviour spec.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviorSpec {
    /// `behavior.name`.
    pub name: String,
    /// `behavior.description` (empty when absent).
    pub description: String,
    /// The failure modes, in order.
    pub failure_modes: Vec<FailureMode>,
    /// `context`: free-form, carried into the taxonomy. The CLI reads `catalog` and
    /// `policy_bundle` from it (paths relative to the spec file).
    pub context: Map<String, Value>,
    /// `generate.test_intents`: intents per category when the caller gives no count.
    pub test_intents: Option<usize>,
    /// `generate.layers`: the layers test intents write to (default silver, gold, bronze).
    pub layers: Vec<TargetLayer>,
    /// `pipeline.policy.auto_generate_rules` (default true): when false the failure
    /// modes are described (taxonomy, test intents) but become no rules.
    pub auto_generate_rules: bool,
}

/// A spec that breaks the format rules: every issue, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid behaviour spec {origin}: {}", render_issues(.origin, .issues))]
pub struct InvalidSpec {
    /// Where the text came from.
    pub origin: String,
    /// Every issue, in document order.
    pub issues: Vec<LocatedIssue>,
}

fn render_issues(origin: &str, issues: &[LocatedIssue]) -> String {
    issues
        .iter()
        .map(|li| match li.position {
            Some(p) => format!("{origin}:{}:{}: {}", p.line, p.column, li.issue),
            None => li.issue.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a spec could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The text is not YAML.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The document is not a valid spec.
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
}

/// Parses and validates spec text against the built-in conditions. `origin` names the
/// input in messages (usually the file path).
pub fn load_spec(text: &str, origin: &str) -> Result<BehaviorSpec, SpecError> {
    load_spec_with(text, origin, &ConditionRegistry::with_builtins())
}

/// [`load_spec`] with plugin conditions allowed.
pub fn load_spec_with(
    text: &str,
    origin: &str,
    registry: &ConditionRegistry,
) -> Result<BehaviorSpec, SpecError> {
    let value = yaml::parse_value(text).map_err(|e| ParseError {
        origin: origin.to_owned(),
        position: e.position,
        message: e.message,
    })?;
    let mut issues = Vec::new();
    let spec = from_value(&value, registry, &mut issues);
    match spec {
        Some(spec) if issues.is_empty() => Ok(spec),
        _ => {
            let map = PositionMap::from_yaml(text);
            Err(SpecError::Invalid(InvalidSpec {
                origin: origin.to_owned(),
                issues: issues
                    .into_iter()
                    .map(|issue| LocatedIssue {
                        position: map.as_ref().map(|m| m.locate(&issue.path)),
                        issue,
                    })
                    .collect(),
            }))
        }
    }
}

const TOP_KEYS: [&str; 4] = ["behavior", "context", "generate", "pipeline"];
const BEHAVIOR_KEYS: [&str; 3] = ["name", "description", "failure_modes"];
const MODE_KEYS: [&str; 12] = [
    "code",
    "label",
    "description",
    "condition",
    "severity",
    "action",
    "target_layer",
    "min_size_gb",
    "max_dbu",
    "max_shuffle_gb",
    "remediation",
    "metadata",
];
const GENERATE_KEYS: [&str; 2] = ["test_intents", "layers"];
const LAYERS: &str = "bronze, silver or gold";

fn unknown_keys(map: &Map<String, Value>, allowed: &[&str], path: &str, out: &mut Vec<Issue>) {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            out.push(Issue::new(
                at,
                format!("unknown key '{k}' (allowed: {})", allowed.join(", ")),
            ));
        }
    }
}

fn object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    path: &str,
    out: &mut Vec<Issue>,
) -> Option<&'a Map<String, Value>> {
    match parent.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            out.push(Issue::new(path, "must be a mapping"));
            None
        }
    }
}

fn required_str(m: &Map<String, Value>, key: &str, path: &str, out: &mut Vec<Issue>) -> String {
    match m.get(key) {
        Some(v) if is_non_empty_str(v) => v.as_str().unwrap_or_default().trim().to_owned(),
        _ => {
            out.push(Issue::new(
                format!("{path}.{key}"),
                "is required and must be a non-empty string",
            ));
            String::new()
        }
    }
}

fn from_value(
    data: &Value,
    registry: &ConditionRegistry,
    out: &mut Vec<Issue>,
) -> Option<BehaviorSpec> {
    let Value::Object(root) = data else {
        out.push(Issue::new(
            "",
            "a behaviour spec must be a mapping with a `behavior` key",
        ));
        return None;
    };
    unknown_keys(root, &TOP_KEYS, "", out);
    let Some(behavior) = object(root, "behavior", "behavior", out) else {
        if !root.contains_key("behavior") {
            out.push(Issue::new("behavior", "is required"));
        }
        return None;
    };
    unknown_keys(behavior, &BEHAVIOR_KEYS, "behavior", out);
    let name = required_str(behavior, "name", "behavior", out);
    let description = match behavior.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => {
            out.push(Issue::new("behavior.description", "must be a string"));
            String::new()
        }
    };
    let mut failure_modes = Vec::new();
    match behavior.get("failure_modes") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("behavior.failure_modes[{i}]");
                if let Some(fm) = failure_mode(item, &path, registry, out) {
                    failure_modes.push(fm);
                }
            }
        }
        _ => out.push(Issue::new(
            "behavior.failure_modes",
            "is required and must be a non-empty list",
        )),
    }
    for (i, fm) in failure_modes.iter().enumerate() {
        let code = fm.fault_code();
        if failure_modes
            .iter()
            .take(i)
            .any(|earlier| earlier.fault_code() == code)
        {
            out.push(Issue::new(
                format!("behavior.failure_modes[{i}].code"),
                format!(
                    "code '{}' repeats an earlier failure mode (fault code {code})",
                    fm.code
                ),
            ));
        }
    }
    let context = object(root, "context", "context", out)
        .cloned()
        .unwrap_or_default();
    let (test_intents, layers) = generate(root, out);
    let auto_generate_rules = pipeline(root, out);
    Some(BehaviorSpec {
        name,
        description,
        failure_modes,
        context,
        test_intents,
        layers,
        auto_generate_rules,
    })
}

fn failure_mode(
    item: &Value,
    path: &str,
    registry: &ConditionRegistry,
    out: &mut Vec<Issue>,
) -> Option<FailureMode> {
    let Value::Object(m) = item else {
        out.push(Issue::new(path, "must be a mapping"));
        return None;
    };
    unknown_keys(m, &MODE_KEYS, path, out);
    let code = required_str(m, "code", path, out);
    if !code.is_empty() && !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        out.push(Issue::new(
            format!("{path}.code"),
            format!("'{code}' must use only letters, digits and '_' (it becomes a fault code)"),
        ));
    }
    let label = required_str(m, "label", path, out);
    let description = required_str(m, "description", path, out);
    let condition = required_str(m, "condition", path, out);
    if !condition.is_empty() && !registry.contains(&condition) {
        out.push(Issue::new(
            format!("{path}.condition"),
            registry.unknown(&condition).to_string(),
        ));
    }
    let action = match m.get("action") {
        None | Some(Value::Null) => SpecAction::Replan,
        Some(v) => match v.as_str().and_then(SpecAction::parse) {
            Some(a) => a,
            None => {
                out.push(Issue::new(
                    format!("{path}.action"),
                    format!("must be one of block, replan, warn (got {v})"),
                ));
                SpecAction::Replan
            }
        },
    };
    let severity = match m.get("severity") {
        None | Some(Value::Null) => FaultSeverity::High,
        Some(v) => match v.as_str() {
            Some("medium") => FaultSeverity::High,
            Some(s) if FaultSeverity::parse(s).is_some() => {
                FaultSeverity::parse(s).unwrap_or(FaultSeverity::High)
            }
            _ => {
                out.push(Issue::new(
                    format!("{path}.severity"),
                    format!("must be one of critical, high, medium, warning, info (got {v})"),
                ));
                FaultSeverity::High
            }
        },
    };
    let severity = if action == SpecAction::Warn {
        FaultSeverity::Warning
    } else {
        severity
    };
    let target_layer = match m.get("target_layer") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(TargetLayer::parse) {
            Some(l) => Some(l),
            None => {
                out.push(Issue::new(
                    format!("{path}.target_layer"),
                    format!("must be {LAYERS} (got {v})"),
                ));
                None
            }
        },
    };
    let mut number = |key: &str| match m.get(key) {
        None | Some(Value::Null) => None,
        Some(v) if is_non_negative_number(v) => v.as_f64(),
        Some(v) => {
            out.push(Issue::new(
                format!("{path}.{key}"),
                format!("must be a number >= 0 (got {v})"),
            ));
            None
        }
    };
    let min_size_gb = number("min_size_gb");
    let max_dbu = number("max_dbu");
    let max_shuffle_gb = number("max_shuffle_gb");
    let remediation = match m.get("remediation") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            out.push(Issue::new(
                format!("{path}.remediation"),
                "must be a string or a list of strings",
            ));
            Vec::new()
        }
    };
    let metadata = object(m, "metadata", &format!("{path}.metadata"), out)
        .cloned()
        .unwrap_or_default();
    Some(FailureMode {
        code,
        label,
        description,
        condition,
        severity,
        action,
        params: RuleParams {
            target_layer,
            min_size_gb,
            max_dbu,
            max_shuffle_gb,
            extra: Map::new(),
        },
        remediation,
        metadata,
    })
}

fn generate(root: &Map<String, Value>, out: &mut Vec<Issue>) -> (Option<usize>, Vec<TargetLayer>) {
    let default_layers = vec![TargetLayer::Silver, TargetLayer::Gold, TargetLayer::Bronze];
    let Some(g) = object(root, "generate", "generate", out) else {
        return (None, default_layers);
    };
    unknown_keys(g, &GENERATE_KEYS, "generate", out);
    let count = match g.get("test_intents") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                out.push(Issue::new(
                    "generate.test_intents",
                    format!("must be a whole number > 0 (got {v})"),
                ));
                None
            }
        },
    };
    let layers = match g.get("layers") {
        None | Some(Value::Null) => default_layers,
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut layers = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(TargetLayer::parse) {
                    Some(l) => layers.push(l),
                    None => out.push(Issue::new(
                        format!("generate.layers[{i}]"),
                        format!("must be {LAYERS} (got {item})"),
                    )),
                }
            }
            if layers.is_empty() {
                default_layers
            } else {
                layers
            }
        }
        Some(_) => {
            out.push(Issue::new(
                "generate.layers",
                format!("must be a non-empty list of {LAYERS}"),
            ));
            default_layers
        }
    };
    (count, layers)
}

fn pipeline(root: &Map<String, Value>, out: &mut Vec<Issue>) -> bool {
    let Some(p) = object(root, "pipeline", "pipeline", out) else {
        return true;
    };
    unknown_keys(p, &["policy"], "pipeline", out);
    let Some(policy) = object(p, "policy", "pipeline.policy", out) else {
        return true;
    };
    unknown_keys(policy, &["auto_generate_rules"], "pipeline.policy", out);
    match policy.get("auto_generate_rules") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            out.push(Issue::new(
                "pipeline.policy.auto_generate_rules",
                format!("must be true or false (got {v})"),
            ));
            true
        }
    }
}

impl BehaviorSpec {
    /// One rule per failure mode, in order; none when `auto_generate_rules` is false.
    pub fn rules(&self) -> Vec<RuleSpec> {
        if !self.auto_generate_rules {
            return Vec::new();
        }
        self.failure_modes.iter().map(FailureMode::rule).collect()
    }

    /// The categories in order of first appearance, each with its failure modes.
    pub fn categories(&self) -> Vec<(String, Vec<&FailureMode>)> {
        let mut out: Vec<(String, Vec<&FailureMode>)> = Vec::new();
        for fm in &self.failure_modes {
            let cat = fm.category();
            match out.iter_mut().find(|(c, _)| *c == cat) {
                Some((_, modes)) => modes.push(fm),
                None => out.push((cat, vec![fm])),
            }
        }
        out
    }

    /// `{"taxonomy": {name, description, context, categories: [{name, failure_modes}]},
    /// "rules": [...]}`; each rule is written with the keys of a bundle rule, so the
    /// list can be pasted into a policy bundle as it is.
    pub fn taxonomy(&self) -> Value {
        let categories: Vec<Value> = self
            .categories()
            .into_iter()
            .map(|(name, modes)| {
                let modes: Vec<Value> = modes
                    .into_iter()
                    .map(|fm| {
                        json!({
                            "code": fm.code,
                            "label": fm.label,
                            "description": fm.description,
                            "condition": fm.condition,
                            "severity": fm.severity.as_str(),
                            "action": fm.action.as_str(),
                            "fault_code": fm.fault_code(),
                            "rule": fm.rule_name(),
                            "metadata": fm.metadata,
                        })
                    })
                    .collect();
                json!({"name": name, "failure_modes": modes})
            })
            .collect();
        let rules: Vec<Value> = self.rules().iter().map(rule_value).collect();
        json!({
            "taxonomy": {
                "name": self.name,
                "description": self.description,
                "context": self.context,
                "categories": categories,
            },
            "rules": rules,
        })
    }

    /// Test intents: per category at most `min(count, 3)`, taken round-robin over the
    /// category's failure modes; each ends `#{code}#{i}`, `i` counting from 1 per
    /// failure mode. `None` uses `generate.test_intents`, else 5.
    pub fn test_intents(&self, count: Option<usize>) -> Vec<String> {
        let per_category = count
            .or(self.test_intents)
            .unwrap_or(DEFAULT_TEST_INTENTS)
            .min(MAX_INTENTS_PER_CATEGORY);
        let mut out = Vec::new();
        for (_, modes) in self.categories() {
            if modes.is_empty() {
                continue;
            }
            for k in 0..per_category {
                let Some(fm) = modes.get(k % modes.len()) else {
                    continue;
                };
                let i = k / modes.len() + 1;
                out.push(self.intent(fm, i));
            }
        }
        out
    }

    fn intent(&self, fm: &FailureMode, i: usize) -> String {
        let layer = fm
            .params
            .target_layer
            .or_else(|| self.layers.get((i - 1) % self.layers.len().max(1)).copied())
            .unwrap_or(TargetLayer::Silver);
        let words = fm.code.replace('_', " ").to_ascii_lowercase();
        let templates: [&str; 3] = match condition_category(&fm.condition) {
            "governance" => [
                "Join {words} with PII columns and persist to {layer}",
                "Copy {words} with raw PII columns into {layer}",
                "Merge {words} customer PII without anonymisation into {layer}",
            ],
            "finops" => [
                "Aggregate {words} over the full history without a date filter into {layer}",
                "Scan all of {words} with no partition filter and persist to {layer}",
                "Rebuild {words} from every partition into {layer}",
            ],
            "contract" => [
                "Append {words} to {layer} without a merge key",
                "Load {words} into {layer} with type checks off",
                "Overwrite {words} in {layer} ignoring the catalog schema",
            ],
            _ => [
                "Process {words} and persist to {layer}",
                "Transform {words} into {layer}",
                "Publish {words} to {layer}",
            ],
        };
        let template = templates
            .get((i - 1) % templates.len())
            .copied()
            .unwrap_or("Process {words} and persist to {layer}");
        format!(
            "{} #{}#{i}",
            template
                .replace("{words}", &words)
                .replace("{layer}", layer.as_str()),
            fm.code
        )
    }
}

/// A rule in the shape of a bundle's rule object.
fn rule_value(r: &RuleSpec) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), r.name.clone().into());
    m.insert("condition".into(), r.condition.clone().into());
    m.insert("action".into(), r.action.as_str().into());
    m.insert("fault_code".into(), r.fault_code.clone().into());
    m.insert("severity".into(), r.severity.as_str().into());
    m.insert("family".into(), r.family.short_name().into());
    m.insert("message".into(), r.message.clone().into());
    m.insert("remediation".into(), json!(r.remediation));
    if let Some(l) = r.params.target_layer {
        m.insert("target_layer".into(), l.as_str().into());
    }
    for (k, v) in [
        ("min_size_gb", r.params.min_size_gb),
        ("max_dbu", r.params.max_dbu),
        ("max_shuffle_gb", r.params.max_shuffle_gb),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolicyEngine;
    use cfa_types::StateSignature;

    const SPEC: &str = include_str!("../../examples/specs/pii-join.yaml");

    fn sig(layer: &str, pii: bool, no_pii_raw: bool, partition: bool) -> StateSignature {
        let pii_cols = if pii { r#"["cpf"]"# } else { "[]" };
        let part = if partition {
            r#"["processing_date"]"#
        } else {
            "[]"
        };
        StateSignature::from_json_str(&format!(
            r#"{{"domain":"d","intent":"i","target_layer":"{layer}",
                "datasets":[{{"name":"c","classification":"sensitive","pii_columns":{pii_cols},"partition_column":"processing_date","merge_keys":["id"]}}],
                "constraints":{{"no_pii_raw":{no_pii_raw},"partition_by":{part},"merge_key_required":true}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_example_spec_loads_and_becomes_rules() {
        let spec = load_spec(SPEC, "pii-join.yaml").unwrap();
        assert_eq!(spec.name, "pii-join");
        let rules = spec.rules();
        assert_eq!(rules.len(), spec.failure_modes.len());
        assert!(rules.iter().all(|r| r.name.starts_with("behavior_spec_")));
        assert!(rules.iter().all(|r| r.fault_code.starts_with("BEHAVIOR_")));
        // the rules compile and validate as a bundle's rules
        let bundle = json!({"version": "spec", "rules": spec.taxonomy()["rules"]});
        assert!(
            crate::validate_bundle_value(&bundle).is_empty(),
            "{:?}",
            crate::validate_bundle_value(&bundle)
        );
    }

    #[test]
    fn actions_are_honoured() {
        let text = "behavior:\n  name: t\n  failure_modes:\n\
            \x20   - {code: pii_block, label: L, description: D, condition: pii_in_protected_layer, action: block}\n\
            \x20   - {code: part_replan, label: L, description: D, condition: sensitive_without_partition, action: replan}\n\
            \x20   - {code: bronze_warn, label: L, description: D, condition: pii_without_policy, action: warn, target_layer: bronze}\n";
        let spec = load_spec(text, "t.yaml").unwrap();
        let engine = PolicyEngine::default()
            .extended("t", spec.rules(), &ConditionRegistry::with_builtins())
            .unwrap();
        // only the added rules: a spec-only engine
        let only = PolicyEngine::from_bundle(crate::PolicyBundle {
            version: "t".into(),
            description: None,
            rules: spec.rules(),
        })
        .unwrap();
        let block = only.evaluate(&sig("silver", true, false, true), 0);
        assert_eq!(block.action, PolicyAction::Block);
        assert_eq!(block.faults[0].code.as_str(), "BEHAVIOR_PII_BLOCK");
        let replan = only.evaluate(&sig("silver", false, false, false), 0);
        assert_eq!(replan.action, PolicyAction::Replan);
        assert_eq!(replan.patches[0].path, "constraints.partition_by");
        let warn = only.evaluate(&sig("bronze", true, false, true), 0);
        assert_eq!(warn.action, PolicyAction::Approve);
        assert_eq!(warn.faults[0].code.as_str(), "BEHAVIOR_BRONZE_WARN");
        assert_eq!(warn.faults[0].severity, FaultSeverity::Warning);
        assert_eq!(engine.rules().len(), 10);
        assert_eq!(engine.version(), "t");
    }

    #[test]
    fn unknown_condition_is_located() {
        let text = "behavior:\n  name: t\n  failure_modes:\n    - code: a\n      label: A\n      description: D\n      condition: pii_everywhere\n";
        let SpecError::Invalid(e) = load_spec(text, "t.yaml").unwrap_err() else {
            panic!("not invalid")
        };
        assert_eq!(e.issues.len(), 1);
        let li = &e.issues[0];
        assert_eq!(li.issue.path, "behavior.failure_modes[0].condition");
        assert!(
            li.issue.message.starts_with(
                "unknown condition 'pii_everywhere'. Registered conditions: cost_budget_exceeded"
            ),
            "{}",
            li.issue.message
        );
        let p = li.position.unwrap();
        assert_eq!((p.line, p.column), (7, 18));
        assert!(
            e.to_string()
                .contains("t.yaml:7:18: behavior.failure_modes[0].condition")
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let text = "behavior:\n  name: ''\n  colour: red\n  failure_modes:\n    - code: 'a-b'\n      label: A\n      condition: missing_partition\n      severity: extreme\n      action: ignore\n      min_size_gb: -1\n    - code: A_B\n      label: B\n      description: D\n      condition: missing_partition\n    - code: a_b\n      label: C\n      description: D\n      condition: missing_partition\ngenerate: {test_intents: 0}\npipeline: {policy: {auto_generate_rules: maybe}}\n";
        let SpecError::Invalid(e) = load_spec(text, "t.yaml").unwrap_err() else {
            panic!("not invalid")
        };
        let paths: Vec<&str> = e.issues.iter().map(|i| i.issue.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "behavior.colour",
                "behavior.name",
                "behavior.failure_modes[0].code",
                "behavior.failure_modes[0].description",
                "behavior.failure_modes[0].action",
                "behavior.failure_modes[0].severity",
                "behavior.failure_modes[0].min_size_gb",
                "behavior.failure_modes[2].code",
                "generate.test_intents",
                "pipeline.policy.auto_generate_rules",
            ]
        );
        assert!(e.issues.iter().all(|i| i.position.is_some()));
    }

    #[test]
    fn parse_errors_and_shapes() {
        assert!(matches!(
            load_spec("behavior: [1,\n", "t.yaml"),
            Err(SpecError::Parse(ParseError {
                position: Some(_),
                ..
            }))
        ));
        assert!(matches!(
            load_spec("", "t.yaml"),
            Err(SpecError::Invalid(_))
        ));
        assert!(matches!(
            load_spec("other: 1\n", "t.yaml"),
            Err(SpecError::Invalid(_))
        ));
    }

    #[test]
    fn auto_generate_rules_false_gives_no_rules() {
        let text = "behavior:\n  name: t\n  failure_modes:\n    - {code: a, label: A, description: D, condition: missing_merge_key}\npipeline:\n  policy:\n    auto_generate_rules: false\n";
        let spec = load_spec(text, "t.yaml").unwrap();
        assert!(spec.rules().is_empty());
        assert_eq!(spec.taxonomy()["rules"], json!([]));
        assert_eq!(spec.test_intents(None).len(), 3);
    }

    #[test]
    fn test_intents_are_capped_per_category() {
        let text = "behavior:\n  name: t\n  failure_modes:\n\
            \x20   - {code: pii_a, label: A, description: D, condition: pii_in_protected_layer}\n\
            \x20   - {code: pii_b, label: B, description: D, condition: pii_without_policy, target_layer: gold}\n\
            \x20   - {code: merge, label: C, description: D, condition: missing_merge_key, metadata: {category: contracts}}\n";
        let spec = load_spec(text, "t.yaml").unwrap();
        let all = spec.test_intents(None);
        assert_eq!(
            all,
            [
                "Join pii a with PII columns and persist to silver #pii_a#1",
                "Join pii b with PII columns and persist to gold #pii_b#1",
                "Copy pii a with raw PII columns into gold #pii_a#2",
                "Append merge to silver without a merge key #merge#1",
                "Load merge into gold with type checks off #merge#2",
                "Overwrite merge in bronze ignoring the catalog schema #merge#3",
            ]
        );
        assert_eq!(spec.test_intents(Some(1)).len(), 2);
        assert_eq!(spec.test_intents(Some(100)).len(), 6);
        let t = spec.taxonomy();
        assert_eq!(t["taxonomy"]["categories"][0]["name"], "governance");
        assert_eq!(t["taxonomy"]["categories"][1]["name"], "contracts");
        assert_eq!(t["rules"][1]["target_layer"], "gold");
    }

    #[test]
    fn duplicate_codes_with_the_engine_are_refused() {
        let spec = load_spec(
            "behavior:\n  name: t\n  failure_modes:\n    - {code: a, label: A, description: D, condition: missing_merge_key}\n",
            "t.yaml",
        )
        .unwrap();
        let once = PolicyEngine::default()
            .extended("t", spec.rules(), &ConditionRegistry::with_builtins())
            .unwrap();
        let twice = once.extended("t", spec.rules(), &ConditionRegistry::with_builtins());
        assert!(matches!(
            twice,
            Err(crate::ExtendError::DuplicateName { .. })
        ));
        let mut renamed = spec.rules();
        renamed[0].name = "other".into();
        let e = PolicyEngine::default()
            .extended("t", spec.rules(), &ConditionRegistry::with_builtins())
            .unwrap()
            .extended("t", renamed, &ConditionRegistry::with_builtins())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "fault code 'BEHAVIOR_A' is already raised by rule 'behavior_spec_a'"
        );
    }
}
