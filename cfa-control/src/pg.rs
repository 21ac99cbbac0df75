//! The PostgreSQL connection [`crate::PgControl`] and [`crate::budget::PgBudgets`]
//! share: a [`cfa_pg::PgPool`] (a bounded pool of clients per store, a client dropped
//! after any error, each call on a scoped thread of its own, a DSN that is never shown:
//! the store is named `user@host:port/dbname` and a password or the DSN itself is
//! masked in every message) whose control schema is created idempotently under an
//! advisory lock.

pub(crate) use cfa_pg::{PgFailure, PgPool, dsn_from_env, is_unique_violation};

/// The advisory lock key taken while the control schema is created.
const SCHEMA_LOCK: i64 = 0x0CFA_C047_0000;

/// Connects to the database `dsn` names and creates `schema` (idempotent DDL) under
/// the control schema's advisory lock.
pub(crate) fn connect(dsn: &str, schema: &'static str) -> Result<PgPool, PgFailure> {
    let pool = PgPool::new(dsn)?;
    pool.run(|c| cfa_pg::create_schema(c, SCHEMA_LOCK, schema))?;
    Ok(pool)
}
