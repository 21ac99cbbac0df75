//! `cfa policy check --batch`: a JSONL stream of signatures (a file or `-`) against one
//! bundle, one decision JSON per line out, in input order. A bad line (not JSON, not a
//! valid signature, a strict catalog mismatch) gives an error line naming its line
//! number and the rest go on; the exit code is the worst line's (approve 0 < replan 3
//! < block 4 < invalid input 1). The bundle, the catalog and the audit store are
//! loaded once for the whole stream. Decisions are the kernel's `PolicyCheck`, exactly
//! as for one signature.

use crate::exit;
use crate::load::{self, LoadedCatalog};
use crate::policy_cmd::{CheckArgs, Output, audit_target, exit_for};
use cfa::audit::Durability;
use cfa::kernel::{PolicyCheck, UuidIds};
use cfa::types::validate::ParseError;
use cfa::{PolicyAction, StateSignature};
use serde_json::{Value, json};
use std::process::ExitCode;

/// How bad a line's outcome is; the batch exits with the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Approve,
    Replan,
    Block,
    Invalid,
}

impl Severity {
    fn of(action: PolicyAction) -> Self {
        match action {
            PolicyAction::Approve => Severity::Approve,
            PolicyAction::Replan => Severity::Replan,
            PolicyAction::Block => Severity::Block,
        }
    }
}

/// `{"line": N, "error": {"message", "path", "line", "column", "code", …extra}}`.
fn error_line(
    name: &str,
    line: usize,
    column: Option<usize>,
    message: &str,
    code: &str,
    extra: Option<(&str, Value)>,
) -> Value {
    let mut error = json!({
        "message": message,
        "path": name,
        "line": line,
        "column": column,
        "code": code,
    });
    if let (Some((key, value)), Some(obj)) = (extra, error.as_object_mut()) {
        obj.insert(key.to_owned(), value);
    }
    json!({"line": line, "error": error})
}

/// Runs `cfa policy check --batch`.
pub fn run(args: &CheckArgs) -> miette::Result<ExitCode> {
    let settings = args.settings()?;
    let policy = load::policy(settings.policy_bundle())?;
    let catalog: Option<LoadedCatalog> = settings.catalog().map(load::catalog).transpose()?;
    if args.strict && catalog.is_none() {
        return Ok(crate::ux::usage_error(
            "--strict checks the signature against a catalog, and none was given: pass -c/--catalog CATALOG or set defaults.catalog in cfa.yaml",
        ));
    }
    let target = audit_target(&settings)?;
    let store = target
        .as_ref()
        .map(|t| t.open(Durability::Always))
        .transpose()
        .map_err(|e| miette::miette!("cannot record the decisions in the audit log: {e}"))?;
    let inputs = target.as_ref().map(crate::policy_cmd::inputs_beside);
    // Every line goes through the control plane of the lifecycle database, if any.
    let control = args.control_face(&settings)?;
    let clock = args.clock();
    let check = PolicyCheck::new(&policy.engine, &UuidIds, &*clock)
        .bundle_hash(&policy.hash)
        .catalog(catalog.as_ref().map(|c| &c.catalog))
        .replan_count(args.replan_count)
        .audit(store.as_deref())
        .inputs(inputs.as_ref())
        .control(
            control
                .as_ref()
                .map(crate::service::control::ControlFace::plane),
        );
    let name = args.signature.display().to_string();
    let mut reader = crate::input::open_lines(&args.signature)?;
    let mut worst: Option<Severity> = None;
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        buf.clear();
        let read = std::io::BufRead::read_until(&mut reader, b'\n', &mut buf).map_err(|e| {
            miette::miette!(
                "cannot read {name} after line {number}: {}",
                crate::input::io_reason(&e)
            )
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        let (out, severity) = match std::str::from_utf8(&buf) {
            Err(e) => (
                error_line(
                    &name,
                    number,
                    None,
                    &format!(
                        "line {number} is not valid UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                    "invalid_utf8",
                    None,
                ),
                Severity::Invalid,
            ),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match one(args, catalog.as_ref(), &check, &name, number, text)? {
                Ok((v, action)) => (v, Severity::of(action)),
                Err(v) => (v, Severity::Invalid),
            },
        };
        outln!("{out}");
        worst = worst.max(Some(severity));
    }
    let code = match worst {
        None | Some(Severity::Approve) => exit::APPROVED,
        Some(Severity::Invalid) => exit::INVALID_INPUT,
        Some(_) if args.exit_zero => exit::APPROVED,
        Some(Severity::Replan) => exit_for(PolicyAction::Replan),
        Some(Severity::Block) => exit_for(PolicyAction::Block),
    };
    Ok(code.into())
}

/// One line: the decision JSON and its action, or the error line. An audit failure
/// ends the batch (`Err`): no later decision could be recorded either.
fn one(
    args: &CheckArgs,
    catalog: Option<&LoadedCatalog>,
    check: &PolicyCheck<'_>,
    name: &str,
    number: usize,
    text: &str,
) -> miette::Result<Result<(Value, PolicyAction), Value>> {
    let signature = match StateSignature::parse_validated(text, args.require_datasets) {
        Ok(sig) => sig,
        Err(ParseError::Syntax(e)) => {
            return Ok(Err(error_line(
                name,
                number,
                Some(e.column.max(1)),
                &format!("invalid JSON: {}", e.message),
                "invalid_json",
                None,
            )));
        }
        Err(ParseError::Invalid(inv)) => {
            return Ok(Err(error_line(
                name,
                number,
                None,
                &format!("invalid signature ({} issues)", inv.issues.len()),
                "invalid_signature",
                Some(("issues", load::issues_json(&inv.issues))),
            )));
        }
    };
    if args.strict
        && let Some(cat) = catalog
    {
        let issues = cfa::types::validate::cross_check(&signature, &cat.value);
        if !issues.is_empty() {
            return Ok(Err(error_line(
                name,
                number,
                None,
                &format!(
                    "signature does not match the catalog ({} issues)",
                    issues.len()
                ),
                "catalog_mismatch",
                Some(("issues", load::issues_json(&issues))),
            )));
        }
    }
    let decided = check.decide(&signature).map_err(|e| {
        miette::miette!("line {number}: cannot record the decision in the audit log: {e}")
    })?;
    let mut v = Output {
        name: name.to_owned(),
        decided: &decided,
    }
    .json();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("line".into(), number.into());
    }
    Ok(Ok((v, decided.result.action)))
}
