//! Π plan: turns an approved [`cfa_types::StateSignature`] (plus an optional
//! [`cfa_types::Catalog`] for column lists) into an [`ExecutionPlan`] — typed steps
//! (extract, filter, anonymize, join, aggregate, load) with explicit dependencies, write
//! mode, merge keys, partition filters and consistency unit — and orders it
//! topologically. It must NOT know about backends, generated code, policy rules or
//! execution: it describes *what* runs, never *how* a backend spells it.
//!
//! Planning is pure, so [`ExecutionPlanner`] remembers its thread's last few plans (the
//! key and bound are in `memo.rs`); [`ExecutionPlanner::plan_uncached`] plans without
//! that memo.
//!
//! # Example
//!
//! ```
//! use cfa_plan::{ExecutionPlanner, Planner, StepKind, WriteMode};
//! use cfa_types::{Catalog, StateSignature};
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
//!     "nfe": {"classification": "high_volume", "partition_column": "processing_date",
//!             "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "processing_date"]},
//!     "clientes": {"classification": "sensitive", "pii_columns": ["cpf"],
//!                  "merge_keys": ["cliente_id"], "columns": ["cliente_id", "cpf"]}}}))?;
//! let sig = StateSignature::parse_validated(
//!     r#"{"domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
//!         "datasets": [
//!           {"name": "nfe", "classification": "high_volume",
//!            "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
//!           {"name": "clientes", "classification": "sensitive", "pii_columns": ["cpf"],
//!            "merge_keys": ["cliente_id"]}],
//!         "constraints": {"partition_by": ["processing_date"]},
//!         "execution_context": {"policy_bundle_version": "v1.0",
//!             "catalog_snapshot_version": "c1", "context_registry_version_id": "v1"}}"#,
//!     true,
//! )?;
//!
//! let plan = ExecutionPlanner::default().plan(&sig, Some(&catalog))?;
//! assert_eq!(plan.target, "silver_fiscal");
//! assert_eq!(plan.write_mode, WriteMode::Merge); // silver + merge_key_required
//! assert_eq!(plan.signature_hash, sig.signature_hash());
//!
//! // Steps come in topological order: every dependency is listed before its user.
//! for (i, step) in plan.steps.iter().enumerate() {
//!     for dep in &step.depends_on {
//!         assert!(plan.steps[..i].iter().any(|s| &s.id == dep), "{} before {}", dep, step.id);
//!     }
//! }
//! let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
//! assert!(kinds.contains(&StepKind::Anonymize)); // clientes.cpf is hashed before the join
//! assert!(kinds.contains(&StepKind::Join));
//! assert_eq!(kinds.last(), Some(&StepKind::Load));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod memo;
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
