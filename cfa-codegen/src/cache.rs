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
/// Inputs of [`WIDE_BYTES`] or more (a generated script, a source to validate) are
/// read 32 bytes a step into four independent lanes folded together at the end, so
/// the multiplies do not wait on each other; every byte is still read.
#[derive(Default)]
pub(crate) struct FastHasher {
    h: u64,
}

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

/// Inputs this long or longer are hashed in four lanes.
const WIDE_BYTES: usize = 128;

/// One multiply-rotate step.
const fn mix(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(SEED).rotate_left(20)
}

/// The little-endian word of eight bytes (zero when `c` is shorter, which
/// `chunks_exact(8)` never gives).
fn word(c: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default())
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.h = mix(self.h, word);
    }

    /// Reads `bytes` 32 at a time into four lanes, returning what is left (fewer
    /// than 32 bytes).
    fn add_wide<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let mut lanes = [
            self.h,
            self.h ^ SEED,
            self.h.rotate_left(16),
            self.h.rotate_left(48) ^ SEED,
        ];
        let mut blocks = bytes.chunks_exact(32);
        for block in &mut blocks {
            for (lane, c) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                *lane = mix(*lane, word(c));
            }
        }
        for lane in lanes {
            self.add(lane);
        }
        blocks.remainder()
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() >= WIDE_BYTES {
            self.add(bytes.len() as u64);
            self.add_wide(bytes)
        } else {
            bytes
        };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(word(c));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_bytes(bytes: &[u8]) -> u64 {
        let mut h = FastHasher::default();
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn every_byte_of_a_long_input_reaches_the_hash() {
        let text: Vec<u8> = (0..1000u32).map(|n| b'a' + (n % 26) as u8).collect();
        let base = hash_bytes(&text);
        for at in [0, 7, 8, 31, 32, 100, 127, 128, 500, 991, 992, 999] {
            let mut changed = text.clone();
            if let Some(b) = changed.get_mut(at) {
                *b ^= 0x20;
            }
            assert_ne!(hash_bytes(&changed), base, "byte {at}");
        }
        // Lengths on both sides of the wide threshold, and a prefix of another input.
        let hashes: Vec<u64> = (WIDE_BYTES - 2..WIDE_BYTES + 40)
            .map(|n| hash_bytes(text.get(..n).unwrap_or_default()))
            .collect();
        for (i, a) in hashes.iter().enumerate() {
            assert!(hashes.iter().skip(i + 1).all(|b| b != a));
        }
        assert_eq!(hash_bytes(&text), base);
        assert_eq!(hash_of(&"abc"), hash_of(&"abc"));
        assert_ne!(hash_of(&"abc"), hash_of(&"abd"));
    }
}
