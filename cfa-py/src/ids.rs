//! Decision and intent ids for the Python faces: UUID v4 text from a per-process random
//! seed and a counter, so an id costs an atomic add instead of a call to the operating
//! system's random source (an id is not part of any decision or hash).
//!
//! The seed is 122 random bits drawn once per process ([`UuidIds`] reads the operating
//! system's source); the counter is added to its low 62 bits, so a process hands out
//! 2^62 distinct ids before one repeats. A forked child must not repeat its parent's
//! ids: the Python half calls [`reseed`] in every child (`os.register_at_fork`).

use cfa::{IdKind, IdSource, UuidIds};
use pyo3::prelude::*;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// The seed's high 64 bits (with the version nibble), its low 64 bits, and the counter.
static SEED_HI: AtomicU64 = AtomicU64::new(0);
static SEED_LO: AtomicU64 = AtomicU64::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// The first seeding (once per process, whichever id comes first).
static FIRST: Once = Once::new();

/// Draws a new random seed and restarts the counter. Called in a forked child (which
/// has one thread): the child's ids must not repeat the parent's.
#[pyfunction]
pub fn reseed() {
    FIRST.call_once(|| {});
    draw_seed();
}

fn draw_seed() {
    let fresh = UuidIds.next_id(IdKind::Decision);
    let hex: String = fresh.chars().filter(char::is_ascii_hexdigit).collect();
    let bits = u128::from_str_radix(&hex, 16).unwrap_or_else(|_| {
        // Not reachable (the uuid crate's text is 32 hex digits); a time-based seed
        // keeps ids distinct from the parent's anyway.
        u128::from(std::process::id()) << 64
            | u128::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or_default(),
            )
    });
    SEED_HI.store((bits >> 64) as u64, Ordering::Relaxed);
    SEED_LO.store(bits as u64, Ordering::Relaxed);
    COUNTER.store(0, Ordering::Relaxed);
}

/// The next id's 128 bits (UUID v4: version 4, RFC 4122 variant).
pub fn next() -> u128 {
    FIRST.call_once(draw_seed);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = (SEED_HI.load(Ordering::Relaxed) & !0xF000) | 0x4000;
    let lo = (SEED_LO.load(Ordering::Relaxed).wrapping_add(n) & !(0b11 << 62)) | (0b10 << 62);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// `bits` as UUID text (`8-4-4-4-12` lowercase hex digits).
pub fn format(bits: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for i in 0..32u32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nibble = (bits >> (124 - 4 * i)) & 0xF;
        out.push(char::from(*HEX.get(nibble as usize).unwrap_or(&b'0')));
    }
    out
}

/// [`IdSource`] of [`next`] ids, for the kernels the package builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastUuids;

impl IdSource for FastUuids {
    fn next_id(&self, _kind: IdKind) -> String {
        format(next())
    }
}
