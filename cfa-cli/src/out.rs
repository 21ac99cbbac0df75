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
