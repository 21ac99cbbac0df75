//! The JSONL file store: the reference's line layout, group commit of concurrent
//! appenders (one leader seals everything queued and writes it at once, see
//! [`crate::QueuedAppend`]), an exclusive lock on a sidecar `<log>.lock` file around every
//! write (threads and processes), the tail hash re-read under the lock from the end of
//! the file whenever another writer intervened, configurable fsync, torn-tail repair.

use crate::error::{AuditError, InvalidEventError, IoError, TornTailError};
use crate::event::{AuditEvent, EventShapeError, NewEvent};
use crate::group::{
    GroupQueue, HashTurn, LeadGuard, OneOrMany, QueuedAppend, QueuedHashes, Request, Role, Woken,
    complete_all, deliver, deliver_hashes,
};
use crate::prepared::{PreparedEvent, Sealed};
use crate::store::{AuditStore, Durability};
use crate::time::{Clock, SystemClock};
use crate::verify::{self, VerifyOptions, VerifyReport};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The sidecar lock file of a log: `<log>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// What the end of a log looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// The last event's hash (`""` for an empty log).
    pub last_hash: String,
    /// The last event line is complete but has no line break after it (written by
    /// another tool, or whitespace after it was moved aside).
    pub needs_newline: bool,
    /// File length in bytes.
    pub len: u64,
}

/// The end of a log as [`inspect_tail`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailState {
    /// The log ends in a complete event (or holds none).
    Clean(Tail),
    /// The bytes from `offset` to the end are not a complete event.
    Torn {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u64,
        /// `true` when they end in a line break: a complete but unreadable line, which
        /// is not a crash during append and is never moved aside automatically.
        terminated: bool,
    },
}

/// Reads the last line with content of `file` from the end (never the whole file).
/// Whitespace after the last event that would turn into an error once another event
/// follows it (Unicode padding, whitespace-only lines) counts as torn, not terminated.
pub fn inspect_tail(file: &File, path: &Path) -> Result<TailState, AuditError> {
    let io = |op, e| AuditError::from(IoError::new(path, op, e));
    let len = file.metadata().map_err(|e| io("stat", e))?.len();
    let empty = TailState::Clean(Tail {
        last_hash: String::new(),
        needs_newline: false,
        len,
    });
    let mut start = len;
    let mut data: Vec<u8> = Vec::new();
    let mut block = 8192u64;
    let (line_start, core_end) = loop {
        if start == 0 && data.is_empty() {
            return Ok(empty);
        }
        let new_start = start.saturating_sub(block);
        let mut chunk = vec![0u8; usize::try_from(start - new_start).unwrap_or(0)];
        let mut f = file;
        f.seek(SeekFrom::Start(new_start))
            .map_err(|e| io("seek", e))?;
        f.read_exact(&mut chunk).map_err(|e| io("read", e))?;
        chunk.extend_from_slice(&data);
        data = chunk;
        start = new_start;
        let core_end = crate::lines::rstrip(&data).len();
        if core_end == 0 && start == 0 {
            return Ok(empty);
        }
        if core_end > 0 {
            match crate::lines::line_start_before(&data, core_end) {
                Some(ls) => break (ls, core_end),
                None if start == 0 => break (0, core_end),
                None => {}
            }
        }
        block = block.saturating_mul(2);
    };
    let line = data.get(line_start..core_end).unwrap_or_default();
    let core = crate::lines::lstrip(line);
    let torn = |from: usize| TailState::Torn {
        offset: start + from as u64,
        len: len - (start + from as u64),
        terminated: crate::lines::ends_with_break(&data),
    };
    let parsed = std::str::from_utf8(core)
        .map_err(|e| EventShapeError::Unparsable(e.to_string()))
        .and_then(AuditEvent::from_jsonl_line);
    match parsed {
        Ok(e) => {
            let after = data.get(core_end..).unwrap_or_default();
            if !harmless_trailer(after) {
                return Ok(TailState::Torn {
                    offset: start + core_end as u64,
                    len: len - (start + core_end as u64),
                    terminated: false,
                });
            }
            Ok(TailState::Clean(Tail {
                last_hash: e.event_hash,
                needs_newline: !crate::lines::ends_with_break(&data),
                len,
            }))
        }
        Err(EventShapeError::Unparsable(_)) => Ok(torn(line_start)),
        Err(other) => Err(InvalidEventError {
            source_name: path.display().to_string(),
            reason: format!(
                "last event at byte offset {}: {other}",
                start + line_start as u64
            ),
        }
        .into()),
    }
}

/// Whitespace after the last event that stays harmless when events are appended:
/// spaces and tabs on the event's own line, then only line breaks.
fn harmless_trailer(after: &[u8]) -> bool {
    let (end, mut pos) = crate::lines::line_end(after, 0);
    if !after
        .get(..end)
        .unwrap_or_default()
        .iter()
        .all(|b| *b == b' ' || *b == b'\t')
    {
        return false;
    }
    while pos < after.len() {
        let (end, next) = crate::lines::line_end(after, pos);
        if end != pos {
            return false;
        }
        pos = next;
    }
    true
}

/// Reads the end of `file`: the last event's hash, or a [`TornTailError`].
pub fn read_tail(file: &File, path: &Path) -> Result<Tail, AuditError> {
    match inspect_tail(file, path)? {
        TailState::Clean(t) => Ok(t),
        TailState::Torn { offset, len, .. } => Err(TornTailError {
            path: path.to_owned(),
            offset,
            len,
        }
        .into()),
    }
}

/// A torn tail that was moved aside when the log was opened for appending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornRepair {
    /// Where the torn bytes started (the log was cut back to this length).
    pub offset: u64,
    /// How many bytes were moved.
    pub bytes: u64,
    /// The file that keeps them, byte for byte.
    pub sidecar: PathBuf,
    /// The `event_hash` of the `audit_repair` event recorded in the chain.
    pub event_hash: String,
}

impl std::fmt::Display for TornRepair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "repaired torn tail at offset {} ({} bytes kept in {})",
            self.offset,
            self.bytes,
            self.sidecar.display()
        )
    }
}

/// The event type of the event recorded when a torn tail is moved aside.
pub const REPAIR_EVENT_TYPE: &str = "audit_repair";

/// Copies `len` bytes at `offset` to a new sidecar `<log>.torn-<offset>` (or
/// `<log>.torn-<offset>.<n>` when that exists), then cuts the log back to `offset`.
fn move_aside(file: &File, path: &Path, offset: u64, len: u64) -> Result<PathBuf, AuditError> {
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut f = file;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| IoError::new(path, "seek", e))?;
    f.read_exact(&mut bytes)
        .map_err(|e| IoError::new(path, "read", e))?;
    let mut n = 0u32;
    let (side, mut sf) = loop {
        let mut side = path.as_os_str().to_owned();
        side.push(format!(".torn-{offset}"));
        if n > 0 {
            side.push(format!(".{n}"));
        }
        let side = PathBuf::from(side);
        match OpenOptions::new().write(true).create_new(true).open(&side) {
            Ok(sf) => break (side, sf),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(IoError::new(&side, "create", e).into()),
        }
    };
    sf.write_all(&bytes)
        .and_then(|()| sf.sync_all())
        .map_err(|e| IoError::new(&side, "write", e))?;
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(|e| IoError::new(path, "truncate", e))?;
    Ok(side)
}

struct Inner {
    /// The log file (shared with an fsync running outside this lock).
    file: Arc<File>,
    lock: File,
    /// The tail as this store last left it (hash, and the file length right after its
    /// own write). Reused while the file length is unchanged; any other writer (another
    /// process or store) changes the length, which forces a re-read from the file.
    cached: Option<Tail>,
    /// The held file's link count when this store last compared it with the path: a
    /// rename over the log or an unlink changes it.
    nlink: u64,
    /// When the path was last compared with the held file.
    path_checked: Instant,
    /// Events this store has written (write(2) done).
    written: u64,
    /// `written` when an fsync was last asked for (at batch durability).
    sync_asked: u64,
    /// The bytes of the group being written, kept between groups so that a group
    /// allocates no line buffer of its own.
    buf: String,
}

/// A group buffer that grew past this is released after its write (one huge batch
/// does not pin its memory for the life of the store).
const KEEP_BUF: usize = 1 << 20;

/// How long the held file is trusted to be the one the path names while nothing
/// (length, link count) says otherwise: a log moved away under another name (not
/// replaced by a rename over it, which the link count shows at once) is noticed within
/// this time, and its appends meanwhile went on in the moved file.
const PATH_RECHECK: Duration = Duration::from_secs(1);

/// An fsync of the events written so far.
struct SyncJob {
    file: Arc<File>,
    /// `written` at the time: the events the fsync covers.
    upto: u64,
}

/// What the leader wrote for its group.
struct Written {
    sealed: Vec<OneOrMany<Sealed>>,
    /// The fsync to run before the group is acknowledged ([`Durability::Always`]).
    sync: Option<SyncJob>,
}

/// The fsync bookkeeping shared with the background syncer of [`Durability::Batch`].
#[derive(Default)]
struct SyncShared {
    state: Mutex<SyncState>,
    /// Wakes the syncer when a job is due.
    due: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// The fsync asked for and not started yet (a newer request replaces it: one
    /// fsync covers everything written before it starts).
    job: Option<SyncJob>,
    /// Events covered by a completed fsync.
    synced: u64,
    /// A background fsync failed: the next append or flush reports it.
    failed: Option<std::io::Error>,
    stop: bool,
}

impl SyncShared {
    fn guard(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, upto: u64, result: std::io::Result<()>) {
        let mut g = self.guard();
        match result {
            Ok(()) => g.synced = g.synced.max(upto),
            Err(e) => g.failed = Some(e),
        }
    }

    /// The syncer thread: runs due fsyncs one at a time until the store is dropped.
    fn run(&self) {
        loop {
            let job = {
                let mut g = self.guard();
                loop {
                    if let Some(job) = g.job.take() {
                        break job;
                    }
                    if g.stop {
                        return;
                    }
                    g = self.due.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = job.file.sync_data();
            self.record(job.upto, result);
        }
    }
}

/// A JSONL audit log file (the reference's `JsonLinesAuditStorage` format).
pub struct JsonlStore {
    path: PathBuf,
    durability: Durability,
    inner: Mutex<Inner>,
    group: GroupQueue,
    sync: Arc<SyncShared>,
    /// The background syncer of [`Durability::Batch`], started at the first due fsync.
    syncer: Mutex<Option<std::thread::JoinHandle<()>>>,
    clock: Arc<dyn Clock>,
    repairs: Mutex<Vec<TornRepair>>,
}

impl std::fmt::Debug for JsonlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlStore")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn poisoned(path: &Path) -> AuditError {
    IoError::new(
        path,
        "lock",
        std::io::Error::other("a writer thread panicked"),
    )
    .into()
}

impl JsonlStore {
    /// Opens (creating it and its parent folders if needed) the log at `path` for
    /// appending. A torn tail (an incomplete last line without a line break, from a
    /// crash during an append) is moved aside under the lock and the repair recorded
    /// in the chain (see [`JsonlStore::repairs`]).
    pub fn open(path: impl Into<PathBuf>, durability: Durability) -> Result<Self, AuditError> {
        Self::open_with_clock(path, durability, Arc::new(SystemClock))
    }

    /// [`JsonlStore::open`] with the clock that stamps repair events.
    pub fn open_with_clock(
        path: impl Into<PathBuf>,
        durability: Durability,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuditError> {
        let path = path.into();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| IoError::new(parent, "create", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| IoError::new(&path, "open", e))?;
        let lp = lock_path(&path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(|e| IoError::new(&lp, "open", e))?;
        let store = Self {
            path,
            durability,
            inner: Mutex::new(Inner {
                nlink: link_count(&file),
                file: Arc::new(file),
                lock,
                cached: None,
                path_checked: Instant::now(),
                written: 0,
                sync_asked: 0,
                buf: String::new(),
            }),
            group: GroupQueue::default(),
            sync: Arc::default(),
            syncer: Mutex::new(None),
            clock,
            repairs: Mutex::new(Vec::new()),
        };
        // Repair now, so a server reports it from the start. Other tail problems (a
        // complete but unreadable last line) surface on the first append, as before.
        store.locked(|inner| match store.heal(inner) {
            Ok(t) => {
                inner.cached = Some(t);
                Ok(())
            }
            Err(AuditError::Io(e)) => Err(AuditError::Io(e)),
            Err(_) => Ok(()),
        })?;
        Ok(store)
    }

    /// The torn tails this store moved aside (at open or before an append).
    pub fn repairs(&self) -> Vec<TornRepair> {
        self.repairs
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The tail of the held file under the lock; a torn tail that is not a complete
    /// line is moved aside, the log cut back to its last complete event, and an
    /// `audit_repair` event `{offset, bytes, sidecar, sha256}` chained after it.
    fn heal(&self, inner: &mut Inner) -> Result<Tail, AuditError> {
        let (offset, len) = match inspect_tail(&inner.file, &self.path)? {
            TailState::Clean(t) => return Ok(t),
            TailState::Torn {
                offset,
                len,
                terminated: false,
            } => (offset, len),
            TailState::Torn { offset, len, .. } => {
                return Err(TornTailError {
                    path: self.path.clone(),
                    offset,
                    len,
                }
                .into());
            }
        };
        let mut moved = vec![0u8; usize::try_from(len).unwrap_or(0)];
        {
            let mut f: &File = &inner.file;
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(&mut moved))
                .map_err(|e| IoError::new(&self.path, "read", e))?;
        }
        let sidecar = move_aside(&inner.file, &self.path, offset, len)?;
        let tail = read_tail(&inner.file, &self.path)?;
        let event = NewEvent::new(
            "cfa-audit",
            "audit",
            REPAIR_EVENT_TYPE,
            "torn_tail_moved",
            self.clock.now_isoformat(),
        )
        .detail("offset", offset)
        .detail("bytes", len)
        .detail("sidecar", sidecar.display().to_string())
        .detail("sha256", cfa_types::canonical::sha256_hex(&moved));
        let (sealed, line) = event.seal_with_line(&tail.last_hash);
        let mut bytes = Vec::with_capacity(line.len() + 2);
        if tail.needs_newline {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if let Err(e) = (&*inner.file)
            .write_all(&bytes)
            .and_then(|()| inner.file.sync_data())
        {
            let _ = inner.file.set_len(tail.len);
            return Err(IoError::new(&self.path, "append to", e).into());
        }
        let repair = TornRepair {
            offset,
            bytes: len,
            sidecar,
            event_hash: sealed.event_hash.clone(),
        };
        if let Ok(mut g) = self.repairs.lock() {
            g.push(repair);
        }
        Ok(Tail {
            last_hash: sealed.event_hash,
            needs_newline: false,
            len: tail.len + bytes.len() as u64,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of the held file, after making sure it is still the file the path
    /// names (reopening it if not, so appends never go to an unlinked inode). One
    /// `fstat` serves the common case: while the length is what this store left, the
    /// link count is what it was and the path was compared less than [`PATH_RECHECK`]
    /// ago, nobody intervened and the path is not looked up. Otherwise (another writer,
    /// a repair, a rename over the log such as retention's, an unlink) the path is
    /// compared with the held file by device and inode. `force` always compares.
    fn held_len(&self, inner: &mut Inner, force: bool) -> Result<u64, AuditError> {
        let held = held_stat(&inner.file).map_err(|e| IoError::new(&self.path, "stat", e))?;
        #[cfg(unix)]
        {
            let quiet = !force
                && held.nlink == inner.nlink
                && inner.cached.as_ref().is_some_and(|t| t.len == held.len)
                && inner.path_checked.elapsed() < PATH_RECHECK;
            if quiet {
                return Ok(held.len);
            }
            inner.path_checked = Instant::now();
            inner.nlink = held.nlink;
            let same = path_id(&self.path).is_some_and(|id| id == held.id);
            if !same {
                if self.sync.guard().synced < inner.written {
                    let result = inner.file.sync_data();
                    self.sync.record(inner.written, result);
                }
                inner.cached = None;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&self.path)
                    .map_err(|e| IoError::new(&self.path, "open", e))?;
                let now = held_stat(&file).map_err(|e| IoError::new(&self.path, "stat", e))?;
                inner.nlink = now.nlink;
                inner.file = Arc::new(file);
                return Ok(now.len);
            }
        }
        let _ = force;
        Ok(held.len)
    }

    fn locked<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut g = self.inner.lock().map_err(|_| poisoned(&self.path))?;
        g.lock
            .lock()
            .map_err(|e| IoError::new(lock_path(&self.path), "lock", e))?;
        let out = f(&mut g);
        let unlocked = g.lock.unlock();
        let out = out?;
        unlocked.map_err(|e| IoError::new(lock_path(&self.path), "unlock", e))?;
        Ok(out)
    }

    /// The tail of the held file, whose current length is `len`: the cached one while
    /// the length is what this store left, else re-read from the file.
    fn current_tail(&self, inner: &mut Inner, len: u64) -> Result<Tail, AuditError> {
        match inner.cached.take() {
            Some(t) if t.len == len => Ok(t),
            _ => self.heal(inner),
        }
    }

    /// Seals and writes the requests of `group` in order, the store's mutex and the
    /// append lock held: one look at the tail (the cached one unless another writer
    /// intervened; `len` is the held file's length when the caller looked already), one
    /// write. A write that fails part-way is cut back, so nothing of the group stays
    /// behind, and the whole group fails.
    fn write_group(
        &self,
        inner: &mut Inner,
        group: &mut [Request],
        len: Option<u64>,
    ) -> Result<Written, AuditError> {
        // A background fsync failed: refuse (nothing written) and ask again.
        if let Some(e) = self.sync.guard().failed.take() {
            inner.sync_asked = 0;
            return Err(IoError::new(&self.path, "fsync", e).into());
        }
        let len = match len {
            Some(len) => len,
            None => self.held_len(inner, false)?,
        };
        let tail = self.current_tail(inner, len)?;
        let count: usize = group.iter().map(|r| r.events.len()).sum();
        // Every line is sealed straight into the store's one reused buffer (no
        // per-event line `String`, no per-group allocation once it has grown).
        let mut bytes = std::mem::take(&mut inner.buf);
        bytes.clear();
        bytes.reserve(count * 1024);
        if tail.needs_newline {
            bytes.push('\n');
        }
        let (sealed, last_hash) = seal_group(tail.last_hash, group, &mut bytes);
        // Until the write is known complete, the tail must be re-read.
        inner.cached = None;
        let wrote = (&*inner.file).write_all(bytes.as_bytes());
        let end = tail.len + bytes.len() as u64;
        if bytes.capacity() <= KEEP_BUF {
            inner.buf = bytes;
        }
        if let Err(e) = wrote {
            // A write that failed part-way (disk full, file size limit) must not
            // leave a torn line of ours behind: cut the file back to where this
            // group started. If even that fails, the next append finds the torn
            // tail and refuses, pointing at `cfa audit repair`.
            let _ = inner.file.set_len(tail.len);
            return Err(IoError::new(&self.path, "append to", e).into());
        }
        inner.cached = Some(Tail {
            last_hash,
            needs_newline: false,
            len: end,
        });
        inner.written = inner.written.saturating_add(count as u64);
        let job = || SyncJob {
            file: Arc::clone(&inner.file),
            upto: inner.written,
        };
        let sync = match self.durability {
            Durability::Always => Some(job()),
            Durability::Batch(max) => {
                if inner.written - inner.sync_asked >= u64::from(max) {
                    let job = job();
                    inner.sync_asked = inner.written;
                    self.ask_sync(job);
                }
                None
            }
            Durability::Never => None,
        };
        Ok(Written { sealed, sync })
    }

    /// Hands a due fsync to the background syncer (started on first use), so that no
    /// appender waits for it: at batch durability an append is acknowledged once
    /// written, and an fsync starts every `n` events (or right after the running one,
    /// when `n` more were written meanwhile).
    fn ask_sync(&self, job: SyncJob) {
        self.sync.guard().job = Some(job);
        self.sync.due.notify_one();
        let mut syncer = self.syncer.lock().unwrap_or_else(PoisonError::into_inner);
        if syncer.is_none() {
            let shared = Arc::clone(&self.sync);
            let spawned = std::thread::Builder::new()
                .name("cfa-audit-fsync".into())
                .spawn(move || shared.run());
            match spawned {
                Ok(handle) => *syncer = Some(handle),
                // No thread to spare: fsync here instead.
                Err(_) => {
                    if let Some(job) = self.sync.guard().job.take() {
                        let result = job.file.sync_data();
                        self.sync.record(job.upto, result);
                    }
                }
            }
        }
    }

    /// Runs an fsync outside the store's lock (appends go on meanwhile) and records
    /// what it covered.
    fn run_sync(&self, job: SyncJob) -> Result<(), AuditError> {
        job.file
            .sync_data()
            .map_err(|e| IoError::new(&self.path, "fsync", e))?;
        self.sync.record(job.upto, Ok(()));
        Ok(())
    }

    /// How many of the events this store wrote are covered by a completed fsync. At
    /// [`Durability::Always`] every acknowledged event is; at [`Durability::Batch`] the
    /// background fsync catches up, and [`AuditStore::flush`] covers everything.
    pub fn synced_events(&self) -> u64 {
        self.sync.guard().synced
    }

    /// Queues `events` for group commit without waiting, for callers that must not block
    /// (an async runtime's worker): await the returned [`QueuedAppend`]; when it says
    /// [`crate::Turn::Lead`], call [`JsonlStore::lead_queued`] on a thread that may
    /// block, then await it again. Blocking callers use [`AuditStore::append_batch`].
    pub fn enqueue(&self, events: Vec<NewEvent>) -> QueuedAppend<'_> {
        if events.is_empty() {
            return QueuedAppend::done(&self.group, Ok(Vec::new()));
        }
        let events: Vec<_> = events.into_iter().map(NewEvent::prepare).collect();
        let (slot, role) = self.group.join(events);
        QueuedAppend::new(&self.group, slot, role)
    }

    /// Appends `events` through group commit from a task of an async runtime, without
    /// blocking its worker for anything that may wait: the request is queued
    /// ([`JsonlStore::enqueue`]) and awaited; when it is handed the lead, it first yields
    /// once to the runtime (the other ready tasks queue their events meanwhile, so one
    /// write serves them all), then the group is
    /// committed right here if nothing in that waits ([`JsonlStore::try_lead_now`]),
    /// else `lead_blocking` is awaited, which must run [`JsonlStore::lead_queued`] on
    /// the store it is given on a thread that may block (e.g. the runtime's blocking
    /// pool). Resolves to the sealed events once they are as durable as the store's
    /// policy asks: the acknowledgement of [`AuditStore::append_batch`].
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
                crate::Turn::Lead => {
                    // Let the runtime's other ready tasks queue their events first, so
                    // the group is as big as the moment allows: one write, one fstat
                    // and one lock for all of them instead of for each.
                    crate::group::yield_once().await;
                    // No hand-off to another thread when the group can be written here.
                    if !self.try_lead_now() {
                        lead_blocking(Arc::clone(self)).await;
                    }
                }
            }
        }
    }

    /// [`JsonlStore::enqueue`] of events prepared by the caller (see
    /// [`PreparedEvent`]): the returned [`QueuedHashes`] resolves to their hashes only,
    /// once they are as durable as the store's policy asks (the acknowledgement of
    /// [`AuditStore::append_prepared`]).
    pub fn enqueue_prepared(&self, events: Vec<PreparedEvent>) -> QueuedHashes<'_> {
        if events.is_empty() {
            return QueuedHashes(QueuedAppend::done(&self.group, Ok(Vec::new())));
        }
        let (slot, role) = self.group.join(events);
        QueuedHashes(QueuedAppend::new(&self.group, slot, role))
    }

    /// [`JsonlStore::append_async`] of events prepared by the caller
    /// ([`JsonlStore::enqueue_prepared`]): the same group commit, the same lead
    /// (yield once, commit here when nothing waits, else `lead_blocking`) and the same
    /// acknowledgement, resolving to the events' hashes in order instead of the sealed
    /// events (nothing is rebuilt for the caller).
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
                HashTurn::Lead => {
                    // As in `append_async`: a bigger group, then a lead here if it can.
                    crate::group::yield_once().await;
                    if !self.try_lead_now() {
                        lead_blocking(Arc::clone(self)).await;
                    }
                }
            }
        }
    }

    /// [`JsonlStore::append_prepared_async`] of one event, resolving to its hash: the
    /// same group commit, lead and acknowledgement, without a list of one on either
    /// side (what a decision's `policy_check` event takes, e.g. `cfa serve`'s).
    pub async fn append_one_prepared_async<B, F>(
        self: &Arc<Self>,
        event: PreparedEvent,
        mut lead_blocking: B,
    ) -> Result<String, AuditError>
    where
        B: FnMut(Arc<Self>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let (slot, role) = self.group.join(OneOrMany::One(event));
        let queued = QueuedAppend::new(&self.group, slot, role);
        loop {
            match std::future::poll_fn(|cx| queued.poll_outcome(cx)).await {
                Some(outcome) => return outcome.and_then(crate::group::single_hash),
                None => {
                    // As in `append_async`: a bigger group, then a lead here if it can.
                    crate::group::yield_once().await;
                    if !self.try_lead_now() {
                        lead_blocking(Arc::clone(self)).await;
                    }
                }
            }
        }
    }

    /// Commits the group led by the [`QueuedAppend`] that was handed the lead (the
    /// oldest queued request is its own) and hands the lead on; that request is
    /// complete when this returns. Blocks on the append lock and the write (and the
    /// fsync at [`Durability::Always`]). Called without the lead it still commits what
    /// is queued, in order, only less batched.
    pub fn lead_queued(&self) {
        self.lead();
    }

    /// [`JsonlStore::lead_queued`] for a caller that must not block (an async runtime's
    /// worker), done right here when nothing in it waits: at [`Durability::Batch`] or
    /// [`Durability::Never`] (no fsync is waited for), with the store and its append
    /// lock free at once (no other process or store is writing) and the tail this store
    /// wrote still the file's (no re-read, no repair). Then the group is committed as
    /// [`JsonlStore::lead_queued`] commits it (one write(2) into the page cache) and
    /// `true` is returned: the request that was handed the lead is complete and the lead
    /// has passed on. Otherwise nothing is done and `false` says to call
    /// [`JsonlStore::lead_queued`] on a thread that may block.
    pub fn try_lead_now(&self) -> bool {
        if self.durability == Durability::Always {
            return false;
        }
        let Ok(mut inner) = self.inner.try_lock() else {
            return false;
        };
        if inner.lock.try_lock().is_err() {
            return false;
        }
        let len = self.held_len(&mut inner, false);
        let quiet = match &len {
            Ok(len) => inner.cached.as_ref().is_some_and(|t| t.len == *len),
            Err(_) => false,
        };
        if !quiet {
            let _ = inner.lock.unlock();
            return false;
        }
        self.commit(inner, len.ok());
        true
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
            Woken::Lead => Err(poisoned(&self.path)),
        }
    }

    /// Commits the group this appender leads (the queue's oldest request is its own)
    /// and hands the lead on. Every request of the group is complete when this returns.
    fn lead(&self) {
        let locked = match self.inner.lock() {
            Err(_) => Err(poisoned(&self.path)),
            Ok(inner) => match inner.lock.lock() {
                Ok(()) => Ok(inner),
                Err(e) => Err(IoError::new(lock_path(&self.path), "lock", e).into()),
            },
        };
        match locked {
            Ok(inner) => self.commit(inner, None),
            Err(e) => {
                let mut guard = LeadGuard::new(&self.group, &self.path);
                guard.hand_over();
                complete_all(&guard.group, Vec::<OneOrMany<Sealed>>::new(), Err(e));
                guard.group.clear();
            }
        }
    }

    /// Takes everything queued as the leader's group and commits it, the store's mutex
    /// (`inner`) and the append lock held; both are released once the group is written,
    /// and the lead passes on before the group is acknowledged (the next group may be
    /// written while this one's appenders are woken, or its fsync runs at
    /// [`Durability::Always`]: those appenders are released only once the fsync
    /// covering them is done).
    fn commit(&self, mut inner: std::sync::MutexGuard<'_, Inner>, len: Option<u64>) {
        let mut guard = LeadGuard::new(&self.group, &self.path);
        let written = self.write_group(&mut inner, &mut guard.group, len);
        let unlocked = inner.lock.unlock();
        drop(inner);
        let written = written.and_then(|w| {
            unlocked
                .map(|()| w)
                .map_err(|e| IoError::new(lock_path(&self.path), "unlock", e).into())
        });
        guard.hand_over();
        match written {
            Err(e) => complete_all(&guard.group, Vec::<OneOrMany<Sealed>>::new(), Err(e)),
            Ok(Written {
                sealed,
                sync: Some(job),
            }) => {
                let synced = self.run_sync(job);
                complete_all(&guard.group, sealed, synced);
            }
            Ok(Written { sealed, sync: None }) => complete_all(&guard.group, sealed, Ok(())),
        }
        guard.group.clear();
    }
}

/// Seals the events of `group` in order after `previous_hash`, each line (and its line
/// break) straight into `bytes`: the events of each request, and the last event's hash.
/// The leader's only hashing work.
fn seal_group(
    previous_hash: String,
    group: &mut [Request],
    bytes: &mut String,
) -> (Vec<OneOrMany<Sealed>>, String) {
    let mut prev = previous_hash;
    let mut sealed = Vec::with_capacity(group.len());
    for request in group.iter_mut() {
        // Prepared before queueing: only the hash's end is computed here. Sealed where
        // they lie (no event is moved), the one event of the common request inline.
        let mut seal = |event: &mut PreparedEvent| {
            let e = event.seal_line_in_place(&prev, bytes);
            bytes.push('\n');
            prev.clear();
            prev.push_str(e.hash());
            e
        };
        let mine = match &mut request.events {
            OneOrMany::One(event) => OneOrMany::One(seal(event)),
            OneOrMany::Many(events) => OneOrMany::Many(events.iter_mut().map(&mut seal).collect()),
        };
        request.events = OneOrMany::default();
        sealed.push(mine);
    }
    (sealed, prev)
}

/// What the append path looks at in the held file: its length, link count and identity.
struct HeldStat {
    len: u64,
    nlink: u64,
    /// Device and inode (zero where the platform does not say).
    id: (u64, u64),
}

/// The held file's [`HeldStat`] from one `statx` that asks for the size, the link count
/// and the inode only. Asking for the timestamps too (as `File::metadata` does, with
/// `STATX_ALL`) marks the file's ctime as queried, and on a file system with multigrain
/// timestamps (ext4, XFS, btrfs, tmpfs since Linux 6.13) the next write(2) then takes a
/// fresh fine-grained mtime and dirties the inode (`ext4_dirty_inode`, the inode copied
/// into the journal's running transaction) on every append instead of once a clock tick.
#[cfg(target_os = "linux")]
fn held_stat(file: &File) -> std::io::Result<HeldStat> {
    use rustix::fs::{AtFlags, StatxFlags};
    let st = rustix::fs::statx(
        file,
        "",
        AtFlags::EMPTY_PATH,
        StatxFlags::SIZE | StatxFlags::NLINK | StatxFlags::INO,
    )?;
    Ok(HeldStat {
        len: st.stx_size,
        nlink: u64::from(st.stx_nlink),
        id: (dev_of(&st), st.stx_ino),
    })
}

#[cfg(not(target_os = "linux"))]
fn held_stat(file: &File) -> std::io::Result<HeldStat> {
    let meta = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(HeldStat {
            len: meta.len(),
            nlink: meta.nlink(),
            id: (meta.dev(), meta.ino()),
        })
    }
    #[cfg(not(unix))]
    {
        Ok(HeldStat {
            len: meta.len(),
            nlink: 0,
            id: (0, 0),
        })
    }
}

/// The device number `statx` reports, as `stat`'s `st_dev` encodes it.
#[cfg(target_os = "linux")]
fn dev_of(st: &rustix::fs::Statx) -> u64 {
    rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor)
}

/// Device and inode of the file `path` names now (`None` if it names none), asking for
/// the inode only (see [`held_stat`]).
#[cfg(target_os = "linux")]
fn path_id(path: &Path) -> Option<(u64, u64)> {
    use rustix::fs::{AtFlags, CWD, StatxFlags};
    let st = rustix::fs::statx(CWD, path, AtFlags::empty(), StatxFlags::INO).ok()?;
    Some((dev_of(&st), st.stx_ino))
}

#[cfg(all(unix, not(target_os = "linux")))]
fn path_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The link count of `file` (0 where the platform does not say).
fn link_count(file: &File) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata().map(|m| m.nlink()).unwrap_or(0)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        0
    }
}

impl AuditStore for JsonlStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        let mut out = Vec::with_capacity(1);
        self.append_batch(vec![event], &mut out)?;
        out.pop().ok_or_else(|| {
            IoError::new(
                &self.path,
                "append to",
                std::io::Error::other("no event was written"),
            )
            .into()
        })
    }

    /// Group commit: the events join the store's queue; whichever appender leads seals
    /// everything queued in order (each call's events contiguous) and writes it in one
    /// write. This call returns once its events are written (and, at
    /// [`Durability::Always`], fsynced; at [`Durability::Batch`] the fsync due every `n`
    /// events runs in the background, and a failed one fails the next append).
    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        // Prepared before joining the queue: the leader only finishes the hashes.
        let events = events.into_iter().map(NewEvent::prepare).collect();
        deliver(self.join_commit(events), written)
    }

    /// [`JsonlStore::append_batch`] of events prepared by the caller.
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
        self.locked(|inner| {
            self.held_len(inner, true)?;
            Ok(read_tail(&inner.file, &self.path)?.last_hash)
        })
    }

    fn len(&self) -> Result<u64, AuditError> {
        let f = File::open(&self.path).map_err(|e| IoError::new(&self.path, "open", e))?;
        let mut n = 0u64;
        crate::lines::for_each_event_line(BufReader::with_capacity(1 << 20, f), &mut |_, _, _| {
            n += 1;
            ControlFlow::Continue(())
        })
        .map_err(|e| IoError::new(&self.path, "read", e))?;
        Ok(n)
    }

    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        scan_file(&self.path, visit)
    }

    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        verify_file(&self.path, opts, &mut |_| {})
    }

    /// fsyncs every event this store has written and no completed fsync covers yet
    /// (an fsync still running for another appender may cover them too).
    fn flush(&self) -> Result<(), AuditError> {
        let job = {
            let g = self.inner.lock().map_err(|_| poisoned(&self.path))?;
            let mut s = self.sync.guard();
            if let Some(e) = s.failed.take() {
                return Err(IoError::new(&self.path, "fsync", e).into());
            }
            if s.synced >= g.written {
                return Ok(());
            }
            SyncJob {
                file: Arc::clone(&g.file),
                upto: g.written,
            }
        };
        self.run_sync(job)
    }
}

impl Drop for JsonlStore {
    fn drop(&mut self) {
        self.sync.guard().stop = true;
        self.sync.due.notify_one();
        if let Some(handle) = self
            .syncer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
        let synced = self.sync.guard().synced;
        if let Ok(g) = self.inner.get_mut()
            && synced < g.written
        {
            let _ = g.file.sync_data();
        }
    }
}

/// Streams the events of a JSONL log in order (blank lines skipped).
pub fn scan_file(
    path: &Path,
    visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    regular_file(path)?;
    let f = File::open(path).map_err(|e| IoError::new(path, "open", e))?;
    let mut failed: Option<AuditError> = None;
    crate::lines::for_each_event_line(BufReader::with_capacity(1 << 20, f), &mut |no, _, line| {
        let parsed = std::str::from_utf8(line)
            .map_err(|e| format!("line {no}: invalid UTF-8: {e}"))
            .and_then(|text| {
                AuditEvent::from_jsonl_line(text).map_err(|e| format!("line {no}: {e}"))
            });
        match parsed {
            Ok(e) => visit(e),
            Err(reason) => {
                failed = Some(
                    InvalidEventError {
                        source_name: path.display().to_string(),
                        reason,
                    }
                    .into(),
                );
                ControlFlow::Break(())
            }
        }
    })
    .map_err(|e| IoError::new(path, "read", e))?;
    failed.map_or(Ok(()), Err)
}

/// Refuses, before opening it, a path that is not a regular file: a directory, or a
/// FIFO or device whose open or read would block. A missing file stays the OS error.
fn regular_file(path: &Path) -> Result<(), AuditError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            Err(IoError::new(path, "read", std::io::Error::other("it is a directory")).into())
        }
        Ok(m) if !m.is_file() => {
            Err(IoError::new(path, "read", std::io::Error::other("not a regular file")).into())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(IoError::new(path, "open", e).into()),
    }
}

/// Verifies a JSONL log in one streaming pass (both halves of a large file in
/// parallel). A missing file is an error (docs/differences.md#b2-fail-closed).
pub fn verify_file(
    path: &Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, AuditError> {
    regular_file(path)?;
    let f = File::open(path).map_err(|e| IoError::new(path, "open", e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(IoError::new(path, "read", std::io::Error::other("it is a directory")).into());
    }
    drop(f);
    verify::verify_path(path, opts, progress).map_err(|e| IoError::new(path, "read", e).into())
}

/// What `repair` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The log ends in a complete event; nothing was changed.
    Clean,
    /// The torn bytes were moved to `side_file` and the log truncated at `offset`.
    Repaired {
        /// Where the torn line started (the new file length).
        offset: u64,
        /// How many bytes were moved.
        moved: u64,
        /// The side file holding them.
        side_file: PathBuf,
    },
}

/// Moves a torn last line to `<log>.torn-<offset>` and truncates the log to the last
/// complete event, under the append lock. Nothing else is ever rewritten.
pub fn repair(path: &Path) -> Result<RepairOutcome, AuditError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| IoError::new(path, "open", e))?;
    let lp = lock_path(path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(|e| IoError::new(&lp, "open", e))?;
    lock.lock().map_err(|e| IoError::new(&lp, "lock", e))?;
    let out = repair_locked(&file, path);
    let _ = lock.unlock();
    out
}

fn repair_locked(file: &File, path: &Path) -> Result<RepairOutcome, AuditError> {
    let torn = match read_tail(file, path) {
        Ok(_) => return Ok(RepairOutcome::Clean),
        Err(AuditError::TornTail(t)) => t,
        Err(other) => return Err(other),
    };
    let side = move_aside(file, path, torn.offset, torn.len)?;
    Ok(RepairOutcome::Repaired {
        offset: torn.offset,
        moved: torn.len,
        side_file: side,
    })
}

/// A read-only look at the end of a log, for status reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TailReport {
    /// Torn tails moved aside earlier, from their `<log>.torn-<offset>` files
    /// (`event_hash` is empty: the files do not record it).
    pub repaired: Vec<TornRepair>,
    /// A torn tail still at the end: `(offset, bytes, terminated)`. One that is not
    /// terminated is moved aside by the next append.
    pub torn: Option<(u64, u64, bool)>,
}

/// Lists the sidecars of earlier repairs and inspects the tail, without writing.
pub fn tail_report(path: &Path) -> Result<TailReport, AuditError> {
    let file = File::open(path).map_err(|e| IoError::new(path, "open", e))?;
    let torn = match inspect_tail(&file, path)? {
        TailState::Clean(_) => None,
        TailState::Torn {
            offset,
            len,
            terminated,
        } => Some((offset, len, terminated)),
    };
    let mut repaired = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{name}.torn-");
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = file_name.strip_prefix(&prefix) else {
                continue;
            };
            let digits = rest.split('.').next().unwrap_or_default();
            let (Ok(offset), Ok(meta)) = (digits.parse::<u64>(), entry.metadata()) else {
                continue;
            };
            repaired.push(TornRepair {
                offset,
                bytes: meta.len(),
                sidecar: path.with_file_name(&file_name),
                event_hash: String::new(),
            });
        }
    }
    repaired.sort_by(|a, b| (a.offset, &a.sidecar).cmp(&(b.offset, &b.sidecar)));
    Ok(TailReport { repaired, torn })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::Turn;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    #[cfg(unix)]
    #[test]
    fn the_narrow_stat_is_what_the_full_one_says() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .unwrap();
        file.write_all(b"0123456789\n").unwrap();
        std::fs::hard_link(&path, dir.path().join("second")).unwrap();
        let narrow = held_stat(&file).unwrap();
        let full = file.metadata().unwrap();
        assert_eq!(narrow.len, full.len());
        assert_eq!(narrow.len, 11);
        assert_eq!(narrow.nlink, full.nlink());
        assert_eq!(narrow.nlink, 2);
        assert_eq!(narrow.id, (full.dev(), full.ino()));
        assert_eq!(path_id(&path), Some(narrow.id));
        assert_eq!(path_id(&dir.path().join("missing")), None);
        std::fs::rename(dir.path().join("second"), dir.path().join("third")).unwrap();
        let replaced = dir.path().join("replacement");
        std::fs::write(&replaced, b"x").unwrap();
        std::fs::rename(&replaced, &path).unwrap();
        assert_ne!(path_id(&path), Some(narrow.id));
        assert_eq!(held_stat(&file).unwrap().nlink, 1);
    }

    fn event(i: u32) -> NewEvent {
        NewEvent::new(
            format!("intent-{i}"),
            "policy_check",
            "policy_evaluation",
            "approve",
            format!("2026-01-01T00:00:{:02}+00:00", i % 60),
        )
        .detail("n", i)
    }

    /// Polls `f` to completion (everything it awaits completes synchronously here).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the future did not complete")
    }

    fn lead_now(store: &JsonlStore, events: Vec<NewEvent>) -> (bool, QueuedAppend<'_>) {
        let mut q = store.enqueue(events);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            std::pin::Pin::new(&mut q).poll(&mut cx),
            Poll::Ready(Turn::Lead)
        ));
        (store.try_lead_now(), q)
    }

    fn done(q: &mut QueuedAppend<'_>) -> Vec<AuditEvent> {
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(q).poll(&mut cx) {
            Poll::Ready(Turn::Done(Ok(v))) => v,
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn a_group_led_now_writes_what_a_blocking_append_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let blocking = JsonlStore::open(&a, Durability::Batch(2)).unwrap();
        let now = JsonlStore::open(&b, Durability::Batch(2)).unwrap();
        let mut want = Vec::new();
        for i in 0..5 {
            blocking
                .append_batch(vec![event(2 * i), event(2 * i + 1)], &mut want)
                .unwrap();
        }
        let mut got = Vec::new();
        for i in 0..5 {
            let (led, mut q) = lead_now(&now, vec![event(2 * i), event(2 * i + 1)]);
            assert!(led, "nothing waits at batch: led here");
            got.extend(done(&mut q));
        }
        assert_eq!(got, want);
        blocking.flush().unwrap();
        now.flush().unwrap();
        assert_eq!(now.synced_events(), 10);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn leading_now_refuses_what_could_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        // Always: the fsync is waited for, never on the caller's thread.
        let always = JsonlStore::open(&path, Durability::Always).unwrap();
        let (led, mut q) = lead_now(&always, vec![event(0)]);
        assert!(!led);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "nothing written"
        );
        always.lead_queued();
        let first = done(&mut q);
        drop(q);
        drop(always);

        let store = JsonlStore::open(&path, Durability::Never).unwrap();
        // Another process holds the append lock: refused, nothing written.
        let other = File::create(lock_path(&path)).unwrap();
        other.lock().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let (led, mut q) = lead_now(&store, vec![event(1)]);
        assert!(!led);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        other.unlock().unwrap();
        store.lead_queued();
        let second = done(&mut q);
        assert_eq!(second[0].previous_hash, first[0].event_hash);

        // Another writer appended since: the tail must be re-read, not led here.
        let third = JsonlStore::open(&path, Durability::Never)
            .unwrap()
            .append(event(2))
            .unwrap();
        let (led, mut q) = lead_now(&store, vec![event(3)]);
        assert!(!led);
        store.lead_queued();
        let fourth = done(&mut q);
        assert_eq!(fourth[0].previous_hash, third.event_hash);
        // Quiet again: led here.
        let (led, mut q) = lead_now(&store, vec![event(4)]);
        assert!(led);
        assert_eq!(done(&mut q)[0].previous_hash, fourth[0].event_hash);
        let report = verify_file(&path, &VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(report.intact());
        assert_eq!(report.events, 5);
    }

    #[test]
    fn async_appends_lead_on_a_blocking_thread_only_when_they_must() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, blocking_leads) in [
            (Durability::Batch(4), 0),
            (Durability::Never, 0),
            (Durability::Always, 3),
        ] {
            let path = dir.path().join(format!("{durability:?}.jsonl"));
            let store = Arc::new(JsonlStore::open(&path, durability).unwrap());
            let mut calls = 0;
            let mut sealed = Vec::new();
            for i in 0..3 {
                sealed.extend(
                    block_on(store.append_async(vec![event(i)], |s| {
                        calls += 1;
                        async move { s.lead_queued() }
                    }))
                    .unwrap(),
                );
            }
            assert_eq!(calls, blocking_leads, "{durability:?}");
            assert_eq!(sealed.len(), 3);
            assert_eq!(sealed[2].previous_hash, sealed[1].event_hash);
            store.flush().unwrap();
            let mut read = Vec::new();
            scan_file(&path, &mut |e| {
                read.push(e);
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(read, sealed);
        }
    }
}
