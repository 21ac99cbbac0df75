//! SQL checks on sqlparser's AST (PostgreSQL dialect): forbidden statements, MERGE for
//! protected writes, a partition predicate in some WHERE, and PII referenced only inside
//! a SHA-256 call (no wildcard projection when PII must be protected).

use super::{
    SchemaContract, StaticValidationResult, fault, forbidden_column_fault, merge_required,
    missing_merge_fault, missing_partition_fault, protected_pii, raw_pii_fault,
};
use cfa_types::{FaultSeverity, StateSignature};
use sqlparser::ast::{
    BinaryOperator, Expr, ObjectType, Select, SelectItem, Statement, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// Fault codes the SQL validation can raise (besides `STATIC_RAW_PII_REFERENCE_{COL}`).
pub const SQL_CODES: &[&str] = &[
    "STATIC_SQL_PARSE_ERROR",
    "STATIC_SQL_DROP_TABLE",
    "STATIC_SQL_DROP_DATABASE",
    "STATIC_SQL_TRUNCATE",
    "STATIC_SQL_DELETE_WITHOUT_WHERE",
    "STATIC_SQL_ALTER_TABLE",
    "STATIC_SQL_FORBIDDEN_STATEMENT",
    "STATIC_MISSING_PARTITION_FILTER",
    "STATIC_MISSING_MERGE_OPERATION",
    "STATIC_PII_WILDCARD_SELECT",
    "STATIC_RAW_PII_REFERENCE_{COL}",
];

/// Fault codes the dbt validation can raise (besides `STATIC_RAW_PII_REFERENCE_{COL}`).
pub const DBT_CODES: &[&str] = &[
    "STATIC_DBT_TEMPLATE_ERROR",
    "STATIC_DBT_PARSE_ERROR",
    "STATIC_DBT_DROP_TABLE",
    "STATIC_DBT_DROP_DATABASE",
    "STATIC_DBT_TRUNCATE",
    "STATIC_DBT_DELETE",
    "STATIC_DBT_ALTER_TABLE",
    "STATIC_DBT_FORBIDDEN_STATEMENT",
    "STATIC_MISSING_PARTITION_FILTER",
    "STATIC_MISSING_MERGE_OPERATION",
    "STATIC_PII_WILDCARD_SELECT",
    "STATIC_RAW_PII_REFERENCE_{COL}",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Sql,
    Dbt,
}

impl Flavor {
    fn prefix(self) -> &'static str {
        match self {
            Flavor::Sql => "STATIC_SQL",
            Flavor::Dbt => "STATIC_DBT",
        }
    }
}

const HASH_FUNCTIONS: &[&str] = &["sha256", "sha2"];

fn is_hash_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| HASH_FUNCTIONS.contains(&i.value.to_lowercase().as_str())),
        _ => false,
    }
}

fn names_column(e: &Expr, cols: &[String]) -> bool {
    let id = match e {
        Expr::Identifier(i) => Some(i),
        Expr::CompoundIdentifier(ids) => ids.last(),
        Expr::Nested(inner) => return names_column(inner, cols),
        Expr::Cast { expr, .. } => return names_column(expr, cols),
        _ => None,
    };
    id.is_some_and(|i| cols.contains(&i.value.to_lowercase()))
}

fn has_partition_predicate(e: &Expr, cols: &[String]) -> bool {
    match e {
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                has_partition_predicate(left, cols) || has_partition_predicate(right, cols)
            }
            BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Eq => names_column(left, cols) || names_column(right, cols),
            _ => false,
        },
        Expr::Between { expr, negated, .. } => !*negated && names_column(expr, cols),
        Expr::Nested(inner) => has_partition_predicate(inner, cols),
        _ => false,
    }
}

struct Scan<'a> {
    pii: &'a [String],
    partition: &'a [String],
    hash_depth: usize,
    raw: Vec<String>,
    wildcard: bool,
    partition_found: bool,
}

impl Visitor for Scan<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if is_hash_call(e) {
            self.hash_depth += 1;
        }
        // A column reference is an identifier in expression position (or the last part
        // of a compound one); aliases, table names and CTE names are not references.
        let column = match e {
            Expr::Identifier(i) => Some(i),
            Expr::CompoundIdentifier(ids) => ids.last(),
            _ => None,
        };
        if let Some(i) = column {
            let v = i.value.to_lowercase();
            if self.hash_depth == 0 && self.pii.contains(&v) && !self.raw.contains(&v) {
                self.raw.push(v);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if is_hash_call(e) {
            self.hash_depth = self.hash_depth.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        if s.projection.iter().any(|p| {
            matches!(
                p,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        }) {
            self.wildcard = true;
        }
        if let Some(w) = &s.selection
            && has_partition_predicate(w, self.partition)
        {
            self.partition_found = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        if let Statement::Delete(d) = s
            && d.selection
                .as_ref()
                .is_some_and(|w| has_partition_predicate(w, self.partition))
        {
            self.partition_found = true;
        }
        ControlFlow::Continue(())
    }
}

fn statement_fault(s: &Statement, flavor: Flavor) -> Option<cfa_types::Fault> {
    let p = flavor.prefix();
    let crit = FaultSeverity::Critical;
    let (suffix, severity, what) = match s {
        Statement::Drop { object_type, .. } => match object_type {
            ObjectType::Table | ObjectType::View | ObjectType::MaterializedView => {
                ("DROP_TABLE", crit, "DROP TABLE/VIEW")
            }
            ObjectType::Database | ObjectType::Schema => {
                ("DROP_DATABASE", crit, "DROP DATABASE/SCHEMA")
            }
            _ => ("FORBIDDEN_STATEMENT", crit, "DROP"),
        },
        Statement::Truncate(_) => ("TRUNCATE", crit, "TRUNCATE"),
        Statement::Delete(d) => {
            if flavor == Flavor::Dbt {
                ("DELETE", crit, "DELETE FROM")
            } else if d.selection.is_none() {
                ("DELETE_WITHOUT_WHERE", crit, "DELETE FROM without WHERE")
            } else {
                return None;
            }
        }
        Statement::AlterTable(_) => ("ALTER_TABLE", FaultSeverity::High, "ALTER TABLE"),
        Statement::Query(_) => return None,
        Statement::Insert(_)
        | Statement::Merge(_)
        | Statement::CreateView(_)
        | Statement::CreateTable(_)
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
            if flavor == Flavor::Sql =>
        {
            return None;
        }
        _ => (
            "FORBIDDEN_STATEMENT",
            crit,
            "a statement outside the allowed set",
        ),
    };
    let allowed = match flavor {
        Flavor::Sql => {
            "BEGIN, CREATE [TEMPORARY] VIEW, CREATE TABLE, SELECT, INSERT, MERGE, DELETE … WHERE, COMMIT"
        }
        Flavor::Dbt => "a single SELECT",
    };
    Some(fault(
        format!("{p}_{suffix}"),
        severity,
        format!("generated code contains {what}"),
        &[&format!("Generated code may only contain: {allowed}.")],
    ))
}

fn check_statements(
    statements: &[Statement],
    sig: &StateSignature,
    flavor: Flavor,
    merge_present: bool,
    contract: Option<&SchemaContract>,
) -> Vec<cfa_types::Fault> {
    let mut faults: Vec<cfa_types::Fault> = statements
        .iter()
        .filter_map(|s| statement_fault(s, flavor))
        .collect();
    if flavor == Flavor::Dbt && statements.len() != 1 {
        faults.push(fault(
            "STATIC_DBT_FORBIDDEN_STATEMENT",
            FaultSeverity::Critical,
            format!(
                "a dbt model must be exactly one SELECT, found {} statements",
                statements.len()
            ),
            &["Keep the model to a single SELECT; dbt runs the write."],
        ));
    }
    let pii = protected_pii(sig);
    let forbidden = contract.map(SchemaContract::lowercase).unwrap_or_default();
    let mut watched = pii.clone();
    for f in &forbidden {
        if !watched.contains(f) {
            watched.push(f.clone());
        }
    }
    let partition: Vec<String> = sig
        .constraints
        .partition_by
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    let mut scan = Scan {
        pii: &watched,
        partition: &partition,
        hash_depth: 0,
        raw: Vec::new(),
        wildcard: false,
        partition_found: false,
    };
    for s in statements {
        let _ = s.visit(&mut scan);
    }
    if !partition.is_empty() && !scan.partition_found {
        faults.push(missing_partition_fault());
    }
    if merge_required(sig) && !merge_present {
        faults.push(missing_merge_fault(sig.target_layer.as_str()));
    }
    if !pii.is_empty() && scan.wildcard {
        faults.push(fault(
            "STATIC_PII_WILDCARD_SELECT",
            FaultSeverity::Critical,
            "a wildcard projection can carry raw PII columns",
            &["List columns explicitly and hash PII columns."],
        ));
    }
    for c in &scan.raw {
        if pii.contains(c) {
            faults.push(raw_pii_fault(c, "outside a sha256() call"));
        }
        if forbidden.contains(c) {
            faults.push(forbidden_column_fault(c));
        }
    }
    faults
}

fn parse(text: &str) -> Result<Vec<Statement>, String> {
    Parser::parse_sql(&PostgreSqlDialect {}, text).map_err(|e| e.to_string())
}

/// Validates a PostgreSQL script produced by the SQL backend (or any SQL text).
pub fn validate_sql(text: &str, sig: &StateSignature) -> StaticValidationResult {
    validate_sql_with(text, sig, None)
}

/// [`validate_sql`] plus a schema contract (forbidden columns).
pub fn validate_sql_with(
    text: &str,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    let statements = match parse(text) {
        Ok(s) => s,
        Err(e) => {
            return StaticValidationResult::from_faults(
                vec![fault(
                    "STATIC_SQL_PARSE_ERROR",
                    FaultSeverity::Critical,
                    format!("generated SQL does not parse: {e}"),
                    &["Regenerate the code; generated SQL must parse."],
                )],
                1,
            );
        }
    };
    let merge = statements.iter().any(|s| matches!(s, Statement::Merge(_)));
    let checks = 4 + u32::from(contract.is_some());
    StaticValidationResult::from_faults(
        check_statements(&statements, sig, Flavor::Sql, merge, contract),
        checks,
    )
}

/// Validates a dbt model: compiles its Jinja with [`super::jinja::compile`], then parses
/// the SQL. The merge requirement is met by an incremental model with
/// `incremental_strategy='merge'` and a non-empty `unique_key`.
pub fn validate_dbt_model(model: &str, sig: &StateSignature) -> StaticValidationResult {
    validate_dbt_model_with(model, sig, None)
}

/// [`validate_dbt_model`] plus a schema contract (forbidden columns).
pub fn validate_dbt_model_with(
    model: &str,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    let compiled = match super::jinja::compile(model) {
        Ok(c) => c,
        Err(e) => {
            return StaticValidationResult::from_faults(
                vec![fault(
                    "STATIC_DBT_TEMPLATE_ERROR",
                    FaultSeverity::Critical,
                    format!("dbt model template cannot be compiled: {e}"),
                    &["Use only config(), source(), ref() and var() in generated models."],
                )],
                1,
            );
        }
    };
    let statements = match parse(&compiled.sql) {
        Ok(s) => s,
        Err(e) => {
            return StaticValidationResult::from_faults(
                vec![fault(
                    "STATIC_DBT_PARSE_ERROR",
                    FaultSeverity::Critical,
                    format!("compiled dbt model does not parse: {e}"),
                    &["Regenerate the model; compiled SQL must parse."],
                )],
                2,
            );
        }
    };
    let merge = compiled.config_str("materialized") == Some("incremental")
        && compiled.config_str("incremental_strategy") == Some("merge")
        && compiled
            .config_list("unique_key")
            .is_some_and(|k| !k.is_empty());
    let checks = 5 + u32::from(contract.is_some());
    StaticValidationResult::from_faults(
        check_statements(&statements, sig, Flavor::Dbt, merge, contract),
        checks,
    )
}
