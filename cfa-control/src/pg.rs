//! The PostgreSQL connection [`crate::PgControl`] and [`crate::budget::PgBudgets`]
//! share the handling of: a few idle clients kept per store (concurrent callers each
//! take one, a new one is connected when none is idle), a client dropped after any
//! error (a restarted server is picked up again), each call run on a scoped
//! thread of its own so the sync client never blocks inside a caller's async runtime,
//! the schema created idempotently under an advisory lock, and a DSN that is never
//! shown: the store is named `user@host:port/dbname` and a password or the DSN itself
//! is masked in every message.

use postgres::{Client, NoTls};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

/// The advisory lock key taken while the control schema is created.
const SCHEMA_LOCK: i64 = 0x0CFA_C047_0000;

/// Most idle clients a store keeps.
const MAX_IDLE: usize = 8;

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
    idle: Mutex<Vec<Client>>,
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
            idle: Mutex::new(Vec::new()),
        };
        conn.run(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(schema)?;
            tx.commit()
        })?;
        Ok(conn)
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

    /// Runs `f` on an idle client (connecting one when none is idle), on a scoped
    /// thread: callers on an async runtime's worker may call this. A client that
    /// failed is dropped, so the next call connects afresh.
    pub(crate) fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, PgFailure> {
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .filter(|c| !c.is_closed());
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
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push(client);
                }
                Ok(v)
            }
            Ok(Err(e)) => Err(self.failure(&e)),
            Err(_) => Err(PgFailure {
                database: self.database.clone(),
                message: "the database call panicked".into(),
            }),
        }
    }
}

/// Whether `e` is a unique-key violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
