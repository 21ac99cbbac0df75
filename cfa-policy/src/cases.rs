//! Golden policy test cases (`cfa policy test`): parsing case files, running a case
//! against an engine, and the suite report with rule coverage, JSON and JUnit XML.
//!
//! A case names a signature (inline, or a path the caller resolves), optionally a
//! catalog (same) and a replan count, and what the decision must be: the action, and
//! optionally the fault codes (in order), the patches and the reasoning. A case file is
//! YAML (`.yaml`/`.yml`), JSON, or JSONL (`.jsonl`, one case per line), holding one case,
//! a list of cases, or `{cases: [...]}`. The conformance corpus' line shape
//! (`id`, `expected: {action, faults: [{code, ...}], reasoning, ...}`) is accepted as is.
//!
//! Everything here is pure: text in, values out; reading the files the paths name is
//! the caller's business.
//!
//! ```
//! use cfa_policy::PolicyEngine;
//! use cfa_policy::cases::{CaseFormat, CaseSource, SuiteReport, parse_cases, run_case};
//! use cfa_types::StateSignature;
//!
//! let text = r#"
//! name: partitioned scan is approved
//! signature:
//!   domain: fiscal
//!   intent: ingest
//!   target_layer: silver
//!   datasets:
//!     - {name: nfe, classification: high_volume, size_gb: 4000, pii_columns: [],
//!        partition_column: processing_date, merge_keys: [nfe_id]}
//!   constraints: {partition_by: [processing_date], merge_key_required: true}
//! expect:
//!   action: approve
//!   faults: []
//! "#;
//! let cases = parse_cases(text, CaseFormat::Yaml, "approve.yaml")?;
//! let engine = PolicyEngine::default();
//! let mut report = SuiteReport::new(&engine);
//! for case in &cases {
//!     let CaseSource::Inline(value) = &case.signature else { unreachable!() };
//!     let signature = StateSignature::from_value(value)?;
//!     report.push(run_case(&engine, case, &signature, None));
//! }
//! assert_eq!((report.passed(), report.failed()), (1, 0));
//! // Nothing fired: every rule of the bundle is listed as never fired.
//! assert_eq!(report.never_fired().len(), engine.rules().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::PolicyEngine;
use crate::bundle::{BundleFormat, ParseError, parse_text};
use crate::engine::MAX_REPLAN_CODE;
use crate::locate::{Position, PositionMap};
use cfa_types::{Catalog, PolicyAction, PolicyResult, StateSignature};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// How a case file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseFormat {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// One JSON document (`.json`).
    Json,
    /// One JSON case per line (`.jsonl`).
    Jsonl,
}

impl CaseFormat {
    /// The format a file name implies: `.yaml`/`.yml` YAML, `.jsonl` JSONL, else JSON.
    pub fn from_path_str(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".jsonl") {
            CaseFormat::Jsonl
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            CaseFormat::Yaml
        } else {
            CaseFormat::Json
        }
    }

    /// Whether a file of this name is a case file (`.yaml`, `.yml`, `.json`, `.jsonl`).
    pub fn is_case_file(path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        [".yaml", ".yml", ".json", ".jsonl"]
            .iter()
            .any(|s| lower.ends_with(s))
    }
}

/// A case file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", .position.map(|p| format!(":{p}")).unwrap_or_default())]
pub struct CaseError {
    /// The file (or label) the text came from.
    pub origin: String,
    /// Line and column of the offending node, when known.
    pub position: Option<Position>,
    /// What is wrong.
    pub message: String,
}

impl From<ParseError> for CaseError {
    fn from(e: ParseError) -> Self {
        CaseError {
            origin: e.origin,
            position: e.position,
            message: e.message,
        }
    }
}

/// Where a case's signature or catalog comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseSource {
    /// Written in the case.
    Inline(Value),
    /// A file path, relative to the case file; the caller reads it.
    Path(String),
}

/// One expected patch (`{path, value}`; `op` defaults to `set`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedPatch {
    /// Dotted field path.
    pub path: String,
    /// The value it sets.
    pub value: Value,
}

/// What a case's decision must be. Only what is given is checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    /// The action.
    pub action: PolicyAction,
    /// The fault codes, in rule order (exact list).
    pub faults: Option<Vec<String>>,
    /// The patches, in order (exact list of `{path, value}`).
    pub patches: Option<Vec<ExpectedPatch>>,
    /// The reasoning string, byte for byte.
    pub reasoning: Option<String>,
}

/// One golden case.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyCase {
    /// The case's name (`name` or `id`; else `<origin>#<n>`).
    pub name: String,
    /// The file it came from.
    pub origin: String,
    /// Where the case starts in that file.
    pub position: Option<Position>,
    /// The signature.
    pub signature: CaseSource,
    /// The catalog, if any.
    pub catalog: Option<CaseSource>,
    /// The replan counter the decision runs with (default 0).
    pub replan_count: u32,
    /// The expected decision.
    pub expect: Expectation,
}

const CASE_KEYS: &[&str] = &[
    "name",
    "id",
    "description",
    "signature",
    "catalog",
    "replan_count",
    "expect",
    "expected",
];
const EXPECT_KEYS: &[&str] = &[
    "action",
    "faults",
    "patches",
    "reasoning",
    // the conformance corpus' extra expectations: accepted, not checked
    "interventions",
    "signature_hash",
];

struct Located<'a> {
    origin: &'a str,
    map: Option<PositionMap>,
    /// Path prefix of the current document (`cases[2]` or `` for a single case).
    line_offset: usize,
}

impl Located<'_> {
    fn at(&self, path: &str) -> Option<Position> {
        self.map.as_ref().map(|m| {
            let p = m.locate(path);
            Position {
                line: p.line + self.line_offset,
                column: p.column,
            }
        })
    }

    fn err(&self, path: &str, message: impl Into<String>) -> CaseError {
        CaseError {
            origin: self.origin.to_owned(),
            position: self.at(path),
            message: message.into(),
        }
    }
}

/// Parses the cases of one file. `origin` names it in errors and case names.
pub fn parse_cases(
    text: &str,
    format: CaseFormat,
    origin: &str,
) -> Result<Vec<PolicyCase>, CaseError> {
    match format {
        CaseFormat::Jsonl => {
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value =
                    parse_text(line, BundleFormat::Json, origin).map_err(|e| CaseError {
                        position: e.position.map(|p| Position {
                            line: p.line + i,
                            column: p.column,
                        }),
                        ..CaseError::from(e)
                    })?;
                let loc = Located {
                    origin,
                    map: PositionMap::from_json(line),
                    line_offset: i,
                };
                let n = out.len() + 1;
                out.push(case_of(&value, "", &loc, n)?);
            }
            Ok(out)
        }
        CaseFormat::Yaml | CaseFormat::Json => {
            let bundle_format = if format == CaseFormat::Yaml {
                BundleFormat::Yaml
            } else {
                BundleFormat::Json
            };
            let value = parse_text(text, bundle_format, origin)?;
            let loc = Located {
                origin,
                map: match format {
                    CaseFormat::Yaml => PositionMap::from_yaml(text),
                    _ => PositionMap::from_json(text),
                },
                line_offset: 0,
            };
            let (items, prefix) = match &value {
                Value::Array(items) => (items.as_slice(), String::new()),
                Value::Object(obj) if obj.contains_key("cases") => match obj.get("cases") {
                    Some(Value::Array(items)) => (items.as_slice(), "cases".to_owned()),
                    _ => return Err(loc.err("cases", "`cases` must be a list of cases")),
                },
                Value::Object(_) => {
                    return Ok(vec![case_of(&value, "", &loc, 1)?]);
                }
                Value::Null => return Err(loc.err("", "the file holds no case")),
                _ => {
                    return Err(loc.err(
                        "",
                        "a case file holds a case (a mapping), a list of cases, or {cases: [...]}",
                    ));
                }
            };
            if let Some(obj) = value.as_object()
                && let Some(key) = obj.keys().find(|k| *k != "cases")
            {
                return Err(loc.err(
                    key,
                    format!("unknown key `{key}` beside `cases` (only `cases` is allowed)"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = if prefix.is_empty() {
                        format!("[{i}]")
                    } else {
                        format!("{prefix}[{i}]")
                    };
                    case_of(item, &path, &loc, i + 1)
                })
                .collect()
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn case_of(
    value: &Value,
    path: &str,
    loc: &Located<'_>,
    n: usize,
) -> Result<PolicyCase, CaseError> {
    let Some(obj) = value.as_object() else {
        return Err(loc.err(path, "a case must be a mapping"));
    };
    if let Some(key) = obj.keys().find(|k| !CASE_KEYS.contains(&k.as_str())) {
        return Err(loc.err(
            &join(path, key),
            format!(
                "unknown case key `{key}` (allowed: {})",
                CASE_KEYS.join(", ")
            ),
        ));
    }
    let name = match obj.get("name").or_else(|| obj.get("id")) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            let key = if obj.contains_key("name") {
                "name"
            } else {
                "id"
            };
            return Err(loc.err(
                &join(path, key),
                format!("`{key}` must be a non-empty string"),
            ));
        }
        None => format!("{}#{n}", loc.origin),
    };
    let signature = match obj.get("signature") {
        Some(v) => source_of(v, &join(path, "signature"), loc)?,
        None => return Err(loc.err(path, "the case has no `signature`")),
    };
    let catalog = match obj.get("catalog") {
        None | Some(Value::Null) => None,
        Some(v) => Some(source_of(v, &join(path, "catalog"), loc)?),
    };
    let replan_count = match obj.get("replan_count") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                loc.err(
                    &join(path, "replan_count"),
                    "`replan_count` must be a non-negative integer",
                )
            })?,
    };
    let (key, expect) = match (obj.get("expect"), obj.get("expected")) {
        (Some(_), Some(_)) => {
            return Err(loc.err(
                &join(path, "expected"),
                "give `expect` or `expected`, not both",
            ));
        }
        (Some(e), None) => ("expect", e),
        (None, Some(e)) => ("expected", e),
        (None, None) => return Err(loc.err(path, "the case has no `expect`")),
    };
    let expect = expectation_of(expect, &join(path, key), loc)?;
    Ok(PolicyCase {
        name,
        origin: loc.origin.to_owned(),
        position: loc.at(path),
        signature,
        catalog,
        replan_count,
        expect,
    })
}

fn source_of(value: &Value, path: &str, loc: &Located<'_>) -> Result<CaseSource, CaseError> {
    match value {
        Value::Object(_) => Ok(CaseSource::Inline(value.clone())),
        Value::String(s) if !s.trim().is_empty() => Ok(CaseSource::Path(s.clone())),
        _ => Err(loc.err(
            path,
            "must be a mapping (written inline) or a file path relative to the case file",
        )),
    }
}

fn expectation_of(value: &Value, path: &str, loc: &Located<'_>) -> Result<Expectation, CaseError> {
    let Some(obj) = value.as_object() else {
        return Err(loc.err(path, "`expect` must be a mapping with at least `action`"));
    };
    if let Some(key) = obj.keys().find(|k| !EXPECT_KEYS.contains(&k.as_str())) {
        return Err(loc.err(
            &join(path, key),
            format!("unknown expectation `{key}` (allowed: action, faults, patches, reasoning)"),
        ));
    }
    let action = match obj.get("action") {
        Some(Value::String(s)) => match s.as_str() {
            "approve" => PolicyAction::Approve,
            "replan" => PolicyAction::Replan,
            "block" => PolicyAction::Block,
            other => {
                return Err(loc.err(
                    &join(path, "action"),
                    format!("unknown action `{other}` (approve, replan or block)"),
                ));
            }
        },
        Some(_) => {
            return Err(loc.err(
                &join(path, "action"),
                "`action` must be approve, replan or block",
            ));
        }
        None => return Err(loc.err(path, "`expect` has no `action`")),
    };
    let faults = match obj.get("faults") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let code = match f {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(o) => {
                            o.get("code").and_then(Value::as_str).map(str::to_owned)
                        }
                        _ => None,
                    };
                    code.ok_or_else(|| {
                        loc.err(
                            &format!("{path}.faults[{i}]"),
                            "a fault is a code, or a mapping with `code`",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(loc.err(
                &join(path, "faults"),
                "`faults` must be a list of fault codes",
            ));
        }
    };
    let patches = match obj.get("patches") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, p)| patch_of(p, &format!("{path}.patches[{i}]"), loc))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(loc.err(
                &join(path, "patches"),
                "`patches` must be a list of {path, value}",
            ));
        }
    };
    let reasoning = match obj.get("reasoning") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(loc.err(&join(path, "reasoning"), "`reasoning` must be a string"));
        }
    };
    Ok(Expectation {
        action,
        faults,
        patches,
        reasoning,
    })
}

fn patch_of(value: &Value, path: &str, loc: &Located<'_>) -> Result<ExpectedPatch, CaseError> {
    let obj = value
        .as_object()
        .ok_or_else(|| loc.err(path, "a patch is a mapping {path, value}"))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !["op", "path", "value"].contains(&k.as_str()))
    {
        return Err(loc.err(
            &join(path, key),
            format!("unknown patch key `{key}` (op, path, value)"),
        ));
    }
    if let Some(op) = obj.get("op")
        && op.as_str() != Some("set")
    {
        return Err(loc.err(&join(path, "op"), "the only patch operation is `set`"));
    }
    let field = obj
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| loc.err(path, "the patch has no string `path`"))?;
    let new = obj
        .get("value")
        .ok_or_else(|| loc.err(path, "the patch has no `value`"))?;
    Ok(ExpectedPatch {
        path: field.to_owned(),
        value: new.clone(),
    })
}

/// One way a decision differs from its expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// `action`, `faults`, `patches` or `reasoning`.
    pub field: String,
    /// The expected value.
    pub expected: Value,
    /// The decision's value.
    pub actual: Value,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.field, self.expected, self.actual
        )
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// The decision matched every expectation.
    Pass,
    /// The decision differs.
    Fail,
    /// The case could not run (its signature or catalog could not be read).
    Error,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its file.
    pub origin: String,
    /// Where it starts (`line:column`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Pass, fail or error.
    pub status: CaseStatus,
    /// The decision's action (`None` when the case could not run).
    pub action: Option<PolicyAction>,
    /// The decision's fault codes.
    pub faults: Vec<String>,
    /// What differs from the expectation (empty on pass).
    pub differences: Vec<Difference>,
    /// Why the case could not run (on error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rules that fired (names, rule order).
    pub fired_rules: Vec<String>,
}

impl CaseResult {
    /// A case that could not run: `message` says why.
    pub fn error(case: &PolicyCase, message: impl Into<String>) -> Self {
        CaseResult {
            name: case.name.clone(),
            origin: case.origin.clone(),
            position: case.position.map(|p| p.to_string()),
            status: CaseStatus::Error,
            action: None,
            faults: Vec::new(),
            differences: Vec::new(),
            error: Some(message.into()),
            fired_rules: Vec::new(),
        }
    }
}

/// The names of the rules of `engine` whose fault codes are in `result`, in rule order
/// (the replan guard and condition errors fire no rule).
pub fn fired_rules(engine: &PolicyEngine, result: &PolicyResult) -> Vec<String> {
    engine
        .rules()
        .iter()
        .filter(|r| {
            result
                .faults
                .iter()
                .any(|f| f.code.as_str() == r.fault_code)
        })
        .map(|r| r.name.clone())
        .collect()
}

/// Decides `signature` (with `catalog`) as `case` says and compares with its expectation.
pub fn run_case(
    engine: &PolicyEngine,
    case: &PolicyCase,
    signature: &StateSignature,
    catalog: Option<&Catalog>,
) -> CaseResult {
    let result = engine.evaluate_with_catalog(signature, catalog, case.replan_count);
    let faults: Vec<String> = result.faults.iter().map(|f| f.code.to_string()).collect();
    let mut differences = Vec::new();
    let e = &case.expect;
    if e.action != result.action {
        differences.push(Difference {
            field: "action".into(),
            expected: json!(e.action),
            actual: json!(result.action),
        });
    }
    if let Some(expected) = &e.faults
        && expected != &faults
    {
        differences.push(Difference {
            field: "faults".into(),
            expected: json!(expected),
            actual: json!(faults),
        });
    }
    if let Some(expected) = &e.patches {
        let actual: Vec<ExpectedPatch> = result
            .patches
            .iter()
            .map(|p| ExpectedPatch {
                path: p.path.to_string(),
                value: p.value.as_value().into_owned(),
            })
            .collect();
        if expected != &actual {
            differences.push(Difference {
                field: "patches".into(),
                expected: json!(expected),
                actual: json!(actual),
            });
        }
    }
    if let Some(expected) = &e.reasoning
        && expected != &result.reasoning
    {
        differences.push(Difference {
            field: "reasoning".into(),
            expected: json!(expected),
            actual: json!(result.reasoning),
        });
    }
    CaseResult {
        name: case.name.clone(),
        origin: case.origin.clone(),
        position: case.position.map(|p| p.to_string()),
        status: if differences.is_empty() {
            CaseStatus::Pass
        } else {
            CaseStatus::Fail
        },
        action: Some(result.action),
        fired_rules: fired_rules(engine, &result),
        faults,
        differences,
        error: None,
    }
}

/// How often one rule of the bundle fired over the suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCoverage {
    /// Rule name.
    pub name: String,
    /// Its fault code.
    pub fault_code: String,
    /// Cases in which it fired.
    pub hits: usize,
}

/// The results of a suite against one bundle, with rule coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteReport {
    /// The bundle version.
    pub bundle: String,
    /// Every case result, in the order pushed.
    pub cases: Vec<CaseResult>,
    /// One entry per rule of the bundle, in rule order.
    pub coverage: Vec<RuleCoverage>,
    /// Cases that hit the replan guard (`POLICY_MAX_REPLAN_EXCEEDED`).
    pub replan_guard_hits: usize,
}

impl SuiteReport {
    /// An empty report over the rules of `engine`.
    pub fn new(engine: &PolicyEngine) -> Self {
        SuiteReport {
            bundle: engine.version().to_owned(),
            cases: Vec::new(),
            coverage: engine
                .rules()
                .iter()
                .map(|r| RuleCoverage {
                    name: r.name.clone(),
                    fault_code: r.fault_code.clone(),
                    hits: 0,
                })
                .collect(),
            replan_guard_hits: 0,
        }
    }

    /// Adds a result and counts the rules it fired.
    pub fn push(&mut self, result: CaseResult) {
        for rule in &result.fired_rules {
            if let Some(c) = self.coverage.iter_mut().find(|c| &c.name == rule) {
                c.hits += 1;
            }
        }
        if result.faults.iter().any(|f| f == MAX_REPLAN_CODE) {
            self.replan_guard_hits += 1;
        }
        self.cases.push(result);
    }

    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(&CaseStatus::Pass)
    }

    /// Cases whose decision differs.
    pub fn failed(&self) -> usize {
        self.count(&CaseStatus::Fail)
    }

    /// Cases that could not run.
    pub fn errors(&self) -> usize {
        self.count(&CaseStatus::Error)
    }

    fn count(&self, status: &CaseStatus) -> usize {
        self.cases.iter().filter(|c| &c.status == status).count()
    }

    /// Whether every case passed (and there was at least one).
    pub fn ok(&self) -> bool {
        !self.cases.is_empty() && self.passed() == self.cases.len()
    }

    /// The rules that never fired, in rule order.
    pub fn never_fired(&self) -> Vec<&RuleCoverage> {
        self.coverage.iter().filter(|c| c.hits == 0).collect()
    }

    /// `{schema_version, policy_bundle, summary: {cases, passed, failed, errors}, cases,
    /// coverage: {rules, fired, never_fired: [names], replan_guard_hits}}`.
    pub fn to_json(&self) -> Value {
        let never: Vec<&str> = self.never_fired().iter().map(|c| c.name.as_str()).collect();
        json!({
            "schema_version": "cfa.policy_test.v1",
            "policy_bundle": self.bundle,
            "ok": self.ok(),
            "summary": {
                "cases": self.cases.len(),
                "passed": self.passed(),
                "failed": self.failed(),
                "errors": self.errors(),
            },
            "cases": self.cases,
            "coverage": {
                "rules": self.coverage,
                "fired": self.coverage.len() - never.len(),
                "total": self.coverage.len(),
                "never_fired": never,
                "replan_guard_hits": self.replan_guard_hits,
            },
        })
    }

    /// The human report: one line per case (differences indented under a failure),
    /// then coverage and the totals.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.cases {
            let tag = match c.status {
                CaseStatus::Pass => "PASS ",
                CaseStatus::Fail => "FAIL ",
                CaseStatus::Error => "ERROR",
            };
            let at = c
                .position
                .as_ref()
                .map(|p| format!("{}:{p}", c.origin))
                .unwrap_or_else(|| c.origin.clone());
            s.push_str(&format!("{tag} {} ({at})\n", c.name));
            for d in &c.differences {
                s.push_str(&format!("      {d}\n"));
            }
            if let Some(e) = &c.error {
                s.push_str(&format!("      {e}\n"));
            }
        }
        let never = self.never_fired();
        s.push_str(&format!(
            "\nRule coverage ({}): {}/{} rules fired\n",
            self.bundle,
            self.coverage.len() - never.len(),
            self.coverage.len()
        ));
        for c in &self.coverage {
            s.push_str(&format!("  {:>4}  {} ({})\n", c.hits, c.name, c.fault_code));
        }
        if !never.is_empty() {
            let names: Vec<&str> = never.iter().map(|c| c.name.as_str()).collect();
            s.push_str(&format!("  never fired: {}\n", names.join(", ")));
        }
        s.push_str(&format!(
            "\n{} cases: {} passed, {} failed, {} errors\n",
            self.cases.len(),
            self.passed(),
            self.failed(),
            self.errors()
        ));
        s
    }

    /// JUnit XML (`testsuites` > `testsuite` > `testcase`, a `failure` per failing case
    /// and an `error` per case that could not run; coverage in `properties`).
    pub fn to_junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let (n, f, e) = (self.cases.len(), self.failed(), self.errors());
        s.push_str(&format!(
            "<testsuites name=\"cfa policy test\" tests=\"{n}\" failures=\"{f}\" errors=\"{e}\">\n"
        ));
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"{e}\" skipped=\"0\">\n",
            xml(&self.bundle)
        ));
        let never: Vec<&str> = self.never_fired().iter().map(|c| c.name.as_str()).collect();
        s.push_str("    <properties>\n");
        s.push_str(&format!(
            "      <property name=\"rules_fired\" value=\"{}/{}\"/>\n",
            self.coverage.len() - never.len(),
            self.coverage.len()
        ));
        s.push_str(&format!(
            "      <property name=\"rules_never_fired\" value=\"{}\"/>\n",
            xml(&never.join(","))
        ));
        s.push_str("    </properties>\n");
        for c in &self.cases {
            s.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml(&c.name),
                xml(&c.origin)
            ));
            match c.status {
                CaseStatus::Pass => s.push_str("/>\n"),
                CaseStatus::Fail => {
                    let body: Vec<String> = c.differences.iter().map(ToString::to_string).collect();
                    let first = body.first().cloned().unwrap_or_default();
                    s.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"decision_mismatch\">{}</failure>\n    </testcase>\n",
                        xml(&first),
                        xml(&body.join("\n"))
                    ));
                }
                CaseStatus::Error => {
                    let msg = c.error.clone().unwrap_or_default();
                    s.push_str(&format!(
                        ">\n      <error message=\"{}\" type=\"case_error\">{}</error>\n    </testcase>\n",
                        xml(&msg),
                        xml(&msg)
                    ));
                }
            }
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

/// Escapes text for an XML attribute or element (and drops characters XML 1.0 forbids).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push_str(&format!("&#{};", u32::from(ch))),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A case value in the case-file shape, built from its parts (used to turn other
/// golden data, such as the conformance corpus, into case files).
pub fn case_value(
    name: &str,
    signature: Value,
    replan_count: u32,
    action: PolicyAction,
    faults: &[String],
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.to_owned()));
    m.insert("signature".into(), signature);
    if replan_count > 0 {
        m.insert("replan_count".into(), Value::from(replan_count));
    }
    m.insert("expect".into(), json!({"action": action, "faults": faults}));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    const SIG: &str = r#"{"domain": "fiscal", "intent": "ingest", "target_layer": "silver",
        "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                      "pii_columns": [], "partition_column": "processing_date",
                      "merge_keys": ["nfe_id"]}],
        "constraints": {"partition_by": [], "merge_key_required": true}}"#;

    fn sig() -> StateSignature {
        StateSignature::from_value(&serde_json::from_str(SIG).unwrap()).unwrap()
    }

    fn yaml_case(expect: &str) -> String {
        format!("name: c1\nsignature: sig.json\nexpect:\n{expect}")
    }

    fn one(text: &str) -> PolicyCase {
        parse_cases(text, CaseFormat::Yaml, "c.yaml")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_matching_case_passes_and_a_wrong_one_shows_the_difference() {
        let engine = PolicyEngine::default();
        let d = engine.evaluate(&sig(), 0);
        assert_eq!(d.action, PolicyAction::Replan);
        let good = one(&yaml_case(&format!(
            "  action: replan\n  faults: [{}]\n  patches:\n    - {{path: constraints.partition_by, value: [processing_date]}}\n",
            d.faults[0].code
        )));
        assert_eq!(good.signature, CaseSource::Path("sig.json".into()));
        let r = run_case(&engine, &good, &sig(), None);
        assert_eq!(r.status, CaseStatus::Pass, "{r:?}");
        assert!(!r.fired_rules.is_empty());

        let bad = one(&yaml_case("  action: approve\n  faults: []\n"));
        let r = run_case(&engine, &bad, &sig(), None);
        assert_eq!(r.status, CaseStatus::Fail);
        let fields: Vec<&str> = r.differences.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["action", "faults"]);
        assert_eq!(r.differences[0].expected, json!("approve"));
        assert_eq!(r.differences[0].actual, json!("replan"));
    }

    #[test]
    fn coverage_lists_rules_that_never_fired() {
        let engine = PolicyEngine::default();
        let mut report = SuiteReport::new(&engine);
        let case = one(&yaml_case("  action: replan\n"));
        report.push(run_case(&engine, &case, &sig(), None));
        let fired = report.coverage.iter().filter(|c| c.hits > 0).count();
        assert!(fired >= 1);
        assert_eq!(report.never_fired().len(), engine.rules().len() - fired);
        assert!(report.ok());
        let j = report.to_json();
        assert_eq!(j["summary"]["passed"], json!(1));
        assert_eq!(
            j["coverage"]["never_fired"].as_array().unwrap().len(),
            report.never_fired().len()
        );
        assert!(report.to_text().contains("never fired: "));
    }

    #[test]
    fn junit_has_suites_cases_and_escaped_failures() {
        let engine = PolicyEngine::default();
        let mut report = SuiteReport::new(&engine);
        let mut case = one(&yaml_case("  action: approve\n"));
        case.name = "a <b> & \"c\"".into();
        report.push(run_case(&engine, &case, &sig(), None));
        report.push(CaseResult::error(&case, "cannot read sig.json"));
        let x = report.to_junit();
        assert!(x.starts_with("<?xml"));
        assert!(x.contains(
            "<testsuites name=\"cfa policy test\" tests=\"2\" failures=\"1\" errors=\"1\">"
        ));
        assert!(x.contains("name=\"a &lt;b&gt; &amp; &quot;c&quot;\""));
        assert!(x.contains(
            "<failure message=\"action: expected &quot;approve&quot;, got &quot;replan&quot;\""
        ));
        assert!(x.contains("<error message=\"cannot read sig.json\""));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("</testcase>").count(), 2);
        assert!(!report.ok());
    }

    #[test]
    fn shapes_single_list_wrapper_and_jsonl() {
        let single = "signature: s.json\nexpect: {action: block}\n";
        assert_eq!(
            parse_cases(single, CaseFormat::Yaml, "x.yaml")
                .unwrap()
                .len(),
            1
        );
        let list = "- signature: s.json\n  expect: {action: block}\n- signature: t.json\n  expect: {action: approve}\n";
        let cases = parse_cases(list, CaseFormat::Yaml, "x.yaml").unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].name, "x.yaml#2");
        assert_eq!(cases[1].position, Some(Position { line: 3, column: 3 }));
        let wrapped = r#"{"cases": [{"id": "k", "signature": {"a": 1}, "expected": {"action": "replan", "faults": [{"code": "X", "severity": "high"}]}}]}"#;
        let c = parse_cases(wrapped, CaseFormat::Json, "x.json").unwrap();
        assert_eq!(c[0].name, "k");
        assert_eq!(c[0].expect.faults, Some(vec!["X".to_owned()]));
        let jsonl = "{\"signature\": \"a.json\", \"expect\": {\"action\": \"approve\"}}\n\n{\"signature\": \"b.json\", \"replan_count\": 2, \"expect\": {\"action\": \"block\"}}\n";
        let c = parse_cases(jsonl, CaseFormat::Jsonl, "x.jsonl").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].replan_count, 2);
        assert_eq!(c[1].position, Some(Position { line: 3, column: 1 }));
    }

    #[test]
    fn bad_case_files_are_located() {
        let e = parse_cases(
            "name: x\nsignature: s.json\nexpect:\n  action: maybe\n",
            CaseFormat::Yaml,
            "b.yaml",
        )
        .unwrap_err();
        assert_eq!(
            e.position,
            Some(Position {
                line: 4,
                column: 11
            })
        );
        assert!(e.message.contains("unknown action `maybe`"), "{e}");
        assert!(e.to_string().starts_with("b.yaml:4:11: "), "{e}");

        let e = parse_cases(
            "signature: s.json\nexpct: {action: block}\n",
            CaseFormat::Yaml,
            "b.yaml",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown case key `expct`"), "{e}");
        assert_eq!(e.position.unwrap().line, 2);

        let e = parse_cases("signature: [\n", CaseFormat::Yaml, "b.yaml").unwrap_err();
        assert!(e.position.is_some(), "{e}");

        let e = parse_cases(
            "{\"signature\": \"s\",\n \"expect\": {\"action\": \"block\"},}",
            CaseFormat::Json,
            "b.json",
        )
        .unwrap_err();
        assert_eq!(e.position.unwrap().line, 2, "{e}");

        let e = parse_cases(
            "{\"signature\": \"s\", \"expect\": {\"action\": 1}}\n{\"x\": 1}\n",
            CaseFormat::Jsonl,
            "b.jsonl",
        )
        .unwrap_err();
        assert_eq!(e.position.unwrap().line, 1, "{e}");
        let e = parse_cases(
            "{\"signature\": \"s\", \"expect\": {\"action\": \"block\"}}\n{\"x\": 1\n",
            CaseFormat::Jsonl,
            "b.jsonl",
        )
        .unwrap_err();
        assert_eq!(e.position.unwrap().line, 2, "{e}");

        let e = parse_cases("expect: {action: block}\n", CaseFormat::Yaml, "b.yaml").unwrap_err();
        assert!(e.message.contains("no `signature`"));
        let e = parse_cases(
            "signature: s\nexpect: {action: block, faults: [1]}\n",
            CaseFormat::Yaml,
            "b.yaml",
        )
        .unwrap_err();
        assert!(e.message.contains("a fault is a code"), "{e}");
        assert_eq!(e.position.unwrap().line, 2);
    }

    #[test]
    fn the_replan_guard_fires_no_rule_but_is_counted() {
        let engine = PolicyEngine::default();
        let mut report = SuiteReport::new(&engine);
        let case = one(&format!(
            "signature: s\nreplan_count: 3\nexpect:\n  action: block\n  faults: [{MAX_REPLAN_CODE}]\n"
        ));
        let r = run_case(&engine, &case, &sig(), None);
        assert_eq!(r.status, CaseStatus::Pass, "{r:?}");
        assert!(r.fired_rules.is_empty());
        report.push(r);
        assert_eq!(report.replan_guard_hits, 1);
        assert_eq!(report.never_fired().len(), engine.rules().len());
    }
}
