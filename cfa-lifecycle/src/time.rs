//! Timestamps: Python-compatible ISO text for stored values, and lenient parsing where a
//! timestamp without an offset is UTC (docs/differences.md#b13-smaller-fixes).

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `2026-01-05T10:00:00+00:00` (Python `datetime.isoformat()` of an aware UTC value;
/// microseconds only when non-zero): cfa-types' [`cfa_types::time::isoformat_utc`]
/// of `ts`.
pub fn isoformat(ts: Timestamp) -> String {
    // jiff splits a pre-1970 instant into a truncated second and a negative fraction.
    let (mut secs, mut nanos) = (ts.as_second(), ts.subsec_nanosecond());
    if nanos < 0 {
        secs = secs.saturating_sub(1);
        nanos = nanos.saturating_add(1_000_000_000);
    }
    let micros = u32::try_from(nanos / 1000).unwrap_or(0);
    cfa_types::time::isoformat_utc(secs, micros)
}

/// Parses an ISO date or date-time; without an offset it is UTC (B13). Accepts a space
/// or `T` between date and time (SQLite's `datetime('now')` form too).
pub fn parse(text: &str) -> Option<Timestamp> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>() {
        return d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    None
}

/// `ts - days`, saturating at the minimum timestamp.
pub fn minus_days(ts: Timestamp, days: u32) -> Timestamp {
    let secs = i64::from(days).saturating_mul(86_400);
    ts.checked_sub(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_is_utc_and_format_round_trips() {
        let a = parse("2026-01-05T10:00:00").unwrap();
        let b = parse("2026-01-05T10:00:00+00:00").unwrap();
        let c = parse("2026-01-05 10:00:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(isoformat(a), "2026-01-05T10:00:00+00:00");
        assert_eq!(parse("2026-01-05T12:00:00+02:00"), Some(a));
        assert_eq!(
            isoformat(parse("2026-01-05T10:00:00.5Z").unwrap()),
            "2026-01-05T10:00:00.500000+00:00"
        );
        assert_eq!(parse("2026-01-05"), parse("2026-01-05T00:00:00Z"));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(isoformat(minus_days(a, 2)), "2026-01-03T10:00:00+00:00");
        let before_epoch = parse("1969-12-31T23:59:59.25Z").unwrap();
        assert_eq!(isoformat(before_epoch), "1969-12-31T23:59:59.250000+00:00");
    }
}
