//! `cfa policy backtest`: every decision recorded in an audit log (JSONL or SQLite)
//! decided again with a candidate bundle, from the signatures and catalogs stored
//! beside the log by their hashes (cfa-kernel's `replay`); each decision that would
//! change is reported with an RFC 6962 inclusion proof of its original event against
//! the log's Merkle root (and, given `--checkpoint`, a signed offline proof that
//! `cfa audit verify-proof` checks). Decisions whose inputs are not stored are listed
//! as not replayable. The replay and the document are [`crate::service::backtest`]'s
//! (shared with the HTTP and MCP faces); this module reads the flags and prints.
//! Exit codes: 0 no decision would change, 1 invalid input (a broken
//! chain, an unreadable log or bundle), 7 some decision would change.

use crate::exit;
use crate::load;
use crate::policy_test_cmd::TESTS_FAILED;
use crate::service::backtest::Backtest;
use cfa::audit::{AuditTarget, ContentStore};
use clap::{Args, ValueEnum};
use miette::Report;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of `policy backtest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BacktestFormat {
    /// A summary line, then one block per changed or unreplayable decision.
    Text,
    /// The `cfa.policy_backtest.v1` JSON document.
    Json,
}

/// Arguments of `cfa policy backtest`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every audited decision (`cfa policy check`, `cfa serve`, `cfa mcp` with an audit log) \
    stores its signature (and catalog) under <log>.signatures/ by the content_hash (and catalog_hash) \
    its event carries; the backtest decides each again with the candidate bundle and reports \
    what would change (old -> new action, fault codes, the candidate's rules), with an \
    inclusion proof of the original event. Governed runs (`cfa evaluate`, `cfa serve`/`cfa mcp` \
    intents) store theirs the same way, with a run record naming the catalog. Decisions whose \
    inputs are not stored (logs written before this store existed, a PostgreSQL chain) are \
    listed as not replayable, never guessed.\n\n\
    Exit codes: 0 no decision would change, 1 invalid input, 7 some decision would change.\n\n\
    Examples:\n  \
    cfa policy backtest --bundle candidate.yaml --log audit.jsonl\n  \
    cfa policy backtest --bundle prod-v1 --db audit.db -f json\n  \
    cfa policy backtest --bundle candidate.yaml --log audit.jsonl --checkpoint audit.checkpoint"
)]
pub struct BacktestArgs {
    /// The candidate bundle: a `.yaml`/`.yml`/`.json` file or a built-in name.
    #[arg(long = "bundle", short = 'b', value_name = "PATH|NAME")]
    pub bundle: String,
    /// The JSONL audit log to replay.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "db",
        conflicts_with = "db"
    )]
    pub log: Option<PathBuf>,
    /// The SQLite audit database to replay.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Where the decision inputs are (default: `<log>.signatures/`).
    #[arg(long, value_name = "DIR")]
    pub inputs: Option<PathBuf>,
    /// A signed checkpoint of the log (`cfa audit checkpoint`): each change also gets
    /// an offline proof in the C2SP tlog-proof layout.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: BacktestFormat,
    /// Exit 0 even when decisions would change (report only).
    #[arg(long)]
    pub exit_zero: bool,
}

/// Runs `cfa policy backtest`.
pub fn run(args: BacktestArgs) -> miette::Result<ExitCode> {
    let (target, file) = match (&args.log, &args.db) {
        (Some(p), _) => (AuditTarget::Jsonl(p.clone()), p.clone()),
        (None, Some(p)) => (AuditTarget::Sqlite(p.clone()), p.clone()),
        (None, None) => return Ok(crate::ux::usage_error("give --log FILE or --db FILE")),
    };
    if !file.is_file() {
        return Err(Report::msg(format!(
            "cannot read audit log {}: no such file",
            file.display()
        )));
    }
    let policy = load::policy(Some(&args.bundle))?;
    let note = args
        .checkpoint
        .as_deref()
        .map(|p| crate::input::read_text(p, "checkpoint"))
        .transpose()?;
    let inputs = match &args.inputs {
        Some(dir) => ContentStore::open(dir.clone()),
        None => ContentStore::beside(&file),
    };
    let doc = Backtest {
        target: &target,
        log_name: file.display().to_string(),
        inputs,
        policy: &policy,
        checkpoint: note,
        live: false,
    }
    .run()
    .map_err(|e| Report::msg(e.to_string()))?;
    let changed = doc.get("changed").and_then(Value::as_u64).unwrap_or(0);
    match args.format {
        BacktestFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        BacktestFormat::Text => out!("{}", text(&doc)),
    }
    Ok(if changed == 0 || args.exit_zero {
        exit::APPROVED.into()
    } else {
        TESTS_FAILED.into()
    })
}

fn codes(v: &Value) -> String {
    let list: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!("[{}]", list.join(", "))
}

/// The value at JSON pointer `path`, or `null`.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    v.pointer(path).unwrap_or(&Value::Null)
}

fn text(doc: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = format!(
        "Backtest of {} against {}: {} decisions, {} replayed, {} would change, {} not replayable\n",
        s(at(doc, "/candidate/policy_bundle")),
        s(at(doc, "/log")),
        at(doc, "/decisions"),
        at(doc, "/replayed"),
        at(doc, "/changed"),
        at(doc, "/not_replayable"),
    );
    for c in at(doc, "/changes").as_array().into_iter().flatten() {
        out.push_str(&format!(
            "CHANGE event {} (decision {}, intent {}): {} {} -> {} {}\n",
            at(c, "/index"),
            s(at(c, "/decision_id")),
            s(at(c, "/intent_id")),
            s(at(c, "/old/action")),
            codes(at(c, "/old/faults")),
            s(at(c, "/new/action")),
            codes(at(c, "/new/faults")),
        ));
        out.push_str(&format!(
            "       candidate rules: {}\n       event {} is leaf {} of {} under root {} ({})\n",
            codes(at(c, "/new/rules")),
            s(at(c, "/event_hash")),
            at(c, "/proof/leaf_index"),
            at(c, "/proof/tree_size"),
            s(at(c, "/proof/root")),
            if at(c, "/proof/verified") == &Value::Bool(true) {
                "inclusion proof verified"
            } else {
                "inclusion proof FAILED"
            },
        ));
    }
    for m in at(doc, "/missing").as_array().into_iter().flatten() {
        out.push_str(&format!(
            "NOT REPLAYABLE event {} (decision {}, stage {}): {}\n",
            at(m, "/index"),
            s(at(m, "/decision_id")),
            s(at(m, "/stage")),
            s(at(m, "/reason")),
        ));
    }
    out
}
