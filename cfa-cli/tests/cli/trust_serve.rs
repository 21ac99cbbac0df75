//! `cfa serve` holds its ground against web pages and floods, through the real server
//! on 127.0.0.1:0 over raw HTTP/1.1: a foreign `Host` (DNS rebinding) gets 421, a
//! cross-site browser request 403, a body not declared as JSON 415 before anything is
//! parsed or audited; metrics labels stay bounded under made-up methods and paths; a
//! pile of idle sockets is shed at `--max-connections` while /health keeps answering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{Resp, Server, spawn_server};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Upper bound on any single wait (a hang fails the test instead of blocking CI).
const GUARD: Duration = Duration::from_secs(60);

async fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.current_dir(dir)
        .arg("serve")
        .args(["--port", "0"])
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .args(extra)
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "error")
        .stderr(Stdio::inherit());
    spawn_server(cmd, GUARD).await
}

/// One request on a fresh connection: `head` is the request line plus headers (no
/// blank line); `Connection: close` and the body's length are added.
async fn call(addr: &str, head: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{head}\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .unwrap();
    Resp::parse(&raw)
}

/// A signature that is approved.
fn signature() -> Value {
    json!({
        "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
        "datasets": [{"name": "clientes", "classification": "sensitive", "size_gb": 0.5,
                      "pii_columns": ["cpf"], "partition_column": "processing_date",
                      "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                        "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
        "execution_context": {"policy_bundle_version": "v", "catalog_snapshot_version": "c",
                              "context_registry_version_id": "r"},
        "intent_id": "intent-trust",
        "source_intent_raw": "load clientes"
    })
}

fn audit_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_get_421_and_loopback_names_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let audit_path = dir.path().join("audit.jsonl").display().to_string();
    for path in ["/v1/rules", "/v1/audit/verify", "/health", "/metrics"] {
        for host in [
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "10.1.2.3",
        ] {
            let r = call(
                &s.addr,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}"),
                b"",
            )
            .await;
            assert_eq!(r.status, 421, "{path} {host}: {r:?}");
            assert_eq!(r.code(), "host_not_allowed", "{r:?}");
            assert!(!r.body.contains(&audit_path), "{r:?}");
        }
    }
    // The request target's authority counts too.
    let r = call(
        &s.addr,
        "GET http://evil.example/v1/rules HTTP/1.1\r\nHost: localhost",
        b"",
    )
    .await;
    assert_eq!(r.status, 421, "{r:?}");
    let port = s.port();
    for host in [
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        format!("127.0.0.1:{port}"),
        "127.8.9.10".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let r = call(
            &s.addr,
            &format!("GET /v1/rules HTTP/1.1\r\nHost: {host}"),
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    // A client that sends no Host at all (not a browser) is answered.
    let r = call(&s.addr, "GET /health HTTP/1.0", b"").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_and_any_host_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            "--allowed-host",
            "CFA.internal",
            "--allowed-host",
            "other.lan",
        ],
    )
    .await;
    for host in ["cfa.internal", "cfa.internal:80", "other.lan."] {
        let r = call(
            &s.addr,
            &format!("GET /health HTTP/1.1\r\nHost: {host}"),
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    let r = call(&s.addr, "GET /health HTTP/1.1\r\nHost: evil.example", b"").await;
    assert_eq!(r.status, 421, "{r:?}");

    let dir2 = tempfile::tempdir().unwrap();
    let any = start(dir2.path(), &["--allow-any-host"]).await;
    let r = call(
        &any.addr,
        "GET /v1/rules HTTP/1.1\r\nHost: evil.example",
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_browser_requests_get_403() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let body = signature().to_string();
    let post = |extra: &str| {
        format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json{extra}"
        )
    };
    for extra in [
        "\r\nOrigin: https://evil.example",
        "\r\nOrigin: null",
        "\r\nSec-Fetch-Site: cross-site",
        "\r\nOrigin: http://localhost.evil.example\r\nSec-Fetch-Site: cross-site",
    ] {
        let r = call(&s.addr, &post(extra), body.as_bytes()).await;
        assert_eq!(r.status, 403, "{extra}: {r:?}");
        assert_eq!(r.code(), "cross_site_request", "{r:?}");
    }
    let r = call(
        &s.addr,
        "GET /v1/rules HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site",
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        audit_lines(dir.path()),
        0,
        "refused requests are not audited"
    );
    // The server's own pages and same-origin requests pass.
    let own = format!(
        "\r\nOrigin: http://localhost:{}\r\nSec-Fetch-Site: same-origin",
        s.port()
    );
    let r = call(&s.addr, &post(&own), body.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(audit_lines(dir.path()), 1);

    // An allowed origin is accepted, others still are not.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = start(dir2.path(), &["--allowed-origin", "https://dash.example"]).await;
    let r = call(
        &s2.addr,
        "GET /v1/rules HTTP/1.1\r\nHost: localhost\r\nOrigin: https://dash.example\r\nSec-Fetch-Site: cross-site",
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(
        &s2.addr,
        "GET /v1/rules HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example",
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_not_declared_json_get_415_unparsed_and_unaudited() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    // A valid signature: only the declared type stands between it and the audit log.
    let body = signature().to_string();
    for ct in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=----x"),
        Some("application/jsonp"),
        None,
    ] {
        let mut head = "POST /v1/decisions HTTP/1.1\r\nHost: localhost".to_owned();
        if let Some(ct) = ct {
            head.push_str(&format!("\r\nContent-Type: {ct}"));
        }
        let r = call(&s.addr, &head, body.as_bytes()).await;
        assert_eq!(r.status, 415, "{ct:?}: {r:?}");
        assert_eq!(r.code(), "unsupported_media_type", "{r:?}");
        let r = call(
            &s.addr,
            &head.replace("/v1/decisions", "/v1/evaluate"),
            br#"{"intent": "join nfe with clientes into silver"}"#,
        )
        .await;
        assert_eq!(r.status, 415, "{ct:?}: {r:?}");
    }
    // Other body-carrying methods too.
    let r = call(
        &s.addr,
        "PUT /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain",
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(audit_lines(dir.path()), 0, "nothing refused was audited");
    let metrics = call(&s.addr, "GET /metrics HTTP/1.1\r\nHost: localhost", b"").await;
    assert!(
        metrics
            .body
            .contains("cfa_decisions_total{action=\"approve\"} 0"),
        "{}",
        metrics.body
    );

    let r = call(
        &s.addr,
        "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: Application/JSON; charset=utf-8",
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(audit_lines(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_stay_bounded_under_made_up_methods_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let metrics = || async {
        call(&s.addr, "GET /metrics HTTP/1.1\r\nHost: localhost", b"")
            .await
            .body
    };
    // One of each bucket first, so the later text only changes in its counts.
    let warm = |i: usize| {
        let method = format!("M{i:04}{}", "X".repeat(1000));
        let path = format!("/made/up/{i}/{}", "p".repeat(500));
        (method, path)
    };
    for i in 0..2 {
        let (m, p) = warm(i);
        call(
            &s.addr,
            &format!("{m} {p} HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
        call(
            &s.addr,
            &format!("{m} /health HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
        call(
            &s.addr,
            &format!("GET {p} HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
    }
    let before = metrics().await;
    for i in 2..150 {
        let (m, p) = warm(i);
        let r = call(
            &s.addr,
            &format!("{m} {p} HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
        assert!(r.status >= 400, "{r:?}");
        call(
            &s.addr,
            &format!("{m} /health HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
        call(
            &s.addr,
            &format!("GET {p} HTTP/1.1\r\nHost: localhost"),
            b"",
        )
        .await;
    }
    let after = metrics().await;
    assert!(!after.contains("XXXX"), "a made-up method became a label");
    assert!(!after.contains("/made/up"), "a made-up path became a label");
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"other\""), "{after}");
    // Same series: the text only grows by the digits of larger counts.
    assert!(
        after.len() < before.len() + 2_000,
        "{} -> {} bytes",
        before.len(),
        after.len()
    );
}

async fn is_closed(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_over_the_cap_are_shed_and_health_answers() {
    let dir = tempfile::tempdir().unwrap();
    // A long request timeout: only the cap can explain closed sockets.
    let s = start(
        dir.path(),
        &["--max-connections", "8", "--request-timeout-ms", "600000"],
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(&s.addr).await.unwrap());
    }
    // Health answers on a new connection despite 40 idle sockets.
    let r = call(&s.addr, "GET /health HTTP/1.1\r\nHost: localhost", b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "ok");
    // The oldest idle sockets were closed by the server (at most 8 stay open, and
    // the health connection took one slot).
    let oldest: Vec<TcpStream> = idle.drain(..32).collect();
    let closed = futures_join(oldest.into_iter().map(is_closed).collect()).await;
    assert!(closed.iter().all(|c| *c), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_with_every_connection_busy_gets_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &["--max-connections", "2", "--request-timeout-ms", "600000"],
    )
    .await;
    // Two requests whose bodies are only half sent: both connections are busy. The
    // server's "100 Continue" shows the handler has started on each.
    let body = signature().to_string();
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&s.addr).await.unwrap();
        let head = format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let mut cont = vec![0u8; 256];
        let n = tokio::time::timeout(GUARD, c.read(&mut cont))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&cont[..n]);
        assert!(text.starts_with("HTTP/1.1 100"), "{text:?}");
        c.write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .unwrap();
        busy.push(c);
    }
    let r = call(&s.addr, "GET /health HTTP/1.1\r\nHost: localhost", b"").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.code(), "too_many_connections", "{r:?}");
    // The busy requests still complete normally.
    for mut c in busy {
        c.write_all(&body.as_bytes()[body.len() / 2..])
            .await
            .unwrap();
        let mut raw = vec![0u8; 4096];
        let n = tokio::time::timeout(GUARD, c.read(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let r = Resp::parse(&raw[..n]);
        assert_eq!(r.status, 200, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &["--request-timeout-ms", "300"]).await;
    let never_speaks = TcpStream::connect(&s.addr).await.unwrap();
    // Between keep-alive requests too.
    let mut keep_alive = TcpStream::connect(&s.addr).await.unwrap();
    keep_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(GUARD, keep_alive.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Resp::parse(&buf[..n]).status, 200);
    assert!(is_closed(never_speaks).await);
    assert!(is_closed(keep_alive).await);
}

/// Awaits every future concurrently (no extra dependency).
async fn futures_join<F: std::future::Future<Output = bool> + Send + 'static>(
    futs: Vec<F>,
) -> Vec<bool> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
