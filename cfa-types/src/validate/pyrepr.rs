//! Python `repr()` / `str()` of JSON values, for messages the reference builds with
//! f-strings (e.g. `sorted(set)` of PII columns, or a catalog value that is not a string).

use super::py_printable::NON_PRINTABLE;
use crate::canonical::py_float_repr;
use serde_json::{Number, Value};
use std::fmt::Write as _;

/// True when Python's `str.isprintable()` holds for `c`.
pub fn py_is_printable(c: char) -> bool {
    let cp = c as u32;
    let idx = NON_PRINTABLE.partition_point(|&(first, _)| first <= cp);
    match idx.checked_sub(1).and_then(|i| NON_PRINTABLE.get(i)) {
        Some(&(_, last)) => cp > last,
        None => true,
    }
}

/// Appends Python's `repr(s)` of a `str`: single quotes, or double quotes when `s`
/// contains `'` and no `"`; backslash, the quote, `\t`, `\n`, `\r` and every
/// non-printable char escaped (`\xhh`, `\uhhhh`, `\Uhhhhhhhh`).
pub fn write_py_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02x}")
                } else if cp < 0x1_0000 {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// Python `repr(s)` of one `str`.
pub fn py_str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_py_str_repr(&mut out, s);
    out
}

/// Python `repr(list_of_str)`, e.g. `['cpf', "o'neil"]`.
pub fn py_list_repr(items: &[&str]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|s| s.len() + 4).sum::<usize>());
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_py_str_repr(&mut out, s);
    }
    out.push(']');
    out
}

fn write_py_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&py_float_repr(f));
    }
}

/// Appends Python's `repr()` of the value `json.loads` would give for `v`
/// (`None`, `True`, `{'a': [1, 2.0]}`).
pub fn write_py_repr(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => write_py_number(out, n),
        Value::String(s) => write_py_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_str_repr(out, k);
                out.push_str(": ");
                write_py_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Python `str()` of the value `json.loads` would give for `v`: a string is itself,
/// anything else is its `repr()`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_py_repr(&mut out, other);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_repr_quotes_and_escapes() {
        assert_eq!(py_list_repr(&[]), "[]");
        assert_eq!(py_list_repr(&["cpf", "email"]), "['cpf', 'email']");
        assert_eq!(py_list_repr(&["o'neil"]), "[\"o'neil\"]");
        assert_eq!(py_list_repr(&["a'b\"c"]), "['a\\'b\"c']");
        assert_eq!(
            py_list_repr(&["\\\t\u{7f}\u{ad}\u{e9}\u{2028}\u{1f680}\u{e0001}"]),
            "['\\\\\\t\\x7f\\xad\u{e9}\\u2028\u{1f680}\\U000e0001']"
        );
    }

    #[test]
    fn printable_table_edges() {
        assert!(py_is_printable(' '));
        assert!(!py_is_printable('\u{0}'));
        assert!(!py_is_printable('\u{a0}'));
        assert!(py_is_printable('\u{a1}'));
        assert!(!py_is_printable('\u{10ffff}'));
        assert!(!py_is_printable('\u{378}'));
        assert!(py_is_printable('\u{37a}'));
    }

    #[test]
    fn value_str_and_repr() {
        assert_eq!(py_str(&json!("silver")), "silver");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(4000.0)), "4000.0");
        assert_eq!(
            py_str(&json!({"a": [1, -0.0, "x"], "b": false})),
            "{'a': [1, -0.0, 'x'], 'b': False}"
        );
    }
}
