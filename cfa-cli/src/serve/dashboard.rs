//! `GET /dashboard`: the dashboard page of `cfa report dashboard`, rendered by the same
//! code on every request from the server's own audit log (`--audit-log`), over the
//! period ending now (`?period=DAYS`, default 90), reloading itself every 30 s.

use super::app::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `GET /dashboard`.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    /// Days before now that the page covers.
    pub period: Option<u32>,
}

fn render(state: &AppState, period: u32) -> Result<String, String> {
    // A PostgreSQL chain is not read here (`cfa audit export` it for `cfa report`).
    let log = match state.gov.audit().and_then(crate::service::AuditLog::file) {
        Some(path) => Some(crate::report_cmd::load_log(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let bundle = crate::report_cmd::bundle_info(&state.gov.active().engine);
    cfa::report::render(
        cfa::report::ReportKind::Dashboard,
        &cfa::report::ReportInput {
            log: log.as_ref(),
            lifecycle: None,
            bundle: Some(&bundle),
        },
        &cfa::report::ReportOptions {
            now: Some(jiff::Timestamp::now()),
            period_days: period,
            refresh_secs: Some(30),
            ..cfa::report::ReportOptions::default()
        },
    )
    .map_err(|e| e.to_string())
}

/// The handler.
pub async fn page(
    State(state): State<Arc<AppState>>,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": {"code": "invalid_query", "message": e.body_text()}})),
            )
                .into_response();
        }
    };
    let period = query.period.unwrap_or(90).clamp(1, 36_600);
    let html = tokio::task::spawn_blocking(move || render(&state, period)).await;
    match html {
        Ok(Ok(html)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, cfa::report::CSP),
            ],
            html,
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": {"code": "report_error", "message": e}})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                serde_json::json!({"error": {"code": "internal", "message": e.to_string()}}),
            ),
        )
            .into_response(),
    }
}
