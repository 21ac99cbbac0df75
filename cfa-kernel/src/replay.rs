//! Re-evaluating recorded decisions (`cfa policy backtest`) and comparing two bundles on
//! one decision (shadow mode).
//!
//! A `policy_check` event keeps the reference's layout byte for byte, so it cannot carry
//! the signature itself. Instead [`PolicyCheck`](crate::PolicyCheck) writes the
//! signature (and the catalog, when one is used) into a [`ContentStore`] beside the log,
//! keyed by the `content_hash` (and `catalog_hash`) the event already holds, before the
//! event is appended ([`record_inputs`]); a governed run does the same for each policy
//! evaluation of its govern phase, plus a run record naming its catalog, since a
//! `govern` event carries no `catalog_hash` ([`record_run_inputs`], [`RUNS`]). A
//! backtest reads a decision event, looks its
//! inputs up by those hashes, checks that what it found hashes back to them, and decides
//! again with the candidate bundle ([`replay`]). What cannot be found is reported, never
//! guessed.
//!
//! The replan counter is not in a `policy_check` event; it only matters to the action
//! and fault codes through the replan cap, so it is recovered from the event: the cap's
//! fault alone means the counter was at the cap, a `replan N/M` reasoning means `N - 1`,
//! anything else is below the cap and replays as `0` (same action and fault codes).

use cfa_audit::{AuditError, AuditEvent, ContentStore};
use cfa_policy::{MAX_REPLAN_CODE, PolicyEngine};
use cfa_types::{Catalog, PolicyAction, PolicyResult, StateSignature};
use serde::Serialize;
use serde_json::Value;

/// The kind signatures are stored under.
pub const SIGNATURES: &str = "signatures";
/// The kind catalogs are stored under.
pub const CATALOGS: &str = "catalogs";

/// Stores what re-evaluating a decision needs: the signature under `content_hash`, the
/// catalog (if any) under its hash. Called before the decision's event is appended.
pub fn record_inputs(
    store: &ContentStore,
    signature: &StateSignature,
    content_hash: &str,
    catalog: Option<&Catalog>,
) -> Result<(), AuditError> {
    store.put_with(SIGNATURES, content_hash, || {
        signature.to_value().to_string()
    })?;
    if let Some(c) = catalog {
        let hash = c.hash();
        if !hash.is_empty() {
            store.put_with(CATALOGS, &hash, || c.raw().to_string())?;
        }
    }
    Ok(())
}

/// The kind a governed run's record is stored under: `runs/<run_key(decision_id)>`
/// names the catalog its policy evaluations used, which a `govern` event does not
/// carry (its bytes keep their layout).
pub const RUNS: &str = "runs";

/// The key of a governed run's record: the SHA-256 (hex) of its decision id, so any
/// id names a file.
pub fn run_key(decision_id: &str) -> String {
    cfa_types::canonical::sha256_hex(decision_id.as_bytes())
}

/// Stores what re-evaluating one policy evaluation of a governed run needs: the
/// signature under `content_hash`, the catalog under `catalog_hash` (none when
/// `""`), and the run's record naming that catalog under [`run_key`] of
/// `decision_id`. Called before the evaluation's `policy_evaluation` event is
/// written; a document already stored is not written again.
pub fn record_run_inputs(
    store: &ContentStore,
    signature: &StateSignature,
    content_hash: &str,
    decision_id: &str,
    catalog: &Catalog,
    catalog_hash: &str,
) -> Result<(), AuditError> {
    store.put_with(SIGNATURES, content_hash, || {
        signature.to_value().to_string()
    })?;
    if !catalog_hash.is_empty() {
        store.put_with(CATALOGS, catalog_hash, || catalog.raw().to_string())?;
    }
    store.put_with(RUNS, &run_key(decision_id), || {
        serde_json::json!({"decision_id": decision_id, "catalog_hash": catalog_hash}).to_string()
    })
}

/// The catalog hash a governed run's record names (`Ok(None)`: no record).
fn run_catalog_hash(store: &ContentStore, decision_id: &str) -> Result<Option<String>, String> {
    if decision_id.is_empty() {
        return Ok(None);
    }
    let Some(text) = store
        .get(RUNS, &run_key(decision_id))
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("stored run record of decision {decision_id} cannot be read: {e}"))?;
    match (
        v.get("decision_id").and_then(Value::as_str),
        v.get("catalog_hash").and_then(Value::as_str),
    ) {
        (Some(id), Some(hash)) if id == decision_id => Ok(Some(hash.to_owned())),
        _ => Err(format!(
            "stored run record of decision {decision_id} does not name this decision and its catalog"
        )),
    }
}

/// A decision as an audit event recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedDecision {
    /// 0-based index of the event in the log.
    pub index: u64,
    /// The event's hash.
    pub event_hash: String,
    /// The event's intent id.
    pub intent_id: String,
    /// The event's stage (`policy_check`, or the kernel's `govern`).
    pub stage: String,
    /// The decision id (`""` when the event has none).
    pub decision_id: String,
    /// The bundle version that decided.
    pub policy_bundle_version: String,
    /// The recorded action.
    pub action: String,
    /// The recorded fault codes, in order.
    pub faults: Vec<String>,
    /// The signature's `content_hash`.
    pub content_hash: String,
    /// The catalog hash (`None` when the event does not say; `""`: no catalog).
    pub catalog_hash: Option<String>,
    /// The replan counter, as recorded or recovered (see the module docs).
    pub replan_count: u32,
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn replan_from_reasoning(reasoning: &str) -> Option<u32> {
    let (_, tail) = reasoning.rsplit_once(" | replan ")?;
    let (n, _) = tail.split_once('/')?;
    n.parse::<u32>().ok()?.checked_sub(1)
}

impl RecordedDecision {
    /// The decision `event` records, or `None` when it is not a policy evaluation with
    /// a `content_hash` and fault codes. `cap` is the replan cap the log was written
    /// with (the engine's [`PolicyEngine::max_replan_attempts`]).
    pub fn of(index: u64, event: &AuditEvent, cap: u32) -> Option<Self> {
        if event.event_type != "policy_evaluation" {
            return None;
        }
        let d = &event.details;
        let content_hash = d.get("content_hash")?.as_str()?.to_owned();
        let faults = strings(d.get("faults"))?;
        let replan_count = match d.get("replan_count").and_then(Value::as_u64) {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None if faults == [MAX_REPLAN_CODE] => cap,
            None => d
                .get("reasoning")
                .and_then(Value::as_str)
                .and_then(replan_from_reasoning)
                .unwrap_or(0),
        };
        Some(RecordedDecision {
            index,
            event_hash: event.event_hash.clone(),
            intent_id: event.intent_id.clone(),
            stage: event.stage.clone(),
            decision_id: d
                .get("decision_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            policy_bundle_version: event.policy_bundle_version.clone(),
            action: event.outcome.clone(),
            faults,
            content_hash,
            catalog_hash: d
                .get("catalog_hash")
                .and_then(Value::as_str)
                .map(str::to_owned),
            replan_count,
        })
    }
}

/// What the candidate decides on a recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Replayed {
    /// Same action and fault codes.
    Same,
    /// The action or the fault codes differ.
    Changed {
        /// The candidate's action.
        action: PolicyAction,
        /// The candidate's fault codes.
        faults: Vec<String>,
        /// The candidate's rules that fired (names).
        rules: Vec<String>,
    },
    /// The inputs could not be found (or did not match their hashes).
    NotReplayable {
        /// Why.
        reason: String,
    },
}

/// Whether two decisions differ in action or fault codes (a shadow flip).
pub fn flipped(a: &PolicyResult, b: &PolicyResult) -> bool {
    a.action != b.action
        || a.faults.len() != b.faults.len()
        || a.faults
            .iter()
            .zip(&b.faults)
            .any(|(x, y)| x.code != y.code)
}

/// Decides `recorded` again with `engine`, from the inputs in `store`.
pub fn replay(
    recorded: &RecordedDecision,
    engine: &PolicyEngine,
    store: &ContentStore,
) -> Replayed {
    let missing = |reason: String| Replayed::NotReplayable { reason };
    let text = match store.get(SIGNATURES, &recorded.content_hash) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return missing(format!(
                "signature {} is not in {}",
                recorded.content_hash,
                store.dir().display()
            ));
        }
        Err(e) => return missing(e.to_string()),
    };
    let signature = match serde_json::from_str::<Value>(&text)
        .map_err(|e| e.to_string())
        .and_then(|v| StateSignature::from_value(&v).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            return missing(format!(
                "stored signature {} cannot be read: {e}",
                recorded.content_hash
            ));
        }
    };
    if signature.content_hash() != recorded.content_hash {
        return missing(format!(
            "stored signature {} does not hash to its name (it was changed)",
            recorded.content_hash
        ));
    }
    // A governed run's event does not name its catalog: the run's record does.
    let from_run;
    let catalog_hash = match recorded.catalog_hash.as_deref() {
        Some(h) => h,
        None => match run_catalog_hash(store, &recorded.decision_id) {
            Ok(Some(h)) => {
                from_run = h;
                from_run.as_str()
            }
            Ok(None) => return missing("the event does not name its catalog".into()),
            Err(e) => return missing(e),
        },
    };
    let catalog = match catalog_hash {
        "" => None,
        hash => match store.get(CATALOGS, hash) {
            Ok(Some(text)) => {
                let c = serde_json::from_str::<Value>(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|v| Catalog::from_value(&v).map_err(|e| e.to_string()));
                match c {
                    Ok(c) if c.hash() == hash => Some(c),
                    Ok(_) => {
                        return missing(format!(
                            "stored catalog {hash} does not hash to its name (it was changed)"
                        ));
                    }
                    Err(e) => return missing(format!("stored catalog {hash} cannot be read: {e}")),
                }
            }
            Ok(None) => {
                return missing(format!(
                    "catalog {hash} is not in {}",
                    store.dir().display()
                ));
            }
            Err(e) => return missing(e.to_string()),
        },
    };
    let own = engine.evaluate_with_catalog(&signature, catalog.as_ref(), recorded.replan_count);
    let result = under_recorded_control(own, recorded, engine);
    let faults: Vec<String> = result.faults.iter().map(|f| f.code.to_string()).collect();
    if result.action.as_str() == recorded.action && faults == recorded.faults {
        Replayed::Same
    } else {
        Replayed::Changed {
            action: result.action,
            rules: cfa_policy::cases::fired_rules(engine, &result),
            faults,
        }
    }
}

/// The fault codes the control plane appends to a decision it blocks: a kill switch,
/// a failed control store, an approval hold or a refused ticket.
const CONTROL_CODES: [&str; 9] = [
    cfa_control::snapshot::KILL_SWITCH_ENGAGED,
    cfa_control::snapshot::CONTROL_STORE_ERROR,
    cfa_control::approval::APPROVAL_REQUIRED,
    cfa_control::approval::APPROVAL_PENDING,
    cfa_control::approval::APPROVAL_UNKNOWN,
    cfa_control::approval::APPROVAL_MISMATCH,
    cfa_control::approval::APPROVAL_EXPIRED,
    cfa_control::approval::APPROVAL_SPENT,
    cfa_control::approval::APPROVAL_DENIED,
];

/// The candidate's answer `own` as the control plane that blocked the recorded decision
/// would have left it, so a backtest compares bundle with bundle under the same
/// operator state (docs/architecture.md, the control plane): the recorded event keeps
/// the controlled answer, whose last fault is then the control plane's.
/// - A kill switch or a failed store blocks whatever the bundle says: the candidate is
///   blocked the same way.
/// - An approval hold or a refused ticket applies only while the bundle's answer has a
///   fault an approval must lift: the candidate is blocked the same way when it still
///   has one, else the approval step would have let its answer stand.
///
/// A decision the control plane did not block is compared as the candidate decides it.
pub fn under_recorded_control(
    own: PolicyResult,
    recorded: &RecordedDecision,
    engine: &PolicyEngine,
) -> PolicyResult {
    let Some(code) = recorded
        .faults
        .last()
        .filter(|c| recorded.action == "block" && CONTROL_CODES.contains(&c.as_str()))
    else {
        return own;
    };
    let blocks_anyway = code == cfa_control::snapshot::KILL_SWITCH_ENGAGED
        || code == cfa_control::snapshot::CONTROL_STORE_ERROR;
    if !blocks_anyway && !own.faults.iter().any(|f| engine.requires_approval(&f.code)) {
        return own;
    }
    let fault = cfa_control::snapshot::control_fault(
        code,
        "as recorded: the control plane blocked this decision".to_owned(),
        Vec::new(),
    );
    cfa_control::snapshot::blocked(&own, fault)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::{PolicyCheck, SequentialIds};
    use cfa_audit::{AuditStore, FixedClock, MemoryStore};
    use serde_json::json;

    fn signature(partition_by: &[&str], intent: &str) -> StateSignature {
        StateSignature::from_value(&json!({
            "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"no_pii_raw": true, "merge_key_required": true,
                            "enforce_types": true, "partition_by": partition_by,
                            "max_cost_dbu": 20.0},
            "intent_id": intent
        }))
        .unwrap()
    }

    /// The decisions recorded in `log`, in order (cap 3).
    fn recorded(log: &MemoryStore) -> Vec<RecordedDecision> {
        events(log)
            .iter()
            .enumerate()
            .filter_map(|(i, e)| RecordedDecision::of(i as u64, e, 3))
            .collect()
    }

    /// A candidate bundle of one blocking rule.
    fn candidate(name: &str, condition: &str, code: &str) -> PolicyEngine {
        let yaml = format!(
            "version: candidate\nrules:\n  - {{name: {name}, condition: {condition}, \
             action: block, fault_code: {code}, severity: high, message: m}}\n"
        );
        PolicyEngine::from_bundle(
            cfa_policy::load_bundle(&yaml, cfa_policy::BundleFormat::Yaml, "candidate.yaml")
                .unwrap(),
        )
        .unwrap()
    }

    fn events(store: &MemoryStore) -> Vec<AuditEvent> {
        let mut out = Vec::new();
        store
            .scan(&mut |e| {
                out.push(e);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    #[test]
    fn recorded_decisions_replay_and_flips_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = ContentStore::open(dir.path());
        let engine = PolicyEngine::default();
        let (ids, clock, log) = (
            SequentialIds::new(),
            FixedClock("2026-01-01T00:00:00+00:00".into()),
            MemoryStore::new(),
        );
        let catalog = Catalog::from_value(&json!({"datasets": {}})).unwrap();
        let sigs = [signature(&[], "a"), signature(&["processing_date"], "b")];
        for (i, s) in sigs.iter().enumerate() {
            PolicyCheck::new(&engine, &ids, &clock)
                .catalog((i == 1).then_some(&catalog))
                .replan_count(if i == 0 { 1 } else { 0 })
                .inputs(Some(&inputs))
                .audit(Some(&log))
                .decide(s)
                .unwrap();
        }
        // The cap, recorded without any signature stored.
        PolicyCheck::new(&engine, &ids, &clock)
            .replan_count(3)
            .audit(Some(&log))
            .decide(&signature(&["x"], "c"))
            .unwrap();
        let recorded = recorded(&log);
        assert_eq!(recorded.len(), 3);
        assert_eq!(recorded[0].replan_count, 1, "from `replan 2/3`");
        assert_eq!(recorded[2].replan_count, 3, "the cap's fault");
        // The same bundle replays every stored decision unchanged.
        assert_eq!(replay(&recorded[0], &engine, &inputs), Replayed::Same);
        assert_eq!(replay(&recorded[1], &engine, &inputs), Replayed::Same);
        assert!(matches!(
            replay(&recorded[2], &engine, &inputs),
            Replayed::NotReplayable { .. }
        ));
        // A bundle without the partition rule flips the first decision only.
        let candidate = candidate("typed", "enforce_types_disabled", "UNTYPED");
        let flip = replay(&recorded[0], &candidate, &inputs);
        let Replayed::Changed { action, .. } = flip else {
            panic!("{flip:?}")
        };
        assert_eq!(action, PolicyAction::Approve);
        assert_eq!(replay(&recorded[1], &candidate, &inputs), Replayed::Same);
        // An edited stored signature is refused, not replayed.
        let path = inputs.path_of(SIGNATURES, &recorded[0].content_hash);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("4000", "4001")).unwrap();
        let Replayed::NotReplayable { reason } = replay(&recorded[0], &engine, &inputs) else {
            panic!()
        };
        assert!(reason.contains("does not hash to its name"), "{reason}");
    }

    #[test]
    fn decisions_a_kill_switch_blocked_replay_under_the_same_switch() {
        use cfa_control::{ControlDb, KillSwitch, Scope};
        let dir = tempfile::tempdir().unwrap();
        let inputs = ContentStore::open(dir.path().join("inputs"));
        let db = std::sync::Arc::new(ControlDb::open(dir.path().join("l.db")).unwrap());
        db.engage(&KillSwitch {
            scope: Scope::All,
            reason: "incident".into(),
            by: "ana".into(),
            engaged_at: "2026-01-01T00:00:00+00:00".into(),
        })
        .unwrap();
        let plane = crate::ControlPlane::new(db, "test");
        let engine = PolicyEngine::default();
        let (ids, clock, log) = (
            SequentialIds::new(),
            FixedClock("2026-01-01T00:00:00+00:00".into()),
            MemoryStore::new(),
        );
        // "a" approves under the bundle, "b" is replanned: both blocked by the switch.
        for s in [signature(&["processing_date"], "a"), signature(&[], "b")] {
            let d = PolicyCheck::new(&engine, &ids, &clock)
                .inputs(Some(&inputs))
                .audit(Some(&log))
                .control(Some(&plane))
                .decide(&s)
                .unwrap();
            assert_eq!(d.result.action, PolicyAction::Block);
        }
        let recorded = recorded(&log);
        assert_eq!(recorded.len(), 2);
        // The same bundle: no flip, although its own answers were approve and replan.
        assert_eq!(replay(&recorded[0], &engine, &inputs), Replayed::Same);
        assert_eq!(replay(&recorded[1], &engine, &inputs), Replayed::Same);
        // A bundle that changes the faults is still found, under the same switch.
        let candidate = candidate("typed", "enforce_types_disabled", "UNTYPED");
        assert_eq!(replay(&recorded[0], &candidate, &inputs), Replayed::Same);
        let Replayed::Changed { action, faults, .. } = replay(&recorded[1], &candidate, &inputs)
        else {
            panic!("the partition fault the candidate drops is a change")
        };
        assert_eq!(action, PolicyAction::Block);
        assert_eq!(faults, ["KILL_SWITCH_ENGAGED"]);
    }

    #[test]
    fn governed_runs_store_their_inputs_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = std::sync::Arc::new(ContentStore::open(dir.path()));
        let log = std::sync::Arc::new(MemoryStore::new());
        let catalog: Value =
            serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap();
        let catalog = Catalog::from_value(&catalog).unwrap();
        let config = crate::KernelConfig::new(PolicyEngine::default(), catalog.clone());
        let kernel = crate::Kernel::builder(config)
            .audit(log.clone())
            .inputs(Some(inputs.clone()))
            .ids(SequentialIds::new())
            .clock(crate::TickClock::new(1_767_225_600))
            .build()
            .unwrap();
        let silver = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
        let gold = kernel.process("Join nfe with clientes daily, anonymize pii, into gold");
        let recorded = recorded(&log);
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        assert!(recorded.iter().all(|r| r.stage == "govern"));
        assert_eq!(recorded[0].decision_id, silver.decision_id);
        assert_eq!(recorded[1].content_hash, gold.content_hash);
        // The catalog is named by the run's record, not by the event.
        assert_eq!(recorded[0].catalog_hash, None);
        assert!(inputs.get(CATALOGS, &catalog.hash()).unwrap().is_some());
        let engine = PolicyEngine::default();
        for r in &recorded {
            assert_eq!(replay(r, &engine, &inputs), Replayed::Same, "{r:?}");
        }
        // A rule on gold writes flips the gold run only.
        let candidate = candidate("gold", "unauthorized_gold_write", "GOLD");
        assert_eq!(replay(&recorded[0], &candidate, &inputs), Replayed::Same);
        let Replayed::Changed { action, faults, .. } = replay(&recorded[1], &candidate, &inputs)
        else {
            panic!()
        };
        assert_eq!(
            (action, faults),
            (PolicyAction::Block, vec!["GOLD".to_owned()])
        );
        // Without its run record the catalog is unknown: not replayable, never guessed.
        std::fs::remove_file(inputs.path_of(RUNS, &run_key(&gold.decision_id))).unwrap();
        assert!(matches!(
            replay(&recorded[1], &engine, &inputs),
            Replayed::NotReplayable { .. }
        ));
    }

    #[test]
    fn flips_compare_action_and_codes() {
        let engine = PolicyEngine::default();
        let a = engine.evaluate(&signature(&[], "a"), 0);
        let b = engine.evaluate(&signature(&["processing_date"], "a"), 0);
        assert!(!flipped(&a, &a));
        assert!(flipped(&a, &b));
    }
}
