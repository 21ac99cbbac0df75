//! The policy tools of `cfa mcp` (docs/mcp.md#testing-and-backtesting-bundles):
//! `cfa_policy_test` runs golden cases from files under the server's `--root`
//! directories (as `cfa policy test` does; every file a case names must resolve under
//! them too), `cfa_policy_backtest` decides every decision of the server's own audit
//! log again with a candidate bundle (as `cfa policy backtest` does). The candidate is
//! a built-in name, a bundle file under the roots, or the bundle's text. Both only
//! read: no audit event, no file. A failed case or a decision that would change comes
//! back with `isError: true` and the report in `structuredContent` (the CLI's exit 7).

use crate::policy_test_cmd::{Runner, is_suite_file, read_cases};
use crate::roots::Roots;
use crate::service::decide::Governance;
use crate::service::{FaceError, backtest, candidate};
use cfa::policy::cases::SuiteReport;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `cfa_policy_test` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyTestParams {
    /// Case files or directories of case files (searched for *.case.yaml|yml|json and
    /// *.cases.yaml|yml|json|jsonl), under the server's --root directories.
    pub paths: Vec<String>,
    /// The bundle under test: a built-in name or a .yaml/.yml/.json file under the
    /// roots. Default: the server's active bundle.
    #[serde(default)]
    pub bundle: Option<String>,
    /// The bundle's text (YAML, or JSON starting with `{`), instead of `bundle`.
    #[serde(default)]
    pub bundle_text: Option<String>,
}

/// `cfa_policy_backtest` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PolicyBacktestParams {
    /// The candidate bundle: a built-in name or a .yaml/.yml/.json file under the roots.
    #[serde(default)]
    pub bundle: Option<String>,
    /// The candidate bundle's text (YAML, or JSON starting with `{`), instead of `bundle`.
    #[serde(default)]
    pub bundle_text: Option<String>,
}

/// The refusal code of a case path that does not resolve under the roots.
const NO_CASES: &str = "no_case_file";

fn report(v: Value, ok: bool) -> CallToolResult {
    if ok {
        CallToolResult::structured(v)
    } else {
        CallToolResult::structured_error(v)
    }
}

fn face_error(e: &FaceError) -> CallToolResult {
    CallToolResult::structured_error(e.to_json())
}

/// Runs `cfa_policy_test`.
pub fn policy_test(gov: &Governance, roots: &Roots, p: &PolicyTestParams) -> CallToolResult {
    match run_cases(gov, roots, p) {
        Ok(r) => report(r.to_json(), r.ok()),
        Err(e) => face_error(&e),
    }
}

fn run_cases(
    gov: &Governance,
    roots: &Roots,
    p: &PolicyTestParams,
) -> Result<SuiteReport, FaceError> {
    if p.paths.is_empty() {
        return Err(FaceError::new(
            "invalid_arguments",
            "paths names no case file or directory",
        ));
    }
    let policy = candidate::load(
        gov,
        Some(roots),
        p.bundle.as_deref(),
        p.bundle_text.as_deref(),
    )?;
    let files = case_files(roots, &p.paths)?;
    let mut suites = Vec::with_capacity(files.len());
    for file in files {
        let cases =
            read_cases(&file).map_err(|e| FaceError::new("invalid_cases", e.to_string()))?;
        suites.push((file, cases));
    }
    if suites.iter().all(|(_, cases)| cases.is_empty()) {
        return Err(FaceError::new(
            NO_CASES,
            format!(
                "no policy test case found in {} (a directory is searched for *.case.yaml|yml|json and *.cases.yaml|yml|json|jsonl)",
                p.paths.join(", ")
            ),
        ));
    }
    let mut runner = Runner::new(
        &policy.engine,
        gov.catalog().map(|c| &c.catalog),
        Some(roots),
    );
    let mut report = SuiteReport::new(&policy.engine);
    for (file, cases) in &suites {
        let dir = file.parent().unwrap_or(Path::new("/"));
        for case in cases {
            report.push(runner.run(case, dir));
        }
    }
    Ok(report)
}

/// The case files `given` names, each resolved under the roots: a directory is walked
/// (sorted; a symlink leading out of the roots is skipped, each directory once).
fn case_files(roots: &Roots, given: &[String]) -> Result<Vec<PathBuf>, FaceError> {
    let noun = "case file or directory";
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for g in given {
        match roots.resolve_dir(g, NO_CASES, noun) {
            Ok(dir) => walk(roots, &dir, &mut out, &mut seen),
            Err(_) => out.push(roots.resolve(g, NO_CASES, noun)?),
        }
    }
    Ok(out)
}

fn walk(roots: &Roots, dir: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) {
    if !seen.insert(dir.to_path_buf()) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(canon) = std::fs::canonicalize(&p) else {
            continue;
        };
        if !roots.contains(&canon) {
            continue;
        }
        if canon.is_dir() {
            walk(roots, &canon, out, seen);
        } else if is_suite_file(&p)
            && let Some(file) = canon
                .to_str()
                .and_then(|c| roots.resolve(c, NO_CASES, "case file").ok())
        {
            out.push(file);
        }
    }
}

/// Runs `cfa_policy_backtest`.
pub fn policy_backtest(
    gov: &Governance,
    roots: &Roots,
    p: &PolicyBacktestParams,
) -> CallToolResult {
    let out = (|| {
        if p.bundle.as_deref().is_none_or(|b| b.trim().is_empty()) && p.bundle_text.is_none() {
            return Err(FaceError::new(
                "invalid_arguments",
                "give the candidate: bundle (a built-in name or a file under the roots) or bundle_text",
            ));
        }
        let policy = candidate::load(
            gov,
            Some(roots),
            p.bundle.as_deref(),
            p.bundle_text.as_deref(),
        )?;
        backtest::of_face_log(gov, &policy)
    })();
    match out {
        Ok(doc) => {
            let unchanged = doc.get("changed").and_then(Value::as_u64) == Some(0);
            report(doc, unchanged)
        }
        Err(e) => face_error(&e),
    }
}
