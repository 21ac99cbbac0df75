//! A JSON syntax error in the user's terms: 1-based line and character column (the
//! parser counts bytes, and says column 0 for an error at the start of a line), and a
//! message that names what is wrong in the document rather than in the parser.

/// Where a JSON text stops being JSON, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonErrorInfo {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (never 0).
    pub column: usize,
    /// What is wrong, without the parser's position suffix.
    pub message: String,
}

/// The nesting depth past which serde_json stops (its default recursion limit).
pub const JSON_MAX_DEPTH: usize = 128;

/// Describes `e`, an error from parsing `text` with serde_json.
pub fn describe(text: &str, e: &serde_json::Error) -> JsonErrorInfo {
    let line = e.line().max(1);
    let line_text = nth_line(text, line);
    let byte_col = e.column();
    let column = char_column(line_text, byte_col);
    let raw = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let base = raw.strip_suffix(&suffix).unwrap_or(&raw);
    let message = if base == "recursion limit exceeded" {
        format!("nesting is too deep (more than {JSON_MAX_DEPTH} levels of arrays and objects)")
    } else if let Some(esc) = (base.contains("hex escape") || base.contains("surrogate"))
        .then(|| surrogate_before(line_text, byte_col))
        .flatten()
    {
        format!(
            "unpaired UTF-16 surrogate escape {esc} in a string: a \\uD800-\\uDBFF escape \
             must be followed by a \\uDC00-\\uDFFF escape (JSON text must be valid Unicode)"
        )
    } else {
        base.to_owned()
    };
    JsonErrorInfo {
        line,
        column,
        message,
    }
}

/// The text of 1-based line `line` (without its newline); empty past the end.
fn nth_line(text: &str, line: usize) -> &str {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .map_or("", |l| l.strip_suffix('\r').unwrap_or(l))
}

/// The 1-based character column of the character ending at byte `byte_col` of `line`.
fn char_column(line: &str, byte_col: usize) -> usize {
    let mut end = byte_col.min(line.len());
    while end > 0 && !line.is_char_boundary(end) {
        end -= 1;
    }
    let chars = line.get(..end).map_or(0, |s| s.chars().count());
    // A byte column inside a multi-byte character names that character.
    let partial = usize::from(end < byte_col.min(line.len()));
    (chars + partial).max(1)
}

/// The last `\uXXXX` surrogate escape (D800-DFFF) that starts before byte `end`.
fn surrogate_before(line: &str, end: usize) -> Option<String> {
    let bytes = line.as_bytes();
    let end = end.min(bytes.len());
    let start = end.saturating_sub(16);
    let mut found = None;
    let mut i = start;
    while i + 6 <= bytes.len() && i < end {
        if bytes.get(i) == Some(&b'\\')
            && matches!(bytes.get(i + 1), Some(b'u' | b'U'))
            && let Some(hex) = line.get(i + 2..i + 6)
            && let Ok(cp) = u16::from_str_radix(hex, 16)
            && (0xD800..=0xDFFF).contains(&cp)
        {
            found = Some(format!("\\u{hex}"));
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(text: &str) -> JsonErrorInfo {
        let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        describe(text, &e)
    }

    #[test]
    fn eof_at_line_start_is_column_one() {
        let i = err("{\n");
        assert_eq!((i.line, i.column), (2, 1));
    }

    #[test]
    fn columns_count_characters() {
        let i = err("{\"ção\": x}");
        assert_eq!((i.line, i.column), (1, 9), "{i:?}");
    }

    #[test]
    fn lone_surrogates_are_named() {
        for text in [r#"{"a":"\ud800"}"#, r#"{"a":"\udc00"}"#, r#"["\uD83D x"]"#] {
            let i = err(text);
            assert!(
                i.message.contains("unpaired UTF-16 surrogate"),
                "{text}: {i:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_named() {
        let text = "[".repeat(100_000);
        let i = err(&text);
        assert!(i.message.starts_with("nesting is too deep"), "{i:?}");
    }
}
