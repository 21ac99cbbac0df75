//! `POST /v1/policy/backtest` (docs/http.md#post-v1policybacktest): every decision of
//! the server's own audit log decided again with a candidate bundle, the
//! `cfa.policy_backtest.v1` report of `cfa policy backtest -f json` (the replay is
//! [`crate::service::backtest`]'s). The candidate is a built-in name (`?policy_bundle=`
//! or the body's `bundle`) or the bundle's text (the body's `bundle_text`); the server
//! reads no file a request names. A backtest is a read: behind the bearer token like
//! every route, it writes no event and creates no file.

use super::app::{ApiError, AppState, body_error};
use crate::service::{FaceError, backtest, candidate};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `POST /v1/policy/backtest`.
#[derive(Debug, Default, Deserialize)]
pub struct BacktestQuery {
    /// The candidate, a built-in name.
    pub policy_bundle: Option<String>,
}

/// Body of `POST /v1/policy/backtest` (may be empty with `?policy_bundle=`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestBody {
    /// The candidate, a built-in name.
    #[serde(default)]
    pub bundle: Option<String>,
    /// The candidate's text (YAML, or JSON starting with `{`).
    #[serde(default)]
    pub bundle_text: Option<String>,
}

fn status_of(code: &str) -> StatusCode {
    match code {
        "invalid_json"
        | "invalid_query"
        | "invalid_arguments"
        | "unknown_policy_bundle"
        | "invalid_policy_bundle" => StatusCode::BAD_REQUEST,
        "no_audit_log" => StatusCode::NOT_FOUND,
        "audit_broken" | "backtest_unavailable" => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &FaceError) -> Response {
    (status_of(e.code), Json(e.to_json())).into_response()
}

/// `POST /v1/policy/backtest`.
pub async fn run(
    State(state): State<Arc<AppState>>,
    query: Result<Query<BacktestQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return Ok(error(&FaceError::new("invalid_query", e.body_text()))),
    };
    let body = body.map_err(|e| body_error(&e))?;
    let req: BacktestBody = if body.iter().all(u8::is_ascii_whitespace) {
        BacktestBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return Ok(error(&FaceError::new(
                    "invalid_json",
                    format!(
                        "body must be {{\"bundle\": \"NAME\"}} or {{\"bundle_text\": \"...\"}}: {e}"
                    ),
                )));
            }
        }
    };
    let bundle = match (query.policy_bundle, req.bundle) {
        (Some(_), Some(_)) => {
            return Ok(error(&FaceError::new(
                "invalid_arguments",
                "name the candidate once: ?policy_bundle= or the body's bundle",
            )));
        }
        (q, b) => q.or(b).filter(|b| !b.trim().is_empty()),
    };
    if bundle.is_none() && req.bundle_text.is_none() {
        return Ok(error(&FaceError::new(
            "invalid_arguments",
            "give the candidate: ?policy_bundle=NAME, or a body {\"bundle\": \"NAME\"} or {\"bundle_text\": \"...\"}",
        )));
    }
    let st = Arc::clone(&state);
    let out = tokio::task::spawn_blocking(move || {
        let policy = candidate::load(&st.gov, None, bundle.as_deref(), req.bundle_text.as_deref())?;
        backtest::of_face_log(&st.gov, &policy)
    })
    .await
    .map_err(|e| FaceError::new("internal", e.to_string()))?;
    Ok(match out {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => error(&e),
    })
}
