//! The ten built-in conditions (docs/compatibility.md#conditions, docs/differences.md#b7-bundle-semantics), compiled to an enum
//! so that evaluating them needs no allocation and no dynamic dispatch, and the fix
//! each one declares (docs/differences.md#b5-fixes-are-structured-patches-owned-by-conditions).

use crate::condition::{
    DEFAULT_MAX_SHUFFLE_GB, DEFAULT_MIN_SIZE_GB, EvalContext, RuleParams, Verdict,
};
use cfa_types::validate::{py_is_space, py_strip};
use cfa_types::{
    DatasetClassification, DatasetRef, Fix, Patch, PatchOp, PatchValue, SharedStr, TargetLayer,
};
use serde_json::Value;
use std::borrow::Cow;

/// The registered built-in condition names, sorted.
pub const BUILTIN_NAMES: [&str; 10] = [
    "cost_budget_exceeded",
    "enforce_types_disabled",
    "missing_merge_key",
    "missing_partition",
    "pii_in_protected_layer",
    "pii_without_policy",
    "schema_mismatch",
    "sensitive_without_partition",
    "shuffle_budget_exceeded",
    "unauthorized_gold_write",
];

/// A compiled built-in condition with its parameters resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BuiltinCondition {
    /// Protected layer, PII, and `no_pii_raw` off.
    PiiInProtectedLayer,
    /// PII and `no_pii_raw` off, any layer.
    PiiWithoutPolicy,
    /// No `partition_by`, and a dataset that is high-volume, sensitive, or at least `min_size_gb`.
    MissingPartition {
        /// Size threshold (`>=`).
        min_size_gb: f64,
    },
    /// No `partition_by` and a high-volume dataset (the default ruleset's rule 3 only).
    HighVolumeWithoutPartition,
    /// No `partition_by` and a sensitive dataset.
    SensitiveWithoutPartition,
    /// Protected layer and `merge_key_required` off.
    MissingMergeKey,
    /// Protected layer and `enforce_types` off.
    EnforceTypesDisabled,
    /// The reference's cost rule (see [`BuiltinCondition::check`]).
    CostBudgetExceeded {
        /// Budget in DBU; 0 means "the ceiling must be positive".
        max_dbu: f64,
    },
    /// A dataset's metadata disagrees with the catalog, or no catalog was given.
    SchemaMismatch,
    /// Two or more datasets, no `partition_by`, total size above `max_shuffle_gb`.
    ShuffleBudgetExceeded {
        /// Largest allowed shuffle in GB.
        max_shuffle_gb: f64,
    },
    /// A gold write without `constraints.custom.approval_id`.
    UnauthorizedGoldWrite,
}

impl BuiltinCondition {
    /// Compiles the built-in named `name` with `params`; `None` for other names.
    pub fn build(name: &str, params: &RuleParams) -> Option<Self> {
        Some(match name {
            "pii_in_protected_layer" => Self::PiiInProtectedLayer,
            "pii_without_policy" => Self::PiiWithoutPolicy,
            "missing_partition" => Self::MissingPartition {
                min_size_gb: params.min_size_gb.unwrap_or(DEFAULT_MIN_SIZE_GB),
            },
            "sensitive_without_partition" => Self::SensitiveWithoutPartition,
            "missing_merge_key" => Self::MissingMergeKey,
            "enforce_types_disabled" => Self::EnforceTypesDisabled,
            "cost_budget_exceeded" => Self::CostBudgetExceeded {
                max_dbu: params.max_dbu.unwrap_or(0.0),
            },
            "schema_mismatch" => Self::SchemaMismatch,
            "shuffle_budget_exceeded" => Self::ShuffleBudgetExceeded {
                max_shuffle_gb: params.max_shuffle_gb.unwrap_or(DEFAULT_MAX_SHUFFLE_GB),
            },
            "unauthorized_gold_write" => Self::UnauthorizedGoldWrite,
            _ => return None,
        })
    }

    /// The condition's name as written in bundles.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::PiiInProtectedLayer => "pii_in_protected_layer",
            Self::PiiWithoutPolicy => "pii_without_policy",
            Self::MissingPartition { .. } => "missing_partition",
            Self::HighVolumeWithoutPartition => "high_volume_without_partition",
            Self::SensitiveWithoutPartition => "sensitive_without_partition",
            Self::MissingMergeKey => "missing_merge_key",
            Self::EnforceTypesDisabled => "enforce_types_disabled",
            Self::CostBudgetExceeded { .. } => "cost_budget_exceeded",
            Self::SchemaMismatch => "schema_mismatch",
            Self::ShuffleBudgetExceeded { .. } => "shuffle_budget_exceeded",
            Self::UnauthorizedGoldWrite => "unauthorized_gold_write",
        }
    }

    /// Whether the condition holds. Allocates only to explain a `schema_mismatch`.
    pub fn check(&self, ctx: &EvalContext<'_>) -> Verdict {
        match self.fires(ctx) {
            Some(true) => Verdict::Fire,
            Some(false) => Verdict::Pass,
            None => schema_mismatch(ctx),
        }
    }

    /// [`BuiltinCondition::check`] as a flag, for every condition but `schema_mismatch`
    /// (`None`: its verdict may carry a note). Small enough to inline into the engine's
    /// loop, so a rule costs no call and no verdict written through memory; the rare,
    /// longer tests are out of line (docs/architecture.md#the-decision-path).
    #[inline]
    pub(crate) fn fires(&self, ctx: &EvalContext<'_>) -> Option<bool> {
        let sig = ctx.signature;
        let c = &sig.constraints;
        Some(match *self {
            Self::PiiInProtectedLayer => {
                sig.target_layer.is_protected() && !c.no_pii_raw && sig.contains_pii()
            }
            Self::PiiWithoutPolicy => !c.no_pii_raw && sig.contains_pii(),
            Self::MissingPartition { min_size_gb } => {
                c.partition_by.is_empty()
                    && sig.datasets.iter().any(|d| needs_partition(d, min_size_gb))
            }
            Self::HighVolumeWithoutPartition => {
                c.partition_by.is_empty()
                    && sig
                        .datasets
                        .iter()
                        .any(|d| d.classification == DatasetClassification::HighVolume)
            }
            Self::SensitiveWithoutPartition => {
                c.partition_by.is_empty()
                    && sig
                        .datasets
                        .iter()
                        .any(|d| d.classification == DatasetClassification::Sensitive)
            }
            Self::MissingMergeKey => sig.target_layer.is_protected() && !c.merge_key_required,
            Self::EnforceTypesDisabled => sig.target_layer.is_protected() && !c.enforce_types,
            Self::CostBudgetExceeded { max_dbu } => cost_exceeded(c.max_cost_dbu_f64(), max_dbu),
            Self::SchemaMismatch => return None,
            Self::ShuffleBudgetExceeded { max_shuffle_gb } => {
                sig.datasets.len() >= 2
                    && c.partition_by.is_empty()
                    && shuffle_exceeded(sig, max_shuffle_gb)
            }
            Self::UnauthorizedGoldWrite => {
                sig.target_layer == TargetLayer::Gold && !has_approval(sig)
            }
        })
    }

    /// For the conditions fixed by setting one boolean constraint to `true`: a bit
    /// naming that constraint (distinct per path) and its path. Two such fixes are equal
    /// exactly when their bits are, so the engine de-duplicates them with a mask.
    pub(crate) const fn flag_patch(&self) -> Option<(u8, &'static str)> {
        match self {
            Self::PiiInProtectedLayer | Self::PiiWithoutPolicy => {
                Some((1, "constraints.no_pii_raw"))
            }
            Self::MissingMergeKey => Some((2, "constraints.merge_key_required")),
            Self::EnforceTypesDisabled => Some((4, "constraints.enforce_types")),
            _ => None,
        }
    }

    /// The fix that makes the condition stop holding for `ctx`.
    pub fn fix(&self, ctx: &EvalContext<'_>) -> Fix {
        let mut patches = Vec::new();
        match self.fix_into(ctx, &mut patches) {
            Some(reason) => Fix::Manual { reason },
            None => Fix::Patches { patches },
        }
    }

    /// [`BuiltinCondition::fix`] without the intermediate list: adds the fix's patch
    /// to `patches` unless an equal one is there already, or returns the reason when
    /// the fix is manual. Allocates nothing for the boolean patches, and nothing when
    /// the partition patch is already in `patches` (docs/architecture.md#the-decision-path).
    pub(crate) fn fix_into(
        &self,
        ctx: &EvalContext<'_>,
        patches: &mut Vec<Patch>,
    ) -> Option<String> {
        let sig = ctx.signature;
        if let Some((_, path)) = self.flag_patch() {
            push_unique(patches, set_true(path));
            return None;
        }
        match *self {
            Self::PiiInProtectedLayer
            | Self::PiiWithoutPolicy
            | Self::MissingMergeKey
            | Self::EnforceTypesDisabled => None,
            Self::MissingPartition { min_size_gb } => {
                partition_fix(ctx, patches, |d| needs_partition(d, min_size_gb))
            }
            Self::HighVolumeWithoutPartition => partition_fix(ctx, patches, |d| {
                d.classification == DatasetClassification::HighVolume
            }),
            Self::SensitiveWithoutPartition => partition_fix(ctx, patches, |d| {
                d.classification == DatasetClassification::Sensitive
            }),
            Self::ShuffleBudgetExceeded { .. } => partition_fix(ctx, patches, |_| true),
            Self::CostBudgetExceeded { max_dbu } => Some(if max_dbu > 0.0 {
                format!(
                    "the declared ceiling constraints.max_cost_dbu is above the budget of {} DBU; lower it or obtain a budget exception",
                    cfa_types::canonical::py_float_repr(max_dbu)
                )
            } else {
                "constraints.max_cost_dbu must be a positive ceiling; declare the cost the job may spend".into()
            }),
            Self::SchemaMismatch => Some(match ctx.catalog {
                None => "no catalog was given; evaluate with the dataset catalog so the metadata can be checked".into(),
                Some(_) => {
                    "make the datasets' classification, pii_columns and partition_column match the catalog (or update the catalog)".into()
                }
            }),
            Self::UnauthorizedGoldWrite => Some(format!(
                "a write to gold needs an approval; obtain one and set constraints.custom.approval_id (intent '{}')",
                sig.intent
            )),
        }
    }
}

/// The path of the partition patch.
const PARTITION_BY: &str = "constraints.partition_by";

/// Adds `p` unless an equal patch is in `patches` already (the engine's de-duplication).
pub(crate) fn push_unique(patches: &mut Vec<Patch>, p: Patch) {
    if !patches.contains(&p) {
        patches.push(p);
    }
}

fn needs_partition(d: &DatasetRef, min_size_gb: f64) -> bool {
    matches!(
        d.classification,
        DatasetClassification::HighVolume | DatasetClassification::Sensitive
    ) || d.size_gb_f64() >= min_size_gb
}

/// The reference's rule exactly: with a positive budget, fire above it; otherwise
/// fire when the declared ceiling is zero or negative. A null ceiling never fires.
fn cost_exceeded(max_cost_dbu: Option<f64>, max_dbu: f64) -> bool {
    match max_cost_dbu {
        None => false,
        Some(cost) if max_dbu > 0.0 => cost > max_dbu,
        Some(cost) => cost <= 0.0,
    }
}

/// The shuffle test of `shuffle_budget_exceeded`: the datasets' total size above the budget.
#[inline(never)]
fn shuffle_exceeded(sig: &cfa_types::StateSignature, max_shuffle_gb: f64) -> bool {
    sig.datasets
        .iter()
        .map(DatasetRef::size_gb_f64)
        .sum::<f64>()
        > max_shuffle_gb
}

/// Whether `constraints.custom.approval_id` is a non-blank string.
#[inline(never)]
fn has_approval(sig: &cfa_types::StateSignature) -> bool {
    sig.constraints
        .custom
        .get("approval_id")
        .and_then(Value::as_str)
        .is_some_and(|s| !py_strip(s).is_empty())
}

pub(crate) fn set_true(path: &'static str) -> Patch {
    Patch {
        op: PatchOp::Set,
        path: SharedStr::from_static(path),
        value: PatchValue::from(Value::Bool(true)),
    }
}

/// `s` unless it is empty after Python `str.strip()` (asked without trimming: a
/// string is blank when every character is whitespace).
fn non_blank(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str)
        .filter(|s| !s.chars().all(py_is_space))
}

/// The dataset's partition column: the catalog's when the catalog knows one,
/// otherwise the one the signature carries.
fn partition_column<'a>(ctx: &EvalContext<'a>, d: &'a DatasetRef) -> Option<&'a str> {
    ctx.catalog
        .and_then(|cat| cat.datasets.get(&d.name))
        .and_then(|e| non_blank(e.partition_column.as_ref()))
        .or_else(|| non_blank(d.partition_column.as_ref()))
}

/// Up to this many partition columns are gathered on the stack (see [`Columns`]).
const INLINE_COLUMNS: usize = 8;

/// The partition columns of the datasets that trigger a partition condition: the
/// first [`INLINE_COLUMNS`] in an array, more on the heap, so a fix over a handful of
/// datasets asks each for its column once and allocates nothing to gather them.
struct Columns<'a> {
    inline: [&'a str; INLINE_COLUMNS],
    len: usize,
    heap: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    /// No columns yet.
    const fn new() -> Self {
        Columns {
            inline: [""; INLINE_COLUMNS],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// Adds `items`. Filled in place rather than returned, so the inline array is
    /// not copied (docs/architecture.md#the-decision-path).
    fn gather(&mut self, items: impl Iterator<Item = &'a str>) {
        for item in items {
            match self.inline.get_mut(self.len) {
                Some(slot) if self.heap.is_empty() => {
                    *slot = item;
                    self.len += 1;
                }
                _ => {
                    if self.heap.is_empty() {
                        self.heap
                            .extend_from_slice(self.inline.get(..self.len).unwrap_or_default());
                    }
                    self.heap.push(item);
                }
            }
        }
    }

    /// The columns sorted and de-duplicated in place.
    fn sorted_distinct(&mut self) -> &[&'a str] {
        let all: &mut [&'a str] = if self.heap.is_empty() {
            self.inline.get_mut(..self.len).unwrap_or_default()
        } else {
            &mut self.heap
        };
        if all.len() < 2 {
            // Sorted and distinct already (the common case: one triggering dataset).
            return all;
        }
        all.sort_unstable();
        let mut kept = 0usize;
        for i in 0..all.len() {
            let (Some(&c), prev) = (all.get(i), kept.checked_sub(1).and_then(|k| all.get(k)))
            else {
                continue;
            };
            if prev != Some(&c) {
                if let Some(slot) = all.get_mut(kept) {
                    *slot = c;
                }
                kept += 1;
            }
        }
        all.get(..kept).unwrap_or_default()
    }
}

/// Sets `constraints.partition_by` to the sorted, distinct partition columns of the
/// datasets that trigger the condition; manual when none of them has one.
fn partition_fix(
    ctx: &EvalContext<'_>,
    patches: &mut Vec<Patch>,
    triggers: impl Fn(&DatasetRef) -> bool,
) -> Option<String> {
    let triggering = || ctx.signature.datasets.iter().filter(|d| triggers(d));
    // The common case, every triggering dataset naming the same column (or just one
    // dataset), needs no list: its sorted, distinct columns are that one column.
    let mut columns = triggering().filter_map(|d| partition_column(ctx, d));
    let first = columns.next();
    let mut gathered: Columns<'_>;
    let single: [&str; 1];
    let cols: &[&str] = match first {
        None => &[],
        Some(first) => match columns.find(|c| *c != first) {
            None => {
                single = [first];
                &single
            }
            Some(other) => {
                gathered = Columns::new();
                gathered.gather([first, other].into_iter().chain(columns));
                gathered.sorted_distinct()
            }
        },
    };
    if cols.is_empty() {
        let mut without: Vec<&str> = triggering().map(|d| d.name.as_str()).collect();
        without.sort_unstable();
        without.dedup();
        return Some(match without.as_slice() {
            [] => "no dataset declares a partition_column; declare constraints.partition_by"
                .to_owned(),
            [one] => format!(
                "dataset {one} has no partition_column in the catalog; declare constraints.partition_by"
            ),
            many => format!(
                "datasets {} have no partition_column in the catalog; declare constraints.partition_by",
                many.join(", ")
            ),
        });
    }
    // The patch this fix would build is there already (another partition condition
    // fired on the same columns): nothing to build. Otherwise no patch equals the new
    // one (an equal one would have this path and these columns), so it is pushed as is.
    if patches
        .iter()
        .any(|p| p.path == PARTITION_BY && p.value.is_strings(cols))
    {
        return None;
    }
    patches.push(Patch {
        op: PatchOp::Set,
        path: SharedStr::from_static(PARTITION_BY),
        // One short column is held inline: no allocation.
        value: PatchValue::strings(cols),
    });
    None
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn show(col: Option<&String>) -> String {
    col.map_or_else(|| "null".to_owned(), |c| format!("'{c}'"))
}

fn schema_mismatch(ctx: &EvalContext<'_>) -> Verdict {
    let Some(catalog) = ctx.catalog else {
        return Verdict::FireWithNote(Cow::Borrowed(
            "no catalog was given, so the datasets' metadata could not be checked",
        ));
    };
    for d in &ctx.signature.datasets {
        let note = match catalog.datasets.get(&d.name) {
            None => format!("dataset '{}' is not in the catalog", d.name),
            Some(e) if e.classification != d.classification => format!(
                "dataset '{}' is classified '{}' in the signature but '{}' in the catalog",
                d.name, d.classification, e.classification
            ),
            Some(e) if !same_set(&e.pii_columns, &d.pii_columns) => format!(
                "dataset '{}' declares pii_columns that differ from the catalog",
                d.name
            ),
            Some(e) if e.partition_column != d.partition_column => format!(
                "dataset '{}' has partition_column {} in the signature but {} in the catalog",
                d.name,
                show(d.partition_column.as_ref()),
                show(e.partition_column.as_ref())
            ),
            Some(_) => continue,
        };
        return Verdict::FireWithNote(Cow::Owned(note));
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_columns_are_what_sort_and_dedup_give_on_the_stack_and_the_heap() {
        let names = [
            "d", "b", "d", "a", "c", "b", "e", "a", "f", "g", "h", "i", "a",
        ];
        for n in 0..=names.len() {
            let input = &names[..n];
            let mut want: Vec<&str> = input.to_vec();
            want.sort_unstable();
            want.dedup();
            let mut got = Columns::new();
            got.gather(input.iter().copied());
            assert_eq!(got.heap.is_empty(), n <= INLINE_COLUMNS, "{n}");
            assert_eq!(got.sorted_distinct(), want.as_slice(), "{input:?}");
        }
    }

    #[test]
    fn an_existing_partition_patch_matches_only_the_same_columns_in_order() {
        let v = PatchValue::from(serde_json::json!(["a", "b"]));
        assert!(v.is_strings(&["a", "b"]));
        assert!(!v.is_strings(&["b", "a"]));
        assert!(!v.is_strings(&["a"]));
        assert!(!v.is_strings(&["a", "b", "c"]));
        assert!(!PatchValue::from(serde_json::json!("a")).is_strings(&["a"]));
        let one = PatchValue::strings(&["a"]);
        assert!(one.is_strings(&["a"]));
        assert!(!one.is_strings(&["b"]));
        assert!(!one.is_strings(&["a", "a"]));
    }
}
