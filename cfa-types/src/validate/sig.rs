//! Strict validation of signature JSON: the reference's `validate_signature_data`
//! (docs/compatibility.md#signature-validation), issue for issue and in the same order.

use super::{Issue, is_non_empty_str, is_non_negative_number};
use crate::enums::{DatasetClassification, TargetLayer};
use serde_json::{Map, Value};

const NON_EMPTY: &str = "is required and must be a non-empty string";
const LAYERS: &str = "must be one of ['bronze', 'gold', 'silver']";
const CLASSIFICATIONS: &str = "must be one of ['high_volume', 'internal', 'public', 'sensitive']";
const LIST_OF_STRINGS: &str = "must be a list of strings";
const NON_EMPTY_ITEMS: &str = "must contain only non-empty strings";

/// The object strict validation looks at: `data.get("signature",
/// data.get("state_signature"))` when that is an object, otherwise `data` itself. A
/// `signature` key holding a non-object (even `null`) hides `state_signature`.
pub fn unwrap_signature(data: &Value) -> &Value {
    if let Value::Object(outer) = data {
        let wrapped = outer
            .get("signature")
            .or_else(|| outer.get("state_signature"));
        if let Some(inner @ Value::Object(_)) = wrapped {
            return inner;
        }
    }
    data
}

/// Validates signature JSON strictly (the reference's `validate_signature_data`).
///
/// Returns every issue in the reference's order; an empty list means valid. Paths and
/// messages are the reference's (docs/compatibility.md#signature-validation), with two deliberate additions,
/// both for values the reference accepted here and then crashed on or mis-read later:
/// a list or object in `target_layer`/`classification` is an ordinary issue (the
/// reference raised `TypeError`), and fields the typed reader needs but the reference
/// never checked are reported last in their object: `datasets[i].merge_keys`
/// (`must be a list of strings` when neither a list of strings nor null), then
/// `intent_id` and `source_intent_raw` (`must be a string` when present and not one).
pub fn signature(data: &Value, require_datasets: bool) -> Vec<Issue> {
    let mut issues = Vec::new();
    let sig = match data {
        Value::Null => return vec![Issue::new("signature", "file is empty")],
        Value::Object(_) => unwrap_signature(data),
        _ => return vec![Issue::new("signature", "must be an object")],
    };
    let Value::Object(sig) = sig else {
        return vec![Issue::new("signature", "must be an object")];
    };

    require_str(sig, "domain", "domain", &mut issues);
    require_str(sig, "intent", "intent", &mut issues);
    if sig
        .get("target_layer")
        .and_then(Value::as_str)
        .and_then(TargetLayer::parse)
        .is_none()
    {
        issues.push(Issue::new("target_layer", LAYERS));
    }
    check_datasets(sig.get("datasets"), require_datasets, &mut issues);
    check_constraints(sig.get("constraints"), &mut issues);
    match sig.get("execution_context") {
        Some(Value::Object(ctx)) => {
            for key in [
                "policy_bundle_version",
                "catalog_snapshot_version",
                "context_registry_version_id",
            ] {
                if !ctx.get(key).is_some_and(is_non_empty_str) {
                    issues.push(Issue::new(format!("execution_context.{key}"), NON_EMPTY));
                }
            }
        }
        _ => issues.push(Issue::new(
            "execution_context",
            "is required and must be an object",
        )),
    }
    for key in ["intent_id", "source_intent_raw"] {
        if sig.get(key).is_some_and(|v| !v.is_string()) {
            issues.push(Issue::new(key, "must be a string"));
        }
    }
    issues
}

fn require_str(obj: &Map<String, Value>, key: &str, path: &str, issues: &mut Vec<Issue>) {
    if !obj.get(key).is_some_and(is_non_empty_str) {
        issues.push(Issue::new(path, NON_EMPTY));
    }
}

/// `None` when `v` is a list of non-blank strings; otherwise the reference's message.
pub(super) fn str_list_problem(v: &Value) -> Option<&'static str> {
    match v {
        Value::Array(items) if items.iter().all(is_non_empty_str) => None,
        Value::Array(_) => Some(NON_EMPTY_ITEMS),
        _ => Some(LIST_OF_STRINGS),
    }
}

fn check_datasets(datasets: Option<&Value>, require: bool, issues: &mut Vec<Issue>) {
    match datasets {
        None | Some(Value::Null) => {
            if require {
                issues.push(Issue::new("datasets", "is required"));
            }
        }
        Some(Value::Array(items)) => {
            if require && items.is_empty() {
                issues.push(Issue::new("datasets", "must contain at least one dataset"));
            }
            for (idx, item) in items.iter().enumerate() {
                check_dataset(idx, item, issues);
            }
        }
        Some(_) => issues.push(Issue::new("datasets", "must be a list")),
    }
}

fn check_dataset(idx: usize, item: &Value, issues: &mut Vec<Issue>) {
    let path = |field: &str| format!("datasets[{idx}].{field}");
    let Value::Object(d) = item else {
        issues.push(Issue::new(format!("datasets[{idx}]"), "must be an object"));
        return;
    };
    if !d.get("name").is_some_and(is_non_empty_str) {
        issues.push(Issue::new(path("name"), NON_EMPTY));
    }
    if let Some(c) = d.get("classification")
        && c.as_str().and_then(DatasetClassification::parse).is_none()
    {
        issues.push(Issue::new(path("classification"), CLASSIFICATIONS));
    }
    if d.get("size_gb").is_some_and(|v| !is_non_negative_number(v)) {
        issues.push(Issue::new(path("size_gb"), "must be a non-negative number"));
    }
    if let Some(msg) = d.get("pii_columns").and_then(str_list_problem) {
        issues.push(Issue::new(path("pii_columns"), msg));
    }
    if d.get("partition_column")
        .is_some_and(|v| !(v.is_null() || v.is_string()))
    {
        issues.push(Issue::new(
            path("partition_column"),
            "must be a string or null",
        ));
    }
    let merge_keys_ok = match d.get("merge_keys") {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !merge_keys_ok {
        issues.push(Issue::new(path("merge_keys"), LIST_OF_STRINGS));
    }
}

fn check_constraints(constraints: Option<&Value>, issues: &mut Vec<Issue>) {
    let c = match constraints {
        None => return,
        Some(Value::Object(c)) => c,
        Some(_) => {
            issues.push(Issue::new("constraints", "must be an object"));
            return;
        }
    };
    for key in ["no_pii_raw", "merge_key_required", "enforce_types"] {
        if c.get(key).is_some_and(|v| !v.is_boolean()) {
            issues.push(Issue::new(
                format!("constraints.{key}"),
                "must be a boolean",
            ));
        }
    }
    if let Some(msg) = c.get("partition_by").and_then(str_list_problem) {
        issues.push(Issue::new("constraints.partition_by", msg));
    }
    if c.get("max_cost_dbu")
        .is_some_and(|v| !(v.is_null() || is_non_negative_number(v)))
    {
        issues.push(Issue::new(
            "constraints.max_cost_dbu",
            "must be a non-negative number or null",
        ));
    }
    if c.get("custom")
        .is_some_and(|v| !(v.is_null() || v.is_object()))
    {
        issues.push(Issue::new("constraints.custom", "must be an object"));
    }
}
