//! Injected timestamps in Python `datetime.isoformat()` form (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of event timestamps. The audit chain never reads the clock itself.
pub trait Clock: Send + Sync {
    /// The current time as `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`.
    fn now_isoformat(&self) -> String;
}

/// The system clock (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_isoformat(&self) -> String {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        isoformat_utc(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_micros(),
        )
    }
}

/// A clock that always answers the same timestamp (tests, replays).
#[derive(Debug, Clone)]
pub struct FixedClock(pub String);

impl Clock for FixedClock {
    fn now_isoformat(&self) -> String {
        self.0.clone()
    }
}

pub use cfa_types::time::isoformat_utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_utc_isoformat() {
        assert!(SystemClock.now_isoformat().ends_with("+00:00"));
    }
}
