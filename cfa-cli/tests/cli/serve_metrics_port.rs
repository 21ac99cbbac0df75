#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `cfa serve --metrics-port`: a second listener on 127.0.0.1 serving only /metrics from
//! the same registry as the API, checked with real requests.

use crate::support::{LISTENING, listening_addr};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const METRICS: &str = "cfa serve: metrics on http://";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request on a fresh connection: (status, body).
fn get(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, body.to_owned())
}

fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{line_start} missing from:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn metrics_port_serves_the_same_registry_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["serve", "--port", "0", "--metrics-port", "0"])
        .current_dir(dir.path())
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_POLICY_BUNDLE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _guard = Killed(child);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with(LISTENING), "{first}");
    let api = listening_addr(&first);
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    let metrics = second
        .trim()
        .strip_prefix(METRICS)
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_owned();
    assert!(metrics.starts_with("127.0.0.1:"), "{metrics}");
    assert_ne!(metrics, api);

    // traffic on the API shows on the metrics listener
    let (status, _) = get(&api, "GET", "/health", "", "");
    assert_eq!(status, 200);
    let (status, _) = get(
        &api,
        "POST",
        "/v1/evaluate",
        "Content-Type: application/json\r\n",
        r#"{"intent": "Load nfe daily into bronze"}"#,
    );
    assert_eq!(status, 200);
    let (status, text) = get(&metrics, "GET", "/metrics", "", "");
    assert_eq!(status, 200, "{text}");
    assert_eq!(sample(&text, "cfa_decisions_total{action=\"block\"}"), 1.0);
    assert_eq!(
        sample(
            &text,
            "cfa_http_request_duration_seconds_count{method=\"GET\",route=\"/health\",status=\"200\"}"
        ),
        1.0
    );
    // the API's own /metrics is the same registry
    let (_, api_text) = get(&api, "GET", "/metrics", "", "");
    assert_eq!(
        sample(&api_text, "cfa_decisions_total{action=\"block\"}"),
        1.0
    );

    // nothing but /metrics on the metrics listener
    for (method, path) in [("GET", "/health"), ("POST", "/v1/evaluate"), ("GET", "/")] {
        let (status, body) = get(
            &metrics,
            method,
            path,
            "Content-Type: application/json\r\n",
            "{}",
        );
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(body.contains("serves only GET /metrics"), "{body}");
    }
    let (status, _) = get(
        &metrics,
        "POST",
        "/metrics",
        "Content-Type: application/json\r\n",
        "{}",
    );
    assert_eq!(status, 405);
    // host checks apply there too
    let mut s = std::net::TcpStream::connect(&metrics).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 421"), "{resp}");
}

#[test]
fn metrics_port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["serve", "--port", "0", "--metrics-port", &port])
        .env_remove("CFA_HTTP_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing is announced before both listeners are bound"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}
