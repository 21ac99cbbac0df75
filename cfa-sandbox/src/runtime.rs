//! Runtime validation of aggregated metrics (docs/compatibility.md#execution-outcomes, over the correct
//! aggregate of B9 so every check can fire).

use crate::metrics::AggregateMetrics;
use cfa_plan::ExecutionPlan;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction, StateSignature};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Thresholds (reference defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeThresholds {
    /// Largest allowed null ratio per column (0.10).
    pub max_null_ratio: f64,
    /// Shuffle budget, MB (500.0).
    pub max_shuffle_mb: f64,
    /// Minimum output rows; 0 = off.
    pub min_rows: u64,
    /// Maximum output rows; 0 = off.
    pub max_rows: u64,
    /// Cost ceiling when the signature sets none.
    pub max_cost_dbu: Option<f64>,
    /// Columns the output must have.
    pub required_output_columns: Vec<String>,
    /// Columns the output must not have.
    pub forbidden_output_columns: Vec<String>,
}

impl Default for RuntimeThresholds {
    fn default() -> Self {
        RuntimeThresholds {
            max_null_ratio: 0.10,
            max_shuffle_mb: 500.0,
            min_rows: 0,
            max_rows: 0,
            max_cost_dbu: None,
            required_output_columns: Vec::new(),
            forbidden_output_columns: Vec::new(),
        }
    }
}

/// An expected output schema (the schema checks).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchemaContract {
    /// Columns that must be present.
    pub required_columns: Vec<String>,
    /// Columns that must be absent.
    pub forbidden_columns: Vec<String>,
}

impl SchemaContract {
    /// The contract a plan implies: its output columns (when known) are required, and
    /// the raw names of anonymised PII columns are forbidden.
    pub fn from_plan(plan: &ExecutionPlan) -> Self {
        let required = plan.output_columns.clone().unwrap_or_default();
        let forbidden = plan_forbidden(plan, &required);
        SchemaContract {
            required_columns: required,
            forbidden_columns: forbidden,
        }
    }
}

/// The forbidden columns of [`SchemaContract::from_plan`]: the raw names of the plan's
/// anonymised PII columns that are not `required`, sorted, each once.
fn plan_forbidden(plan: &ExecutionPlan, required: &[String]) -> Vec<String> {
    let mut forbidden: Vec<String> = plan
        .datasets
        .iter()
        .filter(|d| d.anonymized)
        .flat_map(|d| d.pii_columns.iter().cloned())
        .filter(|c| !required.contains(c))
        .collect();
    forbidden.sort();
    forbidden.dedup();
    forbidden
}

/// The schema contract a validation checks, borrowed where it can be.
struct Schema<'a> {
    required: &'a [String],
    forbidden: Cow<'a, [String]>,
}

/// The result of runtime validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeValidation {
    /// False when any high or critical fault fired.
    pub passed: bool,
    /// Faults, in check order.
    pub faults: Vec<Fault>,
}

/// The runtime validator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeValidator {
    /// Thresholds.
    pub thresholds: RuntimeThresholds,
    /// Optional schema contract.
    pub schema: Option<SchemaContract>,
}

fn fault(code: String, severity: FaultSeverity, action: PolicyAction, message: String) -> Fault {
    Fault {
        code: code.into(),
        family: FaultFamily::RuntimeBehavioral,
        severity,
        stage: "runtime_validation".into(),
        message: message.into(),
        mandatory_action: action,
        remediation: Default::default(),
        detected_before_execution: false,
    }
}

fn high(code: &str, message: String) -> Fault {
    fault(
        code.into(),
        FaultSeverity::High,
        PolicyAction::Block,
        message,
    )
}

fn critical(code: &str, message: String) -> Fault {
    fault(
        code.into(),
        FaultSeverity::Critical,
        PolicyAction::Block,
        message,
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[allow(clippy::cast_precision_loss)]
fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

impl RuntimeValidator {
    /// A validator with `thresholds` and no schema contract.
    pub fn new(thresholds: RuntimeThresholds) -> Self {
        RuntimeValidator {
            thresholds,
            schema: None,
        }
    }

    /// Adds a schema contract.
    #[must_use]
    pub fn with_schema(mut self, schema: SchemaContract) -> Self {
        self.schema = Some(schema);
        self
    }

    /// The cost ceiling: the signature's `max_cost_dbu` when set and non-zero, else
    /// the threshold (Python `sig.max_cost_dbu or thresholds.max_cost_dbu`).
    pub fn cost_ceiling(&self, signature: Option<&StateSignature>) -> Option<f64> {
        signature
            .and_then(|s| s.constraints.max_cost_dbu_f64())
            .filter(|c| *c != 0.0)
            .or(self.thresholds.max_cost_dbu)
    }

    /// Checks `m`.
    pub fn validate(
        &self,
        m: &AggregateMetrics,
        signature: Option<&StateSignature>,
    ) -> RuntimeValidation {
        let schema = self.schema.as_ref().map(|s| Schema {
            required: &s.required_columns,
            forbidden: Cow::Borrowed(&s.forbidden_columns),
        });
        self.validate_with(schema, m, signature)
    }

    /// [`RuntimeValidator::validate`] with this validator's schema contract replaced
    /// by the one `plan` implies ([`SchemaContract::from_plan`]), read from the plan
    /// without building the contract: the same checks, the same faults.
    pub(crate) fn validate_with_plan(
        &self,
        plan: &ExecutionPlan,
        m: &AggregateMetrics,
        signature: Option<&StateSignature>,
    ) -> RuntimeValidation {
        let required: &[String] = plan.output_columns.as_deref().unwrap_or_default();
        let schema = Schema {
            required,
            forbidden: Cow::Owned(plan_forbidden(plan, required)),
        };
        self.validate_with(Some(schema), m, signature)
    }

    fn validate_with(
        &self,
        schema: Option<Schema<'_>>,
        m: &AggregateMetrics,
        signature: Option<&StateSignature>,
    ) -> RuntimeValidation {
        let t = &self.thresholds;
        let mut faults = Vec::new();
        if t.min_rows > 0 && m.rows_output < t.min_rows {
            faults.push(high(
                "RUNTIME_CARDINALITY_BELOW_MINIMUM",
                format!(
                    "Output has {} rows, below the minimum of {}",
                    m.rows_output, t.min_rows
                ),
            ));
        }
        if t.max_rows > 0 && m.rows_output > t.max_rows {
            faults.push(high(
                "RUNTIME_CARDINALITY_ABOVE_MAXIMUM",
                format!(
                    "Output has {} rows, above the maximum of {}",
                    m.rows_output, t.max_rows
                ),
            ));
        }
        if let Some(ceiling) = self.cost_ceiling(signature)
            && m.cost_dbu > ceiling
        {
            {
                faults.push(critical(
                    "RUNTIME_COST_CEILING_EXCEEDED",
                    format!(
                        "Cost {:.2} DBU exceeds the ceiling of {:.2} DBU",
                        m.cost_dbu, ceiling
                    ),
                ));
            }
        }
        for (col, nulls) in m.null_counts.iter() {
            let r = ratio(*nulls, m.rows_output);
            if r > t.max_null_ratio {
                faults.push(fault(
                    format!("RUNTIME_NULL_RATIO_EXCEEDED_{}", col.to_uppercase()),
                    FaultSeverity::Warning,
                    PolicyAction::Approve,
                    format!(
                        "Column '{col}' null ratio {:.2}% exceeds the threshold of {:.2}%",
                        r * 100.0,
                        t.max_null_ratio * 100.0
                    ),
                ));
            }
        }
        if m.shuffle_mb > t.max_shuffle_mb {
            faults.push(high(
                "RUNTIME_SHUFFLE_BUDGET_EXCEEDED",
                format!(
                    "Shuffle {:.1} MB exceeds the budget of {:.1} MB",
                    m.shuffle_mb, t.max_shuffle_mb
                ),
            ));
        }
        let has = |c: &String| m.output_schema.contains(c);
        if let Some(schema) = &schema {
            let missing = sorted(
                schema
                    .required
                    .iter()
                    .filter(|c| !has(c))
                    .cloned()
                    .collect(),
            );
            if !missing.is_empty() {
                faults.push(high(
                    "RUNTIME_SCHEMA_MISSING_COLUMNS",
                    format!("Output schema is missing required columns: {missing:?}"),
                ));
            }
            let present = sorted(
                schema
                    .forbidden
                    .iter()
                    .filter(|c| has(c))
                    .cloned()
                    .collect(),
            );
            if !present.is_empty() {
                faults.push(critical(
                    "RUNTIME_SCHEMA_FORBIDDEN_COLUMNS",
                    format!("Output schema contains forbidden columns: {present:?}"),
                ));
            }
        }
        let missing = sorted(
            t.required_output_columns
                .iter()
                .filter(|c| !has(c))
                .cloned()
                .collect(),
        );
        if !missing.is_empty() {
            faults.push(high(
                "RUNTIME_MISSING_REQUIRED_OUTPUT_COLUMNS",
                format!("Output is missing required columns: {missing:?}"),
            ));
        }
        let present = sorted(
            t.forbidden_output_columns
                .iter()
                .filter(|c| has(c))
                .cloned()
                .collect(),
        );
        if !present.is_empty() {
            faults.push(critical(
                "RUNTIME_FORBIDDEN_OUTPUT_COLUMNS",
                format!("Output contains forbidden columns: {present:?}"),
            ));
        }
        let passed = !faults
            .iter()
            .any(|f| matches!(f.severity, FaultSeverity::High | FaultSeverity::Critical));
        RuntimeValidation { passed, faults }
    }
}
