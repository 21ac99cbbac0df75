//! Shared helpers for the audit integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::path::PathBuf;

/// The conformance corpus root.
pub fn conformance_dir() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    )
}

/// The audit corpus folder (must exist).
pub fn audit_dir() -> PathBuf {
    let d = conformance_dir().join("audit");
    assert!(
        d.join("expected.json").is_file(),
        "conformance corpus is required at {}",
        d.display()
    );
    d
}

/// Builds the bytes of `name` (a base chain or `tampered/<x>.jsonl` from its recipe)
/// and checks them against expected.json's sha256 and size.
pub fn build_file(name: &str) -> Vec<u8> {
    let dir = audit_dir();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let entry = &expected[name];
    let bytes = if let Some(recipe) = entry.get("recipe").and_then(Value::as_str) {
        let recipe: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(recipe)).unwrap()).unwrap();
        let base = std::fs::read_to_string(dir.join(recipe["base"].as_str().unwrap())).unwrap();
        let lines: Vec<&str> = base.strip_suffix('\n').unwrap().split('\n').collect();
        let mut out = String::new();
        for seg in recipe["segments"].as_array().unwrap() {
            if let Some(copy) = seg.get("copy") {
                let (a, b) = (
                    copy[0].as_u64().unwrap() as usize,
                    copy[1].as_u64().unwrap() as usize,
                );
                let eol = seg.get("eol").and_then(Value::as_str).unwrap_or("\n");
                for l in &lines[a..b] {
                    out.push_str(l);
                    out.push_str(eol);
                }
            } else {
                out.push_str(seg["text"].as_str().unwrap());
            }
        }
        out.into_bytes()
    } else {
        std::fs::read(dir.join(name)).unwrap()
    };
    assert_eq!(
        bytes.len() as u64,
        entry["bytes"].as_u64().unwrap(),
        "{name} size"
    );
    assert_eq!(
        cfa_types::canonical::sha256_hex(&bytes),
        entry["sha256"].as_str().unwrap(),
        "{name} sha256"
    );
    bytes
}

/// expected.json.
pub fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(audit_dir().join("expected.json")).unwrap())
        .unwrap()
}

/// Runs the test `test` of module `module` (its `module_path!()`) again in a child
/// process whose file size limit is `blocks` 512-byte blocks, with `SIGXFSZ` ignored so a
/// write past the limit fails with `EFBIG`, and `env` set to `log`. The child must exit 0
/// and print `ACKED <n>` (the events it was told were written); returns its stdout and
/// that count.
pub fn run_under_file_limit(
    module: &str,
    test: &str,
    env: &str,
    log: &std::path::Path,
    blocks: u32,
) -> (String, u64) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"trap '' XFSZ; ulimit -f {blocks}; exec "$0" --exact "$1" --nocapture"#
        ))
        .arg(std::env::current_exe().unwrap())
        .arg(cfa_test_support::test_path(module, test))
        .env(env, log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ACKED "))
        .unwrap_or_else(|| panic!("the child printed no ACKED line: {stdout}"))
        .parse()
        .unwrap();
    (stdout, acked)
}
