//! Target leases in PostgreSQL (feature `postgres`): the lease table every replica
//! sees, with the semantics of [`crate::LifecycleDb::acquire_lease`]: a live lease of
//! another holder is refused with [`LeaseHeld`], an expired one is taken over, the
//! same holder renews. Each acquisition runs in one transaction under a per-target
//! advisory lock (`pg_advisory_xact_lock(hashtext(target))`), so racing replicas are
//! serialised and exactly one of them holds the lease. The connection is a
//! [`cfa_pg::PgPool`]: the DSN is held privately and never shown, errors name the server
//! as `user@host:port/dbname`.

use crate::error::LifecycleError;
use crate::lease::{Lease, LeaseHeld, LeaseStore};
use crate::time::{isoformat, parse};
use cfa_pg::{PgFailure, PgPool, dsn_from_env};
use jiff::Timestamp;
use postgres::Client;

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
    pool: PgPool,
}

impl std::fmt::Debug for PgLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeases")
            .field("database", &self.pool.database())
            .finish_non_exhaustive()
    }
}

fn pg_error(f: PgFailure) -> LifecycleError {
    LifecycleError::Postgres {
        database: f.database,
        message: f.message,
    }
}

impl PgLeases {
    /// Connects to the database `dsn` names and creates the lease table if missing.
    pub fn connect(dsn: &str) -> Result<Self, LifecycleError> {
        let leases = PgLeases {
            pool: PgPool::new(dsn).map_err(pg_error)?,
        };
        leases.with_client(|c| cfa_pg::create_schema(c, SCHEMA_LOCK, SCHEMA))?;
        Ok(leases)
    }

    /// Connects to the database whose DSN is in the environment variable `name`.
    pub fn connect_env(name: &str) -> Result<Self, LifecycleError> {
        Self::connect(&dsn_from_env(name).map_err(pg_error)?)
    }

    /// Runs `f` on a client of the pool (see [`PgPool::run`]: a client that failed is
    /// dropped, so the next call reconnects).
    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, LifecycleError> {
        self.pool.run(f).map_err(pg_error)
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
