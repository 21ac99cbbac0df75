//! What a decision repeats for a set of fired rules, built once per engine: the
//! faults, the reasoning and the interventions (docs/architecture.md#the-decision-path).
//!
//! They depend only on which rules fired (their faults, codes and remediation steps, in
//! rule order) and, for a replan's reasoning, on the replan count and cap. An engine of at
//! most [`TABLE_RULES`] rules keeps one [`Fired`] per subset of its rules, indexed by
//! the subset's bit mask, so a decision clones shared text instead of building and
//! allocating it. The table is filled when the engine is built (the default rules'
//! once per process); the decision path only reads it.

use crate::engine::{decide, interventions, reasoning};
use cfa_types::{Fault, PolicyAction, SharedList, SharedStr};
use std::sync::Arc;

/// Engines of at most this many rules get a table (`2^TABLE_RULES` entries).
pub(crate) const TABLE_RULES: usize = 8;

/// For this many replan counts (0, 1, ...) below the cap, a replan's reasoning is kept.
const REPLAN_COUNTS: u32 = 8;

/// One [`Fired`] per subset of an engine's rules, for the replan cap `max`.
#[derive(Debug)]
pub(crate) struct FiredTable {
    max: u32,
    entries: Box<[Fired]>,
}

/// The shared parts of a decision whose faults are exactly one subset of the rules.
#[derive(Debug)]
pub(crate) struct Fired {
    /// The rules' faults, in rule order (`None` when none fired).
    faults: Option<Arc<Vec<Fault>>>,
    /// The reasoning of a block or approve decision (or of no fault at all).
    reasoning: SharedStr,
    /// A replan's reasoning for each replan count below `min(max, REPLAN_COUNTS)`.
    replan: Box<[SharedStr]>,
    /// A replan's interventions.
    interventions: SharedList,
}

impl FiredTable {
    /// The table for the rules whose faults are `templates`, in rule order, and the
    /// replan cap `max`; `None` when there are more than [`TABLE_RULES`] rules.
    pub(crate) fn build<'a>(
        templates: impl ExactSizeIterator<Item = &'a Fault>,
        max: u32,
    ) -> Option<Self> {
        let templates: Vec<&Fault> = templates.collect();
        if templates.len() > TABLE_RULES {
            return None;
        }
        let entries = (0..1usize << templates.len())
            .map(|mask| {
                let faults: Vec<Fault> = templates
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, f)| Fault::clone(f))
                    .collect();
                let actions = faults.iter().fold(0u8, |acc, f| {
                    acc | crate::engine::action_bit(f.mandatory_action)
                });
                let action = decide(actions);
                let (reasoning_text, replan, steps) = if action == PolicyAction::Replan {
                    let replan = (0..max.min(REPLAN_COUNTS))
                        .map(|count| reasoning(action, &faults, count, max))
                        .collect();
                    (SharedStr::default(), replan, interventions(&faults))
                } else {
                    (
                        reasoning(action, &faults, 0, max),
                        Box::default(),
                        Vec::new(),
                    )
                };
                Fired {
                    faults: (!faults.is_empty()).then(|| Arc::new(faults)),
                    reasoning: reasoning_text,
                    replan,
                    interventions: SharedList::from(steps),
                }
            })
            .collect();
        Some(FiredTable { max, entries })
    }

    /// The replan cap the table was built for.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// The entry of the rules whose bits are set in `fired` (bit `i`: rule `i`).
    #[inline]
    pub(crate) fn get(&self, fired: u64) -> Option<&Fired> {
        usize::try_from(fired)
            .ok()
            .and_then(|i| self.entries.get(i))
    }
}

impl Fired {
    /// The reasoning of `action` (the one these rules decide) at `replan_count`, when
    /// the table holds it.
    #[inline]
    pub(crate) fn reasoning(&self, action: PolicyAction, replan_count: u32) -> Option<&SharedStr> {
        match action {
            PolicyAction::Replan => usize::try_from(replan_count)
                .ok()
                .and_then(|i| self.replan.get(i)),
            PolicyAction::Approve | PolicyAction::Block => Some(&self.reasoning),
        }
    }

    /// The rules' faults, when some fired.
    #[inline]
    pub(crate) fn faults(&self) -> Option<&Arc<Vec<Fault>>> {
        self.faults.as_ref()
    }

    /// A replan's interventions.
    #[inline]
    pub(crate) fn interventions(&self) -> &SharedList {
        &self.interventions
    }
}
