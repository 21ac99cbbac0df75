//! `cfa mcp`: the MCP server over stdio on the official Rust SDK (rmcp). stdin lines go
//! through the [`gate::Gate`] (parse errors, invalid requests, API key, rate limit)
//! before rmcp; rmcp's answers and the gate's errors are written to stdout one whole
//! line at a time by a single writer. Logs go to stderr only.

pub mod budget_tools;
pub mod control_tools;
pub mod gate;
pub mod policy_tools;
pub mod ratelimit;
pub mod tools;

use crate::face_flags::FaceFlags;
use crate::service::decide::Governance;
use crate::telemetry::{self, TelemetryArgs};
use clap::Args;
use miette::Report;
use rmcp::ServiceExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Longest accepted input line (bytes).
const MAX_LINE: usize = 8 << 20;

/// Arguments of `cfa mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub face: FaceFlags,
    /// Short form of --policy-bundle.
    #[arg(
        short = 'p',
        hide = true,
        value_name = "PATH|NAME",
        conflicts_with = "policy_bundle"
    )]
    pub policy_bundle_short: Option<String>,
    /// Lifecycle SQLite database: the one store of the control plane (every decision
    /// checks its kill switches and approval tickets; created by the first write), the budgets
    /// and the skills `cfa_lifecycle_status` reads [default: the config's storage when
    /// it is sqlite].
    #[arg(long, value_name = "FILE")]
    pub lifecycle_db: Option<PathBuf>,
    /// Directory that file paths in tool arguments must resolve under (repeatable;
    /// default: the config's defaults.roots, else the working directory). `..`,
    /// symlinks leading out and anything but a regular file are refused.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    /// Largest file a tool argument may name, in bytes.
    #[arg(long, default_value_t = crate::roots::DEFAULT_MAX_FILE_BYTES, value_name = "BYTES")]
    pub max_file_size: u64,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// The control plane (kill switches, approval tickets).
    #[command(flatten)]
    pub control: crate::control_cmd::ControlArgs,
    /// Token the `cfa_approvals` and `cfa_kill_switch` tools need for a change
    /// (argument `operator_token`; without it their changes need none), and that
    /// `cfa_budget_set`/`cfa_budget_rm` always need (without it they are refused).
    #[arg(
        long,
        env = "CFA_OPERATOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Control plane"
    )]
    pub operator_token: Option<String>,
    /// Executing approved intents (`--sandbox`), under their target lease.
    #[command(flatten)]
    pub exec: crate::face_exec::FaceExecArgs,
}

/// Runs `cfa mcp` until stdin closes.
pub fn run(args: McpArgs) -> miette::Result<ExitCode> {
    let telemetry = telemetry::init(&args.telemetry, "cfa-mcp")?;
    let lifecycle = args
        .control
        .lifecycle_flag(args.lifecycle_db.as_deref().map(|p| ("--lifecycle-db", p)));
    let face = args.face.resolve(
        args.policy_bundle_short.as_deref(),
        lifecycle.map(|(_, p)| p),
        &args.roots,
    )?;
    let gov = Governance::load(
        face.settings.policy_bundle(),
        face.settings.catalog(),
        face.audit_log.as_deref(),
        args.face.audit_fsync,
        tools::ACCESS,
    )?
    .with_control(
        args.control
            .open_or_pg(
                &face.settings.state_db,
                "cfa mcp",
                face.audit_pg_env.as_deref(),
                crate::service::control_store::FaceLife::LongRunning,
            )?
            .map(|c| c.with_operator_token(args.operator_token.clone())),
    );
    let mut gov = face.with_pg_audit(gov)?;
    if let Some(candidate) = &args.face.shadow_bundle {
        gov.set_shadow(crate::service::shadow::Shadow::load(candidate)?);
    }
    let limit = ratelimit::limit_from_env(std::env::var("CFA_MCP_RATE_LIMIT").ok().as_deref())
        .map_err(Report::msg)?;
    let api_key = std::env::var("CFA_MCP_API_KEY").ok();
    tracing::info!(
        policy_bundle = gov.active().engine.version(),
        catalog = args.face.catalog.as_ref().map(|p| p.display().to_string()),
        audit_log = args
            .face
            .audit_log
            .as_ref()
            .map(|p| p.display().to_string()),
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
    let lifecycle_db = face.lifecycle_db.clone();
    // --root flags win over the config's defaults.roots; neither: the working directory.
    let roots = crate::roots::Roots::new(&face.settings.roots.value, args.max_file_size)
        .map_err(Report::msg)?;
    tracing::info!(
        roots = ?roots.dirs(),
        max_file_size = roots.max_bytes(),
        "tool file paths are confined to these roots"
    );
    let pg_budgets = face.pg_budgets()?;
    let ledger =
        crate::service::budget::face_ledger_with(pg_budgets.as_ref(), lifecycle_db.as_deref())?;
    let executor = args.exec.executor(
        &face.settings,
        lifecycle_db.as_deref(),
        face.audit_pg_env.as_deref(),
    )?;
    let server = tools::CfaMcp::new(Arc::new(gov), lifecycle_db)
        .with_roots(roots)
        .with_kernels(crate::service::intent::Kernels::with_budgets(ledger).with_executor(executor))
        .with_operator_token(args.operator_token.clone())
        .with_pg_budgets(pg_budgets);
    let gate = gate.with_tools(server.tool_names());
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

/// One line read by [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// End of input, nothing read.
    Eof,
    /// A line (in the buffer, with its newline if it had one).
    Complete,
    /// A line longer than the limit: discarded as it was read (the buffer is empty).
    TooLong,
}

/// Reads one line into `buf`, keeping at most `max` bytes of it: past that the rest
/// of the line is read and thrown away chunk by chunk, so an oversized line never
/// sits in memory.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut read_any = false;
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (read_any, too_long) {
                (false, _) => Line::Eof,
                (true, false) => Line::Complete,
                (true, true) => Line::TooLong,
            });
        }
        read_any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let used = newline.map_or(chunk.len(), |i| i + 1);
        if !too_long {
            let content = buf.len() + newline.unwrap_or(used);
            match chunk.get(..used) {
                Some(part) if content <= max => buf.extend_from_slice(part),
                _ => {
                    too_long = true;
                    buf.clear();
                    buf.shrink_to(4096);
                }
            }
        }
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
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
        let line = match read_line_bounded(&mut stdin, &mut buf, MAX_LINE).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot read stdin: {e}");
                break;
            }
        };
        match line {
            Line::Eof => break,
            Line::TooLong => {
                tracing::warn!("discarded an input line longer than {MAX_LINE} bytes");
                let line = gate::error_line(
                    &serde_json::Value::Null,
                    gate::INVALID_REQUEST,
                    &format!(
                        "Invalid request: line longer than {MAX_LINE} bytes ({} MiB); it was discarded",
                        MAX_LINE >> 20
                    ),
                );
                if replies.send(line).await.is_err() {
                    break;
                }
                continue;
            }
            Line::Complete => {}
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn oversized_lines_are_skipped_without_buffering() {
        let mut input = Vec::new();
        input.extend_from_slice(b"ok\n");
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\nabcd\n12345");
        let mut r = BufReader::with_capacity(7, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 4).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"ok\n");
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 4).await.unwrap(),
            Line::TooLong
        );
        assert!(buf.capacity() <= 4096);
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 4).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"abcd\n");
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 4).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 4).await.unwrap(),
            Line::Eof
        );
    }
}
