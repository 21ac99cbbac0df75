//! Target leases in PostgreSQL (feature `postgres`): the lease table every replica
//! sees, with the semantics of [`crate::LifecycleDb::acquire_lease`]: a live lease of
//! another holder is refused with [`LeaseHeld`], an expired one is taken over, the
//! same holder renews. Each acquisition runs in one transaction under a per-target
//! advisory lock (`pg_advisory_xact_lock(hashtext(target))`), so racing replicas are
//! serialised and exactly one of them holds the lease. The DSN is held privately and
//! never shown: errors name the server as `user@host:port/dbname`.

use crate::error::LifecycleError;
use crate::lease::{Lease, LeaseHeld, LeaseStore};
use crate::time::{isoformat, parse};
use jiff::Timestamp;
use postgres::{Client, NoTls};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cfa_leases (
    target text PRIMARY KEY,
    holder text NOT NULL,
    acquired_at text NOT NULL,
    expires_at text NOT NULL
);
";

/// The advisory lock key taken while the schema is created.
const SCHEMA_LOCK: i64 = 0x0CFA_1EA5_E000;

/// Target leases in a PostgreSQL database shared by replicas.
pub struct PgLeases {
    dsn: String,
    target: String,
    conn: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PgLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeases")
            .field("database", &self.target)
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

impl PgLeases {
    /// Connects to the database `dsn` names and creates the lease table if missing.
    pub fn connect(dsn: &str) -> Result<Self, LifecycleError> {
        let target = describe_dsn(dsn).ok_or_else(|| LifecycleError::Postgres {
            database: "(unparsable DSN)".into(),
            message: "the DSN does not parse as a PostgreSQL connection string".into(),
        })?;
        let leases = PgLeases {
            dsn: dsn.to_owned(),
            target,
            conn: Mutex::new(None),
        };
        leases.with_client(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()
        })?;
        Ok(leases)
    }

    /// Connects to the database whose DSN is in the environment variable `name`.
    pub fn connect_env(name: &str) -> Result<Self, LifecycleError> {
        let dsn = std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| LifecycleError::Postgres {
                database: format!("${name}"),
                message: format!(
                    "the environment variable {name} is not set (it must hold the PostgreSQL DSN)"
                ),
            })?;
        Self::connect(&dsn)
    }

    fn err(&self, e: &postgres::Error) -> LifecycleError {
        let mut message = e.to_string();
        if let Some(db) = e.as_db_error() {
            message = format!("{message}: {}", db.message());
        } else if let Some(s) = std::error::Error::source(e) {
            message = format!("{message}: {s}");
        }
        if let Ok(c) = postgres::Config::from_str(&self.dsn)
            && let Some(pw) = c.get_password().and_then(|p| std::str::from_utf8(p).ok())
            && !pw.is_empty()
        {
            message = message.replace(pw, "***");
        }
        LifecycleError::Postgres {
            database: self.target.clone(),
            message: message.replace(&self.dsn, "***"),
        }
    }

    /// Runs `f` on the connection (reconnecting when there is none or it broke).
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, LifecycleError> {
        let mut g = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let client = match g.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => g.insert(Client::connect(&self.dsn, NoTls).map_err(|e| self.err(&e))?),
        };
        let out = f(client);
        if out.is_err() {
            *g = None;
        }
        out.map_err(|e| self.err(&e))
    }

    /// Takes the lease on `target` for `holder` until `now + ttl_secs` (see the
    /// module docs).
    pub fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError> {
        let expires = now
            .checked_add(jiff::SignedDuration::from_secs(i64::from(ttl_secs)))
            .unwrap_or(Timestamp::MAX);
        let lease = Lease {
            target: target.to_owned(),
            holder: holder.to_owned(),
            acquired_at: isoformat(now),
            expires_at: isoformat(expires),
        };
        let held = self.with_client(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&target])?;
            let current = tx.query_opt(
                "SELECT holder, expires_at FROM cfa_leases WHERE target = $1",
                &[&target],
            )?;
            if let Some(row) = current {
                let h: String = row.try_get(0)?;
                let exp: String = row.try_get(1)?;
                let live = parse(&exp).is_none_or(|e| e > now);
                if live && h != holder {
                    tx.rollback()?;
                    return Ok(Some(LeaseHeld {
                        target: target.to_owned(),
                        holder: h,
                        expires_at: exp,
                    }));
                }
            }
            tx.execute(
                "INSERT INTO cfa_leases (target, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (target) DO UPDATE SET holder = EXCLUDED.holder,
                   acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at",
                &[&lease.target, &lease.holder, &lease.acquired_at, &lease.expires_at],
            )?;
            tx.commit()?;
            Ok(None)
        })?;
        match held {
            Some(h) => Err(h.into()),
            None => Ok(lease),
        }
    }

    /// Releases `holder`'s lease on `target`; false when it did not hold it.
    pub fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError> {
        let n = self.with_client(|c| {
            c.execute(
                "DELETE FROM cfa_leases WHERE target = $1 AND holder = $2",
                &[&target, &holder],
            )
        })?;
        Ok(n > 0)
    }

    /// The lease on `target`, live or not.
    pub fn lease(&self, target: &str) -> Result<Option<Lease>, LifecycleError> {
        self.with_client(|c| {
            c.query_opt(
                "SELECT target, holder, acquired_at, expires_at FROM cfa_leases WHERE target = $1",
                &[&target],
            )?
            .map(|r| {
                Ok(Lease {
                    target: r.try_get(0)?,
                    holder: r.try_get(1)?,
                    acquired_at: r.try_get(2)?,
                    expires_at: r.try_get(3)?,
                })
            })
            .transpose()
        })
    }
}

impl LeaseStore for PgLeases {
    fn acquire_lease(
        &self,
        target: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Lease, LifecycleError> {
        PgLeases::acquire_lease(self, target, holder, now, ttl_secs)
    }

    fn release_lease(&self, target: &str, holder: &str) -> Result<bool, LifecycleError> {
        PgLeases::release_lease(self, target, holder)
    }
}
