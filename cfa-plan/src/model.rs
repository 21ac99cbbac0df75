//! The plan's data model: steps, their typed configs, and the plan itself. Every type
//! serialises with serde (step `kind` as `"type"`, enums as snake_case values).

use serde::{Deserialize, Serialize};

/// Name of the runtime parameter every partition filter compares against
/// (`column >= <partition_start>`). Backends bind it at run time; it never comes from
/// the signature, so no value is baked into generated code.
pub const PARTITION_PARAMETER: &str = "partition_start";

/// Column holding the row count produced by an aggregate step.
pub const AGGREGATE_COUNT_COLUMN: &str = "row_count";

/// The name a PII column takes once hashed: `{column}_hash`. The raw column is dropped,
/// so a reference to the raw name after anonymisation is always a leak.
pub fn hashed_column_name(column: &str) -> String {
    format!("{column}_hash")
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Read a source dataset.
    Extract,
    /// Apply a partition (temporal) predicate to one dataset.
    Filter,
    /// Hash a dataset's PII columns (and drop the raw values).
    Anonymize,
    /// Join every dataset into one frame.
    Join,
    /// Group and count.
    Aggregate,
    /// Write the target.
    Load,
}

impl StepKind {
    /// The serialised value, e.g. `"extract"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepKind::Extract => "extract",
            StepKind::Filter => "filter",
            StepKind::Anonymize => "anonymize",
            StepKind::Join => "join",
            StepKind::Aggregate => "aggregate",
            StepKind::Load => "load",
        }
    }
}

/// How the target is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Upsert on the merge keys (protected layers with `merge_key_required`).
    Merge,
    /// Plain append.
    Append,
    /// Replace the filtered partition range.
    OverwritePartition,
}

impl WriteMode {
    /// The serialised value, e.g. `"merge"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WriteMode::Merge => "merge",
            WriteMode::Append => "append",
            WriteMode::OverwritePartition => "overwrite_partition",
        }
    }
}

/// The unit that commits or rolls back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyUnit {
    /// One partition range (partition_by is set).
    Partition,
    /// One branch of a multi-dataset DAG (more than two datasets).
    DagBranch,
    /// The whole dataset.
    Dataset,
}

impl ConsistencyUnit {
    /// The serialised value, e.g. `"partition"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsistencyUnit::Partition => "partition",
            ConsistencyUnit::DagBranch => "dag_branch",
            ConsistencyUnit::Dataset => "dataset",
        }
    }
}

/// Physical join strategy hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinStrategy {
    /// Broadcast the small side (two datasets, one < 1 GB, the other > 100 GB).
    Broadcast,
    /// Sort-merge join.
    SortMerge,
}

/// One dataset as the plan sees it: signature metadata plus catalog columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedDataset {
    /// Dataset (table) name.
    pub name: String,
    /// Columns from the catalog entry's `columns` list; `None` when the catalog does
    /// not declare them.
    pub columns: Option<Vec<String>>,
    /// PII columns: the signature's, plus any the catalog adds.
    pub pii_columns: Vec<String>,
    /// Merge keys (the signature's; `["id"]` when it declares none).
    pub merge_keys: Vec<String>,
    /// Partition filter column applied to this dataset, if any.
    pub filter_column: Option<String>,
    /// True when the PII columns are hashed (`no_pii_raw` and PII present).
    pub anonymized: bool,
    /// Columns after anonymisation (PII replaced in place by `{col}_hash`); `None`
    /// when `columns` is unknown.
    pub output_columns: Option<Vec<String>>,
}

/// Config of an extract step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    /// Dataset read.
    pub dataset: String,
    /// Columns read, when known.
    pub columns: Option<Vec<String>>,
}

/// Config of a filter step: `column >= :partition_start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Column compared.
    pub column: String,
    /// Comparison operator (always `>=`).
    pub predicate: String,
    /// Runtime parameter compared against ([`PARTITION_PARAMETER`]).
    pub parameter: String,
    /// Why the filter exists (`FINOPS`).
    pub required_by: String,
}

/// Config of an anonymize step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymizeConfig {
    /// Columns hashed (each becomes `{col}_hash`; the raw column is dropped).
    pub pii_columns: Vec<String>,
    /// Hash strategy (always `sha256`).
    pub strategy: String,
}

/// One equality of a join: `left_dataset.left_column = right_dataset.right_column`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinCondition {
    /// Dataset already in the running result.
    pub left_dataset: String,
    /// Its column.
    pub left_column: String,
    /// Dataset being joined in.
    pub right_dataset: String,
    /// Its column.
    pub right_column: String,
}

/// Config of the join step: datasets are joined in order, dataset `i` onto the running
/// result of datasets `0..i`, with `conditions[i-1]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// Strategy hint.
    #[serde(rename = "type")]
    pub strategy: JoinStrategy,
    /// Datasets in join order.
    pub datasets: Vec<String>,
    /// One condition per joined dataset (`datasets.len() - 1` entries).
    pub conditions: Vec<JoinCondition>,
    /// Output columns (ordered union; the first dataset holding a name wins), when known.
    pub output_columns: Option<Vec<String>>,
}

/// Config of the aggregate step: `GROUP BY group_by` with `COUNT(*) AS count_column`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Grouping columns (the partition columns).
    pub group_by: Vec<String>,
    /// Name of the count column ([`AGGREGATE_COUNT_COLUMN`]).
    pub count_column: String,
}

/// Config of the load step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    /// Write mode.
    pub write_mode: WriteMode,
    /// `constraints.merge_key_required`.
    pub merge_key: bool,
    /// Keys the target is merged on (the grain of the output).
    pub merge_keys: Vec<String>,
    /// Partition columns of the target.
    pub partition_by: Vec<String>,
    /// Columns written, when known.
    pub columns: Option<Vec<String>>,
}

/// A step's typed config (serialised without a tag; the step's `type` says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepConfig {
    /// Extract.
    Extract(ExtractConfig),
    /// Filter.
    Filter(FilterConfig),
    /// Anonymize.
    Anonymize(AnonymizeConfig),
    /// Join.
    Join(JoinConfig),
    /// Aggregate.
    Aggregate(AggregateConfig),
    /// Load.
    Load(LoadConfig),
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    /// Unique id, e.g. `extract_nfe`.
    pub id: String,
    /// What it does.
    #[serde(rename = "type")]
    pub kind: StepKind,
    /// Dataset it works on, for per-dataset steps.
    pub source: Option<String>,
    /// Target it writes, for the load step.
    pub target: Option<String>,
    /// Typed config.
    pub config: StepConfig,
    /// Ids of the steps that must run first.
    pub depends_on: Vec<String>,
}

/// Descriptive metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMetadata {
    /// Signature domain.
    pub domain: String,
    /// Target layer value.
    pub target_layer: String,
}

/// The plan for one approved signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionPlan {
    /// `signature_hash` of the planned signature.
    pub signature_hash: String,
    /// `intent_id` of the planned signature.
    pub intent_id: String,
    /// Target dataset (`StateSignature::target_dataset_name`).
    pub target: String,
    /// Consistency unit.
    pub consistency_unit: ConsistencyUnit,
    /// Write mode of the load.
    pub write_mode: WriteMode,
    /// True: every plan is safe to re-run (merge / partition overwrite / append of a
    /// filtered range is the caller's contract).
    pub idempotent: bool,
    /// The datasets read, in signature order.
    pub datasets: Vec<PlannedDataset>,
    /// Columns of the written target, when every input's columns are known.
    pub output_columns: Option<Vec<String>>,
    /// Steps in construction order (already a valid topological order).
    pub steps: Vec<PlanStep>,
    /// Descriptive metadata.
    pub metadata: PlanMetadata,
}

impl ExecutionPlan {
    /// The step with `id`.
    pub fn step(&self, id: &str) -> Option<&PlanStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The load step's config.
    pub fn load(&self) -> Option<&LoadConfig> {
        self.steps.iter().find_map(|s| match &s.config {
            StepConfig::Load(l) => Some(l),
            _ => None,
        })
    }

    /// The join step's config, when the plan joins.
    pub fn join(&self) -> Option<&JoinConfig> {
        self.steps.iter().find_map(|s| match &s.config {
            StepConfig::Join(j) => Some(j),
            _ => None,
        })
    }

    /// The aggregate step's config, when the plan aggregates.
    pub fn aggregate(&self) -> Option<&AggregateConfig> {
        self.steps.iter().find_map(|s| match &s.config {
            StepConfig::Aggregate(a) => Some(a),
            _ => None,
        })
    }

    /// The plan as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
