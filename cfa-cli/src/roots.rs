//! Confinement of the file paths that arrive in requests (MCP tool arguments, HTTP
//! bodies and queries). A requested path is served only when, after canonicalisation,
//! it is a regular file under one of the roots the operator configured (default: the
//! server's working directory) and no larger than the size cap. `..` components are
//! refused outright, symlinks are followed and the target must still be inside a root.
//! Missing, outside, `..`, directory, FIFO and device paths all get the same refusal,
//! so a caller learns nothing about files it may not read. The file is checked with
//! metadata before anything opens it, then opened non-blocking and its handle checked
//! again, so a FIFO or device never blocks the server.

use crate::service::FaceError;
use std::fs::{File, OpenOptions};
use std::path::{Component, Path, PathBuf};

/// Default size cap of a requested file (16 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;

/// `O_NONBLOCK`: opening a FIFO for reading must not wait for a writer.
#[cfg(any(target_os = "linux", target_os = "android"))]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const O_NONBLOCK: i32 = 0x0004;

/// The directories requested paths must resolve under, and the size cap.
#[derive(Debug, Clone)]
pub struct Roots {
    dirs: Vec<PathBuf>,
    max_bytes: u64,
}

impl Roots {
    /// Roots from `--root DIR` flags (each canonicalised; each must be a directory),
    /// or the current directory when none is given.
    pub fn new(dirs: &[PathBuf], max_bytes: u64) -> Result<Self, String> {
        let given: Vec<PathBuf> = if dirs.is_empty() {
            vec![
                std::env::current_dir()
                    .map_err(|e| format!("cannot read the current directory: {e}"))?,
            ]
        } else {
            dirs.to_vec()
        };
        let mut out = Vec::with_capacity(given.len());
        for d in given {
            let canon = std::fs::canonicalize(&d).map_err(|e| {
                format!(
                    "root directory {} (--root or defaults.roots): {e}",
                    d.display()
                )
            })?;
            if !canon.is_dir() {
                return Err(format!(
                    "root directory {} (--root or defaults.roots): not a directory",
                    d.display()
                ));
            }
            out.push(canon);
        }
        Ok(Self {
            dirs: out,
            max_bytes,
        })
    }

    /// Roots that refuse every path (when even the working directory is unknown).
    pub fn none(max_bytes: u64) -> Self {
        Self {
            dirs: Vec::new(),
            max_bytes,
        }
    }

    /// The canonical root directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The size cap, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Resolves a requested path to the canonical path of a regular file under a root.
    /// Relative paths are taken from the first root. `code` and `noun` shape the one
    /// refusal every unusable path gets (e.g. `no_lifecycle_db`, "lifecycle database").
    pub fn resolve(
        &self,
        given: &str,
        code: &'static str,
        noun: &str,
    ) -> Result<PathBuf, FaceError> {
        let refused = || refusal(given, code, noun);
        let canon = self.canonical_under(given, code, noun)?;
        // The canonical path has no symlink left: this is the file itself.
        let meta = std::fs::symlink_metadata(&canon).map_err(|_| refused())?;
        if !meta.is_file() {
            return Err(refused());
        }
        let file = open_nonblocking(&canon).map_err(|_| refused())?;
        let held = file.metadata().map_err(|_| refused())?;
        if !held.is_file() || !same_file(&meta, &held) {
            return Err(refused());
        }
        if held.len() > self.max_bytes {
            return Err(FaceError::new(
                "file_too_large",
                format!(
                    "{noun} {given:?} is {} bytes, larger than the server's limit of {} bytes (--max-file-size)",
                    held.len(),
                    self.max_bytes
                ),
            ));
        }
        Ok(canon)
    }
}

impl Roots {
    /// Resolves a requested path to the canonical path of a directory under a root, with
    /// the one refusal of [`Roots::resolve`] for anything else. Files found in it must
    /// still be resolved one by one (a symlink inside may lead out).
    pub fn resolve_dir(
        &self,
        given: &str,
        code: &'static str,
        noun: &str,
    ) -> Result<PathBuf, FaceError> {
        let canon = self.canonical_under(given, code, noun)?;
        if !canon.is_dir() {
            return Err(refusal(given, code, noun));
        }
        Ok(canon)
    }

    /// The canonical form of `given` (relative paths taken from the first root) when it
    /// exists under a root, else the one refusal: empty, NUL, `..`, missing or outside.
    fn canonical_under(
        &self,
        given: &str,
        code: &'static str,
        noun: &str,
    ) -> Result<PathBuf, FaceError> {
        let refused = || refusal(given, code, noun);
        let p = Path::new(given);
        if given.is_empty()
            || given.contains('\0')
            || p.components().any(|c| c == Component::ParentDir)
        {
            return Err(refused());
        }
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dirs.first().ok_or_else(refused)?.join(p)
        };
        let canon = std::fs::canonicalize(&joined).map_err(|_| refused())?;
        if !self.contains(&canon) {
            return Err(refused());
        }
        Ok(canon)
    }

    /// Whether the canonical path `canon` is under a root.
    pub fn contains(&self, canon: &Path) -> bool {
        self.dirs.iter().any(|d| canon.starts_with(d))
    }
}

/// The one refusal of a path a client named: it never says which check failed.
fn refusal(given: &str, code: &'static str, noun: &str) -> FaceError {
    FaceError::new(
        code,
        format!("no such {noun} {given:?} under the server's allowed roots"),
    )
}

fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(O_NONBLOCK);
    }
    o.open(path)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn inside_is_served_and_everything_else_gets_one_refusal() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.db"), b"x").unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(outside.path().join("b.db"), b"x").unwrap();
        let roots = Roots::new(&[root.path().to_path_buf()], 1024).unwrap();
        let ok = roots.resolve("a.db", "c", "file").unwrap();
        assert_eq!(ok, std::fs::canonicalize(root.path().join("a.db")).unwrap());
        let msg = |given: &str| roots.resolve(given, "c", "file").unwrap_err();
        let b = outside.path().join("b.db").display().to_string();
        for given in [b.as_str(), "sub", "missing.db", "sub/../a.db", "", "../x"] {
            let e = msg(given);
            assert_eq!(e.code, "c");
            assert_eq!(
                e.message,
                format!("no such file {given:?} under the server's allowed roots")
            );
        }
        std::fs::write(root.path().join("big.db"), vec![0u8; 2048]).unwrap();
        assert_eq!(msg("big.db").code, "file_too_large");
        assert!(Roots::none(1).resolve("a.db", "c", "file").is_err());
    }

    #[test]
    fn directories_resolve_inside_the_roots_only() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("cases")).unwrap();
        std::fs::write(root.path().join("a.db"), b"x").unwrap();
        let roots = Roots::new(&[root.path().to_path_buf()], 1024).unwrap();
        let ok = roots.resolve_dir("cases", "c", "dir").unwrap();
        assert_eq!(
            ok,
            std::fs::canonicalize(root.path().join("cases")).unwrap()
        );
        assert!(roots.contains(&ok));
        let out = outside.path().display().to_string();
        for given in [out.as_str(), "a.db", "missing", "cases/..", ""] {
            let e = roots.resolve_dir(given, "c", "dir").unwrap_err();
            assert_eq!(
                e.message,
                format!("no such dir {given:?} under the server's allowed roots")
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
            assert!(roots.resolve_dir("out", "c", "dir").is_err());
        }
    }
}
