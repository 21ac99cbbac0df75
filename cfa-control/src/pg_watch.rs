//! The kill switches a long-running replica keeps in memory between decisions
//! ([`crate::PgControl::watching`]), kept fresh by PostgreSQL's `LISTEN`/`NOTIFY`.
//!
//! A trigger on `cfa_control_kills` (created with the control tables) sends a
//! notification on [`CHANNEL`] in the transaction of every change, whoever makes it: a
//! replica, `cfa kill`, or an operator's own SQL. PostgreSQL delivers it only once that
//! transaction has committed. A listener thread holds its own connection, `LISTEN`s,
//! and drops the cached switches on every notification; the next decision reads them
//! again. While the listener is not listening (starting, the connection lost, the server
//! restarting) nothing is cached and every decision reads the table, as without a
//! cache, so a lost notification can never leave a stale switch in place.
//!
//! What the cache changes: a switch engaged by another process reaches this replica's
//! decisions once the notification arrives (on loopback, well under a millisecond after
//! the commit) instead of on the very next read; a switch changed through this replica
//! is seen by its next decision, as before (the write drops the cache itself).
//!
//! A read that raced with a change never lands in the cache: each read notes the
//! cache's generation first and stores its rows only if no notification (nor the
//! listener going down or up) bumped the generation meanwhile.

use crate::kill::KillSwitch;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The notification channel the kill-switch trigger notifies.
pub(crate) const CHANNEL: &str = "cfa_control_kills";

/// How long the listener blocks waiting for a notification before it checks that its
/// store still exists (the thread ends within this long of the store being dropped).
const TICK: Duration = Duration::from_millis(500);

/// How often an idle listener checks that its connection still works (a connection
/// that died without closing its socket is noticed within this long).
const HEALTH_CHECK: Duration = Duration::from_secs(1);

/// The `application_name` of the listener's connection (`pg_stat_activity` shows it).
pub(crate) const APPLICATION_NAME: &str = "cfa-control-listen";

/// The longest pause between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct State {
    /// Bumped by every notification and every change of `listening`.
    generation: u64,
    /// Whether the listener is connected and `LISTEN`ing (only then is a cache valid).
    listening: bool,
    /// The switches as last read, while valid.
    kills: Option<Vec<KillSwitch>>,
}

/// The cached kill switches of one store.
#[derive(Debug, Default)]
pub(crate) struct KillCache {
    state: Mutex<State>,
}

impl KillCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached switches (`Ok`), or the generation a fresh read must note before it
    /// reads (`Err`) to pass to [`KillCache::put`].
    pub(crate) fn get(&self) -> Result<Vec<KillSwitch>, u64> {
        let state = self.lock();
        match (&state.kills, state.listening) {
            (Some(kills), true) => Ok(kills.clone()),
            _ => Err(state.generation),
        }
    }

    /// Stores `kills`, read after [`KillCache::get`] returned `seen`, unless something
    /// changed since (or the listener is not listening).
    pub(crate) fn put(&self, seen: u64, kills: &[KillSwitch]) {
        let mut state = self.lock();
        if state.listening && state.generation == seen {
            state.kills = Some(kills.to_vec());
        }
    }

    /// Drops the cached switches: the next decision reads the table.
    pub(crate) fn invalidate(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.kills = None;
    }

    fn set_listening(&self, listening: bool) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.kills = None;
        state.listening = listening;
    }

    /// Whether the listener is currently listening (tests wait for it).
    pub(crate) fn listening(&self) -> bool {
        self.lock().listening
    }
}

/// Starts the listener thread of `cache` on the database `dsn` names. The thread ends
/// once the cache is dropped. `Err`: the thread could not be started (the store then
/// simply reads the table on every decision).
pub(crate) fn spawn_listener(dsn: String, cache: &Arc<KillCache>) -> std::io::Result<()> {
    let weak = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name("cfa-control-listen".into())
        .spawn(move || listen(&dsn, &weak))
        .map(drop)
}

/// Connects, listens and invalidates until the cache is gone; reconnects with a
/// growing pause after any failure.
fn listen(dsn: &str, cache: &Weak<KillCache>) {
    let Ok(mut config) = dsn.parse::<postgres::Config>() else {
        // Never listening: every snapshot reads the table.
        return;
    };
    config.application_name(APPLICATION_NAME);
    let mut backoff = Duration::from_millis(50);
    loop {
        if cache.strong_count() == 0 {
            return;
        }
        if let Ok(mut client) = config.connect(NoTls)
            && client.batch_execute(&format!("LISTEN {CHANNEL}")).is_ok()
        {
            let Some(c) = cache.upgrade() else { return };
            c.set_listening(true);
            drop(c);
            backoff = Duration::from_millis(50);
            let gone = serve_notifications(&mut client, cache);
            if let Some(c) = cache.upgrade() {
                c.set_listening(false);
            }
            if gone {
                return;
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Invalidates on every notification until the connection fails (`false`) or the
/// cache is dropped (`true`).
fn serve_notifications(client: &mut Client, cache: &Weak<KillCache>) -> bool {
    let mut checked = Instant::now();
    loop {
        let mut changed = false;
        let mut failed = false;
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(TICK);
            match waiting.next() {
                Ok(Some(_)) => changed = true,
                Err(_) => failed = true,
                Ok(None) => {}
            }
        }
        if changed {
            // Everything already buffered is the same news: one invalidation.
            let mut notifications = client.notifications();
            let mut buffered = notifications.iter();
            loop {
                match buffered.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        let Some(c) = cache.upgrade() else {
            return true;
        };
        if changed {
            c.invalidate();
        }
        drop(c);
        if failed || client.is_closed() {
            return false;
        }
        if checked.elapsed() >= HEALTH_CHECK {
            if client.is_valid(TICK).is_err() {
                return false;
            }
            checked = Instant::now();
        }
    }
}
