//! Standard output for every command. `println!` panics when the reader has gone
//! (`cfa rules list | head -1`); here a closed pipe is quiet instead, as in other
//! Unix tools: once a write fails with `BrokenPipe`, the rest of the output is
//! dropped, the command finishes its work (an audit record is still written) and
//! exits with its own code, so a pipeline never turns a block into a success.
//! Any other write error (a full disk) is reported once at the end and exits 1.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has gone; later writes are dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error other than a closed pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

fn record(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
    } else if let Ok(mut slot) = FAILED.lock() {
        if slot.is_none() {
            *slot = Some(crate::input::io_reason(e));
        }
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes `args` to stdout (the `out!` macro).
pub fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        record(&e);
    }
}

/// Writes `args` and a newline to stdout (the `outln!` macro).
pub fn write_line(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        record(&e);
    }
}

/// Writes raw text to stdout.
pub fn write_str(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()) {
        record(&e);
    }
}

/// Flushes stdout now, for output that streams (`cfa audit tail --follow`); false
/// once stdout is closed or a write failed (the error is still reported by
/// [`finish`]).
pub fn flush() -> bool {
    if CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    if let Err(e) = io::stdout().lock().flush() {
        record(&e);
        return false;
    }
    true
}

/// Flushes stdout and returns the write error to report, if any (a closed pipe is
/// not one).
pub fn finish() -> Option<String> {
    if !CLOSED.load(Ordering::Relaxed)
        && let Err(e) = io::stdout().lock().flush()
    {
        record(&e);
    }
    FAILED.lock().ok().and_then(|mut slot| slot.take())
}

// ---------------------------------------------------------------------------
// Symbols and colour (docs/cli.md#symbols-and-colour).
//
// Human output uses Unicode status icons and box lines on a terminal, and the
// reference's pairwise ASCII fallback when stdout is not a terminal or `--ascii` is
// given; `--unicode` or `CFA_UNICODE=1` forces the symbols. Every renderer takes its
// icons from the functions below, so the choice is made once, here. Colour is used only
// when stdout is a terminal and `NO_COLOR` is unset or empty.

/// Set when human output uses plain ASCII (`[OK]`, `+--+`) instead of Unicode.
static ASCII: AtomicBool = AtomicBool::new(false);
/// Set when human output may carry ANSI colour.
static COLOUR: AtomicBool = AtomicBool::new(false);

/// The environment variable that forces Unicode symbols (`CFA_UNICODE=1`).
pub const UNICODE_ENV: &str = "CFA_UNICODE";

/// How the process was asked to render symbols.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SymbolRequest {
    /// `--ascii`: plain ASCII whatever stdout is.
    pub ascii: bool,
    /// `--unicode`: Unicode symbols whatever stdout is.
    pub unicode: bool,
}

/// Whether output is ASCII: `--ascii` wins, then `--unicode` / `CFA_UNICODE=1`, then
/// ASCII exactly when stdout is not a terminal.
pub fn wants_ascii(req: SymbolRequest, unicode_env: Option<&str>, stdout_tty: bool) -> bool {
    if req.ascii {
        return true;
    }
    let forced = req.unicode || unicode_env.is_some_and(|v| !v.is_empty() && v != "0");
    !forced && !stdout_tty
}

/// Whether colour is on: only on a terminal, never when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>).
pub fn wants_colour(no_color_env: Option<&str>, stdout_tty: bool) -> bool {
    stdout_tty && no_color_env.is_none_or(str::is_empty)
}

/// Chooses symbols and colour for this process from `req`, the environment and
/// whether stdout is a terminal (called once by `main`).
pub fn configure(req: SymbolRequest) {
    use std::io::IsTerminal;
    let tty = io::stdout().is_terminal();
    let unicode_env = std::env::var(UNICODE_ENV).ok();
    let no_color = std::env::var("NO_COLOR").ok();
    ASCII.store(
        wants_ascii(req, unicode_env.as_deref(), tty),
        Ordering::Relaxed,
    );
    COLOUR.store(wants_colour(no_color.as_deref(), tty), Ordering::Relaxed);
}

/// True when human output is plain ASCII.
pub fn ascii() -> bool {
    ASCII.load(Ordering::Relaxed)
}

/// `unicode`, or `ascii` in ASCII mode.
fn pick(unicode: &'static str, ascii: &'static str) -> &'static str {
    if self::ascii() { ascii } else { unicode }
}

/// ✓ / `[OK]`: approved, passed, intact.
pub fn icon_ok() -> &'static str {
    pick("✓", "[OK]")
}
/// ⚠ / `[!!]`: approved with warnings.
pub fn icon_warn() -> &'static str {
    pick("⚠", "[!!]")
}
/// ✗ / `[XX]`: blocked, failed, broken.
pub fn icon_fail() -> &'static str {
    pick("✗", "[XX]")
}
/// ↻ / `[>>]`: replanned.
pub fn icon_replan() -> &'static str {
    pick("↻", "[>>]")
}
/// ↩ / `[<<]`: rolled back.
pub fn icon_rollback() -> &'static str {
    pick("↩", "[<<]")
}
/// ⊘ / `[??]`: quarantined.
pub fn icon_quarantine() -> &'static str {
    pick("⊘", "[??]")
}
/// ◐ / `[~]`: partially committed, degraded.
pub fn icon_partial() -> &'static str {
    pick("◐", "[~]")
}
/// ★ / `[**]`: promotion candidate.
pub fn icon_star() -> &'static str {
    pick("★", "[**]")
}
/// → / `->`: "becomes" in one-line summaries (`mock → published`).
pub fn arrow() -> &'static str {
    pick("→", "->")
}
/// — / `-`: the dash between a heading and its details.
pub fn dash() -> &'static str {
    pick("—", "-")
}
/// ─ / `-`: a horizontal box line.
pub fn box_horizontal() -> &'static str {
    pick("─", "-")
}
/// │ / `|`: a vertical box line.
pub fn box_vertical() -> &'static str {
    pick("│", "|")
}
/// ┌ / `+`.
pub fn box_top_left() -> &'static str {
    pick("┌", "+")
}
/// ┐ / `+`.
pub fn box_top_right() -> &'static str {
    pick("┐", "+")
}
/// └ / `+`.
pub fn box_bottom_left() -> &'static str {
    pick("└", "+")
}
/// ┘ / `+`.
pub fn box_bottom_right() -> &'static str {
    pick("┘", "+")
}

/// The colour of a status word or icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Approved, intact.
    Good,
    /// Warnings, replans, partial outcomes.
    Caution,
    /// Blocked, broken, failed.
    Bad,
}

/// `text` in `tone`'s colour when colour is on, else `text` unchanged.
pub fn paint(text: &str, tone: Tone) -> String {
    if !COLOUR.load(Ordering::Relaxed) {
        return text.to_owned();
    }
    let colour = match tone {
        Tone::Good => anstyle::AnsiColor::Green,
        Tone::Caution => anstyle::AnsiColor::Yellow,
        Tone::Bad => anstyle::AnsiColor::Red,
    };
    let style = anstyle::Style::new().fg_color(Some(colour.into())).bold();
    format!("{style}{text}{style:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_when_not_a_terminal_unless_forced() {
        let none = SymbolRequest::default();
        assert!(wants_ascii(none, None, false));
        assert!(!wants_ascii(none, None, true));
        assert!(!wants_ascii(none, Some("1"), false));
        assert!(wants_ascii(none, Some("0"), false));
        assert!(wants_ascii(none, Some(""), false));
        let unicode = SymbolRequest {
            unicode: true,
            ..none
        };
        assert!(!wants_ascii(unicode, None, false));
        let ascii = SymbolRequest {
            ascii: true,
            ..none
        };
        assert!(wants_ascii(ascii, Some("1"), true));
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(wants_colour(None, true));
        assert!(wants_colour(Some(""), true));
        assert!(!wants_colour(Some("1"), true));
        assert!(!wants_colour(None, false));
    }
}
