//! The axum router of `cfa serve`: handlers, the host / origin / content-type checks
//! ([`super::origin`]), bearer-token auth, per-request timeout, per-request metrics and
//! spans, and JSON errors of one shape
//! (`{"error": {"code", "message"}}`) for every failure, extractor rejections included.

use super::metrics::Metrics;
use super::openapi;
use super::origin::{self, HostPolicy, LocalAddr, Refusal};
use crate::service::FaceError;
use crate::service::decide::Governance;
use crate::service::intent;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cfa::PolicyAction;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use tracing::field::Empty;

/// Shared server state.
#[derive(Debug)]
pub struct AppState {
    /// The governance artifacts.
    pub gov: Governance,
    /// Metrics.
    pub metrics: Metrics,
    /// Bearer token, when auth is on.
    pub token: Option<String>,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
    /// Kernels for `POST /v1/evaluate`.
    pub kernels: intent::Kernels,
    /// Longest a request may take, body included.
    pub request_timeout: Duration,
    /// Which hosts and browser origins are answered.
    pub hosts: HostPolicy,
    /// The lifecycle database budgets are read from and set in (`--lifecycle-db`).
    pub lifecycle_db: Option<std::path::PathBuf>,
    /// The PostgreSQL budgets of a postgres storage (then used instead of the file's).
    pub pg_budgets: Option<crate::service::control_store::BudgetBackend>,
}

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: FaceError,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: FaceError::new(code, message),
        }
    }
}

impl From<FaceError> for ApiError {
    fn from(error: FaceError) -> Self {
        let status = match error.code {
            "invalid_json"
            | "unknown_policy_bundle"
            | "invalid_policy_bundle"
            | "invalid_intent"
            | "invalid_catalog"
            | "invalid_query"
            | "bad_scope"
            | "invalid_arguments" => StatusCode::BAD_REQUEST,
            "unknown_ticket" | "not_engaged" | "no_control_db" => StatusCode::NOT_FOUND,
            "ticket_not_pending" | "ticket_expired" => StatusCode::CONFLICT,
            "invalid_signature" => StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_fault_code" | "no_audit_log" | "unknown_intent" => StatusCode::NOT_FOUND,
            "no_checkpoint" | "audit_broken" => StatusCode::CONFLICT,
            "invalid_evidence" => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.error.to_json())).into_response()
    }
}

pub(super) fn body_error(rejection: &BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload_too_large",
            "request body is larger than the server's limit",
        )
    } else {
        ApiError::new(status, "bad_body", rejection.body_text())
    }
}

fn query_error(rejection: &QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        rejection.body_text(),
    )
}

/// Query of `POST /v1/decisions` and `GET /v1/rules`.
#[derive(Debug, Default, Deserialize)]
pub struct BundleQuery {
    /// Built-in bundle name.
    pub policy_bundle: Option<String>,
    /// Replans already made.
    #[serde(default)]
    pub replan_count: u32,
}

/// Query of `GET /v1/audit/verify`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Count this intent's events.
    pub intent_id: Option<String>,
}

/// Body of `POST /v1/evaluate`.
#[derive(Debug, Deserialize)]
pub struct EvaluateBody {
    /// Intent text.
    pub intent: String,
    /// Built-in bundle name.
    #[serde(default)]
    pub policy_bundle: Option<String>,
}

/// Builds the router.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    Router::new()
        .route("/v1/decisions", post(decisions))
        .route("/v1/evaluate", post(evaluate))
        .route("/v1/rules", get(rules))
        .route("/v1/policy/test", post(policy_test))
        .route("/v1/policy/backtest", post(super::backtest::run))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/evidence/verify", post(super::evidence::verify))
        .route("/v1/evidence/{intent_id}", get(super::evidence::export))
        .route("/v1/budgets", get(super::budgets::list))
        .route("/v1/budgets/{scope}", put(super::budgets::set))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/dashboard", get(super::dashboard::page))
        .merge(super::control_api::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The router of the `--metrics-port` listener: `/metrics` only (the same registry as
/// the API's), behind the same guard.
pub fn metrics_router(state: Arc<AppState>, body_limit: usize) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found_metrics)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found_metrics(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {method} {}; this listener serves only GET /metrics",
            uri.path()
        ),
    )
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::Host(host) => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            format!(
                "Host {host:?} is not a loopback name or this server's address; start the \
                 server with --allowed-host NAME (or --allow-any-host) to answer it"
            ),
        ),
        Refusal::CrossSite(what) => ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            format!(
                "cross-site browser requests are refused ({what}); start the server with \
                 --allowed-origin ORIGIN to accept them"
            ),
        ),
        Refusal::MediaType(what) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("request bodies must be sent as Content-Type: application/json ({what})"),
        ),
    }
}

/// Host, origin, auth, content type, timeout, metrics and the request span, around
/// every request. Refusals happen before any handler runs, so a refused request is
/// never parsed nor audited.
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // Metrics labels come from bounded sets: a route template (or "other") and a
    // standard method (or "other"), never the client's strings.
    // (`MatchedPath` is a shared `Arc<str>`: cloning it copies no text.)
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("other", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http.request",
        method = %method,
        route = %route,
        status = Empty,
        decision = Empty,
        fault_codes = Empty,
    );
    let response = async {
        let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
        let checked = state
            .hosts
            .check_host(
                req.headers(),
                req.uri().authority().map(|a| a.as_str()),
                local,
            )
            .and_then(|()| state.hosts.check_origin(req.headers(), local));
        if let Err(r) = checked {
            tracing::warn!("request refused: {r:?}");
            return refuse(&state, req, refusal(r).into_response()).await;
        }
        if let Some(token) = &state.token
            && route != "/health"
            && !authorized(&req, token)
        {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token",
            )
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return refuse(&state, req, r).await;
        }
        if let Err(r) = origin::check_content_type(req.method(), req.headers()) {
            return refuse(&state, req, refusal(r).into_response()).await;
        }
        match within(start, state.request_timeout, next.run(req)).await {
            Some(r) => r,
            None => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request did not complete within {} ms",
                    state.request_timeout.as_millis()
                ),
            )
            .into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    let status = response.status().as_u16();
    // The span is never entered again: only an exporting layer can read `status`.
    if crate::telemetry::spans_exported() {
        span.record("status", status);
    }
    if route != "/metrics" {
        state
            .metrics
            .http(metric_method(&method), route, status, start.elapsed());
    }
    response
}

/// `fut`'s output, or `None` once `timeout` has passed since `start`: what
/// `tokio::time::timeout` does, except that the timer is created (and registered with
/// the runtime's timer wheel) only if `fut` is not ready on its first poll. A request
/// that completes in one poll (no audit log to wait for) then costs no timer at all;
/// tokio's `Timeout` builds its `Sleep` up front, and dropping one takes the timer
/// driver's lock even when it was never registered. The deadline counts from `start`
/// (the request's arrival at the guard, a few microseconds before `Timeout` would
/// start counting), and the timer is polled outside the task's coop budget, as
/// `Timeout` does when `fut` spent the budget, so a busy `fut` cannot starve it.
async fn within<F: std::future::Future>(
    start: Instant,
    timeout: Duration,
    fut: F,
) -> Option<F::Output> {
    type Timer = std::pin::Pin<Box<tokio::task::Unconstrained<tokio::time::Sleep>>>;
    let deadline = tokio::time::Instant::from_std(start).checked_add(timeout);
    let mut fut = std::pin::pin!(fut);
    let mut sleep: Option<Timer> = None;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        // A deadline past what an `Instant` holds never comes.
        let Some(deadline) = deadline else {
            return std::task::Poll::Pending;
        };
        let sleep = sleep.get_or_insert_with(|| {
            Box::pin(tokio::task::unconstrained(tokio::time::sleep_until(
                deadline,
            )))
        });
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// The most of a refused request's body that is read (and dropped) so that the
/// client's connection stays usable; a larger body gets its refusal and the
/// connection is closed after it.
const REFUSED_BODY_DRAIN: usize = 64 * 1024;

/// Answers a refused request with `response`, first reading and dropping a small
/// unread body (within the request timeout): a keep-alive client may then send its
/// next request on the same connection, instead of racing the server closing it.
/// The body is never parsed.
async fn refuse(state: &AppState, req: Request, response: Response) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > 0 && declared <= REFUSED_BODY_DRAIN {
        let _ = tokio::time::timeout(
            state.request_timeout,
            axum::body::to_bytes(req.into_body(), REFUSED_BODY_DRAIN),
        )
        .await;
    }
    response
}

/// The method as a metrics label: the standard ones, else `other`.
fn metric_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

fn authorized(req: &Request, token: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| {
            crate::service::constant_time_eq(presented.trim().as_bytes(), token.as_bytes())
        })
}

async fn decide_text(
    state: &AppState,
    text: &str,
    query: &BundleQuery,
) -> Result<cfa::kernel::Decision, FaceError> {
    let start = Instant::now();
    // A body that may carry `policy_bundle` (also spelt with JSON escapes) is read as a
    // value first, so the bundle it names is never silently dropped.
    let (signature, body_bundle) = if text.contains("\"policy_bundle\"") || text.contains("\\u") {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FaceError::new("invalid_json", format!("body is not valid JSON: {e}")))?;
        let bundle = match value.get("policy_bundle") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(FaceError::new(
                    "invalid_policy_bundle",
                    format!(
                        "policy_bundle must be a string naming a built-in bundle, not {}",
                        json_type(other)
                    ),
                ));
            }
        };
        (Governance::parse_signature_value(&value)?, bundle)
    } else {
        (Governance::parse_signature_text(text)?, None)
    };
    let bundle = query.policy_bundle.as_deref().or(body_bundle.as_deref());
    // With an audit log the append joins the log's group commit and this task awaits
    // it; only the appender that leads a group writes (and fsyncs) on a blocking thread.
    let decision = state
        .gov
        .decide_async(&signature, bundle, query.replan_count)
        .await?;
    state.metrics.decision(
        &decision.result,
        start.elapsed(),
        !decision.audit_event_hash.is_empty(),
    );
    let span = tracing::Span::current();
    // A request span no layer records (its level filtered out) gets nothing: the
    // fault codes are joined only for a span that keeps them. Nothing is logged in
    // the span after this, so only an exporting layer can read these two fields
    // (`crate::telemetry::spans_exported`); for the log layer alone they would be
    // formatted into the span and never printed.
    if crate::telemetry::spans_exported() && !span.is_disabled() {
        span.record("decision", decision.result.action.as_str());
        span.record("fault_codes", joined_fault_codes(&decision.result).as_str());
    }
    Ok(decision)
}

/// The result's fault codes joined with `,` (`fault_codes().join(",")`, without the
/// vector).
fn joined_fault_codes(result: &cfa::PolicyResult) -> String {
    let mut out = String::new();
    for (i, fault) in result.faults.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(fault.code.as_str());
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn decisions(
    State(state): State<Arc<AppState>>,
    query: Result<Query<BundleQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let body = body.map_err(|e| body_error(&e))?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not UTF-8: {e}"),
        )
    })?;
    let decision = decide_text(&state, text, &query).await?;
    // The document's bytes as `Json(decision.document())` wrote them, with its
    // `content-type`, written without the `Value` tree (docs/development.md).
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from(super::document::document_bytes(&decision)),
    )
        .into_response();
    let action = match decision.result.action {
        PolicyAction::Approve => HeaderValue::from_static("approve"),
        PolicyAction::Replan => HeaderValue::from_static("replan"),
        PolicyAction::Block => HeaderValue::from_static("block"),
    };
    response.headers_mut().insert("x-cfa-action", action);
    Ok(response)
}

async fn evaluate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let req: EvaluateBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body must be {{\"intent\": \"...\"}}: {e}"),
        )
    })?;
    let st = Arc::clone(&state);
    let span = tracing::Span::current();
    let outcome = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let start = Instant::now();
            let out = intent::evaluate_intent(
                &st.gov,
                &st.kernels,
                &req.intent,
                req.policy_bundle.as_deref(),
                None,
            )?;
            let r = out.as_policy_result();
            // Every event the kernel wrote counts as written.
            st.metrics.decision(&r, start.elapsed(), false);
            st.metrics
                .audit_events(out.result.audit_event_hashes.len() as u64);
            tracing::Span::current().record("decision", out.state());
            Ok::<_, FaceError>(out)
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok(Json(outcome.to_json()).into_response())
}

async fn rules(
    State(state): State<Arc<AppState>>,
    query: Result<Query<BundleQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    Ok(Json(
        state.gov.describe_rules(query.policy_bundle.as_deref())?,
    ))
}

async fn policy_test(
    State(state): State<Arc<AppState>>,
    query: Result<Query<BundleQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let body = body.map_err(|e| body_error(&e))?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not UTF-8: {e}"),
        )
    })?;
    Ok(Json(crate::service::policy_test::run_text(
        &state.gov,
        text,
        query.policy_bundle.as_deref(),
    )?))
}

async fn audit_verify(
    State(state): State<Arc<AppState>>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let st = Arc::clone(&state);
    let out = tokio::task::spawn_blocking(move || st.gov.audit_check(query.intent_id.as_deref()))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(Json(out))
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut out = json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")});
    // A torn tail moved aside when the log was opened (or later) is reported here.
    if let (Some(audit), Some(obj)) = (state.gov.audit(), out.as_object_mut()) {
        obj.insert("audit".into(), audit.health_json());
    }
    Json(out)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let st = Arc::clone(&state);
    let _ = tokio::task::spawn_blocking(move || super::budgets::refresh_gauges(&st)).await;
    let chain = state
        .gov
        .audit()
        .map(crate::service::AuditLog::chain_length);
    let text = state.metrics.render(chain);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {method} {}; see /openapi.json ({} routes)",
            uri.path(),
            openapi::ROUTES.len()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A ready future needs no timer; a pending one gets `None` once the deadline
    /// (counted from `start`) passes; one that ends first gets its output; a deadline
    /// past what an `Instant` holds never comes.
    #[tokio::test]
    async fn within_enforces_the_deadline_from_start() {
        let start = Instant::now();
        assert_eq!(
            within(start, Duration::from_millis(1), async { 7 }).await,
            Some(7)
        );

        let start = Instant::now();
        let out = within(
            start,
            Duration::from_millis(30),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(out, None);
        assert!(start.elapsed() >= Duration::from_millis(30));

        // The time already spent counts.
        let earlier = Instant::now();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let now = Instant::now();
        let out = within(
            earlier,
            Duration::from_millis(20),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(out, None);
        assert!(now.elapsed() < Duration::from_secs(5));

        let slow = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        };
        assert_eq!(
            within(Instant::now(), Duration::from_secs(60), slow).await,
            Some(8)
        );
        let slow = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            9
        };
        assert_eq!(within(Instant::now(), Duration::MAX, slow).await, Some(9));
    }
}
