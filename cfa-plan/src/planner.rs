//! `ExecutionPlanner`: signature (+ catalog) → [`ExecutionPlan`].
//!
//! Rules (fixes of docs/differences.md#b8-generated-code-is-correct-and-safe are marked):
//! - one `extract_{ds}` per dataset; `filter_{ds}` when `partition_by` is set (column:
//!   the dataset's own `partition_column` when it is listed in `partition_by`, else
//!   `partition_by[0]`; skipped only when the catalog lists the dataset's columns and the
//!   column is not among them); `anonymize_{ds}` when the dataset has PII and
//!   `no_pii_raw` is set. PII columns are the signature's plus any the catalog adds.
//! - **every** dataset is joined (B8: none is dropped), whenever there is more than one.
//!   Dataset `i` is joined onto the running result of `0..i` by the first rule that
//!   matches ("join-key rule"). Only keys both sides really have are used: merge keys
//!   the signature declares (never the `id` stand-in of a dataset without any) and
//!   columns the catalog lists.
//!   1. *explicit key*: the catalog declares it, on either side, as
//!      `datasets.<name>.join_keys: {<other dataset>: [<column>]}` (one column, present
//!      under that name in both datasets; a bare string is accepted too);
//!   2. *shared key*: the first merge key of `i` that is also a merge key of an earlier
//!      dataset `j` (lowest `j`) — `j.k = i.k`;
//!   3. *foreign key*: the first merge key of `i` that is a known column of an earlier
//!      dataset `j` — `j.k = i.k`;
//!   4. *reverse foreign key*: the first merge key `k` of an earlier dataset `j` that is a
//!      known column of `i` — `j.k = i.k`;
//!   5. otherwise the plan is refused ([`PlanError::UngroundedJoin`], saying what to add
//!      to the catalog): a join is never guessed from each side's first key.
//!
//!   Output columns are the ordered union of the inputs' columns; a name held by several
//!   datasets comes from the first one.
//! - `aggregate` when the intent contains `aggregate`: group by `partition_by`, count rows
//!   into `row_count`; its merge keys are the group-by columns (B8: it reads whatever
//!   frame precedes it, join or single dataset).
//! - write mode: `merge` for silver/gold with `merge_key_required`; otherwise
//!   `overwrite_partition` when partitioned, else `append`.
//! - merge keys: `datasets[0].merge_keys` (or `["id"]`), or the group-by after an aggregate.

use crate::memo;
use crate::model::{
    AGGREGATE_COUNT_COLUMN, AggregateConfig, AnonymizeConfig, ConsistencyUnit, ExecutionPlan,
    ExtractConfig, FilterConfig, JoinCondition, JoinConfig, JoinStrategy, LoadConfig,
    PARTITION_PARAMETER, PlanMetadata, PlanStep, PlannedDataset, StepConfig, StepKind, WriteMode,
    hashed_column_name,
};
use crate::topo::{CycleError, order_steps};
use cfa_types::{Catalog, DatasetRef, StateSignature};
use serde_json::Value;
use std::sync::Arc;

/// Why a signature cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The signature names no dataset.
    #[error("signature has no datasets to plan")]
    NoDatasets,
    /// Two datasets share a name.
    #[error("dataset '{name}' appears more than once in the signature")]
    DuplicateDataset {
        /// The name.
        name: String,
    },
    /// The catalog's `columns` for a dataset is not a list of strings.
    #[error("catalog.datasets.{dataset}.columns must be a list of column names")]
    CatalogColumns {
        /// The dataset.
        dataset: String,
    },
    /// A column the plan needs is not among the dataset's catalog columns.
    #[error("{role} '{column}' of dataset '{dataset}' is not among its catalog columns")]
    MissingColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// What the column is used for (`merge key`, `PII column`, ...).
        role: String,
    },
    /// A key (join, merge, group-by or partition column) is a PII column that gets
    /// hashed, so the raw column no longer exists where the key is needed.
    #[error(
        "{role} '{column}' of dataset '{dataset}' is a PII column that is hashed before it is used; use a non-PII key"
    )]
    PiiKey {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// What the column is used for.
        role: String,
    },
    /// Hashing a PII column would produce a name the dataset already has.
    #[error(
        "PII column '{column}' of dataset '{dataset}' is hashed into '{column}_hash', which is already a column"
    )]
    HashedNameCollision {
        /// The dataset.
        dataset: String,
        /// The PII column.
        column: String,
    },
    /// A merge write of an aggregate needs group-by columns to merge on.
    #[error(
        "an aggregate written with merge needs group-by columns (constraints.partition_by is empty)"
    )]
    AggregateWithoutGroupBy,
    /// No key both datasets really have joins dataset `dataset` to the earlier ones.
    #[error(
        "no join key for dataset '{dataset}': none of its merge keys ({keys}) is a merge key or catalog column of {earlier}, and no merge key of those is a catalog column of '{dataset}'. List the datasets' columns in the catalog (catalog.datasets.<name>.columns) or declare the key explicitly, e.g. catalog.datasets.{dataset}.join_keys: {{\"{first}\": [\"<column present in both>\"]}}"
    )]
    UngroundedJoin {
        /// The dataset that cannot be joined.
        dataset: String,
        /// Its declared merge keys, comma-separated (`none` without any).
        keys: String,
        /// The earlier datasets, quoted and comma-separated.
        earlier: String,
        /// The first earlier dataset (for the example).
        first: String,
    },
    /// A catalog `join_keys` entry is malformed or contradicts the other side's.
    #[error("catalog.datasets.{dataset}.join_keys: {message}")]
    CatalogJoinKeys {
        /// The dataset whose entry is wrong.
        dataset: String,
        /// What is wrong.
        message: String,
    },
    /// The built steps cannot be ordered (an internal invariant).
    #[error("{0}")]
    Order(#[from] CycleError),
}

/// The plan phase boundary (docs/architecture.md#phase-boundaries): the kernel holds a `dyn Planner`.
pub trait Planner: Send + Sync {
    /// Plans an approved signature; `catalog` supplies column lists (and extra PII).
    fn plan(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<ExecutionPlan, PlanError>;

    /// [`Planner::plan`] behind a shared handle: the same plan, for callers that only
    /// read it (the kernel). The default wraps [`Planner::plan`]; the built-in planner
    /// hands out its remembered plan without copying it.
    fn plan_shared(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<Arc<ExecutionPlan>, PlanError> {
        self.plan(signature, catalog).map(Arc::new)
    }
}

/// The built-in planner (rules in the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutionPlanner {
    /// Broadcast the small side when it is below this size (GB). Reference: 1.0.
    pub broadcast_small_gb: f64,
    /// ... and the large side is above this size (GB). Reference: 100.0.
    pub broadcast_large_gb: f64,
}

impl Default for ExecutionPlanner {
    fn default() -> Self {
        ExecutionPlanner {
            broadcast_small_gb: 1.0,
            broadcast_large_gb: 100.0,
        }
    }
}

impl Planner for ExecutionPlanner {
    /// Planning is pure, so the thread's last few plans are remembered and a signature
    /// planned again (another intent id, the same everything else) gets a copy of its
    /// plan with its own `intent_id` (key and bound in `crate::memo`); a refusal is
    /// planned every time.
    fn plan(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<ExecutionPlan, PlanError> {
        if !memo::eligible(signature) {
            return self.build(signature, catalog);
        }
        let thresholds = self.thresholds();
        if let Some(plan) = memo::lookup(thresholds, signature, catalog) {
            return Ok(plan);
        }
        let plan = self.build(signature, catalog)?;
        let shared = Arc::new(plan);
        memo::remember(thresholds, signature, catalog, &shared);
        Ok(Arc::unwrap_or_clone(shared))
    }

    /// [`Planner::plan`] with the remembered plan handed out itself (no copy of its
    /// steps): the caller's `intent_id` is written into it in place once the previous
    /// caller has dropped its handle (key, bound and sharing in `crate::memo`).
    fn plan_shared(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<Arc<ExecutionPlan>, PlanError> {
        if !memo::eligible(signature) {
            return self.build(signature, catalog).map(Arc::new);
        }
        let thresholds = self.thresholds();
        if let Some(plan) = memo::lookup_shared(thresholds, signature, catalog) {
            return Ok(plan);
        }
        let plan = Arc::new(self.build(signature, catalog)?);
        memo::remember(thresholds, signature, catalog, &plan);
        Ok(plan)
    }
}

impl ExecutionPlanner {
    /// The memo's key for the two thresholds (bit for bit).
    fn thresholds(&self) -> (u64, u64) {
        (
            self.broadcast_small_gb.to_bits(),
            self.broadcast_large_gb.to_bits(),
        )
    }

    /// [`Planner::plan`] without the memo: the plan built from scratch.
    pub fn plan_uncached(
        &self,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<ExecutionPlan, PlanError> {
        self.build(signature, catalog)
    }
}

fn catalog_columns(
    catalog: Option<&Catalog>,
    name: &str,
) -> Result<Option<Vec<String>>, PlanError> {
    let Some(entry) = catalog
        .and_then(|c| c.raw().get("datasets"))
        .and_then(|d| d.get(name))
    else {
        return Ok(None);
    };
    match entry.get("columns") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(PlanError::CatalogColumns {
                    dataset: name.to_owned(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(PlanError::CatalogColumns {
            dataset: name.to_owned(),
        }),
    }
}

fn push_unique(list: &mut Vec<String>, items: &[String]) {
    for i in items {
        if !list.contains(i) {
            list.push(i.clone());
        }
    }
}

fn require_column(d: &PlannedDataset, column: &str, role: &str) -> Result<(), PlanError> {
    if let Some(cols) = &d.columns
        && !cols.iter().any(|c| c == column)
    {
        return Err(PlanError::MissingColumn {
            dataset: d.name.clone(),
            column: column.to_owned(),
            role: role.to_owned(),
        });
    }
    if d.anonymized && d.pii_columns.iter().any(|p| p == column) {
        return Err(PlanError::PiiKey {
            dataset: d.name.clone(),
            column: column.to_owned(),
            role: role.to_owned(),
        });
    }
    Ok(())
}

fn plan_dataset(
    d: &DatasetRef,
    sig: &StateSignature,
    catalog: Option<&Catalog>,
) -> Result<PlannedDataset, PlanError> {
    let columns = catalog_columns(catalog, &d.name)?;
    let mut pii = d.pii_columns.clone();
    if let Some(entry) = catalog.and_then(|c| c.datasets.get(&d.name)) {
        push_unique(&mut pii, &entry.pii_columns);
    }
    let anonymized = sig.constraints.no_pii_raw && !pii.is_empty();
    let merge_keys = if d.merge_keys.is_empty() {
        vec!["id".to_owned()]
    } else {
        d.merge_keys.clone()
    };
    let part = &sig.constraints.partition_by;
    let wanted = match &d.partition_column {
        Some(p) if part.contains(p) => Some(p.clone()),
        _ => part.first().cloned(),
    };
    let filter_column = match (&wanted, &columns) {
        (Some(c), Some(cols)) if !cols.contains(c) => None,
        _ => wanted,
    };
    let output_columns = columns.as_ref().map(|cols| {
        cols.iter()
            .map(|c| {
                if anonymized && pii.contains(c) {
                    hashed_column_name(c)
                } else {
                    c.clone()
                }
            })
            .collect()
    });
    let planned = PlannedDataset {
        name: d.name.clone(),
        columns,
        pii_columns: pii,
        merge_keys,
        filter_column,
        anonymized,
        output_columns,
    };
    if anonymized {
        for p in &planned.pii_columns {
            if let Some(cols) = &planned.columns
                && !cols.contains(p)
            {
                return Err(PlanError::MissingColumn {
                    dataset: planned.name.clone(),
                    column: p.clone(),
                    role: "PII column".into(),
                });
            }
            if planned
                .columns
                .as_ref()
                // `hashed_column_name(p)` is among the columns, compared without building it.
                .is_some_and(|cols| {
                    cols.iter()
                        .any(|c| c.strip_suffix("_hash") == Some(p.as_str()))
                })
            {
                return Err(PlanError::HashedNameCollision {
                    dataset: planned.name.clone(),
                    column: p.clone(),
                });
            }
        }
    }
    if let Some(f) = &planned.filter_column {
        require_column(&planned, f, "partition column")?;
    }
    Ok(planned)
}

fn has_column(d: &PlannedDataset, column: &str) -> bool {
    d.output_columns
        .as_ref()
        .is_some_and(|cols| cols.iter().any(|c| c == column))
}

/// `datasets.<of>.join_keys.<other>` of the catalog: the declared join column.
fn declared_join_key(
    catalog: Option<&Catalog>,
    of: &str,
    other: &str,
) -> Result<Option<String>, PlanError> {
    let bad = |message: String| PlanError::CatalogJoinKeys {
        dataset: of.to_owned(),
        message,
    };
    let Some(keys) = catalog
        .and_then(|c| c.raw().get("datasets"))
        .and_then(|d| d.get(of))
        .and_then(|e| e.get("join_keys"))
    else {
        return Ok(None);
    };
    let map = match keys {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        _ => {
            return Err(bad(
                "must map other dataset names to a join column, e.g. {\"nfe\": [\"cliente_id\"]}"
                    .into(),
            ));
        }
    };
    let column = match map.get(other) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(c)) => c.clone(),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(c)] => c.clone(),
            [] => return Err(bad(format!("{other}: the list of join columns is empty"))),
            [_] => return Err(bad(format!("{other}: a join column must be a string"))),
            _ => {
                return Err(bad(format!(
                    "{other}: joins on more than one column are not supported; give one column"
                )));
            }
        },
        Some(_) => {
            return Err(bad(format!(
                "{other}: must be a column name or a list holding one column name"
            )));
        }
    };
    if column.trim().is_empty() {
        return Err(bad(format!("{other}: the join column is empty")));
    }
    Ok(Some(column))
}

/// The explicit join key between `a` and `b`, declared on either side (both sides
/// declaring different keys is an error).
fn explicit_join_key(
    catalog: Option<&Catalog>,
    a: &str,
    b: &str,
) -> Result<Option<String>, PlanError> {
    let ab = declared_join_key(catalog, a, b)?;
    let ba = declared_join_key(catalog, b, a)?;
    match (ab, ba) {
        (Some(x), Some(y)) if x != y => Err(PlanError::CatalogJoinKeys {
            dataset: b.to_owned(),
            message: format!(
                "{a}: '{y}' contradicts catalog.datasets.{a}.join_keys.{b} = '{x}'; declare one key"
            ),
        }),
        (Some(x), _) | (None, Some(x)) => Ok(Some(x)),
        (None, None) => Ok(None),
    }
}

/// The join-key rule of the module docs, for dataset `right` against `earlier`;
/// `declared` holds each dataset's merge keys as the signature gives them.
fn join_condition(
    earlier: &[PlannedDataset],
    right: &PlannedDataset,
    declared: &dyn Fn(&str) -> Vec<String>,
    catalog: Option<&Catalog>,
) -> Result<JoinCondition, PlanError> {
    let cond = |left: &PlannedDataset, k: &str| JoinCondition {
        left_dataset: left.name.clone(),
        left_column: k.to_owned(),
        right_dataset: right.name.clone(),
        right_column: k.to_owned(),
    };
    for j in earlier {
        if let Some(k) = explicit_join_key(catalog, &j.name, &right.name)? {
            return Ok(cond(j, &k));
        }
    }
    let right_keys = declared(&right.name);
    for k in &right_keys {
        if let Some(j) = earlier.iter().find(|j| declared(&j.name).contains(k)) {
            return Ok(cond(j, k));
        }
    }
    for k in &right_keys {
        if let Some(j) = earlier.iter().find(|j| has_column(j, k)) {
            return Ok(cond(j, k));
        }
    }
    for j in earlier {
        if let Some(k) = declared(&j.name).iter().find(|k| has_column(right, k)) {
            return Ok(cond(j, k));
        }
    }
    Err(PlanError::UngroundedJoin {
        dataset: right.name.clone(),
        keys: if right_keys.is_empty() {
            "none".to_owned()
        } else {
            right_keys.join(", ")
        },
        earlier: earlier
            .iter()
            .map(|d| format!("'{}'", d.name))
            .collect::<Vec<_>>()
            .join(", "),
        first: earlier.first().map(|d| d.name.clone()).unwrap_or_default(),
    })
}

/// `prefix` then `name`, e.g. `extract_nfe` (one allocation, no formatting).
fn step_id(prefix: &str, name: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + name.len());
    id.push_str(prefix);
    id.push_str(name);
    id
}

fn step(
    id: String,
    kind: StepKind,
    source: Option<&str>,
    config: StepConfig,
    depends_on: Vec<String>,
) -> PlanStep {
    PlanStep {
        id,
        kind,
        source: source.map(str::to_owned),
        target: None,
        config,
        depends_on,
    }
}

impl ExecutionPlanner {
    fn strategy(&self, datasets: &[DatasetRef]) -> JoinStrategy {
        if let [a, b] = datasets {
            let (x, y) = (a.size_gb_f64(), b.size_gb_f64());
            let (small, large) = if x <= y { (x, y) } else { (y, x) };
            if small < self.broadcast_small_gb && large > self.broadcast_large_gb {
                return JoinStrategy::Broadcast;
            }
        }
        JoinStrategy::SortMerge
    }

    fn build(
        &self,
        sig: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> Result<ExecutionPlan, PlanError> {
        if sig.datasets.is_empty() {
            return Err(PlanError::NoDatasets);
        }
        for (i, d) in sig.datasets.iter().enumerate() {
            if sig.datasets.iter().take(i).any(|e| e.name == d.name) {
                return Err(PlanError::DuplicateDataset {
                    name: d.name.clone(),
                });
            }
        }
        let datasets = sig
            .datasets
            .iter()
            .map(|d| plan_dataset(d, sig, catalog))
            .collect::<Result<Vec<_>, _>>()?;

        let mut steps = Vec::new();
        let mut heads = Vec::with_capacity(datasets.len());
        for d in &datasets {
            let extract = step_id("extract_", &d.name);
            steps.push(step(
                extract.clone(),
                StepKind::Extract,
                Some(&d.name),
                StepConfig::Extract(ExtractConfig {
                    dataset: d.name.clone(),
                    columns: d.columns.clone(),
                }),
                vec![],
            ));
            let mut head = extract;
            if let Some(col) = &d.filter_column {
                let id = step_id("filter_", &d.name);
                steps.push(step(
                    id.clone(),
                    StepKind::Filter,
                    Some(&d.name),
                    StepConfig::Filter(FilterConfig {
                        column: col.clone(),
                        predicate: ">=".into(),
                        parameter: PARTITION_PARAMETER.into(),
                        required_by: "FINOPS".into(),
                    }),
                    vec![head],
                ));
                head = id;
            }
            if d.anonymized {
                let id = step_id("anonymize_", &d.name);
                steps.push(step(
                    id.clone(),
                    StepKind::Anonymize,
                    Some(&d.name),
                    StepConfig::Anonymize(AnonymizeConfig {
                        pii_columns: d.pii_columns.clone(),
                        strategy: "sha256".into(),
                    }),
                    vec![head],
                ));
                head = id;
            }
            heads.push(head);
        }

        let mut current_columns = datasets.first().and_then(|d| d.output_columns.clone());
        let mut last = heads.first().cloned().unwrap_or_default();
        if datasets.len() > 1 {
            let mut conditions = Vec::with_capacity(datasets.len() - 1);
            for i in 1..datasets.len() {
                let (earlier, rest) = datasets.split_at(i);
                let Some(right) = rest.first() else { break };
                let declared = |name: &str| {
                    sig.datasets
                        .iter()
                        .find(|d| d.name == name)
                        .map(|d| d.merge_keys.clone())
                        .unwrap_or_default()
                };
                let c = join_condition(earlier, right, &declared, catalog)?;
                if let Some(left) = earlier.iter().find(|d| d.name == c.left_dataset) {
                    require_column(left, &c.left_column, "join key")?;
                }
                require_column(right, &c.right_column, "join key")?;
                conditions.push(c);
                current_columns = match (current_columns, &right.output_columns) {
                    (Some(mut acc), Some(cols)) => {
                        push_unique(&mut acc, cols);
                        Some(acc)
                    }
                    _ => None,
                };
            }
            steps.push(step(
                "join_datasets".into(),
                StepKind::Join,
                None,
                StepConfig::Join(JoinConfig {
                    strategy: self.strategy(&sig.datasets),
                    datasets: datasets.iter().map(|d| d.name.clone()).collect(),
                    conditions,
                    output_columns: current_columns.clone(),
                }),
                heads.clone(),
            ));
            last = "join_datasets".into();
        }

        let part = &sig.constraints.partition_by;
        let protected_merge = sig.writes_to_protected_layer() && sig.constraints.merge_key_required;
        let write_mode = if protected_merge {
            WriteMode::Merge
        } else if !part.is_empty() {
            WriteMode::OverwritePartition
        } else {
            WriteMode::Append
        };
        let first = datasets.first().ok_or(PlanError::NoDatasets)?;
        let mut merge_keys = first.merge_keys.clone();
        if sig.intent.contains("aggregate") {
            if let Some(cols) = &current_columns {
                for g in part {
                    if !cols.contains(g) {
                        return Err(PlanError::MissingColumn {
                            dataset: first.name.clone(),
                            column: g.clone(),
                            role: "group-by column".into(),
                        });
                    }
                }
            }
            if part.is_empty() && write_mode == WriteMode::Merge {
                return Err(PlanError::AggregateWithoutGroupBy);
            }
            steps.push(step(
                "aggregate".into(),
                StepKind::Aggregate,
                None,
                StepConfig::Aggregate(AggregateConfig {
                    group_by: part.clone(),
                    count_column: AGGREGATE_COUNT_COLUMN.into(),
                }),
                vec![last],
            ));
            last = "aggregate".into();
            merge_keys = part.clone();
            let mut cols = part.clone();
            cols.push(AGGREGATE_COUNT_COLUMN.into());
            current_columns = Some(cols);
        } else {
            for k in &merge_keys {
                require_column(first, k, "merge key")?;
            }
        }

        let target = sig.target_dataset_name();
        steps.push(PlanStep {
            id: "load_target".into(),
            kind: StepKind::Load,
            source: None,
            target: Some(target.clone()),
            config: StepConfig::Load(LoadConfig {
                write_mode,
                merge_key: sig.constraints.merge_key_required,
                merge_keys,
                partition_by: part.clone(),
                columns: current_columns.clone(),
            }),
            depends_on: vec![last],
        });
        order_steps(&steps)?;

        let consistency_unit = if !part.is_empty() {
            ConsistencyUnit::Partition
        } else if datasets.len() > 2 {
            ConsistencyUnit::DagBranch
        } else {
            ConsistencyUnit::Dataset
        };
        Ok(ExecutionPlan {
            signature_hash: sig.signature_hash(),
            intent_id: sig.intent_id.clone(),
            target,
            consistency_unit,
            write_mode,
            idempotent: true,
            datasets,
            output_columns: current_columns,
            steps,
            metadata: PlanMetadata {
                domain: sig.domain.clone(),
                target_layer: sig.target_layer.as_str().into(),
            },
        })
    }
}
