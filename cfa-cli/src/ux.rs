//! What every command shares beyond its own flags (docs/cli.md#conventions): the
//! global `--ascii` / `--unicode` flags that choose the symbols of human output (the
//! table itself is in `out`), and errors as one JSON object, `{"error": {...}}`, on
//! stdout when the command was asked for `--format json`. Commands never decide
//! either themselves; `main` parses through [`parse`] and reports errors through
//! [`report_error`].

use crate::input::{FileError, LocatedError};
use clap::{ArgMatches, Args};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when the command asked for `--format json`: errors are then JSON on stdout too.
static JSON_ERRORS: AtomicBool = AtomicBool::new(false);

/// The global symbol flags (every command takes them).
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Plain ASCII symbols (`[OK]`, `[XX]`, `+--+`) even on a terminal; the default
    /// when stdout is not a terminal.
    #[arg(
        long,
        global = true,
        conflicts_with = "unicode",
        hide_short_help = true
    )]
    pub ascii: bool,
    /// Unicode symbols (✓, ✗, box lines) even when stdout is not a terminal (also
    /// `CFA_UNICODE=1`).
    #[arg(long, global = true, hide_short_help = true)]
    pub unicode: bool,
}

impl UiArgs {
    /// Applies the flags to this process's output (`crate::out::configure`).
    pub fn apply(&self) {
        crate::out::configure(crate::out::SymbolRequest {
            ascii: self.ascii,
            unicode: self.unicode,
        });
    }
}

/// True when errors are rendered as JSON on stdout (the command has `--format json`).
pub fn json_errors() -> bool {
    JSON_ERRORS.load(Ordering::Relaxed)
}

/// Parses the process arguments into `C`, noting whether the leaf command asked for
/// `--format json`. A usage error with `--format json` among the arguments prints
/// `{"error": {..., "code": "usage"}}` on stdout before clap's own message; the exit
/// code stays clap's (2; 0 for `--help` and `--version`).
pub fn parse<C: clap::Parser>() -> C {
    let raw: Vec<OsString> = std::env::args_os().collect();
    match C::command().try_get_matches_from(&raw) {
        Ok(matches) => {
            JSON_ERRORS.store(leaf_wants_json(&matches), Ordering::Relaxed);
            match C::from_arg_matches(&matches) {
                Ok(cli) => cli,
                Err(e) => clap_exit(e, &raw),
            }
        }
        Err(e) => clap_exit(e, &raw),
    }
}

fn clap_exit(e: clap::Error, raw: &[OsString]) -> ! {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !informational && args_want_json(raw) {
        let rendered = e.render().to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        outln!("{}", error_value(message, None, "usage"));
        let _ = crate::out::finish();
    }
    e.exit()
}

/// The value of the leaf subcommand's `format` argument is `json`.
fn leaf_wants_json(matches: &ArgMatches) -> bool {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m.try_get_raw("format")
        .ok()
        .flatten()
        .is_some_and(|mut values| values.any(|v| v == "json"))
}

/// `-f json`, `--format json`, `--format=json` or `-fjson` among raw arguments (for
/// usage errors, where clap gives no matches).
pub fn args_want_json(raw: &[OsString]) -> bool {
    let args: Vec<&str> = raw.iter().filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().any(|(i, a)| {
        matches!(*a, "--format=json" | "-fjson" | "-f=json")
            || (matches!(*a, "-f" | "--format") && args.get(i + 1) == Some(&"json"))
    })
}

/// Where an error is, when it is in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPlace {
    /// The file as the user named it (`-` for standard input).
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (characters), when known.
    pub column: Option<usize>,
}

/// `{"error": {"message", "path", "line", "column", "code"}}`; absent parts are null.
pub fn error_value(message: &str, place: Option<&ErrorPlace>, code: &str) -> Value {
    json!({"error": {
        "message": message,
        "path": place.map(|p| p.path.clone()),
        "line": place.and_then(|p| p.line),
        "column": place.and_then(|p| p.column),
        "code": code,
    }})
}

/// The JSON form of an error a command returned: located errors give their file,
/// line and column; read errors their file.
pub fn report_value(report: &miette::Report) -> Value {
    if let Some(located) = report.downcast_ref::<LocatedError>() {
        return error_value(located.detail(), Some(&located.place()), "invalid_input");
    }
    if let Some(file) = report.downcast_ref::<FileError>() {
        let place = ErrorPlace {
            path: file.path.clone(),
            ..ErrorPlace::default()
        };
        return error_value(&file.message, Some(&place), "invalid_input");
    }
    let mut message = report.to_string();
    for cause in report.chain().skip(1) {
        message.push_str(": ");
        message.push_str(&cause.to_string());
    }
    error_value(&message, None, "invalid_input")
}

/// With `--format json`, prints an error found in a file's content (`issues`: the
/// `[{path, message}]` list) as `{"error": {..., "issues"}}` on stdout, for commands
/// that report such errors themselves and return exit 1.
pub fn json_issues_error(message: &str, file: &str, code: &str, issues: Value) {
    if !json_errors() {
        return;
    }
    let place = ErrorPlace {
        path: file.to_owned(),
        ..ErrorPlace::default()
    };
    let mut v = error_value(message, Some(&place), code);
    if let Some(obj) = v.get_mut("error").and_then(Value::as_object_mut) {
        obj.insert("issues".into(), issues);
    }
    outln!("{v}");
}

/// Reports an error a command returned: miette's rendering on stderr, as always, and
/// with `--format json` also its JSON form on stdout.
pub fn report_error(report: &miette::Report) {
    if json_errors() {
        outln!("{}", report_value(report));
    }
    eprintln!("{report:?}");
}

/// Reports a usage error found after parsing (`message`, exit 2): `error: message`
/// on stderr, and with `--format json` also `{"error": {..., "code": "usage"}}` on
/// stdout. Returns the exit code for the command to return.
pub fn usage_error(message: &str) -> std::process::ExitCode {
    if json_errors() {
        outln!("{}", error_value(message, None, "usage"));
    }
    eprintln!("error: {message}");
    crate::exit::USAGE.into()
}

/// [`usage_error`] in clap's layout, then the process exits with 2 (for errors found
/// before any output was written).
pub fn usage_exit(message: &str) -> ! {
    if json_errors() {
        outln!("{}", error_value(message, None, "usage"));
        let _ = crate::out::finish();
    }
    eprintln!("error: {message}\n\nFor more information, try '--help'.");
    std::process::exit(i32::from(crate::exit::USAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn raw_json_requests_in_every_spelling() {
        for args in [
            &["cfa", "x", "-f", "json"][..],
            &["cfa", "x", "--format", "json"],
            &["cfa", "x", "--format=json"],
            &["cfa", "x", "-fjson"],
        ] {
            assert!(args_want_json(&os(args)), "{args:?}");
        }
        assert!(!args_want_json(&os(&["cfa", "x", "-f", "summary"])));
        assert!(!args_want_json(&os(&["cfa", "json"])));
    }

    #[test]
    fn error_values_carry_the_place() {
        let place = ErrorPlace {
            path: "sig.json".into(),
            line: Some(3),
            column: Some(7),
        };
        let v = error_value("bad", Some(&place), "invalid_input");
        assert_eq!(v["error"]["path"], "sig.json");
        assert_eq!(v["error"]["line"], 3);
        assert_eq!(v["error"]["column"], 7);
        let v = error_value("bad", None, "usage");
        assert!(v["error"]["path"].is_null());
        assert_eq!(v["error"]["code"], "usage");
    }
}
