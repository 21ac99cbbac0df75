//! What the rule-based normaliser reads of an intent's words alone (layer, domain and
//! intent labels, constraint cues): a pure function of the text and the keyword packs,
//! so each normaliser keeps the facts of recent texts in a small bounded cache. Keys
//! are the full intent text, compared in full; dataset matching (which also depends on
//! the catalog) is never cached.

use crate::compiled::CompiledPacks;
use crate::grounding::ConstraintCues;
use crate::words::Words;
use cfa_types::TargetLayer;
use std::sync::{Arc, Mutex, PoisonError};

/// The facts of one intent text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextFacts {
    /// The first layer with a matching keyword.
    pub layer: Option<TargetLayer>,
    /// The first domain label with a matching keyword.
    pub domain: Option<String>,
    /// The first intent label with a matching keyword.
    pub intent: Option<String>,
    /// The constraint cues.
    pub cues: ConstraintCues,
}

impl TextFacts {
    /// Reads the facts of `words`, uncached.
    pub(crate) fn read(words: &Words, packs: &CompiledPacks) -> Self {
        TextFacts {
            layer: packs.layer(words),
            domain: CompiledPacks::first_label(&packs.domains, words).map(str::to_owned),
            intent: CompiledPacks::first_label(&packs.intents, words).map(str::to_owned),
            cues: ConstraintCues::read(words, packs),
        }
    }
}

/// Slots of the cache: a text lands in the slot its hash picks, replacing what was there.
const SLOTS: usize = 64;

/// Longer texts are read every time, so the cache holds at most `SLOTS` × this.
const MAX_CACHED_TEXT: usize = 4 * 1024;

type Slot = Mutex<Option<(String, Arc<TextFacts>)>>;

/// Recent texts and their facts, shared by all threads using one normaliser.
pub(crate) struct FactsCache {
    slots: Box<[Slot]>,
}

impl FactsCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        FactsCache {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// FNV-1a of the text: only picks a slot; the text is compared in full.
    fn slot(&self, text: &str) -> Option<&Slot> {
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let n = u64::try_from(self.slots.len()).unwrap_or(1).max(1);
        self.slots.get(usize::try_from(h % n).unwrap_or(0))
    }

    /// The facts of `raw` (whose words are `words`): the cached ones when this exact
    /// text was read recently, else read and cached.
    pub(crate) fn get(&self, raw: &str, words: &Words, packs: &CompiledPacks) -> Arc<TextFacts> {
        let Some(slot) = self.slot(raw).filter(|_| raw.len() <= MAX_CACHED_TEXT) else {
            return Arc::new(TextFacts::read(words, packs));
        };
        {
            // A slot is only ever assigned whole, so a poisoned lock still holds a
            // consistent value.
            let held = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((text, facts)) = held.as_ref()
                && text == raw
            {
                return Arc::clone(facts);
            }
        }
        let facts = Arc::new(TextFacts::read(words, packs));
        let old = slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace((raw.to_owned(), Arc::clone(&facts)));
        // Dropped outside the lock.
        drop(old);
        facts
    }

    /// How many slots hold a text.
    #[cfg(test)]
    pub(crate) fn occupied(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }
}

impl Clone for FactsCache {
    /// A clone starts empty (the cache is only an accelerator).
    fn clone(&self) -> Self {
        FactsCache::new()
    }
}

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsCache").field("slots", &SLOTS).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::KeywordPack;

    #[test]
    fn a_hit_is_the_uncached_read_and_a_different_text_misses() {
        let packs = CompiledPacks::new(&[KeywordPack::english(), KeywordPack::portuguese()]);
        let cache = FactsCache::new();
        let texts = [
            "Join nfe with clientes daily, anonymize pii, into silver",
            "ingest nfe raw into bronze",
            "Join NFe with Clientes and persist to Silver",
            "aggregate the gold sales, budget 20 dbu, no merge",
            "aggregate the gold sales, budget 30 dbu, no merge",
            "",
        ];
        for _ in 0..3 {
            for t in texts {
                let words = Words::new(t);
                let uncached = TextFacts::read(&words, &packs);
                assert_eq!(*cache.get(t, &words, &packs), uncached, "{t}");
            }
        }
        assert!(cache.occupied() >= 1 && cache.occupied() <= SLOTS);
        // Texts differing in one number get their own facts.
        let a = cache.get(texts[3], &Words::new(texts[3]), &packs);
        let b = cache.get(texts[4], &Words::new(texts[4]), &packs);
        assert_ne!(a.cues.budget, b.cues.budget);
        // An oversized text is read, never stored.
        let before = cache.occupied();
        let long = "silver ".repeat(MAX_CACHED_TEXT);
        let words = Words::new(&long);
        assert_eq!(
            *cache.get(&long, &words, &packs),
            TextFacts::read(&words, &packs)
        );
        assert_eq!(cache.occupied(), before);
    }
}
