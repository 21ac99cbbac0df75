//! The control plane's part of a decision: a point-in-time [`ControlSnapshot`] of the
//! store, the [`ControlRequest`] a decision makes of it, the pure [`gate`] that turns a
//! finished [`PolicyResult`] into a [`ControlVerdict`], the functions that apply a
//! verdict to the result, and the [`ControlStore`] a face reads snapshots from and
//! writes tickets to.
//!
//! Order of the checks in [`gate`] (each later check runs only when the earlier ones
//! let the decision through):
//!
//! 1. **Kill switch.** An engaged switch whose scope covers the decision blocks it with
//!    `KILL_SWITCH_ENGAGED`, whatever the policy said.
//! 2. **Approvals.** A signature naming a ticket (`constraints.custom.approval_id`) is
//!    checked against it (bound to the same content hash and bundle, granted, not
//!    expired, not spent); a decision blocked only by faults an approval can lift is
//!    held for a new ticket.
//! 3. **Budgets** slot in here, after approvals: a decision the first two let through
//!    is checked against the budgets of its scopes.

use crate::approval::{self, APPROVAL_ID_KEY, Ticket, TicketStatus};
use crate::error::{ControlError, parse_time};
use crate::kill::{KillSwitch, Subject};
use cfa_types::{
    Fault, FaultFamily, FaultSeverity, PolicyAction, PolicyResult, SharedList, SharedStr,
    StateSignature,
};
use serde::Serialize;
use serde_json::Value;

/// The stage control faults carry.
pub const STAGE: &str = "control";
/// Fault code: a kill switch covers the decision.
pub const KILL_SWITCH_ENGAGED: &str = "KILL_SWITCH_ENGAGED";
/// Fault code: the control store could not be read or written (the decision fails closed).
pub const CONTROL_STORE_ERROR: &str = "CONTROL_STORE_ERROR";

/// What the decision path may read of the control store, taken before the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlSnapshot {
    /// Every engaged kill switch, ordered by scope.
    pub kills: Vec<KillSwitch>,
    /// The tickets the decision may name (the store loads the one it names).
    pub tickets: Vec<Ticket>,
}

/// What a decision asks of the control plane.
pub struct ControlRequest<'a> {
    /// What the decision is about (domain, targets, caller).
    pub subject: Subject<'a>,
    /// The signature's `intent_id`.
    pub intent_id: &'a str,
    /// [`bound_content_hash`] of the signature.
    pub content_hash: String,
    /// Hash of the bundle that decided (`""` for the default rules).
    pub policy_bundle_hash: &'a str,
    /// The ticket the signature names, if any.
    pub approval_id: Option<&'a str>,
    /// Whether an approval can lift a fault code (the bundle's `require_approval` rules
    /// and its `unauthorized_gold_write` rules).
    pub approvable: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for ControlRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlRequest")
            .field("subject", &self.subject)
            .field("intent_id", &self.intent_id)
            .field("content_hash", &self.content_hash)
            .field("policy_bundle_hash", &self.policy_bundle_hash)
            .field("approval_id", &self.approval_id)
            .finish_non_exhaustive()
    }
}

impl<'a> ControlRequest<'a> {
    /// The request of a decision on `signature` by the bundle hashed `policy_bundle_hash`.
    pub fn of(
        signature: &'a StateSignature,
        policy_bundle_hash: &'a str,
        approvable: &'a dyn Fn(&str) -> bool,
    ) -> Self {
        ControlRequest {
            subject: subject(signature),
            intent_id: &signature.intent_id,
            content_hash: bound_content_hash(signature),
            policy_bundle_hash,
            approval_id: approval_id(signature),
            approvable,
        }
    }
}

/// The subject of a decision on `signature`: its domain, its target layer and dataset
/// names, and the caller named by `constraints.custom.agent_id`.
pub fn subject(signature: &StateSignature) -> Subject<'_> {
    let mut targets = Vec::with_capacity(1 + signature.datasets.len());
    targets.push(signature.target_layer.as_str());
    targets.extend(signature.datasets.iter().map(|d| d.name.as_str()));
    Subject {
        domain: &signature.domain,
        targets,
        agent: signature
            .constraints
            .custom
            .get("agent_id")
            .and_then(Value::as_str),
    }
}

/// The ticket `signature` names in `constraints.custom.approval_id` (trimmed; empty is none).
pub fn approval_id(signature: &StateSignature) -> Option<&str> {
    signature
        .constraints
        .custom
        .get(APPROVAL_ID_KEY)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The `content_hash` a ticket binds: the signature's, computed without
/// `constraints.custom.approval_id`, so a resubmission naming the ticket matches the
/// held signature exactly and any other change does not.
pub fn bound_content_hash(signature: &StateSignature) -> String {
    if !signature.constraints.custom.contains_key(APPROVAL_ID_KEY) {
        return signature.content_hash();
    }
    let mut held = signature.clone();
    held.constraints.custom.remove(APPROVAL_ID_KEY);
    held.content_hash()
}

/// The control plane's verdict on one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlVerdict {
    /// Nothing to add: the policy's answer stands.
    Pass,
    /// A kill switch covers the decision: block.
    Killed(KillSwitch),
    /// The decision is blocked only by faults an approval lifts: open a ticket.
    Hold {
        /// The faults an approval lifts, as `CODE: message`, joined with `; `.
        reason: String,
        /// Their codes.
        codes: Vec<String>,
    },
    /// The named ticket is granted and bound to this decision: spend it, then approve.
    Spend(Box<Ticket>),
    /// The named ticket cannot approve this decision: block with `code`.
    Refuse {
        /// One of the `APPROVAL_*` codes of [`approval`].
        code: &'static str,
        /// What is wrong, naming the ticket.
        message: String,
        /// The ticket named.
        ticket_id: String,
    },
}

/// The control plane's verdict on `result`, a pure function of its inputs: kill switch,
/// then approvals (then budgets); `now` (RFC 3339) is injected.
pub fn gate(
    result: &PolicyResult,
    request: &ControlRequest<'_>,
    snapshot: &ControlSnapshot,
    now: &str,
) -> ControlVerdict {
    if let Some(kill) = snapshot
        .kills
        .iter()
        .find(|k| k.scope.covers(&request.subject))
    {
        return ControlVerdict::Killed(kill.clone());
    }
    let lifted = |f: &Fault| {
        f.mandatory_action == PolicyAction::Approve || (request.approvable)(f.code.as_str())
    };
    let only_approvable = result.action == PolicyAction::Block
        && !result.faults.is_empty()
        && result.faults.iter().all(lifted);
    if let Some(id) = request.approval_id {
        if result.action == PolicyAction::Approve || only_approvable {
            return check_ticket(id, request, snapshot, now);
        }
        return ControlVerdict::Pass;
    }
    if only_approvable {
        let held: Vec<&Fault> = result
            .faults
            .iter()
            .filter(|f| f.mandatory_action != PolicyAction::Approve)
            .collect();
        return ControlVerdict::Hold {
            reason: held
                .iter()
                .map(|f| format!("{}: {}", f.code, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            codes: held.iter().map(|f| f.code.to_string()).collect(),
        };
    }
    ControlVerdict::Pass
}

fn check_ticket(
    id: &str,
    request: &ControlRequest<'_>,
    snapshot: &ControlSnapshot,
    now: &str,
) -> ControlVerdict {
    let refuse = |code, message: String| ControlVerdict::Refuse {
        code,
        message,
        ticket_id: id.to_owned(),
    };
    let Some(ticket) = snapshot.tickets.iter().find(|t| t.id == id) else {
        return refuse(
            approval::APPROVAL_UNKNOWN,
            format!("No approval ticket '{id}' exists."),
        );
    };
    match ticket.status {
        TicketStatus::Denied => {
            let by = ticket.decided_by.as_deref().unwrap_or("an operator");
            return refuse(
                approval::APPROVAL_DENIED,
                format!("Approval ticket '{id}' was denied by {by}."),
            );
        }
        TicketStatus::Spent => {
            return refuse(
                approval::APPROVAL_SPENT,
                format!("Approval ticket '{id}' already approved one decision; it is single-use."),
            );
        }
        TicketStatus::Pending | TicketStatus::Granted => {}
    }
    if ticket.content_hash != request.content_hash {
        return refuse(
            approval::APPROVAL_MISMATCH,
            format!(
                "Approval ticket '{id}' was issued for another signature (content_hash {}), not this one ({}).",
                ticket.content_hash, request.content_hash
            ),
        );
    }
    if ticket.policy_bundle_hash != request.policy_bundle_hash {
        return refuse(
            approval::APPROVAL_MISMATCH,
            format!(
                "Approval ticket '{id}' was issued under another policy bundle (hash '{}'), not this one ('{}').",
                ticket.policy_bundle_hash, request.policy_bundle_hash
            ),
        );
    }
    if is_expired(&ticket.expires_at, now) {
        return refuse(
            approval::APPROVAL_EXPIRED,
            format!("Approval ticket '{id}' expired at {}.", ticket.expires_at),
        );
    }
    if ticket.status == TicketStatus::Pending {
        return refuse(
            approval::APPROVAL_PENDING,
            format!("Approval ticket '{id}' is still waiting for an operator."),
        );
    }
    ControlVerdict::Spend(Box::new(ticket.clone()))
}

/// Whether `expires_at` is at or before `now`; an unreadable time counts as expired
/// (fail closed).
pub fn is_expired(expires_at: &str, now: &str) -> bool {
    match (parse_time(expires_at), parse_time(now)) {
        (Ok(e), Ok(n)) => e <= n,
        _ => true,
    }
}

/// A control fault: stage `control`, family environment, severity critical, action block.
pub fn control_fault(code: &str, message: String, remediation: Vec<String>) -> Fault {
    Fault {
        code: SharedStr::from(code),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: SharedStr::from_static(STAGE),
        message: message.into(),
        mandatory_action: PolicyAction::Block,
        remediation: remediation.into_iter().map(SharedStr::from).collect(),
        detected_before_execution: true,
    }
}

/// The fault of a decision an engaged switch blocks: who engaged it and why.
pub fn kill_fault(kill: &KillSwitch) -> Fault {
    control_fault(
        KILL_SWITCH_ENGAGED,
        format!(
            "Kill switch engaged on scope '{}' by {} at {}: {}",
            kill.scope, kill.by, kill.engaged_at, kill.reason
        ),
        vec![format!(
            "Wait until an operator lifts it (cfa unkill --scope '{}').",
            kill.scope
        )],
    )
}

/// The fault of a decision held for `ticket`.
pub fn hold_fault(ticket: &Ticket) -> Fault {
    control_fault(
        approval::APPROVAL_REQUIRED,
        format!(
            "Held for approval: ticket '{}' (expires {}) for {}",
            ticket.id, ticket.expires_at, ticket.reason
        ),
        vec![
            format!(
                "An operator approves it: cfa approvals approve {} --by NAME",
                ticket.id
            ),
            format!(
                "Then resubmit the same signature with constraints.custom.approval_id = \"{}\"",
                ticket.id
            ),
        ],
    )
}

/// `result` turned into a block by `fault` (added after the policy's own faults).
pub fn blocked(result: &PolicyResult, fault: Fault) -> PolicyResult {
    let mut faults = result.faults.clone();
    faults.push(fault);
    PolicyResult {
        action: PolicyAction::Block,
        reasoning: reasoning(PolicyAction::Block, &faults),
        faults,
        interventions: SharedList::new(),
        replan_count: result.replan_count,
        patches: Vec::new(),
        manual_fixes: Vec::new(),
    }
}

/// `result` approved by a spent ticket: the action becomes approve, the faults the
/// approval lifted stay on the record.
pub fn approved(result: &PolicyResult) -> PolicyResult {
    PolicyResult {
        action: PolicyAction::Approve,
        reasoning: reasoning(PolicyAction::Approve, &result.faults),
        faults: result.faults.clone(),
        interventions: SharedList::new(),
        replan_count: result.replan_count,
        patches: Vec::new(),
        manual_fixes: Vec::new(),
    }
}

/// The reasoning string in the policy engine's format.
fn reasoning(action: PolicyAction, faults: &[Fault]) -> SharedStr {
    if faults.is_empty() {
        return SharedStr::from_static("All rules passed. Execution approved.");
    }
    let codes: Vec<&str> = faults.iter().map(|f| f.code.as_str()).collect();
    let mut s = format!("action={} | faults=[{}]", action.as_str(), codes.join("; "));
    if action == PolicyAction::Block {
        s.push_str(" | TERMINAL");
    }
    s.into()
}

/// What the control plane did to a decision, beside it in the decision document
/// (`control`); absent when it did nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlOutcome {
    /// `pending_approval` (held, a ticket was opened), `approved` (a ticket was spent),
    /// `approval_refused` (the named ticket cannot approve it), `killed` (a kill switch
    /// covers it) or `error` (the store failed; the decision failed closed).
    pub status: ControlStatus,
    /// The fault code the control plane added (none when a ticket approved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_code: Option<String>,
    /// The ticket opened or spent, or the id the signature named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The ticket opened or spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// The kill switch that blocked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillSwitch>,
    /// The policy bundle's own result, as it was before the control plane changed it
    /// (what a shadow bundle is compared with: bundle against bundle). Not part of the
    /// decision document.
    #[serde(skip)]
    pub bundle_result: PolicyResult,
}

/// See [`ControlOutcome::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Held; a ticket was opened.
    PendingApproval,
    /// A ticket was spent on it.
    Approved,
    /// The named ticket cannot approve it.
    ApprovalRefused,
    /// A kill switch covers it.
    Killed,
    /// The control store failed.
    Error,
}

impl ControlStatus {
    /// The serialised name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ControlStatus::PendingApproval => "pending_approval",
            ControlStatus::Approved => "approved",
            ControlStatus::ApprovalRefused => "approval_refused",
            ControlStatus::Killed => "killed",
            ControlStatus::Error => "error",
        }
    }
}

/// The store behind the control plane, shared by every process that uses it.
pub trait ControlStore: Send + Sync {
    /// The engaged switches and the ticket `approval_id` names (if any), as of now.
    fn snapshot(&self, approval_id: Option<&str>) -> Result<ControlSnapshot, ControlError>;
    /// Stores a new pending ticket.
    fn open_ticket(&self, ticket: &Ticket) -> Result<(), ControlError>;
    /// Marks a granted ticket spent at `now`, in one transaction: `Ok(true)` for the
    /// one caller that spends it, `Ok(false)` when it is no longer granted.
    fn spend_ticket(&self, id: &str, now: &str) -> Result<bool, ControlError>;
}

#[cfg(test)]
mod tests;
