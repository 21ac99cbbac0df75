//! `cfa serve`: the HTTP decision service (axum on hyper's HTTP/1, 127.0.0.1 unless
//! told otherwise), plus the decision service it shares with `cfa mcp` ([`decide`],
//! [`intent`]). Our own accept loop gives every connection a header-read timeout, so a
//! client that sends half a request is cut off without holding anything up.

pub mod app;
pub mod decide;
pub mod intent;
pub mod metrics;
pub mod openapi;

use crate::telemetry::{self, TelemetryArgs};
use cfa_audit::Durability;
use clap::Args;
use decide::{BundleAccess, Governance};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use miette::Report;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `cfa serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind. Only loopback by default; pass 0.0.0.0 to listen on every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port (0 picks a free one; the chosen address is printed on stdout).
    #[arg(long, short = 'p', default_value_t = 8765)]
    pub port: u16,
    /// Dataset catalog (JSON, or YAML by extension) [default: the config's].
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Config file giving the defaults of --catalog, --policy-bundle and --audit-log
    /// (default: discovered from the current directory upwards; flags always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Active policy bundle: a file or a built-in name (default: the config's, else the
    /// built-in default rules). Requests may name other built-in bundles, never files.
    #[arg(
        long = "policy-bundle",
        env = "CFA_POLICY_BUNDLE",
        value_name = "PATH|NAME"
    )]
    pub policy_bundle: Option<String>,
    /// JSONL audit log: every decision is appended to it [default: the config's storage
    /// when it is jsonl].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// When audit appends reach the disk: always, batch, batch:N or never.
    #[arg(long, default_value = "always", value_name = "MODE")]
    pub audit_fsync: Durability,
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
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Runs `cfa serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> miette::Result<ExitCode> {
    let telemetry = telemetry::init(&args.telemetry, "cfa-serve")?;
    let defaults = crate::config::face_defaults(args.config.as_deref())?;
    let gov = Governance::load(
        args.policy_bundle
            .as_deref()
            .or(defaults.policy_bundle.as_deref()),
        args.catalog.as_deref().or(defaults.catalog.as_deref()),
        args.audit_log.as_deref().or(defaults.audit_log.as_deref()),
        args.audit_fsync,
        BundleAccess::NamesOnly,
    )?;
    let timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    let state = Arc::new(app::AppState {
        gov,
        metrics: metrics::Metrics::new(),
        token: args.token.clone().filter(|t| !t.is_empty()),
        openapi: openapi::document().to_string(),
        request_timeout: timeout,
        kernels: intent::Kernels::default(),
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
    let result = runtime.block_on(serve(Arc::clone(&state), addr, args.max_body, timeout));
    if let Some(audit) = state.gov.audit()
        && let Err(e) = audit.flush()
    {
        tracing::error!("cannot flush the audit log: {e}");
    }
    drop(runtime);
    telemetry.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}

async fn serve(
    state: Arc<app::AppState>,
    addr: SocketAddr,
    max_body: usize,
    header_timeout: Duration,
) -> Result<(), Report> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Report::msg(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Report::msg(format!("cannot read the bound address: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "cfa serve: listening on http://{local}");
        let _ = out.flush();
    }
    tracing::info!(
        address = %local,
        auth = state.token.is_some(),
        policy_bundle = state.gov.active().engine.version(),
        audit_log = state.gov.audit().map(|a| a.path().display().to_string()),
        "cfa serve listening"
    );
    let app = app::router(Arc::clone(&state), max_body);
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
                // e.g. too many open files: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, "connection closed: {e}");
            }
        });
    }
}
