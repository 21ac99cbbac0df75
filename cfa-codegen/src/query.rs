//! The SELECT chain shared by the SQL and dbt backends: one CTE per dataset (columns
//! listed explicitly, PII hashed *at the scan*, so raw PII never leaves the base table;
//! partition predicate applied there too), then a join CTE, then an aggregate CTE, then
//! the final SELECT of the plan's output columns. CTE names are positional
//! (`cfa_d0`, `cfa_joined`, ...), and sources are always qualified, so a dataset name can
//! never collide with a CTE.

use crate::error::{CodegenError, InvalidPlan, MissingColumns};
use cfa_plan::{ExecutionPlan, PlannedDataset, StepKind, hashed_column_name};
use std::fmt::Write as _;

/// Quotes an identifier with double quotes (identifiers are validated before this runs;
/// any `"` is still doubled).
pub fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// How a flavour spells the parts that differ between plain SQL and a dbt model.
pub trait QueryFlavor {
    /// Backend name, for errors.
    fn backend(&self) -> &str;
    /// Reference to the source table of a dataset.
    fn source(&self, dataset: &str) -> String;
    /// Expression for the partition start parameter (a DATE).
    fn partition_start(&self) -> String;
    /// SHA-256 hex of a column, as text.
    fn hash(&self, column: &str) -> String;
}

/// The PostgreSQL spelling of SHA-256 hex of any column (PostgreSQL 11+).
pub fn pg_sha256_hex(column: &str) -> String {
    format!(
        "encode(sha256(convert_to(CAST({} AS TEXT), 'UTF8')), 'hex')",
        qi(column)
    )
}

fn invalid(f: &dyn QueryFlavor, reason: impl Into<String>) -> CodegenError {
    CodegenError::InvalidPlan(InvalidPlan {
        backend: f.backend().to_owned(),
        reason: reason.into(),
    })
}

fn columns<'a>(f: &dyn QueryFlavor, d: &'a PlannedDataset) -> Result<&'a [String], CodegenError> {
    d.columns.as_deref().ok_or_else(|| {
        CodegenError::MissingColumns(MissingColumns {
            backend: f.backend().to_owned(),
            dataset: d.name.clone(),
        })
    })
}

/// The WITH chain and final SELECT (no trailing semicolon), indented by `indent`.
pub struct SelectChain {
    /// The query text.
    pub sql: String,
    /// Output columns, in order.
    pub columns: Vec<String>,
    /// Step id → the CTE that implements it (a dataset's extract, filter and anonymize
    /// steps share its one CTE).
    pub step_code: Vec<(String, String)>,
}

/// Builds the query for `plan`. Every dataset needs known columns.
pub fn build(plan: &ExecutionPlan, f: &dyn QueryFlavor) -> Result<SelectChain, CodegenError> {
    let mut ctes: Vec<(String, String)> = Vec::new();
    for (i, d) in plan.datasets.iter().enumerate() {
        let cols = columns(f, d)?;
        let items: Vec<String> = cols
            .iter()
            .map(|c| {
                if d.anonymized && d.pii_columns.contains(c) {
                    format!("{} AS {}", f.hash(c), qi(&hashed_column_name(c)))
                } else {
                    qi(c)
                }
            })
            .collect();
        let mut body = format!(
            "    SELECT\n        {}\n    FROM {}",
            items.join(",\n        "),
            f.source(&d.name)
        );
        if let Some(p) = &d.filter_column {
            let _ = write!(body, "\n    WHERE {} >= {}", qi(p), f.partition_start());
        }
        ctes.push((format!("cfa_d{i}"), body));
    }
    let mut last = "cfa_d0".to_owned();
    let first = plan
        .datasets
        .first()
        .ok_or_else(|| invalid(f, "plan has no datasets"))?;
    let mut out_cols: Vec<String> = first.output_columns.clone().unwrap_or_default();
    if let Some(join) = plan.join() {
        let pos = |name: &str| {
            plan.datasets
                .iter()
                .position(|d| d.name == name)
                .ok_or_else(|| invalid(f, format!("join names unknown dataset '{name}'")))
        };
        let mut owner: Vec<(String, usize)> = Vec::new();
        for (i, d) in plan.datasets.iter().enumerate() {
            for c in d.output_columns.as_deref().unwrap_or(&[]) {
                if !owner.iter().any(|(n, _)| n == c) {
                    owner.push((c.clone(), i));
                }
            }
        }
        let select: Vec<String> = owner
            .iter()
            .map(|(c, i)| format!("{}.{}", qi(&format!("d{i}")), qi(c)))
            .collect();
        let mut body = format!(
            "    SELECT\n        {}\n    FROM {} AS {}",
            select.join(",\n        "),
            qi("cfa_d0"),
            qi("d0")
        );
        if join.conditions.len() + 1 != plan.datasets.len() {
            return Err(invalid(f, "join needs one condition per joined dataset"));
        }
        for c in &join.conditions {
            let l = pos(&c.left_dataset)?;
            let r = pos(&c.right_dataset)?;
            if l >= r {
                return Err(invalid(
                    f,
                    "a join condition must refer to an earlier dataset",
                ));
            }
            let _ = write!(
                body,
                "\n    INNER JOIN {} AS {} ON {}.{} = {}.{}",
                qi(&format!("cfa_d{r}")),
                qi(&format!("d{r}")),
                qi(&format!("d{l}")),
                qi(&c.left_column),
                qi(&format!("d{r}")),
                qi(&c.right_column)
            );
        }
        ctes.push(("cfa_joined".into(), body));
        last = "cfa_joined".into();
        out_cols = owner.into_iter().map(|(c, _)| c).collect();
    }
    if let Some(agg) = plan.aggregate() {
        let groups: Vec<String> = agg.group_by.iter().map(|g| qi(g)).collect();
        let mut body = String::from("    SELECT\n        ");
        for g in &groups {
            body.push_str(g);
            body.push_str(",\n        ");
        }
        let _ = write!(
            body,
            "COUNT(*) AS {}\n    FROM {}",
            qi(&agg.count_column),
            qi(&last)
        );
        if !groups.is_empty() {
            let _ = write!(body, "\n    GROUP BY {}", groups.join(", "));
        }
        ctes.push(("cfa_aggregated".into(), body));
        last = "cfa_aggregated".into();
        out_cols = agg.group_by.clone();
        out_cols.push(agg.count_column.clone());
    }
    if let Some(expected) = &plan.output_columns
        && *expected != out_cols
    {
        return Err(invalid(f, "plan output columns disagree with its steps"));
    }
    let mut sql = String::from("WITH\n");
    for (i, (name, body)) in ctes.iter().enumerate() {
        let sep = if i + 1 == ctes.len() { "" } else { "," };
        let _ = writeln!(sql, "{} AS (\n{}\n){}", qi(name), body, sep);
    }
    let list: Vec<String> = out_cols.iter().map(|c| qi(c)).collect();
    let _ = write!(
        sql,
        "SELECT\n    {}\nFROM {}",
        list.join(",\n    "),
        qi(&last)
    );
    let mut step_code = Vec::new();
    for step in &plan.steps {
        let cte = match (&step.kind, &step.source) {
            (StepKind::Join, _) => Some("cfa_joined".to_owned()),
            (StepKind::Aggregate, _) => Some("cfa_aggregated".to_owned()),
            (StepKind::Extract | StepKind::Filter | StepKind::Anonymize, Some(src)) => plan
                .datasets
                .iter()
                .position(|d| &d.name == src)
                .map(|i| format!("cfa_d{i}")),
            _ => None,
        };
        if let Some(body) = cte.and_then(|n| ctes.iter().find(|(c, _)| *c == n)) {
            step_code.push((
                step.id.clone(),
                format!("{} AS (\n{}\n)", qi(&body.0), body.1),
            ));
        }
    }
    Ok(SelectChain {
        sql,
        columns: out_cols,
        step_code,
    })
}
