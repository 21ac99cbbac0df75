//! [`Bundle`]: an evidence bundle's files in memory, read from or written to a
//! directory (atomically), or carried as one JSON document.

use super::EvidenceError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The files of an evidence bundle: relative path (`/`-separated) → bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    /// Every file of the bundle, `manifest.json` included.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn io_err(path: &Path, e: &std::io::Error) -> EvidenceError {
    EvidenceError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Bundle {
    /// A file's text, if it is present and UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.files
            .get(name)
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The bundle as one JSON document: `{"format", "files": {path: text}}` (every file
    /// of a bundle is UTF-8 text, so the document carries the exact bytes).
    pub fn to_json(&self) -> Value {
        let files: Map<String, Value> = self
            .files
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect();
        json!({"format": super::FORMAT, "files": files})
    }

    /// Reads the JSON document of [`Bundle::to_json`].
    pub fn from_json(doc: &Value) -> Result<Self, EvidenceError> {
        let bad = |reason: &str| EvidenceError::Document {
            reason: reason.to_owned(),
        };
        let files = doc
            .get("files")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("expected an object with `files`: {path: text}"))?;
        let mut out = BTreeMap::new();
        for (k, v) in files {
            let text = v
                .as_str()
                .ok_or_else(|| bad(&format!("files.{k} must be a string (the file's text)")))?;
            out.insert(k.clone(), text.as_bytes().to_vec());
        }
        Ok(Bundle { files: out })
    }

    /// Reads every regular file under `dir` (a symlink or other special file is
    /// refused: an auditor's bundle holds files only).
    pub fn read_dir(dir: &Path) -> Result<Self, EvidenceError> {
        let err = |path: &Path, reason: String| EvidenceError::Read {
            path: path.to_path_buf(),
            reason,
        };
        if !dir.is_dir() {
            return Err(err(dir, "not a directory".into()));
        }
        let mut files = BTreeMap::new();
        let mut stack: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), String::new())];
        while let Some((path, prefix)) = stack.pop() {
            let entries = std::fs::read_dir(&path).map_err(|e| err(&path, e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| err(&path, e.to_string()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = format!("{prefix}{name}");
                let p = entry.path();
                let kind = entry.file_type().map_err(|e| err(&p, e.to_string()))?;
                if kind.is_dir() {
                    stack.push((p, format!("{rel}/")));
                } else if kind.is_file() {
                    let bytes = std::fs::read(&p).map_err(|e| err(&p, e.to_string()))?;
                    files.insert(rel, bytes);
                } else {
                    return Err(err(&p, "not a regular file (symlinks are refused)".into()));
                }
            }
        }
        Ok(Bundle { files })
    }

    /// Writes the bundle to `dir` atomically: every file into a temporary directory
    /// beside it (synced), then one rename. An existing `dir` is refused unless `force`,
    /// and then replaced only once the new bundle is complete. On failure nothing is
    /// left behind and an existing `dir` is untouched.
    pub fn write_dir(&self, dir: &Path, force: bool) -> Result<(), EvidenceError> {
        let exists = dir.symlink_metadata().is_ok();
        if exists && !force {
            return Err(EvidenceError::Exists {
                path: dir.to_path_buf(),
            });
        }
        if exists && !dir.is_dir() {
            return Err(EvidenceError::Write {
                path: dir.to_path_buf(),
                reason: "exists and is not a directory".into(),
            });
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "evidence".into());
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let written = (|| -> Result<(), EvidenceError> {
            std::fs::create_dir(&tmp).map_err(|e| io_err(&tmp, &e))?;
            for (rel, bytes) in &self.files {
                if rel
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                {
                    return Err(EvidenceError::Write {
                        path: tmp.join(rel),
                        reason: "not a plain relative path".into(),
                    });
                }
                let path = tmp.join(rel);
                if let Some(d) = path.parent() {
                    std::fs::create_dir_all(d).map_err(|e| io_err(d, &e))?;
                }
                let mut f = std::fs::File::create(&path).map_err(|e| io_err(&path, &e))?;
                f.write_all(bytes).map_err(|e| io_err(&path, &e))?;
                f.sync_all().map_err(|e| io_err(&path, &e))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if exists {
            if let Err(e) = std::fs::rename(dir, &old) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(io_err(dir, &e));
            }
            if let Err(e) = std::fs::rename(&tmp, dir) {
                let _ = std::fs::rename(&old, dir);
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(io_err(dir, &e));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else if let Err(e) = std::fs::rename(&tmp, dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err(dir, &e));
        }
        Ok(())
    }
}
