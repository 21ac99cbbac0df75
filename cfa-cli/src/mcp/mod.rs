//! `cfa mcp`: the MCP server over stdio on the official Rust SDK (rmcp). stdin lines go
//! through the [`gate::Gate`] (parse errors, invalid requests, API key, rate limit)
//! before rmcp; rmcp's answers and the gate's errors are written to stdout one whole
//! line at a time by a single writer. Logs go to stderr only.

pub mod gate;
pub mod ratelimit;
pub mod tools;

use crate::serve::decide::Governance;
use crate::telemetry::{self, TelemetryArgs};
use cfa_audit::Durability;
use clap::Args;
use miette::Report;
use rmcp::ServiceExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Longest accepted input line (bytes).
const MAX_LINE: usize = 8 << 20;

/// Arguments of `cfa mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Dataset catalog (JSON, or YAML by extension) the tools ground and check against
    /// [default: the config's].
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Config file giving the defaults of --catalog, --policy-bundle, --audit-log and
    /// --lifecycle-db (default: discovered from the current directory upwards; flags
    /// always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Active policy bundle: a file or a built-in name (default: the config's, else the
    /// built-in default rules). Tool calls may name other built-in bundles, never files.
    #[arg(
        long = "policy-bundle",
        short = 'p',
        env = "CFA_POLICY_BUNDLE",
        value_name = "PATH|NAME"
    )]
    pub policy_bundle: Option<String>,
    /// JSONL audit log: decisions are recorded in it and `cfa_audit_check` verifies it
    /// [default: the config's storage when it is jsonl].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Lifecycle SQLite database read by `cfa_lifecycle_status` [default: the config's
    /// storage when it is sqlite].
    #[arg(long, value_name = "FILE")]
    pub lifecycle_db: Option<PathBuf>,
    /// When audit appends reach the disk: always, batch, batch:N or never.
    #[arg(long, default_value = "always", value_name = "MODE")]
    pub audit_fsync: Durability,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Runs `cfa mcp` until stdin closes.
pub fn run(args: McpArgs) -> miette::Result<ExitCode> {
    let telemetry = telemetry::init(&args.telemetry, "cfa-mcp")?;
    let defaults = crate::config::face_defaults(args.config.as_deref())?;
    let gov = Governance::load(
        args.policy_bundle
            .as_deref()
            .or(defaults.policy_bundle.as_deref()),
        args.catalog.as_deref().or(defaults.catalog.as_deref()),
        args.audit_log.as_deref().or(defaults.audit_log.as_deref()),
        args.audit_fsync,
        tools::ACCESS,
    )?;
    let limit = ratelimit::limit_from_env(std::env::var("CFA_MCP_RATE_LIMIT").ok().as_deref())
        .map_err(Report::msg)?;
    let api_key = std::env::var("CFA_MCP_API_KEY").ok();
    tracing::info!(
        policy_bundle = gov.active().engine.version(),
        catalog = args.catalog.as_ref().map(|p| p.display().to_string()),
        audit_log = args.audit_log.as_ref().map(|p| p.display().to_string()),
        auth = api_key.as_deref().is_some_and(|k| !k.is_empty()),
        rate_limit = limit,
        "cfa-mcp starting on stdio"
    );
    let gate = gate::Gate::new(
        api_key,
        ratelimit::RateLimiter::new(
            limit,
            ratelimit::RateLimiter::WINDOW,
            Box::new(ratelimit::SystemMonotonic::default()),
        ),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Report::msg(format!("cannot start the async runtime: {e}")))?;
    let lifecycle_db = args.lifecycle_db.clone().or(defaults.lifecycle_db);
    let server = tools::CfaMcp::new(Arc::new(gov), lifecycle_db);
    let result = runtime.block_on(serve_stdio(server, gate));
    drop(runtime);
    telemetry.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}

async fn serve_stdio(server: tools::CfaMcp, gate: gate::Gate) -> Result<(), Report> {
    let (to_rmcp, rmcp_in) = tokio::io::duplex(1 << 20);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(1 << 20);
    let (tx, mut rx) = mpsc::channel::<String>(256);

    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            if out.write_all(&bytes).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let pump_tx = tx.clone();
    let pump = tokio::spawn(async move {
        let mut lines = BufReader::new(from_rmcp).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if pump_tx.send(line).await.is_err() {
                break;
            }
        }
    });
    let reader = tokio::spawn(read_stdin(gate, to_rmcp, tx));

    let service = server
        .serve((rmcp_in, rmcp_out))
        .await
        .map_err(|e| Report::msg(format!("MCP session failed to start: {e}")))?;
    let quit = service.waiting().await;
    reader.abort();
    let _ = pump.await;
    let _ = writer.await;
    if let Err(e) = quit {
        tracing::debug!("MCP session ended: {e}");
    }
    Ok(())
}

/// Reads stdin line by line through the gate until EOF; dropping `to_rmcp` then ends
/// the rmcp session.
async fn read_stdin(
    mut gate: gate::Gate,
    mut to_rmcp: tokio::io::DuplexStream,
    replies: mpsc::Sender<String>,
) {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = match (&mut stdin)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("cannot read stdin: {e}");
                break;
            }
        };
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Skip the rest of the oversized line.
            let mut sink = Vec::new();
            if stdin.read_until(b'\n', &mut sink).await.is_err() {
                break;
            }
            let line = gate::error_line(
                &serde_json::Value::Null,
                gate::INVALID_REQUEST,
                &format!("Invalid request: line longer than {MAX_LINE} bytes"),
            );
            if replies.send(line).await.is_err() {
                break;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        match gate.check(text.trim_end_matches(['\n', '\r'])) {
            gate::Verdict::Forward(line) => {
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                if to_rmcp.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            gate::Verdict::Reply(line) => {
                if replies.send(line).await.is_err() {
                    break;
                }
            }
            gate::Verdict::Drop => {}
        }
    }
    let _ = to_rmcp.shutdown().await;
}
