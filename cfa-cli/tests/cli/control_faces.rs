//! The control capabilities through every face (issue 16): golden policy cases through
//! MCP (`cfa_policy_test`: pass, fail, coverage, the same report as the CLI and HTTP),
//! backtests through MCP (`cfa_policy_backtest`) and HTTP (`POST /v1/policy/backtest`)
//! finding the flips a changed rule causes (the CLI's report, writing nothing), paths
//! outside the roots refused, and budget changes through MCP (`cfa_budget_set`,
//! `cfa_budget_rm`) refused without the operator token and audited with it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::fixtures::{N, changed_bundle, decided};
use crate::support::{Mcp, cfa_cmd, http_json, spawn_served};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policy-tests")
}

/// `cfa ARGS` in `dir`: (exit code, stdout JSON).
fn cli_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = cfa_cmd().current_dir(dir).args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// Every file under `dir` with its bytes, sorted (what "writes nothing" compares).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// A case's outcome without where it came from (a file, or the request).
fn outcomes(report: &Value) -> Vec<Value> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let o = c.as_object_mut().unwrap();
            o.remove("origin");
            o.remove("position");
            c
        })
        .collect()
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

#[test]
fn policy_cases_run_through_mcp_like_the_cli_and_paths_stay_inside_the_roots() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    // The shipped suite, copied under the root.
    let suite = r.join("suite");
    std::fs::create_dir_all(suite.join("signatures")).unwrap();
    for f in [
        "lakehouse-core.yaml",
        "lakehouse.cases.yaml",
        "conformance.cases.jsonl",
        "signatures/nfe-unpartitioned.json",
    ] {
        std::fs::copy(examples().join(f), suite.join(f)).unwrap();
    }
    let failing = r.join("failing");
    std::fs::create_dir(&failing).unwrap();
    std::fs::copy(
        examples().join("signatures/nfe-unpartitioned.json"),
        failing.join("sig.json"),
    )
    .unwrap();
    std::fs::write(failing.join("mixed.cases.yaml"), FAILING).unwrap();
    // A case whose signature is a file outside the roots.
    std::fs::copy(
        examples().join("signatures/nfe-unpartitioned.json"),
        outside.path().join("sig.json"),
    )
    .unwrap();
    let escape = r.join("escape");
    std::fs::create_dir(&escape).unwrap();
    std::fs::write(
        escape.join("out.case.yaml"),
        format!(
            "name: reads outside\nsignature: {}\nexpect:\n  action: replan\n",
            outside.path().join("sig.json").display()
        ),
    )
    .unwrap();
    std::fs::write(outside.path().join("x.case.yaml"), FAILING).unwrap();

    let mut m = Mcp::start(&["--root", r.to_str().unwrap()]);
    let bundle = "suite/lakehouse-core.yaml";
    // Passing: the CLI's report, every rule covered.
    let (err, v) = m.call(
        "cfa_policy_test",
        json!({"paths": ["suite"], "bundle": bundle}),
    );
    assert!(!err, "{v}");
    assert_eq!(v["schema_version"], "cfa.policy_test.v1");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["coverage"]["never_fired"], json!([]));
    let (code, cli) = cli_json(r, &["policy", "test", "suite", "-b", bundle, "-f", "json"]);
    assert_eq!(code, 0);
    assert_eq!(v["summary"], cli["summary"]);
    assert_eq!(v["coverage"], cli["coverage"]);
    assert_eq!(outcomes(&v), outcomes(&cli));
    assert!(v["summary"]["cases"].as_u64().unwrap() > 2);
    // The bundle as text is the same bundle.
    let text = std::fs::read_to_string(suite.join("lakehouse-core.yaml")).unwrap();
    let (err, t) = m.call(
        "cfa_policy_test",
        json!({"paths": ["suite/lakehouse.cases.yaml"], "bundle_text": text}),
    );
    assert!(!err, "{t}");
    assert_eq!(t["policy_bundle"], v["policy_bundle"]);

    // Failing: isError with the difference, as the CLI's exit 7.
    let (err, v) = m.call(
        "cfa_policy_test",
        json!({"paths": ["failing"], "bundle": bundle}),
    );
    assert!(err, "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["summary"]["failed"], 1, "{v}");
    assert_eq!(v["summary"]["passed"], 1);
    assert_eq!(v["cases"][0]["differences"][0]["field"], "action");
    let (code, cli) = cli_json(
        r,
        &["policy", "test", "failing", "-b", bundle, "-f", "json"],
    );
    assert_eq!(code, 7);
    assert_eq!(outcomes(&v), outcomes(&cli));

    // Outside the roots: the case directory, the bundle, a file a case names.
    let out_dir = outside.path().display().to_string();
    let out_bundle = examples().join("lakehouse-core.yaml").display().to_string();
    for (args, code) in [
        (json!({"paths": [out_dir]}), "no_case_file"),
        (json!({"paths": ["../x.case.yaml"]}), "no_case_file"),
        (
            json!({"paths": ["suite"], "bundle": out_bundle}),
            "unknown_policy_bundle",
        ),
    ] {
        let (err, v) = m.call("cfa_policy_test", args.clone());
        assert!(err, "{args}: {v}");
        assert_eq!(v["error"]["code"], code, "{args}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("under the server's allowed roots"),
            "{v}"
        );
    }
    let (err, v) = m.call(
        "cfa_policy_test",
        json!({"paths": ["escape"], "bundle": bundle}),
    );
    assert!(err, "{v}");
    assert_eq!(v["cases"][0]["status"], "error", "{v}");
    assert!(
        v["cases"][0]["error"]
            .as_str()
            .unwrap()
            .contains("under the server's allowed roots"),
        "{v}"
    );
    // A case file that does not parse is located.
    std::fs::write(r.join("bad.case.yaml"), "name: x\nexpect: [\n").unwrap();
    let (err, v) = m.call("cfa_policy_test", json!({"paths": ["bad.case.yaml"]}));
    assert!(err);
    assert_eq!(v["error"]["code"], "invalid_cases", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad.case.yaml:"),
        "{v}"
    );
    drop(m);

    // HTTP's inline cases give the same outcomes as MCP's files.
    let sig: Value =
        serde_json::from_str(&std::fs::read_to_string(failing.join("sig.json")).unwrap()).unwrap();
    let inline = json!({"cases": [
        {"name": "approve what is replanned", "signature": sig, "expect": {"action": "approve"}},
        {"name": "replanned right", "signature": sig,
         "expect": {"action": "replan", "faults": ["FINOPS_MISSING_TEMPORAL_PREDICATE"]}}
    ]});
    std::fs::write(failing.join("inline.cases.json"), inline.to_string()).unwrap();
    let mut m = Mcp::start(&["--root", r.to_str().unwrap()]);
    let (_, by_mcp) = m.call(
        "cfa_policy_test",
        json!({"paths": ["failing/inline.cases.json"], "bundle": "prod-v1"}),
    );
    let mut cmd = cfa_cmd();
    cmd.current_dir(r)
        .args(["serve", "--port", "0"])
        .stderr(std::process::Stdio::null());
    let served = spawn_served(cmd);
    let (status, by_http) = http_json(
        &served.addr,
        "POST",
        "/v1/policy/test?policy_bundle=prod-v1",
        None,
        &inline,
    );
    assert_eq!(status, 200, "{by_http}");
    assert_eq!(by_http["summary"], by_mcp["summary"], "{by_mcp}");
    assert_eq!(by_http["summary"]["failed"], 1);
    assert_eq!(by_http["coverage"], by_mcp["coverage"]);
    assert_eq!(outcomes(&by_http), outcomes(&by_mcp));
}

/// The CLI's `changes` without what names the candidate's source.
fn changes(v: &Value) -> Value {
    v["changes"].clone()
}

#[test]
fn backtests_through_mcp_and_http_find_the_flips_and_write_nothing() {
    let dir = decided("--audit-log", "audit.jsonl");
    let d = dir.path();
    let log = d.join("audit.jsonl");
    let (code, cli) = cli_json(
        d,
        &[
            "policy",
            "backtest",
            "-f",
            "json",
            "--bundle",
            "new.yaml",
            "--log",
            "audit.jsonl",
        ],
    );
    assert_eq!(code, 7);
    assert_eq!(cli["changed"], N / 2);
    let before = tree(d);

    // MCP: the server's own log, the candidate as a file under the roots.
    let mut m = Mcp::start(&[
        "--audit-log",
        log.to_str().unwrap(),
        "--root",
        d.to_str().unwrap(),
    ]);
    let (err, v) = m.call("cfa_policy_backtest", json!({"bundle": "new.yaml"}));
    assert!(err, "a flip is the CLI's exit 7: {v}");
    assert_eq!(v["schema_version"], "cfa.policy_backtest.v1");
    for k in [
        "events",
        "decisions",
        "replayed",
        "unchanged",
        "changed",
        "root",
        "tree_size",
    ] {
        assert_eq!(v[k], cli[k], "{k}");
    }
    assert_eq!(changes(&v), changes(&cli));
    assert_eq!(v["changes"][0]["old"]["action"], "replan");
    assert_eq!(v["changes"][0]["new"]["action"], "block");
    assert_eq!(v["changes"][0]["proof"]["verified"], true);
    // The unchanged bundle as text: nothing changes, no error.
    let (err, v) = m.call(
        "cfa_policy_backtest",
        json!({"bundle_text": crate::support::fixtures::bundle_text()}),
    );
    assert!(!err, "{v}");
    assert_eq!(
        (v["changed"].clone(), v["unchanged"].clone()),
        (json!(0), json!(N))
    );
    // No candidate, or one outside the roots: refused.
    let (err, v) = m.call("cfa_policy_backtest", json!({}));
    assert!(err);
    assert_eq!(v["error"]["code"], "invalid_arguments");
    let outside = examples().join("lakehouse-core.yaml").display().to_string();
    let (err, v) = m.call("cfa_policy_backtest", json!({"bundle": outside}));
    assert!(err);
    assert_eq!(v["error"]["code"], "unknown_policy_bundle", "{v}");
    drop(m);

    // HTTP: the changed bundle as text; names only for files.
    let mut cmd = cfa_cmd();
    cmd.current_dir(d)
        .args(["serve", "--port", "0", "--token", "t0k"])
        .arg("--audit-log")
        .arg(&log)
        .stderr(std::process::Stdio::null());
    let served = spawn_served(cmd);
    let a = served.addr.as_str();
    let tok = Some("t0k");
    let body = json!({"bundle_text": changed_bundle()});
    let (status, _) = http_json(a, "POST", "/v1/policy/backtest", None, &body);
    assert_eq!(status, 401);
    let (status, v) = http_json(a, "POST", "/v1/policy/backtest", tok, &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["changed"], N / 2);
    assert_eq!(changes(&v), changes(&cli));
    assert_eq!(v["candidate"]["source"], "bundle_text");
    let (status, v) = http_json(
        a,
        "POST",
        "/v1/policy/backtest?policy_bundle=default",
        tok,
        &Value::Null,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decisions"], N);
    for (path, body, code) in [
        (
            "/v1/policy/backtest",
            json!({"bundle": "new.yaml"}),
            "unknown_policy_bundle",
        ),
        ("/v1/policy/backtest", json!({}), "invalid_arguments"),
        (
            "/v1/policy/backtest",
            json!({"bundle_text": "rules: [\n"}),
            "invalid_policy_bundle",
        ),
        (
            "/v1/policy/backtest",
            json!({"bundel": "prod-v1"}),
            "invalid_json",
        ),
    ] {
        let (status, v) = http_json(a, "POST", path, tok, &body);
        assert_eq!(
            (status, v["error"]["code"].clone()),
            (400, json!(code)),
            "{body}: {v}"
        );
    }
    drop(served);
    // A read never writes: the log, its inputs and the directory are as they were.
    assert_eq!(tree(d), before);

    // A server without an audit log has nothing to backtest.
    let mut cmd = cfa_cmd();
    cmd.current_dir(d)
        .args(["serve", "--port", "0"])
        .stderr(std::process::Stdio::null());
    let served = spawn_served(cmd);
    let (status, v) = http_json(
        &served.addr,
        "POST",
        "/v1/policy/backtest?policy_bundle=prod-v1",
        None,
        &Value::Null,
    );
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("no_audit_log")),
        "{v}"
    );
}

fn event_types(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            e["event_type"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn mcp_budget_changes_need_the_operator_token_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (db, log) = (d.join("life.db"), d.join("audit.jsonl"));
    let base = [
        "--lifecycle-db",
        db.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ];
    let set = json!({"scope": "agent:bot-7", "window": "24h", "runs": 3, "dbu": 12.5, "by": "ana"});

    // Without --operator-token, no change is accepted, token or not.
    let mut m = Mcp::start(&base);
    for args in [set.clone(), {
        let mut a = set.clone();
        a["operator_token"] = json!("guess");
        a
    }] {
        let (err, v) = m.call("cfa_budget_set", args);
        assert!(err);
        assert_eq!(v["error"]["code"], "operator_token_required", "{v}");
    }
    let (err, v) = m.call("cfa_budget_rm", json!({"scope": "agent:bot-7"}));
    assert!(err);
    assert_eq!(v["error"]["code"], "operator_token_required", "{v}");
    drop(m);
    assert!(!db.exists(), "a refused change creates nothing");
    assert!(event_types(&log).is_empty());

    // With it: the argument must match.
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--operator-token", "op"]);
    let mut m = Mcp::start(&args);
    for token in [None, Some("wrong")] {
        let mut a = set.clone();
        if let Some(t) = token {
            a["operator_token"] = json!(t);
        }
        let (err, v) = m.call("cfa_budget_set", a);
        assert!(err);
        assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    }
    assert!(!db.exists());
    let mut ok = set.clone();
    ok["operator_token"] = json!("op");
    let (err, v) = m.call("cfa_budget_set", ok.clone());
    assert!(!err, "{v}");
    assert_eq!(v["replaced"], false);
    assert_eq!(v["budget"]["scope"], "agent:bot-7");
    assert_eq!(
        v["budget"]["limits"],
        json!({"dbu": 12.5, "runs": 3, "rows": null})
    );
    let (err, v) = m.call("cfa_budget_set", ok);
    assert!(!err);
    assert_eq!(v["replaced"], true);
    // Bad input is refused and changes nothing.
    let (err, v) = m.call(
        "cfa_budget_set",
        json!({"scope": "agent:bot-7", "window": "0h", "runs": 1, "operator_token": "op"}),
    );
    assert!(err);
    assert_eq!(v["error"]["code"], "invalid_budget", "{v}");
    let (err, v) = m.call("cfa_budget_status", json!({"scope": "agent:bot-7"}));
    assert!(!err, "{v}");
    assert_eq!(v["budget"]["limits"]["runs"], 3);
    assert_eq!(v["budget"]["window"], "24h");
    // The CLI sees the same budget.
    let (code, cli) = cli_json(
        d,
        &[
            "budget",
            "show",
            "agent:bot-7",
            "--db",
            db.to_str().unwrap(),
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(cli["budget"]["limits"], v["budget"]["limits"]);

    let (err, v) = m.call(
        "cfa_budget_rm",
        json!({"scope": "agent:bot-7", "by": "ana", "operator_token": "op"}),
    );
    assert!(!err, "{v}");
    assert_eq!(v["removed"], "agent:bot-7");
    let (err, v) = m.call(
        "cfa_budget_rm",
        json!({"scope": "agent:bot-7", "operator_token": "op"}),
    );
    assert!(err);
    assert_eq!(v["error"]["code"], "budget_not_found", "{v}");
    drop(m);

    // Each accepted change is one event in the chain, which verifies.
    assert_eq!(
        event_types(&log),
        ["budget_set", "budget_set", "budget_removed"]
    );
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["stage"], "control");
    assert_eq!(first["details"]["by"], "ana");
    let out = cfa_cmd()
        .args(["audit", "verify", "--file", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
