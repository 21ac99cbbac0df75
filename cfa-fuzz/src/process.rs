//! Targets that drive the real `cfa` binary: one long-lived `cfa mcp` fed mutated
//! JSON-RPC lines (it must stay alive, write only JSON lines, and answer a `ping`),
//! one `cfa serve` on a free loopback port fed mutated request bodies (no 5xx, stays
//! alive, `/health` answers), and CLI runs over mutated files (signatures, catalogs,
//! bundles, `cfa.yaml` configs, keyword packs, audit logs, checkpoints, proofs): no
//! panic exit. These are much slower than the in-process targets and are counted
//! apart.

use crate::corpus::Corpus;
use crate::mutate::{Kind, Seed};
use crate::targets::Outcome;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Names of the process targets.
pub const PROCESS_TARGETS: &[(&str, &str)] = &[
    (
        "mcp",
        "`cfa mcp` over stdio: mutated JSON-RPC lines; alive, JSON-only stdout, answers ping",
    ),
    (
        "http",
        "`cfa serve` on loopback: mutated requests to /v1/decisions, /v1/evaluate, /v1/rules, /v1/audit/verify; no 5xx, alive",
    ),
    (
        "cli",
        "`cfa` over mutated files: signature/catalog/bundle validate, policy check, status --config, resolve --keywords, audit verify, verify-proof; no panic exit",
    ),
];

/// A target that drives a `cfa` process.
pub trait ProcessTarget {
    /// Runs one input.
    fn run(&mut self, input: &[u8]) -> Outcome;
    /// The inputs that led to the last failure (saved instead of the single input).
    fn evidence(&self) -> Option<Vec<u8>> {
        None
    }
    /// Final liveness check.
    fn finish(&mut self) -> Outcome {
        Ok(())
    }
    /// Ids of processes to kill if the fuzzer dies.
    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// Seeds of a process target.
pub fn seeds(name: &str, c: &Corpus) -> Vec<Seed> {
    let headed = |head: &str, body: &[u8]| {
        let mut b = head.as_bytes().to_vec();
        b.push(b'\n');
        b.extend_from_slice(body);
        Seed {
            kind: Kind::Headed,
            bytes: b,
        }
    };
    match name {
        "mcp" => mcp_seeds(c),
        "http" => {
            let mut out = Vec::new();
            for (i, s) in c.signatures.iter().step_by(7).enumerate() {
                let head = match i % 3 {
                    0 => "POST /v1/decisions",
                    1 => "POST /v1/decisions?policy_bundle=prod-v1&replan_count=1",
                    _ => "POST /v1/decisions?policy_bundle=lgpd-v1",
                };
                out.push(headed(head, &s.bytes));
            }
            for s in c.intents.iter().step_by(20) {
                let intent = String::from_utf8_lossy(&s.bytes);
                let body = json!({"intent": intent, "policy_bundle": "prod-v1"}).to_string();
                out.push(headed("POST /v1/evaluate", body.as_bytes()));
            }
            for head in [
                "GET /v1/rules?policy_bundle=eu-ai-act-v1",
                "GET /v1/audit/verify?intent_id=x",
                "GET /health",
                "GET /openapi.json",
                "GET /metrics",
            ] {
                out.push(headed(head, b""));
            }
            out
        }
        _ => {
            let mut out = Vec::new();
            let pick = |v: &[Seed], n: usize| {
                v.iter()
                    .step_by(v.len() / n + 1)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            for s in pick(&c.signatures, 8) {
                out.push(headed("signature", &s.bytes));
            }
            for s in pick(&c.catalogs, 4) {
                out.push(headed("catalog", &s.bytes));
            }
            for s in &c.bundles_yaml {
                out.push(headed("bundle-yaml", &s.bytes));
            }
            for s in pick(&c.bundles_json, 4) {
                out.push(headed("bundle-json", &s.bytes));
            }
            for s in &c.configs {
                out.push(headed("config-yaml", &s.bytes));
            }
            for s in &c.packs {
                let head = if s.kind == Kind::Yaml {
                    "keywords-yaml"
                } else {
                    "keywords-json"
                };
                out.push(headed(head, &s.bytes));
            }
            for s in &c.audit_logs {
                out.push(headed("audit", &s.bytes));
            }
            for s in &c.proofs {
                out.push(headed("proof", &s.bytes));
            }
            out
        }
    }
}

fn mcp_seeds(c: &Corpus) -> Vec<Seed> {
    let sig: Value = c
        .signatures
        .last()
        .and_then(|s| serde_json::from_slice(&s.bytes).ok())
        .unwrap_or(Value::Null);
    let catalog: Value = c.catalog_values.first().cloned().unwrap_or(Value::Null);
    let calls = [
        json!({"name": "cfa_evaluate_signature", "arguments": {"signature": sig}}),
        json!({"name": "cfa_evaluate_signature", "arguments": {"signature": {"signature": sig}, "policy_bundle": "prod-v1", "replan_count": 2}}),
        json!({"name": "cfa_evaluate_intent", "arguments": {"intent": "join nfe with clientes into silver"}}),
        json!({"name": "cfa_describe_rules", "arguments": {"policy_bundle": "lgpd-v1"}}),
        json!({"name": "cfa_explain_fault", "arguments": {"fault_code": "CONTRACT_MISSING_MERGE_KEY"}}),
        json!({"name": "cfa_audit_check", "arguments": {"intent_id": "x"}}),
        json!({"name": "cfa_list_backends", "arguments": {}}),
        json!({"name": "cfa_lifecycle_status", "arguments": {}}),
        json!({"name": "cfa_compliance_check", "arguments": {"intent": "load clientes into gold", "bundle": "eu-ai-act-v1", "catalog": catalog}}),
    ];
    let mut out = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        out.push(json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": call}));
    }
    out.push(json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}));
    out.push(json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}));
    out.push(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
    );
    out.push(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}}));
    out.push(json!([{"jsonrpc": "2.0", "id": 5, "method": "ping"}]));
    out.iter()
        .map(|v| Seed::new(Kind::Json, v.to_string()))
        .collect()
}

/// Starts the process target `name`.
pub fn start(
    name: &str,
    cfa: &Path,
    work: &Path,
    corpus: &Corpus,
) -> Result<Box<dyn ProcessTarget>, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let catalog = crate::corpus::workspace_dir().join("examples/catalog.json");
    match name {
        "mcp" => Ok(Box::new(Mcp::start(cfa, work, &catalog)?)),
        "http" => Ok(Box::new(Http::start(cfa, work, &catalog)?)),
        "cli" => Ok(Box::new(Cli::new(cfa, work, &catalog, corpus)?)),
        other => Err(format!("unknown process target {other}")),
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(15)..)
        .unwrap_or_default()
        .join("\n")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------- mcp

struct Mcp {
    cfa: PathBuf,
    work: PathBuf,
    catalog: PathBuf,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    recent: VecDeque<Vec<u8>>,
    since_ping: usize,
    pings: u64,
}

impl Mcp {
    fn start(cfa: &Path, work: &Path, catalog: &Path) -> Result<Self, String> {
        let stderr = std::fs::File::create(work.join("mcp.stderr")).map_err(|e| e.to_string())?;
        let mut child = Command::new(cfa)
            .arg("mcp")
            .arg("--catalog")
            .arg(catalog)
            .arg("--audit-log")
            .arg(work.join("mcp-audit.jsonl"))
            .args(["--audit-fsync", "never"])
            .current_dir(work)
            .env("CFA_MCP_RATE_LIMIT", "1000000000")
            .env_remove("CFA_MCP_API_KEY")
            .env_remove("CFA_POLICY_BUNDLE")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {} mcp: {e}", cfa.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Mcp {
            cfa: cfa.to_path_buf(),
            work: work.to_path_buf(),
            catalog: catalog.to_path_buf(),
            child,
            stdin,
            lines: rx,
            recent: VecDeque::new(),
            since_ping: 0,
            pings: 0,
        };
        let init = json!({"jsonrpc": "2.0", "id": "fuzz-init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "cfa-fuzz", "version": "0"}}});
        m.send(init.to_string().as_bytes())?;
        m.await_id("fuzz-init")?;
        m.send(br#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#)?;
        Ok(m)
    }

    fn send(&mut self, line: &[u8]) -> Result<(), String> {
        self.stdin
            .write_all(line)
            .and_then(|()| self.stdin.write_all(b"\n"))
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("cfa mcp stopped reading stdin: {e}{}", self.status()))
    }

    fn status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(s)) => format!(
                " (exited: {s}); stderr:\n{}",
                tail(&self.work.join("mcp.stderr"))
            ),
            _ => String::new(),
        }
    }

    /// Reads lines until the response with `id`; every line must be a JSON message.
    fn await_id(&mut self, id: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line).map_err(|e| {
                        format!("cfa mcp wrote a stdout line that is not JSON ({e}): {line:.300}")
                    })?;
                    if v.get("id").and_then(Value::as_str) == Some(id) {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("cfa mcp did not answer {id} within 60 s"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self.status();
                    return Err(format!("cfa mcp closed stdout{st}"));
                }
            }
        }
    }

    fn ping(&mut self) -> Outcome {
        self.pings += 1;
        let id = format!("fuzz-ping-{}", self.pings);
        let ping = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        self.send(ping.to_string().as_bytes())?;
        self.await_id(&id)?;
        self.since_ping = 0;
        let err = std::fs::read_to_string(self.work.join("mcp.stderr")).unwrap_or_default();
        if err.contains("panicked at") {
            return Err(format!(
                "cfa mcp logged a panic:\n{}",
                tail(&self.work.join("mcp.stderr"))
            ));
        }
        Ok(())
    }

    fn restart(&mut self) {
        kill(&mut self.child);
        if let Ok(m) = Mcp::start(&self.cfa, &self.work, &self.catalog) {
            let recent = std::mem::take(&mut self.recent);
            *self = m;
            self.recent = recent;
        }
    }
}

impl ProcessTarget for Mcp {
    fn run(&mut self, input: &[u8]) -> Outcome {
        if self.recent.len() == 16 {
            self.recent.pop_front();
        }
        self.recent.push_back(input.to_vec());
        let mut r = self.send(input);
        self.since_ping += 1;
        if r.is_ok() && self.since_ping >= 16 {
            r = self.ping();
        }
        if r.is_err() {
            self.restart();
        } else if self.since_ping == 0 {
            self.recent.clear();
        }
        r
    }

    fn evidence(&self) -> Option<Vec<u8>> {
        Some(self.recent.iter().cloned().collect::<Vec<_>>().join(&b'\n'))
    }

    fn finish(&mut self) -> Outcome {
        let r = self.ping();
        drop(self.send(b""));
        kill(&mut self.child);
        let err = std::fs::read_to_string(self.work.join("mcp.stderr")).unwrap_or_default();
        if err.contains("panicked at") {
            return Err(format!(
                "cfa mcp logged a panic:\n{}",
                tail(&self.work.join("mcp.stderr"))
            ));
        }
        r
    }

    fn pids(&self) -> Vec<u32> {
        vec![self.child.id()]
    }
}

// ---------------------------------------------------------------- http

struct Http {
    cfa: PathBuf,
    work: PathBuf,
    catalog: PathBuf,
    child: Child,
    port: u16,
    since_health: usize,
    last_input: Vec<u8>,
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Http {
    fn start(cfa: &Path, work: &Path, catalog: &Path) -> Result<Self, String> {
        let port = free_port()?;
        let stderr = std::fs::File::create(work.join("serve.stderr")).map_err(|e| e.to_string())?;
        let child = Command::new(cfa)
            .arg("serve")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--catalog")
            .arg(catalog)
            .arg("--audit-log")
            .arg(work.join("serve-audit.jsonl"))
            .args(["--audit-fsync", "never", "--workers", "1"])
            .current_dir(work)
            .env_remove("CFA_POLICY_BUNDLE")
            .env_remove("CFA_SERVE_TOKEN")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", cfa.display()))?;
        let mut h = Http {
            cfa: cfa.to_path_buf(),
            work: work.to_path_buf(),
            catalog: catalog.to_path_buf(),
            child,
            port,
            since_health: 0,
            last_input: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = h.request("GET", "/health", b"") {
                return Ok(h);
            }
            if let Ok(Some(s)) = h.child.try_wait() {
                return Err(format!(
                    "cfa serve exited at start ({s}):\n{}",
                    tail(&work.join("serve.stderr"))
                ));
            }
            if Instant::now() > deadline {
                kill(&mut h.child);
                return Err("cfa serve did not answer /health within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let mut s =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("connect: {e}"))?;
        let t = Some(Duration::from_secs(30));
        s.set_read_timeout(t).map_err(|e| e.to_string())?;
        s.set_write_timeout(t).map_err(|e| e.to_string())?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        s.write_all(&req).map_err(|e| format!("write: {e}"))?;
        let mut resp = Vec::new();
        if let Err(e) = s.read_to_end(&mut resp)
            && resp.is_empty()
        {
            return Err(format!("read: {e}"));
        }
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no HTTP status line in {:.200}", text))?;
        Ok((status, text))
    }

    fn alive(&mut self) -> Outcome {
        match self.request("GET", "/health", b"") {
            Ok((200, _)) => Ok(()),
            Ok((s, t)) => Err(format!("/health answered {s}: {t:.300}")),
            Err(e) => Err(format!("/health failed: {e}{}", self.status())),
        }
    }

    fn status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(s)) => format!(
                " (cfa serve exited: {s}); stderr:\n{}",
                tail(&self.work.join("serve.stderr"))
            ),
            _ => String::new(),
        }
    }

    fn restart(&mut self) {
        kill(&mut self.child);
        if let Ok(h) = Http::start(&self.cfa, &self.work, &self.catalog) {
            *self = h;
        }
    }

    fn one(&mut self, input: &[u8]) -> Outcome {
        let split = input
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(input.len());
        let head = String::from_utf8_lossy(input.get(..split).unwrap_or_default()).into_owned();
        let body = input.get(split + 1..).unwrap_or_default();
        let (method, path) = head.split_once(' ').unwrap_or(("POST", head.as_str()));
        let method = if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) {
            method
        } else {
            "POST"
        };
        // Percent-encode what cannot stand in a request target, so each input is one
        // well-framed request.
        let mut target = String::new();
        for b in path.bytes() {
            if (0x21..0x7f).contains(&b) {
                target.push(char::from(b));
            } else {
                target.push_str(&format!("%{b:02X}"));
            }
        }
        if !target.starts_with('/') {
            target.insert(0, '/');
        }
        match self.request(method, &target, body) {
            Ok((status, text)) if status >= 500 => Err(format!(
                "{method} {target} answered {status}: {:.500}",
                text
            )),
            Ok(_) => Ok(()),
            // A server that answers before reading a body it does not need (GET
            // /metrics with 40 KB attached) and closes makes the kernel reset the
            // connection; that is no fault as long as it stays up and logged no panic
            // (a panicking handler also drops its connection).
            Err(e) if self.alive().is_ok() && !self.panicked() => {
                let _ = e;
                Ok(())
            }
            Err(e) => Err(format!("{method} {target}: {e}{}", self.status())),
        }
    }

    fn panicked(&self) -> bool {
        std::fs::read_to_string(self.work.join("serve.stderr"))
            .is_ok_and(|t| t.contains("panicked at"))
    }
}

impl ProcessTarget for Http {
    fn run(&mut self, input: &[u8]) -> Outcome {
        self.last_input = input.to_vec();
        let mut r = self.one(input);
        self.since_health += 1;
        if r.is_ok() && self.since_health >= 25 {
            self.since_health = 0;
            r = self.alive();
            if r.is_ok() && self.panicked() {
                r = Err(format!(
                    "cfa serve logged a panic:\n{}",
                    tail(&self.work.join("serve.stderr"))
                ));
            }
        }
        if r.is_err() && (self.child.try_wait().ok().flatten().is_some() || self.panicked()) {
            self.restart();
        }
        r
    }

    fn finish(&mut self) -> Outcome {
        let r = self.alive();
        kill(&mut self.child);
        let err = std::fs::read_to_string(self.work.join("serve.stderr")).unwrap_or_default();
        if err.contains("panicked at") {
            return Err(format!(
                "cfa serve logged a panic:\n{}",
                tail(&self.work.join("serve.stderr"))
            ));
        }
        r
    }

    fn pids(&self) -> Vec<u32> {
        vec![self.child.id()]
    }
}

// ---------------------------------------------------------------- cli

struct Cli {
    cfa: PathBuf,
    work: PathBuf,
    catalog: PathBuf,
    pubkey: PathBuf,
}

const CLI_KINDS: &[&str] = &[
    "signature",
    "catalog",
    "bundle-yaml",
    "bundle-json",
    "config-yaml",
    "keywords-yaml",
    "keywords-json",
    "audit",
    "proof",
];

impl Cli {
    fn new(cfa: &Path, work: &Path, catalog: &Path, _corpus: &Corpus) -> Result<Self, String> {
        let pubkey = work.join("fuzz.vkey");
        let key = crate::corpus::signer_key().ok_or("no key")?;
        std::fs::write(&pubkey, key.verifier().to_text()).map_err(|e| e.to_string())?;
        Ok(Cli {
            cfa: cfa.to_path_buf(),
            work: work.to_path_buf(),
            catalog: catalog.to_path_buf(),
            pubkey,
        })
    }

    fn exec(&self, args: &[&std::ffi::OsStr]) -> Outcome {
        let mut child = Command::new(&self.cfa)
            .args(args)
            .current_dir(&self.work)
            .env_remove("CFA_POLICY_BUNDLE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start cfa: {e}"))?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if status.code() == Some(101) || status.code().is_none() || err.contains("panicked at") {
            // The panic line first: the rest of stderr can be a huge rendered snippet.
            let panic = err
                .lines()
                .skip_while(|l| !l.contains("panicked at"))
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(format!(
                "cfa {} ended with {status}: {panic} | {:.300}",
                shown.join(" "),
                err
            ));
        }
        Ok(())
    }
}

impl ProcessTarget for Cli {
    fn run(&mut self, input: &[u8]) -> Outcome {
        let split = input
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(input.len());
        let head = input.get(..split).unwrap_or_default();
        let body = input.get(split + 1..).unwrap_or_default();
        let kind = match std::str::from_utf8(head)
            .ok()
            .filter(|h| CLI_KINDS.contains(h))
        {
            Some(k) => k,
            None => CLI_KINDS
                .get(crate::fnv(head) as usize % CLI_KINDS.len())
                .copied()
                .unwrap_or("signature"),
        };
        let ext = match kind {
            "bundle-yaml" | "config-yaml" | "keywords-yaml" => "yaml",
            "audit" => "jsonl",
            "proof" => "proof",
            _ => "json",
        };
        let file = self.work.join(format!("input.{ext}"));
        std::fs::write(&file, body).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let f = file.as_os_str();
        let s = |t: &'static str| std::ffi::OsStr::new(t);
        let cat = self.catalog.as_os_str();
        match kind {
            "signature" => {
                self.exec(&[s("signature"), s("validate"), f, s("-f"), s("json")])?;
                self.exec(&[s("policy"), s("check"), s("-s"), f, s("-c"), cat])
            }
            "catalog" => self.exec(&[s("catalog"), s("validate"), f]),
            "bundle-yaml" | "bundle-json" => {
                self.exec(&[s("policy"), s("validate"), f])?;
                self.exec(&[s("rules"), s("list"), s("-p"), f])
            }
            "config-yaml" => self.exec(&[s("status"), s("--config"), f]),
            "keywords-yaml" | "keywords-json" => self.exec(&[
                s("resolve"),
                s("join nfe with clientes into silver"),
                s("--keywords"),
                f,
                s("-c"),
                cat,
            ]),
            "audit" => self.exec(&[s("audit"), s("verify"), s("--file"), f, s("-f"), s("json")]),
            _ => self.exec(&[
                s("audit"),
                s("verify-proof"),
                s("--proof"),
                f,
                s("--pubkey"),
                self.pubkey.as_os_str(),
            ]),
        }
    }
}
