#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa evaluate --sandbox postgres` end to end through the real binary on a throwaway
//! PostgreSQL 15 cluster: all five phases, the SQL artifact committed on a good run and
//! rolled back when a runtime threshold breaks (checked by querying the table), state
//! and execution records in the `--db` file, a verifying audit chain, the DSN's
//! password kept out of every output, and clear refusals for bad setups. One cluster
//! per binary, so every scenario lives in the one test.

use assert_cmd::Command;
use cfa_test_support::pg::{PgCluster, SHOP_SEED};
use serde_json::Value;
use std::path::{Path, PathBuf};

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
const TARGET: &str = "silver_general";

fn catalog() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/catalog-columns.json")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `cfa evaluate APPROVE` on the postgres sandbox with the DSN in `CFA_PG_DSN`.
fn evaluate(dir: &Path, dsn: &str, extra: &[&str]) -> (i32, Value, String) {
    let c = catalog();
    let mut args = vec![
        "evaluate",
        APPROVE,
        "-c",
        c.as_str(),
        "--sandbox",
        "postgres",
        "--db",
        "life.db",
        "--audit-log",
        "audit.jsonl",
        "-f",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = Command::cargo_bin("cfa")
        .unwrap()
        .current_dir(dir)
        .env("CFA_PG_DSN", dsn)
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), v, stderr)
}

fn fault_codes(v: &Value) -> Vec<String> {
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn evaluate_on_postgres_commits_good_runs_and_rolls_back_broken_thresholds() {
    let pg = PgCluster::start().unwrap();
    pg.create_database("shop").unwrap();
    pg.psql("shop", SHOP_SEED).unwrap();
    let q = |sql: &str| pg.psql("shop", sql).unwrap().trim().to_owned();
    let rows = || q(&format!("SELECT count(*) FROM public.{TARGET}"));
    let dsn = pg.dsn("shop", Some("s3cret-pw"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // 1. A good run: five phases, the SQL backend, real rows committed.
    let (code, v, err) = evaluate(d, &dsn, &["--partition-start", "2026-01-01"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["state"], "approved");
    assert_eq!(
        v["phases_run"],
        serde_json::json!(["formalize", "govern", "generate", "execute", "validate"])
    );
    assert_eq!(v["artifact"]["backend"], "sql");
    let ex = &v["execution"];
    assert_eq!(ex["executor"], "postgres");
    assert_eq!(ex["publish_state"], "published");
    // nfe 1, 2, 3, 5 are in the partition; client 13 is not, so nfe 5 drops out.
    assert_eq!(ex["details"]["metrics"]["rows_output"], 3);
    assert!(ex["details"]["metrics"]["cost_dbu"].as_f64().unwrap() > 0.0);
    assert_eq!(rows(), "3");
    // Personal data is hashed on the way in, never copied.
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM public.{TARGET} t JOIN public.clientes c ON t.cpf_hash = c.cpf"
        )),
        "0"
    );
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = '{TARGET}' AND column_name IN ('cpf', 'email')"
        )),
        "0"
    );

    // The state registry and the execution record are in the --db file.
    let db = rusqlite::Connection::open(d.join("life.db")).unwrap();
    let state: String = db
        .query_row(
            "SELECT value_json FROM context_state WHERE key = ?1",
            [format!("dataset:{TARGET}")],
            |r| r.get(0),
        )
        .unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["state"], "published");
    assert_eq!(state["signature_hash"], v["signature_hash"]);
    let records: i64 = db
        .query_row("SELECT count(*) FROM execution_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(records, 1);

    // 2. New source data and a threshold it breaks: full rollback, the table unchanged.
    pg.psql(
        "shop",
        "INSERT INTO public.nfe VALUES (6, 10, 100, 60.00, '2026-01-09')",
    )
    .unwrap();
    let (code, v, err) = evaluate(
        d,
        &dsn,
        &[
            "--partition-start",
            "2026-01-01",
            "--max-rows",
            "3",
            "--failure-policy",
            "full_rollback",
        ],
    );
    assert_eq!(code, 5, "{v}\n{err}");
    assert_eq!(v["state"], "rolled_back");
    assert_eq!(v["execution"]["publish_state"], "rolled_back");
    assert_eq!(v["execution"]["details"]["metrics"]["rows_output"], 4);
    assert!(fault_codes(&v).contains(&"RUNTIME_CARDINALITY_ABOVE_MAXIMUM".to_owned()));
    assert_eq!(rows(), "3", "the rolled-back MERGE left nothing behind");
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM public.{TARGET} WHERE nfe_id = 6"
        )),
        "0"
    );

    // The same threshold from the config file, under the default failure policy.
    std::fs::write(
        d.join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: config-audit.jsonl\nexecution:\n  partition_start: '2026-01-01'\n  thresholds:\n    max_rows: 3\n",
    )
    .unwrap();
    let (code, v, err) = evaluate(d, &dsn, &[]);
    assert_eq!(code, 5, "{v}\n{err}");
    assert_eq!(v["state"], "quarantined");
    assert_eq!(rows(), "3");

    // 3. A threshold the run meets (flags beat the config): the new row is committed.
    let (code, v, err) = evaluate(d, &dsn, &["--max-rows", "10"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["state"], "approved");
    assert_eq!(rows(), "4");
    std::fs::remove_file(d.join("cfa.yaml")).unwrap();

    // 4. No partition start: refused before anything runs, naming the setting.
    pg.psql(
        "shop",
        "INSERT INTO public.nfe VALUES (7, 10, 100, 70.00, '2026-01-10')",
    )
    .unwrap();
    let (code, v, err) = evaluate(d, &dsn, &[]);
    assert_eq!(code, 4, "{v}\n{err}");
    assert_eq!(v["state"], "blocked");
    assert!(fault_codes(&v).contains(&"KERNEL_EXECUTION_FAILED".to_owned()));
    assert!(
        v["blocked_reason"]
            .as_str()
            .unwrap()
            .contains("cfa.partition_start"),
        "{v}"
    );
    assert_eq!(rows(), "4");

    // Every run is in one verifying chain, and the password is in none of it.
    let log = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert!(!log.contains("s3cret-pw"));
    assert_eq!(log.matches("\"final_decision\"").count(), 5);
    let verify = Command::cargo_bin("cfa")
        .unwrap()
        .current_dir(d)
        .args(["audit", "verify", "--file", "audit.jsonl"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // 5. Bad setups are clear errors that change nothing.
    let (code, _, err) = evaluate(d, &dsn, &["--partition-start", "2026-02-30"]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("not a date"), "{err}");
    let (code, _, err) = evaluate(d, &dsn, &["--backend", "pyspark"]);
    assert_eq!(code, 1);
    assert!(err.contains("sql backend"), "{err}");
    let closed = "host=127.0.0.1 port=1 user=postgres password=s3cret-pw connect_timeout=2";
    let (code, _, err) = evaluate(d, closed, &["--partition-start", "2026-01-01"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot create the postgres sandbox"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    let out = Command::cargo_bin("cfa")
        .unwrap()
        .current_dir(d)
        .env_remove("CFA_PG_DSN")
        .args(["evaluate", APPROVE, "--sandbox", "postgres"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dsn"));
    assert_eq!(rows(), "4");
    assert_eq!(
        std::fs::read_to_string(d.join("audit.jsonl"))
            .unwrap()
            .matches("\"final_decision\"")
            .count(),
        5,
        "refused setups write no audit events"
    );
}
