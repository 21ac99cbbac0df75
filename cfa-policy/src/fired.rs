//! What a decision repeats for a set of fired rules, built once per engine, each set's
//! on first use: the faults, the reasoning and the interventions
//! (docs/architecture.md#the-decision-path).
//!
//! They depend only on which rules fired (their faults, codes and remediation steps, in
//! rule order) and, for a replan's reasoning, on the replan count and cap. An engine of at
//! most [`TABLE_RULES`] rules keeps one [`Fired`] per subset of its rules, indexed by
//! the subset's bit mask, so a decision clones shared text instead of building and
//! allocating it. Each entry is built the first time a decision needs it (a `OnceLock`
//! per entry), so building an engine costs no more than the empty slots, and a decision
//! after that reads the entry with one atomic load.

use crate::engine::{decide, interventions, reasoning};
use cfa_types::{Fault, PolicyAction, SharedList, SharedStr};
use std::sync::{Arc, OnceLock};

/// Engines of at most this many rules get a table (`2^TABLE_RULES` entries).
pub(crate) const TABLE_RULES: usize = 8;

/// For this many replan counts (0, 1, ...) below the cap, a replan's reasoning is kept.
const REPLAN_COUNTS: u32 = 8;

/// One [`Fired`] per subset of an engine's rules, for the replan cap `max`, each built
/// on first use.
pub(crate) struct FiredTable {
    max: u32,
    /// The rules' faults, in rule order.
    templates: Box<[Fault]>,
    /// The entry of each subset, by bit mask, filled the first time a decision needs it.
    entries: Box<[OnceLock<Fired>]>,
}

impl std::fmt::Debug for FiredTable {
    /// The cap and the sizes, not the entries: which are built depends on the decisions
    /// made so far, and a debug print must not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiredTable")
            .field("max", &self.max)
            .field("rules", &self.templates.len())
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// [`FiredTable::get`] of an entry no decision has built yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBuilt;

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
    /// replan cap `max`; `None` when there are more than [`TABLE_RULES`] rules. No entry
    /// is built yet: [`FiredTable::get`] builds each the first time it is asked for.
    pub(crate) fn build<'a>(
        templates: impl ExactSizeIterator<Item = &'a Fault>,
        max: u32,
    ) -> Option<Self> {
        if templates.len() > TABLE_RULES {
            return None;
        }
        let templates: Box<[Fault]> = templates.cloned().collect();
        let entries = (0..1usize << templates.len())
            .map(|_| OnceLock::new())
            .collect();
        Some(FiredTable {
            max,
            templates,
            entries,
        })
    }

    /// The replan cap the table was built for.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// The entry of the rules whose bits are set in `fired` (bit `i`: rule `i`), if it
    /// has been built (`Err(NotBuilt)` if not: [`FiredTable::fill`] builds it); `Ok(None)`
    /// for a mask past the table. Once built, a read is one atomic load.
    #[inline]
    pub(crate) fn get(&self, fired: u64) -> Result<Option<&Fired>, NotBuilt> {
        match usize::try_from(fired)
            .ok()
            .and_then(|i| self.entries.get(i))
        {
            Some(slot) => slot.get().map(Some).ok_or(NotBuilt),
            None => Ok(None),
        }
    }

    /// Builds the entry of the rules whose bits are set in `fired`, unless a decision has
    /// built it before. An entry depends only on `fired`, the rules and the cap, so which
    /// decision builds it first does not matter, and of threads racing to build it one
    /// does and all then read that one (`OnceLock`).
    #[cold]
    #[inline(never)]
    pub(crate) fn fill(&self, fired: u64) {
        if let Some(mask) = usize::try_from(fired).ok()
            && let Some(slot) = self.entries.get(mask)
        {
            slot.get_or_init(|| self.entry(mask));
        }
    }

    /// How many entries have been built so far.
    #[cfg(test)]
    pub(crate) fn built(&self) -> usize {
        self.entries.iter().filter(|e| e.get().is_some()).count()
    }

    /// Builds the entry of the rules whose bits are set in `mask`, with the functions a
    /// decision without a table calls.
    fn entry(&self, mask: usize) -> Fired {
        let faults: Vec<Fault> = self
            .templates
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, f)| Fault::clone(f))
            .collect();
        let actions = faults.iter().fold(0u8, |acc, f| {
            acc | crate::engine::action_bit(f.mandatory_action)
        });
        let action = decide(actions);
        let max = self.max;
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
