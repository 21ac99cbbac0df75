//! `cfa policy check`: one signature against one bundle (and optionally a catalog),
//! the decision as text or JSON, optionally recorded in the audit log. Exit codes
//! follow docs/differences.md#b2-fail-closed: 0 approve, 1 invalid input, 2 usage, 3 replan, 4 block.

use crate::exit;
use crate::input::SourceFile;
use crate::load::{self, LoadedCatalog, LoadedPolicy};
use crate::service::control::ControlFace;
use crate::settings::{Flags, Settings};
use cfa::audit::{AuditTarget, Clock, ContentStore, Durability, FixedClock, SystemClock};
use cfa::kernel::{ControlPlane, Decision, PolicyCheck, UuidIds};
use cfa::types::validate::ParseError;
use cfa::{Catalog, PolicyAction, StateSignature};
use clap::{Args, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of `policy check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Aligned human-readable summary.
    Summary,
    /// The `cfa.policy_check.v1` JSON document.
    Json,
}

/// Arguments of `cfa policy check`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cfa policy check -s sig.json -p prod-v1 -c catalog.json\n  \
    cat sig.json | cfa policy check -s - -f json\n  \
    cfa policy check --batch -s sigs.jsonl --audit-log audit.jsonl > decisions.jsonl")]
pub struct CheckArgs {
    /// The signature JSON file (optionally wrapped in `signature` or `state_signature`);
    /// `-` reads standard input. With --batch: a JSONL file of signatures.
    #[arg(long, short = 's')]
    pub signature: PathBuf,
    /// Read --signature as JSONL (one signature per line) and write one decision JSON
    /// per line (`-f` is ignored); a bad line gives an error line and the rest go on.
    /// Exit code: the worst line's, in the order approve 0 < replan 3 < block 4 <
    /// invalid 1.
    #[arg(long)]
    pub batch: bool,
    /// Policy bundle: a `.yaml`/`.yml`/`.json` file or a built-in name (prod-v1,
    /// finops-strict-v1, compliance-strict-v1, eu-ai-act-v1, lgpd-v1). Default: the
    /// built-in default rules.
    #[arg(long = "policy-bundle", short = 'p', value_name = "PATH|NAME")]
    pub policy_bundle: Option<String>,
    /// Dataset catalog (JSON, or YAML by extension); hashed into the output and the
    /// audit event, and used by catalog-aware conditions.
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Also check the signature against the catalog (datasets exist, classification,
    /// PII columns and partition column agree). Needs a catalog: `-c`, or the
    /// config's `defaults.catalog`.
    #[arg(long)]
    pub strict: bool,
    /// Require at least one dataset in the signature.
    #[arg(long)]
    pub require_datasets: bool,
    /// The engine's replan counter (3 or more trips the replan cap).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub replan_count: u32,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "summary")]
    pub format: CheckFormat,
    /// Exit 0 whatever the decision (report only).
    #[arg(long)]
    pub exit_zero: bool,
    /// Accepted for compatibility; non-zero exits on replan/block are the default.
    #[arg(long, hide = true)]
    pub exit_code: bool,
    /// Record the decision in this JSONL audit log.
    #[arg(long, value_name = "FILE", conflicts_with = "audit_db")]
    pub audit_log: Option<PathBuf>,
    /// Record the decision in this SQLite audit database.
    #[arg(long, value_name = "FILE")]
    pub audit_db: Option<PathBuf>,
    /// Config file giving the defaults of --policy-bundle, --catalog and the audit log
    /// (default: discovered from the current directory upwards; flags always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Candidate bundle evaluated beside --policy-bundle without changing the decision;
    /// a flip is noted on stderr and recorded as a `shadow_flip` audit event.
    #[arg(long, value_name = "PATH|NAME", conflicts_with = "batch")]
    pub shadow_bundle: Option<String>,
    /// Lifecycle database whose kill switches and approval tickets every decision
    /// checks (created by the first write) [default: the config's storage when it is sqlite,
    /// else none: the policy's decision alone].
    #[arg(long, value_name = "FILE", help_heading = "Control plane")]
    pub lifecycle_db: Option<PathBuf>,
    /// The control plane (kill switches, approval tickets).
    #[command(flatten)]
    pub control: crate::control_cmd::ControlArgs,
}

impl CheckArgs {
    /// The settings of this check: flags > `$CFA_POLICY_BUNDLE` > `cfa.yaml` > default,
    /// the lifecycle database (`--lifecycle-db`, or its old name `--control-db`)
    /// included.
    pub fn settings(&self) -> miette::Result<crate::settings::Settings> {
        crate::settings::resolve_process(&Flags {
            config: self.config.as_deref(),
            policy_bundle: self.policy_bundle.as_deref(),
            catalog: self.catalog.as_deref(),
            audit: Flags::audit_log_or_db(self.audit_log.as_deref(), self.audit_db.as_deref()),
            state_db: self
                .control
                .lifecycle_flag(self.lifecycle_db.as_deref().map(|p| ("--lifecycle-db", p))),
            ..Flags::default()
        })
    }

    /// The control face of the resolved lifecycle database, if any.
    pub fn control_face(
        &self,
        settings: &crate::settings::Settings,
    ) -> miette::Result<Option<ControlFace>> {
        self.control.open_or_pg(
            &settings.state_db,
            "cfa policy check",
            crate::service::control_store::pg_env(settings).as_deref(),
            crate::service::control_store::FaceLife::OneShot,
        )
    }

    /// `--now`, else the system clock.
    pub fn clock(&self) -> Box<dyn Clock> {
        match &self.control.now {
            Some(now) => Box::new(FixedClock(now.clone())),
            None => Box::new(SystemClock),
        }
    }
}

/// The exit code of a decision: 0 approve, 3 replan, 4 block.
pub fn exit_for(action: PolicyAction) -> u8 {
    match action {
        PolicyAction::Approve => exit::APPROVED,
        PolicyAction::Replan => exit::REPLAN,
        PolicyAction::Block => exit::BLOCKED,
    }
}

fn print_issues(
    kind: &str,
    name: &str,
    issues: &[cfa::types::validate::Issue],
    format: CheckFormat,
) {
    match format {
        CheckFormat::Json => {
            let out = json!({"signature": name, "valid": false, "kind": kind,
                             "issue_count": issues.len(), "issues": load::issues_json(issues)});
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        CheckFormat::Summary => {
            let title = if kind == "catalog_mismatch" {
                "StateSignature/catalog mismatch"
            } else {
                "StateSignature INVALID"
            };
            outln!("{title}: {name}");
            outln!("{}", load::issue_lines(issues));
        }
    }
}

/// Runs `cfa policy check`.
pub fn run(args: CheckArgs) -> miette::Result<ExitCode> {
    if args.batch {
        return crate::policy_batch::run(&args);
    }
    let src = SourceFile::read(&args.signature)?;
    let signature = match StateSignature::parse_validated(&src.text, args.require_datasets) {
        Ok(sig) => sig,
        Err(ParseError::Syntax(e)) => {
            return Err(src.error_at(
                e.line,
                e.column.max(1),
                &format!("invalid JSON: {}", e.message),
                "here",
            ));
        }
        Err(ParseError::Invalid(inv)) => {
            print_issues("invalid_signature", &src.name(), &inv.issues, args.format);
            return Ok(exit::INVALID_INPUT.into());
        }
    };
    let settings = args.settings()?;
    let policy = load::policy(settings.policy_bundle())?;
    let catalog: Option<LoadedCatalog> = settings.catalog().map(load::catalog).transpose()?;
    if args.strict && catalog.is_none() {
        return Ok(crate::ux::usage_error(
            "--strict checks the signature against a catalog, and none was given: pass -c/--catalog CATALOG or set defaults.catalog in cfa.yaml",
        ));
    }
    if args.strict
        && let Some(cat) = &catalog
    {
        let issues = cfa::types::validate::cross_check(&signature, &cat.value);
        if !issues.is_empty() {
            print_issues("catalog_mismatch", &src.name(), &issues, args.format);
            return Ok(exit::INVALID_INPUT.into());
        }
    }
    let target = audit_target(&settings)?;
    let control = args.control_face(&settings)?;
    let clock = args.clock();
    let decided = decide_with(
        &signature,
        &policy,
        catalog.as_ref().map(|c| &c.catalog),
        args.replan_count,
        target.as_ref(),
        control.as_ref().map(ControlFace::plane),
        &*clock,
    )?;
    if let Some(candidate) = &args.shadow_bundle {
        shadow_check(
            candidate,
            &decided,
            &signature,
            catalog.as_ref(),
            target.as_ref(),
        )?;
    }
    let out = Output {
        name: src.name(),
        decided: &decided,
    };
    match args.format {
        CheckFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&out.json()).unwrap_or_default()
        ),
        CheckFormat::Summary => out!("{}", out.summary()),
    }
    Ok(if args.exit_zero {
        ExitCode::SUCCESS
    } else {
        exit_for(decided.result.action).into()
    })
}

/// `--shadow-bundle`: the candidate's view of `decided`, a flip recorded in `target`.
fn shadow_check(
    candidate: &str,
    decided: &Decision,
    signature: &StateSignature,
    catalog: Option<&LoadedCatalog>,
    target: Option<&AuditTarget>,
) -> miette::Result<()> {
    let shadow = crate::service::shadow::Shadow::load(candidate)?;
    let store = target.and_then(|t| match t.open(Durability::Always) {
        Ok(s) => Some(s),
        Err(e) => {
            crate::service::shadow::unrecorded(&e);
            None
        }
    });
    crate::service::shadow::observe_once(
        &shadow,
        crate::service::shadow::Enforced {
            intent_id: &decided.intent_id,
            decision_id: &decided.decision_id,
            content_hash: &decided.content_hash,
            bundle: &decided.policy_bundle,
            bundle_hash: &decided.policy_bundle_hash,
            result: decided.policy_result(),
        },
        signature,
        catalog.map(|c| &c.catalog),
        store.as_deref(),
        &SystemClock,
    );
    Ok(())
}

/// The audit target decisions are recorded in: `--audit-log FILE` / `--audit-db FILE`,
/// else the config's storage when it keeps a file, else none.
pub fn audit_target(settings: &Settings) -> miette::Result<Option<AuditTarget>> {
    match settings.audit() {
        Some(s) if s.path.is_some() => s.target().map(Some),
        _ => Ok(None),
    }
}

/// Evaluates `signature` against `policy` (and `catalog`) through the kernel's
/// [`PolicyCheck`] and records the decision in `target` when given (shared by
/// `policy check` and `generate`).
pub fn decide(
    signature: &StateSignature,
    policy: &LoadedPolicy,
    catalog: Option<&Catalog>,
    replan_count: u32,
    target: Option<&AuditTarget>,
) -> miette::Result<Decision> {
    decide_with(
        signature,
        policy,
        catalog,
        replan_count,
        target,
        None,
        &SystemClock,
    )
}

/// [`decide`] through the control plane `control` (kill switches, approval tickets)
/// when given, at the time `clock` gives.
pub fn decide_with(
    signature: &StateSignature,
    policy: &LoadedPolicy,
    catalog: Option<&Catalog>,
    replan_count: u32,
    target: Option<&AuditTarget>,
    control: Option<&ControlPlane>,
    clock: &dyn Clock,
) -> miette::Result<Decision> {
    let unrecorded = |e: &dyn std::fmt::Display| {
        Report::msg(format!("cannot record the decision in the audit log: {e}"))
    };
    let store = target
        .map(|t| t.open(Durability::Always))
        .transpose()
        .map_err(|e| unrecorded(&e))?;
    let inputs = target.map(inputs_beside);
    PolicyCheck::new(&policy.engine, &UuidIds, clock)
        .bundle_hash(&policy.hash)
        .catalog(catalog)
        .replan_count(replan_count)
        .audit(store.as_deref())
        .inputs(inputs.as_ref())
        .control(control)
        .decide(signature)
        .map_err(|e| unrecorded(&e))
}

/// The store of decision inputs beside an audit log or database (`<file>.signatures/`),
/// which `cfa policy backtest` replays from.
pub fn inputs_beside(target: &AuditTarget) -> ContentStore {
    match target {
        AuditTarget::Jsonl(p) | AuditTarget::Sqlite(p) => ContentStore::beside(p),
    }
}

/// The rendering of a decision (`policy check` output; `generate` when it refuses).
pub struct Output<'a> {
    /// How the signature file is named.
    pub name: String,
    /// The decision.
    pub decided: &'a Decision,
}

impl Output<'_> {
    /// docs/compatibility.md#policy-check-audit-event fields in order, then our additions.
    pub fn json(&self) -> Value {
        let d = self.decided;
        let r = &d.result;
        let faults: Vec<Value> = r
            .faults
            .iter()
            .map(|f| {
                json!({"code": f.code, "severity": f.severity, "family": f.family,
                       "message": f.message, "remediation": f.remediation})
            })
            .collect();
        let mut doc = json!({
            "schema_version": "cfa.policy_check.v1",
            "decision_id": d.decision_id,
            "signature_hash": d.signature_hash,
            "policy_bundle": d.policy_bundle,
            "catalog_hash": d.catalog_hash,
            "policy_bundle_hash": d.policy_bundle_hash,
            "action": r.action,
            "passed": r.passed(),
            "faults": faults,
            "interventions": r.interventions,
            "reasoning": r.reasoning,
            "audit_event_hash": d.audit_event_hash,
            "content_hash": d.content_hash,
            "replan_count": r.replan_count,
            "patches": r.patches,
            "manual_fixes": r.manual_fixes,
            "intent_id": d.intent_id,
        });
        if let (Some(control), Value::Object(map)) = (&d.control, &mut doc) {
            map.insert(
                "control".to_owned(),
                serde_json::to_value(control).unwrap_or(Value::Null),
            );
        }
        doc
    }

    /// The labelled summary.
    pub fn summary(&self) -> String {
        let d = self.decided;
        let r = &d.result;
        let mut s = format!(
            "Policy check {}: {}\n",
            r.action.as_str().to_uppercase(),
            self.name
        );
        let mut line = |label: &str, value: &str| {
            if !value.is_empty() {
                s.push_str(&format!("  {:<20}{value}\n", format!("{label}:")));
            }
        };
        line("decision_id", &d.decision_id);
        // The id `cfa audit show -i` finds the decision's audit event by.
        line("intent_id", &d.intent_id);
        line("signature_hash", &d.signature_hash);
        line("content_hash", &d.content_hash);
        line("policy_bundle", &d.policy_bundle);
        line("catalog_hash", &d.catalog_hash);
        line("policy_bundle_hash", &d.policy_bundle_hash);
        line("audit_event_hash", &d.audit_event_hash);
        // The reasoning is the engine's text, as in the JSON and the audit record.
        line("reasoning", &r.reasoning);
        if let Some(c) = &d.control {
            let ticket = c.ticket_id.as_deref().unwrap_or_default();
            let status = c.status.as_str();
            line(
                "control",
                &if ticket.is_empty() {
                    status.to_owned()
                } else {
                    format!("{status} (ticket {ticket})")
                },
            );
        }
        let (_, attempt) = split_replan_suffix(&r.reasoning);
        if r.action == PolicyAction::Replan || r.replan_count > 0 {
            // `replan_count` (as in the JSON) counts the replans already applied before
            // this check; the reasoning's `replan N/M` suffix names the attempt this
            // replan would be, N = replan_count + 1.
            let count = match attempt {
                Some((n, max)) => format!(
                    "{} (replans applied so far; this replan would be attempt {n} of {max})",
                    r.replan_count
                ),
                None => format!("{} (replans applied so far)", r.replan_count),
            };
            line("replan_count", &count);
        }
        for f in &r.faults {
            s.push_str(&format!("  - [{}] {}: {}\n", f.severity, f.code, f.message));
        }
        for p in &r.patches {
            s.push_str(&format!("  fix: set {} = {}\n", p.path, p.value));
        }
        for m in &r.manual_fixes {
            s.push_str(&format!(
                "  needs a manual change ({}): {}\n",
                m.code, m.reason
            ));
        }
        s
    }
}

/// The reasoning without its ` | replan N/M` suffix, and `(N, M)` when it had one.
fn split_replan_suffix(reasoning: &str) -> (&str, Option<(&str, &str)>) {
    if let Some((head, tail)) = reasoning.rsplit_once(" | replan ")
        && let Some((n, max)) = tail.split_once('/')
        && !n.is_empty()
        && !max.is_empty()
        && n.chars().chain(max.chars()).all(|c| c.is_ascii_digit())
    {
        return (head, Some((n, max)));
    }
    (reasoning, None)
}
