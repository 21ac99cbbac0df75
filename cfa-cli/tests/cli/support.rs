//! Helpers shared by the modules of this test binary: starting `cfa serve` on port 0 and
//! reading the address it prints, and speaking HTTP/1.1 to it (one-shot requests, and
//! keep-alive connections). Fixtures (signatures, paths) come from `cfa_test_support`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The first stdout line of `cfa serve`, before the address.
pub const LISTENING: &str = "cfa serve: listening on http://";

/// The address in `cfa serve`'s first stdout line (panics on any other line).
pub fn listening_addr(line: &str) -> String {
    line.trim()
        .strip_prefix(LISTENING)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// A `cfa serve` child (tokio), killed when dropped.
pub struct Server {
    _child: tokio::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl Server {
    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

/// Spawns `cmd` (a `cfa serve --port 0 …`, environment already set) with stdout piped and
/// kill-on-drop, and waits at most `guard` for its listening line.
pub async fn spawn_server(mut cmd: tokio::process::Command, guard: Duration) -> Server {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(guard, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("listening line");
    Server {
        _child: child,
        addr: listening_addr(&line),
    }
}

/// A `cfa serve` child (std), killed and reaped when dropped.
pub struct Served {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` (a `cfa serve --port 0 …`, environment already set) with stdout piped
/// and reads its listening line.
pub fn spawn_served(mut cmd: std::process::Command) -> Served {
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Served {
        child,
        addr: listening_addr(&line),
    }
}

/// One blocking JSON request on a fresh connection (`Connection: close`, 60 s read
/// timeout): (status, JSON body or `Null`).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// An HTTP response: status and body text.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// `error.code` of a JSON error body ("" when there is none).
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Parses a whole `Connection: close` response.
    pub fn parse(raw: &[u8]) -> Resp {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {text:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line {head:?}"))
            .parse()
            .unwrap();
        Resp {
            status,
            body: body.to_owned(),
        }
    }
}

/// A keep-alive HTTP/1.1 connection (tokio).
pub struct Conn {
    /// The connection (tests write partial requests through `stream.get_mut()`).
    pub stream: BufReader<TcpStream>,
}

/// Upper bound on one [`Conn::call`] (a hang fails the test instead of blocking CI).
const CONN_GUARD: Duration = Duration::from_secs(60);

impl Conn {
    /// Connects (`TCP_NODELAY`).
    pub async fn open(addr: &str) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::new(s),
        }
    }

    /// Writes one request (a bearer `token` if given; POST bodies are JSON).
    pub async fn send(&mut self, method: &str, path: &str, token: Option<&str>, body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
    }

    /// Reads one response (status line, headers, `Content-Length` body).
    pub async fn read(&mut self) -> Resp {
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"))
            .parse()
            .unwrap();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h).await.unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.unwrap();
        Resp {
            status,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// [`Conn::send`] then [`Conn::read`], bounded by 60 s.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Resp {
        self.send(method, path, token, body).await;
        tokio::time::timeout(CONN_GUARD, self.read()).await.unwrap()
    }
}
