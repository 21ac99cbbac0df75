//! The control plane's MCP tools (docs/mcp.md#approvals-and-the-kill-switch):
//! `cfa_approvals` (list, show, approve, deny tickets) and `cfa_kill_switch` (list,
//! engage, release). Reads need nothing; a change needs the operator token
//! (`operator_token` argument) when the server runs with `--operator-token`.
//! Errors come back as `isError: true` with `{"error": {"code", "message"}}`.

use crate::service::FaceError;
use crate::service::control::{self, ControlFace};
use crate::service::decide::Governance;
use cfa::{Clock, SystemClock};
use cfa_control::Resolution;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// `cfa_approvals` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApprovalsParams {
    /// list, show, approve or deny.
    pub action: String,
    /// Ticket id.
    #[serde(default)]
    pub id: Option<String>,
    /// Operator.
    #[serde(default)]
    pub by: Option<String>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
    /// Status filter.
    #[serde(default)]
    pub status: Option<String>,
    /// Operator token.
    #[serde(default)]
    pub operator_token: Option<String>,
}

/// `cfa_kill_switch` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct KillSwitchParams {
    /// list, engage or release.
    pub action: String,
    /// *, domain:NAME, target:NAME or agent:ID.
    #[serde(default)]
    pub scope: Option<String>,
    /// Reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Operator.
    #[serde(default)]
    pub by: Option<String>,
    /// Operator token.
    #[serde(default)]
    pub operator_token: Option<String>,
}

fn result(out: Result<Value, FaceError>) -> CallToolResult {
    match out {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => CallToolResult::structured_error(e.to_json()),
    }
}

fn face(gov: &Governance) -> Result<&ControlFace, FaceError> {
    gov.control().ok_or_else(|| {
        FaceError::new(
            "no_control_db",
            "the server runs without a control plane: start it with --lifecycle-db FILE (or a cfa.yaml sqlite storage)",
        )
    })
}

fn required<'a>(v: Option<&'a str>, what: &str, action: &str) -> Result<&'a str, FaceError> {
    v.map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
        FaceError::new(
            "invalid_arguments",
            format!("action '{action}' needs the argument '{what}'"),
        )
    })
}

fn authorize(face: &ControlFace, presented: Option<&str>) -> Result<(), FaceError> {
    match face.operator_token() {
        Some(token)
            if !presented.is_some_and(|p| {
                crate::service::constant_time_eq(p.trim().as_bytes(), token.as_bytes())
            }) =>
        {
            Err(FaceError::new(
                "unauthorized",
                "this change needs the server's operator token (argument operator_token)",
            ))
        }
        _ => Ok(()),
    }
}

fn audit(gov: &Governance) -> Option<std::sync::Arc<dyn cfa::AuditStore>> {
    gov.audit().map(crate::service::audit_log::AuditLog::store)
}

/// Runs `cfa_approvals`.
pub fn approvals(gov: &Governance, p: &ApprovalsParams) -> CallToolResult {
    result((|| {
        let face = face(gov)?;
        let action = p.action.trim();
        match action {
            "list" => control::tickets_json(face.db()?, p.status.as_deref()),
            "show" => control::ticket_json(face.db()?, required(p.id.as_deref(), "id", action)?),
            "approve" | "deny" => {
                authorize(face, p.operator_token.as_deref())?;
                let id = required(p.id.as_deref(), "id", action)?;
                let by = required(p.by.as_deref(), "by", action)?;
                let resolution = if action == "approve" {
                    Resolution::Grant
                } else {
                    Resolution::Deny
                };
                let store = audit(gov);
                let out = control::resolve(
                    face.db()?,
                    store.as_deref(),
                    id,
                    resolution,
                    by,
                    p.note.as_deref(),
                    &SystemClock.now_isoformat(),
                );
                note(gov, &out);
                out
            }
            other => Err(FaceError::new(
                "invalid_arguments",
                format!("unknown action '{other}': expected list, show, approve or deny"),
            )),
        }
    })())
}

/// Runs `cfa_kill_switch`.
pub fn kill_switch(gov: &Governance, p: &KillSwitchParams) -> CallToolResult {
    result((|| {
        let face = face(gov)?;
        let action = p.action.trim();
        match action {
            "list" => control::kills_json(face.db()?),
            "engage" | "release" => {
                authorize(face, p.operator_token.as_deref())?;
                let scope = required(p.scope.as_deref(), "scope", action)?;
                let by = required(p.by.as_deref(), "by", action)?;
                let now = SystemClock.now_isoformat();
                let store = audit(gov);
                let out = if action == "engage" {
                    let reason = required(p.reason.as_deref(), "reason", action)?;
                    control::kill(face.db()?, store.as_deref(), scope, reason, by, &now)
                } else {
                    control::unkill(face.db()?, store.as_deref(), scope, by, &now)
                };
                note(gov, &out);
                out
            }
            other => Err(FaceError::new(
                "invalid_arguments",
                format!("unknown action '{other}': expected list, engage or release"),
            )),
        }
    })())
}

fn note(gov: &Governance, out: &Result<Value, FaceError>) {
    if out.is_ok()
        && let Some(log) = gov.audit()
    {
        log.note_appended(1);
    }
}
