//! `GET /v1/budgets` (every budget, or `?scope=`) and `PUT /v1/budgets/{scope}` (set one,
//! audited in the server's log as `budget_set`) over the server's `--lifecycle-db` (or
//! the PostgreSQL database of a postgres storage),
//! and the budget gauges `/metrics` refreshes on each scrape. Setting a budget needs
//! the operator's token: a server started without `--token` refuses it (403).

use super::app::AppState;
use crate::service::FaceError;
use crate::service::budget as svc;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Query of `GET /v1/budgets`.
#[derive(Debug, Default, Deserialize)]
pub struct BudgetQuery {
    /// Only this scope.
    pub scope: Option<String>,
}

/// Body of `PUT /v1/budgets/{scope}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// `1h`, `24h`, `30d`…
    pub window: String,
    /// Cost cap, DBU.
    #[serde(default)]
    pub dbu: Option<f64>,
    /// Run cap.
    #[serde(default)]
    pub runs: Option<u64>,
    /// Row cap.
    #[serde(default)]
    pub rows: Option<u64>,
    /// Who sets it (recorded in the audit event).
    #[serde(default)]
    pub by: Option<String>,
}

fn status_of(code: &str) -> StatusCode {
    match code {
        "invalid_budget" | "invalid_json" | "invalid_query" => StatusCode::BAD_REQUEST,
        "budget_not_found" | "no_lifecycle_db" => StatusCode::NOT_FOUND,
        "operator_token_required" => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &FaceError) -> Response {
    (status_of(e.code), Json(e.to_json())).into_response()
}

fn db(state: &AppState) -> Result<&std::path::Path, FaceError> {
    state.lifecycle_db.as_deref().ok_or_else(|| {
        FaceError::new(
            "no_lifecycle_db",
            "no lifecycle database: start the server with --lifecycle-db FILE (or a sqlite storage in cfa.yaml)",
        )
    })
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `GET /v1/budgets`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<BudgetQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let scope = match query {
        Ok(Query(q)) => q.scope,
        Err(e) => return error(&FaceError::new("invalid_query", e.body_text())),
    };
    let st = Arc::clone(&state);
    let out = tokio::task::spawn_blocking(move || match &st.pg_budgets {
        Some(pg) => svc::status_document_of(pg, scope.as_deref(), now()),
        None => svc::status_document(db(&st)?, scope.as_deref(), now()),
    })
    .await;
    match out {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(&e),
        Err(e) => error(&FaceError::new("internal", e.to_string())),
    }
}

/// `PUT /v1/budgets/{scope}`.
pub async fn set(
    State(state): State<Arc<AppState>>,
    Path(scope): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if state.token.is_none() {
        return error(&FaceError::new(
            "operator_token_required",
            "setting a budget needs the operator's token: start the server with --token (or $CFA_HTTP_TOKEN)",
        ));
    }
    let req: SetBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(&FaceError::new(
                "invalid_json",
                format!("invalid budget body: {e}"),
            ));
        }
    };
    let st = Arc::clone(&state);
    let out = tokio::task::spawn_blocking(move || -> Result<Value, FaceError> {
        let budget = svc::budget_of(&scope, &req.window, req.dbu, req.runs, req.rows)?;
        let db = match &st.pg_budgets {
            Some(pg) => pg.clone(),
            None => svc::open(db(&st)?)?,
        };
        let audit = st.gov.audit().map(crate::service::AuditLog::store);
        let at = now();
        let by = req.by.as_deref().unwrap_or("http");
        let previous = svc::set_audited(&db, &budget, by, at, audit.as_deref())?;
        if let Some(a) = st.gov.audit() {
            a.note_appended(1);
        }
        let status = db
            .status(&budget.scope, at)
            .map_err(|e| svc::face_error(&e))?;
        Ok(serde_json::json!({"budget": status.document(), "replaced": previous.is_some()}))
    })
    .await;
    match out {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(&e),
        Err(e) => error(&FaceError::new("internal", e.to_string())),
    }
}

/// Refreshes the budget gauges from the database (nothing without one; a read error
/// leaves the last values).
pub fn refresh_gauges(state: &AppState) {
    if let Some(pg) = &state.pg_budgets {
        if let Ok(all) = pg.list(now()) {
            state.metrics.budgets(&all);
        }
        return;
    }
    let Some(path) = state.lifecycle_db.as_deref() else {
        return;
    };
    if !cfa_control::budget::SqliteBudgets::has_tables(path).unwrap_or(false) {
        return;
    }
    if let Ok(db) = svc::open(path)
        && let Ok(all) = db.list(now())
    {
        state.metrics.budgets(&all);
    }
}
