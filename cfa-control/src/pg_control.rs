//! [`PgControl`]: approval tickets and kill switches in PostgreSQL (feature
//! `postgres`), tables `cfa_control_kills` and `cfa_control_tickets`, with the
//! semantics of [`crate::ControlDb`] (the checks and row conversions are shared in
//! `rows`): every change is one statement or one transaction; a resolve locks the
//! ticket row (`SELECT … FOR UPDATE`) before it checks it; a ticket is spent by one
//! `UPDATE … WHERE status = 'granted'`, so of sessions racing for one granted ticket
//! exactly one spends it. A trigger notifies channel `cfa_control_kills` in the
//! transaction of every change to the switches; a store made [`PgControl::watching`]
//! (the long-running faces) keeps the switches in memory and drops them on each
//! notification (`pg_watch`), any other store reads them on every snapshot.

use crate::approval::{Resolution, Ticket, TicketStatus};
use crate::error::ControlError;
use crate::kill::{KillSwitch, Scope};
use crate::pg::{PgFailure, PgPool, dsn_from_env, is_unique_violation};
use crate::pg_watch::{KillCache, spawn_listener};
use crate::rows::{
    KillRow, TICKET_COLUMNS, TicketRow, check_engage, check_resolve_args, fault_codes_json,
    kill_of, resolved_status,
};
use crate::snapshot::{ControlSnapshot, ControlStore};
use postgres::Row;
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cfa_control_kills (
    scope text PRIMARY KEY, reason text NOT NULL, engaged_by text NOT NULL, engaged_at text NOT NULL);
CREATE TABLE IF NOT EXISTS cfa_control_tickets (
    id text PRIMARY KEY, status text NOT NULL, intent_id text NOT NULL, content_hash text NOT NULL,
    policy_bundle_hash text NOT NULL, policy_bundle text NOT NULL, requester text NOT NULL,
    reason text NOT NULL, fault_codes_json text NOT NULL, created_at text NOT NULL,
    expires_at text NOT NULL, decided_by text, decided_at text, note text, spent_at text);
CREATE INDEX IF NOT EXISTS cfa_control_tickets_status ON cfa_control_tickets(status);
DO $$ BEGIN
    -- Created only when missing: connecting to a database that has them writes nothing.
    IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'cfa_control_kills_changed') THEN
        CREATE FUNCTION cfa_control_kills_changed() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            PERFORM pg_notify('cfa_control_kills', TG_OP);
            RETURN NULL;
        END $f$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cfa_control_kills_notify'
                   AND tgrelid = 'cfa_control_kills'::regclass) THEN
        CREATE TRIGGER cfa_control_kills_notify
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cfa_control_kills
            FOR EACH STATEMENT EXECUTE FUNCTION cfa_control_kills_changed();
    END IF;
END $$;
";

const KILLS: &str =
    "SELECT scope, reason, engaged_by, engaged_at FROM cfa_control_kills ORDER BY scope";

/// The control store in a PostgreSQL database shared by replicas.
#[derive(Debug)]
pub struct PgControl {
    conn: PgPool,
    /// The switches kept between snapshots ([`PgControl::watching`]), else `None`.
    cache: Option<Arc<KillCache>>,
}

fn pg_error(f: PgFailure) -> ControlError {
    ControlError::Postgres {
        database: f.database,
        message: f.message,
    }
}

fn read_ticket(r: &Row) -> Result<TicketRow, postgres::Error> {
    Ok(TicketRow {
        id: r.try_get(0)?,
        status: r.try_get(1)?,
        intent_id: r.try_get(2)?,
        content_hash: r.try_get(3)?,
        policy_bundle_hash: r.try_get(4)?,
        policy_bundle: r.try_get(5)?,
        requester: r.try_get(6)?,
        reason: r.try_get(7)?,
        fault_codes_json: r.try_get(8)?,
        created_at: r.try_get(9)?,
        expires_at: r.try_get(10)?,
        decided_by: r.try_get(11)?,
        decided_at: r.try_get(12)?,
        note: r.try_get(13)?,
        spent_at: r.try_get(14)?,
    })
}

fn read_kill(r: &Row) -> Result<KillRow, postgres::Error> {
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
}

/// The ticket `id` on `c` (`lock`: `FOR UPDATE`, inside a transaction).
fn ticket_row(
    c: &mut impl postgres::GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<TicketRow>, postgres::Error> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM cfa_control_tickets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id])?
        .as_ref()
        .map(read_ticket)
        .transpose()
}

impl PgControl {
    /// Connects to the database `dsn` names and creates the control tables if missing.
    pub fn connect(dsn: &str) -> Result<Self, ControlError> {
        Ok(PgControl {
            conn: crate::pg::connect(dsn, SCHEMA).map_err(pg_error)?,
            cache: None,
        })
    }

    /// This store, keeping the kill switches in memory between snapshots for a
    /// long-running face: a thread with its own connection `LISTEN`s on the channel the
    /// switches' trigger notifies and drops them on each change, and while it is not
    /// listening (starting, reconnecting) every snapshot reads the table. A switch
    /// engaged elsewhere reaches this store's decisions once its notification arrives
    /// (under a millisecond on loopback); one changed through this store, at once.
    /// Without a thread (it could not be started) the store reads on every snapshot.
    pub fn watching(mut self) -> Self {
        let cache = Arc::new(KillCache::default());
        if spawn_listener(self.conn.dsn().to_owned(), &cache).is_ok() {
            self.cache = Some(cache);
        }
        self
    }

    /// Whether a [`PgControl::watching`] store's listener is listening (a snapshot is
    /// then served from memory once read).
    pub fn listening(&self) -> bool {
        self.cache.as_ref().is_some_and(|c| c.listening())
    }

    /// Drops the cached switches after a change made through this store.
    fn changed(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate();
        }
    }

    /// Connects to the database whose DSN is in the environment variable `name`.
    pub fn connect_env(name: &str) -> Result<Self, ControlError> {
        Self::connect(&dsn_from_env(name).map_err(pg_error)?)
    }

    /// The server as `user@host:port/dbname` (never the password).
    pub fn database(&self) -> &str {
        self.conn.database()
    }

    fn store_name(&self) -> String {
        format!("postgres {}", self.conn.database())
    }

    // ---- kill switches ----------------------------------------------------------

    /// Engages (or re-engages, replacing reason and operator) the switch on its scope.
    pub fn engage(&self, kill: &KillSwitch) -> Result<(), ControlError> {
        check_engage(kill)?;
        let scope = kill.scope.to_string();
        self.conn
            .run(|c| {
                c.execute(
                    "INSERT INTO cfa_control_kills (scope, reason, engaged_by, engaged_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (scope) DO UPDATE SET reason = EXCLUDED.reason,
                         engaged_by = EXCLUDED.engaged_by, engaged_at = EXCLUDED.engaged_at",
                    &[&scope, &kill.reason, &kill.by, &kill.engaged_at],
                )
            })
            .map_err(pg_error)?;
        self.changed();
        Ok(())
    }

    /// Lifts the switch on `scope`: the switch that was engaged, or `None` (nothing changed).
    pub fn release(&self, scope: &Scope) -> Result<Option<KillSwitch>, ControlError> {
        let key = scope.to_string();
        let row = self
            .conn
            .run(|c| {
                c.query_opt(
                    "DELETE FROM cfa_control_kills WHERE scope = $1
                     RETURNING scope, reason, engaged_by, engaged_at",
                    &[&key],
                )?
                .as_ref()
                .map(read_kill)
                .transpose()
            })
            .map_err(pg_error)?;
        self.changed();
        row.map(|r| kill_of(&self.store_name(), r)).transpose()
    }

    /// Every engaged switch, ordered by scope.
    pub fn kills(&self) -> Result<Vec<KillSwitch>, ControlError> {
        let rows = self
            .conn
            .run(|c| c.query(KILLS, &[])?.iter().map(read_kill).collect())
            .map_err(pg_error)?;
        self.kills_of(rows)
    }

    fn kills_of(&self, rows: Vec<KillRow>) -> Result<Vec<KillSwitch>, ControlError> {
        let store = self.store_name();
        rows.into_iter().map(|r| kill_of(&store, r)).collect()
    }

    // ---- tickets ----------------------------------------------------------------

    /// The ticket with `id`, if any.
    pub fn ticket(&self, id: &str) -> Result<Option<Ticket>, ControlError> {
        let row = self
            .conn
            .run(|c| ticket_row(c, id, false))
            .map_err(pg_error)?;
        row.map(|r| r.into_ticket(&self.store_name())).transpose()
    }

    /// Every ticket (or those with `status`), oldest first.
    pub fn tickets(&self, status: Option<TicketStatus>) -> Result<Vec<Ticket>, ControlError> {
        let status = status.map(TicketStatus::as_str);
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM cfa_control_tickets
             WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at, id"
        );
        let rows = self
            .conn
            .run(|c| {
                c.query(&sql, &[&status])?
                    .iter()
                    .map(read_ticket)
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(pg_error)?;
        let store = self.store_name();
        rows.into_iter().map(|r| r.into_ticket(&store)).collect()
    }

    /// Grants or denies the pending ticket `id` at `now`, in one transaction holding
    /// the ticket's row lock, and returns it as stored. An unknown, no longer pending
    /// or expired ticket is an error and nothing changes.
    pub fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        note: Option<&str>,
        now: &str,
    ) -> Result<Ticket, ControlError> {
        check_resolve_args(by, now)?;
        let store = self.store_name();
        self.conn
            .run(|c| {
                let mut tx = c.transaction()?;
                let current = match ticket_row(&mut tx, id, true)? {
                    Some(r) => match r.into_ticket(&store) {
                        Ok(t) => Some(t),
                        Err(e) => return Ok(Err(e)),
                    },
                    None => None,
                };
                let status = match resolved_status(id, current, resolution, now) {
                    Ok(s) => s,
                    // Dropping the transaction rolls it back: nothing changes.
                    Err(e) => return Ok(Err(e)),
                };
                tx.execute(
                    "UPDATE cfa_control_tickets SET status = $2, decided_by = $3, decided_at = $4, note = $5
                     WHERE id = $1 AND status = 'pending'",
                    &[&id, &status.as_str(), &by, &now, &note],
                )?;
                let stored = ticket_row(&mut tx, id, false)?;
                tx.commit()?;
                Ok(stored
                    .ok_or_else(|| ControlError::UnknownTicket { id: id.to_owned() })
                    .and_then(|r| r.into_ticket(&store)))
            })
            .map_err(pg_error)?
    }
}

impl ControlStore for PgControl {
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError> {
        // The generation a fresh read notes, when the switches may be kept.
        let seen = match (&self.cache, approval_id) {
            (Some(cache), None) => match cache.get() {
                Ok(kills) => {
                    return Ok(ControlSnapshot {
                        kills,
                        tickets: Vec::new(),
                    });
                }
                Err(generation) => Some(generation),
            },
            (Some(cache), Some(_)) => cache.get().err(),
            (None, _) => None,
        };
        let (kills, ticket) = self
            .conn
            .run(|c| {
                let kills = c
                    .query(KILLS, &[])?
                    .iter()
                    .map(read_kill)
                    .collect::<Result<Vec<_>, _>>()?;
                let ticket = match approval_id {
                    Some(id) => ticket_row(c, id, false)?,
                    None => None,
                };
                Ok((kills, ticket))
            })
            .map_err(pg_error)?;
        let store = self.store_name();
        let kills = self.kills_of(kills)?;
        if let (Some(cache), Some(seen)) = (&self.cache, seen) {
            cache.put(seen, &kills);
        }
        Ok(ControlSnapshot {
            kills,
            tickets: ticket
                .map(|r| r.into_ticket(&store))
                .transpose()?
                .into_iter()
                .collect(),
        })
    }

    fn open_ticket(&self, t: &Ticket) -> Result<(), ControlError> {
        let codes = fault_codes_json(t);
        let sql = format!(
            "INSERT INTO cfa_control_tickets ({TICKET_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        let inserted = self
            .conn
            .run(|c| {
                match c.execute(
                    &sql,
                    &[
                        &t.id,
                        &t.status.as_str(),
                        &t.intent_id,
                        &t.content_hash,
                        &t.policy_bundle_hash,
                        &t.policy_bundle,
                        &t.requester,
                        &t.reason,
                        &codes,
                        &t.created_at,
                        &t.expires_at,
                        &t.decided_by,
                        &t.decided_at,
                        &t.note,
                        &t.spent_at,
                    ],
                ) {
                    Ok(_) => Ok(true),
                    Err(e) if is_unique_violation(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .map_err(pg_error)?;
        if inserted {
            Ok(())
        } else {
            Err(ControlError::DuplicateTicket { id: t.id.clone() })
        }
    }

    fn spend_ticket(&self, id: &str, now: &str) -> Result<bool, ControlError> {
        let n = self
            .conn
            .run(|c| {
                c.execute(
                    "UPDATE cfa_control_tickets SET status = 'spent', spent_at = $2
                     WHERE id = $1 AND status = 'granted'",
                    &[&id, &now],
                )
            })
            .map_err(pg_error)?;
        Ok(n == 1)
    }
}
