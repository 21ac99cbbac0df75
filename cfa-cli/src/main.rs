//! The `cfa` binary: the command-line face of CFA. It parses arguments, reads files,
//! calls the library crates, renders human or JSON output, and maps outcomes to exit
//! codes (docs/differences.md#b2-fail-closed). All governance logic lives in the libraries; this crate only
//! wires and presents it.

/// `print!` to stdout that is quiet when the reader has gone (see `out`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

/// `println!` to stdout that is quiet when the reader has gone (see `out`).
macro_rules! outln {
    () => {
        $crate::out::write_str("\n")
    };
    ($($arg:tt)*) => {
        $crate::out::write_line(format_args!($($arg)*))
    };
}

mod audit_cmd;
mod audit_list;
mod audit_pg;
mod budget_cmd;
mod completions_cmd;
mod config;
mod control_cmd;
mod dbt_cmd;
mod demo;
mod doctor_cmd;
mod evidence_cmd;
mod exec_phase;
mod exec_settings;
mod exit;
mod face_exec;
mod face_flags;
mod generate_cmd;
mod init_cmd;
mod init_templates;
mod input;
mod kernel_cmd;
mod kernel_render;
mod lifecycle_cmd;
mod load;
mod mcp;
mod out;
mod policy_backtest_cmd;
mod policy_batch;
mod policy_cmd;
mod policy_test_cmd;
mod report_cmd;
mod roots;
mod rules_cmd;
mod serve;
mod service;
mod settings;
mod spark_cli;
mod spec_cmd;
mod storage_cmd;
mod telemetry;
mod ux;
mod validate_cmd;

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc: the kernel allocates many small, short-lived strings per call (events,
/// hashes, generated code); against glibc malloc it takes about a quarter off a full
/// kernel call (`cargo run --release -p cfa-kernel --example kernel_perf`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// CFA: a typed, pre-execution governance kernel for AI agents and data pipelines.
#[derive(Debug, Parser)]
#[command(
    name = "cfa",
    version,
    about = "CFA: pre-execution governance for AI agents and data pipelines, with three faces: \
             this CLI, an MCP server over stdio (`cfa mcp`) and an HTTP decision API (`cfa serve`)",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    ui: ux::UiArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a signature against a policy bundle, or validate a bundle file.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCommand,
    },
    /// Validate a StateSignature file (the reference's strict checks and paths).
    Signature {
        #[command(subcommand)]
        cmd: SignatureCommand,
    },
    /// Validate a dataset catalog file.
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCommand,
    },
    /// List or explain the rules of a policy bundle.
    Rules {
        #[command(subcommand)]
        cmd: rules_cmd::RulesCommand,
    },
    /// Print the JSON Schema of a signature or of a decision.
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        kind: rules_cmd::SchemaKind,
    },
    /// Verify, inspect, repair, checkpoint and prove the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        cmd: audit_cmd::AuditCommand,
    },
    /// Lifecycle indices (IFo/IFs/IFg/IDI) and skill promotion over a state database.
    Lifecycle {
        #[command(subcommand)]
        cmd: lifecycle_cmd::LifecycleCommand,
    },
    /// Budgets per scope and window (DBU, runs, rows) charged by approved runs.
    Budget {
        #[command(subcommand)]
        cmd: budget_cmd::BudgetCommand,
    },
    /// Storage statistics, retention cleanup (chain-preserving) and vacuum.
    Storage {
        #[command(subcommand)]
        cmd: storage_cmd::StorageCommand,
    },
    /// Generate PySpark / ANSI SQL / dbt code for an approved signature.
    Generate(generate_cmd::GenerateArgs),
    /// List code-generation backends and their capabilities.
    Backend {
        #[command(subcommand)]
        cmd: generate_cmd::BackendCommand,
    },
    /// Serve the governance tools to agents over MCP (stdio, rmcp).
    Mcp(mcp::McpArgs),
    /// Serve the HTTP decision API (127.0.0.1:8765 by default) with /metrics and /openapi.json.
    Serve(serve::ServeArgs),
    /// Resolve intent text into a signature (formalize only).
    Resolve(kernel_cmd::ResolveArgs),
    /// Govern an intent end to end: approved 0, blocked 4, not published 5, invalid input 1.
    Evaluate(kernel_cmd::EvaluateArgs),
    /// Run the governed flow on built-in samples and explain each decision.
    Demo(demo::DemoArgs),
    /// Write an HTML report (execution, audit, lifecycle, compliance, dashboard) from the audit log.
    Report(report_cmd::ReportArgs),
    /// Write cfa.yaml, a sample catalog and a policy bundle (or a .cfa dir, or a template).
    Init(init_cmd::InitArgs),
    /// Show the discovered config and what it resolves to.
    Status(init_cmd::StatusArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions_cmd::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --dir.
    Man(completions_cmd::ManArgs),
    /// Govern an intent with a behaviour spec's failure modes added as rules.
    Validate(spec_cmd::ValidateArgs),
    /// A behaviour spec's taxonomy (and rules), or test intents for it.
    Taxonomy {
        #[command(subcommand)]
        cmd: spec_cmd::TaxonomyCommand,
    },
    /// Govern the models of a dbt project from its manifest (`cfa dbt check`).
    Dbt {
        #[command(subcommand)]
        cmd: dbt_cmd::DbtCommand,
    },
    /// Check the config, catalog, bundle, audit log, lifecycle database and DSN; say what to fix.
    Doctor(doctor_cmd::DoctorArgs),
    /// Export a run's evidence bundle (provenance, in-toto statement, proofs) or verify one.
    Evidence {
        #[command(subcommand)]
        cmd: evidence_cmd::EvidenceCommand,
    },
    /// Approval tickets of held decisions: list, show, approve or deny them.
    Approvals {
        #[command(subcommand)]
        cmd: control_cmd::ApprovalsCommand,
    },
    /// Engage a kill switch: every decision in the scope is blocked until `cfa unkill`.
    Kill(control_cmd::KillArgs),
    /// Lift a kill switch engaged with `cfa kill`.
    Unkill(control_cmd::UnkillArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Evaluate a signature: approve (exit 0), replan (3) or block (4); invalid input exits 1.
    Check(policy_cmd::CheckArgs),
    /// Validate a policy bundle file; every issue with its line and column.
    Validate(validate_cmd::PolicyValidateArgs),
    /// Run golden cases against a bundle: pass/fail per case, rule coverage, JSON or JUnit.
    Test(policy_test_cmd::TestArgs),
    /// Replay the decisions of an audit log against a candidate bundle: what would change, with proofs.
    Backtest(policy_backtest_cmd::BacktestArgs),
}

#[derive(Debug, Subcommand)]
enum SignatureCommand {
    /// Validate a signature file strictly.
    Validate(validate_cmd::ValidateArgs),
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Validate a catalog file.
    Validate(validate_cmd::ValidateArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli: Cli = ux::parse();
    cli.ui.apply();
    let result = match cli.command {
        Command::Policy {
            cmd: PolicyCommand::Check(args),
        } => policy_cmd::run(args),
        Command::Policy {
            cmd: PolicyCommand::Validate(args),
        } => validate_cmd::policy(args),
        Command::Policy {
            cmd: PolicyCommand::Test(args),
        } => policy_test_cmd::run(args),
        Command::Policy {
            cmd: PolicyCommand::Backtest(args),
        } => policy_backtest_cmd::run(args),
        Command::Signature {
            cmd: SignatureCommand::Validate(args),
        } => validate_cmd::signature(args),
        Command::Catalog {
            cmd: CatalogCommand::Validate(args),
        } => validate_cmd::catalog(args),
        Command::Rules { cmd } => rules_cmd::run(cmd),
        Command::Schema { kind } => rules_cmd::schema(kind),
        Command::Audit { cmd } => audit_cmd::run(cmd),
        Command::Lifecycle { cmd } => lifecycle_cmd::run(cmd),
        Command::Budget { cmd } => budget_cmd::run(cmd),
        Command::Storage { cmd } => storage_cmd::run(cmd),
        Command::Generate(args) => generate_cmd::run_generate(args),
        Command::Backend { cmd } => generate_cmd::run_backend(cmd),
        Command::Mcp(args) => mcp::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Resolve(args) => kernel_cmd::run_resolve(args),
        Command::Evaluate(args) => kernel_cmd::run_evaluate(args),
        Command::Demo(args) => demo::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Init(args) => init_cmd::run_init(args),
        Command::Status(args) => init_cmd::run_status(args),
        Command::Completions(args) => completions_cmd::completions(&args, Cli::command()),
        Command::Man(args) => completions_cmd::man(&args, Cli::command()),
        Command::Validate(args) => spec_cmd::run_validate(args),
        Command::Taxonomy { cmd } => spec_cmd::run_taxonomy(cmd),
        Command::Dbt { cmd } => dbt_cmd::run(cmd),
        Command::Doctor(args) => doctor_cmd::run(args),
        Command::Evidence { cmd } => evidence_cmd::run(cmd),
        Command::Approvals { cmd } => control_cmd::run_approvals(cmd),
        Command::Kill(args) => control_cmd::run_kill(args),
        Command::Unkill(args) => control_cmd::run_unkill(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(report) => {
            ux::report_error(&report);
            exit::INVALID_INPUT.into()
        }
    };
    match out::finish() {
        Some(reason) => {
            eprintln!("cannot write to stdout: {reason}");
            exit::INVALID_INPUT.into()
        }
        None => code,
    }
}

/// A write to a closed stdout that still goes through `println!` (in a library, say)
/// ends the process quietly with 141, the status a shell gives a process its closed
/// pipe stopped, instead of a panic message and 101.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
