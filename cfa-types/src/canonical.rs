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
    hex_lower(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes` (a table lookup per nibble; `hex::encode` goes through a
/// char iterator and shows up in kernel profiles).
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
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
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&py_float_repr(f));
    } else {
        // Unreachable without serde_json's arbitrary_precision; keep the text as is.
        out.push_str(&n.to_string());
    }
}

/// Writes `s` as a JSON string literal with Python's escaping rules.
///
/// With `ascii`, every char outside U+0020..U+007E is escaped (lowercase `\uXXXX`,
/// surrogate pairs above U+FFFF, DEL included); otherwise only `"`, `\` and control
/// characters below U+0020 are.
pub fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    // Copy each run that needs no escaping in one go (plain ASCII text is the common
    // case), escaping only the characters between runs. A run always ends on a char
    // boundary: it stops at an ASCII byte or, with `ascii`, at a UTF-8 lead byte.
    let table = if ascii {
        &ESCAPE_ASCII
    } else {
        &ESCAPE_UNICODE
    };
    let mut rest = s;
    loop {
        let plain = rest
            .bytes()
            .position(|b| table.get(usize::from(b)).copied().unwrap_or(true))
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at_checked(plain).unwrap_or(("", rest));
        out.push_str(head);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else { break };
        write_escaped_char(out, c, ascii);
        rest = chars.as_str();
    }
    out.push('"');
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
        c if (c as u32) < 0x20 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c if ascii && (c as u32) >= 0x7f => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
        c => out.push(c),
    }
}

/// Python `repr(float)`: the shortest text that round-trips, positional for
/// exponents in [-4, 16), scientific (`1e-05`, `1e+16`) otherwise, integral values
/// keeping `.0`. NaN and infinities render as Python's `NaN`, `Infinity`, `-Infinity`.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digit count, but on exact ties it may
    // pick a different digit string than CPython; re-render with that many digits,
    // which rounds ties to even like CPython's repr.
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
    let mut out = String::with_capacity(24);
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
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
