//! The identifier checks as they were before origins were built lazily: the test
//! oracle for every verdict and the origin of every refusal.
#![allow(dead_code)]

use super::MAX_IDENT_LEN;
use crate::error::UnsafeIdentifier;
use cfa_plan::{ExecutionPlan, StepConfig};
use cfa_types::StateSignature;

/// Why `s` is not a safe identifier, or `None` when it is.
pub fn identifier_problem(s: &str) -> Option<&'static str> {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Some("identifier is empty");
    };
    if s.len() > MAX_IDENT_LEN {
        return Some("identifier is longer than 63 bytes");
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Some("identifier must start with an ASCII letter or '_'");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("identifier may contain only ASCII letters, digits and '_'");
    }
    None
}

/// Checks one identifier.
pub fn check_identifier(value: &str, origin: &str) -> Result<(), UnsafeIdentifier> {
    match identifier_problem(value) {
        None => Ok(()),
        Some(reason) => Err(UnsafeIdentifier {
            shown: format!("{value:?}"),
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        }),
    }
}

fn each(items: &[String], origin: &str) -> Result<(), UnsafeIdentifier> {
    for (i, s) in items.iter().enumerate() {
        check_identifier(s, &format!("{origin}[{i}]"))?;
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
    check_identifier(&sig.domain, "signature.domain").or_else(|e| {
        // The domain only matters where it names something: the multi-dataset target.
        if sig.datasets.len() == 1 {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    for (i, d) in sig.datasets.iter().enumerate() {
        let p = format!("signature.datasets[{i}]");
        check_identifier(&d.name, &format!("{p}.name"))?;
        each(&d.pii_columns, &format!("{p}.pii_columns"))?;
        if let Some(c) = &d.partition_column {
            check_identifier(c, &format!("{p}.partition_column"))?;
        }
        each(&d.merge_keys, &format!("{p}.merge_keys"))?;
    }
    each(
        &sig.constraints.partition_by,
        "signature.constraints.partition_by",
    )?;
    Ok(())
}

/// Checks every identifier a plan carries (see [`check_all`]).
pub fn check_plan(plan: &ExecutionPlan) -> Result<(), UnsafeIdentifier> {
    check_identifier(
        &plan.target,
        "target dataset name (target_layer + '_' + domain or dataset)",
    )?;
    for d in &plan.datasets {
        let p = format!("catalog.datasets.{}", d.name);
        check_identifier(&d.name, &format!("plan dataset {:?}", d.name))?;
        if let Some(cols) = &d.columns {
            each(cols, &format!("{p}.columns"))?;
        }
        each(&d.pii_columns, &format!("{p}.pii_columns"))?;
        each(&d.merge_keys, &format!("{p}.merge_keys"))?;
        if let Some(out) = &d.output_columns {
            each(out, &format!("{p} hashed column names"))?;
        }
        if let Some(f) = &d.filter_column {
            check_identifier(f, &format!("{p} partition filter"))?;
        }
    }
    if let Some(cols) = &plan.output_columns {
        each(cols, "plan.output_columns")?;
    }
    for s in &plan.steps {
        let p = format!("plan step {:?}", s.id);
        if let Some(src) = &s.source {
            check_identifier(src, &format!("{p} source"))?;
        }
        if let Some(t) = &s.target {
            check_identifier(t, &format!("{p} target"))?;
        }
        match &s.config {
            StepConfig::Extract(e) => check_identifier(&e.dataset, &format!("{p} dataset"))?,
            StepConfig::Filter(f) => {
                check_identifier(&f.column, &format!("{p} column"))?;
                check_identifier(&f.parameter, &format!("{p} parameter"))?;
            }
            StepConfig::Anonymize(a) => each(&a.pii_columns, &format!("{p} pii_columns"))?,
            StepConfig::Join(j) => {
                each(&j.datasets, &format!("{p} datasets"))?;
                for (i, c) in j.conditions.iter().enumerate() {
                    let cp = format!("{p} conditions[{i}]");
                    check_identifier(&c.left_dataset, &cp)?;
                    check_identifier(&c.left_column, &cp)?;
                    check_identifier(&c.right_dataset, &cp)?;
                    check_identifier(&c.right_column, &cp)?;
                }
            }
            StepConfig::Aggregate(a) => {
                each(&a.group_by, &format!("{p} group_by"))?;
                check_identifier(&a.count_column, &format!("{p} count_column"))?;
            }
            StepConfig::Load(l) => {
                each(&l.merge_keys, &format!("{p} merge_keys"))?;
                each(&l.partition_by, &format!("{p} partition_by"))?;
                if let Some(cols) = &l.columns {
                    each(cols, &format!("{p} columns"))?;
                }
            }
        }
    }
    Ok(())
}
