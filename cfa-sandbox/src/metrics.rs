//! Per-step metrics and their correct aggregation (docs/differences.md#b9-runtime-metrics-aggregate-correctly): output rows, output
//! schema and null counts come from the step that writes the target (the load step);
//! cost, duration and shuffle add up over every executed step.
//!
//! A run's steps and its aggregate share one copy of the output columns and of the null
//! counts (`Arc`): a sandbox builds them once per run, not once per step, and the
//! aggregate takes the load step's by reference count
//! (docs/development.md, "Issue #13/#15 speed, fourth round"). They serialise as the
//! plain list and map they hold.

use crate::sandbox::{StepResult, StepStatus};
use cfa_plan::{ExecutionPlan, StepKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Nulls per output column, shared by the steps and the aggregate of one run.
pub type NullCounts = Arc<BTreeMap<String, u64>>;

/// Output columns, in order, shared by the steps and the aggregate of one run.
pub type OutputSchema = Arc<[String]>;

fn serialize_shared<T: Serialize + ?Sized, S: Serializer>(
    v: &Arc<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    (**v).serialize(s)
}

fn deserialize_null_counts<'de, D: Deserializer<'de>>(d: D) -> Result<NullCounts, D::Error> {
    BTreeMap::deserialize(d).map(Arc::new)
}

fn deserialize_output_schema<'de, D: Deserializer<'de>>(d: D) -> Result<OutputSchema, D::Error> {
    Vec::<String>::deserialize(d).map(Arc::from)
}

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
    #[serde(
        serialize_with = "serialize_shared",
        deserialize_with = "deserialize_null_counts"
    )]
    pub null_counts: NullCounts,
    /// Output columns, in order.
    #[serde(
        serialize_with = "serialize_shared",
        deserialize_with = "deserialize_output_schema"
    )]
    pub output_schema: OutputSchema,
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
    #[serde(
        serialize_with = "serialize_shared",
        deserialize_with = "deserialize_null_counts"
    )]
    pub null_counts: NullCounts,
    /// Columns of the target (from the load step).
    #[serde(
        serialize_with = "serialize_shared",
        deserialize_with = "deserialize_output_schema"
    )]
    pub output_schema: OutputSchema,
}

impl AggregateMetrics {
    /// The reference's `metrics_snapshot` shape: the serialised struct, built directly
    /// (every executed run writes it to its `execution_completed` event).
    pub fn snapshot(&self) -> serde_json::Value {
        use crate::outcome::{filled, keyed};
        use serde_json::{Map, Value};
        static KEYS: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            keyed(
                6,
                &[
                    "rows_output",
                    "shuffle_mb",
                    "cost_dbu",
                    "duration_seconds",
                    "null_counts",
                    "output_schema",
                ],
            )
        });
        let nulls = null_counts_value(&self.null_counts);
        Value::Object(filled(
            keys,
            [
                Value::from(self.rows_output),
                Value::from(self.shuffle_mb),
                Value::from(self.cost_dbu),
                Value::from(self.duration_seconds),
                Value::Object(nulls),
                Value::Array(
                    self.output_schema
                        .iter()
                        .map(|c| Value::from(c.as_str()))
                        .collect(),
                ),
            ],
        ))
    }
}

/// Null counts with their JSON object, as [`null_counts_value`] remembers them.
type CountsValue = (NullCounts, serde_json::Map<String, serde_json::Value>);

/// Null-count maps [`null_counts_value`] remembers per thread.
const RECENT_COUNTS: usize = 4;

/// Maps of more columns than this are written afresh every time (the memo's bound).
const MAX_REMEMBERED_COLUMNS: usize = 64;

thread_local! {
    /// The last [`RECENT_COUNTS`] null-count maps [`null_counts_value`] wrote on this
    /// thread (each of at most [`MAX_REMEMBERED_COLUMNS`] columns) and their objects,
    /// replaced round robin, and the slot the next one takes; on the heap, so that the
    /// thread local stays a few words.
    static COUNTS: std::cell::RefCell<(Vec<CountsValue>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// The `null_counts` object of [`AggregateMetrics::snapshot`]: a copy of the one
/// written for a recent map with the same counts (the same shared map, as the steps
/// of repeated runs of a plan hand over, or equal ones), which keeps its keys' hashes.
fn null_counts_value(counts: &NullCounts) -> serde_json::Map<String, serde_json::Value> {
    let write = || {
        counts
            .iter()
            .map(|(col, n)| (col.clone(), serde_json::Value::from(*n)))
            .collect()
    };
    if counts.len() > MAX_REMEMBERED_COLUMNS {
        return write();
    }
    COUNTS
        .try_with(|cell| {
            let Ok(mut recent) = cell.try_borrow_mut() else {
                return write();
            };
            let (entries, next) = &mut *recent;
            if let Some((_, object)) = entries
                .iter()
                .find(|(known, _)| Arc::ptr_eq(known, counts) || **known == **counts)
            {
                return object.clone();
            }
            let object: serde_json::Map<String, serde_json::Value> = write();
            let entry = (Arc::clone(counts), object.clone());
            if entries.len() < RECENT_COUNTS {
                entries.push(entry);
            } else {
                if let Some(slot) = entries.get_mut(*next) {
                    *slot = entry;
                }
                *next = (*next + 1) % RECENT_COUNTS;
            }
            object
        })
        .unwrap_or_else(|_| write())
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
            m.null_counts = Arc::clone(&r.metrics.null_counts);
            m.output_schema = Arc::clone(&r.metrics.output_schema);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialised(m: &AggregateMetrics) -> serde_json::Value {
        serde_json::to_value(m).unwrap_or(serde_json::Value::Null)
    }

    #[test]
    fn snapshot_is_the_serialised_struct() {
        let mut m = AggregateMetrics {
            rows_output: 1000,
            shuffle_mb: 12.5,
            cost_dbu: 1.0 / 3.0,
            duration_seconds: 4.0,
            null_counts: Arc::new(BTreeMap::from([("b".to_owned(), 3), ("a".to_owned(), 0)])),
            output_schema: Arc::from(["nfe_id".to_owned(), "cpf_hash".to_owned()]),
        };
        assert_eq!(m.snapshot(), serialised(&m));
        assert_eq!(
            serde_json::to_string(&m.snapshot()).ok(),
            serde_json::to_string(&serialised(&m)).ok()
        );
        // Non-finite floats become null either way; the default is empty.
        m.cost_dbu = f64::NAN;
        m.shuffle_mb = f64::INFINITY;
        assert_eq!(m.snapshot(), serialised(&m));
        let d = AggregateMetrics::default();
        assert_eq!(d.snapshot(), serialised(&d));
    }

    #[test]
    fn remembered_null_counts_are_the_counts_own() {
        let counts = |pairs: &[(&str, u64)]| -> NullCounts {
            Arc::new(pairs.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect())
        };
        let mut m = AggregateMetrics {
            null_counts: counts(&[("b", 3), ("a", 0)]),
            ..AggregateMetrics::default()
        };
        // The same shared map twice (a hit), an equal one, then more maps than the
        // memo keeps, twice over: every snapshot is the serialised struct.
        assert_eq!(m.snapshot(), serialised(&m));
        assert_eq!(m.snapshot(), serialised(&m));
        m.null_counts = counts(&[("b", 3), ("a", 0)]);
        assert_eq!(m.snapshot(), serialised(&m));
        for _ in 0..2 {
            for n in 0..u64::try_from(RECENT_COUNTS * 2).unwrap_or(8) {
                m.null_counts = counts(&[("b", n), ("a", n + 1), ("c", 0)]);
                assert_eq!(m.snapshot(), serialised(&m));
                assert_eq!(m.snapshot()["null_counts"]["b"], n);
            }
        }
        // Above the bound: written afresh, the same object.
        let many: Vec<(String, u64)> = (0..=MAX_REMEMBERED_COLUMNS)
            .map(|i| (format!("c{i}"), 1))
            .collect();
        m.null_counts = Arc::new(many.into_iter().collect());
        assert_eq!(m.snapshot(), serialised(&m));
    }

    /// The shape the metrics had before the columns and counts were shared.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct OwnedStepMetrics {
        rows_output: u64,
        shuffle_mb: f64,
        duration_seconds: f64,
        cost_dbu: f64,
        null_counts: BTreeMap<String, u64>,
        output_schema: Vec<String>,
    }

    #[test]
    fn shared_columns_serialise_as_the_owned_list_and_map() {
        let owned = OwnedStepMetrics {
            rows_output: 7,
            shuffle_mb: 1.5,
            duration_seconds: 2.5,
            cost_dbu: 0.25,
            null_counts: BTreeMap::from([("z".to_owned(), 1), ("a".to_owned(), 2)]),
            output_schema: vec!["z".to_owned(), "a".to_owned()],
        };
        let shared = StepMetrics {
            rows_output: 7,
            shuffle_mb: 1.5,
            duration_seconds: 2.5,
            cost_dbu: 0.25,
            null_counts: Arc::new(owned.null_counts.clone()),
            output_schema: Arc::from(owned.output_schema.clone()),
        };
        let text = serde_json::to_string(&shared).unwrap();
        assert_eq!(text, serde_json::to_string(&owned).unwrap());
        let back: StepMetrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back, shared);
        let back_owned: OwnedStepMetrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back_owned, owned);
    }
}
