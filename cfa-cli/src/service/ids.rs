//! The ids of the decision service (`cfa serve`, `cfa mcp`): random UUID v4 whose
//! random bits come from the operating system in blocks of [`IDS_PER_DRAW`] ids, so a
//! decision costs a copy out of a per-thread buffer instead of a `getrandom(2)` call
//! each (docs/development.md, "seventh round: the decision id's randomness drawn in
//! blocks").
//!
//! Every id still carries 122 bits straight from the operating system's random source,
//! as [`UuidIds`] does (only the version and variant bits are fixed); no bit is derived
//! from another id, so one id tells nothing about the next. The bits wait in the
//! drawing thread's buffer until used and are taken once (a slot is zeroed when taken).
//! A process that forks would copy its threads' buffers into the child, so this source
//! is for the long-running faces, which never fork.

use cfa::kernel::{IdKind, IdSource, UuidIds};
use std::cell::RefCell;

/// Ids drawn from the operating system in one `getrandom(2)` call.
pub const IDS_PER_DRAW: usize = 64;

/// The random bytes of one id.
const ID_BYTES: usize = 16;

/// One thread's drawn bytes and how many ids of them are used.
struct Pool {
    bytes: [u8; ID_BYTES * IDS_PER_DRAW],
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; ID_BYTES * IDS_PER_DRAW], used: IDS_PER_DRAW })
    };
}

/// Random UUID v4 ids from per-thread blocks of operating-system randomness.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedUuids;

impl IdSource for BufferedUuids {
    fn next_id(&self, kind: IdKind) -> String {
        match next_random() {
            Some(bytes) => uuid_text(bytes),
            // The operating system refused randomness: the one-call source (which
            // reports the failure its own way).
            None => UuidIds.next_id(kind),
        }
    }
}

/// The next unused 16 random bytes of this thread's pool, drawing a new block when it
/// is used up; `None` when the operating system gives no randomness.
fn next_random() -> Option<[u8; ID_BYTES]> {
    POOL.with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        if pool.used >= IDS_PER_DRAW {
            getrandom::fill(&mut pool.bytes).ok()?;
            pool.used = 0;
        }
        let start = pool.used.checked_mul(ID_BYTES)?;
        let slot = pool.bytes.get_mut(start..start.checked_add(ID_BYTES)?)?;
        let mut bytes = [0u8; ID_BYTES];
        bytes.copy_from_slice(slot);
        slot.fill(0);
        pool.used += 1;
        Some(bytes)
    })
}

/// `bytes` as UUID v4 text (version 4, RFC 4122 variant, `8-4-4-4-12` lowercase hex),
/// the text `uuid::Uuid::new_v4().to_string()` writes for the same random bytes.
fn uuid_text(bytes: [u8; ID_BYTES]) -> String {
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    String::from(id.hyphenated().encode_lower(&mut text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct_version_4_uuids_across_draws() {
        let mut seen = HashSet::new();
        // Five blocks and a part: every id a v4 UUID in the usual text, none repeated.
        for _ in 0..(5 * IDS_PER_DRAW + 7) {
            let id = BufferedUuids.next_id(IdKind::Decision);
            let parsed = uuid::Uuid::parse_str(&id).map_err(|e| e.to_string());
            assert_eq!(
                parsed.as_ref().map(uuid::Uuid::get_version_num),
                Ok(4),
                "{id}"
            );
            assert_eq!(
                parsed.as_ref().map(uuid::Uuid::get_variant),
                Ok(uuid::Variant::RFC4122),
                "{id}"
            );
            assert_eq!(parsed.map(|u| u.hyphenated().to_string()), Ok(id.clone()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn threads_draw_their_own_ids() {
        let ids: Vec<Vec<String>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..IDS_PER_DRAW + 1)
                            .map(|_| BufferedUuids.next_id(IdKind::Decision))
                            .collect()
                    })
                })
                .collect();
            workers.into_iter().filter_map(|w| w.join().ok()).collect()
        });
        assert_eq!(ids.len(), 4);
        let all: HashSet<&String> = ids.iter().flatten().collect();
        assert_eq!(all.len(), 4 * (IDS_PER_DRAW + 1));
    }

    #[test]
    fn the_text_is_the_uuid_crates_for_the_same_bytes() {
        let bytes = [0xa5u8; ID_BYTES];
        let expected = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string();
        assert_eq!(uuid_text(bytes), expected);
        assert_eq!(uuid_text(bytes), "a5a5a5a5-a5a5-45a5-a5a5-a5a5a5a5a5a5");
    }
}
