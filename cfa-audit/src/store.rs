//! The `AuditStore` boundary and the in-memory store.

use crate::error::AuditError;
use crate::event::{AuditEvent, NewEvent};
use crate::prepared::PreparedEvent;
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
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: Mutex<Vec<AuditEvent>>,
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

    fn guard(&self) -> std::sync::MutexGuard<'_, Vec<AuditEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AuditStore for MemoryStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let event = event.prepare();
        let mut g = self.guard();
        let prev = g.last().map(|e| e.event_hash.clone()).unwrap_or_default();
        let hash = event.event_hash(&prev);
        let e = event.into_event(hash, &prev).map_err(unreadable)?;
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
        let mut prev = g.last().map(|e| e.event_hash.clone()).unwrap_or_default();
        for event in events {
            let hash = event.event_hash(&prev);
            let e = event.into_event(hash, &prev).map_err(unreadable)?;
            prev.clone_from(&e.event_hash);
            g.push(e.clone());
            written.push(e);
        }
        Ok(())
    }
    /// Events built as text are read back from their lines to be kept.
    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        let mut g = self.guard();
        let mut prev = g.last().map(|e| e.event_hash.clone()).unwrap_or_default();
        for event in events {
            let hash = event.event_hash(&prev);
            let e = event.into_event(hash, &prev).map_err(unreadable)?;
            prev.clone_from(&e.event_hash);
            hashes.push(e.event_hash.clone());
            g.push(e);
        }
        Ok(())
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self
            .guard()
            .last()
            .map(|e| e.event_hash.clone())
            .unwrap_or_default())
    }
    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.guard().len() as u64)
    }
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        let snapshot = self.guard().clone();
        for e in snapshot {
            if visit(e).is_break() {
                break;
            }
        }
        Ok(())
    }
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let snapshot = self.guard().clone();
        Ok(verify::verify_events(
            snapshot.into_iter().zip(1u64..).map(|(e, i)| (i, Ok(e))),
            opts,
        ))
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}
