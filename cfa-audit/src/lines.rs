//! How the reference's reader cuts a JSONL log into events, on raw bytes.
//!
//! The reference reads a log as `read_text().strip().splitlines()`, skips empty
//! lines and hands every other line to `json.loads`. Three different character sets
//! are at work there, and each one is mirrored here:
//!
//! - **line breaks** (`str.splitlines`): `\n`, `\r`, `\r\n`, VT, FF, U+001C..U+001E,
//!   U+0085, U+2028, U+2029;
//! - **whitespace** stripped from both ends of the whole file (`str.strip`, i.e.
//!   `str.isspace`): the line breaks above plus TAB, space, U+001F, U+00A0, U+1680,
//!   U+2000..U+200A, U+202F, U+205F, U+3000;
//! - **JSON whitespace** that `json.loads` accepts around a document: only space and
//!   TAB once the line is cut (CR and LF are line breaks).
//!
//! So a line in the middle of the log may be padded with spaces and tabs only, a line
//! made of spaces is not blank (it is a JSON error), and Unicode padding (NBSP, U+3000,
//! U+001F, …) is only harmless before the first event and after the last one, where
//! the whole-file strip removes it. A UTF-8 byte order mark is not whitespace.

/// Byte length of the Python whitespace character that starts `b`, if any.
fn space_at(b: &[u8]) -> Option<usize> {
    match *b {
        [0x09..=0x0d | 0x1c..=0x20, ..] => Some(1),
        [0xc2, 0x85 | 0xa0, ..] => Some(2),
        [0xe1, 0x9a, 0x80, ..]
        | [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..]
        | [0xe2, 0x81, 0x9f, ..]
        | [0xe3, 0x80, 0x80, ..] => Some(3),
        _ => None,
    }
}

/// Byte length of the Python whitespace character that ends `b`, if any.
fn space_before(b: &[u8]) -> Option<usize> {
    (1..=3usize).find(|&k| {
        b.len()
            .checked_sub(k)
            .and_then(|at| b.get(at..))
            .is_some_and(|s| space_at(s) == Some(k))
    })
}

/// `true` for every byte sequence that `str.isspace` accepts (the empty one included).
pub fn is_space_only(mut b: &[u8]) -> bool {
    while let Some(n) = space_at(b) {
        b = b.get(n..).unwrap_or_default();
    }
    b.is_empty()
}

/// `line` without the Python whitespace at its start.
pub fn lstrip(mut b: &[u8]) -> &[u8] {
    while let Some(n) = space_at(b) {
        b = b.get(n..).unwrap_or_default();
    }
    b
}

/// `line` without the Python whitespace at its end.
pub fn rstrip(mut b: &[u8]) -> &[u8] {
    while let Some(n) = space_before(b) {
        b = b.get(..b.len() - n).unwrap_or_default();
    }
    b
}

/// The first character of `b` as `U+XXXX` (for messages), or the byte in hex.
pub fn describe_char(b: &[u8]) -> String {
    let len = match b.first() {
        Some(0xc0..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf7) => 4,
        _ => 1,
    };
    match b.get(..len).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => s
            .chars()
            .next()
            .map_or_else(String::new, |c| format!("U+{:04X}", u32::from(c))),
        None => b
            .first()
            .map_or_else(String::new, |x| format!("byte 0x{x:02x}")),
    }
}

/// A byte that may start a line break other than `\n` (see [`line_end`]).
fn is_break_start(b: u8) -> bool {
    (b.wrapping_sub(0x0b) < 3) | (b.wrapping_sub(0x1c) < 3) | (b == 0xc2) | (b == 0xe2)
}

/// `true` when `seg` holds a byte for which [`is_break_start`] holds.
fn has_break_start(seg: &[u8]) -> bool {
    let mut chunks = seg.chunks_exact(32);
    for c in &mut chunks {
        if c.iter().fold(0u8, |m, &b| m | u8::from(is_break_start(b))) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| is_break_start(b))
}

/// The end of the line that starts at `pos` and where the next one starts:
/// `str.splitlines` on UTF-8 bytes (`\r\n` is one break).
pub fn line_end(buf: &[u8], pos: usize) -> (usize, usize) {
    let rest = buf.get(pos..).unwrap_or_default();
    let nl = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let seg = rest.get(..nl).unwrap_or_default();
    // Almost every line has none of the bytes that can start another break: test the
    // segment for them first, 32 bytes at a time without branches (vectorised), and
    // look for the first one only when there is one.
    let maybe_break = has_break_start(seg);
    if maybe_break
        && let Some(first) = seg
            .iter()
            .position(|b| matches!(b, 0x0b..=0x0d | 0x1c..=0x1e | 0xc2 | 0xe2))
    {
        let mut j = first;
        while let Some(&b) = seg.get(j) {
            match b {
                0x0b | 0x0c | 0x1c..=0x1e => return (pos + j, pos + j + 1),
                0x0d => {
                    let skip = if rest.get(j + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    return (pos + j, pos + j + skip);
                }
                0xc2 if seg.get(j + 1) == Some(&0x85) => return (pos + j, pos + j + 2),
                0xe2 if seg.get(j + 1) == Some(&0x80)
                    && matches!(seg.get(j + 2), Some(0xa8 | 0xa9)) =>
                {
                    return (pos + j, pos + j + 3);
                }
                _ => j += 1,
            }
        }
    }
    if nl < rest.len() {
        (pos + nl, pos + nl + 1)
    } else {
        (buf.len(), buf.len())
    }
}

/// `true` when `b` ends in a line break.
pub fn ends_with_break(b: &[u8]) -> bool {
    matches!(
        b,
        [.., 0x0a..=0x0d | 0x1c..=0x1e] | [.., 0xc2, 0x85] | [.., 0xe2, 0x80, 0xa8 | 0xa9]
    )
}

/// Start of the line that contains byte `end - 1` of `b` (just after the previous
/// line break), or `None` when no break precedes it within `b`.
pub fn line_start_before(b: &[u8], end: usize) -> Option<usize> {
    let mut i = end;
    while i > 0 {
        i -= 1;
        match b.get(i) {
            Some(0x0a | 0x0b | 0x0c | 0x0d | 0x1c..=0x1e) => return Some(i + 1),
            Some(0x85) if i >= 1 && b.get(i - 1) == Some(&0xc2) => return Some(i + 1),
            Some(0xa8 | 0xa9)
                if i >= 2 && b.get(i - 1) == Some(&0x80) && b.get(i - 2) == Some(&0xe2) =>
            {
                return Some(i + 1);
            }
            _ => {}
        }
    }
    None
}

/// How one non-empty line looks to the reference's reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape<'a> {
    /// Only whitespace: dropped before the first event and after the last one, a JSON
    /// error anywhere in between.
    SpaceOnly,
    /// A line with content. `core` has the Python whitespace of both ends removed.
    Content {
        /// The text to parse.
        core: &'a [u8],
        /// Offset of `core` in the line.
        core_start: usize,
        /// Leading whitespace that `json.loads` does not accept (only allowed on the
        /// log's first event): the offending character.
        bad_lead: Option<&'a [u8]>,
        /// Trailing whitespace that `json.loads` does not accept (only allowed on the
        /// log's last event).
        bad_trail: Option<&'a [u8]>,
    },
}

/// Classifies a non-empty line.
pub fn shape(line: &[u8]) -> Shape<'_> {
    let left = lstrip(line);
    if left.is_empty() {
        return Shape::SpaceOnly;
    }
    let core = rstrip(left);
    let core_start = line.len() - left.len();
    let lead = line.get(..core_start).unwrap_or_default();
    let trail = line.get(core_start + core.len()..).unwrap_or_default();
    let json_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let bad_lead = lead
        .iter()
        .position(|b| !json_ws(b))
        .and_then(|i| lead.get(i..));
    let bad_trail = trail
        .iter()
        .position(|b| !json_ws(b))
        .and_then(|i| trail.get(i..));
    Shape::Content {
        core,
        core_start,
        bad_lead,
        bad_trail,
    }
}

/// Receives `(line, offset, core)` for each event line; breaks to stop.
pub type EventLineVisitor<'a> = dyn FnMut(u64, u64, &[u8]) -> std::ops::ControlFlow<()> + 'a;

/// Streams the lines with content of a log in order: `visit(line, offset, core)` gets
/// the 1-based line number, the byte offset of the line and its text without the
/// surrounding whitespace. Empty and whitespace-only lines are skipped.
pub fn for_each_event_line<R: std::io::BufRead>(
    mut reader: R,
    visit: &mut EventLineVisitor<'_>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let (mut line, mut offset) = (0u64, 0u64);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let mut pos = 0usize;
        while pos < buf.len() {
            let (end, next) = line_end(&buf, pos);
            line += 1;
            let raw = buf.get(pos..end).unwrap_or_default();
            if let Shape::Content { core, .. } = shape(raw)
                && !raw.is_empty()
                && visit(line, offset + pos as u64, core).is_break()
            {
                return Ok(());
            }
            pos = next;
        }
        offset += buf.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < b.len() {
            let (end, next) = line_end(b, pos);
            out.push(&s[pos..end]);
            pos = next;
        }
        out
    }

    #[test]
    fn splitlines_like_python() {
        // Python: 'a\nb\r\nc\rd\x0be\x0cf\x1cg\x1dh\x1ei\x85j\u2028k\u2029l'.splitlines()
        let s = "a\nb\r\nc\rd\u{b}e\u{c}f\u{1c}g\u{1d}h\u{1e}i\u{85}j\u{2028}k\u{2029}l";
        assert_eq!(
            split(s),
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
        );
        // '\x1f', NBSP and U+3000 are whitespace but not line breaks.
        assert_eq!(
            split("a\u{1f}\u{a0}\u{3000}b\n"),
            ["a\u{1f}\u{a0}\u{3000}b"]
        );
        assert_eq!(split("a\n\nb\r\n\r\n"), ["a", "", "b", ""]);
    }

    #[test]
    fn strip_like_python() {
        let all = "\t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f} \u{85}\u{a0}\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";
        assert!(is_space_only(all.as_bytes()));
        assert!(!is_space_only("\u{feff}".as_bytes()));
        assert!(!is_space_only("\u{200b}".as_bytes()));
        let padded = format!("{all}x{all}");
        assert_eq!(lstrip(padded.as_bytes()), format!("x{all}").as_bytes());
        assert_eq!(rstrip(padded.as_bytes()), format!("{all}x").as_bytes());
        assert_eq!(describe_char("\u{a0}".as_bytes()), "U+00A0");
    }
}
