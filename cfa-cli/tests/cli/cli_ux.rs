//! Issue 14, "a CLI people enjoy", through the real `cfa` binary: ASCII symbols when
//! stdout is not a terminal (and `--unicode`/`CFA_UNICODE` to force them), no colour
//! off a terminal, `-` for standard input, `policy check --batch`, errors as JSON with
//! `--format json`, `audit list`/`tail`, the intent id in every decision output,
//! completions and the man page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use cfa_test_support::example_arg;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const BLOCK: &str = "Join NFe with Clientes and persist to Silver";
const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";

fn cfa(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.current_dir(dir)
        .env_remove("CFA_UNICODE")
        .env_remove("NO_COLOR");
    c
}

fn stdout(c: &mut Command, code: i32) -> String {
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One signature file as one JSONL line.
fn line_of(rel: &str) -> String {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(cfa_test_support::example(rel)).unwrap())
            .unwrap();
    v.to_string()
}

#[test]
fn piped_output_is_plain_ascii_with_the_reference_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let cat = example_arg("catalog.json");
    let text = stdout(
        cfa(dir.path()).args(["evaluate", BLOCK, "-c", &cat, "-p", "prod-v1"]),
        4,
    );
    // Symbols and box lines fall back; data (a bundle's messages) is printed as is.
    let symbols = "✓⚠✗↻↩⊘◐★─│┌┐└┘→";
    assert!(!text.contains(|c| symbols.contains(c)), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("+---") && lines[0].ends_with("---+"));
    assert!(lines[1].starts_with("| ") && lines[1].ends_with(" |"));
    assert!(text.contains("State:   [XX] blocked"), "{text}");
    let w = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == w), "{text}");
    let text = stdout(
        cfa(dir.path()).args(["evaluate", APPROVE, "-c", &cat, "-f", "summary"]),
        0,
    );
    assert!(text.starts_with("[OK]  CFA: APPROVED"), "{text}");
    assert!(text.contains("Execute: mock -> published"), "{text}");
    let demo = stdout(
        cfa(dir.path()).args(["demo", "--dir", dir.path().to_str().unwrap()]),
        0,
    );
    for icon in [
        "[OK] approved",
        "[!!] approved_with_warnings",
        "[XX] blocked",
    ] {
        assert!(demo.contains(&format!("Decision:       {icon}")), "{demo}");
    }
    assert!(!demo.contains(|c| symbols.contains(c)), "{demo}");
    assert!(!demo.contains('\u{1b}'), "no colour off a terminal");
}

#[test]
fn unicode_is_forced_by_flag_or_env_and_ascii_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cat = example_arg("catalog.json");
    let args = ["evaluate", BLOCK, "-c", &cat, "-f", "summary"];
    let forced = stdout(cfa(dir.path()).args(args).arg("--unicode"), 4);
    assert!(forced.starts_with("✗  CFA: BLOCKED"), "{forced}");
    let env = stdout(cfa(dir.path()).args(args).env("CFA_UNICODE", "1"), 4);
    assert!(env.starts_with("✗  CFA: BLOCKED"), "{env}");
    let off = stdout(cfa(dir.path()).args(args).env("CFA_UNICODE", "0"), 4);
    assert!(off.starts_with("[XX]  CFA: BLOCKED"), "{off}");
    let ascii = stdout(
        cfa(dir.path())
            .args(args)
            .arg("--ascii")
            .env("CFA_UNICODE", "1"),
        4,
    );
    assert!(ascii.starts_with("[XX]  CFA: BLOCKED"), "{ascii}");
    // The two flags together are a usage error.
    cfa(dir.path())
        .args(args)
        .args(["--ascii", "--unicode"])
        .assert()
        .code(2);
}

#[test]
fn dash_reads_a_signature_or_a_catalog_from_stdin_once() {
    let dir = tempfile::tempdir().unwrap();
    let sig = std::fs::read(cfa_test_support::example("signatures/ok.json")).unwrap();
    let text = stdout(
        cfa(dir.path())
            .args(["policy", "check", "-s", "-"])
            .write_stdin(sig.clone()),
        0,
    );
    assert!(text.starts_with("Policy check APPROVE: -"), "{text}");
    // A catalog from stdin hashes as the same file does.
    let cat_path = example_arg("catalog.json");
    let cat = std::fs::read(&cat_path).unwrap();
    let sig_path = example_arg("signatures/ok.json");
    let from_file = json(&stdout(
        cfa(dir.path()).args([
            "policy", "check", "-s", &sig_path, "-c", &cat_path, "-f", "json",
        ]),
        0,
    ));
    let from_stdin = json(&stdout(
        cfa(dir.path())
            .args(["policy", "check", "-s", &sig_path, "-c", "-", "-f", "json"])
            .write_stdin(cat),
        0,
    ));
    assert_eq!(from_file["catalog_hash"], from_stdin["catalog_hash"]);
    assert_ne!(from_file["catalog_hash"], "");
    // A YAML bundle from stdin is read as YAML and hashed as the file is.
    let bundle_path = cfa_test_support::workspace_root().join("cfa-policy/bundles/prod-v1.yaml");
    let bundle_arg = bundle_path.to_str().unwrap();
    let from_file = json(&stdout(
        cfa(dir.path()).args([
            "policy", "check", "-s", &sig_path, "-p", bundle_arg, "-f", "json",
        ]),
        0,
    ));
    let v = json(&stdout(
        cfa(dir.path())
            .args(["policy", "check", "-s", &sig_path, "-p", "-", "-f", "json"])
            .write_stdin(std::fs::read(&bundle_path).unwrap()),
        0,
    ));
    assert_eq!(v["policy_bundle"], "prod-v1.0", "{v}");
    assert_eq!(v["policy_bundle_hash"], from_file["policy_bundle_hash"]);
    // Two flags reading `-`: the second is refused, as an error naming the reason.
    let out = cfa(dir.path())
        .args(["policy", "check", "-s", "-", "-c", "-", "-f", "json"])
        .write_stdin(sig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = json(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only one flag per command can read -"),
        "{err}"
    );
    assert_eq!(err["error"]["path"], "-");
}

#[test]
fn batch_writes_one_decision_per_line_and_exits_with_the_worst() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let input = format!(
        "{}\n{}\n\n{{not json\n{{\"intent\": 1}}\n{}\n",
        line_of("signatures/ok.json"),
        line_of("signatures/replan_multi.json"),
        line_of("signatures/raw_pii.json"),
    );
    let text = stdout(
        cfa(dir.path())
            .args(["policy", "check", "--batch", "-s", "-", "--audit-log"])
            .arg(&log)
            .write_stdin(input.clone()),
        1,
    );
    let lines: Vec<Value> = text.lines().map(json).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0]["action"], "approve");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["schema_version"], "cfa.policy_check.v1");
    assert_eq!(lines[1]["action"], "replan");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(lines[2]["error"]["code"], "invalid_json");
    assert_eq!(lines[2]["error"]["line"], 4);
    assert_eq!(lines[2]["error"]["column"], 2);
    assert_eq!(lines[3]["line"], 5);
    assert_eq!(lines[3]["error"]["code"], "invalid_signature");
    assert!(!lines[3]["error"]["issues"].as_array().unwrap().is_empty());
    assert_eq!(lines[4]["action"], "block");
    assert_eq!(lines[4]["line"], 6);
    // Each decision is recorded, as a single check records it.
    let recorded = std::fs::read_to_string(&log).unwrap();
    assert_eq!(recorded.lines().count(), 3);
    for l in [&lines[0], &lines[1], &lines[4]] {
        assert!(recorded.contains(l["audit_event_hash"].as_str().unwrap()));
    }
    // Without the bad lines the worst is the block (4), then the replan (3).
    let good = format!(
        "{}\n{}\n{}\n",
        line_of("signatures/ok.json"),
        line_of("signatures/replan_multi.json"),
        line_of("signatures/raw_pii.json"),
    );
    let batch = |stdin: String, extra: &[&str]| {
        cfa(dir.path())
            .args(["policy", "check", "--batch", "-s", "-"])
            .args(extra)
            .write_stdin(stdin)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(batch(good.clone(), &[]), Some(4));
    let two: String = good.lines().take(2).map(|l| format!("{l}\n")).collect();
    assert_eq!(batch(two.clone(), &[]), Some(3));
    assert_eq!(batch(two, &["--exit-zero"]), Some(0));
    // A file works as well as stdin.
    let f = dir.path().join("sigs.jsonl");
    std::fs::write(&f, &good).unwrap();
    let text = stdout(
        cfa(dir.path()).args(["policy", "check", "--batch", "-s", f.to_str().unwrap()]),
        4,
    );
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn json_errors_carry_path_line_and_column_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"a\": 1,\n  oops\n}\n").unwrap();
    let out = cfa(dir.path())
        .args(["policy", "check", "-s", bad.to_str().unwrap(), "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(v["error"]["path"], bad.display().to_string());
    assert_eq!(v["error"]["line"], 3);
    assert_eq!(v["error"]["column"], 3);
    assert_eq!(v["error"]["code"], "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    // The human rendering still goes to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid JSON"));
    // A missing file names it; without --format json stdout stays empty.
    let v = json(&stdout(
        cfa(dir.path()).args(["catalog", "validate", "missing.json", "-f", "json"]),
        1,
    ));
    assert_eq!(v["error"]["path"], "missing.json");
    assert!(v["error"]["line"].is_null());
    let plain = stdout(
        cfa(dir.path()).args(["catalog", "validate", "missing.json"]),
        1,
    );
    assert_eq!(plain, "");
    // An invalid signature that a command reports itself carries its issues.
    let sig = dir.path().join("empty.json");
    std::fs::write(&sig, "{}").unwrap();
    let v = json(&stdout(
        cfa(dir.path()).args([
            "generate",
            "-s",
            sig.to_str().unwrap(),
            "-f",
            "json",
            "--out",
            "g",
        ]),
        1,
    ));
    assert_eq!(v["error"]["code"], "invalid_signature");
    assert!(!v["error"]["issues"].as_array().unwrap().is_empty());
    assert!(!dir.path().join("g").exists());
    // A usage error keeps exit 2 and says so in the code.
    let v = json(&stdout(
        cfa(dir.path()).args(["audit", "verify", "--bogus", "-f", "json"]),
        2,
    ));
    assert_eq!(v["error"]["code"], "usage");
    assert!(v["error"]["message"].as_str().unwrap().contains("--bogus"));
}

/// A JSONL log with three recorded checks: approve, replan, block.
fn log_with_three_checks(dir: &Path) -> std::path::PathBuf {
    let log = dir.join("audit.jsonl");
    for (sig, code) in [("ok", 0), ("replan_multi", 3), ("raw_pii", 4)] {
        cfa(dir)
            .args(["policy", "check", "-s"])
            .arg(example_arg(&format!("signatures/{sig}.json")))
            .arg("--audit-log")
            .arg(&log)
            .assert()
            .code(code);
    }
    log
}

#[test]
fn audit_list_shows_decisions_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_three_checks(dir.path());
    let file = log.to_str().unwrap();
    let text = stdout(cfa(dir.path()).args(["audit", "list", "--file", file]), 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("TIME") && lines[0].contains("INTENT"));
    assert!(lines[1].contains("policy_check") && lines[1].contains("approve"));
    assert!(lines[2].contains("replan") && lines[2].contains("FINOPS_MISSING_TEMPORAL_PREDICATE"));
    assert!(lines[3].contains("block") && lines[3].contains("GOVERNANCE_RAW_PII"));
    let rows = |extra: &[&str]| -> Vec<Value> {
        stdout(
            cfa(dir.path())
                .args(["audit", "list", "--file", file, "-f", "json"])
                .args(extra),
            0,
        )
        .lines()
        .map(json)
        .collect()
    };
    let all = rows(&[]);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["outcome"], "block");
    assert!(all[2]["rules"].as_array().unwrap().len() >= 2);
    let blocks = rows(&["--outcome", "block"]);
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        rows(&["--outcome", "block", "--outcome", "replan"]).len(),
        2
    );
    assert_eq!(rows(&["-n", "1"])[0]["outcome"], "block");
    let id = all[0]["intent_id"].as_str().unwrap();
    assert!(rows(&["--intent", id]).iter().all(|r| r["intent_id"] == id));
    assert!(rows(&["--since", "2999-01-01"]).is_empty());
    assert_eq!(rows(&["--since", "1h"]).len(), 3);
    assert_eq!(rows(&["--stage", "govern"]).len(), 0);
    cfa(dir.path())
        .args(["audit", "list", "--file", file, "--since", "yesterday"])
        .assert()
        .code(1);
    // The intent id a row shows is the one `audit show -i` takes.
    let shown = json(&stdout(
        cfa(dir.path()).args(["audit", "show", "--file", file, "-i", id, "-f", "json"]),
        0,
    ));
    assert!(!shown["events"].as_array().unwrap().is_empty());
}

#[test]
fn audit_tail_prints_the_last_events_and_follows_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_three_checks(dir.path());
    let file = log.to_str().unwrap().to_owned();
    let last = stdout(
        cfa(dir.path()).args(["audit", "tail", "--file", &file, "-n", "2", "-f", "json"]),
        0,
    );
    let outcomes: Vec<String> = last
        .lines()
        .map(|l| json(l)["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["replan", "block"]);
    // Follow: an event appended while tail runs is printed; --follow-for bounds it.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
        .current_dir(dir.path())
        .args(["audit", "tail", "--file", &file, "-n", "0", "-f", "json"])
        .args(["-F", "--follow-for", "1.5", "--poll-ms", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cfa(dir.path())
        .args(["policy", "check", "-s"])
        .arg(example_arg("signatures/ok.json"))
        .arg("--audit-log")
        .arg(&log)
        .assert()
        .code(0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Value> = text.lines().map(json).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["outcome"], "approve");
}

#[test]
fn decision_outputs_show_the_intent_id_audit_show_needs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let cat = example_arg("catalog.json");
    let json_file = dir.path().join("r.json");
    let text = stdout(
        cfa(dir.path())
            .args([
                "evaluate",
                APPROVE,
                "-c",
                &cat,
                "-f",
                "summary",
                "--audit-log",
            ])
            .arg(&log)
            .arg("-o")
            .arg(&json_file),
        0,
    );
    let v: Value = json(&std::fs::read_to_string(&json_file).unwrap());
    let id = v["intent_id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(text.contains(&format!("ID:     {id}\n")), "{text}");
    let table = stdout(cfa(dir.path()).args(["evaluate", APPROVE, "-c", &cat]), 0);
    assert!(table.contains("| ID:      "), "{table}");
    let shown = json(&stdout(
        cfa(dir.path())
            .args(["audit", "show", "--file"])
            .arg(&log)
            .args(["-i", id, "-f", "json"]),
        0,
    ));
    assert!(shown["events"].as_array().unwrap().len() > 3);
    // policy check: the signature's intent id, in the summary and the JSON.
    let sig = example_arg("signatures/ok.json");
    let sig_id = json(&std::fs::read_to_string(&sig).unwrap())["intent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = stdout(cfa(dir.path()).args(["policy", "check", "-s", &sig]), 0);
    assert!(
        text.contains(&format!("  intent_id:          {sig_id}\n")),
        "{text}"
    );
    let v = json(&stdout(
        cfa(dir.path()).args(["policy", "check", "-s", &sig, "-f", "json"]),
        0,
    ));
    assert_eq!(v["intent_id"], sig_id.as_str());
}

#[test]
fn completions_and_man_page_are_generated_from_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_cfa()"),
        ("zsh", "#compdef cfa"),
        ("fish", "complete -c cfa"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let text = stdout(cfa(dir.path()).args(["completions", shell]), 0);
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..200.min(text.len())]
        );
        assert!(text.contains("audit"), "{shell} lists subcommands");
    }
    cfa(dir.path())
        .args(["completions", "tcsh"])
        .assert()
        .code(2);
    let man = stdout(cfa(dir.path()).arg("man"), 0);
    assert!(man.contains(".TH cfa 1"), "{man}");
    assert!(man.contains("policy"));
    let pages = dir.path().join("man1");
    stdout(
        cfa(dir.path()).args(["man", "--dir", pages.to_str().unwrap()]),
        0,
    );
    assert!(pages.join("cfa-policy-check.1").is_file());
    assert!(pages.join("cfa-audit-list.1").is_file());
}

#[test]
fn audit_list_reads_a_sqlite_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cfa.db");
    for (sig, code) in [("ok", 0), ("raw_pii", 4)] {
        cfa(dir.path())
            .args(["policy", "check", "-s"])
            .arg(example_arg(&format!("signatures/{sig}.json")))
            .arg("--audit-db")
            .arg(&db)
            .assert()
            .code(code);
    }
    let text = stdout(
        cfa(dir.path())
            .args(["audit", "list", "--db"])
            .arg(&db)
            .args(["-f", "json", "--outcome", "block"]),
        0,
    );
    let rows: Vec<Value> = text.lines().map(json).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["stage"], "policy_check");
    assert!(
        rows[0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER")
    );
}

#[test]
fn audit_verify_reads_a_chain_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_three_checks(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    let out = stdout(
        cfa(dir.path())
            .args(["audit", "verify", "--file", "-", "-f", "json"])
            .write_stdin(text.clone()),
        0,
    );
    let v = json(&out);
    assert_eq!(v["chain_intact"], true);
    assert_eq!(v["total_events"], 3);
    // The same verdict as the file's, tamper included: the first bad index and code.
    let tampered = text.replacen("\"replan\"", "\"approve\"", 1);
    let out = stdout(
        cfa(dir.path())
            .args(["audit", "verify", "--file", "-", "-f", "json"])
            .write_stdin(tampered.clone()),
        1,
    );
    let piped = json(&out);
    std::fs::write(dir.path().join("t.jsonl"), &tampered).unwrap();
    let out = stdout(
        cfa(dir.path()).args(["audit", "verify", "--file", "t.jsonl", "-f", "json"]),
        1,
    );
    let from_file = json(&out);
    assert_eq!(piped["first_bad"], from_file["first_bad"]);
    assert_eq!(piped["first_bad"]["index"], 1);
    // A checkpoint check needs the file: a usage error, exit 2.
    cfa(dir.path())
        .args([
            "audit",
            "verify",
            "--file",
            "-",
            "--checkpoint",
            "c.txt",
            "--pubkey",
            "k.pub",
        ])
        .write_stdin(text)
        .assert()
        .code(2);
}
