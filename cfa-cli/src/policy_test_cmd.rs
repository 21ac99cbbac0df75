//! `cfa policy test`: golden cases (cfa-policy's [`cases`](cfa::policy::cases) format)
//! run against one bundle, pass/fail per case with the difference, rule coverage, and
//! text, JSON or JUnit XML out. This module reads the files (case files, the signatures
//! and catalogs they name by path); parsing, running and reporting are the library's.
//! Exit codes: 0 every case passed, 1 invalid input (a case file or bundle that cannot
//! be read, no case found), 7 a case failed or could not run.

use crate::exit;
use crate::input::SourceFile;
use crate::load::{self, LoadedCatalog};
use crate::settings::Flags;
use cfa::policy::cases::{
    CaseFormat, CaseResult, CaseSource, PolicyCase, SuiteReport, parse_cases, run_case,
};
use cfa::types::validate::ParseError;
use cfa::{Catalog, StateSignature};
use clap::{Args, ValueEnum};
use miette::Report;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code when a case failed or could not run.
pub const TESTS_FAILED: u8 = 7;

/// Output format of `policy test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// One line per case, differences under failures, then coverage and totals.
    Text,
    /// The `cfa.policy_test.v1` JSON document.
    Json,
    /// JUnit XML for CI systems.
    Junit,
}

/// Arguments of `cfa policy test`.
#[derive(Debug, Args)]
#[command(
    after_help = "A case file (YAML, JSON, or JSONL with one case per line) holds one case, a list, \
    or {cases: [...]}:\n\n  \
    name: unpartitioned 4 TB scan is replanned\n  \
    signature: signatures/nfe.json     # or the signature written inline\n  \
    catalog: catalog.json              # optional; inline or a path\n  \
    replan_count: 0                    # optional\n  \
    expect:\n    \
    action: replan                   # approve | replan | block\n    \
    faults: [FINOPS_MISSING_TEMPORAL_PREDICATE]   # optional, exact and in order\n    \
    patches: [{path: constraints.partition_by, value: [processing_date]}]  # optional\n\n\
    Paths in a case are relative to its file. A directory is searched recursively for \
    *.case.yaml|yml|json and *.cases.yaml|yml|json|jsonl files.\n\n\
    Exit codes: 0 every case passed, 1 invalid input (a case file that does not parse, \
    with file:line:column), 7 a case failed or could not run.\n\n\
    Examples:\n  \
    cfa policy test examples/policy-tests -b examples/policy-tests/lakehouse-core.yaml\n  \
    cfa policy test cases/ -b prod-v1 -f junit > policy-tests.xml\n  \
    cfa policy test one.case.yaml -f json"
)]
pub struct TestArgs {
    /// Case files or directories of case files.
    #[arg(required = true, value_name = "DIR|FILE")]
    pub paths: Vec<PathBuf>,
    /// The bundle under test: a `.yaml`/`.yml`/`.json` file or a built-in name; default
    /// from the config, else the built-in default rules.
    #[arg(
        long = "bundle",
        short = 'b',
        visible_alias = "policy-bundle",
        value_name = "PATH|NAME"
    )]
    pub bundle: Option<String>,
    /// Catalog for the cases that name none (JSON, or YAML by extension).
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: TestFormat,
    /// Config file giving the defaults of --bundle and --catalog.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Whether a file found while walking a directory is a case file.
pub(crate) fn is_suite_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    [".case.", ".cases."].iter().any(|m| name.contains(m)) && CaseFormat::is_case_file(&name)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Report> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Report::msg(format!(
            "cannot read directory {}: {}",
            dir.display(),
            crate::input::io_reason(&e)
        ))
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_suite_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The case files the arguments name, in order (directories walked, sorted).
pub fn case_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Report> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Reads and parses one case file; a parse error is located at its line and column.
pub(crate) fn read_cases(path: &Path) -> Result<Vec<PolicyCase>, Report> {
    let src = SourceFile::read(path)?;
    let name = src.name();
    parse_cases(&src.text, CaseFormat::from_path_str(&name), &name).map_err(|e| match e.position {
        Some(p) => src.error_at(
            p.line,
            p.column,
            &format!("invalid policy test case: {}", e.message),
            "here",
        ),
        None => Report::msg(format!("{name}: invalid policy test case: {}", e.message)),
    })
}

/// Resolves a case's signature, catalog and runs it; anything unreadable is the case's error.
pub(crate) struct Runner<'a> {
    engine: &'a cfa::PolicyEngine,
    default_catalog: Option<&'a Catalog>,
    catalogs: HashMap<PathBuf, Result<LoadedCatalog, String>>,
    /// The roots the files a case names must resolve under (a face's); `None`: any file.
    confine: Option<&'a crate::roots::Roots>,
}

impl<'a> Runner<'a> {
    /// A runner over `engine`; cases that name no catalog use `default_catalog`, and
    /// with `confine` a file a case names is read only when it resolves under it.
    pub(crate) fn new(
        engine: &'a cfa::PolicyEngine,
        default_catalog: Option<&'a Catalog>,
        confine: Option<&'a crate::roots::Roots>,
    ) -> Self {
        Self {
            engine,
            default_catalog,
            catalogs: HashMap::new(),
            confine,
        }
    }

    /// The file a case in `dir` names by `given`, under the roots when confined.
    fn path(&self, dir: &Path, given: &str, noun: &str) -> Result<PathBuf, String> {
        let joined = dir.join(given);
        let Some(roots) = self.confine else {
            return Ok(joined);
        };
        // Canonical first (a case may say `../x.json`), then checked against the roots.
        let refused = || format!("no such {noun} {given:?} under the server's allowed roots");
        let canon = std::fs::canonicalize(&joined).map_err(|_| refused())?;
        let text = canon.to_str().ok_or_else(refused)?;
        roots
            .resolve(text, "path_refused", noun)
            .map_err(|e| match e.code {
                "file_too_large" => e.message,
                _ => refused(),
            })
    }

    /// Runs one case of the file in `dir`.
    pub(crate) fn run(&mut self, case: &PolicyCase, dir: &Path) -> CaseResult {
        let signature = match &case.signature {
            CaseSource::Inline(v) => StateSignature::from_validated_value(v, false)
                .map_err(|e| format!("invalid inline signature: {}", parse_message(e))),
            CaseSource::Path(p) => self
                .path(dir, p, "signature")
                .and_then(|path| read_signature(&path)),
        };
        let signature = match signature {
            Ok(s) => s,
            Err(message) => return CaseResult::error(case, message),
        };
        let inline;
        let catalog = match &case.catalog {
            None => self.default_catalog,
            Some(CaseSource::Inline(v)) => match Catalog::from_value(v) {
                Ok(c) => {
                    inline = c;
                    Some(&inline)
                }
                Err(e) => return CaseResult::error(case, format!("invalid inline catalog: {e}")),
            },
            Some(CaseSource::Path(p)) => {
                let path = match self.path(dir, p, "catalog") {
                    Ok(path) => path,
                    Err(message) => return CaseResult::error(case, message),
                };
                let loaded = self
                    .catalogs
                    .entry(path.clone())
                    .or_insert_with(|| load::catalog(&path).map_err(|e| e.to_string()));
                match loaded {
                    Ok(c) => Some(&c.catalog),
                    Err(message) => return CaseResult::error(case, message.clone()),
                }
            }
        };
        run_case(self.engine, case, &signature, catalog)
    }
}

fn parse_message(e: ParseError) -> String {
    match e {
        ParseError::Syntax(s) => s.to_string(),
        ParseError::Invalid(inv) => inv.to_string(),
    }
}

fn read_signature(path: &Path) -> Result<StateSignature, String> {
    let src = SourceFile::read(path).map_err(|e| e.to_string())?;
    StateSignature::parse_validated(&src.text, false)
        .map_err(|e| format!("invalid signature {}: {}", src.name(), parse_message(e)))
}

/// Runs `cfa policy test`.
pub fn run(args: TestArgs) -> miette::Result<ExitCode> {
    let settings = crate::settings::resolve_process(&Flags {
        config: args.config.as_deref(),
        policy_bundle: args.bundle.as_deref(),
        catalog: args.catalog.as_deref(),
        ..Flags::default()
    })?;
    let policy = load::policy(settings.policy_bundle())?;
    let default_catalog = settings.catalog().map(load::catalog).transpose()?;
    let files = case_files(&args.paths)?;
    let mut suites = Vec::new();
    for file in &files {
        suites.push((file.clone(), read_cases(file)?));
    }
    if suites.iter().all(|(_, cases)| cases.is_empty()) {
        return Err(Report::msg(format!(
            "no policy test case found in {} (a directory is searched for *.case.yaml|yml|json and *.cases.yaml|yml|json|jsonl)",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut runner = Runner::new(
        &policy.engine,
        default_catalog.as_ref().map(|c| &c.catalog),
        None,
    );
    let mut report = SuiteReport::new(&policy.engine);
    for (file, cases) in &suites {
        let dir = file.parent().unwrap_or(Path::new("."));
        for case in cases {
            report.push(runner.run(case, dir));
        }
    }
    match args.format {
        TestFormat::Text => out!("{}", report.to_text()),
        TestFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        ),
        TestFormat::Junit => out!("{}", report.to_junit()),
    }
    Ok(if report.ok() {
        exit::APPROVED.into()
    } else {
        TESTS_FAILED.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_files_are_named_case_or_cases() {
        assert!(is_suite_file(Path::new("a/nfe.case.yaml")));
        assert!(is_suite_file(Path::new("a/all.cases.jsonl")));
        assert!(is_suite_file(Path::new("a/B.CASE.JSON")));
        assert!(!is_suite_file(Path::new("a/signature.json")));
        assert!(!is_suite_file(Path::new("a/bundle.yaml")));
        assert!(!is_suite_file(Path::new("a/x.case.txt")));
    }
}
