//! Moving a run's staged output into its target as one unit.
//!
//! A commit is a list of renames planned in full before the first one (every conflict
//! refused up front): the target's partitions being replaced move to the run's
//! `replaced/` directory, then the staged ones move in (an append moves files in; a
//! first write or an unpartitioned rewrite renames the whole stage). The list is
//! written to the run's `commit.journal` (temp file, fsync, rename, fsync of the
//! directory) before anything moves, and removed once everything has moved: that
//! removal is the commit point.
//!
//! A rename that fails undoes the ones before it, newest first, so the target is as it
//! was. A process that dies mid-commit leaves its journal behind; the next run on the
//! same target ([`recover`], at its start) undoes those renames the same way, for every
//! journal whose process is gone (or is this one), and removes that run's directory.
//! Undoing is idempotent: a rename is undone only while its destination exists and its
//! source does not, so a recovery interrupted in turn is simply run again.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The journal's file name inside a run directory.
pub(crate) const JOURNAL: &str = "commit.journal";

/// What a commit in progress records: whose it is and the renames, in order.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Journal {
    /// The target the renames change (absolute or as configured).
    pub target: String,
    /// The process committing.
    pub pid: u32,
    /// `[from, to]`, in the order they are made.
    pub moves: Vec<[String; 2]>,
}

fn utf8(p: &Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not valid UTF-8", p.display()))
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::rename(from, to)
        .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))
}

/// Writes `journal` to `path` durably: a temp file, fsynced, renamed over, and the
/// directory fsynced.
fn write_journal(path: &Path, journal: &Journal) -> Result<(), String> {
    use std::io::Write;
    let text =
        serde_json::to_vec(journal).map_err(|e| format!("cannot encode the journal: {e}"))?;
    let tmp = path.with_extension("journal.tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    written.map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", dir.display())),
        None => Ok(()),
    }
}

/// Undoes `moves`, newest first: each `[from, to]` whose `to` exists and whose `from`
/// does not is moved back. The first failure stops it.
fn undo(moves: &[[PathBuf; 2]]) -> Result<(), String> {
    for [from, to] in moves.iter().rev() {
        if to.exists() && !from.exists() {
            rename(to, from)?;
        }
    }
    Ok(())
}

/// Makes `moves` (planned by the caller) as one unit, journalled at `journal`: all of
/// them, or on a failure none (those made are undone). `Err` says what failed; when the
/// undo failed too, the journal stays for [`recover`] and the message says so.
pub(crate) fn apply(journal: &Path, target: &Path, moves: Vec<[PathBuf; 2]>) -> Result<(), String> {
    if moves.is_empty() {
        return Ok(());
    }
    let record = Journal {
        target: utf8(target)?,
        pid: std::process::id(),
        moves: moves
            .iter()
            .map(|[f, t]| Ok([utf8(f)?, utf8(t)?]))
            .collect::<Result<_, String>>()?,
    };
    write_journal(journal, &record)?;
    for (done, [from, to]) in moves.iter().enumerate() {
        if let Err(failed) = rename(from, to) {
            let made = moves.get(..done).unwrap_or_default();
            return match undo(made) {
                Ok(()) => {
                    let _ = std::fs::remove_file(journal);
                    Err(format!("{failed} (nothing was committed)"))
                }
                Err(stuck) => Err(format!(
                    "{failed}; undoing the moves already made failed too ({stuck}): {} records them, and the next run on this target undoes them",
                    journal.display()
                )),
            };
        }
    }
    std::fs::remove_file(journal)
        .map_err(|e| format!("cannot remove {}: {e}", journal.display()))?;
    sync_dir(journal)
}

/// Whether process `pid` is running (Linux: `/proc/<pid>`). Elsewhere only this
/// process is known to be running, and any other is assumed to be (never touched).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Undoes every commit on `target` left half-done in a run directory under `runs` by a
/// process that is gone (or by this one), except in `current` (the run starting), and
/// removes those run directories. Returns how many were undone. A journal that does not
/// read is an error naming it (nothing is guessed).
pub(crate) fn recover(runs: &Path, target: &Path, current: &Path) -> Result<usize, String> {
    let target = utf8(target)?;
    let entries = match std::fs::read_dir(runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot list {}: {e}", runs.display())),
    };
    let mut undone = 0;
    for entry in entries {
        let dir = entry
            .map_err(|e| format!("cannot list {}: {e}", runs.display()))?
            .path();
        let path = dir.join(JOURNAL);
        if dir == current || !path.is_file() {
            continue;
        }
        let text =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let journal: Journal = serde_json::from_slice(&text)
            .map_err(|e| format!("{} does not read as a commit journal: {e}", path.display()))?;
        if journal.target != target || alive(journal.pid) {
            continue;
        }
        let moves: Vec<[PathBuf; 2]> = journal
            .moves
            .iter()
            .map(|[f, t]| [PathBuf::from(f), PathBuf::from(t)])
            .collect();
        undo(&moves)
            .map_err(|e| format!("cannot undo the commit {} records: {e}", path.display()))?;
        std::fs::remove_file(&path)
            .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        let _ = std::fs::remove_dir_all(&dir);
        undone += 1;
    }
    Ok(undone)
}
