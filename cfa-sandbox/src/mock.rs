//! The deterministic in-process `mock` sandbox (docs/compatibility.md#execution-outcomes metrics by default),
//! with configurable failures, null ratio, output schema and per-step cost/shuffle.

use crate::error::SandboxError;
use crate::metrics::{NullCounts, OutputSchema, StepMetrics};
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus, step_failed_fault};
use cfa_plan::PlanStep;
use cfa_types::Fault;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per-step overrides of the mock's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepOverride {
    /// Rows.
    pub rows: Option<u64>,
    /// Shuffle, MB.
    pub shuffle_mb: Option<f64>,
    /// Cost, DBU.
    pub cost_dbu: Option<f64>,
    /// Null ratio of every output column.
    pub null_ratio: Option<f64>,
}

/// Configuration of [`MockSandbox`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MockConfig {
    /// Rows per step (100000).
    pub default_rows: u64,
    /// Shuffle per step, MB (50).
    pub default_shuffle_mb: f64,
    /// Cost of the whole plan, DBU, split evenly over its steps (5.0).
    pub default_cost_dbu: f64,
    /// Duration per step, seconds (2.5).
    pub duration_seconds: f64,
    /// Steps that fail, with how many attempts fail (`u32::MAX`: every attempt).
    pub fail_steps: BTreeMap<String, u32>,
    /// Null ratio of every output column (0.01).
    pub null_ratio: f64,
    /// Output schema; `None` uses the plan's output columns, else the reference's
    /// `["nfe_id", "cpf_hash", "processing_date"]`.
    pub output_schema: Option<Vec<String>>,
    /// Per-step overrides.
    pub step_overrides: BTreeMap<String, StepOverride>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            default_rows: 100_000,
            default_shuffle_mb: 50.0,
            default_cost_dbu: 5.0,
            duration_seconds: 2.5,
            fail_steps: BTreeMap::new(),
            null_ratio: 0.01,
            output_schema: None,
            step_overrides: BTreeMap::new(),
        }
    }
}

impl MockConfig {
    /// `step` fails on every attempt.
    #[must_use]
    pub fn fail_always(mut self, step: &str) -> Self {
        self.fail_steps.insert(step.to_owned(), u32::MAX);
        self
    }

    /// `step` fails on its first `attempts` attempts, then succeeds.
    #[must_use]
    pub fn fail_first(mut self, step: &str, attempts: u32) -> Self {
        self.fail_steps.insert(step.to_owned(), attempts);
        self
    }
}

/// The mock sandbox.
#[derive(Debug, Clone, Default)]
pub struct MockSandbox {
    /// Its configuration.
    pub config: MockConfig,
}

impl MockSandbox {
    /// A mock with `config`.
    pub fn new(config: MockConfig) -> Self {
        MockSandbox { config }
    }
}

/// The reference mock's fixed output schema.
const REFERENCE_SCHEMA: [&str; 3] = ["nfe_id", "cpf_hash", "processing_date"];

struct MockRun<'a> {
    config: &'a MockConfig,
    /// The run's output columns, shared by every step's metrics.
    schema: OutputSchema,
    /// The last null count given to every column and its map, shared by the steps
    /// that count as many nulls (all of them without per-step overrides), and by the
    /// thread's next run with the same columns ([`shared_columns`]).
    nulls: Option<(u64, NullCounts)>,
    step_count: usize,
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn nulls(rows: u64, ratio: f64) -> u64 {
    let n = (rows as f64 * ratio.clamp(0.0, 1.0)).floor();
    n as u64
}

/// A run's output columns and the null counts its steps last shared (see
/// [`MockRun::nulls`]).
type Shared = (OutputSchema, Option<(u64, NullCounts)>);

/// Output columns [`LAST`] remembers per thread.
const RECENT: usize = 4;

thread_local! {
    /// The thread's last [`RECENT`] output columns (each with the null counts its last
    /// run shared), replaced round robin, and the slot the next one takes: a run with
    /// the same columns (compared in full) shares them, so that repeated runs of a
    /// few plans do not copy the columns and the counts again. On the heap, so the
    /// thread local stays a few words.
    static LAST: std::cell::RefCell<(Vec<Shared>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// The output columns `columns` (the mock's fixed schema when `None`), shared with the
/// thread's last run that had the same, with that run's null counts.
fn shared_columns(columns: Option<&[String]>) -> Shared {
    let same = |known: &[String]| match columns {
        Some(cols) => known == cols,
        None => known.iter().map(String::as_str).eq(REFERENCE_SCHEMA),
    };
    let reused = LAST
        .try_with(|last| {
            last.try_borrow()
                .ok()
                .and_then(|l| l.0.iter().find(|(known, _)| same(known)).cloned())
        })
        .ok()
        .flatten();
    reused.unwrap_or_else(|| {
        let schema: OutputSchema = match columns {
            Some(cols) => Arc::from(cols),
            None => REFERENCE_SCHEMA.iter().map(|s| (*s).to_owned()).collect(),
        };
        let _ = LAST.try_with(|last| {
            if let Ok(mut l) = last.try_borrow_mut() {
                let (entries, next) = &mut *l;
                let entry = (Arc::clone(&schema), None);
                if entries.len() < RECENT {
                    entries.push(entry);
                } else {
                    if let Some(slot) = entries.get_mut(*next) {
                        *slot = entry;
                    }
                    *next = (*next + 1) % RECENT;
                }
            }
        });
        (schema, None)
    })
}

/// Makes `nulls` the null counts remembered with `schema` (when it is one of
/// [`LAST`]'s).
fn remember(schema: &OutputSchema, nulls: Option<&(u64, NullCounts)>) {
    let _ = LAST.try_with(|last| {
        if let Ok(mut l) = last.try_borrow_mut()
            && let Some(entry) = l.0.iter_mut().find(|(known, _)| Arc::ptr_eq(known, schema))
        {
            entry.1 = nulls.cloned();
        }
    });
}

impl MockRun<'_> {
    /// Every output column with `n` nulls: the map of the previous step (or run) when
    /// it counted as many.
    fn null_counts(&mut self, n: u64) -> NullCounts {
        if let Some((last, counts)) = &self.nulls
            && *last == n
        {
            return Arc::clone(counts);
        }
        let counts: NullCounts = Arc::new(self.schema.iter().map(|c| (c.clone(), n)).collect());
        self.nulls = Some((n, Arc::clone(&counts)));
        remember(&self.schema, self.nulls.as_ref());
        counts
    }
}

impl SandboxRun for MockRun<'_> {
    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult {
        let c = self.config;
        if let Some(fails) = c.fail_steps.get(&step.id)
            && attempt <= *fails
        {
            {
                return StepResult::failed(
                    &step.id,
                    StepStatus::Failed,
                    step_failed_fault(&step.id, &format!("mock failure on attempt {attempt}")),
                    attempt,
                );
            }
        }
        // Borrowed, not cloned: most steps have no override.
        let o = c.step_overrides.get(&step.id);
        let rows = o.and_then(|o| o.rows).unwrap_or(c.default_rows);
        #[allow(clippy::cast_precision_loss)]
        let per_step = c.default_cost_dbu / self.step_count.max(1) as f64;
        let ratio = o.and_then(|o| o.null_ratio).unwrap_or(c.null_ratio);
        // Every column gets the same count.
        let n = nulls(rows, ratio);
        let metrics = StepMetrics {
            rows_output: rows,
            shuffle_mb: o.and_then(|o| o.shuffle_mb).unwrap_or(c.default_shuffle_mb),
            duration_seconds: c.duration_seconds,
            cost_dbu: o.and_then(|o| o.cost_dbu).unwrap_or(per_step),
            null_counts: self.null_counts(n),
            output_schema: Arc::clone(&self.schema),
        };
        StepResult::succeeded(&step.id, metrics, attempt)
    }

    fn commit(self: Box<Self>) -> Result<(), SandboxError> {
        Ok(())
    }

    fn rollback(self: Box<Self>) -> Result<(), SandboxError> {
        Ok(())
    }
}

impl Sandbox for MockSandbox {
    fn name(&self) -> &str {
        "mock"
    }

    fn check_environment(&self) -> Vec<Fault> {
        Vec::new()
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        let (schema, nulls) = shared_columns(
            self.config
                .output_schema
                .as_deref()
                .or(ctx.plan.output_columns.as_deref()),
        );
        Ok(Box::new(MockRun {
            config: &self.config,
            schema,
            nulls,
            step_count: ctx.plan.steps.len(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(n: usize) -> Vec<String> {
        (0..=n).map(|i| format!("c{n}_{i}")).collect()
    }

    #[test]
    fn shared_columns_are_the_runs_own_with_their_own_counts() {
        // More column lists than the thread keeps, twice over: every run gets its own
        // columns, and only the counts remembered with those columns.
        for round in 0..2u64 {
            for n in 0..RECENT * 2 {
                let cols = columns(n);
                let (schema, nulls) = shared_columns(Some(&cols));
                assert_eq!(&*schema, cols.as_slice());
                // New, or pushed out by the lists after it: no counts of another
                // run's columns.
                assert!(nulls.is_none());
                let counts: NullCounts = Arc::new(
                    cols.iter()
                        .map(|c| (c.clone(), round * 100 + n as u64))
                        .collect(),
                );
                remember(&schema, Some(&(round * 100 + n as u64, counts)));
                // The next run with the same columns shares them and these counts.
                let (again, nulls) = shared_columns(Some(&cols));
                assert!(Arc::ptr_eq(&again, &schema));
                assert_eq!(nulls.map(|(c, _)| c), Some(round * 100 + n as u64));
            }
        }
        let (schema, _) = shared_columns(None);
        assert!(schema.iter().map(String::as_str).eq(REFERENCE_SCHEMA));
        let (again, _) = shared_columns(None);
        assert!(Arc::ptr_eq(&again, &schema));
        // A list equal to the fixed schema is the fixed schema.
        let fixed: Vec<String> = REFERENCE_SCHEMA.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(&*shared_columns(Some(&fixed)).0, fixed.as_slice());
    }
}
