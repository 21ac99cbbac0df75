//! A small bounded cache shared by all threads: a fixed number of slots, each behind its
//! own lock, a value landing in the slot its hash picks and replacing what was there.
//! Memory is bounded by construction (`N` values at most) and a lookup holds a lock only
//! to clone an `Arc`. Callers compare the full key of a hit before using it, so a hash
//! collision is only ever a miss.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// One slot: at most one value, with the hash it was stored under.
type Slot<T> = Mutex<Option<(u64, Arc<T>)>>;

/// `N` slots.
pub(crate) struct SlotCache<T, const N: usize> {
    slots: [Slot<T>; N],
}

impl<T, const N: usize> SlotCache<T, N> {
    /// An empty cache (usable in a `static`).
    pub(crate) const fn new() -> Self {
        SlotCache {
            slots: [const { Mutex::new(None) }; N],
        }
    }

    fn slot(&self, hash: u64) -> Option<&Slot<T>> {
        let n = u64::try_from(N).unwrap_or(1).max(1);
        self.slots.get(usize::try_from(hash % n).unwrap_or(0))
    }

    /// The value stored under `hash`, when `matches` accepts it.
    pub(crate) fn get(&self, hash: u64, matches: impl FnOnce(&T) -> bool) -> Option<Arc<T>> {
        let found = {
            // A slot is only ever assigned whole, so a poisoned lock still holds a
            // consistent value.
            let slot = self
                .slot(hash)?
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Some((h, value)) if *h == hash => Some(Arc::clone(value)),
                _ => None,
            }
        };
        found.filter(|v| matches(v))
    }

    /// Stores `value` under `hash`, replacing the slot's previous value.
    pub(crate) fn insert(&self, hash: u64, value: T) {
        if let Some(slot) = self.slot(hash) {
            let value = Arc::new(value);
            let old = slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace((hash, value));
            // Dropped outside the lock.
            drop(old);
        }
    }

    /// How many slots hold a value.
    #[cfg(test)]
    pub(crate) fn occupied(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }
}

/// A fast non-cryptographic hash (the multiply-rotate scheme of rustc's FxHash, eight
/// bytes at a time). Only used to pick a slot; equality is always checked in full.
#[derive(Default)]
pub(crate) struct FastHasher {
    h: u64,
}

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.h = (self.h ^ word).wrapping_mul(SEED).rotate_left(20);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(
                <[u8; 8]>::try_from(c).unwrap_or_default(),
            ));
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        for (d, s) in last.iter_mut().zip(rest) {
            *d = *s;
        }
        self.add(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
    }

    fn finish(&self) -> u64 {
        let h = self.h;
        (h ^ (h >> 29)).wrapping_mul(SEED) ^ (h >> 32)
    }
}

/// The [`FastHasher`] hash of `value`.
pub(crate) fn hash_of(value: &impl Hash) -> u64 {
    let mut h = FastHasher::default();
    value.hash(&mut h);
    h.finish()
}
