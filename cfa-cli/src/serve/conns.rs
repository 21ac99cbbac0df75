//! The connection cap of `cfa serve`. Every open connection holds a slot; a
//! connection is idle while no request of it is being handled (not sent anything yet,
//! halfway through its headers, or waiting between keep-alive requests). At the cap a
//! new connection takes the slot of the oldest idle one, which is closed, so a pile of
//! idle sockets cannot keep a real client (a health check) out; when every connection
//! is busy the newcomer gets a 503 and is closed at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

#[derive(Debug)]
struct Slot {
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    slots: BTreeMap<u64, Slot>,
}

/// The open connections of one server.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    table: Mutex<Table>,
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    owner: Arc<Connections>,
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// Marks its connection busy while it lives (one per request being handled).
#[derive(Debug)]
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    /// At most `max` (at least 1) connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the oldest idle connection; false when none is idle.
    fn shed_oldest_idle(table: &mut Table) -> bool {
        let victim = table
            .slots
            .iter()
            .find(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| table.slots.remove(&id)) {
            Some(slot) => {
                slot.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// A slot for a new connection, shedding the oldest idle one at the cap; `None`
    /// when the cap is reached and every connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut table = self.lock();
        if table.slots.len() >= self.max && !Self::shed_oldest_idle(&mut table) {
            return None;
        }
        let id = table.next;
        table.next += 1;
        let slot = Slot {
            busy: Arc::new(AtomicUsize::new(0)),
            close: Arc::new(Notify::new()),
        };
        let ticket = Ticket {
            id,
            owner: Arc::clone(self),
            busy: Arc::clone(&slot.busy),
            close: Arc::clone(&slot.close),
        };
        table.slots.insert(id, slot);
        Some(ticket)
    }

    /// Frees a descriptor when accepting fails (too many open files): closes the
    /// oldest idle connection; false when none is idle.
    pub fn shed_one(&self) -> bool {
        Self::shed_oldest_idle(&mut self.lock())
    }

    /// Open connections.
    #[cfg(test)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

impl Ticket {
    /// Marks the connection busy until the returned guard drops.
    #[cfg(test)]
    pub fn busy(&self) -> Busy {
        Busy::from_counter(&self.busy)
    }

    /// The counter behind [`Ticket::busy`], for the connection's service.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.busy)
    }

    /// Resolves when the connection has been shed.
    pub async fn shed(&self) {
        self.close.notified().await;
    }
}

impl Busy {
    /// Marks the connection of `counter` busy.
    pub fn from_counter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.owner.lock().slots.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sheds_the_oldest_idle_then_refuses_when_all_busy() {
        let c = Connections::new(2);
        let a = c.admit().unwrap();
        let b = c.admit().unwrap();
        let _busy_b = b.busy();
        // At the cap: a (idle, oldest) is shed for the newcomer.
        let n = c.admit().unwrap();
        assert_eq!(c.len(), 2);
        let _busy_n = n.busy();
        // Every connection busy: refused.
        assert!(c.admit().is_none());
        drop(a);
        assert_eq!(c.len(), 2, "a shed ticket frees nothing twice");
        drop(b);
        assert_eq!(c.len(), 1);
        assert!(c.admit().is_some());
    }
}
