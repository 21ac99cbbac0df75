//! Injected identifiers and timestamps: the kernel never invents an id or reads a clock.

use cfa_audit::Clock;
use cfa_audit::time::isoformat_utc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an id is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// The id of one processed intent (`KernelResult::intent_id`, the signature's
    /// `intent_id`, every audit event's `intent_id`).
    Intent,
    /// The id of the decision taken on it.
    Decision,
    /// The id of an approval ticket the control plane opens for a held decision.
    Ticket,
}

/// A source of ids. Must be thread-safe: one kernel serves many threads.
pub trait IdSource: Send + Sync {
    /// The next id of `kind`.
    fn next_id(&self, kind: IdKind) -> String;
}

/// Random UUID v4 ids (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidIds;

impl IdSource for UuidIds {
    fn next_id(&self, _kind: IdKind) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// Sequential ids `intent-000001`, `decision-000001`, … (tests, the demo).
#[derive(Debug, Default)]
pub struct SequentialIds {
    intents: AtomicU64,
    decisions: AtomicU64,
    tickets: AtomicU64,
}

impl SequentialIds {
    /// Counters starting at 1.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self, kind: IdKind) -> String {
        let (prefix, counter) = match kind {
            IdKind::Intent => ("intent", &self.intents),
            IdKind::Decision => ("decision", &self.decisions),
            IdKind::Ticket => ("ticket", &self.tickets),
        };
        let n = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        sequential_id(prefix, n)
    }
}

/// `{prefix}-{n:06}` (at least six digits, zero-padded), written without the formatter.
fn sequential_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // A decimal digit: `rest % 10` is below 10.
            *d = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(digits.len() - 6);
    let mut id = String::with_capacity(prefix.len() + 1 + digits.len() - start);
    id.push_str(prefix);
    id.push('-');
    for d in digits.get(start..).unwrap_or_default() {
        id.push(char::from(*d));
    }
    id
}

/// A deterministic clock: starts at a UNIX time and advances one millisecond per
/// reading, so timestamps are ordered, distinct and identical from run to run.
#[derive(Debug)]
pub struct TickClock {
    start_secs: i64,
    ticks: AtomicU64,
}

impl TickClock {
    /// A clock starting at `start_secs` (UNIX seconds, UTC).
    pub fn new(start_secs: i64) -> Self {
        TickClock {
            start_secs,
            ticks: AtomicU64::new(0),
        }
    }
}

impl Clock for TickClock {
    fn now_isoformat(&self) -> String {
        let t = self.ticks.fetch_add(1, Ordering::Relaxed);
        let secs = i64::try_from(t / 1000).unwrap_or(i64::MAX);
        let micros = u32::try_from((t % 1000) * 1000).unwrap_or(0);
        isoformat_utc(self.start_secs.saturating_add(secs), micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_count_per_kind() {
        let ids = SequentialIds::new();
        assert_eq!(ids.next_id(IdKind::Intent), "intent-000001");
        assert_eq!(ids.next_id(IdKind::Intent), "intent-000002");
        assert_eq!(ids.next_id(IdKind::Decision), "decision-000001");
    }

    #[test]
    fn sequential_id_is_the_zero_padded_format() {
        for n in [0, 1, 9, 10, 999_999, 1_000_000, 123_456_789, u64::MAX] {
            assert_eq!(sequential_id("intent", n), format!("intent-{n:06}"));
        }
    }

    #[test]
    fn tick_clock_advances_one_millisecond() {
        let c = TickClock::new(1_700_000_000);
        assert_eq!(c.now_isoformat(), "2023-11-14T22:13:20+00:00");
        assert_eq!(c.now_isoformat(), "2023-11-14T22:13:20.001000+00:00");
    }

    #[test]
    fn uuid_ids_differ() {
        assert_ne!(
            UuidIds.next_id(IdKind::Intent),
            UuidIds.next_id(IdKind::Intent)
        );
    }
}
