//! `cfa rules list|explain` (honouring `-p`, with the family) and `cfa schema`.

use crate::exit;
use crate::load;
use cfa::policy::RuleDescription;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of the rules commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// Aligned table / labelled lines.
    Table,
    /// JSON.
    Json,
}

/// Which bundle to describe.
#[derive(Debug, Args)]
pub struct BundleOpt {
    /// Policy bundle: a `.yaml`/`.yml`/`.json` file or a built-in name; default rules when absent.
    #[arg(long = "policy-bundle", short = 'p', value_name = "PATH|NAME")]
    pub policy_bundle: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: RulesFormat,
    /// Config file whose defaults.policy_bundle applies when -p is absent (default:
    /// discovered from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl BundleOpt {
    /// The bundle: `-p`, else `$CFA_POLICY_BUNDLE`, else the config's, else the default rules.
    fn policy(&self) -> miette::Result<load::LoadedPolicy> {
        let settings = crate::settings::resolve_process(&crate::settings::Flags {
            config: self.config.as_deref(),
            policy_bundle: self.policy_bundle.as_deref(),
            ..Default::default()
        })?;
        load::policy(settings.policy_bundle())
    }
}

/// `cfa rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules of a bundle in evaluation order.
    List(BundleOpt),
    /// Explain one fault code: the rule, its condition, action, family, message and fix.
    Explain {
        /// The fault code, e.g. FINOPS_MISSING_TEMPORAL_PREDICATE.
        code: String,
        #[command(flatten)]
        bundle: BundleOpt,
    },
}

/// Runs `cfa rules …`.
pub fn run(cmd: RulesCommand) -> miette::Result<ExitCode> {
    match cmd {
        RulesCommand::List(opt) => list(&opt),
        RulesCommand::Explain { code, bundle } => explain(&code, &bundle),
    }
}

fn list(opt: &BundleOpt) -> miette::Result<ExitCode> {
    let policy = opt.policy()?;
    let rules = policy.engine.describe_rules();
    if opt.format == RulesFormat::Json {
        let out = serde_json::json!({"policy_bundle": policy.engine.version(), "source": policy.source,
                                     "rule_count": rules.len(), "rules": rules});
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let headers = [
        "NAME",
        "ACTION",
        "FAULT CODE",
        "SEVERITY",
        "FAMILY",
        "CONDITION",
    ];
    let rows: Vec<[String; 6]> = rules
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.action.to_string(),
                r.fault_code.clone(),
                r.severity.to_string(),
                r.family.short_name().to_owned(),
                match r.target_layer {
                    Some(l) => format!("{} ({l} only)", r.condition),
                    None => r.condition.clone(),
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    outln!("{}", render(headers.to_vec()));
    for row in &rows {
        outln!("{}", render(row.iter().map(String::as_str).collect()));
    }
    outln!(
        "\nPolicy bundle: {}  |  Rules: {}",
        policy.engine.version(),
        rules.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn explain(code: &str, opt: &BundleOpt) -> miette::Result<ExitCode> {
    let policy = opt.policy()?;
    let Some(rule): Option<RuleDescription> = policy.engine.explain(code) else {
        eprintln!(
            "Unknown fault code: {code} (bundle {})",
            policy.engine.version()
        );
        return Ok(exit::INVALID_INPUT.into());
    };
    if opt.format == RulesFormat::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rule).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("Fault Code:  {}", rule.fault_code);
    outln!("Rule:        {}", rule.name);
    outln!("Condition:   {}", rule.condition);
    if let Some(layer) = rule.target_layer {
        outln!("Layer:       {layer} only");
    }
    outln!("Action:      {}", rule.action);
    outln!("Severity:    {}", rule.severity);
    outln!(
        "Family:      {} ({})",
        rule.family.short_name(),
        rule.family
    );
    outln!("Message:     {}", rule.message.trim_end());
    outln!("Remediation:");
    for (i, r) in rule.remediation.iter().enumerate() {
        outln!("  {}. {r}", i + 1);
    }
    outln!("Bundle:      {}", policy.engine.version());
    Ok(ExitCode::SUCCESS)
}

/// Which schema `cfa schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The StateSignature JSON Schema.
    Signature,
    /// The policy decision JSON Schema.
    Decision,
}

/// `cfa schema signature|decision`.
pub fn schema(kind: SchemaKind) -> miette::Result<ExitCode> {
    let v = match kind {
        SchemaKind::Signature => cfa::types::schema::signature_schema(),
        SchemaKind::Decision => cfa::types::schema::decision_schema(),
    };
    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
