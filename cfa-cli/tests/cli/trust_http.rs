//! `cfa serve` reads never write, and no request can make it open a file: GET
//! endpoints leave the audit log byte-identical, and bundle names that look like paths
//! (outside, `..`, symlink, missing, directory, FIFO) all get one refusal without the
//! server touching them; /health keeps answering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Server, spawn_server};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(30);

async fn start(cwd: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(cwd)
        .args(["serve", "--port", "0"])
        .args(extra)
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    spawn_server(cmd, GUARD).await
}

/// One GET on a fresh connection: (status, JSON body or Null).
async fn get(addr: &str, path: &str) -> (u16, Value) {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad response {text:?}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    };
    tokio::time::timeout(GUARD, fut)
        .await
        .expect("answered in time")
}

fn snapshot(p: &Path) -> (Vec<u8>, SystemTime) {
    (
        std::fs::read(p).unwrap(),
        std::fs::metadata(p).unwrap().modified().unwrap(),
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn get_endpoints_leave_the_audit_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    for id in ["a", "b"] {
        let ok = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
            .args(["audit", "append", "--stage", "s", "--event-type", "t"])
            .args(["--outcome", "ok", "--intent-id", id, "--file"])
            .arg(&log)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    let arg = log.display().to_string();
    let s = start(dir.path(), &["--audit-log", &arg]).await;
    let before = snapshot(&log);
    let names = listing(dir.path());
    let (status, v) = get(&s.addr, "/v1/audit/verify").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total_events"], 2, "{v}");
    let (status, v) = get(&s.addr, "/v1/audit/verify?intent_id=a").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event_count"], 1, "{v}");
    for path in ["/v1/rules", "/health", "/metrics", "/openapi.json"] {
        assert_eq!(get(&s.addr, path).await.0, 200, "{path}");
    }
    assert_eq!(snapshot(&log), before, "a GET changed the audit log");
    assert_eq!(listing(dir.path()), names, "a GET created a file");
}

#[tokio::test]
async fn path_like_bundle_names_get_one_refusal_and_never_block() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("b.yaml"), "rules: []\n").unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("b.yaml"), root.path().join("link.yaml"))
        .unwrap();
    let fifo = root.path().join("x.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let s = start(root.path(), &[]).await;
    let outside_file = outside.path().join("b.yaml").display().to_string();
    let fifo_abs = fifo.display().to_string();
    let mut seen: Option<(u16, Value, String)> = None;
    for given in [
        outside_file.as_str(),
        "../b.yaml",
        "link.yaml",
        "missing.yaml",
        "sub",
        "x.yaml",
        fifo_abs.as_str(),
        "x.yaml",
        "x.yaml",
    ] {
        let (status, v) = get(&s.addr, &format!("/v1/rules?policy_bundle={given}")).await;
        assert!((400..500).contains(&status), "{given}: {status} {v}");
        let code = v["error"]["code"].clone();
        let message = v["error"]["message"]
            .as_str()
            .unwrap()
            .replace(given, "NAME");
        match &seen {
            None => seen = Some((status, code, message)),
            Some((st, c, m)) => {
                assert_eq!((status, &code, &message), (*st, c, m), "{given}");
            }
        }
    }
    assert_eq!(get(&s.addr, "/health").await.0, 200);
}
