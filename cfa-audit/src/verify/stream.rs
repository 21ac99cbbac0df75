//! One segment of a JSONL stream, read in bounded chunks: lines are cut and checked
//! (in parallel over halves of a chunk), then fed in order into a [`ChainState`].

use super::VerifyOptions;
use super::chain::{ChainState, LineCheck, LineKind};
use super::check::{check_fast, check_line};
use super::report::VerifyReport;
use crate::fastline;
use crate::lines::{self, Shape};
use std::io::Read;

/// Checks every non-empty line of `slice` (which starts at file offset `base`) and
/// hands each result to `each`, in order; returns the number of physical lines.
fn scan_lines<'a>(
    slice: &'a [u8],
    base: u64,
    intent: Option<&str>,
    scratch: &mut fastline::Scratch,
    mut each: impl FnMut(LineCheck<'a>),
) -> u64 {
    let mut line = 0u64;
    let mut pos = 0usize;
    while pos < slice.len() {
        // The common line: an event in the reference's layout right at `pos`, ended by
        // `\n`, that verifies. The fast parse finds where it ends (it accepts no byte
        // that could break or pad a line), so the line is not scanned a second time to
        // be cut and stripped; anything else is cut and checked as below.
        if let Some(rest) = slice.get(pos..)
            && rest.first() == Some(&b'{')
            && let Some((f, n)) = fastline::parse_prefix(rest, scratch)
            && rest.get(n) == Some(&b'\n')
            && let Some(c) = check_fast(f, intent, scratch)
        {
            each(LineCheck {
                line,
                offset: base + pos as u64,
                kind: LineKind::Content {
                    result: Ok(c),
                    bad_lead: None,
                    bad_trail: None,
                    terminated: true,
                },
            });
            line += 1;
            pos += n + 1;
            continue;
        }
        let (end, next) = lines::line_end(slice, pos);
        let raw = slice.get(pos..end).unwrap_or_default();
        if !raw.is_empty() {
            let kind = match lines::shape(raw) {
                Shape::SpaceOnly => LineKind::SpaceOnly,
                Shape::Content {
                    core,
                    bad_lead,
                    bad_trail,
                    ..
                } => LineKind::Content {
                    result: check_line(core, intent, scratch),
                    bad_lead: bad_lead.map(lines::describe_char),
                    bad_trail: bad_trail.map(lines::describe_char),
                    terminated: next > end,
                },
            };
            each(LineCheck {
                line,
                offset: base + pos as u64,
                kind,
            });
        }
        line += 1;
        pos = next;
    }
    line
}

/// Checks every non-empty line of `slice` (which starts at file offset `base`).
fn check_lines<'a>(slice: &'a [u8], base: u64, intent: Option<&str>) -> (Vec<LineCheck<'a>>, u64) {
    let mut out = Vec::with_capacity(slice.len() / 400 + 1);
    let mut scratch = fastline::Scratch::default();
    let lines = scan_lines(slice, base, intent, &mut scratch, |lc| out.push(lc));
    (out, lines)
}

/// Counts events (lines with content) and lines (used once the chain is known to be broken).
fn count_lines(slice: &[u8]) -> (u64, u64) {
    let (mut events, mut count) = (0u64, 0u64);
    let mut pos = 0usize;
    while pos < slice.len() {
        let (end, next) = lines::line_end(slice, pos);
        count += 1;
        if !lines::is_space_only(slice.get(pos..end).unwrap_or_default()) {
            events += 1;
        }
        pos = next;
    }
    (events, count)
}

/// The read chunk when each chunk is checked in two halves on two threads.
const CHUNK: usize = 4 << 20;
/// The read window of a part checked on one thread: small enough that the bytes are
/// still in the core's cache when they are parsed and hashed, and that few fresh pages
/// are touched.
const WINDOW: usize = 512 << 10;
const PARALLEL_MIN: usize = 256 << 10;

/// Verifies a JSONL stream in one pass. `progress` receives the bytes consumed so far.
pub fn verify_reader(
    reader: impl Read,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<VerifyReport> {
    let mut st = ChainState::new(opts);
    let threads = if opts.threads == 0 { 2 } else { opts.threads };
    run_segment(
        reader,
        &mut st,
        0,
        opts.intent_id.as_deref(),
        threads,
        progress,
    )?;
    Ok(st.finish(true))
}

/// Feeds every line of `reader` (starting at file offset `base`) into `st`, in chunks;
/// returns the number of physical lines read.
///
/// The chunks are read straight into one buffer that is allocated once and reused:
/// one `read(2)` per chunk, no copy other than the kernel's and the few bytes of a
/// line cut by the chunk's end, which move to the buffer's start.
pub(super) fn run_segment(
    mut reader: impl Read,
    st: &mut ChainState,
    base: u64,
    intent: Option<&str>,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<u64> {
    let chunk = if threads > 1 { CHUNK } else { WINDOW };
    let mut buf: Vec<u8> = vec![0; chunk];
    let mut filled = 0usize;
    let mut scratch = fastline::Scratch::default();
    let mut base = base;
    let mut line_base = 0u64;
    let mut target = chunk;
    let mut eof = false;
    loop {
        if buf.len() < target {
            buf.resize(target, 0);
        }
        while !eof && filled < target {
            let Some(room) = buf.get_mut(filled..target) else {
                break;
            };
            match reader.read(room) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let data = buf.get(..filled).unwrap_or_default();
        let end = if eof {
            filled
        } else {
            match memchr::memrchr(b'\n', data) {
                Some(i) => i + 1,
                None => {
                    target = target.saturating_mul(2);
                    continue;
                }
            }
        };
        target = chunk;
        let region = data.get(..end).unwrap_or_default();
        if st.broken() {
            let (events, lines) = count_lines(region);
            for _ in 0..events {
                st.skip();
            }
            line_base += lines;
        } else if threads > 1 && region.len() >= PARALLEL_MIN {
            let mid = region.len() / 2;
            let split = memchr::memchr(b'\n', region.get(mid..).unwrap_or_default())
                .map_or(region.len(), |i| mid + i + 1);
            let (a, b) = region.split_at(split);
            let ((ra, la), (rb, lb)) = std::thread::scope(|s| {
                let hb = s.spawn(|| check_lines(b, base + split as u64, intent));
                let first = check_lines(a, base, intent);
                let second = hb.join().unwrap_or_else(|_| (Vec::new(), 0));
                (first, second)
            });
            for lc in ra {
                st.feed_check(line_base + lc.line + 1, lc);
            }
            for lc in rb {
                st.feed_check(line_base + la + lc.line + 1, lc);
            }
            line_base += la + lb;
        } else {
            // One thread: each line is fed as soon as it is checked, while its bytes
            // are still in cache.
            let first = line_base + 1;
            line_base += scan_lines(region, base, intent, &mut scratch, |lc| {
                st.feed_check(first + lc.line, lc);
            });
        }
        buf.copy_within(end..filled, 0);
        filled -= end;
        base += end as u64;
        progress(base);
        if eof {
            break;
        }
    }
    Ok(line_base)
}
