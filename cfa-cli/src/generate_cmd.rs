//! `cfa generate` and `cfa backend …` (owned by the codegen work; this is the wiring point).

use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Arguments of `cfa generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Signature JSON file.
    #[arg(long, short = 's')]
    pub signature: std::path::PathBuf,
}

/// Backend commands.
#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// List the registered backends.
    List,
}

/// Runs `cfa generate`.
pub fn run_generate(args: GenerateArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!(
        "code generation for {} is not available in this build",
        args.signature.display()
    ))
}

/// Runs `cfa backend …`.
pub fn run_backend(cmd: BackendCommand) -> miette::Result<ExitCode> {
    match cmd {
        BackendCommand::List => Err(miette::miette!("no backends are available in this build")),
    }
}
