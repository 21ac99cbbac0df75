//! The `cfa` binary: the command-line face of CFA. It parses arguments, reads files,
//! calls the library crates, renders human or JSON output, and maps outcomes to exit
//! codes (design.md B2). All governance logic lives in the libraries; this crate only
//! wires and presents it.

mod audit_cmd;
mod exit;
mod generate_cmd;
mod input;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// CFA: a typed, pre-execution governance kernel for AI agents and data pipelines.
#[derive(Debug, Parser)]
#[command(name = "cfa", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify, inspect, repair, checkpoint and prove the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        cmd: audit_cmd::AuditCommand,
    },
    /// Generate PySpark / ANSI SQL / dbt code for an approved signature.
    Generate(generate_cmd::GenerateArgs),
    /// List code-generation backends and their capabilities.
    Backend {
        #[command(subcommand)]
        cmd: generate_cmd::BackendCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Audit { cmd } => audit_cmd::run(cmd),
        Command::Generate(args) => generate_cmd::run_generate(args),
        Command::Backend { cmd } => generate_cmd::run_backend(cmd),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            exit::INVALID_INPUT.into()
        }
    }
}
