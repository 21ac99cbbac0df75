//! A content-addressed store of documents kept beside an audit log
//! (`<log>.signatures/`): what a caller needs to re-evaluate a recorded event, stored
//! by the hash the event already carries, so the event bytes stay as they are. This
//! crate only keeps text under `(kind, key)`; what the documents mean (signatures,
//! catalogs) is the caller's. Each document is written once, atomically (temporary
//! file, fsync, rename), and before the event that names it.

use crate::error::{AuditError, IoError};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Keys remembered as stored before the set is cleared.
const KNOWN_CAP: usize = 65_536;

/// Documents by kind and key under one directory: `<dir>/<kind>/<key>.json`.
#[derive(Debug)]
pub struct ContentStore {
    dir: PathBuf,
    /// Keys known to be on disk (written or seen by this process), by kind: looked up
    /// by `&str` without allocating.
    known: Mutex<HashMap<String, HashSet<String>>>,
    seq: AtomicU64,
}

/// Whether `key` can name a file: non-empty, ASCII letters, digits, `-` and `_` only.
fn valid_key(key: &str) -> bool {
    // One table lookup a byte (the character-class tests cost ~14 instructions a byte,
    // ~1,000 for the 64-hex key every audited decision stores its inputs under).
    !key.is_empty()
        && key.len() <= 128
        // No early exit: the loop stays branch-free (keys are short, and valid).
        && key.bytes().fold(true, |ok, b| {
            ok & KEY_BYTES.get(usize::from(b)).copied().unwrap_or(false)
        })
}

/// The bytes a content key may hold: ASCII letters, digits, `-` and `_`.
static KEY_BYTES: [bool; 256] = key_bytes();

// Evaluated at compile time only (for the static), where an out-of-bounds index would
// be a build error, never a runtime panic.
#[allow(clippy::indexing_slicing)]
const fn key_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    t
}

fn bad_key(path: &Path, key: &str) -> AuditError {
    IoError::new(
        path,
        "name",
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("'{key}' is not a content key (letters, digits, - and _ only)"),
        ),
    )
    .into()
}

impl ContentStore {
    /// The store of `dir` (created on the first write).
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        ContentStore {
            dir: dir.into(),
            known: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// The store beside the audit log (or database) `log`: `<log>.signatures/`.
    pub fn beside(log: &Path) -> Self {
        let mut name = log.as_os_str().to_owned();
        name.push(".signatures");
        Self::open(PathBuf::from(name))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the document `(kind, key)` lives.
    pub fn path_of(&self, kind: &str, key: &str) -> PathBuf {
        self.dir.join(kind).join(format!("{key}.json"))
    }

    /// Stores `text` under `(kind, key)` unless it is already there. The key is the
    /// hash of the content, so an existing document is never rewritten.
    pub fn put(&self, kind: &str, key: &str, text: &str) -> Result<(), AuditError> {
        self.put_with(kind, key, || text)
    }

    /// [`ContentStore::put`] for a caller whose text costs something to make: `text` is
    /// called only when the document is not known to be stored already (the common case
    /// of a long-running face storing the same signature over and over costs one lookup
    /// in memory, no serialisation, no allocation and no system call).
    pub fn put_with<S: AsRef<str>>(
        &self,
        kind: &str,
        key: &str,
        text: impl FnOnce() -> S,
    ) -> Result<(), AuditError> {
        if !valid_key(key) || !valid_key(kind) {
            return Err(bad_key(&self.path_of(kind, key), key));
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.get(kind).is_some_and(|keys| keys.contains(key)) {
            return Ok(());
        }
        // Bounded memory in a long-running server: past the cap the set starts over and
        // the file system answers (an existing document is never rewritten either way).
        if known.values().map(HashSet::len).sum::<usize>() >= KNOWN_CAP {
            known.clear();
        }
        let remember = |known: &mut HashMap<String, HashSet<String>>| {
            known
                .entry(kind.to_owned())
                .or_default()
                .insert(key.to_owned());
        };
        let path = self.path_of(kind, key);
        if path.exists() {
            remember(&mut known);
            return Ok(());
        }
        let text = text();
        let dir = self.dir.join(kind);
        std::fs::create_dir_all(&dir).map_err(|e| IoError::new(&dir, "create", e))?;
        let tmp = dir.join(format!(
            ".{key}.{}.{}.tmp",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_ref().as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(IoError::new(&tmp, "write", e).into());
        }
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(IoError::new(&path, "rename", e).into());
        }
        remember(&mut known);
        Ok(())
    }

    /// The document under `(kind, key)`, or `None` when it was never stored.
    pub fn get(&self, kind: &str, key: &str) -> Result<Option<String>, AuditError> {
        let path = self.path_of(kind, key);
        if !valid_key(key) || !valid_key(kind) {
            return Ok(None);
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new(&path, "read", e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_letters_digits_dashes_and_underscores() {
        for b in 0..=255u8 {
            let key = format!("a{}z", char::from(b));
            let want = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            assert_eq!(valid_key(&key), want, "{b:#04x}");
        }
        assert!(valid_key(&"f".repeat(128)));
        assert!(!valid_key(&"f".repeat(129)));
        assert!(!valid_key(""));
        assert!(!valid_key("caf\u{e9}"));
        assert!(!valid_key("../x"));
    }

    #[test]
    fn documents_are_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let store = ContentStore::beside(&log);
        assert_eq!(store.dir(), dir.path().join("audit.jsonl.signatures"));
        assert_eq!(store.get("signatures", "abc").unwrap(), None);
        store.put("signatures", "abc", "{\"a\": 1}").unwrap();
        // Content-addressed: a second put of the same key keeps the first text.
        store.put("signatures", "abc", "other").unwrap();
        assert_eq!(
            store.get("signatures", "abc").unwrap().as_deref(),
            Some("{\"a\": 1}")
        );
        // A fresh store (another process) sees it and does not rewrite it either.
        let again = ContentStore::beside(&log);
        again.put("signatures", "abc", "third").unwrap();
        assert_eq!(
            again.get("signatures", "abc").unwrap().as_deref(),
            Some("{\"a\": 1}")
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(store.dir().join("signatures"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.json"]);
    }

    #[test]
    fn text_is_made_only_for_a_document_not_yet_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path());
        let mut made = 0;
        for _ in 0..3 {
            store
                .put_with("signatures", "abc", || {
                    made += 1;
                    "{}".to_owned()
                })
                .unwrap();
        }
        assert_eq!(made, 1);
        // Another process's document is seen on disk: nothing is made either.
        let again = ContentStore::open(dir.path());
        again
            .put_with("signatures", "abc", || -> String { unreachable!() })
            .unwrap();
        assert!(again.put_with("signatures", "../x", || "t").is_err());
    }

    #[test]
    fn keys_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path());
        assert!(store.put("signatures", "../x", "t").is_err());
        assert!(store.put("../k", "abc", "t").is_err());
        assert_eq!(store.get("signatures", "../x").unwrap(), None);
    }
}
