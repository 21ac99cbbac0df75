//! One-pass chain verification: bounded memory, every core, first bad event reported.
//!
//! Each line is checked on its own (parse + hash), in parallel over parts of a file
//! ([`verify_path`]) or halves of a chunk ([`verify_reader`]); links are then checked
//! in order and the parts joined at their cuts. Lines are cut, stripped and skipped
//! exactly like the reference's `read_text().strip().splitlines()` + `json.loads` (see [`crate::lines`]).

mod chain;
mod check;
mod reason;
mod report;
mod split;
mod stream;

pub(crate) use chain::ChainState;
pub(crate) use check::check_event;
pub use reason::BadReason;
pub use report::{BadEvent, VerifyReport};
pub use split::verify_path;
pub use stream::verify_reader;

use crate::event::AuditEvent;
use crate::merkle::CompactRange;

/// What to check and collect.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept legacy 16-hex `event_hash` values (the reference's pre-3.1 form).
    pub allow_legacy: bool,
    /// Count the events of this intent (the whole chain is still verified).
    pub intent_id: Option<String>,
    /// Maintain the Merkle tree over event hashes (needed for roots and checkpoints).
    pub merkle: bool,
    /// Also record the Merkle root when the tree reaches this size.
    pub root_at: Option<u64>,
    /// Keep every leaf hash (needed to build proofs; 32 bytes per event).
    pub collect_leaves: bool,
    /// Start from an anchor instead of genesis (see [`crate::retain`]).
    pub start: Option<ChainStart>,
    /// Threads: 1 verifies on one thread; 0 (the default) lets [`verify_path`] cut a
    /// file into one part per available core (see docs/architecture.md#the-audit-chain)
    /// and [`verify_reader`] check each chunk in two halves; n > 1 asks for n.
    pub threads: usize,
}

/// Where a chain starts when its prefix was dropped.
#[derive(Debug, Clone, Default)]
pub struct ChainStart {
    /// The `event_hash` of the last dropped event (the first kept event's `previous_hash`).
    pub previous_hash: String,
    /// Merkle state of the dropped prefix (its size is the index of the first kept event).
    pub tree: CompactRange,
}

/// Verifies events that are already parsed (SQLite rows, memory store).
/// Each item is `(line or row id, event or the reason it could not be read)`.
pub fn verify_events<I>(events: I, opts: &VerifyOptions) -> VerifyReport
where
    I: IntoIterator<Item = (u64, Result<AuditEvent, BadReason>)>,
{
    let mut st = ChainState::new(opts);
    let intent = opts.intent_id.as_deref();
    for (line, ev) in events {
        if st.broken() {
            st.skip();
            continue;
        }
        match ev {
            Ok(e) => {
                let c = check_event(&e, intent);
                st.feed(line, 0, Ok(c));
            }
            Err(r) => st.feed(line, 0, Err(r)),
        }
    }
    st.finish_at(false, true)
}
