//! `cfa audit …` (owned by the audit work; this is the wiring point).

use clap::Subcommand;
use std::process::ExitCode;

/// Audit log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log.
    Verify {
        /// JSONL audit log.
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

/// Runs an audit command.
pub fn run(cmd: AuditCommand) -> miette::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { file } => Err(miette::miette!(
            "audit verification of {} is not available in this build",
            file.display()
        )),
    }
}
