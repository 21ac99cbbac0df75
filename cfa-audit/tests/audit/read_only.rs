//! Reading an audit database or log never writes: no creation, no migration, no WAL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cfa_audit::checkpoint::verify_target;
use cfa_audit::{
    AuditError, AuditStore, AuditTarget, Durability, NewEvent, SqliteStore, VerifyOptions,
};
use std::path::Path;

fn snapshot(p: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(p).unwrap(),
        std::fs::metadata(p).unwrap().modified().unwrap(),
    )
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn missing_database_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.db");
    let e = SqliteStore::open_read_only(&p).unwrap_err();
    assert!(matches!(e, AuditError::Io(_)), "{e}");
    assert!(e.to_string().contains("no such file"), "{e}");
    let e = verify_target(
        &AuditTarget::Sqlite(p.clone()),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn empty_text_and_foreign_files_are_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("__init__.py");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("readme.md");
    std::fs::write(&text, b"# hello\nnot a database, only prose\n".repeat(10)).unwrap();
    let foreign = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    for (p, why) in [
        (&empty, "no audit_events table"),
        (&text, "not a SQLite database"),
        (&foreign, "no audit_events table"),
    ] {
        let before = snapshot(p);
        let e = SqliteStore::open_read_only(p).unwrap_err();
        assert!(matches!(e, AuditError::Foreign(_)), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("is not a CFA audit database"), "{msg}");
        assert!(msg.contains(why), "{msg}");
        let again = SqliteStore::open_existing(p).unwrap_err();
        assert_eq!(again.to_string(), msg);
        assert_eq!(snapshot(p), before, "{} changed", p.display());
    }
    assert_eq!(
        entries(dir.path()),
        ["__init__.py", "other.db", "readme.md"]
    );
}

#[test]
fn an_audit_database_verifies_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.db");
    {
        let s = SqliteStore::open(&p, Durability::Always).unwrap();
        s.append(NewEvent::new(
            "i1",
            "stage",
            "t",
            "ok",
            "2026-01-01T00:00:00",
        ))
        .unwrap();
    }
    let before = snapshot(&p);
    let s = SqliteStore::open_read_only(&p).unwrap();
    let report = s.verify(&VerifyOptions::default()).unwrap();
    assert!(report.intact());
    assert_eq!(report.events, 1);
    assert!(
        s.append(NewEvent::new(
            "i2",
            "stage",
            "t",
            "ok",
            "2026-01-01T00:00:01"
        ))
        .is_err()
    );
    drop(s);
    assert_eq!(snapshot(&p), before);
}
