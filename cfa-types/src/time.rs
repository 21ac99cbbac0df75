//! The timestamp format of the reference's records: Python's
//! `datetime.fromtimestamp(t, UTC).isoformat()`, written by the audit log and the
//! lifecycle records alike (one implementation for both).
//!
//! ```
//! use cfa_types::time::isoformat_utc;
//!
//! assert_eq!(isoformat_utc(0, 0), "1970-01-01T00:00:00+00:00");
//! assert_eq!(isoformat_utc(1_795_291_377, 918_912), "2026-11-21T20:02:57.918912+00:00");
//! ```

/// Formats a UNIX time like Python's `datetime.fromtimestamp(t, UTC).isoformat()`:
/// the `.ffffff` part is left out when `micros` is 0.
pub fn isoformat_utc(unix_secs: i64, micros: u32) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if !(0..=9999).contains(&y) {
        // Years outside 0..=9999 (no real clock gives them) take the general path.
        return if micros == 0 {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+00:00")
        } else {
            format!(
                "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}+00:00",
                micros % 1_000_000
            )
        };
    }
    // The audit path stamps every event: write the digits directly, two at a time.
    let y = y.unsigned_abs();
    let mut out = String::with_capacity(32);
    push_pair(&mut out, y / 100);
    push_pair(&mut out, y);
    out.push('-');
    push_pair(&mut out, u64::from(m));
    out.push('-');
    push_pair(&mut out, u64::from(d));
    out.push('T');
    push_pair(&mut out, hh.unsigned_abs());
    out.push(':');
    push_pair(&mut out, mm.unsigned_abs());
    out.push(':');
    push_pair(&mut out, ss.unsigned_abs());
    if micros != 0 {
        let us = u64::from(micros % 1_000_000);
        out.push('.');
        push_pair(&mut out, us / 10_000);
        push_pair(&mut out, us / 100);
        push_pair(&mut out, us);
    }
    out.push_str("+00:00");
    out
}

/// `00` to `99`, back to back.
const PAIRS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Appends the last two decimal digits of `n`.
fn push_pair(out: &mut String, n: u64) {
    // `n % 100` is below 100, so the index is at most 198.
    let at = usize::try_from(n % 100).unwrap_or(0) * 2;
    out.push_str(PAIRS.get(at..at + 2).unwrap_or("00"));
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_digits_match_the_general_format() {
        let general = |t: i64, us: u32| {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let (hh, mm, ss) = (secs / 3600, (secs % 3600) / 60, secs % 60);
            if us == 0 {
                format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+00:00")
            } else {
                format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{us:06}+00:00")
            }
        };
        let mut t: i64 = -62_135_596_800; // 0001-01-01
        while t < 253_402_300_799 {
            // 9999-12-31T23:59:59
            for us in [0, 1, 999_999, 123_456] {
                assert_eq!(isoformat_utc(t, us), general(t, us), "{t} {us}");
            }
            t += 7_777_777;
        }
    }

    #[test]
    fn python_isoformat() {
        // 2026-11-21T20:02:57.918912+00:00
        assert_eq!(
            isoformat_utc(1_795_291_377, 918_912),
            "2026-11-21T20:02:57.918912+00:00"
        );
        assert_eq!(isoformat_utc(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            isoformat_utc(951_782_400, 5),
            "2000-02-29T00:00:00.000005+00:00"
        );
    }
}
