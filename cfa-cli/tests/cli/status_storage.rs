#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa status -f json` carries the reference's `storage` and `storage_stats` keys
//! beside its own, for a jsonl and a sqlite storage, and reads nothing it would change.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    c
}

fn status(dir: &Path) -> Value {
    let out = cfa(dir).args(["status", "-f", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn storage_and_storage_stats_beside_our_keys() {
    let dir = tempfile::tempdir().unwrap();
    let v = status(dir.path());
    assert_eq!(v["config_found"], false);
    assert!(
        v["storage"].is_null() && v["storage_stats"].is_null(),
        "{v}"
    );
    assert!(v.get("settings").is_some());

    cfa(dir.path()).arg("init").assert().code(0);
    let v = status(dir.path());
    // ours are still there
    assert_eq!(v["resolved"]["storage"]["backend"], "jsonl");
    assert!(v["config"].is_object());
    // the reference's: the config's storage section, and no stats before the log exists
    assert_eq!(v["storage"]["backend"], "jsonl");
    assert_eq!(v["storage"]["retention_days"], 90);
    assert!(
        v["storage"]["path"]
            .as_str()
            .unwrap()
            .ends_with(".cfa/audit.jsonl"),
        "{v}"
    );
    assert!(v["storage_stats"].is_null(), "{v}");
    assert!(!dir.path().join(".cfa/audit.jsonl").exists());

    // one decision later the stats count its events
    let out = cfa(dir.path())
        .args([
            "evaluate",
            "Join nfe with clientes daily, anonymize pii, into silver",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let eval: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = eval["audit_event_hashes"].as_array().unwrap().len();
    let log = std::fs::read(dir.path().join(".cfa/audit.jsonl")).unwrap();
    let v = status(dir.path());
    let s = &v["storage_stats"];
    assert_eq!(s["backend"], "jsonl");
    assert_eq!(s["audit_events_count"], events);
    assert_eq!(s["file_size_bytes"], log.len());
    for k in [
        "path",
        "execution_records_count",
        "skill_records_count",
        "metrics_count",
        "oldest_record",
        "newest_record",
    ] {
        assert!(s.get(k).is_some(), "{k}: {s}");
    }
    assert!(s["oldest_record"].is_string());
    assert_eq!(
        std::fs::read(dir.path().join(".cfa/audit.jsonl")).unwrap(),
        log
    );
}

#[test]
fn sqlite_storage_stats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "version: \"1.0\"\nstorage:\n  backend: sqlite\n  path: state/cfa.db\n",
    )
    .unwrap();
    let v = status(dir.path());
    assert_eq!(v["storage"]["backend"], "sqlite");
    assert!(v["storage_stats"].is_null(), "{v}");
    assert!(
        !dir.path().join("state/cfa.db").exists(),
        "status created the db"
    );
    let out = cfa(dir.path())
        .args(["evaluate", "Load nfe daily into bronze", "-c"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = status(dir.path());
    let s = &v["storage_stats"];
    assert_eq!(s["backend"], "sqlite", "{v}");
    assert!(s["audit_events_count"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(s["execution_records_count"], 1, "{v}");
    assert!(s["newest_record"].is_string(), "{v}");
}
