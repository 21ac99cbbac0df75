//! File paths in MCP tool arguments (`cfa_lifecycle_status.db_path`) are confined to
//! the server's roots, opened read-only, and never block the server: outside, `..`,
//! symlink-out, missing, directory and FIFO paths all get one refusal; foreign files
//! inside a root are named and left untouched; `ping` keeps answering. Driven over raw
//! JSON-RPC lines against the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(20);

struct Server {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Server {
    async fn start(cwd: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
        cmd.current_dir(cwd)
            .arg("mcp")
            .args(extra)
            .env_remove("CFA_MCP_API_KEY")
            .env_remove("CFA_MCP_RATE_LIMIT")
            .env_remove("CFA_POLICY_BUNDLE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut s = Self {
            _child: child,
            stdin,
            lines,
            next_id: 1,
        };
        let init = s
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                      "clientInfo": {"name": "trust", "version": "0"}}),
            )
            .await;
        assert!(init["result"].is_object(), "{init}");
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        s
    }

    async fn send(&mut self, v: Value) {
        self.stdin
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the server answered in time")
            .unwrap()
            .expect("a line");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["id"], id, "{v}");
        v
    }

    async fn ping(&mut self) {
        let r = self.request("ping", json!({})).await;
        assert_eq!(r["result"], json!({}), "{r}");
    }

    /// Calls `cfa_lifecycle_status` with `db_path`; returns (isError, structuredContent).
    async fn status(&mut self, db_path: &str) -> (bool, Value) {
        let r = self
            .request(
                "tools/call",
                json!({"name": "cfa_lifecycle_status", "arguments": {"db_path": db_path}}),
            )
            .await;
        (
            r["result"]["isError"] == true,
            r["result"]["structuredContent"].clone(),
        )
    }
}

fn refusal(given: &str) -> String {
    format!("no such lifecycle database {given:?} under the server's allowed roots")
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
        .filter(|n| !n.ends_with("-shm") && !n.ends_with("-wal"))
        .collect();
    v.sort();
    v
}

fn lifecycle_db(path: &Path) {
    let db = cfa_lifecycle::LifecycleDb::open(path).unwrap();
    db.skill_upsert(&cfa_lifecycle::SkillRecord::new("aaaa1111"))
        .unwrap();
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[tokio::test]
async fn paths_outside_the_roots_get_one_refusal_and_fifos_never_block() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    lifecycle_db(&root.path().join("ok.db"));
    lifecycle_db(&outside.path().join("secret.db"));
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.db"),
        root.path().join("link.db"),
    )
    .unwrap();
    mkfifo(&root.path().join("x.yaml"));
    let mut s = Server::start(root.path(), &[]).await;

    // Inside the root: served, by relative or absolute path.
    for given in [
        "ok.db".to_owned(),
        root.path().join("ok.db").display().to_string(),
    ] {
        let (err, v) = s.status(&given).await;
        assert!(!err, "{v}");
        assert_eq!(v["skill_count"], 1, "{v}");
    }

    let secret = outside.path().join("secret.db").display().to_string();
    let dotdot = format!(
        "../{}/secret.db",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let before = snapshot(&outside.path().join("secret.db"));
    for given in [
        secret.as_str(),
        dotdot.as_str(),
        "sub/../ok.db",
        "link.db",
        "missing.db",
        "sub",
        "x.yaml",
    ] {
        let (err, v) = s.status(given).await;
        assert!(err, "{given}: {v}");
        assert_eq!(v["error"]["code"], "no_lifecycle_db", "{given}: {v}");
        assert_eq!(v["error"]["message"], refusal(given), "{given}: {v}");
    }
    assert_eq!(snapshot(&outside.path().join("secret.db")), before);
    assert!(!root.path().join("missing.db").exists());

    // A FIFO never freezes the server: three calls, then ping still answers.
    for _ in 0..3 {
        let (err, v) = s.status("x.yaml").await;
        assert!(err, "{v}");
    }
    s.ping().await;
}

#[tokio::test]
async fn foreign_files_inside_the_root_are_named_and_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("__init__.py");
    std::fs::write(&empty, b"").unwrap();
    let foreign = root.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
            .unwrap();
    }
    let text = root.path().join("notes.txt");
    std::fs::write(&text, "just words, not a database\n".repeat(40)).unwrap();
    let names = listing(root.path());
    let snaps: Vec<_> = [&empty, &foreign, &text].map(|p| snapshot(p)).into();
    let mut s = Server::start(root.path(), &[]).await;
    for (given, why) in [
        ("__init__.py", "no execution_records or skill_records table"),
        ("other.db", "no execution_records or skill_records table"),
        ("notes.txt", "not a SQLite database"),
    ] {
        let (err, v) = s.status(given).await;
        assert!(err, "{v}");
        assert_eq!(v["error"]["code"], "not_a_lifecycle_db", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(given), "{msg}");
        assert!(msg.contains("is not a CFA lifecycle database"), "{msg}");
        assert!(msg.contains(why), "{msg}");
    }
    let after: Vec<_> = [&empty, &foreign, &text].map(|p| snapshot(p)).into();
    assert_eq!(snaps, after, "a read changed a file");
    assert_eq!(listing(root.path()), names, "a read created a file");
    s.ping().await;
}

#[tokio::test]
async fn the_configured_database_is_read_only_too() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let arg = empty.display().to_string();
    let mut s = Server::start(root.path(), &["--lifecycle-db", &arg]).await;
    let r = s
        .request(
            "tools/call",
            json!({"name": "cfa_lifecycle_status", "arguments": {}}),
        )
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"],
        "not_a_lifecycle_db"
    );
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // A configured database that does not exist is not created either.
    let missing = root.path().join("gone.db");
    let arg = missing.display().to_string();
    let mut s = Server::start(root.path(), &["--lifecycle-db", &arg]).await;
    let r = s
        .request(
            "tools/call",
            json!({"name": "cfa_lifecycle_status", "arguments": {}}),
        )
        .await;
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"], "no_lifecycle_db",
        "{r}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn roots_are_configurable_and_files_are_size_capped() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    lifecycle_db(&a.path().join("a.db"));
    lifecycle_db(&b.path().join("b.db"));
    lifecycle_db(&cwd.path().join("here.db"));
    let (ra, rb) = (
        a.path().display().to_string(),
        b.path().display().to_string(),
    );
    let mut s = Server::start(cwd.path(), &["--root", &ra, "--root", &rb]).await;
    for p in [a.path().join("a.db"), b.path().join("b.db")] {
        let (err, v) = s.status(&p.display().to_string()).await;
        assert!(!err, "{v}");
    }
    // Relative paths are taken from the first root; the working directory is no
    // longer a root once --root is given.
    assert!(!s.status("a.db").await.0);
    let here = cwd.path().join("here.db").display().to_string();
    let (err, v) = s.status(&here).await;
    assert!(err);
    assert_eq!(v["error"]["message"], refusal(&here));

    let size = std::fs::metadata(a.path().join("a.db")).unwrap().len();
    let cap = (size - 1).to_string();
    let mut s = Server::start(a.path(), &["--max-file-size", &cap]).await;
    let (err, v) = s.status("a.db").await;
    assert!(err, "{v}");
    assert_eq!(v["error"]["code"], "file_too_large", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("larger than the server's limit of {cap} bytes")),
        "{v}"
    );
    s.ping().await;
}

#[test]
fn a_root_that_is_not_a_directory_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cfa"))
        .args(["mcp", "--root"])
        .arg(dir.path().join("nope"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--root"));
}

#[tokio::test]
async fn roots_come_from_the_config_unless_flags_are_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("cfa.yaml"),
        "storage:\n  backend: jsonl\n  path: audit.jsonl\ndefaults:\n  roots: [data]\n",
    )
    .unwrap();
    lifecycle_db(&dir.path().join("data/in.db"));
    lifecycle_db(&dir.path().join("top.db"));
    let inside = dir.path().join("data/in.db").display().to_string();
    let top = dir.path().join("top.db").display().to_string();
    let mut s = Server::start(dir.path(), &[]).await;
    assert!(!s.status(&inside).await.0);
    assert!(!s.status("in.db").await.0);
    let (err, v) = s.status(&top).await;
    assert!(err);
    assert_eq!(v["error"]["message"], refusal(&top));
    let root = dir.path().display().to_string();
    let mut s = Server::start(dir.path(), &["--root", &root]).await;
    assert!(!s.status(&top).await.0);
}
