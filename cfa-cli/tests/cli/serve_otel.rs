//! With the `otel` feature, `cfa mcp --otel-endpoint` exports its tool spans over
//! OTLP/HTTP (protobuf): a small receiver in the test accepts `POST /v1/traces` and
//! checks that a protobuf body naming the span and the tool arrived.
//! Run with: cargo nextest run -p cfa-cli --features otel --test serve_otel
#![cfg(feature = "otel")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Received {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// Accepts connections until the test ends; sends every request it reads.
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let (mut len, mut content_type) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            } else if k.eq_ignore_ascii_case("content-type") {
                                content_type = v.trim().to_owned();
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let mut w = &stream;
                    w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                    let _ = tx.send(Received {
                        path,
                        content_type,
                        body,
                    });
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn mcp_tool_spans_reach_an_otlp_receiver() {
    let (addr, rx) = receiver();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["mcp", "--otel-endpoint", &format!("http://{addr}")])
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut send = |s: &str| {
            stdin.write_all(s.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
            stdin.flush().unwrap();
        };
        send(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        );
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("cfa-mcp"), "{line}");
        send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        send(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"cfa_list_backends","arguments":{}}}"#,
        );
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"id\":2"), "{line}");
    }
    // stdin is closed: the server shuts down and flushes its spans.
    let status = child.wait().unwrap();
    assert!(status.success());

    let mut seen = Vec::new();
    while let Ok(r) = rx.recv_timeout(Duration::from_secs(20)) {
        let done = r.body.windows(8).any(|w| w == b"mcp.tool");
        seen.push(r);
        if done {
            break;
        }
    }
    let export = seen
        .iter()
        .find(|r| r.body.windows(8).any(|w| w == b"mcp.tool"))
        .unwrap_or_else(|| panic!("no span export among {} requests", seen.len()));
    assert_eq!(export.path, "/v1/traces");
    assert_eq!(export.content_type, "application/x-protobuf");
    assert!(
        export
            .body
            .windows(b"cfa_list_backends".len())
            .any(|w| w == b"cfa_list_backends"),
        "the tool name is a span attribute"
    );
    assert!(
        export.body.windows(7).any(|w| w == b"cfa-mcp"),
        "service.name resource attribute"
    );
}

/// `cfa serve --otel-endpoint` exports its request spans with the fields recorded after
/// the handler ran: the status (an integer attribute 200), the decision's action and its
/// fault codes. Only an exporting layer reads them, so they are recorded only then.
#[test]
fn serve_request_spans_carry_status_and_decision() {
    let (addr, rx) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["serve", "--port", "0", "--workers", "1"])
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .args(["--otel-endpoint", &format!("http://{addr}")])
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let server = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
        if let Some((_, a)) = line.trim().split_once("http://") {
            break a.to_owned();
        }
    };
    let body = cfa_test_support::ok_signature().to_string();
    let mut conn = std::net::TcpStream::connect(&server).unwrap();
    write!(
        conn,
        "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("x-cfa-action: approve\r\n"), "{response}");
    // SIGINT: the server shuts down and flushes its spans.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());

    let has = |body: &[u8], needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let mut export = None;
    while let Ok(r) = rx.recv_timeout(Duration::from_secs(20)) {
        if has(&r.body, b"http.request") {
            export = Some(r);
            break;
        }
    }
    let export = export.expect("no request span exported");
    assert_eq!(export.path, "/v1/traces");
    // The attributes' keys (OTLP KeyValue.key) and the decision's action.
    let text = String::from_utf8_lossy(&export.body);
    for needle in [
        &b"\x0a\x06status"[..],
        b"\x0a\x08decision",
        b"\x0a\x0bfault_codes",
        b"approve",
    ] {
        assert!(has(&export.body, needle), "{needle:?} not in {text:?}");
    }
}
