//! The `AuditStore` boundary and the in-memory store.

use crate::error::AuditError;
use crate::event::{AuditEvent, NewEvent};
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

/// An in-memory store (tests and embedding; nothing is persisted).
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: Mutex<Vec<AuditEvent>>,
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
        let mut g = self.guard();
        let prev = g.last().map(|e| e.event_hash.clone()).unwrap_or_default();
        let e = event.seal(&prev);
        g.push(e.clone());
        Ok(e)
    }
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        let mut g = self.guard();
        let mut prev = g.last().map(|e| e.event_hash.clone()).unwrap_or_default();
        for event in events {
            let e = event.seal(&prev);
            prev.clone_from(&e.event_hash);
            g.push(e.clone());
            written.push(e);
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
