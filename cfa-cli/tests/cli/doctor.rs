//! `cfa doctor` through the real binary: one line per check, `-f json`, exit 1 only
//! when a check fails, nothing written, the DSN never printed. `doctor_pg_…` starts a
//! throwaway PostgreSQL (skipped by the quick profile).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Run {
    code: i32,
    stdout: String,
}

fn doctor(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_PG_DSN")
        .arg("doctor")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
    }
}

/// check name → (status, detail, fix) from `-f json`.
fn checks(r: &Run) -> BTreeMap<String, (String, String, Option<String>)> {
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(v["ok"], r.code == 0, "{v}");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap().to_owned(),
                    c["fix"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

fn cfa(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c == 0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `cfa init` and one recorded decision: a config, catalog, bundle and audit log.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path(), &["init"]);
    cfa(
        dir.path(),
        &[
            "evaluate",
            "Join nfe with clientes daily, anonymize pii, into silver",
        ],
    );
    assert!(dir.path().join(".cfa/audit.jsonl").is_file());
    dir
}

#[test]
fn a_fresh_init_is_healthy_and_doctor_writes_nothing() {
    let dir = initialised();
    let d = dir.path();
    let before = snapshot(d);
    let r = doctor(d, &["-f", "json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let c = checks(&r);
    let names: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "audit",
            "bundle",
            "catalog",
            "config",
            "lifecycle",
            "postgres"
        ]
    );
    for name in ["config", "catalog", "bundle", "audit"] {
        assert_eq!(c[name].0, "ok", "{name}: {:?}", c[name]);
    }
    assert!(c["audit"].1.contains("chain intact"), "{:?}", c["audit"]);
    assert!(
        c["catalog"].1.contains("(3 datasets)"),
        "{:?}",
        c["catalog"]
    );
    // init names dsn_env with the mock sandbox: an unset variable is only a warning.
    assert_eq!(c["postgres"].0, "warn");
    assert!(
        c["postgres"]
            .2
            .as_deref()
            .unwrap()
            .contains("export CFA_PG_DSN=")
    );
    assert_eq!(snapshot(d), before, "doctor changed a file");

    // The summary: one line per check, the fix under the warning.
    let r = doctor(d, &[], &[]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ok    config     "), "{}", r.stdout);
    assert!(
        lines.iter().any(|l| l.starts_with("warn  postgres")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("fix: export CFA_PG_DSN="))
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("doctor: 4 ok, 1 warn, 0 fail"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_broken_config_fails_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfa.yaml");
    std::fs::write(&cfg, "storage:\n  backend: jsonl\n  bogus: 1\n").unwrap();
    let r = doctor(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "-f", "json"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let c = checks(&r);
    assert_eq!(c["config"].0, "fail");
    assert!(c["config"].1.contains("cfa.yaml:3:3"), "{:?}", c["config"]);
    assert!(c["config"].1.contains("bogus"), "{:?}", c["config"]);
    assert!(c["config"].2.is_some());
    // The other checks still ran, on the defaults.
    assert_eq!(c["bundle"].0, "ok");
}

#[test]
fn a_tampered_audit_log_fails_and_is_left_as_it_was() {
    let dir = initialised();
    let d = dir.path();
    let log = d.join(".cfa/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replacen("\"outcome\": \"ok\"", "\"outcome\": \"tampered\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&log, &tampered).unwrap();
    let r = doctor(d, &["-f", "json"], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let c = checks(&r);
    assert_eq!(c["audit"].0, "fail");
    assert!(
        c["audit"].1.contains("chain BROKEN at event 0"),
        "{:?}",
        c["audit"]
    );
    assert!(
        c["audit"]
            .2
            .as_deref()
            .unwrap()
            .contains("cfa audit verify --file")
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), tampered);
}

#[test]
fn a_missing_catalog_and_a_broken_bundle_fail_with_their_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cfa.yaml"),
        "defaults:\n  catalog: nowhere.json\n  policy_bundle: bundle.yaml\n",
    )
    .unwrap();
    std::fs::write(d.join("bundle.yaml"), "policy_bundle:\n  rules: [1\n").unwrap();
    let r = doctor(d, &["-f", "json"], &[]);
    assert_eq!(r.code, 1);
    let c = checks(&r);
    assert_eq!(c["catalog"].0, "fail");
    assert!(
        c["catalog"]
            .1
            .contains("nowhere.json, which does not exist"),
        "{:?}",
        c["catalog"]
    );
    assert_eq!(c["bundle"].0, "fail");
    assert!(c["bundle"].1.contains("bundle.yaml:"), "{:?}", c["bundle"]);
    assert!(
        c["bundle"]
            .2
            .as_deref()
            .unwrap()
            .contains("defaults.policy_bundle")
    );
    std::fs::write(d.join("nowhere.json"), "{\"datasets\": 3}").unwrap();
    let c = checks(&doctor(d, &["-f", "json"], &[]));
    assert_eq!(c["catalog"].0, "fail");
    assert!(
        c["catalog"]
            .2
            .as_deref()
            .unwrap()
            .contains("cfa catalog validate")
    );
}

#[test]
fn the_lifecycle_database_opens_read_only_and_its_schema_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("state.db");
    std::fs::write(
        d.join("cfa.yaml"),
        "storage:\n  backend: sqlite\n  path: state.db\n",
    )
    .unwrap();
    // Not created yet: fine.
    let c = checks(&doctor(d, &["-f", "json"], &[]));
    assert_eq!(c["lifecycle"].0, "ok");
    assert!(
        c["lifecycle"].1.contains("not created yet"),
        "{:?}",
        c["lifecycle"]
    );
    assert!(!db.exists(), "doctor created the database");

    drop(cfa_lifecycle::LifecycleDb::open(&db).unwrap());
    let c = checks(&doctor(d, &["-f", "json"], &[]));
    assert_eq!(c["lifecycle"].0, "ok", "{:?}", c["lifecycle"]);
    assert!(
        c["lifecycle"].1.contains("schema v1 (current)"),
        "{:?}",
        c["lifecycle"]
    );
    assert_eq!(c["audit"].0, "ok", "{:?}", c["audit"]);

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("INSERT INTO _schema (version) VALUES (99)", [])
        .unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    let r = doctor(d, &["-f", "json"], &[]);
    assert_eq!(r.code, 1);
    let c = checks(&r);
    assert_eq!(c["lifecycle"].0, "fail");
    assert!(
        c["lifecycle"].1.contains("schema v99 is newer"),
        "{:?}",
        c["lifecycle"]
    );
    assert_eq!(std::fs::read(&db).unwrap(), before);

    std::fs::write(&db, b"not a database at all, just bytes......").unwrap();
    let c = checks(&doctor(d, &["-f", "json"], &[]));
    assert_eq!(c["lifecycle"].0, "fail", "{:?}", c["lifecycle"]);
}

#[test]
fn an_unset_or_unreachable_dsn_fails_without_printing_the_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cfa.yaml"),
        "execution:\n  sandbox: postgres\n  dsn_env: CFA_DOCTOR_TEST_DSN\n",
    )
    .unwrap();
    let r = doctor(d, &["-f", "json"], &[]);
    assert_eq!(r.code, 1);
    let c = checks(&r);
    assert_eq!(c["postgres"].0, "fail");
    assert!(
        c["postgres"].1.contains("$CFA_DOCTOR_TEST_DSN is not set"),
        "{:?}",
        c["postgres"]
    );
    assert!(
        c["postgres"]
            .2
            .as_deref()
            .unwrap()
            .starts_with("export CFA_DOCTOR_TEST_DSN="),
        "{:?}",
        c["postgres"]
    );

    // A closed port: the connection fails fast, and the secret stays secret.
    let dsn = "host=127.0.0.1 port=1 user=doctor password=hunter2-secret dbname=nope";
    for format in ["json", "summary"] {
        let r = doctor(
            d,
            &["-f", format, "--timeout", "2"],
            &[("CFA_DOCTOR_TEST_DSN", dsn)],
        );
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert!(!r.stdout.contains("hunter2"), "{}", r.stdout);
        assert!(
            r.stdout
                .contains("cannot connect through $CFA_DOCTOR_TEST_DSN"),
            "{}",
            r.stdout
        );
    }
    // A DSN that does not parse: its text is not echoed either.
    let r = doctor(
        d,
        &["-f", "json"],
        &[("CFA_DOCTOR_TEST_DSN", "postgresql://u:hunter2@[bad")],
    );
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains("hunter2"), "{}", r.stdout);
}

#[test]
fn doctor_pg_connects_to_a_real_server() {
    let pg = cfa_test_support::pg::PgCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cfa.yaml"),
        "execution:\n  sandbox: postgres\n  dsn_env: CFA_DOCTOR_TEST_DSN\n",
    )
    .unwrap();
    let dsn = pg.dsn("postgres", Some("s3cret-pw"));
    let r = doctor(d, &["-f", "json"], &[("CFA_DOCTOR_TEST_DSN", &dsn)]);
    let c = checks(&r);
    assert_eq!(c["postgres"].0, "ok", "{:?}", c["postgres"]);
    assert!(
        c["postgres"].1.contains("(PostgreSQL 1"),
        "{:?}",
        c["postgres"]
    );
    assert!(!r.stdout.contains("s3cret"));
}
