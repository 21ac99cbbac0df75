//! `cfa dbt check`: govern every model of a dbt project before dbt runs it. The
//! manifest dbt writes (`dbt parse`/`compile`/`build` → `target/manifest.json`) becomes
//! one signature per model (cfa-resolve's `dbt` module says how), each is decided
//! against the policy bundle, and the result is a per-model table, JSON or JUnit XML.
//! Exit codes: 0 every model approved, 3 a model needs a replan, 4 a model is blocked
//! (blocked wins), 1 invalid input (docs/cli.md#cfa-dbt-check).

use crate::exit;
use crate::input::SourceFile;
use crate::load::{self, LoadedCatalog, LoadedPolicy};
use crate::settings::Flags;
use cfa::PolicyAction;
use cfa::kernel::Decision;
use cfa::resolve::dbt::{DbtError, Manifest, ModelSignature, Selector, derive};
use clap::{Args, Subcommand, ValueEnum};
use miette::Report;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// `cfa dbt …`.
#[derive(Debug, Subcommand)]
pub enum DbtCommand {
    /// Govern each model of a dbt manifest: approve 0, replan 3, blocked 4, invalid 1.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
}

const CHECK_HELP: &str = "\
Each model's signature is derived from the manifest: the layer from meta.cfa.layer /
meta.layer, a bronze|silver|gold tag or its folder (staging → bronze, intermediate →
silver, marts → gold; default silver); the datasets from depends_on (catalog metadata
wins over the manifest's); PII from column meta.pii (true|raw, or hashed|masked|…) and
`pii` tags; merge keys from unique_key (an incremental model without one appends);
partition_by from config; enforce_types from contract.enforced. See docs/cli.md.

Examples:
  dbt parse && cfa dbt check -p prod-v1 -c catalog.json
  cfa dbt check --manifest target/manifest.json --select tag:finance path:models/silver
  cfa dbt check -f junit > cfa-dbt.xml     # one testcase per model for CI";

/// Output format of `dbt check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One row per model, then the faults and fixes of the models that did not pass.
    Table,
    /// The `cfa.dbt_check.v1` JSON document.
    Json,
    /// JUnit XML: one testcase per model, a failure for each replan or block.
    Junit,
}

/// Arguments of `cfa dbt check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The manifest dbt wrote (`dbt parse` is enough); schema v10–v12.
    #[arg(long, short = 'm', default_value = "target/manifest.json")]
    pub manifest: PathBuf,
    /// Policy bundle: a `.yaml`/`.yml`/`.json` file or a built-in name. Default: the
    /// config's `defaults.policy_bundle`, else the built-in default rules.
    #[arg(long = "policy-bundle", short = 'p', value_name = "PATH|NAME")]
    pub policy_bundle: Option<String>,
    /// Dataset catalog (JSON, or YAML by extension): its entries win over the
    /// manifest's metadata for the sources and models they name.
    #[arg(long, short = 'c')]
    pub catalog: Option<PathBuf>,
    /// Models to check (default: all): model names (globs `silver_*`), `tag:NAME`,
    /// `path:DIR|FILE|GLOB`. Repeatable; space-separated terms are a union.
    #[arg(long, short = 's', value_name = "SELECTOR", num_args = 1..)]
    pub select: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Exit 0 whatever the decisions (report only).
    #[arg(long)]
    pub exit_zero: bool,
    /// Config file giving the defaults of --policy-bundle and --catalog (default:
    /// discovered from the current directory upwards; flags always win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `cfa dbt …`.
pub fn run(cmd: DbtCommand) -> miette::Result<ExitCode> {
    match cmd {
        DbtCommand::Check(args) => check(args),
    }
}

/// An input error: with `-f json`, `{"error": {message, path, line, column, code}}` on
/// stdout (the shape every command uses, docs/cli.md#errors-as-json; `code` is the
/// error's kind), the report otherwise.
fn fail(format: CheckFormat, report: Report, detail: Value) -> miette::Result<ExitCode> {
    if format == CheckFormat::Json {
        let field = |key: &str| detail.get(key).cloned().unwrap_or(Value::Null);
        let message = detail
            .get("message")
            .cloned()
            .unwrap_or_else(|| json!(report.to_string()));
        let error = json!({
            "message": message,
            "path": field("file"),
            "line": field("line"),
            "column": field("column"),
            "code": field("kind"),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"error": error})).unwrap_or_default()
        );
        return Ok(exit::INVALID_INPUT.into());
    }
    Err(report)
}

/// One checked model.
struct Checked {
    model: ModelSignature,
    decided: Decision,
}

fn check(args: CheckArgs) -> miette::Result<ExitCode> {
    let format = args.format;
    let src = match SourceFile::read(&args.manifest) {
        Ok(s) => s,
        Err(e) => {
            let hint = if args.manifest.exists() {
                String::new()
            } else {
                " (run `dbt parse` in the dbt project, or pass --manifest)".into()
            };
            let msg = format!("{e}{hint}");
            return fail(
                format,
                Report::msg(msg.clone()),
                json!({"kind": "io", "file": args.manifest.display().to_string(), "message": msg}),
            );
        }
    };
    let manifest = match Manifest::from_json_str(&src.text) {
        Ok(m) => m,
        Err(DbtError::Json {
            line,
            column,
            message,
        }) => {
            let msg = format!("invalid dbt manifest: {message}");
            return fail(
                format,
                src.error_at(line, column, &msg, "here"),
                json!({"kind": "manifest", "file": src.name(), "line": line, "column": column,
                       "message": msg}),
            );
        }
        Err(e) => {
            let msg = format!("{}: {e}", src.name());
            return fail(
                format,
                Report::msg(msg.clone()),
                json!({"kind": "manifest", "file": src.name(), "message": msg}),
            );
        }
    };
    let selector = match Selector::parse(&args.select) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format,
                Report::msg(e.to_string()),
                json!({"kind": "selector", "message": e.to_string()}),
            );
        }
    };
    type Loaded = (LoadedPolicy, Option<(String, LoadedCatalog)>);
    let loaded = (|| -> miette::Result<Loaded> {
        let settings = crate::settings::resolve_process(&Flags {
            config: args.config.as_deref(),
            policy_bundle: args.policy_bundle.as_deref(),
            catalog: args.catalog.as_deref(),
            ..Flags::default()
        })?;
        let policy = load::policy(settings.policy_bundle())?;
        let catalog = match settings.catalog() {
            Some(p) => Some((p.display().to_string(), load::catalog(p)?)),
            None => None,
        };
        Ok((policy, catalog))
    })();
    let (policy, catalog_file, catalog) = match loaded {
        Ok((p, Some((name, c)))) => (p, Some(name), Some(c)),
        Ok((p, None)) => (p, None, None),
        Err(report) => {
            let msg = report.to_string();
            return fail(format, report, json!({"kind": "input", "message": msg}));
        }
    };
    let models = match derive(&manifest, catalog.as_ref().map(|c| &c.catalog), &selector) {
        Ok(m) => m,
        Err(e) => {
            let msg = format!("{}: {e}", src.name());
            return fail(
                format,
                Report::msg(msg.clone()),
                json!({"kind": "model", "file": src.name(), "message": msg}),
            );
        }
    };
    if models.is_empty() {
        let msg = if selector.is_all() {
            format!("{} has no models", src.name())
        } else {
            format!(
                "--select {} matches none of the {} models in {}",
                args.select.join(" "),
                manifest.model_count(),
                src.name()
            )
        };
        return fail(
            format,
            Report::msg(msg.clone()),
            json!({"kind": "selector", "message": msg}),
        );
    }
    let mut checked = Vec::with_capacity(models.len());
    for model in models {
        let decided = crate::policy_cmd::decide(
            &model.signature,
            &policy,
            catalog.as_ref().map(|c| &c.catalog),
            0,
            None,
        )?;
        checked.push(Checked { model, decided });
    }
    let report = Rendering {
        manifest_name: src.name(),
        manifest: &manifest,
        policy: &policy,
        catalog: catalog_file,
        selection: &args.select,
        checked: &checked,
    };
    match format {
        CheckFormat::Table => out!("{}", report.table()),
        CheckFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report.json()).unwrap_or_default()
        ),
        CheckFormat::Junit => out!("{}", report.junit()),
    }
    if args.exit_zero {
        return Ok(ExitCode::SUCCESS);
    }
    let worst =
        checked
            .iter()
            .map(|c| c.decided.result.action)
            .fold(PolicyAction::Approve, |w, a| match (w, a) {
                (PolicyAction::Block, _) | (_, PolicyAction::Block) => PolicyAction::Block,
                (PolicyAction::Replan, _) | (_, PolicyAction::Replan) => PolicyAction::Replan,
                _ => PolicyAction::Approve,
            });
    Ok(crate::policy_cmd::exit_for(worst).into())
}

/// What a signature fix means in a dbt project.
fn dbt_hint(path: &str) -> Option<&'static str> {
    Some(match path {
        "constraints.no_pii_raw" => {
            "hash or mask the PII columns in the model and mark them `meta: {pii: hashed}` (or drop them)"
        }
        "constraints.partition_by" => {
            "set `partition_by` in the model's config (or meta.cfa.partition_by) to the date column it filters on"
        }
        "constraints.merge_key_required" => {
            "give the incremental model a `unique_key` (and a merge strategy, not append)"
        }
        "constraints.enforce_types" => "enforce a contract: `contract: {enforced: true}`",
        "constraints.max_cost_dbu" => "set meta.cfa.max_cost_dbu to a positive budget",
        _ => return None,
    })
}

/// The rendering of a whole check.
struct Rendering<'a> {
    manifest_name: String,
    manifest: &'a Manifest,
    policy: &'a LoadedPolicy,
    catalog: Option<String>,
    selection: &'a [String],
    checked: &'a [Checked],
}

impl Rendering<'_> {
    fn count(&self, action: PolicyAction) -> usize {
        self.checked
            .iter()
            .filter(|c| c.decided.result.action == action)
            .count()
    }

    fn totals(&self) -> String {
        format!(
            "{} models: {} approve, {} replan, {} block",
            self.checked.len(),
            self.count(PolicyAction::Approve),
            self.count(PolicyAction::Replan),
            self.count(PolicyAction::Block)
        )
    }

    fn table(&self) -> String {
        let mut s = format!(
            "cfa dbt check: {} (manifest v{}{}), policy bundle {}{}\n\n",
            self.manifest_name,
            self.manifest.schema_version(),
            self.manifest
                .dbt_version()
                .map(|v| format!(", dbt {v}"))
                .unwrap_or_default(),
            self.policy.source,
            self.catalog
                .as_deref()
                .map(|c| format!(", catalog {c}"))
                .unwrap_or_default()
        );
        let rows: Vec<[String; 6]> = self
            .checked
            .iter()
            .map(|c| {
                let sig = &c.model.signature;
                let inputs: Vec<&str> = sig.datasets.iter().map(|d| d.name.as_str()).collect();
                let faults: Vec<&str> = c
                    .decided
                    .result
                    .faults
                    .iter()
                    .map(|f| f.code.as_str())
                    .collect();
                [
                    c.model.name.clone(),
                    sig.target_layer.as_str().to_owned(),
                    c.model.materialized.clone(),
                    if inputs.is_empty() {
                        "-".into()
                    } else {
                        inputs.join(",")
                    },
                    c.decided.result.action.as_str().to_owned(),
                    if faults.is_empty() {
                        "-".into()
                    } else {
                        faults.join(",")
                    },
                ]
            })
            .collect();
        let header = [
            "MODEL",
            "LAYER",
            "MATERIALIZED",
            "INPUTS",
            "ACTION",
            "FAULTS",
        ];
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let _ = write!(l, "{cell:<w$}  ", w = *w);
                }
            }
            l.trim_end().to_owned()
        };
        s.push_str(&line(header.to_vec()));
        s.push('\n');
        for r in &rows {
            s.push_str(&line(r.iter().map(String::as_str).collect()));
            s.push('\n');
        }
        for c in self.checked.iter().filter(|c| !c.decided.result.passed()) {
            let r = &c.decided.result;
            let _ = writeln!(
                s,
                "\n{} ({}): {}",
                c.model.name,
                c.model.path,
                r.action.as_str().to_uppercase()
            );
            s.push_str(&details(c, "  "));
        }
        let _ = writeln!(s, "\n{}", self.totals());
        s
    }

    fn json(&self) -> Value {
        let models: Vec<Value> = self
            .checked
            .iter()
            .map(|c| {
                let d = &c.decided;
                let r = &d.result;
                let sig = &c.model.signature;
                let faults: Vec<Value> = r
                    .faults
                    .iter()
                    .map(|f| {
                        json!({"code": f.code, "severity": f.severity, "family": f.family,
                               "message": f.message, "remediation": f.remediation})
                    })
                    .collect();
                json!({
                    "unique_id": c.model.unique_id,
                    "name": c.model.name,
                    "path": c.model.path,
                    "materialized": c.model.materialized,
                    "unique_key": c.model.unique_key,
                    "tags": c.model.tags,
                    "layer": sig.target_layer,
                    "layer_from": c.model.layer_source.describe(),
                    "datasets": sig.datasets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
                    "datasets_from_catalog": c.model.from_catalog,
                    "action": r.action,
                    "passed": r.passed(),
                    "signature_hash": d.signature_hash,
                    "content_hash": d.content_hash,
                    "reasoning": r.reasoning,
                    "faults": faults,
                    "patches": r.patches,
                    "manual_fixes": r.manual_fixes,
                    "signature": sig.to_value(),
                })
            })
            .collect();
        let first = self.checked.first().map(|c| &c.decided);
        json!({
            "schema_version": "cfa.dbt_check.v1",
            "manifest": self.manifest_name,
            "manifest_schema_version": self.manifest.schema_version(),
            "dbt_version": self.manifest.dbt_version(),
            "project": self.manifest.project_name(),
            "policy_bundle": first.map(|d| d.policy_bundle.clone()),
            "policy_bundle_source": self.policy.source,
            "policy_bundle_hash": self.policy.hash,
            "catalog": self.catalog,
            "catalog_hash": first.map(|d| d.catalog_hash.clone()).unwrap_or_default(),
            "selection": self.selection,
            "summary": {
                "models": self.checked.len(),
                "approve": self.count(PolicyAction::Approve),
                "replan": self.count(PolicyAction::Replan),
                "block": self.count(PolicyAction::Block),
            },
            "passed": self.checked.iter().all(|c| c.decided.result.passed()),
            "models": models,
        })
    }

    fn junit(&self) -> String {
        let failures = self.checked.len() - self.count(PolicyAction::Approve);
        let suite = format!("cfa dbt check ({})", self.policy.source);
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"cfa dbt check\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
            xml(&suite, true),
            n = self.checked.len(),
        );
        for c in self.checked {
            let class = c
                .model
                .unique_id
                .rsplit_once('.')
                .map_or(c.model.unique_id.as_str(), |(head, _)| head);
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
                xml(class, true),
                xml(&c.model.name, true),
                xml(&c.model.path, true)
            );
            let r = &c.decided.result;
            if r.passed() {
                s.push_str("/>\n");
            } else {
                let _ = writeln!(
                    s,
                    ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                    r.action.as_str(),
                    xml(&r.reasoning, true),
                    xml(&details(c, ""), false)
                );
            }
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

/// The faults and fixes of one model, each line prefixed by `indent`.
fn details(c: &Checked, indent: &str) -> String {
    let r = &c.decided.result;
    let mut s = String::new();
    for f in &r.faults {
        let _ = writeln!(s, "{indent}- [{}] {}: {}", f.severity, f.code, f.message);
    }
    for p in &r.patches {
        let _ = write!(s, "{indent}fix: set {} = {}", p.path, p.value);
        match dbt_hint(&p.path) {
            Some(h) => {
                let _ = writeln!(s, " ({h})");
            }
            None => s.push('\n'),
        }
    }
    for m in &r.manual_fixes {
        let _ = writeln!(
            s,
            "{indent}needs a manual change ({}): {}",
            m.code, m.reason
        );
    }
    s
}

/// Escapes text for an XML attribute (`attr`: newlines as `&#10;`) or element.
fn xml(text: &str, attr: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attr => out.push_str("&#10;"),
            '\n' => out.push('\n'),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(
            xml("a<b & \"c\" 'd'>\u{1}\n", true),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;&#10;"
        );
        assert_eq!(xml("x\ny", false), "x\ny");
    }

    #[test]
    fn every_constraint_a_rule_patches_has_a_dbt_hint() {
        for path in [
            "constraints.no_pii_raw",
            "constraints.partition_by",
            "constraints.merge_key_required",
            "constraints.enforce_types",
        ] {
            assert!(dbt_hint(path).is_some(), "{path}");
        }
        assert!(dbt_hint("domain").is_none());
    }
}
