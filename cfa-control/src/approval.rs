//! Approval tickets bound to the exact action that was held.
//!
//! A ticket is opened when a decision is held for approval. It binds the `content_hash`
//! of the held signature (with `constraints.custom.approval_id` left out, so the
//! resubmission that carries the ticket id matches) and the hash of the bundle that
//! held it. An operator grants or denies it; a granted ticket approves exactly one
//! resubmission of the same signature under the same bundle before it expires.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `constraints.custom` key a resubmission names its ticket with.
pub const APPROVAL_ID_KEY: &str = "approval_id";

/// Fault code: the decision is held until an operator approves its ticket.
pub const APPROVAL_REQUIRED: &str = "APPROVAL_REQUIRED";
/// Fault code: the named ticket is still waiting for an operator.
pub const APPROVAL_PENDING: &str = "APPROVAL_PENDING";
/// Fault code: no ticket has the named id.
pub const APPROVAL_UNKNOWN: &str = "APPROVAL_UNKNOWN";
/// Fault code: the ticket was granted for a different signature or bundle.
pub const APPROVAL_MISMATCH: &str = "APPROVAL_MISMATCH";
/// Fault code: the ticket expired.
pub const APPROVAL_EXPIRED: &str = "APPROVAL_EXPIRED";
/// Fault code: the ticket already approved one decision.
pub const APPROVAL_SPENT: &str = "APPROVAL_SPENT";
/// Fault code: an operator denied the ticket.
pub const APPROVAL_DENIED: &str = "APPROVAL_DENIED";

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved by an operator; not used yet.
    Granted,
    /// Refused by an operator.
    Denied,
    /// Approved one decision; can never approve another.
    Spent,
}

impl TicketStatus {
    /// The stored and printed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Pending => "pending",
            TicketStatus::Granted => "granted",
            TicketStatus::Denied => "denied",
            TicketStatus::Spent => "spent",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TicketStatus::Pending,
            "granted" => TicketStatus::Granted,
            "denied" => TicketStatus::Denied,
            "spent" => TicketStatus::Spent,
            _ => return None,
        })
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approval ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket id (injected).
    pub id: String,
    /// Where it stands.
    pub status: TicketStatus,
    /// The held signature's `intent_id`.
    pub intent_id: String,
    /// `content_hash` of the held signature without `constraints.custom.approval_id`.
    pub content_hash: String,
    /// Hash of the bundle that held it (`""` for the default rules).
    pub policy_bundle_hash: String,
    /// Version label of that bundle.
    pub policy_bundle: String,
    /// Who asked (the caller's id, or the face that decided).
    pub requester: String,
    /// Why it was held: the faults an approval lifts, as `CODE: message`.
    pub reason: String,
    /// The fault codes an approval lifts.
    pub fault_codes: Vec<String>,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// When it stops being usable (RFC 3339).
    pub expires_at: String,
    /// The operator who granted or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was granted or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// The operator's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it approved its decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_at: Option<String>,
}

/// How an operator decides a pending ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Approve it (it becomes `granted`).
    Grant,
    /// Refuse it (it becomes `denied`).
    Deny,
}
