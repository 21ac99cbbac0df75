//! Snapshot tests: every backend on a few signatures; each artifact also passes its own
//! static validation and is deterministic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_codegen::{BackendRegistry, validate_artifact};
use common::*;

fn check(backend: &str, name: &str, v: &serde_json::Value, with_catalog: bool) {
    let (s, a) = generate(backend, v, with_catalog);
    let (_, again) = generate(backend, v, with_catalog);
    assert_eq!(a, again, "generation must be deterministic");
    assert_eq!(a.artifact_hash(), again.artifact_hash());
    // Every plan step maps to the code implementing it.
    let cat = catalog_for(with_catalog);
    let p = plan(&s, Some(&cat));
    let ids: Vec<&str> = a.step_code.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(ids, want, "{backend}/{name}");
    assert!(
        a.step_code
            .values()
            .all(|c| !c.is_empty() && a.files.iter().any(|f| f.content.contains(c.as_str())))
    );
    let r = validate_artifact(&a, &s);
    assert!(
        r.passed,
        "{backend}/{name} failed static validation: {:#?}",
        r.faults
    );
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    if backend == "pyspark" {
        python_parses(&a.files[0].content);
    }
    insta::assert_snapshot!(format!("{backend}__{name}"), render(&a));
}

/// CPython's own parser accepts the script.
fn python_parses(code: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.py");
    std::fs::write(&path, code).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(&path)
        .output()
        .expect("python3 must be installed for the PySpark parse check");
    assert!(
        out.status.success(),
        "generated PySpark does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sql_snapshots() {
    check("sql", "ok", &ok_sig(), true);
    check("sql", "three", &three_sig(), true);
    check("sql", "aggregate", &aggregate_sig(), true);
    check("sql", "bronze", &bronze_sig(), true);
}

#[test]
fn dbt_snapshots() {
    check("dbt", "ok", &ok_sig(), true);
    check("dbt", "three", &three_sig(), true);
    check("dbt", "aggregate", &aggregate_sig(), true);
    check("dbt", "bronze", &bronze_sig(), true);
}

#[test]
fn pyspark_snapshots() {
    check("pyspark", "ok", &ok_sig(), true);
    check("pyspark", "ok_no_columns", &ok_sig(), false);
    check("pyspark", "three", &three_sig(), true);
    check("pyspark", "aggregate", &aggregate_sig(), true);
    check("pyspark", "bronze", &bronze_sig(), false);
}

#[test]
fn capabilities_listed_for_every_builtin() {
    let reg = BackendRegistry::with_builtins();
    assert_eq!(reg.names(), ["dbt", "pyspark", "sql"]);
    let caps: Vec<_> = reg.iter().map(|b| b.capabilities()).collect();
    assert!(
        caps.iter()
            .all(|c| c.supports_merge && c.pii_methods.contains(&"sha256".to_owned()))
    );
    insta::assert_json_snapshot!("capabilities", caps);
}
