//! The `policy check --audit-log/--audit-db` event: the reference's details layout
//! (docs/compatibility.md#policy-check-audit-event) plus our additions at the end of `details`.

use crate::error::AuditError;
use crate::event::NewEvent;
use crate::jsonl::JsonlStore;
use crate::sqlite::SqliteStore;
use crate::store::{AuditStore, Durability};
use serde_json::Value;
use std::path::PathBuf;

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// A JSONL log file (`--audit-log FILE`).
    Jsonl(PathBuf),
    /// A SQLite database (`--audit-db FILE`).
    Sqlite(PathBuf),
}

/// The fields of one policy decision, as `cfa policy check` knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyCheckRecord {
    /// The signature's `intent_id`.
    pub intent_id: String,
    /// The action (`approve`, `replan`, `block`): the event's outcome.
    pub action: String,
    /// Bundle version (top level AND inside details).
    pub policy_bundle_version: String,
    /// Injected decision id (uuid).
    pub decision_id: String,
    /// `signature_hash`.
    pub signature_hash: String,
    /// Catalog hash or `""`.
    pub catalog_hash: String,
    /// Bundle file hash or `""`.
    pub policy_bundle_hash: String,
    /// Fault codes in order.
    pub faults: Vec<String>,
    /// Interventions in order.
    pub interventions: Vec<String>,
    /// Reasoning string.
    pub reasoning: String,
    /// Our `content_hash` over the whole canonical signature (docs/differences.md#b4-content_hash-beside-signature_hash).
    pub content_hash: String,
}

impl PolicyCheckRecord {
    /// The event: stage `policy_check`, type `policy_evaluation`, details
    /// `{decision_id, signature_hash, catalog_hash, policy_bundle_hash, faults,
    /// interventions, reasoning, content_hash, policy_bundle_version}` in that order.
    pub fn to_event(&self, timestamp: &str) -> NewEvent {
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let mut e = NewEvent::new(
            self.intent_id.clone(),
            "policy_check",
            "policy_evaluation",
            self.action.clone(),
            timestamp,
        )
        .detail("decision_id", self.decision_id.clone())
        .detail("signature_hash", self.signature_hash.clone())
        .detail("catalog_hash", self.catalog_hash.clone())
        .detail("policy_bundle_hash", self.policy_bundle_hash.clone())
        .detail("faults", strings(&self.faults))
        .detail("interventions", strings(&self.interventions))
        .detail("reasoning", self.reasoning.clone())
        .detail("content_hash", self.content_hash.clone());
        e = e.with_bundle(
            self.policy_bundle_version.clone(),
            self.policy_bundle_hash.clone(),
        );
        e
    }
}

/// Appends one policy-check event (fsync per append) and returns its `event_hash`.
/// `timestamp` is injected (e.g. `SystemClock.now_isoformat()`).
pub fn record_policy_check(
    target: &AuditTarget,
    record: &PolicyCheckRecord,
    timestamp: &str,
) -> Result<String, AuditError> {
    let event = record.to_event(timestamp);
    let sealed = match target {
        AuditTarget::Jsonl(p) => JsonlStore::open(p, Durability::Always)?.append(event)?,
        AuditTarget::Sqlite(p) => SqliteStore::open(p, Durability::Always)?.append(event)?,
    };
    Ok(sealed.event_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_order() {
        let r = PolicyCheckRecord {
            intent_id: "i".into(),
            action: "approve".into(),
            policy_bundle_version: "prod-v1".into(),
            faults: vec!["A".into()],
            ..Default::default()
        };
        let e = r.to_event("t").seal("");
        let keys: Vec<&str> = e.details.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "decision_id",
                "signature_hash",
                "catalog_hash",
                "policy_bundle_hash",
                "faults",
                "interventions",
                "reasoning",
                "content_hash",
                "policy_bundle_version"
            ]
        );
        assert_eq!(e.policy_bundle_version, "prod-v1");
    }
}
