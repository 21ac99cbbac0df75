//! Strict validation of catalog JSON (the reference's `validate_catalog`,
//! docs/compatibility.md#catalog) and the signature-against-catalog cross-check of
//! `policy check --strict --catalog`.

use super::pyrepr::{py_list_repr, py_str};
use super::sig::str_list_problem;
use super::{Issue, is_non_negative_number, py_strip};
use crate::enums::DatasetClassification;
use crate::signature::StateSignature;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const NOT_A_MAPPING: &str = "must be an object keyed by dataset name";

/// Validates catalog JSON strictly (the reference's `validate_catalog`).
///
/// Without `require_datasets`, `null`, `{}` and `{"datasets": null}` are valid. Issues
/// come in the reference's order with its paths and messages (docs/compatibility.md#catalog); an
/// empty list means valid.
pub fn catalog(data: &Value, require_datasets: bool) -> Vec<Issue> {
    let mut issues = Vec::new();
    let obj = match data {
        Value::Null => {
            if require_datasets {
                issues.push(Issue::new("catalog", "catalog is required"));
            }
            return issues;
        }
        Value::Object(o) => o,
        _ => return vec![Issue::new("catalog", "must be an object")],
    };
    let datasets = match obj.get("datasets") {
        None | Some(Value::Null) => {
            if require_datasets {
                issues.push(Issue::new("datasets", "is required"));
            }
            return issues;
        }
        Some(Value::Object(d)) => d,
        Some(_) => return vec![Issue::new("datasets", NOT_A_MAPPING)],
    };
    if require_datasets && datasets.is_empty() {
        issues.push(Issue::new("datasets", "must contain at least one dataset"));
    }
    for (name, meta) in datasets {
        if py_strip(name).is_empty() {
            issues.push(Issue::new(
                "datasets",
                "dataset names must be non-empty strings",
            ));
            continue;
        }
        let Value::Object(meta) = meta else {
            issues.push(Issue::new(
                format!("datasets.{name}"),
                "metadata must be an object",
            ));
            continue;
        };
        check_entry(name, meta, &mut issues);
    }
    issues
}

fn check_entry(name: &str, meta: &Map<String, Value>, issues: &mut Vec<Issue>) {
    let path = |field: &str| format!("datasets.{name}.{field}");
    if let Some(c) = meta.get("classification")
        && c.as_str().and_then(DatasetClassification::parse).is_none()
    {
        issues.push(Issue::new(
            path("classification"),
            "must be one of ['high_volume', 'internal', 'public', 'sensitive']",
        ));
    }
    if meta
        .get("size_gb")
        .is_some_and(|v| !is_non_negative_number(v))
    {
        issues.push(Issue::new(path("size_gb"), "must be a non-negative number"));
    }
    if let Some(msg) = meta.get("pii_columns").and_then(str_list_problem) {
        issues.push(Issue::new(path("pii_columns"), msg));
    }
    if meta
        .get("partition_column")
        .is_some_and(|v| !(v.is_null() || v.is_string()))
    {
        issues.push(Issue::new(
            path("partition_column"),
            "must be a string or null",
        ));
    }
    if let Some(msg) = meta.get("merge_keys").and_then(str_list_problem) {
        issues.push(Issue::new(path("merge_keys"), msg));
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Checks a (validated) signature against a catalog, as `policy check --strict
/// --catalog` does (docs/compatibility.md#catalog): for each dataset `i`, issues at
/// `signature.datasets[i].name|classification|pii_columns|partition_column` with the
/// reference's messages, PII sets rendered as sorted Python lists (`['cpf', 'email']`).
///
/// A catalog whose `datasets` is present but not an object gives the single issue
/// `catalog.datasets: must be an object keyed by dataset name`. The reference skips the
/// check for an empty catalog, so `null` and `{}` give no issues. Where the reference
/// crashed, this reports instead: a catalog that is not an object (`catalog: must be
/// an object`) and an entry whose `pii_columns` is not a list of strings
/// (`catalog.datasets.{name}.pii_columns: must be a list of strings`, PII comparison
/// skipped for that dataset).
pub fn cross_check(sig: &StateSignature, catalog: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let obj = match catalog {
        Value::Object(o) if o.is_empty() => return issues,
        Value::Object(o) => o,
        Value::Null => return issues,
        _ => return vec![Issue::new("catalog", "must be an object")],
    };
    let empty = Map::new();
    let entries = match obj.get("datasets") {
        None => &empty,
        Some(Value::Object(d)) => d,
        Some(_) => return vec![Issue::new("catalog.datasets", NOT_A_MAPPING)],
    };
    for (idx, ds) in sig.datasets.iter().enumerate() {
        let path = |field: &str| format!("signature.datasets[{idx}].{field}");
        let entry = match entries.get(&ds.name) {
            None | Some(Value::Null) => {
                issues.push(Issue::new(
                    path("name"),
                    format!("dataset '{}' not found in catalog", ds.name),
                ));
                continue;
            }
            Some(Value::Object(e)) => e,
            Some(_) => {
                issues.push(Issue::new(
                    path("name"),
                    format!("catalog entry for '{}' is not an object", ds.name),
                ));
                continue;
            }
        };
        let sig_class = ds.classification.as_str();
        let cat_class = entry.get("classification");
        if cat_class.map_or(sig_class != "internal", |c| c.as_str() != Some(sig_class)) {
            let shown = cat_class.map_or_else(|| "internal".to_owned(), py_str);
            issues.push(Issue::new(
                path("classification"),
                format!("signature says '{sig_class}' but catalog says '{shown}'"),
            ));
        }
        check_pii(ds, entry, &path, &mut issues);
        if let (Some(cat_part), Some(sig_part)) = (
            entry.get("partition_column"),
            ds.partition_column.as_deref(),
        ) && truthy(cat_part)
            && !sig_part.is_empty()
            && cat_part.as_str() != Some(sig_part)
        {
            issues.push(Issue::new(
                path("partition_column"),
                format!(
                    "signature says '{sig_part}' but catalog says '{}'",
                    py_str(cat_part)
                ),
            ));
        }
    }
    issues
}

fn check_pii(
    ds: &crate::signature::DatasetRef,
    entry: &Map<String, Value>,
    path: &dyn Fn(&str) -> String,
    issues: &mut Vec<Issue>,
) {
    let cat_pii: BTreeSet<&str> = match entry.get("pii_columns") {
        None => BTreeSet::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => {
            issues.push(Issue::new(
                format!("catalog.datasets.{}.pii_columns", ds.name),
                "must be a list of strings",
            ));
            return;
        }
    };
    let sig_pii: BTreeSet<&str> = ds.pii_columns.iter().map(String::as_str).collect();
    let missing: Vec<&str> = cat_pii.difference(&sig_pii).copied().collect();
    if !missing.is_empty() {
        issues.push(Issue::new(
            path("pii_columns"),
            format!(
                "signature missing PII columns from catalog: {}",
                py_list_repr(&missing)
            ),
        ));
    }
    let extra: Vec<&str> = sig_pii.difference(&cat_pii).copied().collect();
    if !extra.is_empty() {
        issues.push(Issue::new(
            path("pii_columns"),
            format!(
                "signature declares PII columns not in catalog: {}",
                py_list_repr(&extra)
            ),
        ));
    }
}
