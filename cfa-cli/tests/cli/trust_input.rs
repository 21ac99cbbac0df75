#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Bad input through the real binary: no panic, no hang, no megabytes of echo. Parse
//! errors at huge columns, huge one-line files, deep nesting, lone surrogates, null
//! YAML keys, and a closed stdout pipe.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn ex(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
        .to_str()
        .unwrap()
        .to_owned()
}

fn cfa(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("cfa").unwrap();
    c.current_dir(dir);
    c
}

/// Every command that reads a file of `kind`, with the file's path.
fn commands(kind: &str, path: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match kind {
        "signature" => vec![
            v(&["signature", "validate", path]),
            v(&["signature", "validate", "-f", "json", path]),
            v(&["policy", "check", "-s", path]),
            v(&["policy", "check", "-s", path, "-f", "json"]),
            v(&["generate", "-s", path, "-b", "sql", "--out", "out"]),
        ],
        "catalog" => vec![
            v(&["catalog", "validate", path]),
            v(&["catalog", "validate", "-f", "json", path]),
            v(&[
                "policy",
                "check",
                "-s",
                &ex("signatures/ok.json"),
                "-c",
                path,
            ]),
            v(&["evaluate", "load nfe into bronze", "-c", path]),
            v(&["resolve", "load nfe into bronze", "-c", path]),
            v(&[
                "generate",
                "-s",
                &ex("signatures/ok.json"),
                "-c",
                path,
                "-b",
                "sql",
                "--out",
                "out",
            ]),
        ],
        "bundle" => vec![
            v(&["policy", "validate", path]),
            v(&["policy", "validate", "-f", "json", path]),
            v(&[
                "policy",
                "check",
                "-s",
                &ex("signatures/ok.json"),
                "-p",
                path,
            ]),
            v(&["rules", "list", "-p", path]),
        ],
        "keywords" => vec![v(&["resolve", "load nfe into bronze", "--keywords", path])],
        "config" => vec![v(&["status", "--config", path])],
        _ => unreachable!(),
    }
}

/// Runs `args` and returns (exit code, stderr with miette's wrapping undone).
fn run(dir: &Path, args: &[String]) -> (Option<i32>, String) {
    let out = cfa(dir).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace("\n  │ ", " ");
    (out.status.code(), stderr)
}

fn assert_clean_error(args: &[String], code: Option<i32>, stderr: &str, located: &str) {
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_ne!(code, Some(101), "{args:?}: {stderr}");
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains(located),
        "{args:?} should name {located}: {stderr}"
    );
}

#[test]
fn an_error_past_column_65535_renders_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let pad = " ".repeat(70_000);
    for (kind, name, text) in [
        ("signature", "sig.json", format!("{{\"a\":{pad}x}}")),
        ("catalog", "cat.json", format!("{{\"datasets\":{pad}x}}")),
        ("catalog", "cat.yaml", format!("datasets: [1,{pad}: ]\n")),
        ("bundle", "b.json", format!("{{\"rules\":{pad}x}}")),
        ("bundle", "b.yaml", format!("rules: [1,{pad}: ]\n")),
        ("keywords", "k.json", format!("{{\"a\":{pad}x}}")),
        ("config", "cfa.json", format!("{{\"a\":{pad}x}}")),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let path = p.to_str().unwrap();
        for args in commands(kind, path) {
            let (code, stderr) = run(dir.path(), &args);
            assert_clean_error(&args, code, &stderr, &format!("{name}:1:"));
            assert!(stderr.len() < 4096, "{args:?}: {} bytes", stderr.len());
        }
    }
}

#[test]
fn a_50_mb_one_line_file_gets_a_small_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let tail = " ".repeat(50 * 1024 * 1024);
    for (kind, name, text) in [
        ("signature", "sig.json", format!("{{\"a\": x{tail}}}")),
        (
            "catalog",
            "cat.json",
            format!("{{\"datasets\": tru{tail}}}"),
        ),
        ("catalog", "cat.yaml", format!("datasets: [1, : ]{tail}\n")),
        ("bundle", "b.json", format!("{{\"rules\": x{tail}}}")),
        ("bundle", "b.yaml", format!("rules: [1, : ]{tail}\n")),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let path = p.to_str().unwrap();
        let args = commands(kind, path).swap_remove(0);
        let (code, stderr) = run(dir.path(), &args);
        assert_clean_error(&args, code, &stderr, &format!("{name}:1:"));
        assert!(
            stderr.len() < 4096,
            "{args:?}: {} bytes of stderr",
            stderr.len()
        );
    }
}

#[test]
fn json_columns_are_one_based_characters() {
    let dir = tempfile::tempdir().unwrap();
    let eof = dir.path().join("eof.json");
    std::fs::write(&eof, "{\n").unwrap();
    let utf8 = dir.path().join("utf8.json");
    std::fs::write(&utf8, "{\"ção\": x}").unwrap();
    for kind in ["signature", "catalog", "bundle"] {
        for args in commands(kind, eof.to_str().unwrap()) {
            let (code, stderr) = run(dir.path(), &args);
            assert_eq!(code, Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("eof.json:2:1: "), "{args:?}: {stderr}");
            assert!(!stderr.contains(":2:0"), "{args:?}: {stderr}");
        }
        // Columns count characters, not bytes.
        for args in commands(kind, utf8.to_str().unwrap()) {
            let (_, stderr) = run(dir.path(), &args);
            assert!(stderr.contains("utf8.json:1:9: "), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn lone_surrogates_are_named_for_every_json_file_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name) in [
        ("signature", "sig.json"),
        ("catalog", "cat.json"),
        ("bundle", "b.json"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, "{\"a\": \"\\ud800\"}").unwrap();
        for args in commands(kind, p.to_str().unwrap()) {
            let (code, stderr) = run(dir.path(), &args);
            assert_clean_error(&args, code, &stderr, &format!("{name}:1:"));
            assert!(
                stderr.contains("unpaired UTF-16 surrogate escape \\ud800"),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn deep_nesting_is_a_clear_error_never_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "[".repeat(100_000);
    for (kind, name, text) in [
        ("signature", "sig.json", deep.clone()),
        ("catalog", "cat.json", deep.clone()),
        ("catalog", "cat.yaml", deep.clone()),
        ("catalog", "seq.yaml", "- ".repeat(100_000) + "x\n"),
        ("bundle", "b.json", deep.clone()),
        ("bundle", "b.yaml", deep.clone()),
        ("config", "cfa.yaml", deep.clone()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        for args in commands(kind, p.to_str().unwrap()) {
            let (code, stderr) = run(dir.path(), &args);
            assert_clean_error(&args, code, &stderr, &format!("{name}:1:"));
            assert!(stderr.contains("nesting is too deep"), "{args:?}: {stderr}");
            assert!(!stderr.contains("budget breached"), "{args:?}: {stderr}");
            assert!(stderr.len() < 4096, "{args:?}: {} bytes", stderr.len());
        }
    }
}

#[test]
fn null_yaml_keys_are_named_for_every_yaml_file_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name) in [
        ("catalog", "cat.yaml"),
        ("bundle", "b.yaml"),
        ("config", "cfa.yaml"),
    ] {
        for text in ["null: 1\n", "~: x\n"] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            for args in commands(kind, p.to_str().unwrap()) {
                let (code, stderr) = run(dir.path(), &args);
                assert_clean_error(&args, code, &stderr, &format!("{name}:1:1"));
                assert!(
                    stderr.contains("a mapping key is null"),
                    "{args:?}: {stderr}"
                );
                assert!(!stderr.contains("Option<String>"), "{args:?}: {stderr}");
            }
        }
    }
}

#[test]
fn a_huge_value_in_a_validation_issue_is_clipped() {
    let dir = tempfile::tempdir().unwrap();
    let big = "z".repeat(1_000_000);
    let p = dir.path().join("cat.json");
    std::fs::write(
        &p,
        serde_json::json!({"datasets": {big.clone(): {"classification": big}}}).to_string(),
    )
    .unwrap();
    let path = p.to_str().unwrap().to_owned();
    for args in commands("catalog", &path) {
        if args.contains(&"json".to_owned()) {
            continue; // the JSON report carries the data as it is
        }
        let out = cfa(dir.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            out.stdout.len() + out.stderr.len() < 4096,
            "{args:?}: {} + {} bytes",
            out.stdout.len(),
            out.stderr.len()
        );
        let all = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(all.contains("cat.json"), "{args:?}: {all}");
    }
}

/// Runs `args` with stdout a pipe whose reading end is already closed.
fn run_with_closed_stdout(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let chain = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/audit/chain_small.jsonl");
    let chain = if chain.is_file() {
        chain
    } else {
        PathBuf::from("/work/shared/conformance/audit/chain_small.jsonl")
    };
    let catalog = ex("catalog.json");
    let ok = ex("signatures/ok.json");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["rules", "list"], 0),
        (vec!["schema", "signature"], 0),
        (vec!["demo"], 0),
        (
            vec![
                "evaluate",
                "Join nfe with clientes daily, anonymize pii, into silver",
                "-c",
                &catalog,
                "-p",
                "prod-v1",
            ],
            0,
        ),
        (
            vec![
                "evaluate",
                "Join NFe with Clientes and persist to Silver",
                "-c",
                &catalog,
                "-p",
                "prod-v1",
                "-f",
                "json",
            ],
            4,
        ),
        (
            vec![
                "audit",
                "show",
                "--file",
                chain.to_str().unwrap(),
                "--id",
                cfa_test_support::REFERENCE_INTENT_ID,
            ],
            0,
        ),
        (vec!["policy", "check", "-s", &ok, "-f", "json"], 0),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run_with_closed_stdout(dir.path(), &args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_ne!(code, Some(101), "{args:?}: {stderr}");
        // The command still ends with its own decision's code.
        assert_eq!(code, Some(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this system
    };
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("cfa"))
        .args(["rules", "list"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
}
