//! The dbt backend checked by dbt itself: `scripts/dbt-setup.sh` provides dbt-core +
//! dbt-postgres in a cached virtualenv (a pip failure fails this test), `cfa generate -b
//! dbt` writes the project, and `dbt build` (models + data tests) passes against a
//! throwaway PostgreSQL 15 — twice, the second run taking the incremental MERGE path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::json;
use std::path::{Path, PathBuf};

const SEED: &str = "
CREATE TABLE public.nfe (nfe_id int, cliente_id int, valor numeric(10,2), processing_date date);
CREATE TABLE public.clientes (cliente_id int, nome text, cpf text, email text, processing_date date);
INSERT INTO public.nfe VALUES
  (1, 10, 10.50, '2026-01-05'), (2, 11, 20.00, '2026-01-06'),
  (3, 10, 30.00, '2026-01-07'), (4, 12, 40.00, '2025-12-01');
INSERT INTO public.clientes VALUES
  (10, 'Ana', '12345678900', 'ana@example.com', '2026-01-02'),
  (11, 'Bruno', '98765432100', 'bruno@example.com', '2026-01-03'),
  (12, 'Carla', '11122233344', 'carla@example.com', '2026-01-03');
";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn dbt_executable() -> PathBuf {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/dbt-setup.sh"))
        .output()
        .expect("cannot run scripts/dbt-setup.sh");
    assert!(
        out.status.success(),
        "scripts/dbt-setup.sh failed (pip must reach PyPI):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let path = PathBuf::from(stdout.lines().last().unwrap().trim());
    assert!(path.is_file(), "dbt not found at {}", path.display());
    path
}

fn dbt_build(dbt: &Path, work: &Path, project: &Path) {
    let out = std::process::Command::new(dbt)
        .current_dir(work)
        .args(["build", "--project-dir"])
        .arg(project)
        .arg("--profiles-dir")
        .arg(work)
        .args(["--vars", "{partition_start: '2026-01-01'}"])
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DO_NOT_TRACK", "1")
        .output()
        .expect("cannot run dbt");
    assert!(
        out.status.success(),
        "dbt build failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("Completed successfully"), "{log}");
    // the model and its data tests (not_null + unique on the merge key) ran
    assert!(log.contains("PASS=3"), "{log}");
}

#[test]
fn dbt_build_passes_on_the_generated_project() {
    let dbt = dbt_executable();
    let pg = cfa_test_support::pg::PgCluster::start().expect("throwaway PostgreSQL cluster");
    pg.create_database("cfa_dbt").unwrap();
    pg.psql("cfa_dbt", SEED).unwrap();

    let work = tempfile::tempdir().unwrap();
    let sig = cfa_test_support::ok_signature_without(&["source_intent_raw"]);
    let catalog = json!({"datasets": {
      "nfe": {"merge_keys": ["nfe_id"], "partition_column": "processing_date",
              "columns": ["nfe_id", "cliente_id", "valor", "processing_date"]},
      "clientes": {"pii_columns": ["cpf", "email"], "merge_keys": ["cliente_id"], "partition_column": "processing_date",
                   "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }});
    let sig_path = work.path().join("sig.json");
    let cat_path = work.path().join("catalog.json");
    std::fs::write(&sig_path, sig.to_string()).unwrap();
    std::fs::write(&cat_path, catalog.to_string()).unwrap();
    let project = work.path().join("project");
    Command::new(env!("CARGO_BIN_EXE_cfa"))
        .arg("generate")
        .arg("-s")
        .arg(&sig_path)
        .arg("-c")
        .arg(&cat_path)
        .args(["-b", "dbt", "--out"])
        .arg(&project)
        .assert()
        .success();
    std::fs::write(
        work.path().join("profiles.yml"),
        format!(
            "cfa:\n  target: test\n  outputs:\n    test:\n      type: postgres\n      host: 127.0.0.1\n      port: {}\n      user: postgres\n      password: \"\"\n      dbname: cfa_dbt\n      schema: analytics\n      threads: 1\n",
            pg.port()
        ),
    )
    .unwrap();

    dbt_build(&dbt, work.path(), &project);
    let q = |sql: &str| pg.psql("cfa_dbt", sql).unwrap().trim().to_owned();
    assert_eq!(q("SELECT count(*) FROM analytics.silver_fiscal"), "3");
    assert_eq!(
        q("SELECT cpf_hash FROM analytics.silver_fiscal WHERE nfe_id = 1"),
        cfa_types::canonical::sha256_hex(b"12345678900")
    );
    let cols = q(
        "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'silver_fiscal'",
    );
    assert!(
        !cols.split(',').any(|c| c == "cpf" || c == "email"),
        "{cols}"
    );
    assert_eq!(
        q("SELECT count(*) FROM analytics.silver_fiscal t WHERE t::text LIKE '%12345678900%'"),
        "0"
    );

    // Incremental run: MERGE on nfe_id updates and inserts, never duplicates.
    q(
        "UPDATE public.nfe SET valor = 99.99 WHERE nfe_id = 2; INSERT INTO public.nfe VALUES (5, 12, 7.00, '2026-01-09')",
    );
    dbt_build(&dbt, work.path(), &project);
    assert_eq!(q("SELECT count(*) FROM analytics.silver_fiscal"), "4");
    assert_eq!(
        q("SELECT valor FROM analytics.silver_fiscal WHERE nfe_id = 2"),
        "99.99"
    );
}
