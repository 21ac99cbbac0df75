//! Where a log lives: a JSONL file or (feature `sqlite`) a SQLite database, named by path.

use crate::error::AuditError;
use crate::jsonl::JsonlStore;
#[cfg(feature = "sqlite")]
use crate::sqlite::SqliteStore;
use crate::store::{AuditStore, Durability};
use std::path::PathBuf;

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// A JSONL log file (`--audit-log FILE`).
    Jsonl(PathBuf),
    /// A SQLite database (`--audit-db FILE`; feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

impl AuditTarget {
    /// Opens (or creates) the store the target names, for appending.
    pub fn open(&self, durability: Durability) -> Result<Box<dyn AuditStore>, AuditError> {
        Ok(match self {
            AuditTarget::Jsonl(p) => Box::new(JsonlStore::open(p, durability)?),
            #[cfg(feature = "sqlite")]
            AuditTarget::Sqlite(p) => Box::new(SqliteStore::open(p, durability)?),
        })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::NewEvent;

    #[test]
    fn both_kinds_open_and_append() {
        let dir = tempfile::tempdir().unwrap();
        for target in [
            AuditTarget::Jsonl(dir.path().join("a.jsonl")),
            AuditTarget::Sqlite(dir.path().join("a.db")),
        ] {
            let store = target.open(Durability::Always).unwrap();
            store
                .append(NewEvent::new(
                    "i",
                    "s",
                    "t",
                    "o",
                    "2026-01-01T00:00:00+00:00",
                ))
                .unwrap();
            drop(store);
            assert_eq!(target.open(Durability::Never).unwrap().len().unwrap(), 1);
        }
    }
}
