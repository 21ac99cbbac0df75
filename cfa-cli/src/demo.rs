//! `cfa demo`: the governed flow on embedded defaults — a sample catalog, the
//! built-in `prod-v1` bundle and a JSONL audit log in a temporary workspace — with
//! each decision explained in plain words and the audit chain verified at the end.
//! Approved work runs on the mock sandbox; a last request shows a failed load step
//! rolled back under `full_rollback`. Ids come from a sequential source and timestamps
//! from a tick clock, so the text is the same on every run.

use crate::input::PlainError;
use crate::kernel_render::{execution_line, painted_icon};
use cfa::Catalog;
use cfa::DecisionState;
use cfa::PolicyEngine;
use cfa::execute::{ExecutionConfig, FailurePolicy, MockConfig, SandboxOptions, SandboxRegistry};
use cfa::lifecycle::{
    ExecutionService, LifecycleExecution, MemoryStateStore, PromotionEngine, PromotionPolicy,
};
use cfa::{AuditStore, Clock, Durability, JsonlStore, VerifyOptions};
use cfa::{IdKind, IdSource, Kernel, KernelConfig, KernelResult, SequentialIds, TickClock};
use clap::Args;
use miette::Report;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The sample catalog (the reference's test catalog).
pub const SAMPLE_CATALOG: &str = include_str!("../../examples/catalog.json");
/// The bundle the demo governs with.
pub const BUNDLE: &str = "prod-v1";

/// The demo's intents and what each shows.
pub const INTENTS: [(&str, &str); 4] = [
    (
        "Join nfe with clientes daily, anonymize pii, into silver",
        "a well-formed request",
    ),
    (
        "ingest nfe raw into bronze",
        "a request CFA can fix by itself",
    ),
    (
        "Join NFe with Clientes and persist to Silver",
        "a request that would write raw PII",
    ),
    (
        "copy the invoices table somewhere",
        "a request about data the catalog does not know",
    ),
];

/// The last request: the first one again, but its load step fails while running.
pub const ROLLBACK: (&str, &str) = (
    "Join nfe with clientes daily, anonymize pii, into silver",
    "the same request, when its load step fails while running",
);

/// The demo's fixed epoch (2026-01-01T00:00:00Z).
const EPOCH: i64 = 1_767_225_600;

/// One id source and one clock shared by the demo's two kernels, so ids and
/// timestamps continue across them.
struct Shared<T>(Arc<T>);

impl<T: IdSource> IdSource for Shared<T> {
    fn next_id(&self, kind: IdKind) -> String {
        self.0.next_id(kind)
    }
}

impl<T: Clock> Clock for Shared<T> {
    fn now_isoformat(&self) -> String {
        self.0.now_isoformat()
    }
}

/// The mock sandbox, failing `fail_step` on every attempt when set, under `policy`.
fn execution(fail_step: Option<&str>, policy: FailurePolicy) -> Result<LifecycleExecution, Report> {
    let mut mock = MockConfig::default();
    if let Some(step) = fail_step {
        mock = mock.fail_always(step);
    }
    let opts = SandboxOptions {
        mock,
        ..SandboxOptions::default()
    };
    let sandbox = SandboxRegistry::with_builtins()
        .create("mock", &opts)
        .map_err(|e| PlainError(format!("cannot create the mock sandbox: {e}")))?;
    let service = ExecutionService {
        sandbox,
        config: ExecutionConfig {
            failure_policy: policy,
            ..ExecutionConfig::default()
        },
        store: Arc::new(MemoryStateStore::new(cfa::lifecycle::DEFAULT_HISTORY_CAP)),
        db: None,
        leases: cfa::lifecycle::LeasePolicy::default(),
        engine: PromotionEngine::new(PromotionPolicy::default(), env!("CARGO_PKG_VERSION")),
        holder: "cfa-demo".to_owned(),
        lease_ttl_secs: 600,
    };
    let now = jiff::Timestamp::from_second(EPOCH).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Ok(LifecycleExecution::new(service, Box::new(move || now)))
}

/// Arguments of `cfa demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the workspace (audit log) in this directory instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output format (`json`: `{policy_bundle, catalog, runs: [...], audit}`, the same
    /// runs and chain verdict as the narrative).
    #[arg(long, short = 'f', value_enum, default_value_t = crate::audit_cmd::Format::Summary)]
    format: crate::audit_cmd::Format,
}

fn explain(r: &KernelResult) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sig) = &r.signature {
        let names: Vec<&str> = sig.datasets.iter().map(|d| d.name.as_str()).collect();
        out.push(format!(
            "CFA read it as: {} into the {} layer, reading {}.",
            sig.intent,
            sig.target_layer,
            if names.is_empty() {
                "no known dataset".to_owned()
            } else {
                names.join(" and ")
            }
        ));
    }
    out.push(format!(
        "Decision:       {} {}",
        painted_icon(r.state),
        r.state
    ));
    for h in &r.replan_history {
        out.push(format!(
            "Replanned:      policy asked for a fix ({}); CFA applied it:",
            h.fault_codes.join(", ")
        ));
        for p in &h.applied_patches {
            out.push(format!("                  set {} = {}", p.path, p.value));
        }
    }
    if let Some(line) = execution_line(r) {
        out.push(format!("Executed:       {line}"));
    }
    let why = match r.state {
        DecisionState::Approved => {
            "every rule of the bundle passed, the generated code passed static validation, and the run published its output."
                .to_owned()
        }
        DecisionState::ApprovedWithWarnings => {
            "approved after the automatic fix; the change is recorded in the audit log.".to_owned()
        }
        DecisionState::RolledBack => {
            "policy approved it, but the load step failed while running, retries included; under the full_rollback policy everything the run wrote was undone, so nothing was published (cfa evaluate exits 5 for this)."
                .to_owned()
        }
        _ => match &r.policy_result {
            Some(p) if p.action == cfa::PolicyAction::Block => {
                let hard: Vec<&str> = p
                    .faults
                    .iter()
                    .filter(|f| f.mandatory_action == cfa::PolicyAction::Block)
                    .map(|f| f.code.as_str())
                    .collect();
                format!(
                    "the bundle blocks it: {} demand(s) a block, which no automatic fix may override.",
                    hard.join(", ")
                )
            }
            _ => r.blocked_reason.clone(),
        },
    };
    out.push(format!("Why:            {why}"));
    for f in r.faults.iter().take(3) {
        out.push(format!(
            "  - [{}] {}: {}",
            f.severity.as_str().to_uppercase(),
            f.code,
            f.message
        ));
        if let Some(rem) = f.remediation.first() {
            out.push(format!("    what to change: {rem}"));
        }
    }
    if r.faults.len() > 3 {
        out.push(format!("  … and {} more fault(s)", r.faults.len() - 3));
    }
    out
}

/// `cfa demo`.
pub fn run(args: DemoArgs) -> Result<ExitCode, Report> {
    let temp;
    let (dir, shown) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| PlainError(format!("cannot create {}: {e}", d.display())))?;
            (d.clone(), d.display().to_string())
        }
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| PlainError(format!("cannot create a temporary directory: {e}")))?;
            (
                temp.path().to_path_buf(),
                "a temporary directory (removed on exit)".to_owned(),
            )
        }
    };
    let log = dir.join("audit.jsonl");
    let value: serde_json::Value = serde_json::from_str(SAMPLE_CATALOG)
        .map_err(|e| PlainError(format!("embedded catalog: {e}")))?;
    let catalog =
        Catalog::from_value(&value).map_err(|e| PlainError(format!("embedded catalog: {e}")))?;
    let store: Arc<dyn AuditStore> = Arc::new(
        JsonlStore::open(&log, Durability::Always)
            .map_err(|e| PlainError(format!("cannot open the audit log: {e}")))?,
    );
    let ids = Arc::new(SequentialIds::new());
    let clock = Arc::new(TickClock::new(EPOCH));
    let build = |exec: LifecycleExecution| -> Result<Kernel, Report> {
        let engine = PolicyEngine::builtin(BUNDLE).map_err(|e| PlainError(e.to_string()))?;
        let mut config = KernelConfig::new(engine, catalog.clone());
        config.policy_bundle_hash = cfa::policy::builtin::source(BUNDLE)
            .map(|s| cfa::types::canonical::sha256_hex(s.as_bytes()))
            .unwrap_or_default();
        Kernel::builder(config)
            .audit(store.clone())
            .ids(Shared(ids.clone()))
            .clock(Shared(clock.clone()))
            .executor(exec)
            .build()
            .map_err(|e| PlainError(e.to_string()).into())
    };
    let kernel = build(execution(None, FailurePolicy::default())?)?;
    let failing = build(execution(Some("load_target"), FailurePolicy::FullRollback)?)?;

    let json = args.format == crate::audit_cmd::Format::Json;
    // The narrative, unless JSON was asked for (then one document at the end).
    macro_rules! say {
        ($($t:tt)*) => { if !json { outln!($($t)*); } };
    }
    say!("CFA demo: governing what agents and pipelines ask to do, before anything runs.");
    say!();
    say!(
        "Catalog:   {} datasets ({})",
        catalog.datasets.len(),
        catalog
            .datasets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!(
        "Policy:    built-in bundle {BUNDLE} ({} rules)",
        kernel.config().policy.rules().len()
    );
    say!("Audit log: audit.jsonl in {shown}");
    say!(
        "(Ids are sequential and timestamps come from a tick clock, so this text is the same on every run.)"
    );
    let runs = INTENTS
        .iter()
        .map(|i| (i, &kernel))
        .chain(std::iter::once((&ROLLBACK, &failing)));
    let mut done = Vec::new();
    for (n, ((intent, what), k)) in runs.enumerate() {
        let r = k.process(intent);
        done.push(serde_json::json!({
            "n": n + 1,
            "what": what,
            "intent": intent,
            "intent_id": r.intent_id,
            "state": r.state.as_str(),
            "signature_hash": r.signature_hash,
            "faults": r.faults.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(),
            "explanation": explain(&r),
            "audit_events": r.audit_event_hashes.len(),
        }));
        say!();
        say!("{}. {what}", n + 1);
        say!("You asked:      \"{intent}\"");
        for line in explain(&r) {
            say!("{line}");
        }
        say!(
            "Audit:          {} events written for {}",
            r.audit_event_hashes.len(),
            r.intent_id
        );
    }
    store
        .flush()
        .map_err(|e| PlainError(format!("cannot flush the audit log: {e}")))?;
    let report = cfa::audit::verify_file(&log, &VerifyOptions::default(), &mut |_| {})
        .map_err(|e| PlainError(format!("cannot verify the audit log: {e}")))?;
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "policy_bundle": BUNDLE,
                "catalog": catalog.datasets.keys().collect::<Vec<_>>(),
                "runs": done,
                "audit": {"events": report.events, "intact": report.intact(), "tail_hash": report.tail_hash},
            })
        );
    }
    say!();
    if report.intact() {
        say!(
            "Audit chain:    {} events, every SHA-256 link verified: INTACT (tail {}…)",
            report.events,
            report.tail_hash.chars().take(16).collect::<String>()
        );
    } else {
        say!(
            "Audit chain:    BROKEN at event {:?}",
            report.first_bad.map(|b| b.index)
        );
        return Ok(crate::exit::INVALID_INPUT.into());
    }
    say!();
    say!("Next: cfa init, then cfa evaluate \"<your intent>\" (see cfa evaluate --help).");
    Ok(ExitCode::SUCCESS)
}
