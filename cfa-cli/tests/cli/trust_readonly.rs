//! Read commands never write: `cfa lifecycle list|evaluate`, `cfa storage stats` and
//! `cfa audit verify|show` against an empty file, an unrelated SQLite database and a
//! missing path give a clear error naming the file, exit 1, and leave the file
//! byte-identical (and a missing file uncreated).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn cfa() -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.env_remove("CFA_POLICY_BUNDLE");
    c
}

fn snapshot(p: &Path) -> (Vec<u8>, SystemTime) {
    (
        std::fs::read(p).unwrap(),
        std::fs::metadata(p).unwrap().modified().unwrap(),
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// stderr with miette's frame and line wrapping removed.
fn flat(text: &str) -> String {
    text.replace(['│', '×'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The folder after reading a WAL-mode database: SQLite readers of a WAL database
/// need its `-shm` index (and `-wal`), which they may create beside it; nothing else.
fn listing_without_wal_index(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| !n.ends_with("-shm") && !n.ends_with("-wal"))
        .collect()
}

struct Files {
    dir: tempfile::TempDir,
    empty: PathBuf,
    foreign: PathBuf,
    missing: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("__init__.py");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
            .unwrap();
    }
    let missing = dir.path().join("nope.db");
    Files {
        dir,
        empty,
        foreign,
        missing,
    }
}

/// Runs `args` + the file; it must fail with code 1 and `expect` (and the file's name)
/// on stderr, leaving every file of the folder as it was.
fn refused(args: &[&str], file: &Path, expect: &str, f: &Files) {
    let before: Vec<_> = [&f.empty, &f.foreign].map(|p| snapshot(p)).into();
    let names = listing(f.dir.path());
    let out = cfa()
        .current_dir(f.dir.path())
        .args(args)
        .arg(file)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = flat(&String::from_utf8_lossy(&out.stderr));
    assert!(err.contains(expect), "{args:?} {}: {err}", file.display());
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{args:?}: error names the file: {err}");
    let after: Vec<_> = [&f.empty, &f.foreign].map(|p| snapshot(p)).into();
    assert_eq!(before, after, "{args:?} {} changed a file", file.display());
    assert_eq!(listing(f.dir.path()), names, "{args:?} created a file");
}

#[test]
fn lifecycle_list_and_evaluate_refuse_foreign_and_missing_files() {
    let f = files();
    for args in [
        &["lifecycle", "list", "--db"][..],
        &["lifecycle", "evaluate", "--db"][..],
    ] {
        refused(args, &f.empty, "is not a CFA lifecycle database", &f);
        refused(args, &f.foreign, "is not a CFA lifecycle database", &f);
        refused(
            args,
            &f.foreign,
            "no execution_records or skill_records table",
            &f,
        );
        refused(args, &f.missing, "state database not found", &f);
    }
}

#[test]
fn lifecycle_list_leaves_a_real_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    {
        let d = cfa_lifecycle::LifecycleDb::open(&db).unwrap();
        d.skill_upsert(&cfa_lifecycle::SkillRecord::new("aaaa1111"))
            .unwrap();
    }
    let before = snapshot(&db);
    let names = listing(dir.path());
    cfa()
        .args(["lifecycle", "list", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicates::str::contains("Lifecycle skills (1):"));
    assert_eq!(snapshot(&db), before);
    assert_eq!(listing_without_wal_index(dir.path()), names);
}

#[test]
fn storage_stats_refuses_foreign_and_missing_files() {
    let f = files();
    refused(
        &["storage", "stats", "--db"],
        &f.empty,
        "is not a CFA database",
        &f,
    );
    refused(
        &["storage", "stats", "--db"],
        &f.foreign,
        "is not a CFA database",
        &f,
    );
    refused(
        &["storage", "stats", "--db"],
        &f.missing,
        "database not found",
        &f,
    );
    // The write commands refuse a foreign database too, before touching it.
    refused(
        &["storage", "vacuum", "--db"],
        &f.foreign,
        "is not a CFA database",
        &f,
    );
    refused(
        &["storage", "cleanup", "--before", "2030-01-01", "--db"],
        &f.foreign,
        "is not a CFA database",
        &f,
    );
}

#[test]
fn storage_stats_leaves_a_real_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    drop(cfa_lifecycle::LifecycleDb::open(&db).unwrap());
    let before = snapshot(&db);
    let names = listing(dir.path());
    cfa()
        .args(["storage", "stats", "-f", "json", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicates::str::contains("\"audit_events_count\": 0"));
    assert_eq!(snapshot(&db), before);
    assert_eq!(listing_without_wal_index(dir.path()), names);
}

#[test]
fn audit_verify_and_show_refuse_foreign_and_missing_databases() {
    let f = files();
    for args in [
        &["audit", "verify", "--db"][..],
        &["audit", "show", "-i", "x", "--db"][..],
    ] {
        refused(args, &f.empty, "is not a CFA audit database", &f);
        refused(args, &f.foreign, "no audit_events table", &f);
        refused(args, &f.missing, "no such file", &f);
    }
    // Appending to an existing file that is not an audit database is refused too.
    for file in [&f.empty, &f.foreign] {
        refused(
            &[
                "audit",
                "append",
                "--intent-id",
                "i",
                "--stage",
                "s",
                "--event-type",
                "t",
                "--outcome",
                "o",
                "--db",
            ],
            file,
            "is not a CFA audit database",
            &f,
        );
    }
    // A JSONL log is opened for reading only: a missing one is not created.
    for args in [
        &["audit", "verify", "--file"][..],
        &["audit", "show", "-i", "x", "--file"][..],
    ] {
        refused(args, &f.dir.path().join("audit.jsonl"), "No such file", &f);
    }
}

#[test]
fn audit_verify_leaves_a_real_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    cfa()
        .args([
            "audit",
            "append",
            "--intent-id",
            "i1",
            "--stage",
            "s",
            "--event-type",
            "t",
            "--outcome",
            "ok",
            "--db",
        ])
        .arg(&db)
        .assert()
        .success();
    let before = snapshot(&db);
    let names = listing(dir.path());
    cfa()
        .args(["audit", "verify", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicates::str::contains("Chain INTACT (1 events total)"));
    cfa()
        .args(["audit", "show", "-i", "i1", "--db"])
        .arg(&db)
        .assert()
        .success();
    assert_eq!(snapshot(&db), before);
    assert_eq!(listing_without_wal_index(dir.path()), names);
}

#[test]
fn audit_verify_refuses_a_fifo_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.jsonl");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for args in [
        &["audit", "verify", "--file"][..],
        &["audit", "show", "-i", "x", "--file"][..],
    ] {
        let out = cfa()
            .args(args)
            .arg(&fifo)
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(1)
            .get_output()
            .clone();
        let err = flat(&String::from_utf8_lossy(&out.stderr));
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains("audit.jsonl"), "{err}");
    }
}

#[test]
fn storage_stats_of_a_folder_skips_a_fifo_named_like_a_log() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.path().join("audit_x.jsonl"))
            .status()
            .unwrap()
            .success()
    );
    let names = listing(dir.path());
    cfa()
        .args(["storage", "stats", "-f", "json", "--dir"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicates::str::contains("\"audit_events_count\": 0"));
    assert_eq!(listing(dir.path()), names);
}
