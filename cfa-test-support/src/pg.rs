//! Throwaway PostgreSQL cluster for tests (std only): `use cfa_test_support::pg::PgCluster;`.
//!
//! `PgCluster::start()` makes a temp dir, runs `initdb` (trust auth, UTF8, C locale) and
//! `pg_ctl start` on a free loopback port with the socket in the temp dir, waiting (bounded)
//! until the server is ready. When the process runs as root (CI does), the temp dir is
//! chown'ed to `postgres` and the server binaries run through `runuser -u postgres --`.
//! Dropping the value stops the server (`-m immediate`) and removes the dir, also when a
//! test panics. nextest runs every test in its own process, so keep all scenarios that
//! need the cluster in one `#[test]` per binary and start the cluster once there.
//!
//! Binaries: `$CFA_PG_BIN` or `/usr/lib/postgresql/15/bin`; the client is `psql` from
//! the same dir when present, else from `PATH`.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small shop (nfe, clientes with PII, produtos) in `public`, shared by the tests that
/// run generated SQL on the throwaway cluster.
pub const SHOP_SEED: &str = "
CREATE TABLE public.nfe (nfe_id int, cliente_id int, produto_id int, valor numeric(10,2), processing_date date);
CREATE TABLE public.clientes (cliente_id int, nome text, cpf text, email text, processing_date date);
CREATE TABLE public.produtos (produto_id int, descricao text);
INSERT INTO public.nfe VALUES
  (1, 10, 100, 10.50, '2026-01-05'), (2, 11, 101, 20.00, '2026-01-06'),
  (3, 10, 100, 30.00, '2026-01-07'), (4, 12, 102, 40.00, '2025-12-01'),
  (5, 13, 100, 50.00, '2026-01-08');
INSERT INTO public.clientes VALUES
  (10, 'Ana', '12345678900', 'ana@example.com', '2026-01-02'),
  (11, 'Bruno', '98765432100', 'bruno@example.com', '2026-01-03'),
  (12, 'Carla', '11122233344', 'carla@example.com', '2026-01-03'),
  (13, 'Davi', '55566677788', 'davi@example.com', '2025-11-30');
INSERT INTO public.produtos VALUES (100, 'caneta'), (101, 'papel'), (102, 'tinta');
";

/// A running throwaway cluster.
pub struct PgCluster {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// The server options `pg_ctl start` was given.
    opts: String,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn check(out: Output, what: &str) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgCluster {
    /// Starts a new cluster (see the module docs), with `fsync=off` (tests that do not
    /// measure durability).
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Starts a new cluster with PostgreSQL's default durability (`fsync=on`,
    /// `synchronous_commit=on`, full page writes): for tests and measurements of
    /// acknowledged writes.
    pub fn start_durable() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, String> {
        let bin = std::env::var_os("CFA_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        if !bin.join("initdb").exists() {
            return Err(format!(
                "PostgreSQL binaries not found in {}",
                bin.display()
            ));
        }
        let root =
            std::env::temp_dir().join(format!("cfa-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let as_postgres = is_root();
        let cluster = PgCluster {
            root,
            bin,
            port: free_port()?,
            as_postgres,
            opts: String::new(),
        };
        let mut cluster = cluster;
        if as_postgres {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&cluster.root)
                    .output()
                    .map_err(|e| e.to_string())?,
                "chown to postgres",
            )?;
        }
        let data = cluster.root.join("data");
        check(
            cluster
                .server_cmd("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .output()
                .map_err(|e| format!("cannot run initdb: {e}"))?,
            "initdb",
        )?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} {}",
            cluster.port,
            cluster.root.display(),
            if durable {
                "-c fsync=on -c synchronous_commit=on -c max_connections=200"
            } else {
                "-c fsync=off -c full_page_writes=off"
            }
        );
        cluster.opts = opts;
        cluster.start_again()?;
        Ok(cluster)
    }

    /// `pg_ctl start` with the options of the first start (after [`PgCluster::stop`]).
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl(true, &["-o", &self.opts, "-w", "-t", "60", "start"])
            .map_err(|e| {
                let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
                format!("{e}\nserver log:\n{log}")
            })
    }

    /// `pg_ctl stop -m fast`: the server is down until [`PgCluster::start_again`].
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl(false, &["-m", "fast", "-w", "-t", "60", "stop"])
    }

    /// `pg_ctl -D <data> [-l <server.log>] ARGS`, failing with its output.
    fn pg_ctl(&self, logged: bool, args: &[&str]) -> Result<(), String> {
        let mut c = self.server_cmd("pg_ctl");
        c.arg("-D").arg(self.root.join("data"));
        if logged {
            c.arg("-l").arg(self.root.join("server.log"));
        }
        let what = format!("pg_ctl {}", args.last().copied().unwrap_or_default());
        check(
            c.args(args)
                .output()
                .map_err(|e| format!("cannot run pg_ctl: {e}"))?,
            &what,
        )
        .map(|_| ())
    }

    fn server_cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// `pg_ctl restart -m fast` (same options), waiting until the server accepts
    /// connections again: every open connection is broken.
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl(true, &["-m", "fast", "-w", "-t", "60", "restart"])
    }

    /// The TCP port (host is `127.0.0.1`, user `postgres`, no password).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key=value DSN of database `db` on this cluster as user `postgres`
    /// (`host=127.0.0.1 port=… user=postgres [password=…] dbname=…`). The cluster trusts
    /// every local connection, so a `password` is sent but never checked: tests pass one
    /// to show it reaches no output.
    pub fn dsn(&self, db: &str, password: Option<&str>) -> String {
        match password {
            Some(pw) => format!(
                "host=127.0.0.1 port={} user=postgres password={pw} dbname={db}",
                self.port
            ),
            None => format!(
                "host=127.0.0.1 port={} user=postgres dbname={db}",
                self.port
            ),
        }
    }

    /// A `psql` command connected to `db`, stopping on the first error, quiet, unaligned.
    pub fn psql_cmd(&self, db: &str) -> Command {
        let local = self.bin.join("psql");
        let mut c = Command::new(if local.exists() {
            local
        } else {
            PathBuf::from("psql")
        });
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .env_remove("PGOPTIONS");
        c
    }

    /// Runs SQL text in `db`; returns stdout (tuples only, `|`-separated).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        check(
            self.psql_cmd(db)
                .arg("-c")
                .arg(sql)
                .output()
                .map_err(|e| e.to_string())?,
            &format!("psql -c {sql:?}"),
        )
    }

    /// Runs a SQL file in `db` with extra environment (e.g. `PGOPTIONS`).
    pub fn psql_file(&self, db: &str, file: &Path, env: &[(&str, &str)]) -> Result<String, String> {
        let mut c = self.psql_cmd(db);
        c.arg("-f").arg(file);
        for (k, v) in env {
            c.env(k, v);
        }
        check(
            c.output().map_err(|e| e.to_string())?,
            &format!("psql -f {}", file.display()),
        )
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(|_| ())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
