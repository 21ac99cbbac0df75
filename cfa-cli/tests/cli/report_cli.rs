//! `cfa report …` and `GET /dashboard` through the real binary: a log written by real
//! `cfa evaluate` runs (approved, replanned, blocked for PII, rolled back) and a
//! lifecycle database; every count on the pages is checked against the log, read here
//! independently of cfa-report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(crate) fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir)
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN");
    c
}

/// A project (`cfa init`) whose log (`.cfa/audit.jsonl`) and lifecycle database
/// (`cfa.db`) hold: 3 identical approved runs, a replanned run, a PII block, and a
/// rolled-back run.
pub(crate) fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    cfa(dir.path()).arg("init").assert().success();
    let ok = "Join nfe with clientes daily, anonymize pii, into silver";
    let runs: [(&str, &[&str], i32); 6] = [
        (ok, &[], 0),
        (ok, &[], 0),
        (ok, &[], 0),
        ("ingest nfe raw into bronze", &[], 0),
        ("Join NFe with Clientes and persist to Silver", &[], 4),
        (ok, &["--sandbox", "panic"], 5),
    ];
    for (intent, extra, code) in runs {
        cfa(dir.path())
            .args(["evaluate", "-f", "summary", "--db", "cfa.db"])
            .args(extra)
            .arg(intent)
            .assert()
            .code(code);
    }
    let log = dir.path().join(".cfa/audit.jsonl");
    let db = dir.path().join("cfa.db");
    assert!(log.is_file() && db.is_file());
    (dir, log, db)
}

/// Counts computed from the JSONL log here, not by cfa-report.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub events: usize,
    pub runs: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub final_states: BTreeMap<String, usize>,
    pub rule_hits: BTreeMap<String, usize>,
    pub by_stage: BTreeMap<String, usize>,
    pub pii_runs: usize,
    pub blocked_runs: usize,
    pub replans: usize,
    pub last_intent: String,
    pub first_signature: String,
}

pub(crate) fn expected(log: &Path) -> Expected {
    let mut x = Expected::default();
    let mut runs = BTreeSet::new();
    let mut pii = BTreeSet::new();
    let mut blocked = BTreeSet::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| e[k].as_str().unwrap().to_owned();
        let key = (
            s("intent_id"),
            e["details"]["decision_id"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
        x.events += 1;
        x.last_intent = s("intent_id");
        runs.insert(key.clone());
        *x.by_stage.entry(s("stage")).or_default() += 1;
        match s("event_type").as_str() {
            "policy_evaluation" => {
                *x.outcomes.entry(s("outcome")).or_default() += 1;
                for f in e["details"]["faults"].as_array().unwrap() {
                    let code = f.as_str().unwrap().to_owned();
                    if code.contains("PII") {
                        pii.insert(key.clone());
                    }
                    *x.rule_hits.entry(code).or_default() += 1;
                }
            }
            "final_decision" => {
                if x.first_signature.is_empty() {
                    x.first_signature = e["details"]["signature_hash"].as_str().unwrap().to_owned();
                }
                *x.final_states.entry(s("outcome")).or_default() += 1;
                if s("outcome") == "blocked" {
                    blocked.insert(key.clone());
                }
            }
            "replan_applied" => x.replans += 1,
            _ => {}
        }
    }
    x.runs = runs.len();
    x.pii_runs = pii.len();
    x.blocked_runs = blocked.len();
    x
}

/// The text of the element carrying `data-k="key"`.
pub(crate) fn k(html: &str, key: &str) -> String {
    let pat = format!("data-k=\"{key}\">");
    let i = html
        .find(&pat)
        .unwrap_or_else(|| panic!("no {pat} in page"))
        + pat.len();
    html[i..].split('<').next().unwrap().to_owned()
}

/// The count cell of row `key` in table `table`.
pub(crate) fn row_count(html: &str, table: &str, key: &str) -> String {
    let t = html
        .split(&format!("data-table=\"{table}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no table {table}"));
    let t = t.split("</table>").next().unwrap();
    let row = t
        .split(&format!("<tr data-key=\"{key}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no row {key} in {table}"));
    let row = row.split("</tr>").next().unwrap();
    let last = row.rsplit("<td class=\"num\">").next().unwrap();
    last.split('<').next().unwrap().to_owned()
}

/// The cell texts (tags stripped) of row `key` in table `table`.
pub(crate) fn row_cells(html: &str, table: &str, key: &str) -> Vec<String> {
    let t = html
        .split(&format!("data-table=\"{table}\""))
        .nth(1)
        .unwrap();
    let row = t
        .split(&format!("<tr data-key=\"{key}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no row {key} in {table}"));
    let row = row.split("</tr>").next().unwrap();
    row.split("<td")
        .skip(1)
        .map(|c| {
            let inner = c.split_once('>').unwrap().1;
            let inner = inner.rsplit_once("</td>").map_or(inner, |x| x.0);
            let mut text = String::new();
            let mut tag = false;
            for ch in inner.chars() {
                match ch {
                    '<' => tag = true,
                    '>' => tag = false,
                    c if !tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

pub(crate) fn check_counts(kind: &str, html: &str, x: &Expected) {
    match kind {
        "dashboard" | "compliance" => {
            assert_eq!(k(html, "events_total"), x.events.to_string());
            assert_eq!(k(html, "runs_total"), x.runs.to_string());
            for o in ["approve", "replan", "block"] {
                assert_eq!(
                    k(html, o),
                    x.outcomes.get(o).copied().unwrap_or(0).to_string(),
                    "{o}"
                );
            }
            assert_eq!(k(html, "pii_incidents"), x.pii_runs.to_string());
            assert_eq!(k(html, "blocked_runs"), x.blocked_runs.to_string());
            assert_eq!(k(html, "replans_total"), x.replans.to_string());
            for (code, n) in &x.rule_hits {
                assert_eq!(row_count(html, "rule-hits", code), n.to_string(), "{code}");
            }
            if kind == "dashboard" {
                for (st, n) in &x.final_states {
                    assert_eq!(row_count(html, "final-states", st), n.to_string(), "{st}");
                }
            }
        }
        "audit" => {
            assert_eq!(k(html, "chain_status"), "INTACT");
            assert_eq!(k(html, "chain_events"), x.events.to_string());
            for (stage, n) in &x.by_stage {
                assert_eq!(
                    row_count(html, "events-by-stage", stage),
                    n.to_string(),
                    "{stage}"
                );
            }
        }
        "execution" => {
            assert_eq!(k(html, "intent_id"), x.last_intent);
            assert_eq!(k(html, "state"), "rolled_back");
        }
        "lifecycle" => {
            // two skills: the approved intent and the replanned one (the PII block never executed)
            assert_eq!(html.matches("<tr data-key=").count(), 2, "{html}");
            // the approved signature: 3 published runs and the rolled-back one (IFg 0)
            let cells = row_cells(html, "skills", &x.first_signature);
            assert_eq!(
                (cells[3].as_str(), cells[6].as_str()),
                ("4", "0"),
                "{cells:?}"
            );
        }
        other => panic!("{other}"),
    }
}

pub(crate) const KINDS: [&str; 5] = ["execution", "audit", "lifecycle", "compliance", "dashboard"];

#[test]
fn every_kind_shows_the_logs_counts_and_is_deterministic() {
    let (dir, log, _db) = fixture();
    let x = expected(&log);
    assert!(x.outcomes["block"] >= 1 && x.replans >= 1 && x.pii_runs >= 1);
    for kind in KINDS {
        let out = dir.path().join(format!("{kind}.html"));
        cfa(dir.path())
            .args(["report", kind, "--lifecycle-db", "cfa.db", "-o"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::ends_with(format!(
                " report saved to {}\n",
                out.display()
            )));
        let html = std::fs::read_to_string(&out).unwrap();
        check_counts(kind, &html, &x);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{kind}"
        );
        // The same input and --now give the same bytes.
        let again = dir.path().join(format!("{kind}-2.html"));
        cfa(dir.path())
            .args(["report", kind, "--lifecycle-db", "cfa.db", "-o"])
            .arg(&again)
            .assert()
            .success();
        assert_eq!(html, std::fs::read_to_string(&again).unwrap(), "{kind}");
    }
    // The config's storage is the default log; --audit-file names it explicitly.
    cfa(dir.path())
        .args(["report", "dashboard", "--audit-file"])
        .arg(&log)
        .args(["--now", "2000-01-01", "--period", "1", "-o", "old.html"])
        .assert()
        .success();
    let old = std::fs::read_to_string(dir.path().join("old.html")).unwrap();
    assert_eq!(k(&old, "events_total"), "0");
    assert!(old.contains("No data: no policy_evaluation events in the last 1 days"));
    assert!(old.contains("generated at 2000-01-01 00:00 UTC"));
}

#[test]
fn execution_by_intent_id_and_errors() {
    let (dir, log, _db) = fixture();
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = first["intent_id"].as_str().unwrap();
    cfa(dir.path())
        .args(["report", "execution", "--intent-id", id, "-o", "one.html"])
        .assert()
        .success();
    let html = std::fs::read_to_string(dir.path().join("one.html")).unwrap();
    assert_eq!(k(&html, "intent_id"), id);
    assert_eq!(k(&html, "state"), "approved");
    assert!(html.contains(
        "<tr data-key=\"rows_output\"><td>rows_output</td><td class=\"num\">100000</td></tr>"
    ));
    // Unknown intent: exit 1, nothing written.
    cfa(dir.path())
        .args(["report", "execution", "--intent-id", "nope", "-o", "x.html"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("intent nope has no events in"));
    assert!(!dir.path().join("x.html").exists());
    // A missing log, an unwritable output, a bad --now: exit 1.
    cfa(dir.path())
        .args([
            "report",
            "audit",
            "--audit-file",
            "missing.jsonl",
            "-o",
            "x.html",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read audit log missing.jsonl: no such file",
        ));
    cfa(dir.path())
        .args(["report", "dashboard", "-o", "no/such/dir/x.html"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot write no/such/dir/x.html"));
    cfa(dir.path())
        .args(["report", "dashboard", "--now", "yesterday"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--now \"yesterday\" is not an ISO date",
        ));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
    // No log at all (no config): audit and execution are usage errors; the others say "no data".
    let empty = tempfile::tempdir().unwrap();
    cfa(empty.path())
        .args(["report", "audit"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--audit-file or --db"));
    cfa(empty.path())
        .args(["report", "compliance", "-o", "c.html"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no audit log given"));
    let html = std::fs::read_to_string(empty.path().join("c.html")).unwrap();
    assert!(html.contains("No data: no audit log was given"));
}

#[test]
fn a_tampered_log_and_a_checkpoint_show_on_the_audit_report() {
    let (dir, log, _db) = fixture();
    cfa(dir.path())
        .args(["audit", "keygen", "--name", "example.com/log", "--out", "k"])
        .assert()
        .success();
    let mut cp = log.as_os_str().to_owned();
    cp.push(".checkpoint");
    cfa(dir.path())
        .args(["audit", "checkpoint", "--file"])
        .arg(&log)
        .args(["--key", "k.key", "-o"])
        .arg(&cp)
        .assert()
        .success();
    cfa(dir.path())
        .args(["report", "audit", "--pubkey", "k.vkey", "-o", "a.html"])
        .assert()
        .success();
    let html = std::fs::read_to_string(dir.path().join("a.html")).unwrap();
    assert_eq!(k(&html, "chain_status"), "INTACT");
    assert!(html.contains("the log extends it (consistency proof checked)"));
    // Change one hashed field of event 2.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen("\"approved\"", "\"rejected\"", 1);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    cfa(dir.path())
        .args(["report", "audit", "--pubkey", "k.vkey", "-o", "b.html"])
        .assert()
        .success();
    let html = std::fs::read_to_string(dir.path().join("b.html")).unwrap();
    assert_eq!(k(&html, "chain_status"), "BROKEN");
    assert_eq!(k(&html, "first_bad_index"), "2");
}

#[test]
fn serve_renders_the_dashboard_from_its_own_log() {
    let (dir, log, _db) = fixture();
    let x = expected(&log);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir.path())
        .args(["serve", "--port", "0", "--audit-log"])
        .arg(&log)
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "error");
    let served = crate::support::spawn_served(cmd);
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&served.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let resp = get("/dashboard");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8")
    );
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(resp.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert_eq!(k(&resp, "events_total"), x.events.to_string());
    // One decision through the API: the next page counts its event.
    let (status, _) = crate::support::http(
        &served.addr,
        "POST",
        "/v1/decisions",
        &cfa_test_support::ok_signature().to_string(),
    );
    assert_eq!(status, 200);
    let resp = get("/dashboard?period=30");
    assert_eq!(k(&resp, "events_total"), (x.events + 1).to_string());
    assert!(get("/dashboard?period=x").starts_with("HTTP/1.1 400"));
}

#[test]
fn json_format_names_the_file_and_errors_are_json() {
    let (dir, log, _db) = fixture();
    let out = cfa(dir.path())
        .args(["report", "dashboard", "--audit-file"])
        .arg(&log)
        .args(["-o", "d.html", "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"], "dashboard");
    assert_eq!(v["path"], "d.html");
    let written = std::fs::metadata(dir.path().join("d.html")).unwrap().len();
    assert_eq!(v["bytes"].as_u64(), Some(written));
    // A log that is not there: one JSON error naming it, exit 1, nothing written.
    let out = cfa(dir.path())
        .args([
            "report",
            "audit",
            "--audit-file",
            "missing.jsonl",
            "-o",
            "a.html",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.jsonl"),
        "{v}"
    );
    assert!(!dir.path().join("a.html").exists());
}
