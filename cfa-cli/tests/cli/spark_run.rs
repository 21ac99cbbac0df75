//! Generated PySpark on a real local Spark session (`local[2]`), through the real
//! binary. Needs the Spark virtualenv (scripts/spark-setup.sh) named in
//! `CFA_SPARK_PYTHON` and Java 17, so these tests are `#[ignore]`d: `cargo xtask spark`
//! runs them (`--run-ignored only -E 'test(/spark/)'`), never `ci` or the quick loop.
//!
//! 1. `cfa generate` writes the spark-mode merge (silver) and append (bronze) scripts and
//!    their Delta-mode twins, and a partitioned bronze overwrite;
//!    `tests/spark/run_generated.py` runs the spark-mode ones in
//!    one Spark session over parquet fixtures and checks the target read back (rows,
//!    PII as SHA-256 hex, partitions, merge semantics on a second run, a moved key
//!    refused, `--stage`; the overwrite idempotent and bounded by the partition start),
//!    and checks the Delta scripts' calls against delta-spark's API.
//! 2. `cfa evaluate --sandbox spark` on those fixtures: a run breaking a runtime
//!    threshold leaves no target; a good run commits it, with real metrics, and the
//!    audit chain verifies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn python() -> String {
    std::env::var("CFA_SPARK_PYTHON").unwrap_or_else(|_| {
        panic!("CFA_SPARK_PYTHON must name the Spark virtualenv's python: run `cargo xtask spark`")
    })
}

fn catalog() -> PathBuf {
    cfa_test_support::example("catalog-columns.json")
}

/// `cfa generate` of `sig` with the pyspark backend in `dir` (whose cfa.yaml picks the
/// mode); returns the script.
fn generate(dir: &Path, sig: &Value, target: &str) -> PathBuf {
    std::fs::write(dir.join("sig.json"), sig.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(dir)
        .args([
            "generate", "-s", "sig.json", "-b", "pyspark", "--out", target, "-c",
        ])
        .arg(catalog())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(target).join(format!("{target}.py"))
}

fn bronze() -> Value {
    json!({"domain": "fiscal", "intent": "ingest", "target_layer": "bronze",
        "datasets": [{"name": "clientes", "pii_columns": ["cpf", "email"], "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": true, "merge_key_required": true, "partition_by": []},
        "execution_context": {"policy_bundle_version": "v1.0", "catalog_snapshot_version": "c1",
                              "context_registry_version_id": "v1"}})
}

/// Bronze over a partitioned dataset: an `overwrite_partition` load.
fn bronze_partitioned() -> Value {
    let mut v = bronze();
    v["datasets"][0]["partition_column"] = json!("processing_date");
    v["constraints"] = json!({"no_pii_raw": true, "partition_by": ["processing_date"]});
    v
}

fn partitions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains('='))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
#[ignore = "needs the Spark virtualenv and Java 17: cargo xtask spark"]
fn spark_generated_scripts_run_and_the_spark_sandbox_commits_only_validated_runs() {
    let py = python();
    let root = tempfile::tempdir().unwrap();
    let (spark_dir, delta_dir) = (root.path().join("spark"), root.path().join("delta"));
    for (d, extra) in [
        (&spark_dir, "backends:\n  pyspark: {mode: spark}\n"),
        (&delta_dir, ""),
    ] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(
            d.join("cfa.yaml"),
            format!("storage:\n  backend: jsonl\n  path: audit.jsonl\n{extra}"),
        )
        .unwrap();
    }
    let ok = cfa_test_support::ok_signature();
    let merge = generate(&spark_dir, &ok, "silver_fiscal");
    let append = generate(&spark_dir, &bronze(), "bronze_clientes");
    let overwrite_dir = spark_dir.join("partitioned");
    std::fs::create_dir_all(&overwrite_dir).unwrap();
    let overwrite = generate(&overwrite_dir, &bronze_partitioned(), "bronze_clientes");
    assert!(
        std::fs::read_to_string(&overwrite)
            .unwrap()
            .contains("| write_mode overwrite_partition |")
    );
    let delta_merge = generate(&delta_dir, &ok, "silver_fiscal");
    let delta_append = generate(&delta_dir, &bronze(), "bronze_clientes");

    // 1. The scripts on Spark, and the Delta scripts against delta-spark's API.
    let work = root.path().join("work");
    let warehouse = root.path().join("warehouse");
    std::fs::create_dir_all(&work).unwrap();
    let harness = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/spark/run_generated.py");
    let out = std::process::Command::new(&py)
        .arg(&harness)
        .arg("--work")
        .arg(&work)
        .arg("--merge")
        .arg(&merge)
        .arg("--append")
        .arg(&append)
        .arg("--overwrite")
        .arg(&overwrite)
        .arg("--delta")
        .arg(&delta_merge)
        .arg("--delta")
        .arg(&delta_append)
        .arg("--warehouse")
        .arg(&warehouse)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("spark_checks "))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no spark_checks line:\n{stdout}\n{stderr}"));
    eprintln!("spark checks: {summary}");
    assert_eq!(summary["checks"], 34, "{summary}");
    assert_eq!(summary["delta_calls"], 6, "{summary}");

    // 2. `cfa evaluate --sandbox spark` over the fixtures the harness wrote.
    let run = |extra: &[&str], config: &str| {
        let dir = root.path().join("eval");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cfa.yaml"), config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
            .current_dir(&dir)
            .env("CFA_SPARK_PYTHON", &py)
            .args(["evaluate", APPROVE, "--sandbox", "spark", "-f", "json"])
            .args([
                "--partition-start",
                "2026-01-01",
                "--audit-log",
                "audit.jsonl",
                "-c",
            ])
            .arg(catalog())
            .args(extra)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap(), v, err)
    };
    let target = warehouse.join("silver_general");
    let w = warehouse.to_str().unwrap();
    let plain = "storage:\n  backend: jsonl\n  path: audit.jsonl\n";
    let (code, v, err) = run(&["--spark-warehouse", w, "--max-rows", "1"], plain);
    assert_ne!(code, 0, "{v}\n{err}");
    assert_eq!(
        v["execution"]["details"]["runtime_validation"], false,
        "{v}"
    );
    assert_ne!(v["execution"]["publish_state"], "published", "{v}");
    assert_eq!(
        v["execution"]["details"]["metrics"]["rows_output"], 3,
        "{v}"
    );
    assert!(
        !target.exists(),
        "a run that failed validation wrote the target"
    );

    // The warehouse from the config this time.
    let config = format!("{plain}execution:\n  spark:\n    warehouse: {w}\n");
    let (code, v, err) = run(&[], &config);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["artifact"]["backend"], "pyspark");
    let ex = &v["execution"];
    assert_eq!(ex["executor"], "spark", "{v}");
    assert_eq!(ex["publish_state"], "published", "{v}");
    let m = &ex["details"]["metrics"];
    assert_eq!(m["rows_output"], 3, "{v}");
    assert!(m["duration_seconds"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(m["null_counts"]["email_hash"], 1, "{v}");
    let schema: Vec<&str> = m["output_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        schema.contains(&"cpf_hash") && !schema.contains(&"cpf"),
        "{v}"
    );
    assert_eq!(
        partitions(&target),
        ["processing_date=2026-01-02", "processing_date=2026-01-03"]
    );
    assert!(
        !warehouse.join(".cfa-runs").exists()
            || std::fs::read_dir(warehouse.join(".cfa-runs"))
                .unwrap()
                .next()
                .is_none(),
        "run directories are removed"
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(root.path().join("eval"))
        .args(["audit", "verify", "--file", "audit.jsonl"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
