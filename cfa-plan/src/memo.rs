//! The built-in planner's memo of recent plans, per thread.
//!
//! Planning is a pure function of the planner's two thresholds, the signature and the
//! catalog entries of the signature's datasets (`datasets.<name>` of the raw catalog:
//! `columns` and `join_keys`, and the typed entry's `pii_columns`). The plan differs
//! between two signatures that are equal but for `intent_id` only in its own
//! `intent_id`: `signature_hash` is a function of the rest of the signature. So a plan
//! is remembered under
//!
//! - the thresholds (compared bit for bit),
//! - every field of the signature but `intent_id` (compared in full, the destructuring
//!   in [`StateSignature::eq_but_intent_id`] is exhaustive, so a new signature field has to be placed
//!   on one side or the other there),
//! - for each of the signature's datasets, the `columns` and `join_keys` of its raw
//!   catalog entry and its typed catalog entry's PII columns (compared in full; `None`
//!   where the catalog has none),
//!
//! and a hit is the remembered plan with the caller's `intent_id` put in. A refusal is
//! never remembered (it is computed every time).
//!
//! The plan is kept behind an [`Arc`]: [`lookup`] hands out a copy of it (what
//! [`crate::Planner::plan`] returns), [`lookup_shared`] the shared plan itself
//! ([`crate::Planner::plan_shared`]). A shared hit writes the caller's `intent_id` into
//! the remembered plan in place when nobody else holds it any more (the previous
//! caller has dropped its handle, as the kernel does at the end of every run), and
//! only otherwise copies it; so a plan that was handed out never changes.
//!
//! Bound: [`RECENT_PLANS`] plans per thread, replaced round robin, and only for
//! signatures of at most [`MAX_MEMO_DATASETS`] datasets whose catalog entries and
//! plan stay small (see [`fits`]), so a thread holds a few tens of KiB at most.

use crate::model::ExecutionPlan;
use cfa_types::{Catalog, StateSignature};
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;

/// Plans remembered per thread.
pub(crate) const RECENT_PLANS: usize = 4;

/// Signatures with more datasets than this are planned every time.
pub(crate) const MAX_MEMO_DATASETS: usize = 8;

/// Plans with more steps than this (or catalog entries holding more values) are not
/// remembered.
const MAX_MEMO_ITEMS: usize = 64;

/// What planning reads of the catalog for one dataset of the signature.
#[derive(Debug, Clone, PartialEq)]
struct EntryView {
    /// `datasets.<name>.columns` of the raw catalog.
    columns: Option<Value>,
    /// `datasets.<name>.join_keys` of the raw catalog.
    join_keys: Option<Value>,
    /// The typed entry's `pii_columns`.
    pii: Option<Vec<String>>,
}

/// `datasets.<name>` of the raw catalog.
fn raw_entry<'c>(catalog: Option<&'c Catalog>, name: &str) -> Option<&'c Value> {
    catalog
        .and_then(|c| c.raw().get("datasets"))
        .and_then(|d| d.get(name))
}

fn entry_view(catalog: Option<&Catalog>, name: &str) -> EntryView {
    let raw = raw_entry(catalog, name);
    EntryView {
        columns: raw.and_then(|e| e.get("columns")).cloned(),
        join_keys: raw.and_then(|e| e.get("join_keys")).cloned(),
        pii: catalog
            .and_then(|c| c.datasets.get(name))
            .map(|e| e.pii_columns.clone()),
    }
}

/// Whether `view` is what the catalog holds for `name` now.
fn entry_matches(view: &EntryView, catalog: Option<&Catalog>, name: &str) -> bool {
    let raw = raw_entry(catalog, name);
    let pii = catalog
        .and_then(|c| c.datasets.get(name))
        .map(|e| &e.pii_columns);
    view.columns.as_ref() == raw.and_then(|e| e.get("columns"))
        && view.join_keys.as_ref() == raw.and_then(|e| e.get("join_keys"))
        && view.pii.as_ref() == pii
}

/// One remembered plan and the inputs it was planned from.
struct Remembered {
    thresholds: (u64, u64),
    signature: StateSignature,
    entries: Vec<EntryView>,
    plan: Arc<ExecutionPlan>,
}

impl Remembered {
    /// Whether this plan was planned from these inputs (all but the intent id).
    fn planned_from(
        &self,
        thresholds: (u64, u64),
        sig: &StateSignature,
        catalog: Option<&Catalog>,
    ) -> bool {
        self.thresholds == thresholds
            && self.signature.eq_but_intent_id(sig)
            && self.entries.len() == sig.datasets.len()
            && self
                .entries
                .iter()
                .zip(&sig.datasets)
                .all(|(e, d)| entry_matches(e, catalog, &d.name))
    }
}

/// Whether a plan of `sig` may be remembered at all (lookups skip the others too).
pub(crate) fn eligible(sig: &StateSignature) -> bool {
    sig.datasets.len() <= MAX_MEMO_DATASETS
}

/// How many JSON values `v` holds (itself included), counting up to `limit`.
fn nodes(v: &Value, limit: usize) -> usize {
    match v {
        Value::Array(items) => items
            .iter()
            .fold(1, |n, i| if n > limit { n } else { n + nodes(i, limit) }),
        Value::Object(map) => map
            .values()
            .fold(1, |n, i| if n > limit { n } else { n + nodes(i, limit) }),
        _ => 1,
    }
}

/// Whether the plan and the catalog entries it was planned from are small enough to
/// keep: at most [`MAX_MEMO_ITEMS`] steps, and entries of at most that many values.
fn fits(plan: &ExecutionPlan, entries: &[EntryView]) -> bool {
    let small = |v: &Option<Value>| {
        v.as_ref()
            .is_none_or(|v| nodes(v, MAX_MEMO_ITEMS) <= MAX_MEMO_ITEMS)
    };
    plan.steps.len() <= MAX_MEMO_ITEMS
        && entries.iter().all(|e| {
            small(&e.columns)
                && small(&e.join_keys)
                && e.pii.as_ref().is_none_or(|p| p.len() <= MAX_MEMO_ITEMS)
        })
}

/// The thread's remembered plans (at most [`RECENT_PLANS`]), on the heap: a thread
/// local's own storage stays a few words, which matters in the Python extension, whose
/// thread locals live in the small static TLS block of a `dlopen`ed library.
struct RecentPlans {
    entries: Vec<Remembered>,
    /// The slot the next new plan replaces once all are taken (round robin).
    next: usize,
}

thread_local! {
    static RECENT: RefCell<RecentPlans> = const {
        RefCell::new(RecentPlans { entries: Vec::new(), next: 0 })
    };
}

/// The remembered plan of `sig` against `catalog` with these thresholds, with the
/// signature's `intent_id` put in (a copy).
pub(crate) fn lookup(
    thresholds: (u64, u64),
    sig: &StateSignature,
    catalog: Option<&Catalog>,
) -> Option<ExecutionPlan> {
    RECENT
        .try_with(|cell| {
            let recent = cell.try_borrow().ok()?;
            let hit = recent
                .entries
                .iter()
                .find(|r| r.planned_from(thresholds, sig, catalog))?;
            // The plan differs only in its own intent id (module docs).
            let mut plan = ExecutionPlan::clone(&hit.plan);
            plan.intent_id.clone_from(&sig.intent_id);
            Some(plan)
        })
        .ok()
        .flatten()
}

/// [`lookup`], shared: the remembered plan itself once the signature's `intent_id` is
/// in it. The id is written in place when this memo holds the only handle (nobody can
/// see the change), else the plan is copied and the copy is remembered instead, so a
/// plan handed out earlier never changes.
pub(crate) fn lookup_shared(
    thresholds: (u64, u64),
    sig: &StateSignature,
    catalog: Option<&Catalog>,
) -> Option<Arc<ExecutionPlan>> {
    RECENT
        .try_with(|cell| {
            let mut recent = cell.try_borrow_mut().ok()?;
            let hit = recent
                .entries
                .iter_mut()
                .find(|r| r.planned_from(thresholds, sig, catalog))?;
            // The plan differs only in its own intent id (module docs).
            if let Some(plan) = Arc::get_mut(&mut hit.plan) {
                plan.intent_id.clone_from(&sig.intent_id);
            } else if hit.plan.intent_id != sig.intent_id {
                let mut plan = ExecutionPlan::clone(&hit.plan);
                plan.intent_id.clone_from(&sig.intent_id);
                hit.plan = Arc::new(plan);
            }
            Some(Arc::clone(&hit.plan))
        })
        .ok()
        .flatten()
}

/// Remembers `plan`, planned from `sig` against `catalog` with these thresholds (the
/// handle is shared with the caller: [`lookup_shared`] copies the plan while the
/// caller still holds it).
pub(crate) fn remember(
    thresholds: (u64, u64),
    sig: &StateSignature,
    catalog: Option<&Catalog>,
    plan: &Arc<ExecutionPlan>,
) {
    let entries: Vec<EntryView> = sig
        .datasets
        .iter()
        .map(|d| entry_view(catalog, &d.name))
        .collect();
    if !fits(plan, &entries) {
        return;
    }
    let remembered = Remembered {
        thresholds,
        signature: sig.clone(),
        entries,
        plan: Arc::clone(plan),
    };
    let _ = RECENT.try_with(|cell| {
        if let Ok(mut recent) = cell.try_borrow_mut() {
            if recent.entries.len() < RECENT_PLANS {
                recent.entries.push(remembered);
                return;
            }
            let at = recent.next;
            if let Some(slot) = recent.entries.get_mut(at) {
                *slot = remembered;
            }
            recent.next = (at + 1) % RECENT_PLANS;
        }
    });
}

/// How many plans this thread remembers.
#[cfg(test)]
pub(crate) fn remembered() -> usize {
    RECENT.with(|cell| cell.borrow().entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecutionPlanner, Planner};
    use serde_json::json;

    fn catalog(extra_column: bool) -> Catalog {
        let mut nfe_columns = vec!["nfe_id", "cliente_id", "processing_date"];
        if extra_column {
            nfe_columns.push("valor");
        }
        Catalog::from_value(&json!({"datasets": {
            "nfe": {"classification": "high_volume", "partition_column": "processing_date",
                    "merge_keys": ["nfe_id"], "columns": nfe_columns},
            "clientes": {"classification": "sensitive", "pii_columns": ["cpf"],
                         "merge_keys": ["cliente_id"],
                         "columns": ["cliente_id", "cpf", "email", "processing_date"]}}}))
        .unwrap_or_default()
    }

    fn signature(intent_id: &str) -> StateSignature {
        let mut v = cfa_test_support::ok_signature();
        v["intent_id"] = json!(intent_id);
        StateSignature::from_value(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_remembered_plan_is_the_built_plan_with_the_callers_intent_id() {
        let planner = ExecutionPlanner::default();
        let cat = catalog(false);
        let first = planner.plan(&signature("i-1"), Some(&cat));
        assert!(remembered() >= 1);
        let again = planner.plan(&signature("i-2"), Some(&cat));
        let built = planner.plan_uncached(&signature("i-2"), Some(&cat));
        assert_eq!(again, built);
        assert_eq!(again.as_ref().map(|p| p.intent_id.as_str()), Ok("i-2"));
        assert_eq!(first.as_ref().map(|p| p.intent_id.as_str()), Ok("i-1"));
        assert_ne!(first, again);
    }

    #[test]
    fn a_shared_plan_is_the_built_plan_and_a_handed_out_one_never_changes() {
        let planner = ExecutionPlanner::default();
        let cat = catalog(false);
        let built = |id: &str| planner.plan_uncached(&signature(id), Some(&cat));
        // A miss, then hits while the previous handle is dropped (the id written in
        // place) and while it is still held (a copy), then the owned path between.
        let first = planner.plan_shared(&signature("s-1"), Some(&cat));
        assert_eq!(first.as_deref().ok(), built("s-1").as_ref().ok());
        drop(first);
        let second = planner.plan_shared(&signature("s-2"), Some(&cat));
        assert_eq!(second.as_deref().ok(), built("s-2").as_ref().ok());
        let held = planner.plan_shared(&signature("s-3"), Some(&cat));
        assert_eq!(held.as_deref().ok(), built("s-3").as_ref().ok());
        assert_eq!(second.as_deref().ok(), built("s-2").as_ref().ok());
        assert_eq!(planner.plan(&signature("s-4"), Some(&cat)), built("s-4"));
        let again = planner.plan_shared(&signature("s-3"), Some(&cat));
        assert_eq!(again.as_deref().ok(), built("s-3").as_ref().ok());
        drop((second, again));
        let fifth = planner.plan_shared(&signature("s-5"), Some(&cat));
        assert_eq!(fifth.as_deref().ok(), built("s-5").as_ref().ok());
        assert_eq!(held.as_deref().ok(), built("s-3").as_ref().ok());
        // Not remembered: refusals, and the default of another planner wraps `plan`.
        let mut empty = signature("s-6");
        empty.datasets.clear();
        assert!(planner.plan_shared(&empty, None).is_err());
        struct Plain;
        impl Planner for Plain {
            fn plan(
                &self,
                s: &StateSignature,
                c: Option<&Catalog>,
            ) -> Result<ExecutionPlan, crate::PlanError> {
                ExecutionPlanner::default().plan_uncached(s, c)
            }
        }
        let wrapped = Plain.plan_shared(&signature("s-7"), Some(&cat));
        assert_eq!(wrapped.as_deref().ok(), built("s-7").as_ref().ok());
    }

    #[test]
    fn another_catalog_signature_or_threshold_is_planned_again() {
        let planner = ExecutionPlanner::default();
        let (cat, wider) = (catalog(false), catalog(true));
        let sig = signature("i-1");
        let narrow = planner.plan(&sig, Some(&cat));
        let wide = planner.plan(&sig, Some(&wider));
        assert_eq!(wide, planner.plan_uncached(&sig, Some(&wider)));
        assert_ne!(narrow, wide);
        assert_eq!(planner.plan(&sig, None), planner.plan_uncached(&sig, None));
        let mut other = sig.clone();
        other.constraints.partition_by.clear();
        assert_eq!(
            planner.plan(&other, Some(&cat)),
            planner.plan_uncached(&other, Some(&cat))
        );
        let mut raw = sig.clone();
        raw.source_intent_raw = "another text".into();
        assert!(!sig.eq_but_intent_id(&raw));
        let strict = ExecutionPlanner {
            broadcast_small_gb: 0.0,
            ..planner
        };
        let broadcast = planner.plan(&sig, Some(&cat));
        let sort_merge = strict.plan(&sig, Some(&cat));
        assert_eq!(sort_merge, strict.plan_uncached(&sig, Some(&cat)));
        assert_ne!(broadcast, sort_merge);
    }

    #[test]
    fn refusals_are_not_remembered_and_the_memo_is_bounded() {
        let planner = ExecutionPlanner::default();
        let mut empty = signature("i-1");
        empty.datasets.clear();
        for _ in 0..3 {
            assert!(planner.plan(&empty, None).is_err());
        }
        let cat = catalog(false);
        for n in 0..(RECENT_PLANS * 3) {
            let mut sig = signature("i");
            sig.domain = format!("d{n}");
            assert_eq!(
                planner.plan(&sig, Some(&cat)),
                planner.plan_uncached(&sig, Some(&cat))
            );
        }
        assert_eq!(remembered(), RECENT_PLANS);
        RECENT.with(|cell| {
            assert!(
                cell.borrow()
                    .entries
                    .iter()
                    .all(|r| !r.signature.datasets.is_empty())
            );
        });
        let big = json!({"columns": (0..200).map(|n| format!("c{n}")).collect::<Vec<_>>()});
        let view = EntryView {
            columns: big.get("columns").cloned(),
            join_keys: None,
            pii: None,
        };
        let plan = planner.plan_uncached(&signature("i"), Some(&cat));
        assert!(plan.as_ref().is_ok_and(|p| !fits(p, &[view])));
        assert!(plan.is_ok_and(|p| fits(&p, &[])));
    }
}
