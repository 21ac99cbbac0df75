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

/// The `cfa` binary with the environment that changes its defaults removed (bundle,
/// tokens, API key, rate limit), so a test sees only the flags it passes.
pub fn cfa_cmd() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    c.env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_HTTP_TOKEN")
        .env_remove("CFA_OPERATOR_TOKEN")
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_MCP_RATE_LIMIT");
    c
}

/// One blocking request with an optional bearer token on a fresh connection
/// (`Connection: close`, 60 s read timeout): (status, body text).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, body.to_owned())
}

/// [`request`] with a JSON body (`Null`: none): (status, JSON body or `Null`).
pub fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = request(addr, method, path, token, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A `cfa mcp` child spoken to in JSON-RPC lines (std), killed and reaped when dropped.
pub struct Mcp {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: std::io::BufReader<std::process::ChildStdout>,
    next: u64,
}

impl Mcp {
    /// Spawns `cmd` (a `cfa mcp …`) with piped stdio and no handshake.
    pub fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Mcp {
            child,
            stdin,
            out,
            next: 1_000_000,
        }
    }

    /// `cfa mcp ARGS` (environment cleared by [`cfa_cmd`]), initialized.
    pub fn start(args: &[&str]) -> Self {
        let mut cmd = cfa_cmd();
        cmd.arg("mcp").args(args);
        Self::started(cmd)
    }

    /// [`Mcp::spawn`] then the initialize handshake.
    pub fn started(cmd: std::process::Command) -> Self {
        let mut m = Self::spawn(cmd);
        m.request(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "cli-tests", "version": "0"}}),
        );
        m.line(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        m
    }

    /// Writes one JSON-RPC line.
    pub fn line(&mut self, v: &Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Writes `msg` and returns the whole response whose id is `id` (`id` 0: a
    /// notification, `Null`).
    pub fn raw(&mut self, id: u64, msg: &Value) -> Value {
        self.line(msg);
        if id == 0 {
            return Value::Null;
        }
        loop {
            let mut l = String::new();
            assert!(self.out.read_line(&mut l).unwrap() > 0, "server closed");
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    }

    /// One request: its `result`.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let msg =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.raw(id, &msg)["result"].clone()
    }

    /// (isError, structuredContent) of a tool call.
    pub fn call(&mut self, tool: &str, args: Value) -> (bool, Value) {
        let r = self.request(
            "tools/call",
            serde_json::json!({"name": tool, "arguments": args}),
        );
        (r["isError"] == true, r["structuredContent"].clone())
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The audit log the backtests replay (`policy_backtest`, `control_faces`): N signatures
/// decided with the lakehouse bundle, and that bundle with one rule changed.
pub mod fixtures {
    use serde_json::{Value, json};
    use std::path::PathBuf;

    /// How many signatures [`decided`] decides.
    pub const N: usize = 6;

    /// The lakehouse example bundle's text.
    pub fn bundle_text() -> String {
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/policy-tests/lakehouse-core.yaml"),
        )
        .unwrap()
    }

    /// The bundle with the partition rule's action turned from replan into block.
    pub fn changed_bundle() -> String {
        let text = bundle_text();
        let at = text.find("fault_code: FIN_UNPARTITIONED_SCAN").unwrap();
        let action = text[..at].rfind("action: replan").unwrap();
        format!(
            "{}action: block{}",
            &text[..action],
            &text[action + "action: replan".len()..]
        )
    }

    /// Signature `i`: even ones read 4 TB unpartitioned (the partition rule fires), odd
    /// ones are partitioned (approved).
    pub fn signature(i: usize) -> Value {
        let partition: Vec<&str> = if i.is_multiple_of(2) {
            vec![]
        } else {
            vec!["processing_date"]
        };
        json!({
            "domain": "fiscal", "intent": format!("ingest_{i}"), "target_layer": "silver",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000 + i,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                            "partition_by": partition, "max_cost_dbu": 20.0},
            "execution_context": {"policy_bundle_version": "lakehouse-core-2.3",
                                  "catalog_snapshot_version": "c1",
                                  "context_registry_version_id": "v1"},
            "intent_id": format!("intent-{i}")
        })
    }

    /// Decides the N signatures against the original bundle (`old.yaml`; the changed
    /// one is `new.yaml` beside it) into `audit` (`--audit-log` or `--audit-db`);
    /// returns the directory.
    pub fn decided(flag: &str, file: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.yaml"), bundle_text()).unwrap();
        std::fs::write(dir.path().join("new.yaml"), changed_bundle()).unwrap();
        for i in 0..N {
            let sig = dir.path().join(format!("sig{i}.json"));
            std::fs::write(&sig, signature(i).to_string()).unwrap();
            let code = super::cfa_cmd()
                .current_dir(dir.path())
                .args(["policy", "check", "-s"])
                .arg(&sig)
                .args(["-p", "old.yaml", flag, file])
                .output()
                .unwrap()
                .status
                .code()
                .unwrap();
            assert_eq!(code, if i.is_multiple_of(2) { 3 } else { 0 });
        }
        dir
    }
}

/// A project on a throwaway PostgreSQL cluster, as the PostgreSQL modules start one: the
/// cluster, database `db` created in it, a temp dir whose `cfa.yaml` keeps the state in it
/// (`storage: {backend: postgres, dsn_env: <env>}`), and the database's DSN with
/// `password` (sent, never checked: it must reach no output).
pub fn pg_project(
    db: &str,
    password: &str,
    env: &str,
) -> (cfa_test_support::pg::PgCluster, tempfile::TempDir, String) {
    let pg = cfa_test_support::pg::PgCluster::start().unwrap();
    pg.create_database(db).unwrap();
    let dsn = pg.dsn(db, Some(password));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        format!("storage:\n  backend: postgres\n  dsn_env: {env}\n"),
    )
    .unwrap();
    (pg, dir, dsn)
}

/// [`cfa_cmd`] run in `dir` with `dsn` in the environment variable `env` and
/// `RUST_LOG=<rust_log>`.
pub fn cfa_with_dsn(
    dir: &std::path::Path,
    env: &str,
    dsn: &str,
    rust_log: &str,
) -> std::process::Command {
    let mut c = cfa_cmd();
    c.current_dir(dir).env(env, dsn).env("RUST_LOG", rust_log);
    c
}

/// Runs `cmd` to its end: (exit code, `-1` when killed by a signal; stdout; stderr).
pub fn outcome(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
