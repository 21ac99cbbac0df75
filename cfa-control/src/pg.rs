//! The PostgreSQL connection [`crate::PgControl`] and [`crate::budget::PgBudgets`]
//! share the handling of: a bounded pool of clients per store (concurrent callers each
//! take an idle one, a new one is connected while fewer than eight are open, else the
//! caller waits for one), a client dropped after any
//! error (a restarted server is picked up again), each call run on a scoped
//! thread of its own so the sync client never blocks inside a caller's async runtime,
//! the schema created idempotently under an advisory lock, and a DSN that is never
//! shown: the store is named `user@host:port/dbname` and a password or the DSN itself
//! is masked in every message.

use postgres::{Client, NoTls};
use std::str::FromStr;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The advisory lock key taken while the control schema is created.
const SCHEMA_LOCK: i64 = 0x0CFA_C047_0000;

/// Most clients a store has open at once: a caller finding none idle connects one
/// while fewer are open, else waits for one to come back (no connection churn under
/// load: a new PostgreSQL backend per call costs milliseconds).
const MAX_OPEN: usize = 8;

/// How long a caller waits for a client when all are busy before failing (closed).
const WAIT_FOR_CLIENT: Duration = Duration::from_secs(30);

/// The clients of a store: those idle, and how many are open (idle or in use).
#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

/// A failed call: the server named without its password, and what failed.
#[derive(Debug)]
pub(crate) struct PgFailure {
    /// `user@host:port/dbname`.
    pub database: String,
    /// The message, DSN and password masked.
    pub message: String,
}

/// One connection to the database a DSN names.
pub(crate) struct PgConn {
    dsn: String,
    database: String,
    pool: Mutex<Pool>,
    freed: Condvar,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/dbname` of a DSN, never its password.
fn describe_dsn(dsn: &str) -> Option<String> {
    let config = postgres::Config::from_str(dsn).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    Some(format!(
        "{user}@{host}:{port}/{}",
        config.get_dbname().unwrap_or(user)
    ))
}

/// The DSN in the environment variable `name` (unset or blank is a failure naming it).
pub(crate) fn dsn_from_env(name: &str) -> Result<String, PgFailure> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| PgFailure {
            database: format!("${name}"),
            message: format!(
                "the environment variable {name} is not set (it must hold the PostgreSQL DSN)"
            ),
        })
}

impl PgConn {
    /// Connects to the database `dsn` names and creates `schema` (idempotent DDL)
    /// under the control schema's advisory lock.
    pub(crate) fn connect(dsn: &str, schema: &'static str) -> Result<Self, PgFailure> {
        let database = describe_dsn(dsn).ok_or_else(|| PgFailure {
            database: "(unparsable DSN)".into(),
            message: "the DSN does not parse as a PostgreSQL connection string".into(),
        })?;
        let conn = PgConn {
            dsn: dsn.to_owned(),
            database,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        };
        conn.run(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(schema)?;
            tx.commit()
        })?;
        Ok(conn)
    }

    /// The DSN (never shown: for a second connection to the same database).
    pub(crate) fn dsn(&self) -> &str {
        &self.dsn
    }

    /// The server as `user@host:port/dbname`.
    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    fn failure(&self, e: &postgres::Error) -> PgFailure {
        let mut message = e.to_string();
        if let Some(db) = e.as_db_error() {
            message = format!("{message}: {}", db.message());
        } else if let Some(s) = std::error::Error::source(e) {
            message = format!("{message}: {s}");
        }
        PgFailure {
            database: self.database.clone(),
            message: self.redact(message),
        }
    }

    /// `text` with the DSN and its password masked.
    fn redact(&self, text: String) -> String {
        let mut text = text.replace(&self.dsn, "***");
        if let Ok(c) = postgres::Config::from_str(&self.dsn)
            && let Some(pw) = c.get_password().and_then(|p| std::str::from_utf8(p).ok())
            && !pw.is_empty()
        {
            text = text.replace(pw, "***");
        }
        text
    }

    /// An idle client (`Some`), or a reserved slot to connect one in (`None`); waits
    /// while [`MAX_OPEN`] clients are in use.
    fn take(&self) -> Result<Option<Client>, PgFailure> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(c) = pool.idle.pop() {
                if c.is_closed() {
                    pool.open = pool.open.saturating_sub(1);
                    continue;
                }
                return Ok(Some(c));
            }
            if pool.open < MAX_OPEN {
                pool.open += 1;
                return Ok(None);
            }
            let (next, waited) = self
                .freed
                .wait_timeout(pool, WAIT_FOR_CLIENT)
                .unwrap_or_else(PoisonError::into_inner);
            pool = next;
            if waited.timed_out() && pool.idle.is_empty() && pool.open >= MAX_OPEN {
                return Err(PgFailure {
                    database: self.database.clone(),
                    message: format!(
                        "all {MAX_OPEN} database connections stayed busy for {}s",
                        WAIT_FOR_CLIENT.as_secs()
                    ),
                });
            }
        }
    }

    /// Returns a client after a call (`None`: it failed and was dropped).
    fn give_back(&self, client: Option<Client>) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        match client {
            Some(c) => pool.idle.push(c),
            None => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.freed.notify_one();
    }

    /// Runs `f` on an idle client (connecting one when none is idle and fewer than
    /// [`MAX_OPEN`] are open, else waiting for one), on a scoped thread: callers on an
    /// async runtime's worker may call this. A client that failed is dropped, so the
    /// next call connects afresh.
    pub(crate) fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, PgFailure> {
        let taken = self.take()?;
        let dsn = self.dsn.as_str();
        let out = std::thread::scope(|s| {
            s.spawn(move || {
                let mut client = match taken {
                    Some(c) => c,
                    None => Client::connect(dsn, NoTls)?,
                };
                f(&mut client).map(|v| (v, client))
            })
            .join()
        });
        match out {
            Ok(Ok((v, client))) => {
                self.give_back(Some(client));
                Ok(v)
            }
            Ok(Err(e)) => {
                self.give_back(None);
                Err(self.failure(&e))
            }
            Err(_) => {
                self.give_back(None);
                Err(PgFailure {
                    database: self.database.clone(),
                    message: "the database call panicked".into(),
                })
            }
        }
    }
}

/// Whether `e` is a unique-key violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
