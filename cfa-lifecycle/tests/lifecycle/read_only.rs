//! Read-only opening of a lifecycle database: nothing is created, migrated or changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cfa_lifecycle::{ExecutionRecord, LifecycleDb, LifecycleError, time::parse};
use std::path::Path;

fn snapshot(p: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(p).unwrap(),
        std::fs::metadata(p).unwrap().modified().unwrap(),
    )
}

fn foreign_reason(r: Result<LifecycleDb, LifecycleError>) -> String {
    match r {
        Err(LifecycleError::Foreign { reason, .. }) => reason,
        other => panic!("expected a foreign-file error, got {other:?}"),
    }
}

#[test]
fn missing_file_is_not_found_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.db");
    for r in [
        LifecycleDb::open_read_only(&p),
        LifecycleDb::open_existing(&p),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, LifecycleError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("no such file"), "{e}");
    }
    assert!(!p.exists());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn empty_text_and_foreign_files_are_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("__init__.py");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        b"this is not a database at all, just some words\n".repeat(20),
    )
    .unwrap();
    let foreign = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    for p in [&empty, &text, &foreign] {
        let before = snapshot(p);
        let reason = foreign_reason(LifecycleDb::open_read_only(p));
        let again = foreign_reason(LifecycleDb::open_existing(p));
        assert_eq!(reason, again);
        assert_eq!(snapshot(p), before, "{} changed", p.display());
    }
    assert!(foreign_reason(LifecycleDb::open_read_only(&text)).contains("not a SQLite database"));
    assert!(foreign_reason(LifecycleDb::open_read_only(&foreign)).contains("skill_records"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "no side files: {names:?}");
}

#[test]
fn a_lifecycle_database_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cfa.db");
    {
        let db = LifecycleDb::open(&p).unwrap();
        db.execution_append(&ExecutionRecord::new(
            "abc",
            parse("2026-01-01T00:00:00Z").unwrap(),
        ))
        .unwrap();
    }
    let before = snapshot(&p);
    let db = LifecycleDb::open_read_only(&p).unwrap();
    assert_eq!(db.execution_load(None).unwrap().len(), 1);
    assert!(db.skill_load_all().unwrap().is_empty());
    let write = db.execution_append(&ExecutionRecord::new(
        "def",
        parse("2026-01-02T00:00:00Z").unwrap(),
    ));
    assert!(write.is_err());
    drop(db);
    assert_eq!(snapshot(&p), before);
    // The checked writer opens a real database.
    let db = LifecycleDb::open_existing(&p).unwrap();
    assert_eq!(db.execution_load(None).unwrap().len(), 1);
}
