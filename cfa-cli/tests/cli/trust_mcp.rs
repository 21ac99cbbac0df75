//! `cfa mcp` holds its ground and answers clearly, through the real binary over raw
//! JSON-RPC lines: an oversized line is discarded without being held in memory and
//! the server goes on; missing or mistyped tool arguments come back in the same
//! structured shape as every other tool error; non-object `params` / `arguments` get
//! -32602; made-up tool names share one rate-limit bucket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Server {
    async fn start(envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cfa"))
            .arg("mcp")
            .env_remove("CFA_MCP_API_KEY")
            .env_remove("CFA_MCP_RATE_LIMIT")
            .env_remove("CFA_POLICY_BUNDLE")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut s = Self {
            child,
            stdin,
            lines,
        };
        let init = s
            .request(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "trust", "version": "0"}}}))
            .await;
        assert_eq!(init["id"], 0, "{init}");
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        s
    }

    async fn send_bytes(&mut self, line: &[u8]) {
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send(&mut self, v: Value) {
        self.send_bytes(v.to_string().as_bytes()).await;
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

    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.request(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                            "params": {"name": tool, "arguments": arguments}}))
            .await
    }

    /// Peak and current resident memory of the server (KiB), from /proc.
    fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Some((field("VmHWM:")?, field("VmRSS:")?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_line_is_discarded_unbuffered_and_serving_goes_on() {
    let mut s = Server::start(&[]).await;
    let ping = s
        .request(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(ping["id"], 1);
    let before = s.memory_kib();

    // A 64 MiB request (the limit is 8 MiB), then a normal one.
    const LINE: usize = 64 << 20;
    let mut big = br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"pad":""#.to_vec();
    big.resize(LINE - 4, b'x');
    big.extend_from_slice(br#""}}"#);
    s.send_bytes(&big).await;
    drop(big);
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("longer than") && msg.contains("discarded"),
        "{msg}"
    );

    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .await;
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": 3, "result": {}}));
    let r = s.call(4, "cfa_list_backends", json!({})).await;
    assert_eq!(r["result"]["isError"], false, "{r}");

    // Memory: what a line within the limit may take, far from the line's size.
    if let (Some((_, rss_before)), Some((peak_after, _))) = (before, s.memory_kib()) {
        let growth_mib = peak_after.saturating_sub(rss_before) / 1024;
        assert!(
            growth_mib < 40,
            "peak memory grew by {growth_mib} MiB for a {} MiB line",
            LINE >> 20
        );
    }
}

/// The `{"error": {"code", "message"}}` of a tool result, checking that the text
/// content says the same as the structured content.
fn tool_error(r: &Value) -> (String, String) {
    let result = &r["result"];
    assert_eq!(result["isError"], true, "{r}");
    let structured = &result["structuredContent"];
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("text content is not JSON ({e}): {r}"));
    assert_eq!(&text, structured, "{r}");
    (
        structured["error"]["code"].as_str().unwrap().to_owned(),
        structured["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_errors_have_the_shape_of_other_tool_errors() {
    let mut s = Server::start(&[]).await;
    // An ordinary tool error, for reference.
    let r = s
        .call(
            1,
            "cfa_explain_fault",
            json!({"fault_code": "NO_SUCH_CODE"}),
        )
        .await;
    assert_eq!(tool_error(&r).0, "unknown_fault_code");

    let cases = [
        ("cfa_explain_fault", json!({}), "fault_code"),
        (
            "cfa_explain_fault",
            json!({"fault_code": 5}),
            "expected a string",
        ),
        ("cfa_evaluate_signature", json!({}), "signature"),
        (
            "cfa_evaluate_signature",
            json!({"signature": "x"}),
            "expected a map",
        ),
        (
            "cfa_evaluate_signature",
            json!({"signature": {}, "replan_count": -1}),
            "u32",
        ),
        (
            "cfa_evaluate_intent",
            json!({"intent": ["a"]}),
            "expected a string",
        ),
        ("cfa_compliance_check", json!({}), "intent"),
    ];
    for (i, (tool, args, needle)) in cases.into_iter().enumerate() {
        let r = s.call(10 + i as u64, tool, args.clone()).await;
        let (code, message) = tool_error(&r);
        assert_eq!(code, "invalid_arguments", "{tool} {args}: {r}");
        assert!(message.contains(tool), "{message}");
        assert!(message.contains(needle), "{tool} {args}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_object_params_and_arguments_get_invalid_params() {
    let mut s = Server::start(&[]).await;
    let lines = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "cfa_explain_fault", "arguments": ["CONTRACT_MISSING_MERGE_KEY"]}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "cfa_explain_fault", "arguments": "CONTRACT_MISSING_MERGE_KEY"}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": [1]}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": 7}}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [1]}),
    ];
    for line in lines {
        let id = line["id"].clone();
        let r = s.request(line.clone()).await;
        assert_eq!(r["id"], id, "{line}: {r}");
        assert_eq!(r["error"]["code"], -32602, "{line}: {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid params"),
            "{r}"
        );
    }
    // A notification with bad params gets no answer: the next line is the ping's.
    s.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": [1]}))
        .await;
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .await;
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": 7, "result": {}}));
    // Null arguments still mean none.
    let r = s
        .request(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                        "params": {"name": "cfa_list_backends", "arguments": null}}))
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tool_names_share_one_rate_limit_bucket() {
    let mut s = Server::start(&[("CFA_MCP_RATE_LIMIT", "2")]).await;
    for i in 0..2 {
        let r = s.call(i, &format!("made-up-{i}"), json!({})).await;
        assert_ne!(r["error"]["code"], -32002, "{r}");
    }
    let r = s.call(2, "made-up-2", json!({})).await;
    assert_eq!(r["error"]["code"], -32002, "{r}");
    // Real tools keep their own budgets.
    let r = s.call(3, "cfa_list_backends", json!({})).await;
    assert_eq!(r["result"]["isError"], false, "{r}");
}
