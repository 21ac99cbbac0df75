//! `cfa policy test` through the real binary: the shipped example suite (derived from
//! the conformance corpus) passes with full rule coverage; failures show the difference
//! and exit 7; JSON and JUnit reports; case files that do not parse are located.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cfa"))
}

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policy-tests")
}

fn bundle() -> String {
    suite().join("lakehouse-core.yaml").display().to_string()
}

fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = cfa().args(args).current_dir(cwd).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const FAILING: &str = "\
cases:
  - name: approve what is replanned
    signature: sig.json
    expect:
      action: approve
  - name: replanned right
    signature: sig.json
    expect:
      action: replan
      faults: [FIN_UNPARTITIONED_SCAN]
";

fn failing_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        suite().join("signatures/nfe-unpartitioned.json"),
        dir.path().join("sig.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("mixed.cases.yaml"), FAILING).unwrap();
    dir
}

#[test]
fn the_example_suite_passes_with_every_rule_covered() {
    let s = suite();
    let (code, out, err) = run(&["policy", "test", ".", "-b", &bundle()], &s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("8 cases: 8 passed, 0 failed, 0 errors"),
        "{out}"
    );
    assert!(out.contains("7/7 rules fired"), "{out}");
    assert!(!out.contains("never fired"), "{out}");
    // The signature files beside the cases are not taken for cases.
    assert!(!out.contains("nfe-unpartitioned.json:"), "{out}");
}

#[test]
fn a_failing_case_shows_the_difference_and_exits_7() {
    let dir = failing_dir();
    let (code, out, _) = run(&["policy", "test", ".", "-b", &bundle()], dir.path());
    assert_eq!(code, 7, "{out}");
    assert!(
        out.contains("FAIL  approve what is replanned (./mixed.cases.yaml:2:5)"),
        "{out}"
    );
    assert!(
        out.contains("action: expected \"approve\", got \"replan\""),
        "{out}"
    );
    assert!(out.contains("PASS  replanned right"), "{out}");
    assert!(
        out.contains("2 cases: 1 passed, 1 failed, 0 errors"),
        "{out}"
    );
}

#[test]
fn json_report_has_cases_differences_and_coverage() {
    let dir = failing_dir();
    let (code, out, _) = run(
        &[
            "policy",
            "test",
            "mixed.cases.yaml",
            "-b",
            &bundle(),
            "-f",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code, 7);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], "cfa.policy_test.v1");
    assert_eq!(v["ok"], false);
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["cases"][0]["status"], "fail");
    assert_eq!(v["cases"][0]["differences"][0]["field"], "action");
    assert_eq!(v["cases"][1]["status"], "pass");
    assert_eq!(v["cases"][1]["fired_rules"][0], "partition_large_inputs");
    // Only the partition rule fired: the six others are reported as never fired.
    let never: Vec<&str> = v["coverage"]["never_fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(never.len(), 6, "{never:?}");
    assert!(!never.contains(&"partition_large_inputs"));
    assert_eq!(v["coverage"]["fired"], 1);
}

#[test]
fn junit_report_is_a_testsuite_with_failures() {
    let dir = failing_dir();
    let (code, out, _) = run(
        &["policy", "test", ".", "-b", &bundle(), "-f", "junit"],
        dir.path(),
    );
    assert_eq!(code, 7);
    assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(out.contains(
        "<testsuite name=\"lakehouse-core-2.3\" tests=\"2\" failures=\"1\" errors=\"0\""
    ));
    assert_eq!(out.matches("<testcase ").count(), 2);
    assert_eq!(out.matches("<failure ").count(), 1);
    assert!(out.contains("classname=\"./mixed.cases.yaml\""), "{out}");
    // Balanced elements: every opened testcase with a body is closed.
    assert_eq!(
        out.matches("<testsuite ").count(),
        out.matches("</testsuite>").count()
    );
    assert_eq!(
        out.matches("<failure ").count(),
        out.matches("</failure>").count()
    );
    assert!(out.trim_end().ends_with("</testsuites>"));
}

#[test]
fn a_case_file_that_does_not_parse_is_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.case.yaml"),
        "name: x\nsignature: s.json\nexpect:\n  action: sometimes\n",
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "test", "."], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("./bad.case.yaml:4:11"), "{err}");
    assert!(err.contains("unknown action `sometimes`"), "{err}");
    let (code, out, _) = run(
        &["policy", "test", "bad.case.yaml", "-f", "json"],
        dir.path(),
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["line"], 4, "{v}");
    assert_eq!(v["error"]["column"], 11, "{v}");

    std::fs::write(dir.path().join("bad.case.yaml"), "cases: [\n").unwrap();
    let (code, _, err) = run(&["policy", "test", "bad.case.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("bad.case.yaml:"), "{err}");
}

#[test]
fn unreadable_signatures_are_case_errors_and_empty_suites_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gone.case.yaml"),
        "signature: missing.json\nexpect: {action: approve}\n",
    )
    .unwrap();
    let (code, out, _) = run(&["policy", "test", ".", "-f", "json"], dir.path());
    assert_eq!(code, 7, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cases"][0]["status"], "error");
    assert!(
        v["cases"][0]["error"]
            .as_str()
            .unwrap()
            .contains("missing.json")
    );
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["policy", "test", "."], empty.path());
    assert_eq!(code, 1);
    assert!(err.contains("no policy test case found"), "{err}");
}

/// `POST /v1/policy/test` through a real `cfa serve`: inline cases against the active or
/// a named built-in bundle, the same report as `-f json`; paths are refused per case.
#[test]
fn cases_run_through_the_http_face() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir.path())
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .args(["serve", "--port", "0"])
        .stderr(std::process::Stdio::null());
    let served = crate::support::spawn_served(cmd);
    let sig: Value = serde_json::from_str(
        &std::fs::read_to_string(suite().join("signatures/nfe-unpartitioned.json")).unwrap(),
    )
    .unwrap();
    let body = serde_json::json!({"cases": [
        {"name": "replanned", "signature": sig,
         "expect": {"action": "replan", "faults": ["FINOPS_MISSING_TEMPORAL_PREDICATE"]}},
        {"name": "wrong", "signature": sig, "expect": {"action": "approve"}},
        {"name": "a path", "signature": "sig.json", "expect": {"action": "approve"}}
    ]})
    .to_string();
    let (status, v) = crate::support::http(&served.addr, "POST", "/v1/policy/test", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["schema_version"], "cfa.policy_test.v1");
    assert_eq!(v["policy_bundle"], "v1.0");
    assert_eq!(v["summary"]["passed"], 1, "{v}");
    assert_eq!(v["cases"][1]["differences"][0]["field"], "action");
    assert_eq!(v["cases"][2]["status"], "error");
    assert!(
        v["cases"][2]["error"]
            .as_str()
            .unwrap()
            .contains("reads no files")
    );
    assert!(!v["coverage"]["never_fired"].as_array().unwrap().is_empty());
    // A named built-in bundle; a bad case document is a located 400.
    let (status, v) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/policy/test?policy_bundle=prod-v1",
        &body,
    );
    assert_eq!(status, 200);
    assert_eq!(v["policy_bundle"], "prod-v1.0");
    let (status, v) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/policy/test",
        "{\"signature\": {},\n \"expect\": {\"action\": \"maybe\"}}",
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request:2:"),
        "{v}"
    );
}
