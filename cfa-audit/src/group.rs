//! Group commit: concurrent appenders to one store form one queue. The first appender
//! that finds no leader becomes the leader; it takes everything queued (its own request
//! and whatever arrived meanwhile), and the store seals it in queue order, writes it in
//! one write and completes every request once its events are as durable as the store's
//! policy asks. Then the leader hands the role to the oldest request still queued (or
//! steps down), so every leader commits exactly one group, the one holding its own
//! events. The others sleep on their own slot until their request is complete (or
//! until they are handed the lead), never behind a lock the leader holds.
//!
//! The queue knows nothing about files: [`crate::jsonl::JsonlStore`] drives it.

use crate::error::{AuditError, ForeignStoreError, InvalidEventError, IoError, TornTailError};
use crate::event::AuditEvent;
use crate::prepared::{PreparedEvent, Sealed};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;

/// What a completed request gets: its sealed events in order, or why nothing of it
/// was acknowledged.
pub(crate) type Outcome = Result<OneOrMany<Sealed>, AuditError>;

/// A request's events (or sealed events): most requests hold one, kept inline, so
/// that neither the appender nor the leader allocates a list for it, and no list
/// allocated on one thread is freed on another.
#[derive(Debug)]
pub(crate) enum OneOrMany<T> {
    /// One item.
    One(T),
    /// Any number of items (none, or more than one).
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    /// How many items.
    pub fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(v) => v.len(),
        }
    }
}

impl<T> From<Vec<T>> for OneOrMany<T> {
    /// A list of one becomes inline (the `Vec` is freed here, on the thread that made
    /// it).
    fn from(mut v: Vec<T>) -> Self {
        match (v.len(), v.pop()) {
            (1, Some(one)) => Self::One(one),
            (_, Some(last)) => {
                v.push(last);
                Self::Many(v)
            }
            (_, None) => Self::Many(v),
        }
    }
}

impl<T> IntoIterator for OneOrMany<T> {
    type Item = T;
    type IntoIter = OneOrManyIter<T>;

    fn into_iter(self) -> OneOrManyIter<T> {
        match self {
            Self::One(one) => OneOrManyIter::One(Some(one)),
            Self::Many(v) => OneOrManyIter::Many(v.into_iter()),
        }
    }
}

/// The items of a [`OneOrMany`], in order.
pub(crate) enum OneOrManyIter<T> {
    One(Option<T>),
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for OneOrManyIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::One(one) => one.take(),
            Self::Many(v) => v.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::One(one) => {
                let n = usize::from(one.is_some());
                (n, Some(n))
            }
            Self::Many(v) => v.size_hint(),
        }
    }
}

/// One appender's place in the queue.
pub(crate) struct Request {
    /// The events to chain, in order (contiguous in the log), prepared before they
    /// were queued so the leader only finishes their hashes.
    pub events: OneOrMany<PreparedEvent>,
    slot: Arc<Slot>,
}

impl Request {
    /// Completes this request (wakes its appender).
    pub fn complete(&self, outcome: Outcome) {
        self.slot.set(SlotState::Done(outcome));
    }
}

#[derive(Default)]
struct QueueState {
    waiting: Vec<Request>,
    leading: bool,
}

/// The queue of one store.
#[derive(Default)]
pub(crate) struct GroupQueue {
    state: Mutex<QueueState>,
}

/// How [`GroupQueue::join`] placed a request.
pub(crate) enum Role {
    /// No group was being committed: the caller leads now.
    Lead,
    /// Another appender leads: wait on the slot.
    Follow,
}

impl GroupQueue {
    fn guard(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `events`; the returned slot reports the outcome.
    pub fn join(&self, events: impl Into<OneOrMany<PreparedEvent>>) -> (Arc<Slot>, Role) {
        let events = events.into();
        let slot = Arc::new(Slot::default());
        let mut q = self.guard();
        q.waiting.push(Request {
            events,
            slot: Arc::clone(&slot),
        });
        let role = if q.leading {
            Role::Follow
        } else {
            q.leading = true;
            Role::Lead
        };
        (slot, role)
    }

    /// Everything queued, in arrival order (the leader's group).
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut self.guard().waiting)
    }

    /// Ends the current leader's turn: the oldest queued request leads next, or there
    /// is no leader until the next append.
    pub fn hand_over(&self) {
        pass_lead(&mut self.guard());
    }
}

/// Hands the lead to the oldest queued request still waiting, or ends leadership
/// (abandoned requests stay queued for the next leader).
fn pass_lead(q: &mut QueueState) {
    if !q.waiting.iter().any(|r| r.slot.try_lead()) {
        q.leading = false;
    }
}

enum Waiter {
    None,
    Thread(Thread),
    Task(Waker),
}

enum SlotState {
    Queued(Waiter),
    Lead,
    Done(Outcome),
    Taken,
    /// An async appender stopped waiting; its request is still committed by whoever
    /// leads, and it is never handed the lead.
    Abandoned,
}

/// Where a queued request learns its outcome.
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            state: Mutex::new(SlotState::Queued(Waiter::None)),
        }
    }
}

/// What woke a waiting appender.
pub(crate) enum Woken {
    /// Its request is complete.
    Done(Outcome),
    /// It leads the next group (its request is still queued).
    Lead,
}

impl Slot {
    fn guard(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, next: SlotState) {
        let waiter = {
            let mut g = self.guard();
            if matches!(*g, SlotState::Abandoned) {
                return;
            }
            match std::mem::replace(&mut *g, next) {
                SlotState::Queued(w) => w,
                _ => Waiter::None,
            }
        };
        waiter.wake();
    }

    /// Hands this request the lead if it is still waiting for its outcome.
    fn try_lead(&self) -> bool {
        let waiter = {
            let mut g = self.guard();
            if !matches!(*g, SlotState::Queued(_)) {
                return false;
            }
            match std::mem::replace(&mut *g, SlotState::Lead) {
                SlotState::Queued(w) => w,
                _ => Waiter::None,
            }
        };
        waiter.wake();
        true
    }

    /// Blocks until the request is complete or handed the lead.
    pub fn wait(&self) -> Woken {
        loop {
            {
                let mut g = self.guard();
                match std::mem::replace(&mut *g, SlotState::Taken) {
                    SlotState::Done(outcome) => return Woken::Done(outcome),
                    SlotState::Lead => return Woken::Lead,
                    SlotState::Queued(_) => {
                        *g = SlotState::Queued(Waiter::Thread(std::thread::current()));
                    }
                    SlotState::Taken | SlotState::Abandoned => return Woken::Done(Err(taken())),
                }
            }
            std::thread::park();
        }
    }
}

impl Waiter {
    fn wake(self) {
        match self {
            Self::None => {}
            Self::Thread(t) => t.unpark(),
            Self::Task(w) => w.wake(),
        }
    }
}

fn taken() -> AuditError {
    IoError::new(
        "",
        "append to",
        std::io::Error::other("the append's outcome was already taken"),
    )
    .into()
}

/// What a queued append is told when it is woken (see [`QueuedAppend`]).
#[derive(Debug)]
pub enum Turn {
    /// The request is complete: its sealed events in order, or why none of them was
    /// acknowledged.
    Done(Result<Vec<AuditEvent>, AuditError>),
    /// The request leads the next group: its appender must now call
    /// [`crate::JsonlStore::lead_queued`] on a thread that may block (e.g. a blocking
    /// task of its runtime), then await the request again.
    Lead,
}

/// An append queued for group commit by [`crate::JsonlStore::enqueue`], for callers that
/// must not block (an async runtime's worker). As a future it resolves to the request's
/// next [`Turn`]. Dropping it before it is done does not withdraw the events (they are
/// committed with the next group, unacknowledged); a lead handed to it passes on.
pub struct QueuedAppend<'a> {
    queue: &'a GroupQueue,
    slot: Arc<Slot>,
}

impl std::fmt::Debug for QueuedAppend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedAppend").finish_non_exhaustive()
    }
}

impl<'a> QueuedAppend<'a> {
    /// `slot` of a request `queue` placed with `role`.
    pub(crate) fn new(queue: &'a GroupQueue, slot: Arc<Slot>, role: Role) -> Self {
        if let Role::Lead = role {
            let mut g = slot.guard();
            if matches!(*g, SlotState::Queued(_)) {
                *g = SlotState::Lead;
            }
        }
        Self { queue, slot }
    }

    /// An append that is complete already (nothing to queue).
    pub(crate) fn done(queue: &'a GroupQueue, outcome: Result<Vec<Sealed>, AuditError>) -> Self {
        Self {
            queue,
            slot: Arc::new(Slot {
                state: Mutex::new(SlotState::Done(outcome.map(OneOrMany::from))),
            }),
        }
    }
}

impl QueuedAppend<'_> {
    /// The request's next turn: `Some(outcome)` once complete, `None` when it was
    /// handed the lead.
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        let mut g = self.slot.guard();
        match std::mem::replace(&mut *g, SlotState::Taken) {
            SlotState::Done(outcome) => Poll::Ready(Some(outcome)),
            SlotState::Lead => Poll::Ready(None),
            SlotState::Queued(waiter) => {
                let waker = match waiter {
                    Waiter::Task(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *g = SlotState::Queued(Waiter::Task(waker));
                Poll::Pending
            }
            SlotState::Taken | SlotState::Abandoned => Poll::Ready(Some(Err(taken()))),
        }
    }
}

impl Future for QueuedAppend<'_> {
    type Output = Turn;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Turn> {
        self.poll_outcome(cx).map(|turn| match turn {
            Some(outcome) => Turn::Done(outcome.and_then(into_events)),
            None => Turn::Lead,
        })
    }
}

/// What a queued append of prepared events is told when it is woken (see
/// [`QueuedHashes`]): [`Turn`] with the events' hashes instead of the events.
#[derive(Debug)]
pub enum HashTurn {
    /// The request is complete: its events' hashes in order, or why none of them was
    /// acknowledged.
    Done(Result<Vec<String>, AuditError>),
    /// The request leads the next group: its appender must now call the store's
    /// `lead_queued` on a thread that may block, then await the request again.
    Lead,
}

/// An append of prepared events queued for group commit by
/// [`crate::JsonlStore::enqueue_prepared`] (or the PostgreSQL store's `enqueue_prepared`): a
/// [`QueuedAppend`] that resolves to the events' hashes only (no event is rebuilt for
/// the caller). The same acknowledgement and the same drop behaviour.
#[derive(Debug)]
pub struct QueuedHashes<'a>(pub(crate) QueuedAppend<'a>);

impl Future for QueuedHashes<'_> {
    type Output = HashTurn;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HashTurn> {
        self.0.poll_outcome(cx).map(|turn| match turn {
            Some(outcome) => HashTurn::Done(
                outcome.map(|sealed| sealed.into_iter().map(Sealed::into_hash).collect()),
            ),
            None => HashTurn::Lead,
        })
    }
}

/// A future that is pending once, its task woken at once: an async runtime polls its
/// other ready tasks before this one goes on (tokio's multi-thread scheduler queues a
/// task that woke itself while being polled behind the others). A leader awaits it
/// before taking its group, so that the appenders the runtime is about to run join it.
pub(crate) fn yield_once() -> YieldOnce {
    YieldOnce { yielded: false }
}

/// See [`yield_once`].
pub(crate) struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for QueuedAppend<'_> {
    fn drop(&mut self) {
        // A request that is complete (or whose outcome was taken) never becomes queued
        // or led again: no need for the queue's lock (taken before the slot's below,
        // the order `pass_lead` locks them in).
        if !matches!(*self.slot.guard(), SlotState::Queued(_) | SlotState::Lead) {
            return;
        }
        let mut q = self.queue.guard();
        let was = {
            let mut g = self.slot.guard();
            match *g {
                SlotState::Queued(_) | SlotState::Lead => {
                    std::mem::replace(&mut *g, SlotState::Abandoned)
                }
                _ => return,
            }
        };
        if let SlotState::Lead = was {
            pass_lead(&mut q);
        }
    }
}

/// A copy of `e` for another waiter of the same failed group (I/O errors keep their
/// kind and message).
pub(crate) fn replicate(e: &AuditError) -> AuditError {
    match e {
        AuditError::Io(io) => IoError::new(
            &io.path,
            io.op,
            std::io::Error::new(io.source.kind(), io.source.to_string()),
        )
        .into(),
        AuditError::TornTail(t) => TornTailError {
            path: t.path.clone(),
            offset: t.offset,
            len: t.len,
        }
        .into(),
        AuditError::InvalidEvent(i) => InvalidEventError {
            source_name: i.source_name.clone(),
            reason: i.reason.clone(),
        }
        .into(),
        AuditError::Foreign(f) => ForeignStoreError {
            path: f.path.clone(),
            reason: f.reason.clone(),
        }
        .into(),
        AuditError::Note(n) => {
            crate::error::NoteError::new(n.what.clone(), n.reason.clone()).into()
        }
        AuditError::Proof(p) => crate::error::ProofError::new(p.reason.clone()).into(),
        #[cfg(feature = "postgres")]
        AuditError::Postgres(p) => crate::error::PostgresError {
            target: p.target.clone(),
            message: p.message.clone(),
        }
        .into(),
        #[cfg(feature = "sqlite")]
        AuditError::Sqlite(s) => crate::error::SqliteError {
            path: s.path.clone(),
            source: match &s.source {
                rusqlite::Error::SqliteFailure(code, message) => {
                    rusqlite::Error::SqliteFailure(*code, message.clone())
                }
                other => rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(
                    other.to_string(),
                ))),
            },
        }
        .into(),
    }
}

/// Completes every request of `group` with its sealed events, or with `failed`
/// (the first request, the leader's own, gets the error itself, the others copies).
pub(crate) fn complete_all<S: Into<OneOrMany<Sealed>>>(
    group: &[Request],
    sealed: Vec<S>,
    failed: Result<(), AuditError>,
) {
    match failed {
        Ok(()) => {
            for (r, events) in group.iter().zip(sealed) {
                r.complete(Ok(events.into()));
            }
        }
        Err(e) => {
            for r in group.iter().skip(1) {
                r.complete(Err(replicate(&e)));
            }
            if let Some(own) = group.first() {
                own.complete(Err(e));
            }
        }
    }
}

/// Should the leader's thread unwind part-way, the requests of its group fail (instead
/// of waiting forever) and the lead passes on.
pub(crate) struct LeadGuard<'a> {
    queue: &'a GroupQueue,
    /// The group being committed (cleared once every request is complete).
    pub group: Vec<Request>,
    path: &'a Path,
    /// The lead has passed on already ([`LeadGuard::hand_over`]).
    handed: bool,
    /// Made by [`LeadGuard::pending`] and the group not taken yet.
    pending: bool,
}

impl<'a> LeadGuard<'a> {
    /// Takes everything queued as the leader's group.
    pub fn new(queue: &'a GroupQueue, path: &'a Path) -> Self {
        Self {
            group: queue.take(),
            queue,
            path,
            handed: false,
            pending: false,
        }
    }

    /// A leader that takes its group later ([`LeadGuard::take`]), once it is ready to
    /// write it (the PostgreSQL store, after it locked the head): what is queued until
    /// then joins the group. Should the thread unwind before, the queue's requests fail
    /// as the group's would.
    #[cfg(feature = "postgres")]
    pub fn pending(queue: &'a GroupQueue, path: &'a Path) -> Self {
        Self {
            group: Vec::new(),
            queue,
            path,
            handed: false,
            pending: true,
        }
    }

    /// Takes everything queued into the group (once; see [`LeadGuard::pending`]).
    pub fn take(&mut self) {
        if self.pending {
            self.pending = false;
            self.group = self.queue.take();
        }
    }

    /// Ends this leader's turn (once): the next group may be committed while this
    /// one's requests are still being completed.
    pub fn hand_over(&mut self) {
        if !self.handed {
            self.handed = true;
            self.queue.hand_over();
        }
    }
}

impl Drop for LeadGuard<'_> {
    fn drop(&mut self) {
        let was_pending = self.pending;
        self.take();
        if self.group.is_empty() {
            if was_pending {
                self.hand_over();
            }
            return;
        }
        for r in &self.group {
            r.complete(Err(IoError::new(
                self.path,
                "append to",
                std::io::Error::other("a writer thread panicked"),
            )
            .into()));
        }
        self.hand_over();
    }
}

/// Hands a completed request's events to the caller's `written`.
pub(crate) fn deliver(outcome: Outcome, written: &mut Vec<AuditEvent>) -> Result<(), AuditError> {
    written.extend(into_events(outcome?)?);
    Ok(())
}

/// Hands a completed request's event hashes to the caller's `hashes`.
pub(crate) fn deliver_hashes(outcome: Outcome, hashes: &mut Vec<String>) -> Result<(), AuditError> {
    hashes.extend(outcome?.into_iter().map(Sealed::into_hash));
    Ok(())
}

/// The hash of a completed request of one event.
pub(crate) fn single_hash(sealed: OneOrMany<Sealed>) -> Result<String, AuditError> {
    match sealed {
        OneOrMany::One(one) => Ok(one.into_hash()),
        OneOrMany::Many(many) => Err(IoError::new(
            "",
            "append to",
            std::io::Error::other(format!(
                "an append of one event was acknowledged with {} events",
                many.len()
            )),
        )
        .into()),
    }
}

/// The sealed events of a request whose events were prepared from [`crate::NewEvent`]s
/// (which keep their fields, so each comes back whole).
fn into_events(sealed: OneOrMany<Sealed>) -> Result<Vec<AuditEvent>, AuditError> {
    sealed
        .into_iter()
        .map(|s| match s {
            Sealed::Event(e) => Ok(*e),
            Sealed::Hash(hash) => Err(InvalidEventError {
                source_name: String::new(),
                reason: format!(
                    "event {} was prepared without its fields and cannot be returned whole",
                    hash.as_str()
                ),
            }
            .into()),
        })
        .collect()
}
