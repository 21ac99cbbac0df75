//! Whole-file verification on several cores: the file is cut at line boundaries, each
//! part is verified on its own thread, and the parts are joined in order.

use super::VerifyOptions;
use super::chain::ChainState;
use super::reason::BadReason;
use super::report::{BadEvent, VerifyReport};
use super::stream::{run_segment, verify_reader};
use std::io::Read;

const SPLIT_MIN: u64 = 4 << 20;

/// Verifies a JSONL file using both cores end to end: each thread opens the file,
/// reads and checks its own half (split at a line boundary), and the halves are
/// joined by checking the one link across the split. Falls back to
/// [`verify_reader`] for small files, one thread, or Merkle/leaf collection.
pub fn verify_path(
    path: &std::path::Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<VerifyReport> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let sequential = opts.threads == 1
        || opts.merkle
        || opts.collect_leaves
        || opts.root_at.is_some()
        || len < SPLIT_MIN;
    let split = if sequential {
        None
    } else {
        find_split(&mut file, len / 2)?
    };
    let Some(split) = split else {
        return verify_reader(file, opts, progress);
    };
    let intent = opts.intent_id.as_deref();
    let mut a = ChainState::new(opts);
    let mut b = ChainState::new(opts);
    b.open_start = true;
    let (ra, rb) = std::thread::scope(|s| {
        let hb = s.spawn(|| -> std::io::Result<u64> {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(split))?;
            run_segment(f, &mut b, split, intent, 1, &mut |_| {})
        });
        let mut fa = &file;
        let ra = {
            use std::io::{Seek, SeekFrom};
            fa.seek(SeekFrom::Start(0)).and_then(|_| {
                run_segment(fa.take(split), &mut a, 0, intent, 1, &mut |n| {
                    progress(n * 2)
                })
            })
        };
        let rb = hb
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("verification thread panicked")));
        (ra, rb)
    });
    let a_lines = ra?;
    rb?;
    progress(len);
    let b_link = b.first_link.clone();
    let b_lead = b.lead_pending.take();
    let b_has_events = b.report.events > 0;
    let a_report = a.finish_at(!b_has_events, !b_has_events);
    let b_report = b.finish(true);
    Ok(join_halves(a_report, b_report, b_link, b_lead, a_lines))
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

fn join_halves(
    a: VerifyReport,
    b: VerifyReport,
    b_link: Option<(String, u64, u64)>,
    b_lead: Option<BadEvent>,
    a_lines: u64,
) -> VerifyReport {
    let mut out = VerifyReport {
        events: a.events + b.events,
        ..VerifyReport::default()
    };
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
    out.first_bad = b.first_bad.map(|mut bad| {
        bad.index += a.events;
        bad.line += a_lines;
        bad
    });
    out.tail_hash = b.tail_hash;
    out
}
