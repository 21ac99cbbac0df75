//! Python-compatible JSON text: the one canonical writer behind every hash.
//!
//! The reference system hashes `json.dumps(obj, sort_keys=True)` output (CPython
//! defaults: `", "` / `": "` separators, `ensure_ascii=True`, `repr(float)`), and
//! writes audit JSONL lines with the same settings but without sorting. This module
//! reproduces both byte for byte, plus the compact non-ASCII form used by
//! `hash_governance_artifact` (`separators=(",", ":")`, `ensure_ascii=False`).
//!
//! Keys are sorted here explicitly (by Unicode code point, which for Rust `str` is
//! byte order), so the result never depends on the map type inside
//! [`serde_json::Value`].

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// How a value is rendered: the three forms the reference uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `json.dumps(v, sort_keys=True)`: the form behind `signature_hash` and audit hashes.
    SortedAscii,
    /// `json.dumps(v)`: insertion order, default separators, ASCII escapes (audit JSONL lines).
    InsertionAscii,
    /// `json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`:
    /// the form behind `hash_governance_artifact` (catalog hash).
    SortedCompactUnicode,
}

impl Style {
    fn sorted(self) -> bool {
        !matches!(self, Style::InsertionAscii)
    }
    fn ascii(self) -> bool {
        !matches!(self, Style::SortedCompactUnicode)
    }
    fn item_sep(self) -> &'static str {
        match self {
            Style::SortedCompactUnicode => ",",
            _ => ", ",
        }
    }
    fn key_sep(self) -> &'static str {
        match self {
            Style::SortedCompactUnicode => ":",
            _ => ": ",
        }
    }
}

/// Renders `value` in the given style.
pub fn to_string(value: &Value, style: Style) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value, style);
    out
}

/// `json.dumps(value, sort_keys=True)`: the canonical text that is hashed.
pub fn canonical_string(value: &Value) -> String {
    to_string(value, Style::SortedAscii)
}

/// Lowercase hex SHA-256 of the canonical text of `value`.
pub fn canonical_sha256(value: &Value) -> String {
    sha256_hex(canonical_string(value).as_bytes())
}

/// `hash_governance_artifact(data)` of the reference: SHA-256 of the compact, sorted,
/// non-ASCII-escaped JSON text (used for the catalog hash).
pub fn governance_artifact_hash(value: &Value) -> String {
    sha256_hex(to_string(value, Style::SortedCompactUnicode).as_bytes())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut hex = [0u8; 64];
    hex_lower_into(&Sha256::digest(bytes), &mut hex);
    ascii_string(&hex)
}

/// Lowercase hex digits, indexed by nibble.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The lowercase hex digit of the low nibble of `n`.
fn hex_digit(n: u8) -> u8 {
    HEX_DIGITS
        .get(usize::from(n & 0x0f))
        .copied()
        .unwrap_or(b'0')
}

/// Writes the lowercase hex of `bytes` into the front of `out` (two bytes per input
/// byte, as many as fit) and returns how many bytes of `out` were written.
pub fn hex_lower_into(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    // One lookup of both digits a byte (two nibble lookups cost ~17 instructions a
    // byte, on every event hash).
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        if let ([hi, lo], Some([h, l])) = (pair, HEX_PAIRS.get(usize::from(*b))) {
            *hi = *h;
            *lo = *l;
            n += 2;
        }
    }
    n
}

/// The two lowercase hex digits of every byte.
static HEX_PAIRS: [[u8; 2]; 256] = hex_pairs();

// Evaluated at compile time only (for the static), where an out-of-bounds index would
// be a build error, never a runtime panic.
#[allow(clippy::indexing_slicing)]
const fn hex_pairs() -> [[u8; 2]; 256] {
    let digits = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [digits[b >> 4], digits[b & 0x0f]];
        b += 1;
    }
    t
}

/// `bytes` (ASCII by construction) as a `String`.
fn ascii_string(bytes: &[u8]) -> String {
    std::str::from_utf8(bytes).unwrap_or_default().to_owned()
}

/// Lowercase hex of `bytes` (a table lookup per nibble; `hex::encode` goes through a
/// char iterator and shows up in kernel profiles).
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(hex_digit(b >> 4)));
        out.push(char::from(hex_digit(*b)));
    }
    out
}

/// Appends `value` to `out` in the given style.
pub fn write_value(out: &mut String, value: &Value, style: Style) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s, style.ascii()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_sep());
                }
                write_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            if style.sorted() {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                write_entries(out, entries.into_iter(), style);
            } else {
                write_entries(out, map.iter(), style);
            }
            out.push('}');
        }
    }
}

fn write_entries<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    style: Style,
) {
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push_str(style.item_sep());
        }
        write_str(out, k, style.ascii());
        out.push_str(style.key_sep());
        write_value(out, v, style);
    }
}

/// Writes a JSON number the way Python does: ints as ints, floats as `repr(float)`.
pub fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        write_i64(out, i);
    } else if let Some(u) = n.as_u64() {
        write_u64(out, u);
    } else if let Some(f) = n.as_f64() {
        write_py_float(out, f);
    } else {
        // Unreachable without serde_json's arbitrary_precision; keep the text as is.
        out.push_str(&n.to_string());
    }
}

/// Appends the decimal digits of `u` (what `{u}` formats, without the formatter).
fn write_u64(out: &mut String, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            // `u % 10` < 10, so the cast keeps every bit.
            *slot = b'0' + (u % 10) as u8;
        }
        u /= 10;
        if u == 0 || at == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(buf.get(at..).unwrap_or_default()).unwrap_or_default());
}

/// Appends `i` in decimal (what `{i}` formats).
fn write_i64(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    write_u64(out, i.unsigned_abs());
}

/// Writes `s` as a JSON string literal with Python's escaping rules.
///
/// With `ascii`, every char outside U+0020..U+007E is escaped (lowercase `\uXXXX`,
/// surrogate pairs above U+FFFF, DEL included); otherwise only `"`, `\` and control
/// characters below U+0020 are.
pub fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Copy each run that needs no escaping in one go (plain ASCII text is the common
    // case), escaping only the characters between runs. A run always ends on a char
    // boundary: it stops at an ASCII byte or, with `ascii`, at a UTF-8 lead byte.
    let mut rest = s;
    loop {
        let plain = plain_run(rest.as_bytes(), ascii);
        let (head, tail) = rest.split_at_checked(plain).unwrap_or(("", rest));
        out.push_str(head);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else { break };
        write_escaped_char(out, c, ascii);
        rest = chars.as_str();
    }
    out.push('"');
}

/// `true` when `s` needs no escaping, so that its JSON text is `s` between quotes
/// (what [`write_str`] would write, checked eight bytes at a time).
pub fn is_plain(s: &str, ascii: bool) -> bool {
    plain_run(s.as_bytes(), ascii) == s.len()
}

/// `0x01` in every byte of a word.
const LOW_BITS: u64 = u64::from_ne_bytes([0x01; 8]);
/// `0x80` in every byte of a word.
const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The high bit of each byte of `w` that is below `n` (exact for "any byte", `n` ≤
/// 0x80; a byte above a hit may be flagged too, which [`plain_run`] never relies on).
const fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LOW_BITS.wrapping_mul(n as u64)) & !w & HIGH_BITS
}

/// The high bit of each byte of `w` equal to `b` (same caveat as [`bytes_below`]).
const fn bytes_equal(w: u64, b: u8) -> u64 {
    bytes_below(w ^ LOW_BITS.wrapping_mul(b as u64), 1)
}

/// The high bit set in each byte of `w` that ends a plain run, and possibly in some
/// that do not (a carry or borrow can flag a byte above a real hit): a word with no
/// bit set holds no stop, a word with one is rescanned byte by byte.
fn escape_hits(w: u64, ascii: bool) -> u64 {
    let hits = bytes_below(w, 0x20) | bytes_equal(w, b'"') | bytes_equal(w, b'\\');
    if ascii {
        // 0x7f and up: the high bit, or the high bit once one is added (0x7f only;
        // the carry out of an 0xff byte lands above a byte that is flagged anyway).
        hits | ((w | w.wrapping_add(LOW_BITS)) & HIGH_BITS)
    } else {
        hits
    }
}

/// How many leading bytes of `bytes` need no escaping: sixteen bytes (two words) at
/// a time, then byte by byte through the table from the first pair that holds a stop.
fn plain_run(bytes: &[u8], ascii: bool) -> usize {
    let table = if ascii {
        &ESCAPE_ASCII
    } else {
        &ESCAPE_UNICODE
    };
    let stops = |b: &u8| table.get(usize::from(*b)).copied().unwrap_or(true);
    let mut pairs = bytes.chunks_exact(16);
    let mut at = 0;
    for pair in pairs.by_ref() {
        let (Some(lo), Some(hi)) = (pair.first_chunk::<8>(), pair.last_chunk::<8>()) else {
            break;
        };
        let hits = escape_hits(u64::from_le_bytes(*lo), ascii)
            | escape_hits(u64::from_le_bytes(*hi), ascii);
        if hits != 0 {
            return at + pair.iter().position(stops).unwrap_or(pair.len());
        }
        at += 16;
    }
    let rest = pairs.remainder();
    if let Some(lo) = rest.first_chunk::<8>()
        && escape_hits(u64::from_le_bytes(*lo), ascii) == 0
    {
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    // Fewer than eight bytes left (the end of most keys, ids and hashes): the last
    // eight bytes as one word, overlapping bytes already known to need no escaping,
    // instead of a lookup per byte.
    if rest.len() < 8
        && let Some(last) = bytes.last_chunk::<8>()
        && escape_hits(u64::from_le_bytes(*last), ascii) == 0
    {
        return bytes.len();
    }
    at + rest.iter().position(stops).unwrap_or(rest.len())
}

/// Bytes that end a plain run: control characters, `"` and `\\`, and with
/// `ensure_ascii` everything from 0x7f up.
// Evaluated at compile time only (for the two statics), where an out-of-bounds index
// would be a build error, never a runtime panic; `get_mut` is not const yet.
#[allow(clippy::indexing_slicing)]
const fn escape_table(ascii: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || (ascii && b >= 0x7f);
        b += 1;
    }
    t
}

static ESCAPE_ASCII: [bool; 256] = escape_table(true);
static ESCAPE_UNICODE: [bool; 256] = escape_table(false);

/// Appends `\uXXXX` (lowercase hex) for one UTF-16 code unit.
fn write_u_escape(out: &mut String, unit: u16) {
    let [hi, lo] = unit.to_be_bytes();
    let text = [
        b'\\',
        b'u',
        hex_digit(hi >> 4),
        hex_digit(hi),
        hex_digit(lo >> 4),
        hex_digit(lo),
    ];
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// One character that needs escaping (or, outside the fast path, any character).
fn write_escaped_char(out: &mut String, c: char, ascii: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 || (ascii && (c as u32) >= 0x7f) => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                write_u_escape(out, *unit);
            }
        }
        c => out.push(c),
    }
}

/// A fixed stack buffer that `write!` can fill (float formatting without a heap
/// `String`); writing past its end is an error, never a panic.
struct StackText {
    buf: [u8; 48],
    len: usize,
}

impl StackText {
    const fn new() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Powers of ten for [`write_short_decimal`], and the magnitude below which a value
/// with that many decimals is handled there: `2^50 / 10^k`, so that one unit in the
/// last place of the value is at most a quarter of `10^-k`.
const SHORT_DECIMALS: [(f64, f64); 4] = [
    (10.0, TWO_POW_50 / 10.0),
    (100.0, TWO_POW_50 / 100.0),
    (1_000.0, TWO_POW_50 / 1_000.0),
    (10_000.0, TWO_POW_50 / 10_000.0),
];

/// 2^50.
const TWO_POW_50: f64 = 1_125_899_906_842_624.0;

/// Writes `x` (finite, not integral) when it is `m / 10^k` for an integer `m` and
/// `k` ≤ 4 decimals, like `4000.5` or `0.25`, and returns whether it did.
///
/// Why this is `repr(x)`: `m / 10^k` is divided exactly rounded (both are exact
/// doubles), so when it equals `x` the text `m·10^-k` reads back as `x`. Below the
/// magnitude bound one ulp of `x` is under a quarter of `10^-k`, so for every `j` ≤ `k`
/// at most one `j`-decimal text reads back as `x`, the nearest one, which is what
/// `round(x·10^j)` finds; trying `k` = 1, 2, … therefore stops at the shortest text,
/// the one `repr` prints, and it is unique, so there is no tie to break. Such values
/// lie in [1e-4, 1e16), where `repr` is positional.
fn write_short_decimal(out: &mut String, x: f64) -> bool {
    let abs = x.abs();
    for (scale, limit) in &SHORT_DECIMALS {
        if abs >= *limit {
            return false;
        }
        let m = (abs * scale).round();
        if m / scale != abs {
            continue;
        }
        // m < 2^50, exact in a u64.
        let m = m as u64;
        let scale = *scale as u64;
        if x < 0.0 {
            out.push('-');
        }
        write_u64(out, m / scale);
        out.push('.');
        let frac = m % scale;
        // Leading zeros of the k + 1 decimals.
        let mut pad = scale / 10;
        while pad > 1 && frac < pad {
            out.push('0');
            pad /= 10;
        }
        write_u64(out, frac);
        return true;
    }
    false
}

/// Python `repr(float)`: the shortest text that round-trips, positional for
/// exponents in [-4, 16), scientific (`1e-05`, `1e+16`) otherwise, integral values
/// keeping `.0`. NaN and infinities render as Python's `NaN`, `Infinity`, `-Infinity`.
pub fn py_float_repr(x: f64) -> String {
    let mut out = String::with_capacity(24);
    write_py_float(&mut out, x);
    out
}

/// Appends [`py_float_repr`] of `x` to `out`.
pub fn write_py_float(out: &mut String, x: f64) {
    if x.is_nan() {
        return out.push_str("NaN");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    if x == 0.0 {
        return out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
    }
    // Integral values below 1e16 are positional: their integer digits and `.0`.
    // (Every such value is exact in an i64, so the cast is lossless.)
    if x.fract() == 0.0 && x.abs() < 1e16 {
        write_i64(out, x as i64);
        return out.push_str(".0");
    }
    if write_short_decimal(out, x) {
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digit count, but on exact ties it may
    // pick a different digit string than CPython; re-render with that many digits,
    // which rounds ties to even like CPython's repr.
    let mut shortest = StackText::new();
    let mut rendered = StackText::new();
    if write!(shortest, "{x:e}").is_err() {
        return out.push_str(&x.to_string());
    }
    let mantissa = shortest.as_str().split('e').next().unwrap_or("");
    let ndigits = mantissa.bytes().filter(u8::is_ascii_digit).count().max(1);
    if write!(rendered, "{:.*e}", ndigits - 1, x).is_err() {
        return out.push_str(&x.to_string());
    }
    let rendered = rendered.as_str();
    let (mant, exp) = rendered.split_once('e').unwrap_or((rendered, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    // The digits without the point: the first one, then the ones after it.
    let (lead, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let ndigits = lead.len() + frac.len();
    let decpt = exp + 1;
    if neg {
        out.push('-');
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(lead);
            out.push_str(frac);
        } else {
            let d = decpt.unsigned_abs() as usize;
            if d >= ndigits {
                out.push_str(lead);
                out.push_str(frac);
                for _ in 0..(d - ndigits) {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                // `lead` is one digit and d < ndigits, so d - 1 < frac.len().
                let (int_part, frac_part) = frac.split_at_checked(d - 1).unwrap_or((frac, ""));
                out.push_str(lead);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac_part);
            }
        }
    } else {
        out.push_str(lead);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        write_u64(out, u64::from(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The escaping rules written out char by char with `format!` (the writer
    /// before its word-at-a-time scan), the oracle for [`write_str`].
    fn reference_str(s: &str, ascii: bool) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if ascii && (c as u32) >= 0x7f => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// `repr(float)` as first written (heap strings throughout), the oracle for
    /// [`write_py_float`] and its integral fast path.
    fn reference_float(x: f64) -> String {
        if x.is_nan() {
            return "NaN".into();
        }
        if x.is_infinite() {
            return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
        }
        if x == 0.0 {
            return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
        }
        let shortest = format!("{x:e}");
        let mantissa = shortest.split('e').next().unwrap_or("");
        let ndigits = mantissa.chars().filter(char::is_ascii_digit).count().max(1);
        let rendered = format!("{:.*e}", ndigits - 1, x);
        let (mant, exp) = rendered.split_once('e').unwrap_or((rendered.as_str(), "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (neg, mant) = match mant.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, mant),
        };
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        let decpt = exp + 1;
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if decpt > -4 && decpt <= 16 {
            if decpt <= 0 {
                out.push_str("0.");
                for _ in 0..(-decpt) {
                    out.push('0');
                }
                out.push_str(&digits);
            } else {
                let d = decpt as usize;
                if d >= digits.len() {
                    out.push_str(&digits);
                    for _ in 0..(d - digits.len()) {
                        out.push('0');
                    }
                    out.push_str(".0");
                } else {
                    let (int_part, frac_part) = digits.split_at(d);
                    out.push_str(int_part);
                    out.push('.');
                    out.push_str(frac_part);
                }
            }
        } else {
            let mut chars = digits.chars();
            if let Some(first) = chars.next() {
                out.push(first);
            }
            let rest: String = chars.collect();
            if !rest.is_empty() {
                out.push('.');
                out.push_str(&rest);
            }
            let sign = if exp < 0 { '-' } else { '+' };
            out.push_str(&format!("e{sign}{:02}", exp.unsigned_abs()));
        }
        out
    }

    fn written(s: &str, ascii: bool) -> String {
        let mut out = String::new();
        write_str(&mut out, s, ascii);
        out
    }

    /// Strings mixing long plain runs with every kind of byte that stops one, at
    /// every offset inside a word.
    fn tricky_strings() -> Vec<String> {
        let specials = [
            "\"",
            "\\",
            "\n",
            "\r",
            "\t",
            "\u{8}",
            "\u{c}",
            "\u{0}",
            "\u{1f}",
            " ",
            "~",
            "\u{7f}",
            "\u{80}",
            "é",
            "—",
            "\u{ffff}",
            "😀",
            "\u{10ffff}",
            "/",
            "a",
        ];
        let mut out = vec![String::new()];
        for sp in specials {
            for pre in 0..17 {
                for post in [0, 1, 7, 8, 9] {
                    out.push(format!("{}{sp}{}", "x".repeat(pre), "y".repeat(post)));
                }
            }
        }
        out
    }

    #[test]
    fn word_scan_escapes_like_the_char_by_char_rules() {
        for s in tricky_strings() {
            for ascii in [true, false] {
                assert_eq!(written(&s, ascii), reference_str(&s, ascii), "{s:?}");
            }
        }
        for s in tricky_strings() {
            for ascii in [true, false] {
                assert_eq!(
                    is_plain(&s, ascii),
                    written(&s, ascii) == format!("\"{s}\""),
                    "{s:?}"
                );
            }
        }
        // Appending keeps what the buffer already holds.
        let mut out = String::from("ab");
        write_str(&mut out, "c\u{e9}", true);
        assert_eq!(out, "ab\"c\\u00e9\"");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn any_string_escapes_like_the_char_by_char_rules(s in ".{0,40}", ascii: bool) {
            proptest::prop_assert_eq!(written(&s, ascii), reference_str(&s, ascii));
        }

        #[test]
        fn any_float_renders_like_the_heap_version(bits: u64) {
            let x = f64::from_bits(bits);
            proptest::prop_assert_eq!(py_float_repr(x), reference_float(x));
        }

        #[test]
        fn integral_floats_render_like_the_heap_version(i in -20_000_000_000_000_000i64..20_000_000_000_000_000) {
            let x = i as f64;
            proptest::prop_assert_eq!(py_float_repr(x), reference_float(x));
            let small = (i % 100_000) as f64 / 8.0;
            proptest::prop_assert_eq!(py_float_repr(small), reference_float(small));
        }

        #[test]
        fn short_decimals_render_like_the_heap_version(
            m in -2_000_000_000_000_000i64..2_000_000_000_000_000,
            k in 0u32..7,
            small in -100_000i64..100_000,
        ) {
            for x in [m as f64 / 10f64.powi(k as i32), small as f64 / 10f64.powi(k as i32)] {
                proptest::prop_assert_eq!(py_float_repr(x), reference_float(x), "{:?}", x);
            }
        }

        #[test]
        fn integers_render_like_the_formatter(i: i64, u: u64) {
            let mut out = String::new();
            write_number(&mut out, &Number::from(i));
            write_number(&mut out, &Number::from(u));
            proptest::prop_assert_eq!(out, format!("{i}{u}"));
        }
    }

    #[test]
    fn number_edges() {
        for i in [0, 1, -1, 9, 10, -10, i64::MIN, i64::MAX] {
            let mut out = String::new();
            write_number(&mut out, &Number::from(i));
            assert_eq!(out, i.to_string());
        }
        let mut out = String::new();
        write_number(&mut out, &Number::from(u64::MAX));
        assert_eq!(out, u64::MAX.to_string());
        for x in [
            1e16,
            9.999999999999998e15,
            -9.999999999999998e15,
            1e15,
            123.0,
            -7.0,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-4,
            9.99e-5,
            2f64.powi(53),
            f64::NAN,
            -f64::INFINITY,
        ] {
            assert_eq!(py_float_repr(x), reference_float(x), "{x:?}");
        }
        assert_eq!(sha256_hex(b""), hex_lower(&Sha256::digest(b"")));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut buf = [0u8; 3];
        assert_eq!(hex_lower_into(&[0xab, 0xcd], &mut buf), 2);
        assert_eq!(&buf, b"ab\0");
    }

    #[test]
    fn hex_lower_into_writes_every_byte_as_format_does() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = vec![0u8; 512];
        assert_eq!(hex_lower_into(&bytes, &mut out), 512);
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        assert_eq!(hex_lower(&bytes), want);
        // An odd-sized output takes whole pairs only.
        let mut odd = [b'.'; 5];
        assert_eq!(hex_lower_into(&[0x01, 0xfe, 0x7f], &mut odd), 4);
        assert_eq!(&odd, b"01fe.");
    }

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (4000.0, "4000.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e-5, "1e-05"),
            (2.5e-8, "2.5e-08"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (0.0001, "0.0001"),
            (1000000000000000.0, "1000000000000000.0"),
            (0.30000000000000004, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (911139851783826.2, "911139851783826.2"),
            (0.5, "0.5"),
            (-20.25, "-20.25"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float_repr(*x), *want, "repr of {x:?}");
        }
    }

    #[test]
    fn reference_audit_vector() {
        let v = json!({"intent_id":"i","stage":"s","event_type":"e","outcome":"ok",
            "timestamp":"2026-01-01T00:00:00+00:00","previous_hash":"",
            "details":{"b":1.5,"a":"é—","z":[1,null,true]}});
        assert_eq!(
            canonical_string(&v),
            r#"{"details": {"a": "\u00e9\u2014", "b": 1.5, "z": [1, null, true]}, "event_type": "e", "intent_id": "i", "outcome": "ok", "previous_hash": "", "stage": "s", "timestamp": "2026-01-01T00:00:00+00:00"}"#
        );
        assert_eq!(
            canonical_sha256(&v),
            "3b69998684daee0e632ea8bc5f8c513797582da3414f9748653ff1b7f0ab3f6e"
        );
    }

    #[test]
    fn artifact_vector() {
        let v = json!({"b":1.5,"a":"é—"});
        assert_eq!(
            to_string(&v, Style::SortedCompactUnicode),
            r#"{"a":"é—","b":1.5}"#
        );
        assert_eq!(
            governance_artifact_hash(&v),
            "cb8c1f1bad935154b874cd3b4e66161a4281a9fabc136f57417abce66f1f4f58"
        );
    }

    #[test]
    fn astral_and_control_escapes() {
        let v = json!({"🚀": "\u{7f}\u{1}/", "\u{ff61}": 1});
        assert_eq!(
            canonical_string(&v),
            r#"{"\uff61": 1, "\ud83d\ude80": "\u007f\u0001/"}"#
        );
    }

    #[test]
    fn insertion_order_is_kept_for_jsonl() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": [2.0, -0.0]}"#).unwrap();
        assert_eq!(
            to_string(&v, Style::InsertionAscii),
            r#"{"b": 1, "a": [2.0, -0.0]}"#
        );
    }
}
