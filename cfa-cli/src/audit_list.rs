//! `cfa audit list` and `cfa audit tail`: the recent decisions (or, with `--all`,
//! every event) of a JSONL log or SQLite store, one line each: time, intent id,
//! stage, outcome and the rule (fault) codes, filtered by outcome, intent, stage and
//! time. `tail --follow` polls the log and prints events as they are appended. This
//! module only reads and renders; the chain is checked by `cfa audit verify`.

use crate::audit_cmd::{Format, LogArgs};
use cfa::lifecycle::time;
use cfa_audit::{AuditEvent, AuditStore, AuditTarget, SqliteStore};
use clap::Args;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, Seek};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Filters shared by `list` and `tail`.
#[derive(Debug, Args)]
pub struct Filters {
    #[command(flatten)]
    log: LogArgs,
    /// Only events with this outcome (`approve`, `block`, `blocked`, …); repeatable.
    #[arg(long, value_name = "OUTCOME")]
    outcome: Vec<String>,
    /// Only this intent's events.
    #[arg(long, short = 'i', value_name = "ID")]
    intent: Option<String>,
    /// Only this stage's events (`policy_check`, `govern`, `execute`, …).
    #[arg(long)]
    stage: Option<String>,
    /// Only events at or after this time: an ISO date or date-time (no offset = UTC),
    /// or an age such as `30s`, `15m`, `2h`, `7d`.
    #[arg(long, value_name = "TIME|AGE")]
    since: Option<String>,
    /// Every event, not only decisions (a decision is a `final_decision` event, or
    /// a `policy_check` stage's `policy_evaluation`).
    #[arg(long)]
    all: bool,
    /// Output format (`json`: one JSON object per event per line).
    #[arg(long, short = 'f', value_enum, default_value_t)]
    format: Format,
}

/// `cfa audit list`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cfa audit list --file audit.jsonl -n 20\n  \
    cfa audit list --db cfa.db --outcome block --since 1h\n  \
    cfa audit list --file audit.jsonl -i INTENT_ID --all -f json")]
pub struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    /// Only the last N matching events.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
}

/// `cfa audit tail`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cfa audit tail --file audit.jsonl\n  \
    cfa audit tail --file audit.jsonl -F --outcome block\n\n\
    -f is --format on every command; follow is -F/--follow.")]
pub struct TailArgs {
    #[command(flatten)]
    filters: Filters,
    /// The last N matching events.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    lines: usize,
    /// Keep printing matching events as they are appended (polls the log).
    #[arg(short = 'F', long)]
    follow: bool,
    /// With --follow: stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS", requires = "follow")]
    follow_for: Option<f64>,
    /// With --follow: how often to look for new events, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250, requires = "follow")]
    poll_ms: u64,
}

/// The rule (fault) codes of an event: `details.faults`, as codes or `{code}` objects.
fn rules(e: &AuditEvent) -> Vec<String> {
    e.details
        .get("faults")
        .and_then(Value::as_array)
        .map(|faults| {
            faults
                .iter()
                .filter_map(|f| {
                    f.as_str()
                        .or_else(|| f.get("code").and_then(Value::as_str))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The compiled filters.
struct Matcher {
    outcomes: Vec<String>,
    intent: Option<String>,
    stage: Option<String>,
    since: Option<jiff::Timestamp>,
    all: bool,
}

/// `--since`: an age (`30s`, `15m`, `2h`, `7d`) before `now`, or an ISO time.
fn parse_since(text: &str, now: jiff::Timestamp) -> miette::Result<jiff::Timestamp> {
    let t = text.trim();
    let unit = t.chars().last().and_then(|c| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    });
    if let (Some(unit), Some(n)) = (
        unit,
        t.get(..t.len().saturating_sub(1))
            .and_then(|n| n.parse::<i64>().ok()),
    ) && n >= 0
    {
        let secs = n.saturating_mul(unit);
        return jiff::SignedDuration::from_secs(secs)
            .checked_neg()
            .and_then(|d| now.checked_add(d).ok())
            .ok_or_else(|| miette::miette!("--since {text:?} reaches too far back"));
    }
    time::parse(t).ok_or_else(|| {
        miette::miette!(
            "--since {text:?} is neither an ISO date or date-time (e.g. 2026-01-31T00:00:00) nor an age (30s, 15m, 2h, 7d)"
        )
    })
}

impl Matcher {
    fn new(f: &Filters) -> miette::Result<Self> {
        Ok(Matcher {
            outcomes: f.outcome.clone(),
            intent: f.intent.clone(),
            stage: f.stage.clone(),
            since: f
                .since
                .as_deref()
                .map(|s| parse_since(s, jiff::Timestamp::now()))
                .transpose()?,
            all: f.all,
        })
    }

    /// Whether `e` is listed. With `--since`, an event whose timestamp cannot be read
    /// is left out (its time cannot be shown to be recent).
    fn matches(&self, e: &AuditEvent) -> bool {
        let decision = e.event_type == "final_decision"
            || (e.stage == "policy_check" && e.event_type == "policy_evaluation");
        (self.all || decision)
            && (self.outcomes.is_empty() || self.outcomes.contains(&e.outcome))
            && self.intent.as_ref().is_none_or(|i| *i == e.intent_id)
            && self.stage.as_ref().is_none_or(|s| *s == e.stage)
            && self
                .since
                .is_none_or(|since| time::parse(&e.timestamp).is_some_and(|t| t >= since))
    }
}

/// The column header of the summary form.
fn header() -> String {
    format!(
        "{:<32}  {:<36}  {:<14}  {:<22}  RULES",
        "TIME", "INTENT", "STAGE", "OUTCOME"
    )
}

/// One event as a summary line or a JSON line.
fn render(e: &AuditEvent, format: Format) -> String {
    let codes = rules(e);
    match format {
        Format::Json => json!({
            "timestamp": e.timestamp,
            "intent_id": e.intent_id,
            "stage": e.stage,
            "event_type": e.event_type,
            "outcome": e.outcome,
            "rules": codes,
            "event_hash": e.event_hash,
        })
        .to_string(),
        Format::Summary => {
            let rules = if codes.is_empty() {
                "-".to_owned()
            } else {
                codes.join(",")
            };
            format!(
                "{:<32}  {:<36}  {:<14}  {:<22}  {rules}",
                e.timestamp, e.intent_id, e.stage, e.outcome
            )
        }
    }
}

/// Reads a JSONL log from byte `offset`: every complete line's event, and the offset
/// after the last complete line (a torn last line is left for the next read). `line`
/// is the number of lines before `offset`, for error messages.
fn read_jsonl_from(
    path: &Path,
    offset: u64,
    line: &mut u64,
    visit: &mut dyn FnMut(AuditEvent),
) -> miette::Result<u64> {
    let cannot = |e: std::io::Error| {
        miette::miette!(
            "cannot read {}: {}",
            path.display(),
            crate::input::io_reason(&e)
        )
    };
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(miette::miette!(
            "cannot read {}: not a regular file",
            path.display()
        ));
    }
    let mut f = std::fs::File::open(path).map_err(cannot)?;
    if meta.len() < offset {
        return Err(miette::miette!(
            "{} shrank from {offset} to {} bytes while it was read (truncated or replaced)",
            path.display(),
            meta.len()
        ));
    }
    f.seek(std::io::SeekFrom::Start(offset)).map_err(cannot)?;
    let mut reader = std::io::BufReader::new(f);
    let mut at = offset;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(cannot)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            return Ok(at);
        }
        at += n as u64;
        *line += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|e| miette::miette!("{}:{line}: invalid UTF-8: {e}", path.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let event = AuditEvent::from_jsonl_line(text.trim_end())
            .map_err(|e| miette::miette!("{}:{line}: {e}", path.display()))?;
        visit(event);
    }
}

/// Where a follow left off.
enum Cursor {
    /// JSONL: byte offset of the next line, and lines read so far.
    Jsonl { offset: u64, line: u64 },
    /// SQLite: events seen so far (the store is scanned again, skipping them).
    Sqlite { seen: u64 },
}

/// Visits the events after `cursor` and moves it to the end.
fn read_after(
    target: &AuditTarget,
    cursor: &mut Cursor,
    visit: &mut dyn FnMut(AuditEvent),
) -> miette::Result<()> {
    match (target, cursor) {
        (AuditTarget::Jsonl(p), Cursor::Jsonl { offset, line }) => {
            *offset = read_jsonl_from(p, *offset, line, visit)?;
            Ok(())
        }
        (AuditTarget::Sqlite(p), Cursor::Sqlite { seen }) => {
            let store = SqliteStore::open_read_only(p).map_err(|e| miette::miette!("{e}"))?;
            let mut index = 0u64;
            store
                .scan(&mut |e| {
                    if index >= *seen {
                        visit(e);
                    }
                    index += 1;
                    ControlFlow::Continue(())
                })
                .map_err(|e| miette::miette!("{e}"))?;
            *seen = index;
            Ok(())
        }
        _ => Err(miette::miette!("internal: cursor does not fit the log")),
    }
}

fn start(target: &AuditTarget) -> Cursor {
    match target {
        AuditTarget::Jsonl(_) => Cursor::Jsonl { offset: 0, line: 0 },
        AuditTarget::Sqlite(_) => Cursor::Sqlite { seen: 0 },
    }
}

/// The last `n` (or all) matching events from the start of the log; the cursor is
/// left at the end.
fn last_matching(
    target: &AuditTarget,
    matcher: &Matcher,
    n: Option<usize>,
    cursor: &mut Cursor,
) -> miette::Result<VecDeque<AuditEvent>> {
    let mut kept: VecDeque<AuditEvent> = VecDeque::new();
    read_after(target, cursor, &mut |e| {
        if matcher.matches(&e) {
            kept.push_back(e);
            if n.is_some_and(|n| kept.len() > n) {
                kept.pop_front();
            }
        }
    })?;
    Ok(kept)
}

fn print_all(events: &VecDeque<AuditEvent>, format: Format) {
    if format == Format::Summary {
        outln!("{}", header());
    }
    for e in events {
        outln!("{}", render(e, format));
    }
}

/// Runs `cfa audit list`.
pub fn list(a: ListArgs) -> miette::Result<ExitCode> {
    let target = a.filters.log.target()?;
    let matcher = Matcher::new(&a.filters)?;
    let mut cursor = start(&target);
    let events = last_matching(&target, &matcher, a.lines, &mut cursor)?;
    print_all(&events, a.filters.format);
    Ok(ExitCode::SUCCESS)
}

/// Runs `cfa audit tail`.
pub fn tail(a: TailArgs) -> miette::Result<ExitCode> {
    let target = a.filters.log.target()?;
    let matcher = Matcher::new(&a.filters)?;
    let format = a.filters.format;
    let mut cursor = start(&target);
    let events = last_matching(&target, &matcher, Some(a.lines), &mut cursor)?;
    print_all(&events, format);
    if !a.follow || !crate::out::flush() {
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = a
        .follow_for
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Instant::now() + Duration::from_secs_f64(s.min(1e9)));
    let poll = Duration::from_millis(a.poll_ms.max(10));
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(match deadline {
            Some(d) => poll.min(d.saturating_duration_since(Instant::now())),
            None => poll,
        });
        read_after(&target, &mut cursor, &mut |e| {
            if matcher.matches(&e) {
                outln!("{}", render(&e, format));
            }
        })?;
        // Each batch of new events reaches a pipe at once (`| grep`); a reader that
        // has gone ends the follow.
        if !crate::out::flush() {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_takes_ages_and_iso_times() {
        let now = time::parse("2026-03-01T12:00:00").unwrap();
        assert_eq!(
            parse_since("2h", now).unwrap(),
            time::parse("2026-03-01T10:00:00").unwrap()
        );
        assert_eq!(
            parse_since("7d", now).unwrap(),
            time::parse("2026-02-22T12:00:00").unwrap()
        );
        assert_eq!(
            parse_since("2026-01-31", now).unwrap(),
            time::parse("2026-01-31T00:00:00").unwrap()
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("-3h", now).is_err());
    }
}
