//! `cfa serve`: the HTTP face of the decision service (axum on hyper's HTTP/1,
//! 127.0.0.1 unless told otherwise); the decisions themselves come from the service it
//! shares with `cfa mcp` ([`crate::service`]). Our own accept loop gives every connection a header-read timeout (which
//! also bounds how long a connection may sit idle), so a client that sends half a
//! request is cut off without holding anything up, and caps the open connections
//! ([`conns`]): idle ones are shed first.

pub mod app;
pub mod backtest;
pub mod budgets;
pub mod conns;
pub mod control_api;
pub mod dashboard;
pub mod document;
pub mod evidence;
pub mod metrics;
pub mod openapi;
pub mod origin;

use crate::face_flags::FaceFlags;
use crate::service::decide::{BundleAccess, Governance};
use crate::service::intent;
use crate::telemetry::{self, TelemetryArgs};
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use miette::Report;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// Arguments of `cfa serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Browser safety: requests naming a foreign Host get 421, cross-site browser \
requests (foreign Origin, Sec-Fetch-Site: cross-site) get 403, and POST/PUT/PATCH bodies not sent \
as Content-Type: application/json get 415, all before anything is parsed or audited.

Examples:
  cfa serve -c catalog.json --lifecycle-db cfa.db
  CFA_PG_DSN='host=db user=cfa dbname=cfa' cfa serve --audit-pg-env CFA_PG_DSN -c catalog.json --sandbox mock
    (a replica: one audit chain and one lease table in PostgreSQL; approved intents of
    POST /v1/evaluate execute, and an overlapping run on a target another replica holds
    is blocked with STATE_TARGET_LEASED)"
)]
pub struct ServeArgs {
    /// Address to bind. Only loopback by default; pass 0.0.0.0 to listen on every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port (0 picks a free one; the chosen address is printed on stdout).
    #[arg(long, short = 'p', default_value_t = 8765)]
    pub port: u16,
    /// Also serve /metrics (the same registry) on 127.0.0.1:PORT, a listener of its own
    /// for a Prometheus scraper (0 picks a free port; its address is the second stdout
    /// line). Host checks and --token apply there too.
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    #[command(flatten)]
    pub face: FaceFlags,
    /// Lifecycle SQLite database: the one store of the control plane (every decision
    /// checks its kill switches and approval tickets; created by the first write), the budgets
    /// `/v1/budgets` and `/metrics` show, and the leases and records of executed runs
    /// [default: the config's storage when it is sqlite].
    #[arg(long, value_name = "FILE")]
    pub lifecycle_db: Option<std::path::PathBuf>,
    /// Require `Authorization: Bearer <TOKEN>` on every route except /health.
    #[arg(
        long,
        env = "CFA_HTTP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body: usize,
    /// Longest a client may take to send its request headers, and a request to complete (ms).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub request_timeout_ms: u64,
    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Most connections open at once. At the cap a new connection replaces the oldest
    /// idle one (closed); when every connection is busy it gets 503 and is closed.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Also accept requests whose Host header names NAME (without port; repeatable).
    /// By default only localhost, 127.0.0.0/8, [::1] and the address the request
    /// arrived on are accepted (421 otherwise), which keeps DNS-rebound web pages out.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Accept any Host header (behind a proxy that checks it).
    #[arg(long)]
    pub allow_any_host: bool,
    /// Accept browser requests from ORIGIN (e.g. https://dash.example; repeatable; `*`
    /// for any). By default a request with a foreign Origin, or with
    /// `Sec-Fetch-Site: cross-site`, gets 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// The control plane (kill switches, approval tickets).
    #[command(flatten)]
    pub control: crate::control_cmd::ControlArgs,
    /// Executing approved intents (`--sandbox`), under their target lease.
    #[command(flatten)]
    pub exec: crate::face_exec::FaceExecArgs,
}

/// Runs `cfa serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> miette::Result<ExitCode> {
    let telemetry = telemetry::init(&args.telemetry, "cfa-serve")?;
    let lifecycle = args
        .control
        .lifecycle_flag(args.lifecycle_db.as_deref().map(|p| ("--lifecycle-db", p)));
    let face = args.face.resolve(None, lifecycle.map(|(_, p)| p), &[])?;
    let gov = Governance::load(
        face.settings.policy_bundle(),
        face.settings.catalog(),
        face.audit_log.as_deref(),
        args.face.audit_fsync,
        BundleAccess::NamesOnly,
    )?
    .with_control(args.control.open_or_pg(
        &face.settings.state_db,
        "cfa serve",
        face.audit_pg_env.as_deref(),
        crate::service::control_store::FaceLife::LongRunning,
    )?);
    let pg_budgets = face.pg_budgets()?;
    let mut gov = face.with_pg_audit(gov)?;
    if let Some(candidate) = &args.face.shadow_bundle {
        gov.set_shadow(crate::service::shadow::Shadow::load(candidate)?);
    }
    let timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    let metrics = metrics::Metrics::new().with_shadow(gov.shadow());
    let state = Arc::new(app::AppState {
        gov,
        metrics,
        token: args.token.clone().filter(|t| !t.is_empty()),
        openapi: openapi::document().to_string(),
        request_timeout: timeout,
        kernels: intent::Kernels::with_budgets(crate::service::budget::face_ledger_with(
            pg_budgets.as_ref(),
            face.lifecycle_db.as_deref(),
        )?)
        .with_executor(args.exec.executor(
            &face.settings,
            face.lifecycle_db.as_deref(),
            face.audit_pg_env.as_deref(),
        )?),
        hosts: origin::HostPolicy {
            any_host: args.allow_any_host,
            names: args
                .allowed_hosts
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            bound: args.bind,
            origins: args
                .allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        },
        lifecycle_db: face.lifecycle_db.clone(),
        pg_budgets,
    });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Report::msg(format!("cannot start the async runtime: {e}")))?;
    let addr = SocketAddr::new(args.bind, args.port);
    let limits = Limits {
        max_body: args.max_body,
        header_timeout: timeout,
        max_connections: effective_max_connections(args.max_connections.max(1)),
    };
    let result = runtime.block_on(serve(Arc::clone(&state), addr, args.metrics_port, limits));
    if let Some(audit) = state.gov.audit()
        && let Err(e) = audit.flush()
    {
        tracing::error!("cannot flush the audit log: {e}");
    }
    drop(runtime);
    telemetry.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}

/// Transport limits of one server.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_body: usize,
    header_timeout: Duration,
    max_connections: usize,
}

/// Descriptors kept free for the listener, the audit log, config and bundle files.
const FD_HEADROOM: usize = 64;

/// The process's soft limit on open files (Linux `/proc`; `None` elsewhere).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `requested`, lowered so the cap is reached before the descriptors run out (at the
/// cap idle connections are shed; out of descriptors nothing can be accepted).
fn effective_max_connections(requested: usize) -> usize {
    match open_files_limit() {
        Some(limit) if limit.saturating_sub(FD_HEADROOM) < requested => {
            let lowered = limit.saturating_sub(FD_HEADROOM).max(16);
            tracing::warn!(
                requested,
                open_files_limit = limit,
                max_connections = lowered,
                "--max-connections lowered to fit the open-files limit"
            );
            lowered
        }
        _ => requested,
    }
}

/// What an over-the-cap connection is told before it is closed.
fn busy_response() -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server is at its connection limit and every connection is busy; retry shortly",
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Report> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Report::msg(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Report::msg(format!("cannot read the bound address: {e}")))?;
    Ok((listener, local))
}

/// The first stdout line names the API's address; with `--metrics-port` a second line
/// names the metrics listener's (both bound before either is printed).
async fn serve(
    state: Arc<app::AppState>,
    addr: SocketAddr,
    metrics_port: Option<u16>,
    limits: Limits,
) -> Result<(), Report> {
    let (listener, local) = bind(addr).await?;
    let metrics = match metrics_port {
        Some(port) => Some(bind(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)).await?),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "cfa serve: listening on http://{local}");
        if let Some((_, m)) = &metrics {
            let _ = writeln!(out, "cfa serve: metrics on http://{m}/metrics");
        }
        let _ = out.flush();
    }
    tracing::info!(
        address = %local,
        metrics_address = metrics.as_ref().map(|(_, m)| m.to_string()),
        auth = state.token.is_some(),
        policy_bundle = state.gov.active().engine.version(),
        audit_log = state.gov.audit().map(|a| a.path().display().to_string()),
        max_connections = limits.max_connections,
        "cfa serve listening"
    );
    let api = accept_loop(
        listener,
        app::router(Arc::clone(&state), limits.max_body),
        local,
        limits,
    );
    match metrics {
        None => api.await,
        Some((listener, m)) => {
            let metrics_loop = accept_loop(
                listener,
                app::metrics_router(Arc::clone(&state), limits.max_body),
                m,
                limits,
            );
            tokio::select! {
                r = api => r,
                r = metrics_loop => r,
            }
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each, with the header-read
/// timeout and the connection cap of `limits`, until Ctrl-C.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    local: SocketAddr,
    limits: Limits,
) -> Result<(), Report> {
    let conns = conns::Connections::new(limits.max_connections);
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // e.g. too many open files: free a descriptor held by an idle
                // connection, else back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                let pause = if conns.shed_one() { 5 } else { 50 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
        };
        let Some(ticket) = conns.admit() else {
            tracing::warn!(peer = %peer, "connection limit reached, every connection busy: 503");
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(&busy_response()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local_ip = stream.local_addr().map_or(local.ip(), |a| a.ip());
        let inner = TowerToHyperService::new(app.clone());
        let busy = ticket.counter();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(origin::LocalAddr(local_ip));
                let guard = conns::Busy::from_counter(&busy);
                let fut = hyper::service::Service::call(&inner, req);
                async move {
                    let out = fut.await;
                    drop(guard);
                    out
                }
            });
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %peer, "connection closed: {e}");
                    }
                }
                () = ticket.shed() => {
                    tracing::debug!(peer = %peer, "idle connection shed at the connection limit");
                    // A request that slipped in meanwhile may finish; nothing else.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
            drop(ticket);
        });
    }
}
