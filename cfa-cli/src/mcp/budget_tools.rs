//! The budget changes of `cfa mcp` (docs/mcp.md#budgets): `cfa_budget_set` and
//! `cfa_budget_rm` over the server's `--lifecycle-db`, the same changes as `cfa budget
//! set|rm` and `PUT /v1/budgets/{scope}`, each recorded as one `control` event
//! (`budget_set`, `budget_removed`) in the server's audit log, undone when the event
//! cannot be written. A change is an operator's act: the server must run with
//! `--operator-token` (else `operator_token_required`) and the call must carry it as
//! `operator_token` (else `unauthorized`). Reading is `cfa_budget_status`.

use crate::service::FaceError;
use crate::service::budget as svc;
use crate::service::decide::Governance;
use cfa_control::budget::Scope;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

/// `cfa_budget_set` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BudgetSetParams {
    /// The scope: domain:NAME, target:NAME or agent:ID.
    pub scope: String,
    /// The window: a number and a unit s, m, h, d or w (1h, 24h, 30d); fixed windows
    /// anchored at the Unix epoch.
    pub window: String,
    /// Cost cap in DBU per window.
    #[serde(default)]
    pub dbu: Option<f64>,
    /// Run cap per window.
    #[serde(default)]
    pub runs: Option<u64>,
    /// Row cap per window.
    #[serde(default)]
    pub rows: Option<u64>,
    /// Who makes the change (recorded in the audit event; default `mcp`).
    #[serde(default)]
    pub by: Option<String>,
    /// The server's operator token.
    #[serde(default)]
    pub operator_token: Option<String>,
}

/// `cfa_budget_rm` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BudgetRmParams {
    /// The scope: domain:NAME, target:NAME or agent:ID.
    pub scope: String,
    /// Who makes the change (recorded in the audit event; default `mcp`).
    #[serde(default)]
    pub by: Option<String>,
    /// The server's operator token.
    #[serde(default)]
    pub operator_token: Option<String>,
}

/// What a change runs against.
#[derive(Debug, Clone, Copy)]
pub struct BudgetFace<'a> {
    /// The decisions' governance (its audit log records the change).
    pub gov: &'a Governance,
    /// The server's lifecycle database.
    pub db: Option<&'a Path>,
    /// The server's operator token.
    pub token: Option<&'a str>,
}

fn result(out: Result<Value, FaceError>) -> CallToolResult {
    match out {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => CallToolResult::structured_error(e.to_json()),
    }
}

impl BudgetFace<'_> {
    fn authorize(&self, presented: Option<&str>) -> Result<(), FaceError> {
        let Some(token) = self.token else {
            return Err(FaceError::new(
                "operator_token_required",
                "changing a budget needs the operator's token: start the server with --operator-token (or $CFA_OPERATOR_TOKEN)",
            ));
        };
        if presented.is_some_and(|p| {
            crate::service::constant_time_eq(p.trim().as_bytes(), token.as_bytes())
        }) {
            Ok(())
        } else {
            Err(FaceError::new(
                "unauthorized",
                "this change needs the server's operator token (argument operator_token)",
            ))
        }
    }

    fn db(&self) -> Result<&Path, FaceError> {
        self.db.ok_or_else(|| {
            FaceError::new(
                "no_lifecycle_db",
                "no lifecycle database: start the server with --lifecycle-db FILE",
            )
        })
    }

    fn note(&self) {
        if let Some(log) = self.gov.audit() {
            log.note_appended(1);
        }
    }

    /// Runs `cfa_budget_set`.
    pub fn set(&self, p: &BudgetSetParams) -> CallToolResult {
        result((|| {
            self.authorize(p.operator_token.as_deref())?;
            let budget = svc::budget_of(&p.scope, &p.window, p.dbu, p.runs, p.rows)?;
            let db = svc::open(self.db()?)?;
            let audit = self.gov.audit().map(crate::service::AuditLog::store);
            let at = jiff::Timestamp::now().as_second();
            let by = p.by.as_deref().unwrap_or("mcp");
            let previous = svc::set_audited(&db, &budget, by, at, audit.as_deref())?;
            self.note();
            let status = db
                .status(&budget.scope, at)
                .map_err(|e| svc::face_error(&e))?;
            Ok(json!({"budget": status.document(), "replaced": previous.is_some()}))
        })())
    }

    /// Runs `cfa_budget_rm`.
    pub fn rm(&self, p: &BudgetRmParams) -> CallToolResult {
        result((|| {
            self.authorize(p.operator_token.as_deref())?;
            let scope: Scope = p.scope.parse().map_err(|e| svc::face_error(&e))?;
            let db = svc::open_existing(self.db()?)?;
            let audit = self.gov.audit().map(crate::service::AuditLog::store);
            let at = jiff::Timestamp::now().as_second();
            let by = p.by.as_deref().unwrap_or("mcp");
            let old = svc::remove_audited(&db, &scope, by, at, audit.as_deref())?;
            self.note();
            Ok(
                json!({"removed": old.scope.to_string(), "window": old.window.to_string(),
                      "limits": svc::limits_json(&old.limits)}),
            )
        })())
    }
}
