//! What the SQLite and PostgreSQL control stores share: the ticket row as stored and
//! how it becomes a [`Ticket`], a kill-switch row as a [`KillSwitch`], and the checks
//! an engage or a resolve makes before anything is written. Both stores call these,
//! so they read, refuse and answer alike; only the SQL differs.

use crate::approval::{Resolution, Ticket, TicketStatus};
use crate::error::{ControlError, parse_time};
use crate::kill::{KillSwitch, Scope};
use crate::snapshot::is_expired;

/// The ticket columns, in [`TicketRow`] order.
pub(crate) const TICKET_COLUMNS: &str = "id, status, intent_id, content_hash, policy_bundle_hash, policy_bundle, requester, reason, fault_codes_json, created_at, expires_at, decided_by, decided_at, note, spent_at";

/// A ticket row as stored (`fault_codes_json` is the JSON array of codes).
#[derive(Debug)]
pub(crate) struct TicketRow {
    pub id: String,
    pub status: String,
    pub intent_id: String,
    pub content_hash: String,
    pub policy_bundle_hash: String,
    pub policy_bundle: String,
    pub requester: String,
    pub reason: String,
    pub fault_codes_json: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
    pub spent_at: Option<String>,
}

/// The JSON array a ticket's fault codes are stored as.
pub(crate) fn fault_codes_json(t: &Ticket) -> String {
    serde_json::to_string(&t.fault_codes).unwrap_or_else(|_| "[]".to_owned())
}

impl TicketRow {
    /// The ticket of this row; `store` names the store in errors.
    pub(crate) fn into_ticket(self, store: &str) -> Result<Ticket, ControlError> {
        let corrupt = |what: &str, reason: String| ControlError::Corrupt {
            path: store.to_owned(),
            what: format!("control_tickets.{what} of '{}'", self.id),
            reason,
        };
        let status = TicketStatus::parse(&self.status)
            .ok_or_else(|| corrupt("status", format!("unknown status '{}'", self.status)))?;
        let fault_codes: Vec<String> = serde_json::from_str(&self.fault_codes_json)
            .map_err(|e| corrupt("fault_codes_json", e.to_string()))?;
        Ok(Ticket {
            id: self.id,
            status,
            intent_id: self.intent_id,
            content_hash: self.content_hash,
            policy_bundle_hash: self.policy_bundle_hash,
            policy_bundle: self.policy_bundle,
            requester: self.requester,
            reason: self.reason,
            fault_codes,
            created_at: self.created_at,
            expires_at: self.expires_at,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            note: self.note,
            spent_at: self.spent_at,
        })
    }
}

/// A kill-switch row: scope, reason, engaged by, engaged at.
pub(crate) type KillRow = (String, String, String, String);

/// The switch of a stored row; `store` names the store in errors.
pub(crate) fn kill_of(
    store: &str,
    (scope, reason, by, engaged_at): KillRow,
) -> Result<KillSwitch, ControlError> {
    let scope = Scope::parse(&scope).map_err(|e| ControlError::Corrupt {
        path: store.to_owned(),
        what: format!("control_kills.scope '{scope}'"),
        reason: e.to_string(),
    })?;
    Ok(KillSwitch {
        scope,
        reason,
        by,
        engaged_at,
    })
}

/// What an engage needs: a reason, an operator and a readable time.
pub(crate) fn check_engage(kill: &KillSwitch) -> Result<(), ControlError> {
    if kill.reason.trim().is_empty() {
        return Err(ControlError::Empty { what: "--reason" });
    }
    if kill.by.trim().is_empty() {
        return Err(ControlError::Empty { what: "--by" });
    }
    parse_time(&kill.engaged_at)?;
    Ok(())
}

/// What a resolve needs before the store is touched: an operator and a readable time.
pub(crate) fn check_resolve_args(by: &str, now: &str) -> Result<(), ControlError> {
    if by.trim().is_empty() {
        return Err(ControlError::Empty { what: "--by" });
    }
    parse_time(now)?;
    Ok(())
}

/// The status `ticket` (as read, `None`: unknown) takes when resolved with
/// `resolution` at `now`: it must exist, be pending and not have expired.
pub(crate) fn resolved_status(
    id: &str,
    ticket: Option<Ticket>,
    resolution: Resolution,
    now: &str,
) -> Result<TicketStatus, ControlError> {
    let ticket = ticket.ok_or_else(|| ControlError::UnknownTicket { id: id.to_owned() })?;
    if ticket.status != TicketStatus::Pending {
        return Err(ControlError::NotPending {
            id: id.to_owned(),
            status: ticket.status,
        });
    }
    if is_expired(&ticket.expires_at, now) {
        return Err(ControlError::Expired {
            id: id.to_owned(),
            expires_at: ticket.expires_at,
        });
    }
    Ok(match resolution {
        Resolution::Grant => TicketStatus::Granted,
        Resolution::Deny => TicketStatus::Denied,
    })
}
