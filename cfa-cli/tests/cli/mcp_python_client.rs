//! The official Python MCP SDK (`mcp` from PyPI, in a cached virtualenv created by
//! scripts/mcp-python-client.sh) drives `cfa mcp`: initialize, list tools, replan →
//! patches → approve. Fails (never skips) when python3 or pip fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_sdk_client_round_trip() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        r#"{"datasets": {"nfe": {"classification": "high_volume", "size_gb": 4000,
            "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]}}}"#,
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(repo.join("scripts/mcp-python-client.sh"))
        .arg(env!("CARGO_BIN_EXE_cfa"))
        .arg(&catalog)
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_POLICY_BUNDLE")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().expect("a summary line");
    let v: Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["server"], "cfa-mcp");
    assert_eq!(v["first"], "replan");
    assert_eq!(v["second"], "approve");
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"cfa_evaluate_signature"), "{tools:?}");
    assert!(tools.len() >= 7, "{tools:?}");
}
