//! `cfa dbt check` through the real binary. `dbt_parse_…` runs real dbt (`dbt parse` in
//! the virtualenv of scripts/dbt-setup.sh, skipped by the quick profile) on the fixture
//! project tests/fixtures/dbt_project, whose five models approve (3), replan (1) and
//! block (1) under the default rules; the other tests use small hand-written manifests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cfa(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.current_dir(dir).env_remove("CFA_POLICY_BUNDLE");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let out = cfa(dir).args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

/// model name → action, from `-f json` output.
fn actions(v: &Value) -> BTreeMap<String, String> {
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn model<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no model {name} in {v}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Copies the fixture project into `work` and runs `dbt parse` on it; returns the
/// manifest path. The profile points at a closed port: parse never connects.
fn dbt_parse(work: &Path) -> PathBuf {
    let dbt = crate::generate_dbt::dbt_executable();
    let project = work.join("project");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt_project"),
        &project,
    );
    std::fs::write(
        work.join("profiles.yml"),
        "cfa_fixture:\n  target: parse\n  outputs:\n    parse:\n      type: postgres\n      host: 127.0.0.1\n      port: 1\n      user: nobody\n      password: \"\"\n      dbname: none\n      schema: analytics\n      threads: 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(&dbt)
        .current_dir(work)
        .args(["parse", "--project-dir"])
        .arg(&project)
        .arg("--profiles-dir")
        .arg(work)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DO_NOT_TRACK", "1")
        .output()
        .expect("cannot run dbt");
    assert!(
        out.status.success(),
        "dbt parse failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = project.join("target/manifest.json");
    assert!(manifest.is_file());
    manifest
}

/// Parses `xml` with Python's ElementTree (the dbt virtualenv's interpreter) and returns
/// `name:failure-type` per testcase (`name:` when it passed), plus the suite counters.
fn junit_cases(work: &Path, xml: &str) -> (Vec<String>, String) {
    let dbt = crate::generate_dbt::dbt_executable();
    let python = dbt.parent().unwrap().join("python");
    let file = work.join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let script = [
        "import sys, xml.etree.ElementTree as ET",
        "root = ET.parse(sys.argv[1]).getroot()",
        "assert root.tag == 'testsuites', root.tag",
        "suite = root.find('testsuite')",
        "print('tests=%s failures=%s' % (suite.get('tests'), suite.get('failures')))",
        "for tc in suite.findall('testcase'):",
        "    f = tc.find('failure')",
        "    print('%s:%s' % (tc.get('name'), '' if f is None else f.get('type')))",
    ]
    .join("\n");
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not valid JUnit XML: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let counters = lines.next().unwrap().to_owned();
    (lines.map(str::to_owned).collect(), counters)
}

#[test]
fn dbt_parse_manifest_models_approve_replan_and_block() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let manifest = dbt_parse(work);
    let m = manifest.to_str().unwrap();

    // The table: one row per model, the faults and fixes of the two that fail.
    let r = run(work, &["dbt", "check", "--manifest", m]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(manifest v12, dbt 1."), "{}", r.stdout);
    for (name, layer, action) in [
        ("gold_revenue", "gold", "approve"),
        ("silver_clientes_raw", "silver", "block"),
        ("silver_fiscal", "silver", "approve"),
        ("silver_nfe_full", "silver", "replan"),
        ("stg_nfe", "bronze", "approve"),
    ] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", r.stdout));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cells[1], cells[4]), (layer, action), "{row}");
    }
    assert!(
        r.stdout
            .contains("fix: set constraints.partition_by = [\"processing_date\"]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("GOVERNANCE_PII_WITHOUT_POLICY"));
    assert!(
        r.stdout
            .trim_end()
            .ends_with("5 models: 3 approve, 1 replan, 1 block"),
        "{}",
        r.stdout
    );

    // JSON: the derived signatures.
    let r = run(work, &["dbt", "check", "-m", m, "-f", "json"]);
    assert_eq!(r.code, 4);
    let v = json_of(&r);
    assert_eq!(v["schema_version"], "cfa.dbt_check.v1");
    assert_eq!(v["manifest_schema_version"], 12);
    assert_eq!(v["project"], "cfa_fixture");
    assert_eq!(
        v["summary"],
        json!({"models": 5, "approve": 3, "replan": 1, "block": 1})
    );
    assert_eq!(v["passed"], false);
    let fiscal = model(&v, "silver_fiscal");
    assert_eq!(fiscal["materialized"], "incremental");
    assert_eq!(fiscal["unique_key"], json!(["nfe_id"]));
    assert_eq!(fiscal["layer_from"], "path:silver");
    assert_eq!(fiscal["datasets"], json!(["clientes", "stg_nfe"]));
    let sig = &fiscal["signature"];
    assert_eq!(sig["intent_id"], "model.cfa_fixture.silver_fiscal");
    assert_eq!(sig["constraints"]["merge_key_required"], true);
    assert_eq!(sig["constraints"]["no_pii_raw"], true);
    assert_eq!(sig["constraints"]["enforce_types"], true);
    assert_eq!(
        sig["constraints"]["partition_by"],
        json!(["processing_date"])
    );
    assert_eq!(sig["datasets"][0]["pii_columns"], json!(["cpf", "email"]));
    assert_eq!(sig["datasets"][0]["classification"], "sensitive");
    let raw = model(&v, "silver_clientes_raw");
    assert_eq!(raw["signature"]["constraints"]["no_pii_raw"], false);
    let full = model(&v, "silver_nfe_full");
    assert_eq!(
        full["signature"]["datasets"][0]["classification"],
        "high_volume"
    );
    assert_eq!(
        full["faults"][0]["code"],
        "FINOPS_MISSING_TEMPORAL_PREDICATE"
    );
    assert_eq!(model(&v, "gold_revenue")["tags"], json!(["finance"]));

    // JUnit: valid XML, one testcase per model, failures for the replan and the block.
    let r = run(work, &["dbt", "check", "-m", m, "--format", "junit"]);
    assert_eq!(r.code, 4);
    let (cases, counters) = junit_cases(work, &r.stdout);
    assert_eq!(counters, "tests=5 failures=2");
    assert_eq!(
        cases,
        [
            "gold_revenue:",
            "silver_clientes_raw:block",
            "silver_fiscal:",
            "silver_nfe_full:replan",
            "stg_nfe:"
        ]
    );

    // Exit codes follow the worst selected model; --exit-zero reports only.
    for (select, code) in [
        (vec!["silver_nfe_full"], 3),
        (vec!["silver_fiscal", "gold_revenue"], 0),
        (vec!["silver_nfe_full silver_clientes_raw"], 4),
    ] {
        let mut args = vec!["dbt", "check", "-m", m, "--select"];
        args.extend(select.iter().copied());
        assert_eq!(run(work, &args).code, code, "{select:?}");
    }
    assert_eq!(run(work, &["dbt", "check", "-m", m, "--exit-zero"]).code, 0);

    // Selection by tag, path (a directory, a glob) and name glob.
    for (select, models) in [
        ("tag:finance", vec!["gold_revenue"]),
        (
            "path:models/silver",
            vec!["silver_clientes_raw", "silver_fiscal", "silver_nfe_full"],
        ),
        ("path:models/*/stg_*.sql", vec!["stg_nfe"]),
        ("silver_f* stg_nfe", vec!["silver_fiscal", "stg_nfe"]),
    ] {
        let r = run(work, &["dbt", "check", "-m", m, "-f", "json", "-s", select]);
        let v = json_of(&r);
        let got: Vec<String> = actions(&v).into_keys().collect();
        assert_eq!(got, models, "{select}");
    }

    // -c: the catalog's metadata wins; nfe as an internal dataset needs no partition.
    let catalog = work.join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"datasets": {"nfe": {"classification": "internal"}}}).to_string(),
    )
    .unwrap();
    let r = run(
        work,
        &[
            "dbt",
            "check",
            "-m",
            m,
            "-f",
            "json",
            "-c",
            catalog.to_str().unwrap(),
        ],
    );
    let v = json_of(&r);
    assert_eq!(actions(&v)["silver_nfe_full"], "approve");
    assert_eq!(
        model(&v, "silver_nfe_full")["datasets_from_catalog"],
        json!(["nfe"])
    );
    assert_eq!(v["catalog"], catalog.to_str().unwrap());
    assert_ne!(v["catalog_hash"], "");
    assert_eq!(r.code, 4, "silver_clientes_raw is still blocked");

    // -p: a built-in bundle that blocks unfiltered scans, and a bundle file.
    let r = run(
        work,
        &[
            "dbt",
            "check",
            "-m",
            m,
            "-f",
            "json",
            "-p",
            "finops-strict-v1",
        ],
    );
    assert_eq!(actions(&json_of(&r))["silver_nfe_full"], "block");
    let bundle = work.join("gold-approval.yaml");
    std::fs::write(
        &bundle,
        "policy_bundle:\n  version: gold-approval-v1\n  rules:\n    - name: gold_needs_approval\n      condition: unauthorized_gold_write\n      action: block\n      fault_code: GOLD_WITHOUT_APPROVAL\n      severity: critical\n      family: semantic\n      message: Gold needs an approval id.\n      remediation: [\"Set meta.cfa.approval_id\"]\n",
    )
    .unwrap();
    let r = run(
        work,
        &[
            "dbt",
            "check",
            "-m",
            m,
            "-f",
            "json",
            "-p",
            bundle.to_str().unwrap(),
        ],
    );
    let v = json_of(&r);
    assert_eq!(v["policy_bundle"], "gold-approval-v1", "{v}");
    assert_eq!(
        actions(&v),
        BTreeMap::from(
            [
                ("gold_revenue", "block"),
                ("silver_clientes_raw", "approve"),
                ("silver_fiscal", "approve"),
                ("silver_nfe_full", "approve"),
                ("stg_nfe", "approve"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        )
    );
    assert_eq!(r.code, 4);

    // The config's defaults apply when no flag is given.
    let cfg = work.join("cfa.yaml");
    std::fs::write(
        &cfg,
        "defaults:\n  catalog: catalog.json\n  policy_bundle: finops-strict-v1\n",
    )
    .unwrap();
    let r = run(
        work,
        &[
            "dbt",
            "check",
            "-m",
            m,
            "-f",
            "json",
            "-s",
            "silver_nfe_full",
        ],
    );
    let v = json_of(&r);
    assert_eq!(v["policy_bundle_source"], "finops-strict-v1");
    assert_eq!(
        actions(&v)["silver_nfe_full"],
        "approve",
        "the catalog applied"
    );
    assert_eq!(r.code, 0);
}

fn hand_manifest(version: &str, nodes: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "metadata": {"dbt_schema_version": format!("https://schemas.getdbt.com/dbt/manifest/{version}.json"),
                     "dbt_version": "1.7.0"},
        "nodes": nodes,
        "sources": {"source.p.erp.orders": {"resource_type": "source", "name": "orders",
                    "source_name": "erp", "meta": {"classification": "high_volume"}}},
    }))
    .unwrap()
}

fn node(name: &str, config: Value) -> Value {
    json!({"resource_type": "model", "name": name, "package_name": "p",
           "unique_id": format!("model.p.{name}"), "original_file_path": format!("models/silver/{name}.sql"),
           "fqn": ["p", "silver", name], "config": config,
           "depends_on": {"nodes": ["source.p.erp.orders"]}})
}

#[test]
fn a_hand_written_v10_manifest_is_checked_and_an_appending_incremental_is_blocked() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("target")).unwrap();
    std::fs::write(
        tmp.path().join("target/manifest.json"),
        hand_manifest(
            "v10",
            json!({
                "model.p.append_only": node("append_only", json!({"materialized": "incremental",
                    "partition_by": "day", "contract": {"enforced": true}})),
                "model.p.keyed": node("keyed", json!({"materialized": "incremental", "unique_key": "id",
                    "partition_by": "day", "contract": {"enforced": true}})),
            }),
        ),
    )
    .unwrap();
    // --manifest defaults to target/manifest.json.
    let r = run(tmp.path(), &["dbt", "check", "-f", "json"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let v = json_of(&r);
    assert_eq!(v["manifest_schema_version"], 10);
    assert_eq!(
        model(&v, "append_only")["faults"][0]["code"],
        "CONTRACT_MISSING_MERGE_KEY"
    );
    assert_eq!(actions(&v)["keyed"], "approve");
    let r = run(tmp.path(), &["dbt", "check", "-s", "keyed"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("1 models: 1 approve, 0 replan, 0 block"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_manifests_and_selectors_are_located_errors_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"metadata\": {\"dbt_schema_version\": 12},\n  \"nodes\": {}\n}\n",
    )
    .unwrap();
    let r = run(dir, &["dbt", "check", "-m", "bad.json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("bad.json:2:39: invalid dbt manifest: invalid type: integer `12`"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    let r = run(dir, &["dbt", "check", "-m", "bad.json", "-f", "json"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        json_of(&r)["error"],
        json!({"code": "manifest", "path": "bad.json", "line": 2, "column": 39,
               "message": "invalid dbt manifest: invalid type: integer `12`, expected a string"})
    );
    std::fs::write(&bad, "{\"nodes\": {}").unwrap();
    let r = run(dir, &["dbt", "check", "-m", "bad.json", "-f", "json"]);
    assert_eq!(
        (r.code, json_of(&r)["error"]["line"].clone()),
        (1, json!(1))
    );

    let r = run(dir, &["dbt", "check"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("target/manifest.json"), "{}", r.stderr);
    let r = run(dir, &["dbt", "check", "-f", "json"]);
    assert_eq!(r.code, 1);
    let e = json_of(&r)["error"].clone();
    assert_eq!(e["code"], "io");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("run `dbt parse` in the dbt project"),
        "{e}"
    );

    let v9 = dir.join("v9.json");
    std::fs::write(&v9, hand_manifest("v9", json!({}))).unwrap();
    let r = run(dir, &["dbt", "check", "-m", "v9.json", "-f", "json"]);
    assert_eq!(r.code, 1);
    assert!(
        json_of(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cfa reads manifest v10 to v12"),
        "{}",
        r.stdout
    );

    let ok = dir.join("ok.json");
    std::fs::write(
        &ok,
        hand_manifest(
            "v12",
            json!({"model.p.m": node("m", json!({"meta": {"cfa": {"layer": "platinum"}}}))}),
        ),
    )
    .unwrap();
    let r = run(dir, &["dbt", "check", "-m", "ok.json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("model.p.m: meta.cfa.layer must be bronze, silver or gold"),
        "{}",
        r.stderr
    );
    std::fs::write(
        &ok,
        hand_manifest("v12", json!({"model.p.m": node("m", json!({}))})),
    )
    .unwrap();
    for (select, says) in [
        ("config:materialized", "unknown method 'config:'"),
        ("tag:", "needs a value"),
        ("a,b", "intersections (`,`) are not supported"),
        ("+m", "graph operators"),
        ("nothing_like_it", "matches none of the 1 models"),
    ] {
        let r = run(
            dir,
            &["dbt", "check", "-m", "ok.json", "-s", select, "-f", "json"],
        );
        assert_eq!(r.code, 1, "{select}");
        let e = json_of(&r)["error"].clone();
        assert_eq!(e["code"], "selector", "{e}");
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{select}: {e}"
        );
    }
    let empty = dir.join("empty.json");
    std::fs::write(&empty, hand_manifest("v12", json!({}))).unwrap();
    let r = run(dir, &["dbt", "check", "-m", "empty.json"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("has no models"), "{}", r.stderr);
}
