//! The JSONL file store: the reference's line layout, an exclusive lock on a sidecar
//! `<log>.lock` file around every append (threads and processes), the tail hash re-read
//! under the lock from the end of the file, configurable fsync, torn-tail repair.

use crate::error::{AuditError, InvalidEventError, IoError, TornTailError};
use crate::event::{AuditEvent, EventShapeError, NewEvent};
use crate::store::{AuditStore, Durability};
use crate::verify::{self, VerifyOptions, VerifyReport};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    /// The last event line is complete but has no `\n` (written by another tool).
    pub needs_newline: bool,
    /// File length in bytes.
    pub len: u64,
}

/// Reads the last non-blank line of `file` from the end (never the whole file).
pub fn read_tail(file: &File, path: &Path) -> Result<Tail, AuditError> {
    let io = |op, e| AuditError::from(IoError::new(path, op, e));
    let len = file.metadata().map_err(|e| io("stat", e))?.len();
    let mut start = len;
    let mut data: Vec<u8> = Vec::new();
    let mut block = 8192u64;
    let (line_start, line) = loop {
        if start == 0 && data.is_empty() {
            return Ok(Tail {
                last_hash: String::new(),
                needs_newline: false,
                len,
            });
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
        match data.iter().rposition(|b| !b.is_ascii_whitespace()) {
            Some(p) => {
                let upto = data.get(..p).unwrap_or_default();
                if let Some(nl) = upto.iter().rposition(|b| *b == b'\n') {
                    break (
                        start + nl as u64 + 1,
                        data.get(nl + 1..=p).unwrap_or_default(),
                    );
                } else if start == 0 {
                    break (0, data.get(..=p).unwrap_or_default());
                }
            }
            None if start == 0 => {
                return Ok(Tail {
                    last_hash: String::new(),
                    needs_newline: false,
                    len,
                });
            }
            None => {}
        }
        block = block.saturating_mul(2);
    };
    let text = std::str::from_utf8(line).unwrap_or("\u{0}");
    match AuditEvent::from_jsonl_line(text) {
        Ok(e) => Ok(Tail {
            last_hash: e.event_hash,
            needs_newline: !data.ends_with(b"\n"),
            len,
        }),
        Err(EventShapeError::Unparsable(_)) => Err(TornTailError {
            path: path.to_owned(),
            offset: line_start,
            len: len - line_start,
        }
        .into()),
        Err(other) => Err(InvalidEventError {
            source_name: path.display().to_string(),
            reason: format!("last event at byte offset {line_start}: {other}"),
        }
        .into()),
    }
}

struct Inner {
    file: File,
    lock: File,
    pending: u32,
    /// The tail as this store last left it (hash, and the file length right after its
    /// own write). Reused while the file length is unchanged; any other writer (another
    /// process or store) changes the length, which forces a re-read from the file.
    cached: Option<Tail>,
}

/// A JSONL audit log file (the reference's `JsonLinesAuditStorage` format).
pub struct JsonlStore {
    path: PathBuf,
    durability: Durability,
    inner: Mutex<Inner>,
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
    /// Opens (creating it and its parent folders if needed) the log at `path`.
    pub fn open(path: impl Into<PathBuf>, durability: Durability) -> Result<Self, AuditError> {
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
        Ok(Self {
            path,
            durability,
            inner: Mutex::new(Inner {
                file,
                lock,
                pending: 0,
                cached: None,
            }),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reopens the log if the path no longer names the file we hold (it was replaced,
    /// e.g. by retention's atomic rename), so appends never go to an unlinked inode.
    /// Returns the length of the file held afterwards (one `fstat` serves both).
    fn reopen_if_replaced(&self, inner: &mut Inner) -> Result<u64, AuditError> {
        let stat = |file: &File| {
            file.metadata()
                .map_err(|e| AuditError::from(IoError::new(&self.path, "stat", e)))
        };
        let held = stat(&inner.file)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let current = std::fs::metadata(&self.path).ok();
            let same = current.is_some_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
            if !same {
                if inner.pending > 0 {
                    let _ = inner.file.sync_data();
                    inner.pending = 0;
                }
                inner.cached = None;
                inner.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&self.path)
                    .map_err(|e| IoError::new(&self.path, "open", e))?;
                return Ok(stat(&inner.file)?.len());
            }
        }
        Ok(held.len())
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

    /// The tail under the lock: the cached one while the file length is what this
    /// store left it at, otherwise re-read from the end of the file.
    /// The tail of the held file, whose current length is `len`: the cached one while
    /// the length is what this store left, else re-read from the file.
    fn current_tail(&self, inner: &mut Inner, len: u64) -> Result<Tail, AuditError> {
        match inner.cached.take() {
            Some(t) if t.len == len => Ok(t),
            _ => read_tail(&inner.file, &self.path),
        }
    }

    fn sync(&self, inner: &mut Inner) -> Result<(), AuditError> {
        inner
            .file
            .sync_data()
            .map_err(|e| IoError::new(&self.path, "fsync", e))?;
        inner.pending = 0;
        Ok(())
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

    fn append_batch(
        &self,
        events: Vec<NewEvent>,
        written: &mut Vec<AuditEvent>,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        self.locked(|inner| {
            let len = self.reopen_if_replaced(inner)?;
            let tail = self.current_tail(inner, len)?;
            let mut prev = tail.last_hash;
            let mut bytes = Vec::with_capacity(events.len() * 1024);
            if tail.needs_newline {
                bytes.push(b'\n');
            }
            let mut sealed = Vec::with_capacity(events.len());
            for event in events {
                let (e, line) = event.seal_with_line(&prev);
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                prev.clone_from(&e.event_hash);
                sealed.push(e);
            }
            // Until the write is known complete, the tail must be re-read.
            inner.cached = None;
            if let Err(e) = (&inner.file).write_all(&bytes) {
                // A write that failed part-way (disk full, file size limit) must not
                // leave a torn line of ours behind: cut the file back to where this
                // append started. If even that fails, the next append finds the torn
                // tail and refuses, pointing at `cfa audit repair`.
                let _ = inner.file.set_len(tail.len);
                return Err(IoError::new(&self.path, "append to", e).into());
            }
            inner.cached = Some(Tail {
                last_hash: prev,
                needs_newline: false,
                len: tail.len + bytes.len() as u64,
            });
            let n = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
            match self.durability {
                Durability::Always => self.sync(inner)?,
                Durability::Batch(max) => {
                    inner.pending = inner.pending.saturating_add(n);
                    if inner.pending >= max {
                        self.sync(inner)?;
                    }
                }
                Durability::Never => {}
            }
            written.extend(sealed);
            Ok(())
        })
    }

    fn tail_hash(&self) -> Result<String, AuditError> {
        self.locked(|inner| {
            self.reopen_if_replaced(inner)?;
            Ok(read_tail(&inner.file, &self.path)?.last_hash)
        })
    }

    fn len(&self) -> Result<u64, AuditError> {
        let f = File::open(&self.path).map_err(|e| IoError::new(&self.path, "open", e))?;
        let mut n = 0u64;
        for line in BufReader::with_capacity(1 << 20, f).split(b'\n') {
            let line = line.map_err(|e| IoError::new(&self.path, "read", e))?;
            if !line.trim_ascii().is_empty() {
                n += 1;
            }
        }
        Ok(n)
    }

    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        scan_file(&self.path, visit)
    }

    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        verify_file(&self.path, opts, &mut |_| {})
    }

    fn flush(&self) -> Result<(), AuditError> {
        let mut g = self.inner.lock().map_err(|_| poisoned(&self.path))?;
        if g.pending > 0 {
            self.sync(&mut g)?;
        }
        Ok(())
    }
}

impl Drop for JsonlStore {
    fn drop(&mut self) {
        if let Ok(g) = self.inner.get_mut()
            && g.pending > 0
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
    for (no, line) in BufReader::with_capacity(1 << 20, f)
        .split(b'\n')
        .enumerate()
    {
        let line = line.map_err(|e| IoError::new(path, "read", e))?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let text = std::str::from_utf8(&line).map_err(|e| InvalidEventError {
            source_name: path.display().to_string(),
            reason: format!("line {}: invalid UTF-8: {e}", no + 1),
        })?;
        let e = AuditEvent::from_jsonl_line(text).map_err(|e| InvalidEventError {
            source_name: path.display().to_string(),
            reason: format!("line {}: {e}", no + 1),
        })?;
        if visit(e).is_break() {
            break;
        }
    }
    Ok(())
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
/// parallel). A missing file is an error (design B2).
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
    let mut bytes = vec![0u8; usize::try_from(torn.len).unwrap_or(0)];
    let mut f = file;
    f.seek(SeekFrom::Start(torn.offset))
        .map_err(|e| IoError::new(path, "seek", e))?;
    f.read_exact(&mut bytes)
        .map_err(|e| IoError::new(path, "read", e))?;
    let mut side = path.as_os_str().to_owned();
    side.push(format!(".torn-{}", torn.offset));
    let side = PathBuf::from(side);
    let mut sf = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&side)
        .map_err(|e| IoError::new(&side, "create", e))?;
    sf.write_all(&bytes)
        .and_then(|()| sf.sync_all())
        .map_err(|e| IoError::new(&side, "write", e))?;
    file.set_len(torn.offset)
        .and_then(|()| file.sync_all())
        .map_err(|e| IoError::new(path, "truncate", e))?;
    Ok(RepairOutcome::Repaired {
        offset: torn.offset,
        moved: torn.len,
        side_file: side,
    })
}
