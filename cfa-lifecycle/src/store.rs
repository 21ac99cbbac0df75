//! The [`StateStore`] trait (the context registry) and its in-memory implementation.
//! Every call costs O(1) memory: the history is a bounded ring and nothing copies it.

use crate::error::LifecycleError;
use crate::projection::{DatasetState, HistoryEntry};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Default history cap (the last 100 executions).
pub const DEFAULT_HISTORY_CAP: usize = 100;

/// The context registry: current state per dataset, a version id, and a bounded history.
pub trait StateStore: Send + Sync {
    /// Replaces `name`'s state and sets the registry version to `version_id`.
    fn set_dataset_state(
        &self,
        name: &str,
        state: &DatasetState,
        version_id: &str,
    ) -> Result<(), LifecycleError>;
    /// `name`'s state, if any.
    fn dataset_state(&self, name: &str) -> Result<Option<DatasetState>, LifecycleError>;
    /// The registry version (`v_initial` before any write).
    fn version_id(&self) -> Result<String, LifecycleError>;
    /// Appends to the history, dropping the oldest entries beyond the cap.
    fn record_execution(&self, entry: &HistoryEntry) -> Result<(), LifecycleError>;
    /// The last `limit` history entries, oldest first.
    fn recent_history(&self, limit: usize) -> Result<Vec<HistoryEntry>, LifecycleError>;
    /// Entries currently kept.
    fn history_len(&self) -> Result<usize, LifecycleError>;
}

#[derive(Debug)]
struct Inner {
    datasets: HashMap<String, DatasetState>,
    version_id: String,
    history: VecDeque<HistoryEntry>,
}

/// An in-memory [`StateStore`].
#[derive(Debug)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
    cap: usize,
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_CAP)
    }
}

impl MemoryStateStore {
    /// A store keeping the last `cap` executions (at least 1).
    pub fn new(cap: usize) -> Self {
        MemoryStateStore {
            inner: Mutex::new(Inner {
                datasets: HashMap::new(),
                version_id: "v_initial".into(),
                history: VecDeque::with_capacity(cap.clamp(1, 1024)),
            }),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, LifecycleError> {
        self.inner.lock().map_err(|_| LifecycleError::Poisoned)
    }

    /// The history cap.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl StateStore for MemoryStateStore {
    fn set_dataset_state(
        &self,
        name: &str,
        state: &DatasetState,
        version_id: &str,
    ) -> Result<(), LifecycleError> {
        let mut g = self.lock()?;
        // A dataset written before keeps its key (no new key, no rehash).
        match g.datasets.get_mut(name) {
            Some(kept) => *kept = state.clone(),
            None => {
                g.datasets.insert(name.to_owned(), state.clone());
            }
        }
        version_id.clone_into(&mut g.version_id);
        Ok(())
    }

    fn dataset_state(&self, name: &str) -> Result<Option<DatasetState>, LifecycleError> {
        Ok(self.lock()?.datasets.get(name).cloned())
    }

    fn version_id(&self) -> Result<String, LifecycleError> {
        Ok(self.lock()?.version_id.clone())
    }

    fn record_execution(&self, entry: &HistoryEntry) -> Result<(), LifecycleError> {
        let mut g = self.lock()?;
        let mut oldest = None;
        while g.history.len() >= self.cap {
            oldest = g.history.pop_front();
        }
        // A full ring reuses the dropped entry's buffers for the new one.
        let entry = match oldest {
            Some(mut reused) => {
                reused.clone_from(entry);
                reused
            }
            None => entry.clone(),
        };
        g.history.push_back(entry);
        Ok(())
    }

    fn recent_history(&self, limit: usize) -> Result<Vec<HistoryEntry>, LifecycleError> {
        let g = self.lock()?;
        let skip = g.history.len().saturating_sub(limit);
        Ok(g.history.iter().skip(skip).cloned().collect())
    }

    fn history_len(&self) -> Result<usize, LifecycleError> {
        Ok(self.lock()?.history.len())
    }
}
