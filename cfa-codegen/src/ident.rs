//! The strict identifier grammar and the walk that checks every identifier reaching
//! generated code, naming where each came from.
//!
//! Grammar: `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (ASCII only, at most 63 bytes, PostgreSQL's
//! limit). Anything else — quotes, semicolons, comment markers, Jinja braces, newlines,
//! backslashes, spaces, non-ASCII look-alikes — is refused before code is produced.
//! Backends still quote every identifier for their target.

use crate::error::UnsafeIdentifier;
use cfa_plan::{ExecutionPlan, StepConfig};
use cfa_types::StateSignature;

/// Maximum identifier length in bytes.
pub const MAX_IDENT_LEN: usize = 63;

/// Why `s` is not a safe identifier, or `None` when it is.
pub fn identifier_problem(s: &str) -> Option<&'static str> {
    // Byte by byte: every allowed char is ASCII, and a non-ASCII char fails at its
    // first byte with the same reason as it would as a char.
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return Some("identifier is empty");
    };
    if s.len() > MAX_IDENT_LEN {
        return Some("identifier is longer than 63 bytes");
    }
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return Some("identifier must start with an ASCII letter or '_'");
    }
    if !bytes
        .iter()
        .skip(1)
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some("identifier may contain only ASCII letters, digits and '_'");
    }
    None
}

/// Checks one identifier.
pub fn check_identifier(value: &str, origin: &str) -> Result<(), UnsafeIdentifier> {
    check(value, || origin.to_owned())
}

/// [`check_identifier`] with the origin built only when the check fails (the walks
/// below run on every generation, and almost every identifier passes).
fn check(value: &str, origin: impl FnOnce() -> String) -> Result<(), UnsafeIdentifier> {
    match identifier_problem(value) {
        None => Ok(()),
        Some(reason) => Err(UnsafeIdentifier {
            shown: format!("{value:?}"),
            origin: origin(),
            reason: reason.to_owned(),
        }),
    }
}

/// Checks each item; the origin of item `i` is `{origin}[{i}]`.
fn each(items: &[String], origin: impl Fn() -> String) -> Result<(), UnsafeIdentifier> {
    for (i, s) in items.iter().enumerate() {
        check(s, || format!("{}[{i}]", origin()))?;
    }
    Ok(())
}

/// Checks every identifier of the signature, then every identifier of the plan (catalog
/// columns, keys, derived names such as the target and `{col}_hash`). The first unsafe
/// one is returned with its origin.
pub fn check_all(sig: &StateSignature, plan: &ExecutionPlan) -> Result<(), UnsafeIdentifier> {
    check_signature(sig)?;
    check_plan(plan)
}

/// Checks the identifiers of a signature (dataset names, PII columns, partition columns,
/// merge keys, and the domain when it names the target). Run it before planning to
/// report the signature path of a hostile name.
pub fn check_signature(sig: &StateSignature) -> Result<(), UnsafeIdentifier> {
    // The domain only matters where it names something: the multi-dataset target.
    if sig.datasets.len() != 1 {
        check_identifier(&sig.domain, "signature.domain")?;
    }
    for (i, d) in sig.datasets.iter().enumerate() {
        let p = || format!("signature.datasets[{i}]");
        check(&d.name, || format!("{}.name", p()))?;
        each(&d.pii_columns, || format!("{}.pii_columns", p()))?;
        if let Some(c) = &d.partition_column {
            check(c, || format!("{}.partition_column", p()))?;
        }
        each(&d.merge_keys, || format!("{}.merge_keys", p()))?;
    }
    each(&sig.constraints.partition_by, || {
        "signature.constraints.partition_by".to_owned()
    })?;
    Ok(())
}

/// Checks every identifier a plan carries (see [`check_all`]).
pub fn check_plan(plan: &ExecutionPlan) -> Result<(), UnsafeIdentifier> {
    check_identifier(
        &plan.target,
        "target dataset name (target_layer + '_' + domain or dataset)",
    )?;
    for d in &plan.datasets {
        let p = || format!("catalog.datasets.{}", d.name);
        check(&d.name, || format!("plan dataset {:?}", d.name))?;
        if let Some(cols) = &d.columns {
            each(cols, || format!("{}.columns", p()))?;
        }
        each(&d.pii_columns, || format!("{}.pii_columns", p()))?;
        each(&d.merge_keys, || format!("{}.merge_keys", p()))?;
        if let Some(out) = &d.output_columns {
            each(out, || format!("{} hashed column names", p()))?;
        }
        if let Some(f) = &d.filter_column {
            check(f, || format!("{} partition filter", p()))?;
        }
    }
    if let Some(cols) = &plan.output_columns {
        each(cols, || "plan.output_columns".to_owned())?;
    }
    for s in &plan.steps {
        let p = || format!("plan step {:?}", s.id);
        if let Some(src) = &s.source {
            check(src, || format!("{} source", p()))?;
        }
        if let Some(t) = &s.target {
            check(t, || format!("{} target", p()))?;
        }
        match &s.config {
            StepConfig::Extract(e) => check(&e.dataset, || format!("{} dataset", p()))?,
            StepConfig::Filter(f) => {
                check(&f.column, || format!("{} column", p()))?;
                check(&f.parameter, || format!("{} parameter", p()))?;
            }
            StepConfig::Anonymize(a) => each(&a.pii_columns, || format!("{} pii_columns", p()))?,
            StepConfig::Join(j) => {
                each(&j.datasets, || format!("{} datasets", p()))?;
                for (i, c) in j.conditions.iter().enumerate() {
                    let cp = || format!("{} conditions[{i}]", p());
                    check(&c.left_dataset, cp)?;
                    check(&c.left_column, cp)?;
                    check(&c.right_dataset, cp)?;
                    check(&c.right_column, cp)?;
                }
            }
            StepConfig::Aggregate(a) => {
                each(&a.group_by, || format!("{} group_by", p()))?;
                check(&a.count_column, || format!("{} count_column", p()))?;
            }
            StepConfig::Load(l) => {
                each(&l.merge_keys, || format!("{} merge_keys", p()))?;
                each(&l.partition_by, || format!("{} partition_by", p()))?;
                if let Some(cols) = &l.columns {
                    each(cols, || format!("{} columns", p()))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;
