//! Per-step metrics and their correct aggregation (docs/differences.md#b9-runtime-metrics-aggregate-correctly): output rows, output
//! schema and null counts come from the step that writes the target (the load step);
//! cost, duration and shuffle add up over every executed step.

use crate::sandbox::{StepResult, StepStatus};
use cfa_plan::{ExecutionPlan, StepKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one step measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Rows the step produced (for the load step: rows written to the target).
    pub rows_output: u64,
    /// Shuffle, MB.
    pub shuffle_mb: f64,
    /// Wall time, seconds.
    pub duration_seconds: f64,
    /// Cost, DBU.
    pub cost_dbu: f64,
    /// Nulls per output column.
    pub null_counts: BTreeMap<String, u64>,
    /// Output columns, in order.
    pub output_schema: Vec<String>,
}

/// The run's aggregate, as the runtime validator and the state projection see it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AggregateMetrics {
    /// Rows written to the target (from the load step; 0 when it did not succeed).
    pub rows_output: u64,
    /// Total shuffle, MB.
    pub shuffle_mb: f64,
    /// Total cost, DBU.
    pub cost_dbu: f64,
    /// Total duration, seconds.
    pub duration_seconds: f64,
    /// Nulls per column of the target (from the load step).
    pub null_counts: BTreeMap<String, u64>,
    /// Columns of the target (from the load step).
    pub output_schema: Vec<String>,
}

impl AggregateMetrics {
    /// The reference's `metrics_snapshot` shape.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn writes_target(plan: &ExecutionPlan, step_id: &str) -> bool {
    plan.step(step_id)
        .is_some_and(|s| s.kind == StepKind::Load || s.target.as_deref() == Some(&plan.target))
}

/// Aggregates the succeeded steps' metrics of one run.
pub fn aggregate(plan: &ExecutionPlan, results: &[StepResult]) -> AggregateMetrics {
    let mut m = AggregateMetrics::default();
    for r in results.iter().filter(|r| r.status == StepStatus::Succeeded) {
        m.shuffle_mb += r.metrics.shuffle_mb;
        m.cost_dbu += r.metrics.cost_dbu;
        m.duration_seconds += r.metrics.duration_seconds;
        if writes_target(plan, &r.step_id) {
            m.rows_output = r.metrics.rows_output;
            m.null_counts.clone_from(&r.metrics.null_counts);
            m.output_schema.clone_from(&r.metrics.output_schema);
        }
    }
    m
}
