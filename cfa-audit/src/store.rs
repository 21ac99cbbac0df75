//! The `AuditStore` boundary and the in-memory store.

use crate::error::{AuditError, ProofError};
use crate::event::{AuditEvent, NewEvent};
use crate::prepared::{PreparedEvent, Sealed};
use crate::verify::{self, ChainStart, VerifyOptions, VerifyReport};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Mutex;

/// When appended events reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync after every append (an acknowledged event survives a crash).
    #[default]
    Always,
    /// Group commit: fsync every `n` appends, and on `flush`/drop.
    Batch(u32),
    /// Never fsync (the OS decides).
    Never,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            "batch" => Ok(Self::Batch(64)),
            other => match other.strip_prefix("batch:").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Ok(Self::Batch(n)),
                _ => Err(format!(
                    "unknown durability {other:?} (expected always, batch, batch:N or never)"
                )),
            },
        }
    }
}

/// A hash-chained audit log. Appends from several threads (and, for the file and
/// SQLite stores, several processes) form one linear chain.
pub trait AuditStore: Send + Sync {
    /// Chains `event` after the current tail (re-read under the store's lock),
    /// writes it, and returns it with its hash.
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError>;
    /// Chains `events` in order after the current tail, as one write where the store
    /// can (one lock, one tail read, one write, one fsync per durability policy). Each
    /// event is still its own chained event with the hash [`AuditStore::append`] would
    /// give it. The sealed events that were durably written are pushed to `written` in
    /// order, so on an error `written` says exactly how far the batch got.
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        for event in events {
            written.push(self.append(event)?);
        }
        Ok(())
    }
    /// [`AuditStore::append_batch`] of events prepared by the caller (see
    /// [`PreparedEvent`]: their line and hash are written up to the previous hash, so
    /// the store only finishes them). Pushes each written event's hash to `hashes`, in
    /// order, so on an error `hashes` says how far the batch got. The default reads
    /// each event back into a [`NewEvent`] and calls [`AuditStore::append_batch`].
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        let events = events
            .into_iter()
            .map(PreparedEvent::into_new_event)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::error::InvalidEventError {
                source_name: String::new(),
                reason: format!("a prepared event does not read back: {e}"),
            })?;
        // The hashes of what was written reach `hashes` even if the store panics.
        let mut out = Written {
            events: Vec::with_capacity(events.len()),
            hashes,
        };
        self.append_batch(events, &mut out.events)
    }
    /// The last event's hash (`""` when empty).
    fn tail_hash(&self) -> Result<String, AuditError>;
    /// Number of events.
    fn len(&self) -> Result<u64, AuditError>;
    /// `true` when there is no event.
    fn is_empty(&self) -> Result<bool, AuditError> {
        Ok(self.len()? == 0)
    }
    /// Streams the events in order until `visit` breaks.
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError>;
    /// Verifies the whole chain in one pass.
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError>;
    /// Forces pending appends to disk (group commit).
    fn flush(&self) -> Result<(), AuditError>;
}

/// Sealed events whose hashes go to `hashes` when dropped (also while unwinding).
struct Written<'a> {
    events: Vec<AuditEvent>,
    hashes: &'a mut Vec<String>,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        self.hashes
            .extend(self.events.drain(..).map(|e| e.event_hash));
    }
}

/// An in-memory store (tests and embedding; nothing is persisted).
///
/// Events appended whole are kept as events; events built as text (the kernel's
/// prepared events) are kept as their sealed JSONL line and read back only when the log
/// is scanned or verified: an append costs the line, not a parsed event. Either way
/// [`AuditStore::scan`] hands out the same events.
///
/// [`MemoryStore::keeping_last`] bounds the memory a long-lived log takes: it keeps the
/// chain head (the last event's hash, the number of events appended, and the hash of
/// the last event it let go) and only the last `n` events. [`AuditStore::verify`] then
/// really verifies what is kept: every kept event's hash, and every link, the first kept
/// event's to the hash of the last dropped one; [`AuditStore::scan`] hands out the kept
/// events; [`AuditStore::len`] counts every event appended. A Merkle tree (roots,
/// checkpoints, proofs) needs the whole chain: once events were dropped, asking
/// `verify` for one is an error.
#[derive(Debug)]
pub struct MemoryStore {
    log: Mutex<Log>,
    /// The most events kept (`usize::MAX`: every one).
    keep: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            log: Mutex::default(),
            keep: usize::MAX,
        }
    }
}

/// The events of a [`MemoryStore`] and the hash of the last one.
#[derive(Debug, Default)]
struct Log {
    events: VecDeque<Kept>,
    tail: String,
    /// Events let go (the oldest ones), and the last one's `event_hash`: the
    /// `previous_hash` the first kept event must name.
    dropped: u64,
    dropped_tail: String,
}

/// One event of a [`MemoryStore`].
// As `Sealed`: boxing would cost every whole-event append an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Kept {
    /// An event kept whole.
    Event(AuditEvent),
    /// The sealed line of an event built as text (it reads back, checked on append),
    /// and its `event_hash`.
    Line(Box<str>, Box<str>),
}

impl Kept {
    fn event(&self) -> Result<AuditEvent, AuditError> {
        match self {
            Kept::Event(e) => Ok(e.clone()),
            Kept::Line(line, _) => AuditEvent::from_jsonl_line(line).map_err(unreadable),
        }
    }

    fn event_hash(&self) -> &str {
        match self {
            Kept::Event(e) => &e.event_hash,
            Kept::Line(_, hash) => hash,
        }
    }
}

impl Log {
    fn push(&mut self, event: AuditEvent) {
        self.tail.clone_from(&event.event_hash);
        self.events.push_back(Kept::Event(event));
    }

    /// Lets the oldest events go until at most `keep` are kept.
    fn trim(&mut self, keep: usize) {
        while self.events.len() > keep {
            let Some(first) = self.events.pop_front() else {
                break;
            };
            self.dropped += 1;
            self.dropped_tail.clear();
            self.dropped_tail.push_str(first.event_hash());
        }
    }
}

/// A prepared event whose line does not read back (not one this crate wrote).
fn unreadable(e: crate::event::EventShapeError) -> AuditError {
    crate::error::InvalidEventError {
        source_name: String::new(),
        reason: format!("a prepared event does not read back: {e}"),
    }
    .into()
}

impl MemoryStore {
    /// An empty in-memory log.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty in-memory log that keeps only its last `n` events (at least 1) and the
    /// chain head (see [`MemoryStore`]).
    pub fn keeping_last(n: usize) -> Self {
        Self {
            log: Mutex::default(),
            keep: n.max(1),
        }
    }

    /// How many events this log keeps at most (`usize::MAX`: every one).
    pub fn capacity(&self) -> usize {
        self.keep
    }

    /// How many of the oldest events were let go (0 unless [`MemoryStore::keeping_last`]).
    pub fn dropped(&self) -> u64 {
        self.guard().dropped
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept events (a snapshot taken under the lock, parsed outside it), how many
    /// were dropped before them, and the last dropped one's hash.
    fn snapshot(&self) -> (Vec<Kept>, u64, String) {
        let g = self.guard();
        (
            g.events.iter().cloned().collect(),
            g.dropped,
            g.dropped_tail.clone(),
        )
    }
}

impl AuditStore for MemoryStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let event = event.prepare();
        let mut g = self.guard();
        let hash = event.event_hash(&g.tail);
        let e = event.into_event(hash, &g.tail).map_err(unreadable)?;
        g.push(e.clone());
        g.trim(self.keep);
        Ok(e)
    }
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        // Prepared before the lock: under it only the hashes are finished.
        let events: Vec<PreparedEvent> = events.into_iter().map(NewEvent::prepare).collect();
        let mut g = self.guard();
        for event in events {
            let hash = event.event_hash(&g.tail);
            let e = event.into_event(hash, &g.tail).map_err(unreadable)?;
            g.push(e.clone());
            written.push(e);
        }
        g.trim(self.keep);
        Ok(())
    }
    /// Events built as text are kept as their lines. The lines this crate builds read
    /// back, except with a raw detail that is not JSON: details given raw are checked
    /// to be JSON, and refused otherwise, as a store that parsed the event would.
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        let mut g = self.guard();
        let log = &mut *g;
        for event in events {
            if event.has_raw_details() {
                serde_json::from_str::<serde::de::IgnoredAny>(event.details_json()).map_err(
                    |e| unreadable(crate::event::EventShapeError::Unparsable(e.to_string())),
                )?;
            }
            let mut line = String::new();
            match event.seal_line(&log.tail, &mut line) {
                Sealed::Event(e) => {
                    hashes.push(e.event_hash.clone());
                    log.push(*e);
                }
                Sealed::Hash(hash) => {
                    let hash = hash.into_hash();
                    hashes.push(hash.clone());
                    log.tail.clone_from(&hash);
                    log.events
                        .push_back(Kept::Line(line.into_boxed_str(), hash.into_boxed_str()));
                }
            }
        }
        log.trim(self.keep);
        Ok(())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self.guard().tail.clone())
    }
    /// Every event appended, the dropped ones included.
    fn len(&self) -> Result<u64, AuditError> {
        let g = self.guard();
        Ok(g.dropped + g.events.len() as u64)
    }
    /// The kept events.
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        for kept in self.snapshot().0 {
            if visit(kept.event()?).is_break() {
                break;
            }
        }
        Ok(())
    }
    /// Verifies the kept events; once events were dropped, from the chain head's
    /// record of the last dropped one (`events` then counts the kept events, and a bad
    /// event's `line` is its 1-based position in the whole chain).
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let (kept, dropped, dropped_tail) = self.snapshot();
        let events = kept
            .iter()
            .map(Kept::event)
            .collect::<Result<Vec<_>, _>>()?;
        let mut from = std::borrow::Cow::Borrowed(opts);
        if dropped > 0 {
            if opts.merkle || opts.collect_leaves || opts.root_at.is_some() {
                return Err(ProofError::new(format!(
                    "the in-memory log kept only its last {} of {} events: a Merkle tree needs \
                     the whole chain (give the kernel an audit log file)",
                    events.len(),
                    dropped + events.len() as u64
                ))
                .into());
            }
            from.to_mut().start = Some(ChainStart {
                previous_hash: dropped_tail,
                ..ChainStart::default()
            });
        }
        Ok(verify::verify_events(
            events
                .into_iter()
                .zip(dropped + 1..)
                .map(|(e, i)| (i, Ok(e))),
            &from,
        ))
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(n: u32) -> NewEvent {
        NewEvent::new(
            "intent-1",
            "formalize",
            "step",
            "ok",
            "2026-01-01T00:00:00+00:00",
        )
        .detail("n", n)
    }

    fn built(n: u64) -> PreparedEvent {
        let mut b = crate::EventBuilder::new(
            "intent-1",
            "formalize",
            "step",
            "ok",
            "",
            "2026-01-01T00:00:00+00:00",
        );
        b.detail_u64("n", n).detail_str("s", "é\"");
        b.finish()
    }

    #[test]
    fn lines_kept_for_prepared_events_read_back_as_the_sealed_events() {
        let lazy = MemoryStore::new();
        let eager = MemoryStore::new();
        let mut hashes = Vec::new();
        lazy.append(event(0)).unwrap();
        let batch = vec![built(1), event(2).prepare(), built(3)];
        lazy.append_prepared(batch, &mut hashes).unwrap();
        let mut sealed = vec![eager.append(event(0)).unwrap()];
        for p in [built(1), event(2).prepare(), built(3)] {
            sealed.push(eager.append(p.into_new_event().unwrap()).unwrap());
        }
        assert_eq!(
            hashes,
            sealed
                .iter()
                .skip(1)
                .map(|e| e.event_hash.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(lazy.tail_hash().unwrap(), eager.tail_hash().unwrap());
        assert_eq!(lazy.len().unwrap(), 4);
        let mut read = Vec::new();
        lazy.scan(&mut |e| {
            read.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(read, sealed);
        let report = lazy.verify(&VerifyOptions::default()).unwrap();
        assert!(report.intact());
        assert_eq!(report.events, 4);
    }

    #[test]
    fn a_bounded_log_keeps_the_head_and_the_last_events_and_verifies_them() {
        let bounded = MemoryStore::keeping_last(3);
        let whole = MemoryStore::new();
        for n in 0..4 {
            bounded.append(event(n)).unwrap();
            whole.append(event(n)).unwrap();
        }
        let mut hashes = Vec::new();
        bounded
            .append_prepared(vec![built(4), built(5), event(6).prepare()], &mut hashes)
            .unwrap();
        let mut all = Vec::new();
        whole
            .append_prepared(vec![built(4), built(5), event(6).prepare()], &mut all)
            .unwrap();
        assert_eq!(hashes, all);
        assert_eq!(bounded.len().unwrap(), 7);
        assert_eq!(bounded.dropped(), 4);
        assert_eq!(bounded.capacity(), 3);
        assert_eq!(bounded.tail_hash().unwrap(), whole.tail_hash().unwrap());
        let read = |s: &MemoryStore| {
            let mut out = Vec::new();
            s.scan(&mut |e| {
                out.push(e);
                ControlFlow::Continue(())
            })
            .unwrap();
            out
        };
        let kept = read(&bounded);
        assert_eq!(kept.as_slice(), read(&whole).get(4..).unwrap());
        let report = bounded.verify(&VerifyOptions::default()).unwrap();
        assert!(report.intact(), "{:?}", report.first_bad);
        assert_eq!(report.events, 3);
        assert_eq!(report.tail_hash, whole.tail_hash().unwrap());
        // a Merkle tree needs the dropped events
        let merkle = VerifyOptions {
            merkle: true,
            ..VerifyOptions::default()
        };
        assert!(matches!(bounded.verify(&merkle), Err(AuditError::Proof(_))));
        assert!(whole.verify(&merkle).unwrap().intact());
    }

    #[test]
    fn a_bounded_log_really_checks_the_link_to_the_dropped_events() {
        let store = MemoryStore::keeping_last(2);
        for n in 0..5 {
            store.append(event(n)).unwrap();
        }
        assert!(store.verify(&VerifyOptions::default()).unwrap().intact());
        // the head's record of the last dropped event no longer matches the first kept
        // event's previous_hash: the link is reported broken at that event
        store.guard().dropped_tail = "0".repeat(64);
        let report = store.verify(&VerifyOptions::default()).unwrap();
        let bad = report.first_bad.unwrap();
        assert_eq!((bad.index, bad.line), (0, 4));
        assert!(matches!(bad.reason, crate::BadReason::LinkBroken { .. }));
        // a kept event changed: its hash no longer verifies
        let store = MemoryStore::keeping_last(2);
        for n in 0..5 {
            store.append(event(n)).unwrap();
        }
        if let Some(Kept::Event(e)) = store.guard().events.back_mut() {
            e.outcome = "tampered".into();
        }
        let bad = store
            .verify(&VerifyOptions::default())
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!((bad.index, bad.line), (1, 5));
        assert!(matches!(bad.reason, crate::BadReason::HashMismatch { .. }));
    }

    #[test]
    fn a_prepared_line_that_is_not_json_is_refused() {
        let store = MemoryStore::new();
        let mut b = crate::EventBuilder::new("i", "s", "t", "o", "", "ts");
        b.detail_raw("bad", "{not json");
        let mut hashes = Vec::new();
        assert!(
            store
                .append_prepared(vec![b.finish()], &mut hashes)
                .is_err()
        );
        assert!(hashes.is_empty());
        assert_eq!(store.len().unwrap(), 0);
    }
}
