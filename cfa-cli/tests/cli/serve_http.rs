//! `cfa serve` as a child process on 127.0.0.1:0, driven over raw HTTP/1.1 keep-alive
//! connections: a bounded load test (10,000 decisions over 32 connections, metrics
//! equal the traffic, the audit chain verifies with 10,000 events), the error shapes
//! (400, 401, 404, 413, 422), and a slow client that is cut off while others are served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Conn, Server, spawn_server};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

const TOKEN: &str = "t0ken-for-tests";
/// Upper bound on any single wait (a hang fails the test instead of blocking CI).
const GUARD: Duration = Duration::from_secs(60);

async fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.arg("serve")
        .args(["--port", "0"])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .args(extra);
    start_with(cmd).await
}

/// Starts `cmd` (a `cfa serve` on port 0) with the test token and waits for its address.
async fn start_with(mut cmd: Command) -> Server {
    cmd.env("CFA_HTTP_TOKEN", TOKEN)
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    let server = spawn_server(cmd, GUARD).await;
    let addr = &server.addr;
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    server
}

fn signature(i: usize) -> Value {
    // i % 3: 0 approve, 1 replan (no partition filter), 2 block (raw PII)
    let (no_pii_raw, partition_by) = match i % 3 {
        0 => (true, json!(["processing_date"])),
        1 => (true, json!([])),
        _ => (false, json!(["processing_date"])),
    };
    json!({
        "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
        "datasets": [{"name": "clientes", "classification": "sensitive", "size_gb": 0.5,
                      "pii_columns": ["cpf"], "partition_column": "processing_date",
                      "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": no_pii_raw, "merge_key_required": true, "enforce_types": true,
                        "partition_by": partition_by, "max_cost_dbu": 20.0, "custom": {}},
        "execution_context": {"policy_bundle_version": "v", "catalog_snapshot_version": "c",
                              "context_registry_version_id": "r"},
        "intent_id": format!("intent-{i}"),
        "source_intent_raw": "load clientes"
    })
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_10k_decisions_metrics_and_audit() {
    const CONNS: usize = 32;
    const TOTAL: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--audit-fsync", "batch"]).await;
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| signature(i).to_string().into_bytes())
        .collect();
    let bodies = std::sync::Arc::new(bodies);

    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let addr = server.addr.clone();
        let bodies = std::sync::Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut counts = [0usize; 3];
            let mut errors = 0usize;
            let mut i = c;
            while i < TOTAL {
                let r = conn
                    .call("POST", "/v1/decisions", Some(TOKEN), &bodies[i % 3])
                    .await;
                let expected = ["approve", "replan", "block"][i % 3];
                if r.status == 200 && r.json()["action"] == expected {
                    counts[i % 3] += 1;
                } else {
                    errors += 1;
                }
                i += CONNS;
            }
            (counts, errors)
        }));
    }
    let mut counts = [0usize; 3];
    let mut errors = 0;
    for t in tasks {
        let (c, e) = tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .unwrap()
            .unwrap();
        for k in 0..3 {
            counts[k] += c[k];
        }
        errors += e;
    }
    assert_eq!(errors, 0);
    assert_eq!(counts.iter().sum::<usize>(), TOTAL);

    let mut conn = Conn::open(&server.addr).await;
    let m = conn.call("GET", "/metrics", Some(TOKEN), b"").await;
    assert_eq!(m.status, 200);
    let text = m.body;
    assert_eq!(
        metric(&text, "cfa_decisions_total{action=\"approve\"}"),
        counts[0] as u64
    );
    assert_eq!(
        metric(&text, "cfa_decisions_total{action=\"replan\"}"),
        counts[1] as u64
    );
    assert_eq!(
        metric(&text, "cfa_decisions_total{action=\"block\"}"),
        counts[2] as u64
    );
    assert_eq!(metric(&text, "cfa_replans_total"), counts[1] as u64);
    assert_eq!(
        metric(
            &text,
            "cfa_blocks_total{fault_code=\"GOVERNANCE_PII_WITHOUT_POLICY\"}"
        ),
        counts[2] as u64
    );
    assert_eq!(
        metric(&text, "cfa_decision_duration_seconds_count"),
        TOTAL as u64
    );
    assert_eq!(
        metric(&text, "cfa_audit_events_written_total"),
        TOTAL as u64
    );
    assert_eq!(metric(&text, "cfa_audit_chain_length"), TOTAL as u64);
    assert_eq!(
        metric(
            &text,
            "cfa_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/decisions\",status=\"200\"}"
        ),
        TOTAL as u64
    );

    let v = conn
        .call(
            "GET",
            "/v1/audit/verify?intent_id=intent-1",
            Some(TOKEN),
            b"",
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let v = v.json();
    assert_eq!(v["chain_intact"], true, "{v}");
    assert_eq!(v["total_events"], TOTAL);
    assert_eq!(
        v["event_count"], counts[1],
        "the replan signature carries intent-1"
    );
    let report = cfa_audit::verify_file(
        &dir.path().join("audit.jsonl"),
        &cfa_audit::VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.intact());
    assert_eq!(report.events, TOTAL as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    // A generous timeout: this test is about error shapes, and a loaded CI machine must
    // not turn the 1 MiB body below into a timeout instead of a 413.
    let server = start(dir.path(), &["--request-timeout-ms", "10000"]).await;
    let mut c = Conn::open(&server.addr).await;

    let r = c.call("GET", "/health", None, b"").await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ok")));

    let r = c.call("POST", "/v1/decisions", None, b"{}").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "unauthorized");
    let r = c.call("GET", "/metrics", Some("wrong"), b"").await;
    assert_eq!(r.status, 401);

    let r = c
        .call("POST", "/v1/decisions", Some(TOKEN), b"{not json")
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "invalid_json");

    let r = c
        .call("POST", "/v1/decisions", Some(TOKEN), br#"{"domain": "d"}"#)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "invalid_signature");

    let r = c.call("GET", "/v1/nope", Some(TOKEN), b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");

    let r = c
        .call(
            "POST",
            "/v1/decisions?policy_bundle=/etc/passwd",
            Some(TOKEN),
            signature(0).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "unknown_policy_bundle");

    // A built-in bundle by name, in the body wrapper.
    let body = json!({"signature": signature(0), "policy_bundle": "finops-strict-v1"});
    let r = c
        .call(
            "POST",
            "/v1/decisions",
            Some(TOKEN),
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["policy_bundle"]
            .as_str()
            .unwrap()
            .starts_with("finops-strict-v1")
    );

    let r = c
        .call("GET", "/v1/rules?policy_bundle=prod-v1", Some(TOKEN), b"")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["rule_count"].as_u64().unwrap() > 0);

    let r = c
        .call(
            "POST",
            "/v1/evaluate",
            Some(TOKEN),
            br#"{"intent": "make me a sandwich"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["state"], "blocked", "{v}");
    assert_eq!(
        v["faults"][0]["code"],
        "NORMALIZATION_NO_CATALOG_DATASET_MATCH"
    );
    assert!(!v["audit_event_hashes"].as_array().unwrap().is_empty());

    let r = c.call("GET", "/openapi.json", Some(TOKEN), b"").await;
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/decisions"]["post"].is_object());

    // Oversized body: 413 (the server may close the connection afterwards).
    let big = vec![b' '; (1 << 20) + 16];
    let mut c2 = Conn::open(&server.addr).await;
    let r = c2.call("POST", "/v1/decisions", Some(TOKEN), &big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--request-timeout-ms", "1000"]).await;

    // Half the headers, then silence.
    let mut slow_headers = TcpStream::connect(&server.addr).await.unwrap();
    slow_headers
        .write_all(b"POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        .await
        .unwrap();
    // Full headers, half the body, then silence.
    let mut slow_body = Conn::open(&server.addr).await;
    let body = signature(0).to_string();
    let head = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = slow_body.stream.get_mut();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();

    // Others keep being served meanwhile.
    let mut fast = Conn::open(&server.addr).await;
    for _ in 0..5 {
        let r = fast
            .call("POST", "/v1/decisions", Some(TOKEN), body.as_bytes())
            .await;
        assert_eq!(r.status, 200);
    }

    // The half-body request times out with 408.
    let r = tokio::time::timeout(GUARD, slow_body.read()).await.unwrap();
    assert_eq!(r.status, 408, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "request_timeout");

    // The half-header connection is closed by the server (EOF, or a 408 then EOF).
    let mut buf = Vec::new();
    let n = tokio::time::timeout(GUARD, slow_headers.read_to_end(&mut buf))
        .await
        .expect("the server closes the stalled connection");
    assert!(n.is_ok() || buf.is_empty());
    if !buf.is_empty() {
        assert!(
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
            "{buf:?}"
        );
    }

    let r = fast.call("GET", "/health", None, b"").await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_come_from_the_config_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: logs/audit.jsonl\ndefaults:\n  policy_bundle: finops-strict-v1\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir.path()).args(["serve", "--port", "0"]);
    let server = start_with(cmd).await;
    let mut c = Conn::open(&server.addr).await;
    let r = c.call("GET", "/v1/rules", Some(TOKEN), b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["policy_bundle"], "finops-strict-v1.0");
    let r = c
        .call(
            "POST",
            "/v1/decisions",
            Some(TOKEN),
            signature(0).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let log = std::fs::read_to_string(dir.path().join("logs/audit.jsonl")).unwrap();
    assert_eq!(
        log.lines().count(),
        1,
        "the decision went to the config's log"
    );

    // A flag beats the config.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir.path())
        .args(["serve", "--port", "0", "--policy-bundle", "prod-v1"]);
    let server = start_with(cmd).await;
    let mut c = Conn::open(&server.addr).await;
    let r = c.call("GET", "/v1/rules", Some(TOKEN), b"").await;
    assert_eq!(r.json()["policy_bundle"], "prod-v1.0");
}

/// A refused request whose body arrives after its headers (the server answers before
/// reading it) leaves the keep-alive connection usable: the server reads and drops the
/// small body instead of closing the connection under the client's next request.
#[tokio::test]
async fn a_refused_request_keeps_its_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let mut c = Conn::open(&server.addr).await;
    for round in 0..3 {
        let body = br#"{"intent_id": "i"}"#;
        let head = format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = c.stream.get_mut();
        s.write_all(head.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
        // No token: refused with 401, before the handler would read the body.
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(body).await.unwrap();
        let r = c.read().await;
        assert_eq!(r.status, 401, "round {round}: {}", r.body);
        // The same connection answers the next request.
        let r = c.call("GET", "/health", None, b"").await;
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
    }
}

/// A decision's response head is `content-type: application/json`, then `x-cfa-action`
/// with the decision's action, then the body's `content-length` (and hyper's `date`),
/// for every action: the head the document's `Json` response had.
#[tokio::test]
async fn a_decisions_response_head_names_its_type_and_action() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let mut c = Conn::open(&server.addr).await;
    for (i, action) in ["approve", "replan", "block"].into_iter().enumerate() {
        let body = serde_json::to_vec(&signature(i)).unwrap();
        c.send("POST", "/v1/decisions", Some(TOKEN), &body).await;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            tokio::time::timeout(GUARD, c.stream.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let length: usize = lines
            .iter()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut doc = vec![0; length];
        c.stream.read_exact(&mut doc).await.unwrap();
        let doc: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(doc["action"], action);
        lines.retain(|l| !l.starts_with("date: "));
        assert_eq!(
            lines,
            [
                "HTTP/1.1 200 OK".to_owned(),
                "content-type: application/json".to_owned(),
                format!("x-cfa-action: {action}"),
                format!("content-length: {length}"),
            ]
        );
    }
}
