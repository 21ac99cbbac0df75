//! Per-event checks that do not depend on other events: parse (fast path first) and
//! recompute the hash.

use super::reason::BadReason;
use crate::event::{AuditEvent, FieldMismatch};
use crate::fastline;
use std::borrow::Cow;

/// The per-event result that does not depend on other events.
#[derive(Debug, Clone)]
pub(crate) struct Checked<'a> {
    pub event_hash: Cow<'a, str>,
    pub previous_hash: Cow<'a, str>,
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

/// Checks one event already in memory (SQLite and memory stores).
pub(crate) fn check_event<'a>(e: &'a AuditEvent, intent: Option<&str>) -> Checked<'a> {
    let computed = e.compute_hash();
    Checked {
        event_hash: Cow::Borrowed(&e.event_hash),
        previous_hash: Cow::Borrowed(&e.previous_hash),
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
    let mut hex_buf = [0u8; 64];
    hex::encode_to_slice(fastline::digest(&scratch.payload), &mut hex_buf).ok()?;
    let computed = std::str::from_utf8(&hex_buf).ok()?;
    let state = hash_state(f.event_hash, computed);
    if matches!(state, HashState::Mismatch(_)) {
        return None;
    }
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
        event_hash: Cow::Owned(event.event_hash),
        previous_hash: Cow::Owned(event.previous_hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

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
