//! The PostgreSQL store (feature `postgres`): one chain shared by every process that
//! appends to the same database (the replicas of `cfa serve` behind a load balancer).
//!
//! Two tables: `cfa_audit_events (seq, event_hash, previous_hash, line)` holds each
//! event's JSONL line exactly as [`crate::JsonlStore`] writes it (so an export is the
//! JSONL log byte for byte), and the one-row `cfa_audit_head (seq, event_hash)` is the
//! chain's tip. The chain is linearised in the database: a group is chained after the
//! head read with `SELECT … FOR UPDATE` and inserted, and the head moved, in the same
//! transaction, so whichever process holds the row lock appends next, sequence
//! numbers are gap-free (`seq` is the head's plus one, never a sequence that skips on
//! rollback) and each `previous_hash` is the true predecessor. Concurrent appenders
//! of one store are group-committed ([`crate::QueuedAppend`]): one transaction (one
//! commit, one WAL flush at `synchronous_commit=on`) per group.
//!
//! A group costs two round trips, both simple-query messages (nothing to prepare):
//! `BEGIN; SELECT … FOR UPDATE` (which waits for the head), then, once the head is
//! locked, the leader takes everything queued by then (requests that arrived while it
//! waited for the lock join its group) and sends `INSERT … VALUES …; UPDATE
//! cfa_audit_head …; COMMIT` as one message. The head row is thus held for one round
//! trip and the commit's WAL flush; the rows travel as escaped string constants
//! ([`push_literal`]). Nothing is acknowledged before `COMMIT` has returned.
//!
//! Fail closed: any database error fails the whole group with
//! [`AuditError::Postgres`] (nothing of it is acknowledged); the broken connection is
//! dropped and the next group reconnects, so a restarted server is picked up again.
//! The DSN is held privately and never appears in an error or a `Debug` output:
//! messages name the server as `user@host:port/dbname` and mask the DSN and its
//! password ([`cfa_pg::describe_dsn`], [`cfa_pg::redact`]).
//!
//! Reads (`verify`, `scan`, export) run on their own connection in one `REPEATABLE
//! READ` snapshot through a server-side portal fetched in batches of
//! [`FETCH_BATCH`] rows: memory stays constant whatever the chain's length, and
//! appenders are not held up.

use crate::error::{AuditError, IoError, PostgresError};
use crate::event::{AuditEvent, NewEvent};
use crate::group::{
    GroupQueue, HashTurn, LeadGuard, QueuedAppend, QueuedHashes, Request, Role, Woken,
    complete_all, deliver, deliver_hashes,
};
use crate::prepared::{PreparedEvent, Sealed};
use crate::store::AuditStore;
use crate::verify::{VerifyOptions, VerifyReport, verify_reader};
use postgres::{Client, IsolationLevel, NoTls};
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Rows fetched per round trip when the chain is streamed.
pub const FETCH_BATCH: i32 = 2000;

/// The advisory lock key taken while the schema is created (several replicas may open
/// an empty database at once).
const SCHEMA_LOCK: i64 = 0x0CFA_A0D1_7000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cfa_audit_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    event_hash text NOT NULL
);
INSERT INTO cfa_audit_head (id, seq, event_hash) VALUES (1, 0, '') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS cfa_audit_events (
    seq bigint PRIMARY KEY,
    event_hash text NOT NULL,
    previous_hash text NOT NULL,
    line text NOT NULL
);
";

/// The first round trip of a group: its transaction, waiting for the head row.
const LOCK_HEAD: &str = "BEGIN; SELECT seq, event_hash FROM cfa_audit_head WHERE id = 1 FOR UPDATE";

/// The start of the second round trip (the rows follow, then the head's update and the
/// commit).
const INSERT_ROWS: &str =
    "INSERT INTO cfa_audit_events (seq, event_hash, previous_hash, line) VALUES ";

/// A group's SQL text above this many bytes is not kept for the next group.
const KEEP_SQL: usize = 8 << 20;

/// The chain's tip as the head row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgHead {
    /// Number of events (the last event's sequence number; 0 when empty).
    pub seq: u64,
    /// The last event's hash (`""` when empty).
    pub event_hash: String,
}

/// What [`PgStore::export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgExport {
    /// Events written (one line each).
    pub events: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The chain's tip in the exported snapshot.
    pub head: PgHead,
}

/// A PostgreSQL audit store shared by every process appending to the database.
pub struct PgStore {
    dsn: String,
    target: String,
    /// `target` as the path the group queue's messages name.
    label: PathBuf,
    conn: Mutex<Writer>,
    group: GroupQueue,
}

/// The append connection and the buffers a group's statement is built in (reused from
/// group to group).
#[derive(Default)]
struct Writer {
    client: Option<Client>,
    /// The second round trip's SQL text.
    sql: String,
    /// One sealed line.
    line: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/dbname` of a DSN (never its password, see [`cfa_pg::describe_dsn`]),
/// or why it does not parse.
pub fn describe_dsn(dsn: &str) -> Result<String, String> {
    cfa_pg::describe_dsn(dsn).ok_or_else(|| {
        "the DSN does not parse as a PostgreSQL connection string (key=value pairs or a postgresql:// URL)"
            .to_owned()
    })
}

/// The message of a driver error with its cause (the server's message, the OS error),
/// with every occurrence of the DSN's password removed.
fn describe(e: &postgres::Error, dsn: &str) -> String {
    let mut text = e.to_string();
    if let Some(db) = e.as_db_error() {
        if !text.contains(db.message()) {
            text.push_str(": ");
            text.push_str(db.message());
        }
    } else if let Some(source) = std::error::Error::source(e) {
        let s = source.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
    }
    cfa_pg::redact(&text, dsn)
}

impl PgStore {
    /// Connects to the database `dsn` names and creates the tables if they are missing
    /// (under an advisory lock, so replicas opening an empty database at once agree).
    /// The DSN is kept for reconnecting and never shown: errors name the server as
    /// [`describe_dsn`] does.
    pub fn connect(dsn: &str) -> Result<Self, AuditError> {
        let target = describe_dsn(dsn).map_err(|message| PostgresError {
            target: "(unparsable DSN)".into(),
            message,
        })?;
        let store = PgStore {
            dsn: dsn.to_owned(),
            label: PathBuf::from(&target),
            target,
            conn: Mutex::new(Writer::default()),
            group: GroupQueue::default(),
        };
        let mut client = store.connect_client()?;
        cfa_pg::create_schema(&mut client, SCHEMA_LOCK, SCHEMA).map_err(|e| store.err(&e))?;
        store.guard().client = Some(client);
        Ok(store)
    }

    /// Connects to the database named by the environment variable `name` (the DSN is
    /// never taken from argv); an unset or empty variable is an error naming it.
    pub fn connect_env(name: &str) -> Result<Self, AuditError> {
        let dsn = cfa_pg::dsn_from_env(name).map_err(|f| PostgresError {
            target: f.database,
            message: f.message,
        })?;
        Self::connect(&dsn)
    }

    /// `user@host:port/dbname`: how messages name the database.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn err(&self, e: &postgres::Error) -> AuditError {
        PostgresError {
            target: self.target.clone(),
            message: describe(e, &self.dsn),
        }
        .into()
    }

    fn fail(&self, message: impl Into<String>) -> AuditError {
        PostgresError {
            target: self.target.clone(),
            message: message.into(),
        }
        .into()
    }

    fn connect_client(&self) -> Result<Client, AuditError> {
        Client::connect(&self.dsn, NoTls).map_err(|e| self.err(&e))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the append connection (reconnecting when there is none); a failure
    /// that left the connection closed drops it, so the next call reconnects.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, AuditError> {
        let mut g = self.guard();
        let client = match g.client.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => g.client.insert(self.connect_client()?),
        };
        let out = f(client);
        if out.is_err() {
            // Closed, or in an unknown state after a failed transaction: start afresh.
            g.client = None;
        }
        out.map_err(|e| self.err(&e))
    }

    /// The chain's tip as the head row records it.
    pub fn head(&self) -> Result<PgHead, AuditError> {
        let (seq, event_hash) = self.with_client(|c| {
            let row = c.query_one(
                "SELECT seq, event_hash FROM cfa_audit_head WHERE id = 1",
                &[],
            )?;
            Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?))
        })?;
        Ok(PgHead {
            seq: u64::try_from(seq).unwrap_or(0),
            event_hash,
        })
    }

    /// Opens the group's transaction and locks the head row (`FOR UPDATE`, waiting
    /// for whichever group holds it): the head's sequence number and hash. A
    /// connection found broken (a restarted server) is replaced and the lock tried once
    /// more; nothing of the group has been sent yet.
    fn lock_head(&self, w: &mut Writer) -> Result<(i64, String), AuditError> {
        let mut retried = false;
        loop {
            if w.client.as_ref().is_none_or(Client::is_closed) {
                w.client = Some(self.connect_client()?);
            }
            let Some(client) = w.client.as_mut() else {
                return Err(self.fail("no connection"));
            };
            let failure = match client.simple_query(LOCK_HEAD) {
                Ok(messages) => match head_row(&messages) {
                    Some(head) => return Ok(head),
                    None => None,
                },
                Err(e) => Some(e),
            };
            let closed = client.is_closed();
            // Closed, or inside a transaction this group will not use.
            w.client = None;
            match failure {
                Some(_) if closed && !retried => retried = true,
                Some(e) => return Err(self.err(&e)),
                None => {
                    return Err(self
                        .fail("the head row (id = 1) of cfa_audit_head is missing or malformed"));
                }
            }
        }
    }

    /// Chains `group` after `head` (locked by [`PgStore::lock_head`]) and sends its
    /// rows, the head's update and the commit as one message: the sealed events, and
    /// `Ok` once committed (else nothing was acknowledged).
    fn write_locked(
        &self,
        w: &mut Writer,
        head: (i64, String),
        group: &mut [Request],
    ) -> (Vec<Vec<Sealed>>, Result<(), AuditError>) {
        let mut sealed = Vec::with_capacity(group.len());
        let Writer { client, sql, line } = w;
        let built = build_group_sql(group, head, sql, line, &mut sealed);
        let result = match (built, client.as_mut()) {
            (Err(reason), _) => Err(self.fail(reason)),
            (Ok(()), None) => Err(self.fail("no connection")),
            (Ok(()), Some(c)) => c.batch_execute(sql).map_err(|e| self.err(&e)),
        };
        if result.is_err() {
            // Closed, or in an unknown state after a failed transaction.
            *client = None;
        }
        if sql.capacity() > KEEP_SQL {
            *sql = String::new();
        }
        (sealed, result)
    }

    /// Locks the head, then takes everything queued as the leader's group (what
    /// arrived while the lock was awaited included), commits it and completes every
    /// request of it (the lead passes on once the transaction is over).
    fn lead(&self) {
        let mut guard = LeadGuard::pending(&self.group, &self.label);
        let mut w = self.guard();
        let locked = self.lock_head(&mut w);
        guard.take();
        let (sealed, result) = match locked {
            Ok(head) => self.write_locked(&mut w, head, &mut guard.group),
            Err(e) => (Vec::new(), Err(e)),
        };
        drop(w);
        guard.hand_over();
        complete_all(&guard.group, sealed, result);
        guard.group.clear();
    }

    /// Queues `events` and waits until they are committed (leading the group when no
    /// one else does).
    fn join_commit(&self, events: Vec<PreparedEvent>) -> crate::group::Outcome {
        let (slot, role) = self.group.join(events);
        if let Role::Follow = role
            && let Woken::Done(outcome) = slot.wait()
        {
            return outcome;
        }
        self.lead();
        match slot.wait() {
            Woken::Done(outcome) => outcome,
            Woken::Lead => Err(self.fail("the append was handed the lead twice")),
        }
    }

    /// Queues `events` for group commit without waiting, for callers that must not
    /// block (an async runtime's worker): await the returned [`QueuedAppend`]; when it
    /// says [`crate::Turn::Lead`], call [`PgStore::lead_queued`] on a thread that may
    /// block, then await it again.
    pub fn enqueue(&self, events: Vec<NewEvent>) -> QueuedAppend<'_> {
        if events.is_empty() {
            return QueuedAppend::done(&self.group, Ok(Vec::new()));
        }
        let events: Vec<PreparedEvent> = events.into_iter().map(NewEvent::prepare).collect();
        let (slot, role) = self.group.join(events);
        QueuedAppend::new(&self.group, slot, role)
    }

    /// [`PgStore::enqueue`] of events prepared by the caller (see
    /// [`PreparedEvent`]): the returned [`QueuedHashes`] resolves to their hashes only,
    /// once their transaction committed.
    pub fn enqueue_prepared(&self, events: Vec<PreparedEvent>) -> QueuedHashes<'_> {
        if events.is_empty() {
            return QueuedHashes(QueuedAppend::done(&self.group, Ok(Vec::new())));
        }
        let (slot, role) = self.group.join(events);
        QueuedHashes(QueuedAppend::new(&self.group, slot, role))
    }

    /// [`PgStore::append_async`] of events prepared by the caller
    /// ([`PgStore::enqueue_prepared`]), resolving to the events' hashes in order once
    /// their transaction committed.
    pub async fn append_prepared_async<B, F>(
        self: &Arc<Self>,
        events: Vec<PreparedEvent>,
        mut lead_blocking: B,
    ) -> Result<Vec<String>, AuditError>
    where
        B: FnMut(Arc<Self>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let mut queued = self.enqueue_prepared(events);
        loop {
            match (&mut queued).await {
                HashTurn::Done(outcome) => return outcome,
                HashTurn::Lead => lead_blocking(Arc::clone(self)).await,
            }
        }
    }

    /// Commits the group led by the [`QueuedAppend`] that was handed the lead (blocks
    /// on the database) and hands the lead on.
    pub fn lead_queued(&self) {
        self.lead();
    }

    /// Appends `events` through group commit from a task of an async runtime: the
    /// request is queued ([`PgStore::enqueue`]) and awaited; when it is handed the
    /// lead, `lead_blocking` is awaited, which must run [`PgStore::lead_queued`] on the
    /// store it is given on a thread that may block. Resolves to the sealed events once
    /// their transaction committed.
    pub async fn append_async<B, F>(
        self: &Arc<Self>,
        events: Vec<NewEvent>,
        mut lead_blocking: B,
    ) -> Result<Vec<AuditEvent>, AuditError>
    where
        B: FnMut(Arc<Self>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let mut queued = self.enqueue(events);
        loop {
            match (&mut queued).await {
                crate::Turn::Done(outcome) => return outcome,
                crate::Turn::Lead => lead_blocking(Arc::clone(self)).await,
            }
        }
    }

    /// Streams the chain as JSONL (each stored line and `\n`, in sequence order) from
    /// one snapshot on a connection of its own into `each`, with the head of that
    /// snapshot. Sequence numbers must run 1, 2, … without a gap.
    fn stream(
        &self,
        each: &mut dyn FnMut(&mut dyn Read) -> Result<(), AuditError>,
    ) -> Result<PgHead, AuditError> {
        let mut client = self.connect_client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| self.err(&e))?;
        let row = tx
            .query_one(
                "SELECT seq, event_hash FROM cfa_audit_head WHERE id = 1",
                &[],
            )
            .map_err(|e| self.err(&e))?;
        let head = PgHead {
            seq: u64::try_from(row.try_get::<_, i64>(0).map_err(|e| self.err(&e))?).unwrap_or(0),
            event_hash: row.try_get(1).map_err(|e| self.err(&e))?,
        };
        let portal = tx
            .bind("SELECT seq, line FROM cfa_audit_events ORDER BY seq", &[])
            .map_err(|e| self.err(&e))?;
        let mut reader = PortalReader {
            tx: &mut tx,
            portal: &portal,
            buf: Vec::new(),
            pos: 0,
            next_seq: 1,
            done: false,
            failure: None,
        };
        let out = each(&mut reader);
        if let Some(f) = reader.failure.take() {
            return Err(match f {
                ReadFailure::Db(e) => self.err(&e),
                ReadFailure::Gap { expected, found } => self.fail(format!(
                    "sequence numbers jump from {} to {found}: events were removed",
                    expected.saturating_sub(1)
                )),
            });
        }
        out?;
        drop(reader);
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(head)
    }

    /// Writes the chain as the JSONL log [`crate::JsonlStore`] would hold (byte for
    /// byte: the stored lines, each ended by `\n`) into `out`, streaming.
    pub fn export(&self, out: &mut dyn Write) -> Result<PgExport, AuditError> {
        let mut bytes = 0u64;
        let mut events = 0u64;
        let head = self.stream(&mut |r| {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(IoError::new("", "read", e).into()),
                };
                let chunk = buf.get(..n).unwrap_or_default();
                events += memchr::memchr_iter(b'\n', chunk).count() as u64;
                out.write_all(chunk)
                    .map_err(|e| IoError::new("", "write", e))?;
                bytes += n as u64;
            }
            Ok(())
        })?;
        Ok(PgExport {
            events,
            bytes,
            head,
        })
    }

    /// [`PgStore::export`] into the file `path`, written beside it first and renamed
    /// over it once complete and synced (nothing half-written on failure).
    pub fn export_file(&self, path: &Path) -> Result<PgExport, AuditError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export.jsonl".into());
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| IoError::new(&tmp, "create", e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let export = self.export(&mut w).map_err(|e| match e {
                AuditError::Io(io) if io.path.as_os_str().is_empty() => {
                    IoError::new(&tmp, io.op, io.source).into()
                }
                other => other,
            })?;
            let file = w
                .into_inner()
                .map_err(|e| IoError::new(&tmp, "write", e.into_error()))?;
            file.sync_all()
                .map_err(|e| IoError::new(&tmp, "fsync", e))?;
            std::fs::rename(&tmp, path).map_err(|e| IoError::new(path, "rename onto", e))?;
            Ok(export)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Verifies the chain from the database in one streaming pass with the JSONL
    /// verifier (the line numbers of the report are sequence numbers minus one), then
    /// checks the head row against it: a head that does not name the last event (rows
    /// removed at the end, or the head altered) is an error.
    pub fn verify_chain(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let mut report = None;
        let head = self.stream(&mut |r| {
            let mut o = opts.clone();
            // Rows arrive in order over one connection: one thread checks them.
            o.threads = 1;
            report =
                Some(verify_reader(r, &o, &mut |_| {}).map_err(|e| IoError::new("", "read", e))?);
            Ok(())
        })?;
        let report = report.ok_or_else(|| self.fail("the chain was not read"))?;
        if report.intact() && (report.events != head.seq || report.tail_hash != head.event_hash) {
            return Err(self.fail(format!(
                "the head row names {} events ending in '{}' but the table holds {} ending in '{}': \
                 events were removed or the head was altered",
                head.seq, head.event_hash, report.events, report.tail_hash
            )));
        }
        Ok(report)
    }
}

/// The head's `(seq, event_hash)` in the rows [`LOCK_HEAD`] answered.
fn head_row(messages: &[postgres::SimpleQueryMessage]) -> Option<(i64, String)> {
    messages.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(row) => {
            let seq = row.get(0)?.parse().ok()?;
            Some((seq, row.get(1)?.to_owned()))
        }
        _ => None,
    })
}

/// Appends `text` as an escape string constant (`E'…'`, backslashes and quotes
/// doubled), which reads back as `text` whatever `standard_conforming_strings` says.
/// A NUL, which no PostgreSQL text can hold, is refused.
pub(crate) fn push_literal(sql: &mut String, text: &str) -> Result<(), &'static str> {
    if memchr::memchr(0, text.as_bytes()).is_some() {
        return Err("an audit line holds a NUL character, which PostgreSQL text cannot store");
    }
    sql.reserve(text.len() + 3);
    sql.push_str("E'");
    let mut rest = text;
    while let Some(at) = memchr::memchr2(b'\\', b'\'', rest.as_bytes()) {
        // `at` is an ASCII byte, so both sides are on character boundaries.
        let (Some(plain), Some(tail)) = (rest.get(..at), rest.get(at + 1..)) else {
            return Err("an audit line could not be escaped");
        };
        sql.push_str(plain);
        sql.push_str(if rest.as_bytes().get(at) == Some(&b'\\') {
            "\\\\"
        } else {
            "''"
        });
        rest = tail;
    }
    sql.push_str(rest);
    sql.push('\'');
    Ok(())
}

/// Seals the requests of `group` after `head` in queue order (each sealed list pushed
/// on `sealed`) and writes into `sql` the group's second round trip: `INSERT … VALUES
/// (seq, hash, previous, line), …; UPDATE cfa_audit_head …; COMMIT` (an empty group
/// only ends the transaction). `line` is scratch space for one sealed line.
pub(crate) fn build_group_sql(
    group: &mut [Request],
    head: (i64, String),
    sql: &mut String,
    line: &mut String,
    sealed: &mut Vec<Vec<Sealed>>,
) -> Result<(), &'static str> {
    use std::fmt::Write as _;
    let (mut seq, mut prev) = head;
    sql.clear();
    sql.push_str(INSERT_ROWS);
    let mut rows = 0usize;
    for request in group.iter_mut() {
        let events = std::mem::take(&mut request.events);
        let mut mine = Vec::with_capacity(events.len());
        for event in events {
            // Prepared before queueing: only the hash's end is computed here.
            line.clear();
            let e = event.seal_line(&prev, line);
            seq += 1;
            if rows > 0 {
                sql.push(',');
            }
            rows += 1;
            let _ = write!(sql, "({seq},");
            let hash = e.hash();
            push_literal(sql, hash)?;
            sql.push(',');
            push_literal(sql, &prev)?;
            sql.push(',');
            push_literal(sql, line)?;
            sql.push(')');
            prev.clear();
            prev.push_str(hash);
            mine.push(e);
        }
        sealed.push(mine);
    }
    if rows == 0 {
        sql.clear();
        sql.push_str("COMMIT");
        return Ok(());
    }
    let _ = write!(
        sql,
        "; UPDATE cfa_audit_head SET seq = {seq}, event_hash = "
    );
    push_literal(sql, &prev)?;
    sql.push_str(" WHERE id = 1; COMMIT");
    Ok(())
}

enum ReadFailure {
    Db(postgres::Error),
    Gap { expected: i64, found: i64 },
}

/// The chain as a byte stream: `line\n` per row, fetched [`FETCH_BATCH`] rows at a
/// time from a portal.
struct PortalReader<'t, 'c> {
    tx: &'t mut postgres::Transaction<'c>,
    portal: &'t postgres::Portal,
    buf: Vec<u8>,
    pos: usize,
    next_seq: i64,
    done: bool,
    failure: Option<ReadFailure>,
}

impl PortalReader<'_, '_> {
    fn refill(&mut self) -> std::io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        let rows = match self.tx.query_portal(self.portal, FETCH_BATCH) {
            Ok(rows) => rows,
            Err(e) => {
                self.failure = Some(ReadFailure::Db(e));
                return Err(std::io::Error::other("the database read failed"));
            }
        };
        if rows.is_empty() {
            self.done = true;
        }
        for row in rows {
            let got = row
                .try_get::<_, i64>(0)
                .and_then(|s| Ok((s, row.try_get::<_, &str>(1)?)));
            let (seq, line) = match got {
                Ok(v) => v,
                Err(e) => {
                    self.failure = Some(ReadFailure::Db(e));
                    return Err(std::io::Error::other("the database read failed"));
                }
            };
            if seq != self.next_seq {
                self.failure = Some(ReadFailure::Gap {
                    expected: self.next_seq,
                    found: seq,
                });
                return Err(std::io::Error::other("a sequence number is missing"));
            }
            self.next_seq += 1;
            self.buf.extend_from_slice(line.as_bytes());
            self.buf.push(b'\n');
        }
        Ok(())
    }
}

impl Read for PortalReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

impl AuditStore for PgStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let mut out = Vec::with_capacity(1);
        self.append_batch(vec![event], &mut out)?;
        out.pop()
            .ok_or_else(|| self.fail("the append returned no event"))
    }

    /// Group commit: whichever appender leads inserts everything queued (each call's
    /// events contiguous, in order) in one transaction.
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.into_iter().map(NewEvent::prepare).collect();
        deliver(self.join_commit(events), written)
    }

    fn append_prepared(
        &self,
        events: Vec<PreparedEvent>,
        hashes: &mut Vec<String>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        deliver_hashes(self.join_commit(events), hashes)
    }

    fn tail_hash(&self) -> Result<String, AuditError> {
        Ok(self.head()?.event_hash)
    }

    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.head()?.seq)
    }

    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        let target = self.target.clone();
        self.stream(&mut |r| {
            let mut failure = None;
            crate::lines::for_each_event_line(std::io::BufReader::new(r), &mut |_, _, line| {
                match std::str::from_utf8(line)
                    .map_err(|e| e.to_string())
                    .and_then(|l| AuditEvent::from_jsonl_line(l).map_err(|e| e.to_string()))
                {
                    Ok(e) => visit(e),
                    Err(reason) => {
                        failure = Some(reason);
                        ControlFlow::Break(())
                    }
                }
            })
            .map_err(|e| IoError::new("", "read", e))?;
            match failure {
                None => Ok(()),
                Some(reason) => Err(crate::error::InvalidEventError {
                    source_name: target.clone(),
                    reason,
                }
                .into()),
            }
        })
        .map(|_| ())
    }

    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        self.verify_chain(opts)
    }

    /// Every acknowledged group is committed already.
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The text an `E'…'` constant [`push_literal`] wrote stands for (the inverse of
    /// its escaping; panics on anything it would not write).
    fn unescape(lit: &str) -> String {
        let body = lit.strip_prefix("E'").unwrap().strip_suffix('\'').unwrap();
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => assert_eq!(chars.next(), Some('\\'), "lone backslash in {lit}"),
                '\'' => assert_eq!(chars.next(), Some('\''), "lone quote in {lit}"),
                _ => {}
            }
            out.push(c);
        }
        out
    }

    /// The `E'…'` constants of `sql`, in order.
    fn literals(sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find("E'") {
            let body = &rest[at + 2..];
            let bytes = body.as_bytes();
            let mut i = 0;
            loop {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => break,
                    _ => i += 1,
                }
            }
            out.push(unescape(&rest[at..at + 2 + i + 1]));
            rest = &body[i + 1..];
        }
        out
    }

    #[test]
    fn literals_escape_quotes_and_backslashes_and_refuse_nul() {
        for text in [
            "",
            "plain",
            "it's",
            r"back\slash \\ and \' both",
            "ünïcode — \"quoted\" $$ E'x' ;COMMIT;",
            "'",
            "\\",
        ] {
            let mut sql = String::from("x");
            push_literal(&mut sql, text).unwrap();
            let lit = &sql[1..];
            assert_eq!(unescape(lit), text, "{lit}");
            assert_eq!(literals(&sql), vec![text.to_owned()]);
        }
        let mut sql = String::new();
        push_literal(&mut sql, r#"a'b\c"#).unwrap();
        assert_eq!(sql, r#"E'a''b\\c'"#);
        assert!(push_literal(&mut String::new(), "nul \0 here").is_err());
    }

    fn event(i: u32, reasoning: &str) -> NewEvent {
        NewEvent::new(
            format!("intent-{i}"),
            "policy_check",
            "policy_evaluation",
            "approve",
            "2026-01-01T00:00:00+00:00",
        )
        .detail("reasoning", reasoning)
        .detail("n", i)
    }

    #[test]
    fn a_group_is_one_insert_the_head_update_and_the_commit() {
        let queue = GroupQueue::default();
        let reasons = ["it's", r"a \ backslash", "ünïcode \"q\""];
        let _a = queue.join(vec![event(0, reasons[0]).prepare()]);
        let _b = queue.join(vec![
            event(1, reasons[1]).prepare(),
            event(2, reasons[2]).prepare(),
        ]);
        let mut group = queue.take();
        let (mut sql, mut line, mut sealed) = (String::new(), String::new(), Vec::new());
        build_group_sql(
            &mut group,
            (5, "f00d".into()),
            &mut sql,
            &mut line,
            &mut sealed,
        )
        .unwrap();
        assert_eq!(sealed.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
        // The chain, sealed after the head, as the JSONL store would seal it.
        let mut prev = "f00d".to_owned();
        let mut expected = Vec::new();
        for (i, r) in reasons.iter().enumerate() {
            let mut l = String::new();
            let e = event(i as u32, r).seal_into(&prev, &mut l);
            expected.extend([e.event_hash.clone(), prev.clone(), l]);
            prev = e.event_hash;
        }
        let events: Vec<&Sealed> = sealed.iter().flatten().collect();
        for (k, s) in events.iter().enumerate() {
            let Sealed::Event(e) = s else {
                panic!("prepared from a NewEvent: the whole event comes back")
            };
            assert_eq!(e.event_hash, expected[3 * k]);
            assert_eq!(e.previous_hash, expected[3 * k + 1]);
        }
        assert!(sql.starts_with(&format!("{INSERT_ROWS}(6,E'")), "{sql}");
        assert!(sql.contains("),(7,E'") && sql.contains("),(8,E'"), "{sql}");
        assert!(
            sql.ends_with(&format!(
                "; UPDATE cfa_audit_head SET seq = 8, event_hash = E'{prev}' WHERE id = 1; COMMIT"
            )),
            "{sql}"
        );
        let mut lits = literals(&sql);
        assert_eq!(lits.pop(), Some(prev), "the head moves to the last hash");
        assert_eq!(lits, expected, "hash, previous hash and line of each row");

        // Nothing queued: the transaction only ends.
        build_group_sql(&mut [], (8, "x".into()), &mut sql, &mut line, &mut sealed).unwrap();
        assert_eq!(sql, "COMMIT");
    }
}
