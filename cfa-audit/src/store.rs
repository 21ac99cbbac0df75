//! The `AuditStore` boundary and the in-memory store.

use crate::error::AuditError;
use crate::event::{AuditEvent, NewEvent};
use crate::prepared::{PreparedEvent, Sealed};
use crate::verify::{self, VerifyOptions, VerifyReport};
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
#[derive(Debug, Default)]
pub struct MemoryStore {
    log: Mutex<Log>,
}

/// The events of a [`MemoryStore`] and the hash of the last one.
#[derive(Debug, Default)]
struct Log {
    events: Vec<Kept>,
    tail: String,
}

/// One event of a [`MemoryStore`].
// As `Sealed`: boxing would cost every whole-event append an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Kept {
    /// An event kept whole.
    Event(AuditEvent),
    /// The sealed line of an event built as text (it reads back, checked on append).
    Line(Box<str>),
}

impl Kept {
    fn event(&self) -> Result<AuditEvent, AuditError> {
        match self {
            Kept::Event(e) => Ok(e.clone()),
            Kept::Line(line) => AuditEvent::from_jsonl_line(line).map_err(unreadable),
        }
    }
}

impl Log {
    fn push(&mut self, event: AuditEvent) {
        self.tail.clone_from(&event.event_hash);
        self.events.push(Kept::Event(event));
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

    fn guard(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The events, read back (a snapshot taken under the lock, parsed outside it).
    fn snapshot(&self) -> Vec<Kept> {
        self.guard().events.clone()
    }
}

impl AuditStore for MemoryStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let event = event.prepare();
        let mut g = self.guard();
        let hash = event.event_hash(&g.tail);
        let e = event.into_event(hash, &g.tail).map_err(unreadable)?;
        g.push(e.clone());
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
                    log.push(e);
                }
                Sealed::Hash(hash) => {
                    hashes.push(hash.clone());
                    log.tail = hash;
                    log.events.push(Kept::Line(line.into_boxed_str()));
                }
            }
        }
        Ok(())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self.guard().tail.clone())
    }
    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.guard().events.len() as u64)
    }
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        for kept in self.snapshot() {
            if visit(kept.event()?).is_break() {
                break;
            }
        }
        Ok(())
    }
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let events = self
            .snapshot()
            .iter()
            .map(Kept::event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(verify::verify_events(
            events.into_iter().zip(1u64..).map(|(e, i)| (i, Ok(e))),
            opts,
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
