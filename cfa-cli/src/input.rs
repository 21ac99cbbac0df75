//! Reading user files: every error names the file and, where the format allows, the
//! line and column, and renders the offending line with miette. A path of `-` reads
//! standard input, once per process (docs/cli.md#standard-input).

use miette::{Diagnostic, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
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
    src: Excerpt,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    /// The message without its `file:line:column: ` prefix.
    detail: String,
    /// The file's display name.
    file: String,
}

impl LocatedError {
    /// The message without the location in front.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The file and the 1-based line and column.
    pub fn place(&self) -> crate::ux::ErrorPlace {
        crate::ux::ErrorPlace {
            path: self.file.clone(),
            line: Some(self.src.line + 1),
            column: Some(self.src.column + 1),
        }
    }
}

/// A file that could not be read (missing, unreadable, not UTF-8, or a second `-`).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct FileError {
    /// The file as the user named it.
    pub path: String,
    /// What went wrong, naming the file.
    pub message: String,
}

/// The path that means standard input.
pub const STDIN: &str = "-";

/// Set once standard input has been read as a file.
static STDIN_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True when `path` is `-` (standard input).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// Reads all of standard input, refusing a second read in the same process (two
/// flags given `-` would otherwise see one of them empty).
pub fn read_stdin_bytes() -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    use std::sync::atomic::Ordering;
    let fail = |message: String| FileError {
        path: STDIN.into(),
        message,
    };
    if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(fail(
            "standard input (-) was already read by another flag: only one flag per command can read -"
                .into(),
        ));
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read standard input: {}", io_reason(&e))))?;
    Ok(bytes)
}

/// Opens `path` for reading line by line (standard input for `-`, taken once like
/// [`read_stdin_bytes`]), for streams that need not fit in memory.
pub fn open_lines(path: &Path) -> Result<Box<dyn std::io::BufRead>, FileError> {
    use std::sync::atomic::Ordering;
    if is_stdin(path) {
        if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
            return Err(FileError {
                path: STDIN.into(),
                message: "standard input (-) was already read by another flag: only one flag per command can read -".into(),
            });
        }
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    match std::fs::File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => Err(FileError {
            path: path.display().to_string(),
            message: format!("cannot read {}: it is a directory", path.display()),
        }),
        Ok(f) => Ok(Box::new(std::io::BufReader::new(f))),
        Err(e) => Err(FileError {
            path: path.display().to_string(),
            message: format!("cannot read {}: {}", path.display(), io_reason(&e)),
        }),
    }
}

/// Reads a whole text file, or standard input for `-`; `what` names it in errors
/// (`cannot read checkpoint x.note: …`).
pub fn read_text(path: &Path, what: &str) -> Result<String, FileError> {
    let bytes = if is_stdin(path) {
        read_stdin_bytes()?
    } else {
        std::fs::read(path).map_err(|e| FileError {
            path: path.display().to_string(),
            message: format!("cannot read {what} {}: {e}", path.display()),
        })?
    };
    String::from_utf8(bytes).map_err(|e| FileError {
        path: path.display().to_string(),
        message: format!(
            "{what} {} is not valid UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Lines no longer than this many characters are shown whole in an error snippet.
const WHOLE_LINE_CHARS: usize = 120;
/// Characters shown on each side of the error column when a line is longer.
const WINDOW_CHARS: usize = 50;
/// Longest message (in characters) an error carries; the rest is cut with an ellipsis.
const MESSAGE_CHARS: usize = 400;

/// The few lines around an error, each cut to a window around the error column, so
/// that an error in a huge (or one-line) file renders fast and small. miette reads
/// it as a source whose first line is `first_line`; the header names the real
/// position in the file.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// 0-based line number of the excerpt's first line in the file.
    first_line: usize,
    /// 0-based character column where every excerpt line's window starts.
    first_column: usize,
    /// 0-based line and character column of the error in the file.
    line: usize,
    column: usize,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if context_lines_before == 0 && context_lines_after == 0 {
            // The reference point miette prints in the snippet header.
            let at = span.offset().min(self.text.len());
            let data = self.text.as_bytes().get(at..at).unwrap_or_default();
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                data,
                SourceSpan::from((at, 0)),
                self.line,
                self.column,
                1,
            )));
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            SourceSpan::from((0, self.text.len())),
            self.first_line,
            self.first_column,
            self.text.lines().count().max(1),
        )))
    }
}

/// Cuts `line` to characters `[start, start + width)`, with an ellipsis where text
/// was left out (on the left only when `clipped_left`, so that cut lines stay
/// aligned); a line that ends before `start` shows nothing.
fn window(line: &str, start: usize, width: usize, clipped_left: bool) -> String {
    let mut out = String::new();
    let total = line.chars().count();
    if total <= start {
        // Nothing of this line falls in the window.
        return out;
    }
    if clipped_left {
        out.push('…');
    }
    out.extend(line.chars().skip(start).take(width));
    if total > start + width {
        out.push('…');
    }
    out
}

/// `message` cut to [`MESSAGE_CHARS`] characters, so that a message quoting a huge
/// value (a megabyte-long key, say) stays readable and small.
pub fn clip_message(message: &str) -> String {
    if message.chars().count() <= MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut m: String = message.chars().take(MESSAGE_CHARS).collect();
    m.push('…');
    m
}

/// An I/O or input error without a location.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
pub struct PlainError(pub String);

impl SourceFile {
    /// Reads `path` (standard input for `-`); the error names the file and the OS reason.
    pub fn read(path: &Path) -> Result<SourceFile, FileError> {
        let fail = |message: String| FileError {
            path: path.display().to_string(),
            message,
        };
        let bytes = if is_stdin(path) {
            read_stdin_bytes()?
        } else {
            std::fs::read(path)
                .map_err(|e| fail(format!("cannot read {}: {}", path.display(), io_reason(&e))))?
        };
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => Err(fail(format!(
                "{} is not valid UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))),
        }
    }

    /// True when the text came from standard input (`-`).
    pub fn is_stdin(&self) -> bool {
        is_stdin(&self.path)
    }

    /// The display name used in messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// True when the file name ends in `.yaml` or `.yml`; for standard input, when
    /// the text does not start with `{` or `[` (JSON is also YAML, but its errors read
    /// better from the JSON parser).
    pub fn is_yaml(&self) -> bool {
        if self.is_stdin() {
            return !self.text.trim_start().starts_with(['{', '[']);
        }
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
    #[cfg_attr(not(test), allow(dead_code))]
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

    /// An error at `line:column` (1-based; columns count characters), rendered with
    /// a window of the offending line and its neighbours. The message itself starts
    /// with `file:line:column` so it is useful without the snippet.
    pub fn error_at(
        &self,
        line: usize,
        column: usize,
        message: &str,
        label: &str,
    ) -> miette::Report {
        let line = line.max(1);
        let column = column.max(1);
        let line0 = line - 1;
        let col0 = column - 1;
        let first_line = line0.saturating_sub(1);
        let lines: Vec<&str> = self
            .text
            .split('\n')
            .skip(first_line)
            .take(line0 - first_line + 2)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let long = lines
            .iter()
            .any(|l| l.len() > WHOLE_LINE_CHARS && l.chars().count() > WHOLE_LINE_CHARS);
        let (start, width) = if long {
            (col0.saturating_sub(WINDOW_CHARS), 2 * WINDOW_CHARS)
        } else {
            (0, WHOLE_LINE_CHARS + 1)
        };
        let clipped_left = start > 0;
        let mut text = String::new();
        let mut offset = 0;
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            if first_line + i == line0 {
                let prefix = if clipped_left && l.chars().count() > start {
                    '…'.len_utf8()
                } else {
                    0
                };
                let before: usize = l
                    .chars()
                    .skip(start)
                    .take(col0.saturating_sub(start))
                    .map(char::len_utf8)
                    .sum();
                offset = text.len() + prefix + before;
            }
            text.push_str(&window(l, start, width, clipped_left));
        }
        miette::Report::new(LocatedError {
            message: format!("{}:{line}:{column}: {}", self.name(), clip_message(message)),
            detail: clip_message(message),
            file: self.name(),
            src: Excerpt {
                name: self.name(),
                text,
                first_line,
                first_column: start,
                line: line0,
                column: col0,
            },
            span: SourceSpan::from((offset, 0)),
            label: label.to_owned(),
        })
    }

    /// Parses the file as JSON; a syntax error carries its line and column.
    pub fn parse_json(&self) -> Result<Value, miette::Report> {
        serde_json::from_str(&self.text).map_err(|e| {
            let info = cfa::types::json_error::describe(&self.text, &e);
            self.error_at(
                info.line,
                info.column,
                &format!("invalid JSON: {}", info.message),
                "here",
            )
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
    fn long_lines_render_a_window_around_the_error() {
        let f = SourceFile {
            path: "wide.json".into(),
            text: format!("{{\"a\":{}x}}\n", " ".repeat(70_000)),
        };
        let err = f.parse_json().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("wide.json:1:70006: invalid JSON"),
            "{err}"
        );
        let rendered = format!("{err:?}");
        assert!(rendered.len() < 2000, "{} bytes", rendered.len());
        assert!(rendered.contains('…'), "{rendered}");
        assert!(rendered.contains("x}"), "{rendered}");
    }

    #[test]
    fn short_lines_render_whole_with_their_neighbours() {
        let f = SourceFile {
            path: "s.json".into(),
            text: "{\n  \"a\": 1,\n  oops\n}".into(),
        };
        let rendered = format!("{:?}", f.parse_json().unwrap_err());
        assert!(rendered.contains("\"a\": 1,"), "{rendered}");
        assert!(rendered.contains("  oops"), "{rendered}");
        assert!(!rendered.contains('…'), "{rendered}");
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
