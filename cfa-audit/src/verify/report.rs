//! What a verification pass found: [`VerifyReport`] and its [`BadEvent`], and the
//! one JSON shape every face emits.

use super::reason::BadReason;
use crate::merkle::{CompactRange, Hash};

/// The first bad event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    /// 0-based index among events (non-blank lines; rows for SQLite).
    pub index: u64,
    /// 1-based physical line number (row id for SQLite).
    pub line: u64,
    /// Byte offset of the line (0 for SQLite).
    pub offset: u64,
    /// Why.
    pub reason: BadReason,
}

/// The outcome of a verification pass.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Events seen (non-blank lines / rows), bad ones included.
    pub events: u64,
    /// Events of the requested intent (before the first bad event).
    pub intent_events: Option<u64>,
    /// The first bad event; `None` means the chain is intact.
    pub first_bad: Option<BadEvent>,
    /// `event_hash` of the last good event (`""` if none).
    pub tail_hash: String,
    /// Legacy 16-hex hashes accepted (only with `allow_legacy`).
    pub legacy_events: u64,
    /// Merkle tree over the verified events (with `merkle`).
    pub tree: Option<CompactRange>,
    /// The root when the tree had `root_at` leaves (with `merkle`).
    pub root_at: Option<Hash>,
    /// The leaf hashes of the events read in this pass (with `collect_leaves`);
    /// an anchored prefix's leaves are not included.
    pub leaves: Vec<Hash>,
}

impl VerifyReport {
    /// `true` when no bad event was found.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }

    /// The verification report as JSON, the one shape every face emits
    /// (`cfa audit verify -f json`, `GET /v1/audit/verify`, the `cfa_audit_check` tool).
    /// Names follow the reference's `cfa_audit_check` result: `chain_intact`,
    /// `total_events`, and with an intent `intent_id` and `event_count`; then
    /// `file`, `tail_hash`, `legacy_events` and `first_bad`
    /// (`{index, line, offset, code, reason}` or `null`).
    pub fn to_json(&self, file: &str, intent_id: Option<&str>) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("file".into(), file.into());
        out.insert("chain_intact".into(), self.intact().into());
        out.insert("total_events".into(), self.events.into());
        if let Some(id) = intent_id {
            out.insert("intent_id".into(), id.into());
            out.insert("event_count".into(), self.intent_events.unwrap_or(0).into());
        }
        out.insert("tail_hash".into(), self.tail_hash.clone().into());
        out.insert("legacy_events".into(), self.legacy_events.into());
        out.insert(
            "first_bad".into(),
            self.first_bad
                .as_ref()
                .map_or(serde_json::Value::Null, BadEvent::to_json),
        );
        serde_json::Value::Object(out)
    }
}

impl BadEvent {
    /// `{index, line, offset, code, reason}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "index": self.index,
            "line": self.line,
            "offset": self.offset,
            "code": self.reason.code(),
            "reason": self.reason.to_string(),
        })
    }
}
