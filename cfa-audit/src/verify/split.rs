//! Whole-file verification on several cores: the file is cut at line boundaries, each
//! part is verified on its own thread, and the parts are joined in order.

use super::VerifyOptions;
use super::chain::ChainState;
use super::reason::BadReason;
use super::report::{BadEvent, VerifyReport};
use super::stream::{run_segment, verify_reader};
use std::io::Read;

/// Below this many bytes per part, a file is verified on one thread.
const PART_MIN: u64 = 1 << 20;

/// At most this many parts (threads), whatever the machine has.
const PARTS_MAX: usize = 16;

/// How many parts a file of `len` bytes is verified in (1: sequentially).
fn part_count(opts: &VerifyOptions, len: u64) -> usize {
    if opts.threads == 1 || opts.merkle || opts.collect_leaves || opts.root_at.is_some() {
        return 1;
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    } else {
        opts.threads
    };
    let by_size = usize::try_from(len / PART_MIN).unwrap_or(usize::MAX);
    threads.min(by_size).clamp(1, PARTS_MAX)
}

/// Verifies a JSONL file using every core end to end (see
/// docs/architecture.md#the-audit-chain): the file is cut into parts at line boundaries,
/// each thread opens the file, reads and checks its own part in bounded chunks, and
/// the parts are joined in order by checking the one link across each cut. The
/// report (first bad event, its index, line, offset and message) is the one
/// [`verify_reader`] gives for the same bytes. Falls back to [`verify_reader`] for
/// small files, one thread (`threads: 1`), or Merkle/leaf collection.
pub fn verify_path(
    path: &std::path::Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<VerifyReport> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let parts = part_count(opts, len);
    let mut cuts = vec![0u64];
    for k in 1..parts {
        let at = len / parts as u64 * k as u64;
        let last = cuts.last().copied().unwrap_or(0);
        if at < last {
            continue;
        }
        match find_split(&mut file, at)? {
            Some(cut) if cut > last && cut < len => cuts.push(cut),
            Some(_) => {}
            None => break,
        }
    }
    if cuts.len() < 2 {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(0))?;
        return verify_reader(file, opts, progress);
    }
    cuts.push(len);
    let intent = opts.intent_id.as_deref();
    let n = cuts.len() - 1;
    let mut states: Vec<ChainState> = (0..n)
        .map(|k| {
            let mut st = ChainState::new(opts);
            st.open_start = k > 0;
            st
        })
        .collect();
    let results: Vec<std::io::Result<u64>> = std::thread::scope(|s| {
        let mut iter = states.iter_mut().zip(cuts.windows(2));
        let first = iter.next();
        let handles: Vec<_> = iter
            .map(|(st, w)| {
                let (from, to) = (
                    w.first().copied().unwrap_or(0),
                    w.get(1).copied().unwrap_or(0),
                );
                s.spawn(move || -> std::io::Result<u64> {
                    use std::io::{Seek, SeekFrom};
                    let mut f = std::fs::File::open(path)?;
                    f.seek(SeekFrom::Start(from))?;
                    run_segment(f.take(to - from), st, from, intent, 1, &mut |_| {})
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        if let Some((st, w)) = first {
            let to = w.get(1).copied().unwrap_or(0);
            let scale = n as u64;
            let mut fa = &file;
            out.push({
                use std::io::{Seek, SeekFrom};
                fa.seek(SeekFrom::Start(0)).and_then(|_| {
                    run_segment(fa.take(to), st, 0, intent, 1, &mut |b| {
                        progress(b.saturating_mul(scale).min(len))
                    })
                })
            });
        }
        for h in handles {
            out.push(
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("verification thread panicked"))),
            );
        }
        out
    });
    let mut lines = Vec::with_capacity(n);
    for r in results {
        lines.push(r?);
    }
    progress(len);
    // Whether any later part has an event decides what a part's trailing whitespace
    // and unterminated last line mean.
    let mut events_after = vec![false; n];
    let mut later = false;
    for (k, st) in states.iter().enumerate().rev() {
        if let Some(slot) = events_after.get_mut(k) {
            *slot = later;
        }
        later |= st.report.events > 0;
    }
    let mut acc: Option<(VerifyReport, u64)> = None;
    for ((mut st, part_lines), more) in states.into_iter().zip(lines).zip(events_after) {
        let link = st.first_link.take();
        let lead = st.lead_pending.take().or_else(|| st.lead_ws.take());
        let report = st.finish_at(!more, !more);
        acc = Some(match acc {
            None => (report, part_lines),
            Some((a, a_lines)) => (
                join_parts(a, report, link, lead, a_lines, more),
                a_lines + part_lines,
            ),
        });
    }
    Ok(acc.map(|(r, _)| r).unwrap_or_default())
}

/// Finds the first line start at or after `mid` (None: no newline after `mid`).
fn find_split(file: &mut std::fs::File, mid: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(mid))?;
    let mut pos = mid;
    let mut block = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memchr(b'\n', block.get(..n).unwrap_or_default()) {
            return Ok(Some(pos + i as u64 + 1));
        }
        pos += n as u64;
    }
}

/// Joins the report of the parts before a cut (`a`, `a_lines` physical lines) with
/// the report of the part after it (`b`, whose first event's link and leading
/// whitespace are `b_link` and `b_lead`); `more`: a later part has events.
fn join_parts(
    a: VerifyReport,
    b: VerifyReport,
    b_link: Option<(String, u64, u64)>,
    b_lead: Option<BadEvent>,
    a_lines: u64,
    more: bool,
) -> VerifyReport {
    let mut out = VerifyReport {
        events: a.events + b.events,
        ..VerifyReport::default()
    };
    // A part with no event between parts with events: its whitespace-only lines
    // separate two events, so the first one is the first bad event.
    let b_lead = if b.events == 0 && !more { None } else { b_lead };
    if a.first_bad.is_none()
        && b.events == 0
        && a.events > 0
        && let Some(mut bad) = b_lead
    {
        bad.index += a.events;
        bad.line += a_lines;
        out.first_bad = Some(bad);
        out.intent_events = a.intent_events;
        out.legacy_events = a.legacy_events;
        out.tail_hash = a.tail_hash;
        return out;
    }
    if a.first_bad.is_some() || b.events == 0 {
        out.first_bad = a.first_bad;
        out.intent_events = a.intent_events;
        out.tail_hash = a.tail_hash;
        out.legacy_events = a.legacy_events;
        return out;
    }
    out.intent_events = match (a.intent_events, b.intent_events) {
        (Some(x), Some(y)) => Some(x + y),
        (x, _) => x,
    };
    out.legacy_events = a.legacy_events + b.legacy_events;
    // Whitespace before the second half's first event is an error only after events.
    if a.events > 0
        && let Some(mut bad) = b_lead
    {
        bad.index += a.events;
        bad.line += a_lines;
        out.first_bad = Some(bad);
        out.intent_events = a.intent_events;
        out.legacy_events = a.legacy_events;
        out.tail_hash = a.tail_hash;
        return out;
    }
    if let Some((found, line, offset)) = b_link
        && found != a.tail_hash
    {
        out.first_bad = Some(BadEvent {
            index: a.events,
            line: a_lines + line,
            offset,
            reason: BadReason::LinkBroken {
                expected: a.tail_hash.clone(),
                found,
            },
        });
        out.intent_events = a.intent_events;
        out.legacy_events = a.legacy_events;
        out.tail_hash = a.tail_hash;
        return out;
    }
    // When the part's first event is already bad, the last good event is before the cut.
    out.tail_hash = if b.first_bad.as_ref().is_some_and(|bad| bad.index == 0) {
        a.tail_hash
    } else {
        b.tail_hash
    };
    out.first_bad = b.first_bad.map(|mut bad| {
        bad.index += a.events;
        bad.line += a_lines;
        bad
    });
    out
}
