//! `cfa policy backtest`: every decision recorded in an audit log (JSONL or SQLite)
//! decided again with a candidate bundle, from the signatures and catalogs stored
//! beside the log by their hashes (cfa-kernel's `replay`); each decision that would
//! change is reported with an RFC 6962 inclusion proof of its original event against
//! the log's Merkle root (and, given `--checkpoint`, a signed offline proof that
//! `cfa audit verify-proof` checks). Decisions whose inputs are not stored are listed
//! as not replayable. Exit codes: 0 no decision would change, 1 invalid input (a broken
//! chain, an unreadable log or bundle), 7 some decision would change.

use crate::exit;
use crate::load;
use crate::policy_test_cmd::TESTS_FAILED;
use cfa::audit::{AuditEvent, AuditTarget, ContentStore, OfflineProof};
use cfa::kernel::replay::{RecordedDecision, Replayed, replay};
use cfa_audit::merkle::{self, Hash};
use cfa_audit::{SqliteStore, VerifyOptions};
use clap::{Args, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::ops::ControlFlow;
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

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn events(target: &AuditTarget) -> Result<Vec<AuditEvent>, cfa::audit::AuditError> {
    let mut out = Vec::new();
    let mut push = |e: AuditEvent| {
        out.push(e);
        ControlFlow::Continue(())
    };
    match target {
        AuditTarget::Jsonl(p) => cfa_audit::jsonl::scan_file(p, &mut push)?,
        AuditTarget::Sqlite(p) => {
            use cfa::AuditStore;
            SqliteStore::open_read_only(p)?.scan(&mut push)?;
        }
    }
    Ok(out)
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
    let cannot =
        |e: &dyn std::fmt::Display| Report::msg(format!("cannot replay {}: {e}", file.display()));
    let opts = VerifyOptions {
        collect_leaves: true,
        ..VerifyOptions::default()
    };
    let report = cfa::audit::checkpoint::verify_target(&target, &opts, &mut |_| {})
        .map_err(|e| cannot(&e))?;
    if let Some(bad) = &report.first_bad {
        return Err(Report::msg(format!(
            "cannot replay {}: the chain is broken at event {} (line {}): {}; run `cfa audit verify` first",
            file.display(),
            bad.index,
            bad.line,
            bad.reason
        )));
    }
    let events = events(&target).map_err(|e| cannot(&e))?;
    let leaves = &report.leaves;
    if leaves.len() != events.len() {
        return Err(cannot(&format!(
            "the log changed while it was read ({} events verified, {} read)",
            leaves.len(),
            events.len()
        )));
    }
    let root = merkle::root(leaves);
    let size = leaves.len() as u64;
    let cap = policy.engine.max_replan_attempts();
    let (mut decisions, mut same) = (0usize, 0usize);
    let mut changes = Vec::new();
    let mut missing = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let Some(recorded) = RecordedDecision::of(i as u64, event, cap) else {
            continue;
        };
        decisions += 1;
        match replay(&recorded, &policy.engine, &inputs) {
            Replayed::Same => same += 1,
            Replayed::NotReplayable { reason } => missing.push(json!({
                "index": recorded.index,
                "event_hash": recorded.event_hash,
                "decision_id": recorded.decision_id,
                "intent_id": recorded.intent_id,
                "stage": recorded.stage,
                "reason": reason,
            })),
            Replayed::Changed {
                action,
                faults,
                rules,
            } => {
                let path =
                    merkle::inclusion_proof(leaves, recorded.index).map_err(|e| cannot(&e))?;
                let leaf = merkle::event_leaf(&recorded.event_hash);
                let verified =
                    merkle::verify_inclusion(&leaf, recorded.index, size, &path, &root).is_ok();
                let mut proof = json!({
                    "leaf_index": recorded.index,
                    "tree_size": size,
                    "root": hex(&root),
                    "leaf": hex(&leaf),
                    "audit_path": path.iter().map(hex).collect::<Vec<_>>(),
                    "verified": verified,
                });
                if let (Some(note), Some(obj)) = (&note, proof.as_object_mut()) {
                    let line = cfa_audit::checkpoint::event_line(&target, recorded.index)
                        .map_err(|e| cannot(&e))?;
                    let offline = OfflineProof::build(leaves, recorded.index, line, note.clone())
                        .map_err(|e| cannot(&e))?;
                    obj.insert("offline_proof".into(), Value::String(offline.to_text()));
                }
                changes.push(json!({
                    "index": recorded.index,
                    "event_hash": recorded.event_hash,
                    "decision_id": recorded.decision_id,
                    "intent_id": recorded.intent_id,
                    "stage": recorded.stage,
                    "replan_count": recorded.replan_count,
                    "old": {"policy_bundle": recorded.policy_bundle_version,
                            "action": recorded.action, "faults": recorded.faults},
                    "new": {"policy_bundle": policy.engine.version(),
                            "action": action, "faults": faults, "rules": rules},
                    "proof": proof,
                }));
            }
        }
    }
    let doc = json!({
        "schema_version": "cfa.policy_backtest.v1",
        "log": file.display().to_string(),
        "inputs": inputs.dir().display().to_string(),
        "candidate": {"policy_bundle": policy.engine.version(),
                      "policy_bundle_hash": policy.hash, "source": policy.source},
        "events": events.len(),
        "decisions": decisions,
        "replayed": same + changes.len(),
        "unchanged": same,
        "changed": changes.len(),
        "not_replayable": missing.len(),
        "root": hex(&root),
        "tree_size": size,
        "changes": changes,
        "missing": missing,
    });
    match args.format {
        BacktestFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        BacktestFormat::Text => out!("{}", text(&doc)),
    }
    Ok(if changes.is_empty() || args.exit_zero {
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
