//! `GET /v1/evidence/{intent_id}` (the run's evidence bundle as one JSON document) and
//! `POST /v1/evidence/verify` (a bundle document, optionally with `pubkeys`, checked
//! offline): the handlers over `service::evidence`.

use super::app::{ApiError, AppState, body_error};
use crate::service::FaceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde_json::Value;
use std::sync::Arc;

fn join_error(e: &tokio::task::JoinError) -> ApiError {
    FaceError::new("internal", e.to_string()).into()
}

/// `GET /v1/evidence/{intent_id}`.
pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let st = Arc::clone(&state);
    let out = tokio::task::spawn_blocking(move || {
        crate::service::evidence::export_json(&st.gov, &intent_id, None)
    })
    .await
    .map_err(|e| join_error(&e))??;
    Ok(Json(out))
}

/// `POST /v1/evidence/verify`.
pub async fn verify(body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| FaceError::new("invalid_json", format!("body is not JSON: {e}")))?;
    let out = tokio::task::spawn_blocking(move || crate::service::evidence::verify_json(&doc))
        .await
        .map_err(|e| join_error(&e))??;
    Ok(Json(out))
}
