//! The PostgreSQL plumbing the stores of cfa-audit, cfa-control and cfa-lifecycle share:
//! connecting to a server (a DSN from an environment variable, the schema created
//! idempotently under an advisory lock), naming it without its secrets
//! (`user@host:port/dbname`, [`describe_dsn`]), masking the DSN and its password in every
//! message ([`redact`]), and [`PgPool`], a bounded pool of sync clients whose calls run on
//! a scoped thread of their own (so the sync client never blocks inside a caller's async
//! runtime) and whose failures are [`PgFailure`]s that never show the DSN.
//!
//! Owns: DSN parsing, naming and redaction, the client pool, and the generic SQL of
//! schema creation (an advisory lock around caller-given DDL). Must NOT know: audit
//! events, control state (tickets, switches, budgets), leases, or any table: callers
//! bring their own SQL and map [`PgFailure`] into their own error types.
//!
//! ```
//! let dsn = "host=db.internal port=5433 user=cfa password=s3cret dbname=control";
//! assert_eq!(cfa_pg::describe_dsn(dsn).as_deref(), Some("cfa@db.internal:5433/control"));
//! assert_eq!(cfa_pg::redact("auth failed for s3cret", dsn), "auth failed for ***");
//! ```

use postgres::{Client, NoTls};
use std::str::FromStr;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Most clients a [`PgPool`] has open at once: a caller finding none idle connects one
/// while fewer are open, else waits for one to come back (no connection churn under
/// load: a new PostgreSQL backend per call costs milliseconds).
pub const MAX_OPEN: usize = 8;

/// How long a caller of [`PgPool::run`] waits for a client when all are busy before
/// failing (closed).
pub const WAIT_FOR_CLIENT: Duration = Duration::from_secs(30);

/// A failed call: the server named without its password, and what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{database}: {message}")]
pub struct PgFailure {
    /// `user@host:port/dbname` (or `$NAME` for an unset environment variable,
    /// `(unparsable DSN)` for a DSN that does not parse).
    pub database: String,
    /// The message, DSN and password masked.
    pub message: String,
}

/// `user@host:port/dbname` of a DSN, never its password; `None` when the DSN does not
/// parse as a PostgreSQL connection string (key=value pairs or a `postgresql://` URL).
/// A missing host is `localhost`, a missing port 5432, a missing user `?`, a missing
/// database the user's name.
///
/// ```
/// use cfa_pg::describe_dsn;
/// assert_eq!(
///     describe_dsn("postgresql://app:pw@10.0.0.5:6432/chain").as_deref(),
///     Some("app@10.0.0.5:6432/chain")
/// );
/// assert_eq!(describe_dsn("user=postgres").as_deref(), Some("postgres@localhost:5432/postgres"));
/// assert_eq!(describe_dsn("postgresql://u:pw@[bad"), None);
/// ```
pub fn describe_dsn(dsn: &str) -> Option<String> {
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

/// `text` with every occurrence of the DSN, then of its password, replaced by `***`
/// (an empty DSN or password masks nothing).
///
/// ```
/// let url = "postgresql://app:hunter2@db:5432/chain";
/// assert_eq!(cfa_pg::redact(&format!("cannot reach {url}"), url), "cannot reach ***");
/// assert_eq!(cfa_pg::redact("bad password hunter2", url), "bad password ***");
/// ```
pub fn redact(text: &str, dsn: &str) -> String {
    let mut text = if dsn.is_empty() {
        text.to_owned()
    } else {
        text.replace(dsn, "***")
    };
    if let Ok(c) = postgres::Config::from_str(dsn)
        && let Some(pw) = c.get_password().and_then(|p| std::str::from_utf8(p).ok())
        && !pw.is_empty()
    {
        text = text.replace(pw, "***");
    }
    text
}

/// The DSN in the environment variable `name` (unset or blank is a failure naming it as
/// `$NAME`): DSNs are never taken from argv.
pub fn dsn_from_env(name: &str) -> Result<String, PgFailure> {
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

/// Whether `e` is a unique-key violation (SQLSTATE 23505).
pub fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Runs the idempotent DDL `schema` in one transaction holding the transaction-level
/// advisory lock `lock`, so processes opening an empty database at once agree.
pub fn create_schema(client: &mut Client, lock: i64, schema: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
    tx.batch_execute(schema)?;
    tx.commit()
}

/// The clients of a pool: those idle, and how many are open (idle or in use).
#[derive(Default)]
struct Clients {
    idle: Vec<Client>,
    open: usize,
}

/// A bounded pool of sync clients of the database a DSN names: concurrent callers each
/// take an idle client, a new one is connected while fewer than [`MAX_OPEN`] are open,
/// else the caller waits (at most [`WAIT_FOR_CLIENT`]) for one to come back. A client
/// is dropped after any error, so a restarted server is picked up again. Connecting is
/// lazy: [`PgPool::new`] only parses the DSN. The DSN is kept for connecting and never
/// shown (not even by `Debug`).
pub struct PgPool {
    dsn: String,
    database: String,
    clients: Mutex<Clients>,
    freed: Condvar,
    wait: Duration,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// A pool for the database `dsn` names (nothing is connected yet); a DSN that does
    /// not parse is a failure naming it `(unparsable DSN)`.
    pub fn new(dsn: &str) -> Result<Self, PgFailure> {
        let database = describe_dsn(dsn).ok_or_else(|| PgFailure {
            database: "(unparsable DSN)".into(),
            message: "the DSN does not parse as a PostgreSQL connection string".into(),
        })?;
        Ok(PgPool {
            dsn: dsn.to_owned(),
            database,
            clients: Mutex::new(Clients::default()),
            freed: Condvar::new(),
            wait: WAIT_FOR_CLIENT,
        })
    }

    /// The DSN (never shown: for a second connection to the same database, such as a
    /// `LISTEN` session).
    pub fn dsn(&self) -> &str {
        &self.dsn
    }

    /// The server as `user@host:port/dbname`.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `e` as a failure of this pool's server: the driver's message with its cause (the
    /// server's message, the OS error), the DSN and its password masked.
    pub fn failure(&self, e: &postgres::Error) -> PgFailure {
        let mut message = e.to_string();
        if let Some(db) = e.as_db_error() {
            message = format!("{message}: {}", db.message());
        } else if let Some(s) = std::error::Error::source(e) {
            message = format!("{message}: {s}");
        }
        PgFailure {
            database: self.database.clone(),
            message: redact(&message, &self.dsn),
        }
    }

    /// An idle client (`Some`), or a reserved slot to connect one in (`None`); waits
    /// while [`MAX_OPEN`] clients are in use.
    fn take(&self) -> Result<Option<Client>, PgFailure> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(c) = clients.idle.pop() {
                if c.is_closed() {
                    clients.open = clients.open.saturating_sub(1);
                    continue;
                }
                return Ok(Some(c));
            }
            if clients.open < MAX_OPEN {
                clients.open += 1;
                return Ok(None);
            }
            let (next, waited) = self
                .freed
                .wait_timeout(clients, self.wait)
                .unwrap_or_else(PoisonError::into_inner);
            clients = next;
            if waited.timed_out() && clients.idle.is_empty() && clients.open >= MAX_OPEN {
                return Err(PgFailure {
                    database: self.database.clone(),
                    message: format!(
                        "all {MAX_OPEN} database connections stayed busy for {}s",
                        self.wait.as_secs()
                    ),
                });
            }
        }
    }

    /// Returns a client after a call (`None`: it failed and was dropped).
    fn give_back(&self, client: Option<Client>) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        match client {
            Some(c) => clients.idle.push(c),
            None => clients.open = clients.open.saturating_sub(1),
        }
        drop(clients);
        self.freed.notify_one();
    }

    /// Runs `f` on an idle client (connecting one when none is idle and fewer than
    /// [`MAX_OPEN`] are open, else waiting for one), on a scoped thread: callers on an
    /// async runtime's worker may call this. A client that failed is dropped, so the
    /// next call connects afresh.
    pub fn run<T: Send>(
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    const KV: &str = "host=127.0.0.1 port=1 user=cfa password=kv-s3cret dbname=ctl";
    const URL: &str = "postgresql://cfa:url-s3cret@127.0.0.1:1/ctl";

    #[test]
    fn describes_key_value_url_and_socket_dsns_without_the_password() {
        assert_eq!(describe_dsn(KV).as_deref(), Some("cfa@127.0.0.1:1/ctl"));
        assert_eq!(describe_dsn(URL).as_deref(), Some("cfa@127.0.0.1:1/ctl"));
        assert_eq!(
            describe_dsn("host=/run/pg user=me").as_deref(),
            Some("me@/run/pg:5432/me")
        );
        assert_eq!(describe_dsn("").as_deref(), Some("?@localhost:5432/?"));
    }

    #[test]
    fn an_unparsable_dsn_is_named_and_never_echoed() {
        let bad = "postgresql://u:hunter2@[bad";
        assert_eq!(describe_dsn(bad), None);
        let e = PgPool::new(bad).unwrap_err();
        assert_eq!(e.database, "(unparsable DSN)");
        assert_eq!(
            e.message,
            "the DSN does not parse as a PostgreSQL connection string"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn redacts_a_key_value_dsn_and_its_password() {
        assert_eq!(redact(&format!("at {KV}!"), KV), "at ***!");
        assert_eq!(
            redact("pw kv-s3cret twice kv-s3cret", KV),
            "pw *** twice ***"
        );
        assert_eq!(redact("nothing secret", KV), "nothing secret");
    }

    #[test]
    fn redacts_a_url_dsn_and_its_password() {
        assert_eq!(redact(&format!("at {URL}!"), URL), "at ***!");
        assert_eq!(redact("password url-s3cret", URL), "password ***");
    }

    #[test]
    fn an_empty_dsn_or_password_masks_nothing() {
        assert_eq!(redact("text", ""), "text");
        assert_eq!(redact("text", "host=h password="), "text");
        assert_eq!(redact("text", "not a [dsn"), "text");
    }

    #[test]
    fn an_unset_or_blank_variable_is_a_failure_naming_it() {
        let e = dsn_from_env("CFA_PG_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(e.database, "$CFA_PG_TEST_SURELY_UNSET_VARIABLE");
        assert_eq!(
            e.message,
            "the environment variable CFA_PG_TEST_SURELY_UNSET_VARIABLE is not set (it must hold the PostgreSQL DSN)"
        );
        // A set variable (PATH is set wherever tests run) is returned as it is.
        assert_eq!(
            dsn_from_env("PATH").unwrap(),
            std::env::var("PATH").unwrap()
        );
    }

    #[test]
    fn debug_never_shows_the_dsn() {
        let pool = PgPool::new(KV).unwrap();
        let shown = format!("{pool:?}");
        assert!(shown.contains("cfa@127.0.0.1:1/ctl"), "{shown}");
        assert!(!shown.contains("kv-s3cret"), "{shown}");
        assert_eq!(pool.database(), "cfa@127.0.0.1:1/ctl");
        assert_eq!(pool.dsn(), KV);
    }

    /// A closed port: the connect fails, the failure is redacted and the slot is
    /// given back (nothing stays reserved).
    #[test]
    fn a_failed_connect_is_reported_and_frees_its_slot() {
        let pool = PgPool::new(&format!("{KV} connect_timeout=3")).unwrap();
        for _ in 0..=MAX_OPEN {
            let e = pool.run(|c| c.simple_query("SELECT 1")).unwrap_err();
            assert_eq!(e.database, "cfa@127.0.0.1:1/ctl");
            assert!(e.message.contains("error connecting"), "{}", e.message);
            assert!(!e.message.contains("kv-s3cret"), "{}", e.message);
        }
        let clients = pool.clients.lock().unwrap();
        assert_eq!((clients.open, clients.idle.len()), (0, 0));
    }

    /// All slots reserved (as by callers connecting or in a call): the next caller
    /// waits, then fails closed naming the wait.
    #[test]
    fn a_caller_waits_then_fails_when_every_client_stays_busy() {
        let mut pool = PgPool::new(KV).unwrap();
        pool.wait = Duration::from_millis(100);
        for _ in 0..MAX_OPEN {
            assert!(pool.take().unwrap().is_none());
        }
        let started = Instant::now();
        let Err(e) = pool.take() else {
            panic!("a ninth caller got a client while eight were busy")
        };
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(e.database, "cfa@127.0.0.1:1/ctl");
        assert_eq!(
            e.message,
            format!("all {MAX_OPEN} database connections stayed busy for 0s")
        );
    }

    /// A waiting caller gets the slot a finished call gives back.
    #[test]
    fn a_waiting_caller_takes_the_slot_given_back() {
        let pool = Arc::new(PgPool::new(KV).unwrap());
        for _ in 0..MAX_OPEN {
            assert!(pool.take().unwrap().is_none());
        }
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.take().map(|c| c.is_none()))
        };
        std::thread::sleep(Duration::from_millis(50));
        pool.give_back(None);
        assert_eq!(waiter.join().unwrap(), Ok(true));
        assert_eq!(pool.clients.lock().unwrap().open, MAX_OPEN);
    }
}
