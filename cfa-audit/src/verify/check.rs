//! Per-event checks that do not depend on other events: parse (fast path first) and
//! recompute the hash.

use super::reason::BadReason;
use crate::event::{AuditEvent, FieldMismatch};
use crate::fastline;
use std::borrow::Cow;

/// The per-event result that does not depend on other events.
///
/// The two hashes are kept as the bytes of their text (always UTF-8: ASCII read by the
/// fast path, or a parsed event's `String`s), so that the fast path never re-checks
/// them as UTF-8; they become text again only in a report.
#[derive(Debug, Clone)]
pub(crate) struct Checked<'a> {
    pub event_hash: Cow<'a, [u8]>,
    pub previous_hash: Cow<'a, [u8]>,
    pub hash: HashState,
    pub intent: bool,
    pub mismatch: Option<FieldMismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HashState {
    Full,
    Legacy,
    Mismatch(String),
}

fn hash_state(stored: &str, computed_hex: &str) -> HashState {
    if stored == computed_hex {
        HashState::Full
    } else if stored.len() == 16 && computed_hex.starts_with(stored) {
        HashState::Legacy
    } else {
        HashState::Mismatch(computed_hex.to_owned())
    }
}

/// Whether `text` is exactly the lowercase hex of `bytes` (what `hex::encode` would
/// write), without writing it: four bytes at a time, their eight digits are made in
/// one 64-bit word (each nibble in its own byte, then `'0' + n`, plus `'a' - '0' - 10`
/// where `n > 9`) and compared with eight characters of `text`, with no early exit.
fn is_hex_of(text: &[u8], bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    if text.len() != 2 * bytes.len() || !bytes.len().is_multiple_of(4) {
        return text.len() == 2 * bytes.len() && hex::encode(bytes).as_bytes() == text;
    }
    let mut diff = 0u64;
    for (chars, quad) in text.chunks_exact(8).zip(bytes.chunks_exact(4)) {
        let mut c = [0u8; 8];
        c.copy_from_slice(chars);
        let mut q = [0u8; 4];
        q.copy_from_slice(quad);
        // byte k of the quad to bits 16k..16k+8
        let mut w = u64::from(u32::from_le_bytes(q));
        w = (w | (w << 16)) & 0x0000_ffff_0000_ffff;
        w = (w | (w << 8)) & 0x00ff_00ff_00ff_00ff;
        // the high nibble first (the lower byte of each pair), then the low one
        let n = ((w >> 4) & 0x000f_000f_000f_000f) | ((w & 0x000f_000f_000f_000f) << 8);
        let above_nine = ((n + ONES * 6) >> 4) & ONES;
        let digits = n + ONES * u64::from(b'0') + above_nine * u64::from(b'a' - b'0' - 10);
        diff |= digits ^ u64::from_le_bytes(c);
    }
    diff == 0
}

/// [`hash_state`] of a stored hash against a digest, compared as bytes: `None` for a
/// mismatch (the fast path then leaves the line to the slow one).
fn digest_state(stored: &[u8], digest: &[u8; 32]) -> Option<HashState> {
    if is_hex_of(stored, digest) {
        Some(HashState::Full)
    } else if is_hex_of(stored, digest.get(..8)?) {
        Some(HashState::Legacy)
    } else {
        None
    }
}

/// Checks one event already in memory (SQLite and memory stores).
pub(crate) fn check_event<'a>(e: &'a AuditEvent, intent: Option<&str>) -> Checked<'a> {
    let computed = e.compute_hash();
    Checked {
        event_hash: Cow::Borrowed(e.event_hash.as_bytes()),
        previous_hash: Cow::Borrowed(e.previous_hash.as_bytes()),
        hash: hash_state(&e.event_hash, &computed),
        intent: intent.is_some_and(|id| id == e.intent_id),
        mismatch: e.unhashed_mismatch(),
    }
}

/// The check of a line the fast path recognised (`f`, its payload in `scratch`), or
/// `None` when its hash does not match (the slow path then decides what is wrong).
pub(crate) fn check_fast<'a>(
    f: fastline::FastLine<'a>,
    intent: Option<&str>,
    scratch: &fastline::Scratch,
) -> Option<Checked<'a>> {
    let state = digest_state(f.event_hash, &fastline::digest(&scratch.payload))?;
    let intent = match intent {
        None => false,
        Some(id) => match f.intent_plain() {
            Some(s) => s == id,
            None => serde_json::from_slice::<String>(f.intent_id).is_ok_and(|s| s == id),
        },
    };
    // Both literals are canonical, so equal text means equal strings.
    let mismatch = f
        .details_bundle_version
        .filter(|d| *d != f.policy_bundle_version)
        .map(|d| FieldMismatch {
            field: "policy_bundle_version",
            top_level: serde_json::from_slice::<String>(f.policy_bundle_version)
                .unwrap_or_default(),
            in_details: String::from_utf8_lossy(d).into_owned(),
        });
    Some(Checked {
        event_hash: Cow::Borrowed(f.event_hash),
        previous_hash: Cow::Borrowed(f.previous_hash),
        hash: state,
        intent,
        mismatch,
    })
}

/// Checks one trimmed, non-blank line: fast path first, full parse as fallback.
pub(crate) fn check_line<'a>(
    line: &'a [u8],
    intent: Option<&str>,
    scratch: &mut fastline::Scratch,
) -> Result<Checked<'a>, BadReason> {
    if let Some(f) = fastline::parse(line, scratch)
        && let Some(c) = check_fast(f, intent, scratch)
    {
        return Ok(c);
    }
    // Slow path: full parse + canonical writer (also the fallback on a fast-path mismatch).
    let text = std::str::from_utf8(line).map_err(|e| BadReason::Unparsable {
        message: format!("invalid UTF-8: {e}"),
    })?;
    if text.starts_with('\u{feff}') {
        return Err(BadReason::Unparsable {
            message: "the line starts with a UTF-8 byte order mark (U+FEFF), which is not JSON"
                .to_owned(),
        });
    }
    let event = AuditEvent::from_jsonl_line(text)?;
    let computed = event.compute_hash();
    Ok(Checked {
        hash: hash_state(&event.event_hash, &computed),
        intent: intent.is_some_and(|id| id == event.intent_id),
        mismatch: event.unhashed_mismatch(),
        event_hash: Cow::Owned(event.event_hash.into_bytes()),
        previous_hash: Cow::Owned(event.previous_hash.into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    #[test]
    fn digests_compared_as_bytes_agree_with_their_hex_text() {
        let digest: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        let hex = hex::encode(digest);
        let mut upper = hex.clone();
        upper.make_ascii_uppercase();
        let mut last_off = hex.clone().into_bytes();
        last_off[63] = if last_off[63] == b'0' { b'1' } else { b'0' };
        let last_off = String::from_utf8(last_off).unwrap();
        let stored = [
            hex.clone(),
            hex[..16].to_owned(),
            hex[..15].to_owned(),
            hex[..63].to_owned(),
            format!("{hex}0"),
            hex[16..32].to_owned(),
            upper.clone(),
            upper[..16].to_owned(),
            last_off,
            "g".repeat(64),
            String::new(),
        ];
        for s in &stored {
            let via_text = match hash_state(s, &hex) {
                HashState::Mismatch(_) => None,
                state => Some(state),
            };
            assert_eq!(digest_state(s.as_bytes(), &digest), via_text, "{s}");
        }
        assert_eq!(digest_state(hex.as_bytes(), &digest), Some(HashState::Full));
        assert_eq!(
            digest_state(&hex.as_bytes()[..16], &digest),
            Some(HashState::Legacy)
        );
        assert_eq!(digest_state(upper.as_bytes(), &digest), None);
        // every byte value in every position, and every character changed once
        for b in 0..=255u8 {
            let mut d = digest;
            d[usize::from(b) % 32] = b;
            let text = hex::encode(d).into_bytes();
            assert!(is_hex_of(&text, &d), "{b:#x}");
            for at in 0..64 {
                let mut t = text.clone();
                t[at] = t[at].wrapping_add(1 + b % 7);
                assert!(!is_hex_of(&t, &d), "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn fast_path_is_taken_for_reference_layout_and_unsorted_details() {
        let e = NewEvent::new("i", "policy_check", "policy_evaluation", "approve", "t")
            .detail("decision_id", "d")
            .detail("faults", serde_json::json!(["A"]))
            .with_bundle("v", "h")
            .seal("");
        let line = e.to_jsonl_line();
        let mut buf = fastline::Scratch::default();
        let c = check_line(line.as_bytes(), None, &mut buf).unwrap();
        assert!(matches!(c.event_hash, Cow::Borrowed(_)), "fast path");
        assert_eq!(c.hash, HashState::Full);
        // A reserialised (compact) line takes the slow path and still verifies.
        let compact = serde_json::to_string(&e.to_value()).unwrap();
        let c = check_line(compact.as_bytes(), None, &mut buf).unwrap();
        assert!(matches!(c.event_hash, Cow::Owned(_)), "slow path");
        assert_eq!(c.hash, HashState::Full);
    }
}
