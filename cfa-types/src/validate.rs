//! Strict structural validation with the reference's issue paths (docs/compatibility.md#signature-validation,
//! docs/compatibility.md#bundle-validation, docs/compatibility.md#catalog). This module holds the shared vocabulary ([`Issue`] and the Python
//! value predicates every validator uses), the signature and catalog validators, the
//! signature-against-catalog cross-check, the strict parse path
//! ([`StateSignature::parse_validated`](crate::StateSignature::parse_validated)) and
//! Python `repr` helpers for messages.

use serde_json::Value;
use std::fmt;

mod catalog_check;
mod fast;
mod parse;
mod py_printable;
mod pyrepr;
mod sig;

pub use catalog_check::{catalog, cross_check};
pub use fast::{ConstraintFields, ContextFields, DatasetFields, SignatureFields};
pub use parse::{InvalidSignature, JsonSyntaxError, ParseError};
pub use pyrepr::{
    py_is_printable, py_list_repr, py_str, py_str_repr, write_py_repr, write_py_str_repr,
};
pub use sig::{signature, unwrap_signature};

/// One validation problem: a dotted path and a message, rendered `"{path}: {message}"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issue {
    /// Path of the offending value, e.g. `datasets[0].name`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl Issue {
    /// A new issue.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Python `str.isspace()` for one char: Unicode White_Space plus the separators
/// U+001C..U+001F that Python also treats as whitespace (Rust's `char::is_whitespace`
/// does not).
pub fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `str.strip()` with no arguments.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}

/// True when `py_strip(s)` is non-empty. A first byte that is ASCII and not a Python
/// space answers without decoding (the usual name or label); anything else is stripped.
pub(crate) fn has_text(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(&b) if b.is_ascii() && !py_is_space(char::from(b)) => true,
        _ => !py_strip(s).is_empty(),
    }
}

/// True for a string that is non-empty after Python `str.strip()`.
pub fn is_non_empty_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !py_strip(s).is_empty())
}

/// True for a number (never a boolean) that is not below zero; `-0.0` counts.
pub fn is_non_negative_number(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|x| x >= 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_strip_semantics() {
        assert_eq!(py_strip("\u{1c}\u{a0} x \u{3000}\u{85}"), "x");
        assert!(!is_non_empty_str(&json!("\u{1f}\u{2028}\u{2029}")));
        assert!(is_non_empty_str(&json!("\u{feff}")));
        assert!(!is_non_empty_str(&json!(3)));
    }

    #[test]
    fn has_text_is_a_non_empty_strip() {
        let cases = [
            "",
            " ",
            "\t\n",
            "\u{1c}",
            "\u{1f}x",
            " x",
            "x",
            "x ",
            "nfe",
            "\u{a0}",
            "\u{a0}y",
            "\u{3000}\u{85}",
            "\u{feff}",
            "é",
            "\u{2028}\u{2029}",
            "\0",
        ];
        for s in cases {
            assert_eq!(has_text(s), !py_strip(s).is_empty(), "{s:?}");
        }
        for b in 0u8..=127 {
            let s = char::from(b).to_string();
            assert_eq!(has_text(&s), !py_strip(&s).is_empty(), "{b}");
        }
    }

    #[test]
    fn numbers() {
        assert!(is_non_negative_number(&json!(-0.0)));
        assert!(is_non_negative_number(&json!(0)));
        assert!(!is_non_negative_number(&json!(-1e-9)));
        assert!(!is_non_negative_number(&json!(true)));
        assert!(!is_non_negative_number(&json!("1")));
    }
}
