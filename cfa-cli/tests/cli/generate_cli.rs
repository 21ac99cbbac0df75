//! `cfa generate` and `cfa backend list` through the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::Path;

fn cfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
}

fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

fn catalog() -> Value {
    json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }})
}

fn write(dir: &Path, name: &str, v: &Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn backend_list_table_and_json() {
    let out = cfa()
        .args(["backend", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["dbt", "pyspark", "sql"]);
    assert!(text.lines().next().unwrap().starts_with("BACKEND"));
    let out = cfa()
        .args(["backend", "list", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[2]["name"], "sql");
    assert_eq!(arr[2]["supports_merge"], true);
    assert!(
        arr[1]["static_checks"]
            .as_array()
            .unwrap()
            .contains(&json!("STATIC_FORBIDDEN_COLLECT"))
    );
}

#[test]
fn generate_writes_files_and_reports_json_for_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let sig = write(dir.path(), "sig.json", &ok_sig());
    let cat = write(dir.path(), "catalog.json", &catalog());
    for (backend, main) in [
        ("pyspark", "silver_fiscal.py"),
        ("sql", "silver_fiscal.sql"),
        ("dbt", "models/silver_fiscal.sql"),
    ] {
        let out_dir = dir.path().join(format!("out-{backend}"));
        let out = cfa()
            .arg("generate")
            .arg("--signature")
            .arg(&sig)
            .arg("-c")
            .arg(&cat)
            .args(["-b", backend, "--format", "json", "--out"])
            .arg(&out_dir)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["backend"], backend);
        assert_eq!(v["static_validation"]["passed"], true);
        assert_eq!(v["static_validation"]["faults"], json!([]));
        let files = v["files"].as_array().unwrap();
        assert_eq!(files[0]["path"], main);
        for f in files {
            let on_disk =
                std::fs::read_to_string(out_dir.join(f["path"].as_str().unwrap())).unwrap();
            assert_eq!(on_disk, f["content"].as_str().unwrap());
        }
        if backend == "dbt" {
            for p in ["dbt_project.yml", "models/schema.yml", "models/sources.yml"] {
                assert!(out_dir.join(p).is_file(), "{p}");
            }
        }
        // No staging leftovers next to the output.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("cfa-tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // Writing again into the existing directory replaces the files.
        cfa()
            .arg("generate")
            .arg("-s")
            .arg(&sig)
            .arg("-c")
            .arg(&cat)
            .args(["-b", backend, "-o"])
            .arg(&out_dir)
            .assert()
            .success()
            .stdout(predicates::str::contains("static validation: passed"));
    }
}

#[test]
fn generate_reads_a_yaml_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let sig = write(dir.path(), "sig.json", &ok_sig());
    let yaml = "datasets:\n  nfe:\n    merge_keys: [nfe_id]\n    partition_column: processing_date\n    columns: [nfe_id, cliente_id, processing_date]\n  clientes:\n    pii_columns: [cpf]\n    merge_keys: [cliente_id]\n    columns: [cliente_id, cpf, email, processing_date]\n";
    let cat = dir.path().join("catalog.yaml");
    std::fs::write(&cat, yaml).unwrap();
    let out = dir.path().join("sql");
    cfa()
        .arg("generate")
        .arg("-s")
        .arg(&sig)
        .arg("-c")
        .arg(&cat)
        .args(["-b", "sql", "-o"])
        .arg(&out)
        .assert()
        .success();
    let sql = std::fs::read_to_string(out.join("silver_fiscal.sql")).unwrap();
    assert!(sql.contains("AS \"email_hash\""));
}

#[test]
fn hostile_identifier_exits_1_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = ok_sig();
    v["datasets"][1]["pii_columns"] = json!(["cpf", "email\"); import os; os.system(\"id"]);
    let sig = write(dir.path(), "sig.json", &v);
    for backend in ["pyspark", "sql", "dbt"] {
        let out = dir.path().join(format!("out-{backend}"));
        cfa()
            .arg("generate")
            .arg("-s")
            .arg(&sig)
            .arg("-c")
            .arg(write(dir.path(), "c.json", &catalog()))
            .args(["-b", backend, "-o"])
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicates::str::contains("refusing unsafe identifier"))
            .stderr(predicates::str::contains(
                "signature.datasets[1].pii_columns[1]",
            ));
        assert!(!out.exists(), "{backend} wrote {}", out.display());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sig = write(dir.path(), "sig.json", &ok_sig());
    let out = dir.path().join("out");
    cfa()
        .arg("generate")
        .arg("-s")
        .arg(&sig)
        .args(["-b", "spark-sql", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "unknown backend 'spark-sql' (registered: dbt, pyspark, sql)",
        ));
    // A catalog that grounds the join (an explicit join key) but lists no columns.
    let keys_only = write(
        dir.path(),
        "keys.json",
        &json!({"datasets": {"clientes": {"join_keys": {"nfe": ["cliente_id"]}}}}),
    );
    cfa()
        .arg("generate")
        .arg("-s")
        .arg(&sig)
        .arg("-c")
        .arg(&keys_only)
        .args(["-b", "sql", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "needs the column list of dataset 'nfe'",
        ));
    let bad = write(
        dir.path(),
        "bad.json",
        &json!({"domain": "", "intent": "i", "target_layer": "platinum", "datasets": []}),
    );
    cfa()
        .arg("generate")
        .arg("-s")
        .arg(&bad)
        .args(["-b", "pyspark", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "domain: is required and must be a non-empty string",
        ))
        .stderr(predicates::str::contains(
            "target_layer: must be one of ['bronze', 'gold', 'silver']",
        ));
    cfa()
        .arg("generate")
        .arg("-s")
        .arg(dir.path().join("missing.json"))
        .args(["-b", "pyspark", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("cannot read"));
    assert!(!out.exists());
}
