//! `cfa mcp` over raw JSON-RPC lines: parse errors, invalid requests, unknown methods,
//! notifications, API-key auth, the per-tool rate limit, protocol version
//! negotiation, and the key never reaching the logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Everything the server writes to stderr, read as it comes: a server tracing at
    /// `trace` level would otherwise fill the pipe and block.
    stderr: tokio::task::JoinHandle<String>,
}

const WAIT: Duration = Duration::from_secs(20);

impl Server {
    fn start(envs: &[(&str, &str)]) -> Self {
        Self::start_in(None, envs)
    }

    /// `cfa mcp` run from `dir` (config discovery starts there).
    fn start_in(dir: Option<&std::path::Path>, envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.arg("mcp")
            .env_remove("CFA_MCP_API_KEY")
            .env_remove("CFA_MCP_RATE_LIMIT")
            .env_remove("CFA_POLICY_BUNDLE")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            err.read_to_string(&mut text).await.unwrap();
            text
        });
        Self {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    async fn send_raw(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send(&mut self, v: Value) {
        self.send_raw(&v.to_string()).await;
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("server answered in time")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
    }

    async fn request(&mut self, v: Value) -> Value {
        self.send(v).await;
        self.recv().await
    }

    async fn initialize(&mut self, version: &str, meta: Value) -> Value {
        let r = self
            .request(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {},
                           "clientInfo": {"name": "raw", "version": "0"}, "_meta": meta}}))
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": {"_meta": meta}}))
            .await;
        r
    }

    /// Closes stdin and returns everything the server wrote to stderr.
    async fn finish(mut self) -> String {
        drop(self.stdin);
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("exits after stdin closes")
            .unwrap();
        assert!(status.success(), "{status}");
        self.stderr.await.unwrap()
    }
}

#[tokio::test]
async fn protocol_errors_and_notifications() {
    let mut s = Server::start(&[]);
    let init = s.initialize("2025-06-18", json!({})).await;
    assert_eq!(init["id"], 0);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "cfa-mcp");

    s.send_raw("this is not json").await;
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], Value::Null);

    s.send_raw("[1, 2]").await;
    assert_eq!(s.recv().await["error"]["code"], -32600);
    s.send_raw(r#"{"jsonrpc": "2.0", "id": 5}"#).await;
    let r = s.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(5), json!(-32600))
    );

    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 6, "method": "no/such/method", "params": {}}))
        .await;
    assert_eq!(r["id"], 6);
    assert_eq!(r["error"]["code"], -32601, "{r}");

    // Notifications (known or not) get no answer: the next line is the ping's.
    s.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}),
    )
    .await;
    s.send(json!({"jsonrpc": "2.0", "method": "notifications/whatever"}))
        .await;
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .await;
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": 7, "result": {}}));

    // Unknown tool: an error the client can see.
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                        "params": {"name": "nope", "arguments": {}}}))
        .await;
    assert_eq!(r["id"], 8);
    assert!(
        r["error"].is_object() || r["result"]["isError"] == true,
        "{r}"
    );
    s.finish().await;
}

#[tokio::test]
async fn newer_protocol_versions_are_echoed() {
    let mut s = Server::start(&[]);
    let init = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    s.finish().await;
}

#[tokio::test]
async fn api_key_and_rate_limit_never_logged() {
    const KEY: &str = "k3y-Sup3rS3cret-0123456789";
    let mut s = Server::start(&[
        ("CFA_MCP_API_KEY", KEY),
        ("CFA_MCP_RATE_LIMIT", "2"),
        ("RUST_LOG", "trace"),
    ]);
    // initialize and ping need no key.
    let init = s.initialize("2025-06-18", json!({"api_key": KEY})).await;
    assert!(init["result"].is_object(), "{init}");
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(r["result"], json!({}));

    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unauthorized")
    );
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list",
                        "params": {"_meta": {"api_key": "wrong"}}}))
        .await;
    assert_eq!(r["error"]["code"], -32001);
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list",
                        "params": {"_meta": {"api_key": KEY}}}))
        .await;
    assert!(r["result"]["tools"].as_array().unwrap().len() >= 7, "{r}");

    let call = |id: u32| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "cfa_list_backends", "arguments": {}, "_meta": {"api_key": KEY}}})
    };
    for id in [10, 11] {
        let r = s.request(call(id)).await;
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    let r = s.request(call(12)).await;
    assert_eq!(r["id"], 12);
    assert_eq!(r["error"]["code"], -32002, "{r}");
    assert_eq!(r["error"]["message"], "Rate limit exceeded: 2/60s per tool");
    // Another tool has its own window.
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 13, "method": "tools/call",
                        "params": {"name": "cfa_describe_rules", "arguments": {}, "_meta": {"api_key": KEY}}}))
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");

    let stderr = s.finish().await;
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging is on: {stderr}"
    );
    assert!(!stderr.contains(KEY), "the API key leaked into the logs");
}

#[tokio::test]
async fn defaults_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: audit.jsonl\ndefaults:\n  policy_bundle: lgpd-v1\n",
    )
    .unwrap();
    let mut s = Server::start_in(Some(dir.path()), &[]);
    s.initialize("2025-06-18", json!({})).await;
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "cfa_describe_rules", "arguments": {}}}))
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["policy_bundle"], "lgpd-v1.0",
        "{r}"
    );
    // The audit check verifies the config's log (created empty when the server opened it).
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "cfa_audit_check", "arguments": {}}}))
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert!(dir.path().join("audit.jsonl").is_file());
    s.finish().await;
}
