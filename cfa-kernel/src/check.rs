//! The audited policy check: one signature against one bundle (and optionally a
//! catalog), outside the governed flow. Every face that decides a ready signature
//! (`cfa policy check`, `cfa generate`, `cfa serve`'s decisions, the MCP
//! `cfa_evaluate_signature` tool) goes through [`PolicyCheck`], so the decision id, the
//! hashes and the `policy_check` audit event are made in one place. The event itself
//! ([`PolicyCheckRecord`]) keeps the reference layout (docs/compatibility.md#policy-check-audit-event) byte for byte.

use crate::control::{ControlPlane, control_events};
use crate::ids::{IdKind, IdSource};
use cfa_audit::{
    AuditError, AuditStore, AuditTarget, Clock, ContentStore, DetailKeys, DetailValue, Durability,
    EventBuilder, Head, NewEvent, PreparedEvent, QuotedStr, write_str_array,
};
use cfa_control::ControlOutcome;
use cfa_policy::PolicyEngine;
use cfa_types::{Catalog, PolicyResult, StateSignature};
use serde_json::Value;
use std::sync::OnceLock;

/// Why an audited decision could not be made. The decision is never handed out
/// unrecorded when an audit store was given: the caller fails closed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The audit store refused the `policy_check` event.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A decision with what identifies it: the policy result, its decision id, the hashes of
/// what was evaluated, and the audit event that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The policy result.
    pub result: PolicyResult,
    /// The id of this decision (from the check's [`IdSource`], [`IdKind::Decision`]).
    pub decision_id: String,
    /// The evaluated signature's `intent_id`.
    pub intent_id: String,
    /// `signature_hash` of the evaluated signature.
    pub signature_hash: String,
    /// `content_hash` of the evaluated signature (docs/differences.md#b4-content_hash-beside-signature_hash).
    pub content_hash: String,
    /// Catalog hash (`""` without a catalog).
    pub catalog_hash: String,
    /// Bundle version.
    pub policy_bundle: String,
    /// Bundle hash (`""` for the default rules).
    pub policy_bundle_hash: String,
    /// `event_hash` of the `policy_check` event (`""` when not audited).
    pub audit_event_hash: String,
    /// What the control plane did to the decision (`None`: no control plane, or it
    /// let the policy's answer stand).
    pub control: Option<ControlOutcome>,
}

impl Decision {
    /// The policy bundle's own result: [`Decision::result`] as the bundle decided it,
    /// before the control plane (a kill switch, an approval ticket, a failing control
    /// store) changed it. What a shadow bundle is compared with, so that only a
    /// difference between the two bundles counts as a flip.
    pub fn policy_result(&self) -> &PolicyResult {
        self.control
            .as_ref()
            .map_or(&self.result, |c| &c.bundle_result)
    }

    /// The decision document the HTTP, MCP and Python faces share: `decision` holds the
    /// [`PolicyResult`] exactly as `cfa schema decision` describes it; the other keys
    /// identify it.
    pub fn document(&self) -> Value {
        let mut doc = serde_json::json!({
            "decision_id": self.decision_id,
            "action": self.result.action,
            "passed": self.result.passed(),
            "decision": self.result,
            "signature_hash": self.signature_hash,
            "content_hash": self.content_hash,
            "intent_id": self.intent_id,
            "policy_bundle": self.policy_bundle,
            "policy_bundle_hash": self.policy_bundle_hash,
            "catalog_hash": self.catalog_hash,
            "audit_event_hash": self.audit_event_hash,
        });
        if let (Some(control), Value::Object(map)) = (&self.control, &mut doc) {
            map.insert(
                "control".to_owned(),
                serde_json::to_value(control).unwrap_or(Value::Null),
            );
        }
        doc
    }

    /// The `policy_check` event of this decision stamped `timestamp`, written straight
    /// from the decision's fields (no [`PolicyCheckRecord`], no details map): the line
    /// and hash of `PolicyCheckRecord::of(self).to_event(timestamp).prepare()`, byte for
    /// byte (docs/compatibility.md#policy-check-audit-event).
    pub fn prepare_event(&self, timestamp: impl Into<String>) -> PreparedEvent {
        let r = &self.result;
        prepare_policy_check(
            PolicyCheckFields {
                intent_id: &self.intent_id,
                action: r.action.as_str(),
                policy_bundle_version: &self.policy_bundle,
                decision_id: &self.decision_id,
                signature_hash: &self.signature_hash,
                catalog_hash: &self.catalog_hash,
                policy_bundle_hash: &self.policy_bundle_hash,
                reasoning: &r.reasoning,
                content_hash: &self.content_hash,
            },
            r.faults.iter().map(|f| f.code.as_str()),
            r.interventions.iter().map(|i| i.as_str()),
            timestamp.into(),
        )
    }

    /// The control-plane audit events that follow this decision's `policy_check` event
    /// ([`control_events`]), stamped `timestamp`.
    pub fn control_events(&self, timestamp: &str) -> Vec<NewEvent> {
        self.control
            .as_ref()
            .map(|c| control_events(c, &self.intent_id, timestamp))
            .unwrap_or_default()
    }
}

/// One audited policy decision, configured then run with [`PolicyCheck::decide`].
///
/// The decision id comes from the injected [`IdSource`] and the event timestamp from the
/// injected [`Clock`] (read only when an audit store is given); with an audit store, the
/// decision is returned only once its `policy_check` event is appended.
///
/// ```
/// use cfa_audit::{AuditStore, FixedClock, MemoryStore};
/// use cfa_kernel::{PolicyCheck, SequentialIds};
/// use cfa_policy::PolicyEngine;
/// use cfa_types::{PolicyAction, StateSignature};
///
/// let signature = StateSignature::from_value(&serde_json::json!({
///     "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
///     "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
///                   "pii_columns": [], "partition_column": "processing_date",
///                   "merge_keys": ["nfe_id"]}],
///     "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
///                     "partition_by": ["processing_date"], "max_cost_dbu": 20.0},
///     "intent_id": "11111111-2222-3333-4444-555555555555"
/// }))?;
/// let engine = PolicyEngine::default();
/// let (ids, clock, store) = (
///     SequentialIds::new(),
///     FixedClock("2026-01-01T00:00:00+00:00".into()),
///     MemoryStore::new(),
/// );
/// let decision = PolicyCheck::new(&engine, &ids, &clock)
///     .audit(Some(&store))
///     .decide(&signature)?;
/// assert_eq!(decision.decision_id, "decision-000001");
/// assert_eq!(decision.intent_id, signature.intent_id);
/// assert_eq!(decision.result.action, engine.evaluate(&signature, 0).action);
/// assert_eq!(decision.audit_event_hash, store.tail_hash()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct PolicyCheck<'a> {
    engine: &'a PolicyEngine,
    bundle_hash: &'a str,
    catalog: Option<&'a Catalog>,
    replan_count: u32,
    ids: &'a dyn IdSource,
    clock: &'a dyn Clock,
    audit: Option<&'a dyn AuditStore>,
    inputs: Option<&'a ContentStore>,
    control: Option<&'a ControlPlane>,
}

impl std::fmt::Debug for PolicyCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCheck")
            .field("policy_bundle", &self.engine.version())
            .field("bundle_hash", &self.bundle_hash)
            .field("catalog", &self.catalog.is_some())
            .field("replan_count", &self.replan_count)
            .field("audited", &self.audit.is_some())
            .field("controlled", &self.control.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> PolicyCheck<'a> {
    /// A check against `engine` with decision ids from `ids` and event timestamps from
    /// `clock`: no bundle hash, no catalog, replan count 0, not audited.
    pub fn new(engine: &'a PolicyEngine, ids: &'a dyn IdSource, clock: &'a dyn Clock) -> Self {
        Self {
            engine,
            bundle_hash: "",
            catalog: None,
            replan_count: 0,
            ids,
            clock,
            audit: None,
            inputs: None,
            control: None,
        }
    }

    /// The control plane applied after the policy (`None`: none, the policy's answer
    /// is the decision). With one, the clock is read once for the decision's time.
    #[must_use]
    pub fn control(mut self, control: Option<&'a ControlPlane>) -> Self {
        self.control = control;
        self
    }

    /// The hash of the bundle `engine` was built from (`""` for the default rules).
    #[must_use]
    pub fn bundle_hash(mut self, hash: &'a str) -> Self {
        self.bundle_hash = hash;
        self
    }

    /// The catalog the catalog-aware conditions read, hashed into the decision.
    #[must_use]
    pub fn catalog(mut self, catalog: Option<&'a Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// The caller's replan counter (at the engine's cap the decision blocks).
    #[must_use]
    pub fn replan_count(mut self, replan_count: u32) -> Self {
        self.replan_count = replan_count;
        self
    }

    /// The store the `policy_check` event is appended to (`None`: not audited).
    #[must_use]
    pub fn audit(mut self, store: Option<&'a dyn AuditStore>) -> Self {
        self.audit = store;
        self
    }

    /// Where the signature and catalog of an audited decision are stored, by the hashes
    /// its event carries, before the event is appended (`None`: not stored; see
    /// [`crate::replay`]).
    #[must_use]
    pub fn inputs(mut self, store: Option<&'a ContentStore>) -> Self {
        self.inputs = store;
        self
    }

    /// The policy result of `signature` that [`PolicyCheck::decide`] identifies, alone:
    /// no id, no hashes, no audit event. For a face that identifies an unaudited
    /// decision only when asked (the Python package's `check`).
    pub fn evaluate(&self, signature: &StateSignature) -> PolicyResult {
        self.engine
            .evaluate_with_catalog(signature, self.catalog, self.replan_count)
    }

    /// Evaluates `signature`, applies the control plane when one is set, identifies the
    /// decision and, when audited, appends its `policy_check` event and the control
    /// events after it (the decision is returned only once they are written).
    pub fn decide(&self, signature: &StateSignature) -> Result<Decision, CheckError> {
        let mut result = self.evaluate(signature);
        let mut control = None;
        let mut now = None;
        if let Some(plane) = self.control {
            let t = self.clock.now_isoformat();
            (result, control) = plane.apply(
                self.engine,
                self.bundle_hash,
                signature,
                result,
                self.ids,
                &t,
            );
            now = Some(t);
        }
        // Remembered per thread for the last few signatures (all but their intent id),
        // as a run's are: a face decides the same few signatures over and over.
        let (signature_hash, content_hash) = crate::run::sighash::signature_hashes(signature);
        let mut decision = Decision {
            control,
            decision_id: self.ids.next_id(IdKind::Decision),
            intent_id: signature.intent_id.clone(),
            signature_hash,
            content_hash,
            catalog_hash: self.catalog.map(Catalog::hash).unwrap_or_default(),
            policy_bundle: self.engine.version().to_owned(),
            policy_bundle_hash: self.bundle_hash.to_owned(),
            audit_event_hash: String::new(),
            result,
        };
        if let Some(store) = self.audit {
            if let Some(inputs) = self.inputs {
                crate::replay::record_inputs(
                    inputs,
                    signature,
                    &decision.content_hash,
                    self.catalog,
                )?;
            }
            let ts = now.unwrap_or_else(|| self.clock.now_isoformat());
            // Built straight from the decision; the store hands back only its hash.
            let mut hashes = Vec::with_capacity(1);
            store.append_prepared(vec![decision.prepare_event(ts.as_str())], &mut hashes)?;
            decision.audit_event_hash = hashes.pop().ok_or_else(|| {
                AuditError::from(cfa_audit::error::IoError::new(
                    "",
                    "append to",
                    std::io::Error::other("no event was written"),
                ))
            })?;
            for event in decision.control_events(&ts) {
                store.append(event)?;
            }
        }
        Ok(decision)
    }
}

/// The fields of one `policy_check` event.
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
    /// The record of `decision`.
    pub fn of(decision: &Decision) -> Self {
        let r = &decision.result;
        Self {
            intent_id: decision.intent_id.clone(),
            action: r.action.as_str().to_owned(),
            policy_bundle_version: decision.policy_bundle.clone(),
            decision_id: decision.decision_id.clone(),
            signature_hash: decision.signature_hash.clone(),
            catalog_hash: decision.catalog_hash.clone(),
            policy_bundle_hash: decision.policy_bundle_hash.clone(),
            faults: r.faults.iter().map(|f| f.code.to_string()).collect(),
            interventions: r.interventions.iter().map(ToString::to_string).collect(),
            reasoning: r.reasoning.to_string(),
            content_hash: decision.content_hash.clone(),
        }
    }

    /// [`PolicyCheckRecord::to_event`] prepared ([`NewEvent::prepare`]'s line and hash,
    /// byte for byte), written straight from the record's fields without a details map.
    pub fn prepare(&self, timestamp: impl Into<String>) -> PreparedEvent {
        prepare_policy_check(
            PolicyCheckFields {
                intent_id: &self.intent_id,
                action: &self.action,
                policy_bundle_version: &self.policy_bundle_version,
                decision_id: &self.decision_id,
                signature_hash: &self.signature_hash,
                catalog_hash: &self.catalog_hash,
                policy_bundle_hash: &self.policy_bundle_hash,
                reasoning: &self.reasoning,
                content_hash: &self.content_hash,
            },
            self.faults.iter().map(String::as_str),
            self.interventions.iter().map(String::as_str),
            timestamp.into(),
        )
    }

    /// The event: stage `policy_check`, type `policy_evaluation`, details
    /// `{decision_id, signature_hash, catalog_hash, policy_bundle_hash, faults,
    /// interventions, reasoning, content_hash, policy_bundle_version}` in that order.
    pub fn to_event(&self, timestamp: &str) -> NewEvent {
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        NewEvent::new(
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
        .detail("content_hash", self.content_hash.clone())
        .with_bundle(
            self.policy_bundle_version.clone(),
            self.policy_bundle_hash.clone(),
        )
    }
}

/// The string fields of one `policy_check` event, borrowed.
struct PolicyCheckFields<'a> {
    intent_id: &'a str,
    action: &'a str,
    policy_bundle_version: &'a str,
    decision_id: &'a str,
    signature_hash: &'a str,
    catalog_hash: &'a str,
    policy_bundle_hash: &'a str,
    reasoning: &'a str,
    content_hash: &'a str,
}

/// The `policy_check` event of [`PolicyCheckRecord::to_event`] written with an
/// [`EventBuilder`]: the same details in the same order.
fn prepare_policy_check<'s>(
    f: PolicyCheckFields<'_>,
    faults: impl Iterator<Item = &'s str>,
    interventions: impl Iterator<Item = &'s str>,
    timestamp: String,
) -> PreparedEvent {
    /// The keys every `policy_check` event's details have, in the line's order, and
    /// the two static head strings, each quoted once per process.
    struct Statics {
        keys: DetailKeys,
        stage: QuotedStr,
        event_type: QuotedStr,
    }
    static STATICS: OnceLock<Statics> = OnceLock::new();
    let statics = STATICS.get_or_init(|| Statics {
        keys: DetailKeys::new([
            "decision_id",
            "signature_hash",
            "catalog_hash",
            "policy_bundle_hash",
            "faults",
            "interventions",
            "reasoning",
            "content_hash",
            // `with_bundle` then sets `policy_bundle_hash` again, in its place, to
            // the same value: only the version is new.
            "policy_bundle_version",
        ]),
        stage: QuotedStr::new("policy_check"),
        event_type: QuotedStr::new("policy_evaluation"),
    });
    // Both arrays of strings, as canonical text, written into one buffer.
    let mut lists = String::with_capacity(64);
    write_str_array(&mut lists, faults);
    let faults_end = lists.len();
    write_str_array(&mut lists, interventions);
    let (faults, interventions) = lists.split_at_checked(faults_end).unwrap_or_default();
    EventBuilder::with_heads(
        Head::Plain(f.intent_id),
        Head::Quoted(&statics.stage),
        Head::Quoted(&statics.event_type),
        Head::Plain(f.action),
        Head::Plain(f.policy_bundle_version),
        timestamp,
    )
    .finish_with_details(
        &statics.keys,
        &[
            DetailValue::Str(f.decision_id),
            DetailValue::Str(f.signature_hash),
            DetailValue::Str(f.catalog_hash),
            DetailValue::Str(f.policy_bundle_hash),
            DetailValue::Raw(faults),
            DetailValue::Raw(interventions),
            DetailValue::Str(f.reasoning),
            DetailValue::Str(f.content_hash),
            DetailValue::Str(f.policy_bundle_version),
        ],
    )
}

/// Appends one ready-made `policy_check` event to `target` (fsync per append) and
/// returns its `event_hash`. Decisions are made with [`PolicyCheck`], which builds the
/// record itself; this writes a record as given (replays, interop checks against the
/// reference). `timestamp` is injected.
pub fn record_policy_check(
    target: &AuditTarget,
    record: &PolicyCheckRecord,
    timestamp: &str,
) -> Result<String, AuditError> {
    let event = record.to_event(timestamp);
    Ok(target.open(Durability::Always)?.append(event)?.event_hash)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ids::SequentialIds;
    use cfa_audit::{FixedClock, MemoryStore, VerifyOptions};
    use cfa_types::PolicyAction;
    use serde_json::json;

    fn signature(partition_by: &[&str]) -> StateSignature {
        StateSignature::from_value(&json!({
            "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"no_pii_raw": true, "merge_key_required": true,
                            "enforce_types": true, "partition_by": partition_by,
                            "max_cost_dbu": 20.0},
            "intent_id": "11111111-2222-3333-4444-555555555555"
        }))
        .unwrap()
    }

    const TS: &str = "2026-01-01T00:00:00+00:00";

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

    #[test]
    fn unaudited_check_identifies_without_reading_the_clock() {
        struct NoClock;
        impl Clock for NoClock {
            fn now_isoformat(&self) -> String {
                unreachable!("an unaudited check never reads the clock")
            }
        }
        let engine = PolicyEngine::default();
        let ids = SequentialIds::new();
        let sig = signature(&["processing_date"]);
        let d = PolicyCheck::new(&engine, &ids, &NoClock)
            .bundle_hash("abc")
            .decide(&sig)
            .unwrap();
        assert_eq!(d.decision_id, "decision-000001");
        assert_eq!(d.signature_hash, sig.signature_hash());
        assert_eq!(d.content_hash, sig.content_hash());
        assert_eq!(d.intent_id, sig.intent_id);
        assert_eq!(d.catalog_hash, "");
        assert_eq!(d.policy_bundle, engine.version());
        assert_eq!(d.policy_bundle_hash, "abc");
        assert_eq!(d.audit_event_hash, "");
        assert_eq!(d.result, engine.evaluate(&sig, 0));
    }

    #[test]
    fn audited_check_appends_the_event_it_returns() {
        let engine = PolicyEngine::default();
        let ids = SequentialIds::new();
        let clock = FixedClock(TS.into());
        let store = MemoryStore::new();
        let catalog = Catalog::empty();
        let sig = signature(&[]);
        let d = PolicyCheck::new(&engine, &ids, &clock)
            .bundle_hash("h")
            .catalog(Some(&catalog))
            .replan_count(1)
            .audit(Some(&store))
            .decide(&sig)
            .unwrap();
        assert_eq!(
            d.result,
            engine.evaluate_with_catalog(&sig, Some(&catalog), 1)
        );
        assert_eq!(d.catalog_hash, catalog.hash());
        let mut events = Vec::new();
        store
            .scan(&mut |e| {
                events.push(e);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event_hash, d.audit_event_hash);
        // The appended event is exactly the record of the returned decision.
        let expected = PolicyCheckRecord::of(&d).to_event(TS).seal("");
        assert_eq!(e.event_hash, expected.event_hash);
        assert_eq!(e.stage, "policy_check");
        assert_eq!(e.event_type, "policy_evaluation");
        assert_eq!(e.outcome, d.result.action.as_str());
        assert_eq!(e.timestamp, TS);
        assert_eq!(e.details["decision_id"], json!(d.decision_id));
        assert_eq!(e.details["catalog_hash"], json!(catalog.hash()));
        let codes: Vec<&str> = d.result.faults.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(e.details["faults"], json!(codes));
        assert!(
            store
                .verify(&VerifyOptions::default())
                .unwrap()
                .first_bad
                .is_none()
        );
    }

    #[test]
    fn replan_cap_blocks_and_is_recorded_as_block() {
        let engine = PolicyEngine::default();
        let ids = SequentialIds::new();
        let clock = FixedClock(TS.into());
        let store = MemoryStore::new();
        let d = PolicyCheck::new(&engine, &ids, &clock)
            .replan_count(engine.max_replan_attempts())
            .audit(Some(&store))
            .decide(&signature(&["processing_date"]))
            .unwrap();
        assert_eq!(d.result.action, PolicyAction::Block);
        assert_eq!(store.len().unwrap(), 1);
    }

    /// A store that refuses every operation.
    struct Refusing;

    fn refused() -> AuditError {
        cfa_audit::error::IoError::new(
            "refusing.jsonl",
            "write",
            std::io::Error::other("disk full"),
        )
        .into()
    }

    impl AuditStore for Refusing {
        fn append(&self, _: NewEvent) -> Result<cfa_audit::AuditEvent, AuditError> {
            Err(refused())
        }
        fn tail_hash(&self) -> Result<String, AuditError> {
            Err(refused())
        }
        fn len(&self) -> Result<u64, AuditError> {
            Err(refused())
        }
        fn scan(
            &self,
            _: &mut dyn FnMut(cfa_audit::AuditEvent) -> std::ops::ControlFlow<()>,
        ) -> Result<(), AuditError> {
            Err(refused())
        }
        fn verify(&self, _: &VerifyOptions) -> Result<cfa_audit::VerifyReport, AuditError> {
            Err(refused())
        }
        fn flush(&self) -> Result<(), AuditError> {
            Err(refused())
        }
    }

    #[test]
    fn a_refused_append_fails_the_check() {
        let engine = PolicyEngine::default();
        let ids = SequentialIds::new();
        let clock = FixedClock(TS.into());
        let err = PolicyCheck::new(&engine, &ids, &clock)
            .audit(Some(&Refusing))
            .decide(&signature(&["processing_date"]))
            .unwrap_err();
        assert!(matches!(err, CheckError::Audit(_)));
        // Transparent: callers word the failure around the store's own message.
        assert_eq!(err.to_string(), refused().to_string());
    }

    /// Text with what needs escaping: quotes, backslashes, control characters,
    /// unicode and astral planes.
    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just(String::new()),
            "[a-f0-9]{64}",
            "[ -~]{0,16}",
            "[a\"\\\\\n\t\u{0}\u{1}\u{1f}\u{7f}\u{e9}\u{2028}\u{ffff}\u{1F600}]{0,12}",
            any::<String>(),
        ]
    }

    /// The line and hash of `prepared` chained after `prev`.
    fn chained(prepared: &PreparedEvent, prev: &str) -> (String, String) {
        let mut line = String::new();
        let hash = prepared.finish_into(prev, &mut line);
        (line, hash)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        #[test]
        fn a_built_policy_check_event_is_the_record_s_event(
            strings in proptest::array::uniform10(text()),
            faults in proptest::collection::vec(text(), 0..4),
            interventions in proptest::collection::vec(text(), 0..4),
            prev in proptest::prop_oneof![
                proptest::strategy::Just(String::new()),
                "[0-9a-f]{64}",
                text()
            ],
        ) {
            let [intent_id, action, policy_bundle_version, decision_id, signature_hash,
                 catalog_hash, policy_bundle_hash, reasoning, content_hash, ts] = strings;
            let record = PolicyCheckRecord {
                intent_id, action, policy_bundle_version, decision_id, signature_hash,
                catalog_hash, policy_bundle_hash, faults, interventions, reasoning,
                content_hash,
            };
            let want = record.to_event(&ts).prepare();
            let built = record.prepare(ts.as_str());
            proptest::prop_assert_eq!(built.details_json(), want.details_json());
            proptest::prop_assert_eq!(chained(&built, &prev), chained(&want, &prev));
        }

        #[test]
        fn a_decision_s_event_is_its_record_s_event(
            strings in proptest::array::uniform8(text()),
            codes in proptest::collection::vec(text(), 0..4),
            interventions in proptest::collection::vec(text(), 0..4),
            partitioned in proptest::bool::ANY,
        ) {
            let [decision_id, signature_hash, catalog_hash, bundle, bundle_hash, reasoning,
                 content_hash, ts] = strings;
            let engine = PolicyEngine::default();
            let ids = SequentialIds::new();
            let sig = signature(if partitioned { &["processing_date"] } else { &[] });
            let mut d = PolicyCheck::new(&engine, &ids, &FixedClock(TS.into()))
                .decide(&sig)
                .unwrap();
            // A real decision's faults as templates, given arbitrary codes.
            let template = engine.evaluate(&signature(&[]), 0).faults[0].clone();
            d.result.faults = codes
                .iter()
                .map(|c| cfa_types::Fault { code: c.as_str().into(), ..template.clone() })
                .collect();
            d.result.interventions = interventions.iter().map(|i| i.as_str()).collect();
            d.result.reasoning = reasoning.into();
            (d.decision_id, d.signature_hash, d.catalog_hash, d.policy_bundle) =
                (decision_id, signature_hash, catalog_hash, bundle);
            (d.policy_bundle_hash, d.content_hash) = (bundle_hash, content_hash);
            let want = PolicyCheckRecord::of(&d).to_event(&ts).prepare();
            let built = d.prepare_event(ts.as_str());
            proptest::prop_assert_eq!(chained(&built, ""), chained(&want, ""));
            let (line, hash) = chained(&built, &"a".repeat(64));
            proptest::prop_assert_eq!((line, hash), chained(&want, &"a".repeat(64)));
        }
    }

    #[test]
    fn an_unwritable_target_fails_the_record() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the log file should be: the store cannot be opened.
        let target = AuditTarget::Jsonl(dir.path().to_path_buf());
        let record = PolicyCheckRecord::default();
        assert!(record_policy_check(&target, &record, TS).is_err());
    }

    #[test]
    fn recorded_target_event_matches_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let record = PolicyCheckRecord {
            intent_id: "i".into(),
            action: "block".into(),
            policy_bundle_version: "v1.0".into(),
            decision_id: "d".into(),
            ..Default::default()
        };
        let hash = record_policy_check(&AuditTarget::Jsonl(path.clone()), &record, TS).unwrap();
        assert_eq!(hash, record.to_event(TS).seal("").event_hash);
        let store = AuditTarget::Jsonl(path).open(Durability::Never).unwrap();
        assert_eq!(store.tail_hash().unwrap(), hash);
    }
}
