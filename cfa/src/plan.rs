//! Planning: the [`Planner`] trait (the kernel holds a `dyn Planner`), the built-in
//! [`ExecutionPlanner`], and the [`ExecutionPlan`] it produces — typed steps with
//! explicit dependencies, write mode, merge keys, partition filters and consistency unit.
//! Re-exported from cfa-plan.
//!
//! ```
//! use cfa::plan::{ExecutionPlanner, Planner, StepKind};
//! use cfa::StateSignature;
//!
//! let sig = StateSignature::from_json_str(
//!     r#"{"domain":"d","intent":"i","target_layer":"bronze","datasets":[{"name":"nfe"}],
//!         "constraints":{"merge_key_required":false}}"#,
//! )?;
//! let plan = ExecutionPlanner::default().plan(&sig, None)?;
//! assert_eq!(plan.steps.first().map(|s| s.kind), Some(StepKind::Extract));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use cfa_plan::{
    AGGREGATE_COUNT_COLUMN, AggregateConfig, AnonymizeConfig, ConsistencyUnit, CycleError,
    ExecutionPlan, ExecutionPlanner, ExtractConfig, FilterConfig, JoinCondition, JoinConfig,
    JoinStrategy, LoadConfig, PARTITION_PARAMETER, PlanError, PlanMetadata, PlanStep,
    PlannedDataset, Planner, StepConfig, StepKind, WriteMode, hashed_column_name,
};
