//! Reading user files: every error names the file and, where the format allows, the
//! line and column, and renders the offending line with miette.

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A file read into memory, kept for error rendering.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// An error located in a user's file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct LocatedError {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
}

/// An I/O or input error without a location.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
pub struct PlainError(pub String);

impl SourceFile {
    /// Reads `path`; the error names the file and the OS reason.
    pub fn read(path: &Path) -> Result<SourceFile, PlainError> {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Ok(SourceFile {
                    path: path.to_path_buf(),
                    text,
                }),
                Err(e) => Err(PlainError(format!(
                    "{} is not valid UTF-8 (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ))),
            },
            Err(e) => Err(PlainError(format!(
                "cannot read {}: {}",
                path.display(),
                io_reason(&e)
            ))),
        }
    }

    /// The display name used in messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// True when the file name ends in `.yaml` or `.yml`.
    pub fn is_yaml(&self) -> bool {
        matches!(
            self.path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("yaml" | "yml")
        )
    }

    /// Byte offset of a 1-based line and column (columns count characters).
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let col = column.saturating_sub(1);
                return offset + l.char_indices().nth(col).map_or(l.len(), |(b, _)| b);
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// An error at `line:column`, rendered with the offending line. The message
    /// itself starts with `file:line:column` so it is useful without the snippet.
    pub fn error_at(
        &self,
        line: usize,
        column: usize,
        message: &str,
        label: &str,
    ) -> miette::Report {
        let offset = self.offset(line, column);
        miette::Report::new(LocatedError {
            message: format!("{}:{line}:{column}: {message}", self.name()),
            src: NamedSource::new(self.name(), self.text.clone()),
            span: SourceSpan::from((offset, 0)),
            label: label.to_owned(),
        })
    }

    /// Parses the file as JSON; a syntax error carries its line and column.
    pub fn parse_json(&self) -> Result<Value, miette::Report> {
        serde_json::from_str(&self.text).map_err(|e| {
            let msg = format!("invalid JSON: {e}");
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.clone(), |(m, _)| m.to_owned());
            self.error_at(e.line(), e.column(), &msg, "here")
        })
    }
}

/// The OS error text without Rust's "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rsplit_once(" (os error") {
        Some((head, _)) => head.to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_file_line_and_column() {
        let f = SourceFile {
            path: "sig.json".into(),
            text: "{\n  \"a\": 1,\n  oops\n}".into(),
        };
        let err = f.parse_json().unwrap_err();
        assert!(
            err.to_string().starts_with("sig.json:3:3: invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn offsets_count_characters() {
        let f = SourceFile {
            path: "x".into(),
            text: "ção\nab".into(),
        };
        assert_eq!(f.offset(1, 2), "ç".len());
        assert_eq!(f.offset(2, 2), "ção\n".len() + 1);
        assert_eq!(f.offset(9, 1), f.text.len());
    }
}
