//! Π plan: turns an approved [`cfa_types::StateSignature`] (plus an optional
//! [`cfa_types::Catalog`] for column lists) into an [`ExecutionPlan`] — typed steps
//! (extract, filter, anonymize, join, aggregate, load) with explicit dependencies, write
//! mode, merge keys, partition filters and consistency unit — and orders it
//! topologically. It must NOT know about backends, generated code, policy rules or
//! execution: it describes *what* runs, never *how* a backend spells it.

mod model;
mod planner;
mod topo;

pub use model::{
    AGGREGATE_COUNT_COLUMN, AggregateConfig, AnonymizeConfig, ConsistencyUnit, ExecutionPlan,
    ExtractConfig, FilterConfig, JoinCondition, JoinConfig, JoinStrategy, LoadConfig,
    PARTITION_PARAMETER, PlanMetadata, PlanStep, PlannedDataset, StepConfig, StepKind, WriteMode,
    hashed_column_name,
};
pub use planner::{ExecutionPlanner, PlanError, Planner};
pub use topo::CycleError;
