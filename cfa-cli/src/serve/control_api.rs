//! The control plane's HTTP endpoints (docs/http.md#approvals-and-the-kill-switch):
//! approval tickets (`GET /v1/approvals`, `GET /v1/approvals/{id}`,
//! `POST /v1/approvals/{id}/approve|deny`) and kill switches (`GET /v1/kills`,
//! `POST /v1/kills/engage`, `POST /v1/kills/release`). They sit behind the same guard as every
//! route, so with `--token` they need the operator's bearer token. Without a lifecycle
//! database (`--lifecycle-db`, else the config's sqlite storage) they answer 404
//! `no_control_db`.

use super::app::{ApiError, AppState};
use crate::service::FaceError;
use crate::service::control::{self, ControlFace};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use cfa::{Clock, SystemClock};
use cfa_control::Resolution;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The routes, merged into the API router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/approvals", get(list))
        .route("/v1/approvals/{id}", get(show))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .route("/v1/kills", get(kills))
        .route("/v1/kills/engage", post(kill))
        .route("/v1/kills/release", post(release))
}

/// Query of `GET /v1/approvals`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
}

/// Body of `approve`/`deny`.
#[derive(Debug, Deserialize)]
struct ResolveBody {
    by: String,
    #[serde(default)]
    note: Option<String>,
}

/// Body of `POST /v1/kills/engage`.
#[derive(Debug, Deserialize)]
struct KillBody {
    scope: String,
    reason: String,
    by: String,
}

/// Body of `POST /v1/kills/release`.
#[derive(Debug, Deserialize)]
struct ReleaseBody {
    scope: String,
    by: String,
}

fn face(state: &AppState) -> Result<&ControlFace, ApiError> {
    state.gov.control().ok_or_else(|| {
        FaceError::new(
            "no_control_db",
            "the server runs without a control plane: start it with --lifecycle-db FILE (or a cfa.yaml sqlite storage)",
        )
        .into()
    })
}

fn body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| FaceError::new("bad_body", e.body_text()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FaceError::new("invalid_json", format!("body must be {shape}: {e}")).into())
}

/// Runs a store operation off the async workers, with the audit log if any.
async fn blocking(
    state: Arc<AppState>,
    f: impl FnOnce(&ControlFace, Option<&dyn cfa::AuditStore>) -> Result<Value, FaceError>
    + Send
    + 'static,
) -> Result<Json<Value>, ApiError> {
    let out = tokio::task::spawn_blocking(move || {
        let face = face(&state).map_err(|_| {
            FaceError::new("no_control_db", "the server runs without a control plane")
        })?;
        let store = state
            .gov
            .audit()
            .map(crate::service::audit_log::AuditLog::store);
        let out = f(face, store.as_deref());
        if out.is_ok()
            && let Some(log) = state.gov.audit()
        {
            log.note_appended(1);
        }
        out
    })
    .await
    .map_err(|e| FaceError::new("internal", e.to_string()))??;
    Ok(Json(out))
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    blocking(state, move |f, _| {
        control::tickets_json(f.db()?, q.status.as_deref())
    })
    .await
}

async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    blocking(state, move |f, _| control::ticket_json(f.db()?, &id)).await
}

async fn resolve(
    state: Arc<AppState>,
    id: String,
    raw: Result<Bytes, BytesRejection>,
    resolution: Resolution,
) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    let b: ResolveBody = body(raw, r#"{"by": "NAME", "note": "..."}"#)?;
    let now = SystemClock.now_isoformat();
    blocking(state, move |f, audit| {
        control::resolve(
            f.db()?,
            audit,
            &id,
            resolution,
            &b.by,
            b.note.as_deref(),
            &now,
        )
    })
    .await
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    resolve(state, id, raw, Resolution::Grant).await
}

async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    resolve(state, id, raw, Resolution::Deny).await
}

async fn kills(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    blocking(state, |f, _| control::kills_json(f.db()?)).await
}

async fn kill(
    State(state): State<Arc<AppState>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    let b: KillBody = body(raw, r#"{"scope": "*", "reason": "...", "by": "NAME"}"#)?;
    let now = SystemClock.now_isoformat();
    blocking(state, move |f, audit| {
        control::kill(f.db()?, audit, &b.scope, &b.reason, &b.by, &now)
    })
    .await
}

async fn release(
    State(state): State<Arc<AppState>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    face(&state)?;
    let b: ReleaseBody = body(raw, r#"{"scope": "*", "by": "NAME"}"#)?;
    let now = SystemClock.now_isoformat();
    blocking(state, move |f, audit| {
        control::unkill(f.db()?, audit, &b.scope, &b.by, &now)
    })
    .await
}
