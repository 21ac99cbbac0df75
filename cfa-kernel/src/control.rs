//! The control plane's hook on the decision: the one place where the operator's state
//! (cfa-control: kill switches, approval tickets, and budgets next) is applied after the
//! policy's own decision, for both [`PolicyCheck::decide`](crate::PolicyCheck::decide)
//! and the governed run's govern phase.
//!
//! # Design: order of the checks
//!
//! [`ControlPlane::apply`] runs once per decision, after `PolicyEngine` has answered:
//!
//! 1. take one [`ControlSnapshot`] from the [`ControlStore`] (the engaged switches, and
//!    the ticket the signature names in `constraints.custom.approval_id`);
//! 2. ask the pure [`cfa_control::gate`] for its verdict, which checks, in this order,
//!    **kill switch → approvals → budgets**: a switch covering the decision blocks it
//!    (`KILL_SWITCH_ENGAGED`) before any ticket is looked at; a ticket is checked (and
//!    a new one opened for a decision held by approvable faults) before any budget;
//!    budgets (task B) are checked last, on what the first two let through, by adding
//!    their snapshot part and a step at the end of `gate` and, for a reservation, an arm
//!    below next to the spend of a ticket;
//! 3. carry the verdict out: open the ticket (id from the [`IdSource`], expiry from the
//!    injected time), or spend the ticket in one transaction (the loser of a race gets
//!    `APPROVAL_SPENT`), and rewrite the result accordingly.
//!
//! A store that fails blocks the decision with `CONTROL_STORE_ERROR` (fail closed).
//! Without a [`ControlPlane`] nothing here runs and decisions are exactly as before.
//! The audit events of what happened ([`control_events`], stage `control`) follow the
//! decision's own event.

use crate::ids::{IdKind, IdSource};
use cfa_audit::NewEvent;
use cfa_control::approval::{self, Ticket, TicketStatus};
use cfa_control::snapshot::{self, ControlOutcome, ControlStatus};
use cfa_control::{ControlRequest, ControlSnapshot, ControlStore, ControlVerdict, KillSwitch};
use cfa_policy::PolicyEngine;
use cfa_types::{PolicyResult, StateSignature};
use std::sync::Arc;

/// The audit stage of control events.
pub const STAGE: &str = "control";

/// Default lifetime of an approval ticket: 24 hours.
pub const DEFAULT_TICKET_TTL_SECS: i64 = 86_400;

/// The control plane a kernel or a policy check applies after the policy: a store, the
/// lifetime of the tickets it opens, and who is asking.
#[derive(Clone)]
pub struct ControlPlane {
    store: Arc<dyn ControlStore>,
    ticket_ttl_secs: i64,
    requester: String,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("ticket_ttl_secs", &self.ticket_ttl_secs)
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// The control plane over `store`, tickets living [`DEFAULT_TICKET_TTL_SECS`],
    /// requested by `requester` (the face's name, unless the signature names its
    /// caller in `constraints.custom.agent_id`).
    pub fn new(store: Arc<dyn ControlStore>, requester: impl Into<String>) -> Self {
        ControlPlane {
            store,
            ticket_ttl_secs: DEFAULT_TICKET_TTL_SECS,
            requester: requester.into(),
        }
    }

    /// Tickets opened from now on live `secs` seconds (at least 1).
    #[must_use]
    pub fn ticket_ttl_secs(mut self, secs: i64) -> Self {
        self.ticket_ttl_secs = secs.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ControlStore> {
        &self.store
    }

    /// Applies the control plane to `result`, the decision `engine` (hashed
    /// `bundle_hash`) made on `signature`, at `now` (RFC 3339, injected): the result as
    /// it stands afterwards and what the control plane did (`None`: nothing; else the
    /// outcome keeps the bundle's own `result` in [`ControlOutcome::bundle_result`],
    /// moved there, not copied).
    pub fn apply(
        &self,
        engine: &PolicyEngine,
        bundle_hash: &str,
        signature: &StateSignature,
        result: PolicyResult,
        ids: &dyn IdSource,
        now: &str,
    ) -> (PolicyResult, Option<ControlOutcome>) {
        let approvable = |code: &str| engine.requires_approval(code);
        let request = ControlRequest::of(signature, bundle_hash, &approvable);
        let snapshot = match self.store.snapshot(request.approval_id) {
            Ok(s) => s,
            Err(e) => return store_failed(result, &e),
        };
        self.carry_out(engine, &request, &snapshot, result, ids, now)
    }

    fn carry_out(
        &self,
        engine: &PolicyEngine,
        request: &ControlRequest<'_>,
        snapshot: &ControlSnapshot,
        result: PolicyResult,
        ids: &dyn IdSource,
        now: &str,
    ) -> (PolicyResult, Option<ControlOutcome>) {
        match cfa_control::gate(&result, request, snapshot, now) {
            ControlVerdict::Pass => (result, None),
            ControlVerdict::Killed(kill) => (
                snapshot::blocked(&result, snapshot::kill_fault(&kill)),
                Some(outcome_killed(kill, result)),
            ),
            ControlVerdict::Refuse {
                code,
                message,
                ticket_id,
            } => refused(result, code, message, ticket_id),
            ControlVerdict::Hold { reason, codes } => {
                let expires_at = match expiry(now, self.ticket_ttl_secs) {
                    Ok(e) => e,
                    Err(e) => return store_failed(result, &e),
                };
                let ticket = Ticket {
                    id: ids.next_id(IdKind::Ticket),
                    status: TicketStatus::Pending,
                    intent_id: request.intent_id.to_owned(),
                    content_hash: request.content_hash.clone(),
                    policy_bundle_hash: request.policy_bundle_hash.to_owned(),
                    policy_bundle: engine.version().to_owned(),
                    requester: request.subject.agent.unwrap_or(&self.requester).to_owned(),
                    reason,
                    fault_codes: codes,
                    created_at: now.to_owned(),
                    expires_at,
                    decided_by: None,
                    decided_at: None,
                    note: None,
                    spent_at: None,
                };
                if let Err(e) = self.store.open_ticket(&ticket) {
                    return store_failed(result, &e);
                }
                let held = snapshot::blocked(&result, snapshot::hold_fault(&ticket));
                (
                    held,
                    Some(ControlOutcome {
                        status: ControlStatus::PendingApproval,
                        fault_code: Some(approval::APPROVAL_REQUIRED.to_owned()),
                        ticket_id: Some(ticket.id.clone()),
                        ticket: Some(ticket),
                        kill: None,
                        bundle_result: result,
                    }),
                )
            }
            ControlVerdict::Spend(ticket) => match self.store.spend_ticket(&ticket.id, now) {
                Ok(true) => {
                    let mut spent = *ticket;
                    spent.status = TicketStatus::Spent;
                    spent.spent_at = Some(now.to_owned());
                    (
                        snapshot::approved(&result),
                        Some(ControlOutcome {
                            status: ControlStatus::Approved,
                            fault_code: None,
                            ticket_id: Some(spent.id.clone()),
                            ticket: Some(spent),
                            kill: None,
                            bundle_result: result,
                        }),
                    )
                }
                Ok(false) => refused(
                    result,
                    approval::APPROVAL_SPENT,
                    format!(
                        "Approval ticket '{}' was spent by another decision first; it is single-use.",
                        ticket.id
                    ),
                    ticket.id.clone(),
                ),
                Err(e) => store_failed(result, &e),
            },
        }
    }
}

fn outcome_killed(kill: KillSwitch, bundle_result: PolicyResult) -> ControlOutcome {
    ControlOutcome {
        status: ControlStatus::Killed,
        fault_code: Some(snapshot::KILL_SWITCH_ENGAGED.to_owned()),
        ticket_id: None,
        ticket: None,
        kill: Some(kill),
        bundle_result,
    }
}

fn refused(
    result: PolicyResult,
    code: &str,
    message: String,
    ticket_id: String,
) -> (PolicyResult, Option<ControlOutcome>) {
    let fault = snapshot::control_fault(
        code,
        message,
        vec![
            "Resubmit the exact signature the ticket was opened for, under the same bundle, once an operator has approved it (cfa approvals show ID)."
                .to_owned(),
            "Or resubmit without constraints.custom.approval_id to open a new ticket.".to_owned(),
        ],
    );
    (
        snapshot::blocked(&result, fault),
        Some(ControlOutcome {
            status: ControlStatus::ApprovalRefused,
            fault_code: Some(code.to_owned()),
            ticket_id: Some(ticket_id),
            ticket: None,
            kill: None,
            bundle_result: result,
        }),
    )
}

fn store_failed(
    result: PolicyResult,
    e: &cfa_control::ControlError,
) -> (PolicyResult, Option<ControlOutcome>) {
    let fault = snapshot::control_fault(
        snapshot::CONTROL_STORE_ERROR,
        format!("The control store failed, so the decision fails closed: {e}"),
        vec!["Make the lifecycle database readable and writable, then retry.".to_owned()],
    );
    (
        snapshot::blocked(&result, fault),
        Some(ControlOutcome {
            status: ControlStatus::Error,
            fault_code: Some(snapshot::CONTROL_STORE_ERROR.to_owned()),
            ticket_id: None,
            ticket: None,
            kill: None,
            bundle_result: result,
        }),
    )
}

/// `now` plus `secs`, in the audit log's timestamp format.
fn expiry(now: &str, secs: i64) -> Result<String, cfa_control::ControlError> {
    let t = cfa_control::parse_time(now)?;
    let end = t.as_second().saturating_add(secs);
    Ok(cfa_types::time::isoformat_utc(
        end,
        u32::try_from(t.subsec_microsecond()).unwrap_or(0),
    ))
}

/// The audit events of what the control plane did to one decision, in order:
/// `approval_requested` for a held decision, `approval_spent` for one a ticket approved
/// (stage `control`, intent id the signature's). Other outcomes are recorded by the
/// decision's own event (its faults name them).
pub fn control_events(outcome: &ControlOutcome, intent_id: &str, timestamp: &str) -> Vec<NewEvent> {
    let Some(ticket) = &outcome.ticket else {
        return Vec::new();
    };
    match outcome.status {
        ControlStatus::PendingApproval => vec![
            ticket_event(ticket, "approval_requested", "pending", timestamp)
                .detail("by", ticket.requester.clone())
                .detail("reason", ticket.reason.clone())
                .detail("fault_codes", ticket.fault_codes.clone())
                .detail("expires_at", ticket.expires_at.clone()),
        ],
        ControlStatus::Approved => vec![
            ticket_event(ticket, "approval_spent", "spent", timestamp)
                .detail("by", ticket.requester.clone())
                .detail("expires_at", ticket.expires_at.clone()),
        ]
        .into_iter()
        .map(|e| {
            if ticket.intent_id == intent_id {
                e
            } else {
                e.detail("spent_by_intent_id", intent_id.to_owned())
            }
        })
        .collect(),
        _ => Vec::new(),
    }
}

/// The event of an operator granting (`approval_granted`) or denying
/// (`approval_denied`) `ticket` (as stored after the change).
pub fn resolution_event(ticket: &Ticket, timestamp: &str) -> NewEvent {
    let (event_type, outcome) = match ticket.status {
        TicketStatus::Denied => ("approval_denied", "denied"),
        _ => ("approval_granted", "granted"),
    };
    ticket_event(ticket, event_type, outcome, timestamp)
        .detail("by", ticket.decided_by.clone().unwrap_or_default())
        .detail("note", ticket.note.clone().unwrap_or_default())
        .detail("expires_at", ticket.expires_at.clone())
}

/// The event of a kill switch engaged (`kill_engaged`) or released (`kill_released`,
/// `by` the operator who lifted it): intent id `control`.
pub fn kill_event(kill: &KillSwitch, engaged: bool, by: &str, timestamp: &str) -> NewEvent {
    let (event_type, outcome) = if engaged {
        ("kill_engaged", "engaged")
    } else {
        ("kill_released", "released")
    };
    NewEvent::new("control", STAGE, event_type, outcome, timestamp)
        .detail("scope", kill.scope.to_string())
        .detail("by", by.to_owned())
        .detail("reason", kill.reason.clone())
        .detail("engaged_by", kill.by.clone())
        .detail("engaged_at", kill.engaged_at.clone())
}

fn ticket_event(ticket: &Ticket, event_type: &str, outcome: &str, timestamp: &str) -> NewEvent {
    NewEvent::new(
        ticket.intent_id.clone(),
        STAGE,
        event_type,
        outcome,
        timestamp,
    )
    .detail("ticket_id", ticket.id.clone())
    .detail("content_hash", ticket.content_hash.clone())
    .with_bundle(
        ticket.policy_bundle.clone(),
        ticket.policy_bundle_hash.clone(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{PolicyCheck, SequentialIds};
    use cfa_audit::{AuditStore, FixedClock, MemoryStore};
    use cfa_control::{ControlDb, Resolution, Scope};
    use cfa_policy::{ConditionRegistry, RuleParams, RuleSpec};
    use cfa_types::{FaultFamily, FaultSeverity, PolicyAction};
    use serde_json::json;

    const T0: &str = "2026-01-01T00:00:00+00:00";

    fn engine() -> PolicyEngine {
        let gold = RuleSpec {
            name: "gold_needs_approval".into(),
            condition: "unauthorized_gold_write".into(),
            action: PolicyAction::Block,
            fault_code: "GOLD_APPROVAL".into(),
            severity: FaultSeverity::Critical,
            family: FaultFamily::Semantic,
            message: "Gold writes need an approval.".into(),
            remediation: vec![],
            params: RuleParams::default(),
        };
        PolicyEngine::default()
            .extended("v1.0+gold", vec![gold], &ConditionRegistry::with_builtins())
            .unwrap()
    }

    fn signature(approval: Option<&str>) -> StateSignature {
        let mut v = json!({
            "domain": "fiscal", "intent": "publish", "target_layer": "gold",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                            "partition_by": ["processing_date"], "max_cost_dbu": 20.0},
            "intent_id": "11111111-2222-3333-4444-555555555555"
        });
        if let Some(a) = approval {
            v["constraints"]["custom"] = json!({"approval_id": a});
        }
        StateSignature::from_value(&v).unwrap()
    }

    fn codes(d: &crate::Decision) -> Vec<String> {
        d.result.faults.iter().map(|f| f.code.to_string()).collect()
    }

    #[test]
    fn a_held_decision_is_approved_once_by_its_granted_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(ControlDb::open(dir.path().join("l.db")).unwrap());
        let plane = ControlPlane::new(db.clone(), "test");
        let (engine, ids, clock, store) = (
            engine(),
            SequentialIds::new(),
            FixedClock(T0.into()),
            MemoryStore::new(),
        );
        let check = PolicyCheck::new(&engine, &ids, &clock)
            .bundle_hash("bh")
            .audit(Some(&store))
            .control(Some(&plane));
        let held = check.decide(&signature(None)).unwrap();
        assert_eq!(held.result.action, PolicyAction::Block);
        assert_eq!(codes(&held), ["GOLD_APPROVAL", "APPROVAL_REQUIRED"]);
        let outcome = held.control.clone().unwrap();
        assert_eq!(outcome.status, ControlStatus::PendingApproval);
        assert_eq!(outcome.ticket_id.as_deref(), Some("ticket-000001"));
        let ticket = outcome.ticket.unwrap();
        assert_eq!(ticket.expires_at, "2026-01-02T00:00:00+00:00");
        assert_eq!(ticket.content_hash, signature(None).content_hash());
        assert_eq!(held.document()["control"]["status"], "pending_approval");
        // not approved yet
        let early = check.decide(&signature(Some("ticket-000001"))).unwrap();
        assert_eq!(codes(&early), ["APPROVAL_PENDING"]);
        db.resolve("ticket-000001", Resolution::Grant, "ana", None, T0)
            .unwrap();
        let ok = check.decide(&signature(Some("ticket-000001"))).unwrap();
        assert_eq!(ok.result.action, PolicyAction::Approve, "{:?}", ok.result);
        assert_eq!(ok.control.as_ref().unwrap().status, ControlStatus::Approved);
        let again = check.decide(&signature(Some("ticket-000001"))).unwrap();
        assert_eq!(codes(&again), ["APPROVAL_SPENT"]);
        assert_eq!(again.result.action, PolicyAction::Block);
        // events: policy_check, approval_requested, then one per decision, approval_spent
        let mut kinds = Vec::new();
        store
            .scan(&mut |e| {
                kinds.push(format!("{}/{}", e.stage, e.event_type));
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            kinds,
            [
                "policy_check/policy_evaluation",
                "control/approval_requested",
                "policy_check/policy_evaluation",
                "policy_check/policy_evaluation",
                "control/approval_spent",
                "policy_check/policy_evaluation",
            ]
        );
    }

    #[test]
    fn a_kill_switch_blocks_the_governed_run_and_a_policy_check() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(ControlDb::open(dir.path().join("l.db")).unwrap());
        db.engage(&KillSwitch {
            scope: Scope::All,
            reason: "incident 7".into(),
            by: "ana".into(),
            engaged_at: T0.into(),
        })
        .unwrap();
        let plane = ControlPlane::new(db.clone(), "test");
        let (engine, ids, clock) = (engine(), SequentialIds::new(), FixedClock(T0.into()));
        let mut ok = signature(Some("x"));
        ok.target_layer = cfa_types::TargetLayer::Silver;
        let d = PolicyCheck::new(&engine, &ids, &clock)
            .control(Some(&plane))
            .decide(&ok)
            .unwrap();
        assert_eq!(codes(&d), ["KILL_SWITCH_ENGAGED"]);
        assert!(d.result.faults[0].message.contains("by ana"));

        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap();
        let config = crate::KernelConfig::new(
            PolicyEngine::default(),
            cfa_types::Catalog::from_value(&catalog).unwrap(),
        );
        let kernel = crate::Kernel::builder(config)
            .ids(SequentialIds::new())
            .clock(crate::TickClock::new(1_767_225_600))
            .control(plane)
            .build()
            .unwrap();
        let r = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
        assert_eq!(r.state, cfa_types::DecisionState::Blocked);
        assert!(
            r.faults.iter().any(|f| f.code == "KILL_SWITCH_ENGAGED"),
            "{:?}",
            r.faults
        );
        db.release(&Scope::All).unwrap();
        let r = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
        assert_eq!(
            r.state,
            cfa_types::DecisionState::Approved,
            "{}",
            r.blocked_reason
        );
    }

    #[test]
    fn the_bundles_own_result_is_kept_beside_the_controlled_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(ControlDb::open(dir.path().join("l.db")).unwrap());
        let plane = ControlPlane::new(db.clone(), "test");
        let (engine, ids, clock) = (engine(), SequentialIds::new(), FixedClock(T0.into()));
        let mut ok = signature(None);
        ok.target_layer = cfa_types::TargetLayer::Silver;
        let check = PolicyCheck::new(&engine, &ids, &clock).control(Some(&plane));
        // Nothing engaged: no outcome, and the bundle's result is the result.
        let free = check.decide(&ok).unwrap();
        assert!(free.control.is_none());
        assert_eq!(free.policy_result(), &free.result);
        db.engage(&KillSwitch {
            scope: Scope::All,
            reason: "incident 8".into(),
            by: "ana".into(),
            engaged_at: T0.into(),
        })
        .unwrap();
        let killed = check.decide(&ok).unwrap();
        assert_eq!(killed.result.action, PolicyAction::Block);
        assert_eq!(killed.policy_result(), &engine.evaluate(&ok, 0));
        assert_eq!(killed.policy_result().action, PolicyAction::Approve);
        // The document is unchanged by what is kept (no `bundle_result` key).
        let doc = killed.document();
        assert!(doc["control"].get("bundle_result").is_none(), "{doc}");
        assert_eq!(doc["decision"]["action"], "block");
        // A held gold write: the bundle blocked with its own fault only.
        let held = check.decide(&signature(None)).unwrap();
        assert_eq!(codes(&held), ["GOLD_APPROVAL", "KILL_SWITCH_ENGAGED"]);
        let own: Vec<&str> = held
            .policy_result()
            .faults
            .iter()
            .map(|f| f.code.as_str())
            .collect();
        assert_eq!(own, ["GOLD_APPROVAL"]);

        // The governed run keeps the bundle's last result too.
        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/catalog.json")).unwrap();
        let config = crate::KernelConfig::new(
            PolicyEngine::default(),
            cfa_types::Catalog::from_value(&catalog).unwrap(),
        );
        let kernel = crate::Kernel::builder(config)
            .ids(SequentialIds::new())
            .clock(crate::TickClock::new(1_767_225_600))
            .control(plane)
            .build()
            .unwrap();
        let intent = "Join nfe with clientes daily, anonymize pii, into silver";
        let r = kernel.process(intent);
        assert_eq!(r.state, cfa_types::DecisionState::Blocked);
        let enforced = r.policy_result.as_ref().unwrap();
        assert_eq!(enforced.action, PolicyAction::Block);
        let own = r.bundle_policy_result().unwrap();
        assert_eq!(own.action, PolicyAction::Approve, "{own:?}");
        assert!(own.faults.iter().all(|f| f.code != "KILL_SWITCH_ENGAGED"));
        // Not serialised: the JSON result is what it was.
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("bundle_result").is_none());
        db.release(&Scope::All).unwrap();
        let r = kernel.process(intent);
        assert!(r.bundle_result.is_none());
        assert_eq!(r.bundle_policy_result(), r.policy_result.as_ref());
    }
}
