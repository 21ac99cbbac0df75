//! `cfa storage stats|cleanup|vacuum` over a SQLite database (`--db`) or a JSONL folder
//! (`--dir`). Cleanup of the audit log keeps the chain verifiable (B3): the dropped
//! prefix is summarised in an anchor file `{log}.anchor.json` (cfa-audit's
//! `retain::Anchor`: size, last hash, Merkle peaks) that verification starts from, and an
//! already-anchored log is re-anchored by extending the previous anchor.

use crate::exit;
use crate::lifecycle_cmd::parse_time;
use crate::settings::{Flags, Settings};
use cfa::lifecycle::time;
use cfa_audit::merkle::{CompactRange, event_leaf};
use cfa_audit::retain::{Anchor, retain_suffix};
use cfa_audit::verify::VerifyOptions;
use cfa_audit::{AuditStore, AuditTarget};
use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Storage commands.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Row counts, file size and the audit time range.
    Stats(StatsArgs),
    /// Delete audit events and execution records older than a cutoff (the audit chain
    /// stays verifiable through an anchor file).
    Cleanup(CleanupArgs),
    /// Compact the SQLite file (`VACUUM`).
    Vacuum(VacuumArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    #[value(alias = "table")]
    Summary,
    /// One JSON object.
    Json,
}

/// Where the data lives [default: the config's storage].
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct Location {
    /// SQLite database [default: the config's storage when it is sqlite].
    #[arg(long)]
    db: Option<PathBuf>,
    /// JSONL folder (`audit_*.jsonl`, `execution_*.jsonl`, `skills_*.jsonl`, `metrics_*.jsonl`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// What a storage command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// A SQLite database (`--db`, or a sqlite storage in the config).
    Db(PathBuf),
    /// A JSONL folder (`--dir`).
    Dir(PathBuf),
    /// One JSONL audit log (a jsonl storage in the config).
    Log(PathBuf),
}

impl Location {
    /// `--db`, else `--dir`, else the config's storage (resolved by the settings
    /// layer); none of them is a usage error.
    fn place(&self, settings: &Settings) -> miette::Result<Place> {
        match (&self.db, &self.dir) {
            (Some(db), _) => return Ok(Place::Db(db.clone())),
            (None, Some(dir)) => return Ok(Place::Dir(dir.clone())),
            (None, None) => {}
        }
        let location = match settings.required_audit("--db or --dir") {
            Ok(l) => l,
            Err(usage) => usage.exit(),
        };
        match location.target()? {
            AuditTarget::Sqlite(p) => Ok(Place::Db(p)),
            AuditTarget::Jsonl(p) => Ok(Place::Log(p)),
        }
    }
}

/// The settings of a storage command (`--config`, `--retention`).
fn settings(config: Option<&Path>, retention: Option<u32>) -> miette::Result<Settings> {
    crate::settings::resolve_process(&Flags {
        config,
        retention_days: retention.map(u64::from),
        ..Flags::default()
    })
}

/// `cfa storage stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    loc: Location,
    /// Config file whose `storage` applies when neither --db nor --dir is given
    /// (default: discovered from the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa storage cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    loc: Location,
    /// Cutoff (ISO; a timestamp without offset is UTC).
    #[arg(long, conflicts_with = "retention")]
    before: Option<String>,
    /// Keep this many days [default: the config's storage.retention_days, else 90].
    #[arg(long)]
    retention: Option<u32>,
    /// Config file whose `storage.retention_days` applies (default: discovered from
    /// the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Reference time for --retention (ISO; default now).
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa storage vacuum`.
#[derive(Debug, Args)]
pub struct VacuumArgs {
    #[command(flatten)]
    loc: Location,
    /// Config file whose `storage` applies when neither --db nor --dir is given
    /// (default: discovered from the current directory upwards).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// Runs a storage command.
pub fn run(cmd: StorageCommand) -> miette::Result<ExitCode> {
    match cmd {
        StorageCommand::Stats(a) => stats(&a),
        StorageCommand::Cleanup(a) => cleanup(&a),
        StorageCommand::Vacuum(a) => vacuum(&a),
    }
}

fn e<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> miette::Report + '_ {
    move |err| miette::miette!("{}: {err}", path.display())
}

/// The anchor file of a log (`{path}.anchor.json`).
pub fn anchor_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".anchor.json");
    PathBuf::from(s)
}

fn read_anchor(log: &Path) -> miette::Result<Option<Anchor>> {
    let p = anchor_path(log);
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(e(&p))?;
    Anchor::parse(&text).map(Some).map_err(e(&p))
}

fn write_anchor(log: &Path, anchor: &Anchor) -> miette::Result<()> {
    let p = anchor_path(log);
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(e(&tmp))?;
    f.write_all(anchor.to_json().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(e(&tmp))?;
    std::fs::rename(&tmp, &p).map_err(e(&p))
}

/// Extends `previous` (or genesis) by the first `cut` event hashes.
fn extend_anchor(
    log: &Path,
    previous: Option<&Anchor>,
    dropped: &[String],
) -> miette::Result<Anchor> {
    let mut tree = match previous {
        Some(a) => CompactRange::from_parts(a.size, a.peaks.clone()).map_err(e(log))?,
        None => CompactRange::new(),
    };
    for h in dropped {
        tree.push(event_leaf(h));
    }
    Ok(Anchor {
        size: tree.size(),
        last_hash: dropped.last().cloned().unwrap_or_default(),
        peaks: tree.peaks().to_vec(),
        checkpoint: None,
    })
}

fn verify_opts(log: &Path, anchor: Option<&Anchor>) -> miette::Result<VerifyOptions> {
    Ok(VerifyOptions {
        start: match anchor {
            Some(a) => Some(a.chain_start(None).map_err(e(log))?),
            None => None,
        },
        ..VerifyOptions::default()
    })
}

fn refuse_broken(log: &Path, report: &cfa_audit::VerifyReport) -> miette::Result<()> {
    match &report.first_bad {
        None => Ok(()),
        Some(bad) => Err(miette::miette!(
            "{}: refusing to clean up a broken chain (event {}: {})",
            log.display(),
            bad.index,
            bad.reason
        )),
    }
}

// ---- SQLite ------------------------------------------------------------------------

/// The tables of a CFA database (audit log, lifecycle and state); a file with none of
/// them is someone else's database and is refused before anything touches it.
const CFA_TABLES: [&str; 5] = [
    "audit_events",
    "execution_records",
    "skill_records",
    "metrics",
    "context_state",
];

/// Opens an existing CFA database: read-only for `stats`, read-write for `cleanup` and
/// `vacuum`, but in both cases only after a read-only check that the file is SQLite
/// and holds CFA tables. Nothing is created, migrated or switched to WAL.
fn open_db(db: &Path, write: bool) -> miette::Result<Connection> {
    use rusqlite::OpenFlags;
    if !std::fs::metadata(db).is_ok_and(|m| m.is_file()) {
        return Err(miette::miette!("database not found: {}", db.display()));
    }
    let ro = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(e(db))?;
    let mut known = false;
    for t in CFA_TABLES {
        match has_table(&ro, t) {
            Ok(found) => known |= found,
            Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
                return Err(miette::miette!(
                    "{} is not a CFA database: it is not a SQLite database",
                    db.display()
                ));
            }
            Err(err) => return Err(e(db)(err)),
        }
    }
    if !known {
        return Err(miette::miette!(
            "{} is not a CFA database: it has none of the tables {}",
            db.display(),
            CFA_TABLES.join(", ")
        ));
    }
    let c = if write {
        drop(ro);
        Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(e(db))?
    } else {
        ro.pragma_update(None, "query_only", "ON").map_err(e(db))?;
        ro
    };
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(e(db))?;
    Ok(c)
}

fn has_table(c: &Connection, t: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [t],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn count(c: &Connection, t: &str) -> rusqlite::Result<i64> {
    if has_table(c, t)? {
        c.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
    } else {
        Ok(0)
    }
}

fn sqlite_stats(db: &Path) -> miette::Result<Value> {
    let c = open_db(db, false)?;
    let (oldest, newest): (Option<String>, Option<String>) =
        if has_table(&c, "audit_events").map_err(e(db))? {
            c.query_row(
                "SELECT MIN(timestamp), MAX(timestamp) FROM audit_events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(e(db))?
        } else {
            (None, None)
        };
    Ok(json!({
        "backend": "sqlite",
        "path": db.display().to_string(),
        "file_size_bytes": std::fs::metadata(db).map(|m| m.len()).unwrap_or(0),
        "audit_events_count": count(&c, "audit_events").map_err(e(db))?,
        "execution_records_count": count(&c, "execution_records").map_err(e(db))?,
        "skill_records_count": count(&c, "skill_records").map_err(e(db))?,
        "metrics_count": count(&c, "metrics").map_err(e(db))?,
        "oldest_record": oldest,
        "newest_record": newest,
    }))
}

fn before_cut(ts: &str, before: Timestamp) -> bool {
    time::parse(ts).is_some_and(|t| t < before)
}

fn sqlite_cleanup(db: &Path, before: Timestamp) -> miette::Result<(u64, u64)> {
    let c = open_db(db, true)?;
    let mut audit_removed = 0u64;
    if has_table(&c, "audit_events").map_err(e(db))? {
        let rows: Vec<(i64, String, String)> = {
            let mut st = c
                .prepare("SELECT id, timestamp, event_hash FROM audit_events ORDER BY id")
                .map_err(e(db))?;
            let it = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(e(db))?;
            it.collect::<Result<_, _>>().map_err(e(db))?
        };
        let cut = rows
            .iter()
            .take_while(|(_, ts, _)| before_cut(ts, before))
            .count();
        if let Some((last_id, _, _)) = cut.checked_sub(1).and_then(|i| rows.get(i)) {
            let previous = read_anchor(db)?;
            let store = cfa_audit::SqliteStore::open_read_only(db).map_err(e(db))?;
            let report = store
                .verify(&verify_opts(db, previous.as_ref())?)
                .map_err(e(db))?;
            refuse_broken(db, &report)?;
            let dropped: Vec<String> = rows.iter().take(cut).map(|(_, _, h)| h.clone()).collect();
            let anchor = extend_anchor(db, previous.as_ref(), &dropped)?;
            write_anchor(db, &anchor)?;
            let n = c
                .execute("DELETE FROM audit_events WHERE id <= ?1", [last_id])
                .map_err(e(db))?;
            audit_removed = u64::try_from(n).unwrap_or(0);
        }
    }
    let mut exec_removed = 0u64;
    if has_table(&c, "execution_records").map_err(e(db))? {
        let ids: Vec<i64> = {
            let mut st = c
                .prepare("SELECT id, timestamp FROM execution_records")
                .map_err(e(db))?;
            let it = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(e(db))?;
            let all: Vec<(i64, String)> = it.collect::<Result<_, _>>().map_err(e(db))?;
            all.into_iter()
                .filter(|(_, ts)| before_cut(ts, before))
                .map(|(id, _)| id)
                .collect()
        };
        let tx = c.unchecked_transaction().map_err(e(db))?;
        for id in &ids {
            exec_removed += u64::try_from(
                tx.execute("DELETE FROM execution_records WHERE id = ?1", [id])
                    .map_err(e(db))?,
            )
            .unwrap_or(0);
        }
        tx.commit().map_err(e(db))?;
    }
    Ok((audit_removed, exec_removed))
}

// ---- JSONL -------------------------------------------------------------------------

fn files(dir: &Path, prefix: &str) -> miette::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(miette::miette!("directory not found: {}", dir.display()));
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(e(dir))?
        .filter_map(Result::ok)
        .map(|d| d.path())
        // Only regular files: a FIFO or device named like a log would block the read.
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// (timestamp, event_hash) of every non-blank line.
fn jsonl_entries(path: &Path) -> miette::Result<Vec<(String, String)>> {
    let f = std::fs::File::open(path).map_err(e(path))?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(e(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        out.push((field("timestamp"), field("event_hash")));
    }
    Ok(out)
}

fn jsonl_stats(dir: &Path) -> miette::Result<Value> {
    let mut groups = Vec::new();
    for prefix in ["audit_", "execution_", "skills_", "metrics_"] {
        groups.push(files(dir, prefix)?);
    }
    jsonl_stats_of(dir, groups)
}

/// The stats of one JSONL audit log (the config's jsonl storage).
fn jsonl_log_stats(log: &Path) -> miette::Result<Value> {
    if !log.is_file() {
        return Err(miette::miette!("audit log not found: {}", log.display()));
    }
    jsonl_stats_of(
        log,
        vec![vec![log.to_path_buf()], Vec::new(), Vec::new(), Vec::new()],
    )
}

/// Stats over audit, execution, skill and metrics files (in that order).
fn jsonl_stats_of(shown: &Path, groups: Vec<Vec<PathBuf>>) -> miette::Result<Value> {
    let mut size = 0u64;
    let mut counts = Vec::new();
    let mut oldest: Option<(Timestamp, String)> = None;
    let mut newest: Option<(Timestamp, String)> = None;
    for (i, group) in groups.into_iter().enumerate() {
        let mut n = 0usize;
        for f in group {
            size += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            let entries = jsonl_entries(&f)?;
            n += entries.len();
            if i == 0 {
                for (ts, _) in entries {
                    if let Some(t) = time::parse(&ts) {
                        if oldest.as_ref().is_none_or(|(o, _)| t < *o) {
                            oldest = Some((t, ts.clone()));
                        }
                        if newest.as_ref().is_none_or(|(o, _)| t > *o) {
                            newest = Some((t, ts));
                        }
                    }
                }
            }
        }
        counts.push(n);
    }
    let c = |i: usize| counts.get(i).copied().unwrap_or(0);
    Ok(json!({
        "backend": "jsonl",
        "path": shown.display().to_string(),
        "file_size_bytes": size,
        "audit_events_count": c(0),
        "execution_records_count": c(1),
        "skill_records_count": c(2),
        "metrics_count": c(3),
        "oldest_record": oldest.map(|(_, s)| s),
        "newest_record": newest.map(|(_, s)| s),
    }))
}

fn rewrite_keeping(path: &Path, keep: impl Fn(usize, &str) -> bool) -> miette::Result<()> {
    let text = std::fs::read_to_string(path).map_err(e(path))?;
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        if keep(i, line) {
            out.push_str(line);
            out.push('\n');
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".cleanup-tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(e(&tmp))?;
    f.write_all(out.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(e(&tmp))?;
    std::fs::rename(&tmp, path).map_err(e(path))
}

fn jsonl_audit_cleanup(log: &Path, before: Timestamp) -> miette::Result<u64> {
    let entries = jsonl_entries(log)?;
    let cut = entries
        .iter()
        .take_while(|(ts, _)| before_cut(ts, before))
        .count();
    if cut == 0 {
        return Ok(0);
    }
    let keep_from = u64::try_from(cut).unwrap_or(u64::MAX);
    match read_anchor(log)? {
        // First cut: cfa-audit's retain (verifies, anchors, replaces under the lock).
        None => {
            retain_suffix(log, keep_from, &anchor_path(log), None).map_err(e(log))?;
        }
        // Already anchored: verify from the anchor, extend it, then drop the prefix.
        Some(previous) => {
            let lp = cfa_audit::jsonl::lock_path(log);
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lp)
                .map_err(e(&lp))?;
            lock.lock().map_err(e(&lp))?;
            let result = (|| {
                let report =
                    cfa_audit::verify_file(log, &verify_opts(log, Some(&previous))?, &mut |_| {})
                        .map_err(e(log))?;
                refuse_broken(log, &report)?;
                let entries = jsonl_entries(log)?;
                let dropped: Vec<String> =
                    entries.iter().take(cut).map(|(_, h)| h.clone()).collect();
                let anchor = extend_anchor(log, Some(&previous), &dropped)?;
                write_anchor(log, &anchor)?;
                rewrite_keeping(log, |i, _| i >= cut)
            })();
            let _ = lock.unlock();
            result?;
        }
    }
    Ok(keep_from)
}

fn jsonl_cleanup(dir: &Path, before: Timestamp) -> miette::Result<(u64, u64)> {
    let mut audit = 0;
    for log in files(dir, "audit_")? {
        audit += jsonl_audit_cleanup(&log, before)?;
    }
    let mut exec = 0u64;
    for f in files(dir, "execution_")? {
        let entries = jsonl_entries(&f)?;
        let old = entries
            .iter()
            .filter(|(ts, _)| before_cut(ts, before))
            .count();
        if old > 0 {
            rewrite_keeping(&f, |i, _| {
                entries.get(i).is_none_or(|(ts, _)| !before_cut(ts, before))
            })?;
            exec += u64::try_from(old).unwrap_or(0);
        }
    }
    Ok((audit, exec))
}

// ---- commands ----------------------------------------------------------------------

fn print(format: Format, v: &Value, text: impl FnOnce() -> String) {
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        Format::Summary => outln!("{}", text()),
    }
}

/// `cfa storage stats` of the settings' audit storage for `cfa status` (the
/// reference's `storage_stats`): `null` when there is none or it does not exist yet,
/// `{"error": …}` when it cannot be read. Read-only.
pub fn status_stats(settings: &Settings) -> Value {
    let Some(target) = settings.audit().and_then(|l| l.target().ok()) else {
        return Value::Null;
    };
    let stats = match target {
        AuditTarget::Sqlite(p) if p.is_file() => sqlite_stats(&p),
        AuditTarget::Jsonl(p) if p.is_file() => jsonl_log_stats(&p),
        _ => return Value::Null,
    };
    stats.unwrap_or_else(|e| json!({"error": e.to_string()}))
}

fn stats(a: &StatsArgs) -> miette::Result<ExitCode> {
    let v = match a.loc.place(&settings(a.config.as_deref(), None)?)? {
        Place::Db(db) => sqlite_stats(&db)?,
        Place::Dir(dir) => jsonl_stats(&dir)?,
        Place::Log(log) => jsonl_log_stats(&log)?,
    };
    print(a.format, &v, || {
        let mut s = String::from("Storage stats:");
        if let Value::Object(m) = &v {
            for (k, val) in m {
                let shown = match val {
                    Value::String(x) => x.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                };
                s.push_str(&format!("\n  {k}: {shown}"));
            }
        }
        s
    });
    Ok(exit::APPROVED.into())
}

fn cleanup(a: &CleanupArgs) -> miette::Result<ExitCode> {
    let settings = settings(a.config.as_deref(), a.retention)?;
    let before = match &a.before {
        Some(b) => parse_time("--before", b)?,
        None => {
            let now = match &a.now {
                Some(t) => parse_time("--now", t)?,
                None => Timestamp::now(),
            };
            let days = u32::try_from(settings.retention_days.value).map_err(|_| {
                miette::miette!(
                    "{}: storage.retention_days {} is too large",
                    settings
                        .config()
                        .map_or_else(String::new, |c| c.path.display().to_string()),
                    settings.retention_days.value
                )
            })?;
            time::minus_days(now, days)
        }
    };
    let (audit, exec) = match a.loc.place(&settings)? {
        Place::Db(db) => sqlite_cleanup(&db, before)?,
        Place::Dir(dir) => jsonl_cleanup(&dir, before)?,
        Place::Log(log) => (jsonl_audit_cleanup(&log, before)?, 0),
    };
    let iso = time::isoformat(before);
    let v = json!({
        "removed": audit + exec,
        "audit_events_removed": audit,
        "execution_records_removed": exec,
        "before": iso,
    });
    print(a.format, &v, || {
        format!(
            "Cleaned up {} records before {}",
            audit + exec,
            iso.get(..19).unwrap_or(&iso)
        )
    });
    Ok(exit::APPROVED.into())
}

fn vacuum(a: &VacuumArgs) -> miette::Result<ExitCode> {
    let (v, text) = match a.loc.place(&settings(a.config.as_deref(), None)?)? {
        Place::Db(db) => {
            let db = db.as_path();
            let c = open_db(db, true)?;
            c.execute_batch("VACUUM").map_err(e(db))?;
            let _: Option<i64> = c
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .optional()
                .map_err(e(db))?;
            (
                json!({"vacuumed": db.display().to_string(), "backend": "sqlite"}),
                format!("Vacuumed {}", db.display()),
            )
        }
        Place::Dir(dir) | Place::Log(dir) => (
            json!({"vacuumed": dir.display().to_string(), "backend": "jsonl", "note": "nothing to compact"}),
            format!("Vacuumed {} (JSONL: nothing to compact)", dir.display()),
        ),
    };
    print(a.format, &v, || text);
    Ok(exit::APPROVED.into())
}
