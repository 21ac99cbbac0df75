//! Strict bundle validation with the reference's issue paths, messages and order
//! (docs/compatibility.md#bundle-validation). Values the reference could not hash (a list or object where
//! an enum string belongs) are ordinary issues here.

use crate::registry::ConditionRegistry;
use cfa_types::validate::{Issue, is_non_empty_str, is_non_negative_number};
use serde_json::{Map, Value};
use std::collections::HashSet;

const ROOT: &str = "policy_bundle";
const ACTIONS: [&str; 3] = ["approve", "block", "replan"];
/// Our rule action beside the reference's three: block unless an operator approves
/// the exact signature (docs/differences.md#approvals-and-the-kill-switch). The
/// reference's message for a bad action is kept as it is.
pub(crate) const REQUIRE_APPROVAL: &str = "require_approval";
const SEVERITIES: [&str; 4] = ["critical", "high", "info", "warning"];
const FAMILIES: [&str; 4] = ["environment", "runtime", "semantic", "static"];
const LAYERS: [&str; 3] = ["bronze", "silver", "gold"];
/// Numeric rule parameters, in the order they are checked.
pub(crate) const NUMERIC_PARAMS: [&str; 3] = ["min_size_gb", "max_dbu", "max_shuffle_gb"];

const REQUIRED: &str = "is required and must be a non-empty string";

/// Validates a bundle value against the built-in conditions.
pub fn validate_bundle_value(data: &Value) -> Vec<Issue> {
    validate_bundle_value_with(data, &ConditionRegistry::with_builtins())
}

/// Validates a bundle value; condition names are checked against `registry`.
pub fn validate_bundle_value_with(data: &Value, registry: &ConditionRegistry) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Some(bundle) = unwrap_bundle(data, &mut issues) else {
        return issues;
    };
    if !bundle.get("version").is_some_and(is_non_empty_str) {
        issues.push(Issue::new(format!("{ROOT}.version"), REQUIRED));
    }
    let rules = match bundle.get("rules") {
        Some(Value::Array(rules)) if !rules.is_empty() => rules,
        _ => {
            issues.push(Issue::new(
                format!("{ROOT}.rules"),
                "must be a non-empty list",
            ));
            return issues;
        }
    };
    let mut names: HashSet<&str> = HashSet::new();
    let mut codes: HashSet<&str> = HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let p = format!("{ROOT}.rules[{i}]");
        let Value::Object(rule) = rule else {
            issues.push(Issue::new(p, "must be an object"));
            continue;
        };
        check_rule(rule, &p, registry, &mut names, &mut codes, &mut issues);
    }
    issues
}

/// The bundle object inside an optional `policy_bundle:` wrapper.
pub(crate) fn unwrap_bundle<'a>(
    data: &'a Value,
    issues: &mut Vec<Issue>,
) -> Option<&'a Map<String, Value>> {
    let outer = match data {
        Value::Null => {
            issues.push(Issue::new(ROOT, "file is empty"));
            return None;
        }
        Value::Object(o) => o,
        _ => {
            issues.push(Issue::new(ROOT, "must be an object"));
            return None;
        }
    };
    match outer.get(ROOT) {
        None => Some(outer),
        Some(Value::Object(inner)) => Some(inner),
        Some(_) => {
            issues.push(Issue::new(ROOT, "must be an object"));
            None
        }
    }
}

fn one_of(v: Option<&Value>, allowed: &[&str]) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| allowed.contains(&s))
}

fn list_repr(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("must be one of [{}]", quoted.join(", "))
}

fn check_rule<'a>(
    rule: &'a Map<String, Value>,
    p: &str,
    registry: &ConditionRegistry,
    names: &mut HashSet<&'a str>,
    codes: &mut HashSet<&'a str>,
    issues: &mut Vec<Issue>,
) {
    let field = |k: &str| format!("{p}.{k}");
    match rule.get("name") {
        Some(v @ Value::String(name)) if is_non_empty_str(v) => {
            if !names.insert(name.as_str()) {
                issues.push(Issue::new(
                    field("name"),
                    format!("duplicate rule name '{name}'"),
                ));
            }
        }
        _ => issues.push(Issue::new(field("name"), REQUIRED)),
    }
    match rule.get("condition") {
        Some(v @ Value::String(c)) if is_non_empty_str(v) => {
            if !registry.contains(c) {
                issues.push(Issue::new(
                    field("condition"),
                    registry.unknown(c).to_string(),
                ));
            }
        }
        _ => issues.push(Issue::new(field("condition"), REQUIRED)),
    }
    if !one_of(rule.get("action"), &ACTIONS) && !one_of(rule.get("action"), &[REQUIRE_APPROVAL]) {
        issues.push(Issue::new(field("action"), list_repr(&ACTIONS)));
    }
    if !one_of(rule.get("severity"), &SEVERITIES) {
        issues.push(Issue::new(field("severity"), list_repr(&SEVERITIES)));
    }
    if rule.contains_key("family") && !one_of(rule.get("family"), &FAMILIES) {
        issues.push(Issue::new(field("family"), list_repr(&FAMILIES)));
    }
    match rule.get("fault_code") {
        Some(v @ Value::String(code)) if is_non_empty_str(v) => {
            if !codes.insert(code.as_str()) {
                issues.push(Issue::new(
                    field("fault_code"),
                    format!("duplicate fault code '{code}'"),
                ));
            }
        }
        _ => issues.push(Issue::new(field("fault_code"), REQUIRED)),
    }
    if !rule.get("message").is_some_and(is_non_empty_str) {
        issues.push(Issue::new(field("message"), REQUIRED));
    }
    match rule.get("remediation") {
        None => {}
        Some(Value::Array(items)) if !items.iter().all(is_non_empty_str) => {
            issues.push(Issue::new(
                field("remediation"),
                "must contain only non-empty strings",
            ));
        }
        Some(Value::Array(_)) => {}
        Some(_) => issues.push(Issue::new(
            field("remediation"),
            "must be a list of strings",
        )),
    }
    if rule.contains_key("target_layer") && !one_of(rule.get("target_layer"), &LAYERS) {
        issues.push(Issue::new(field("target_layer"), list_repr(&LAYERS)));
    }
    for key in NUMERIC_PARAMS {
        if rule.get(key).is_some_and(|v| !is_non_negative_number(v)) {
            issues.push(Issue::new(field(key), "must be a non-negative number"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_the_reference_texts() {
        let issues = validate_bundle_value(&json!({"policy_bundle": {"rules": [
            {"name": "a", "condition": "nope", "action": ["x"], "severity": {"a": 1},
             "family": [], "fault_code": "A", "message": "m", "remediation": [""],
             "target_layer": "platinum", "min_size_gb": true, "max_shuffle_gb": -1}
        ]}}));
        let rendered: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(rendered, vec![
            "policy_bundle.version: is required and must be a non-empty string".to_owned(),
            "policy_bundle.rules[0].condition: unknown condition 'nope'. Registered conditions: cost_budget_exceeded, enforce_types_disabled, missing_merge_key, missing_partition, pii_in_protected_layer, pii_without_policy, schema_mismatch, sensitive_without_partition, shuffle_budget_exceeded, unauthorized_gold_write".to_owned(),
            "policy_bundle.rules[0].action: must be one of ['approve', 'block', 'replan']".to_owned(),
            "policy_bundle.rules[0].severity: must be one of ['critical', 'high', 'info', 'warning']".to_owned(),
            "policy_bundle.rules[0].family: must be one of ['environment', 'runtime', 'semantic', 'static']".to_owned(),
            "policy_bundle.rules[0].remediation: must contain only non-empty strings".to_owned(),
            "policy_bundle.rules[0].target_layer: must be one of ['bronze', 'silver', 'gold']".to_owned(),
            "policy_bundle.rules[0].min_size_gb: must be a non-negative number".to_owned(),
            "policy_bundle.rules[0].max_shuffle_gb: must be a non-negative number".to_owned(),
        ]);
    }

    #[test]
    fn duplicates_and_empty() {
        let rule = json!({"name": "a", "condition": "missing_merge_key", "action": "block",
                          "severity": "high", "fault_code": "A", "message": "m"});
        let issues = validate_bundle_value(&json!({"version": "v", "rules": [rule.clone(), rule]}));
        let rendered: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            vec![
                "policy_bundle.rules[1].name: duplicate rule name 'a'",
                "policy_bundle.rules[1].fault_code: duplicate fault code 'A'",
            ]
        );
        assert_eq!(
            validate_bundle_value(&Value::Null)[0].to_string(),
            "policy_bundle: file is empty"
        );
        assert_eq!(
            validate_bundle_value(&json!({"version": "v", "rules": []}))[0].to_string(),
            "policy_bundle.rules: must be a non-empty list"
        );
    }
}
