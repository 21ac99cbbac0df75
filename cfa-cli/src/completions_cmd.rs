//! `cfa completions SHELL` (clap_complete) and `cfa man` (clap_mangen): both generated
//! from the same clap definition as the parser, so they never drift from the flags.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// A shell `cfa completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash (`source <(cfa completions bash)`).
    Bash,
    /// Zsh (write to a directory on `$fpath` as `_cfa`).
    Zsh,
    /// Fish (write to `~/.config/fish/completions/cfa.fish`).
    Fish,
    /// PowerShell (`cfa completions powershell | Out-String | Invoke-Expression`).
    Powershell,
    /// Elvish.
    Elvish,
}

/// Arguments of `cfa completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    source <(cfa completions bash)\n  \
    cfa completions zsh > ~/.zfunc/_cfa\n  \
    cfa completions fish > ~/.config/fish/completions/cfa.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `cfa man`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cfa man | man -l -\n  \
    cfa man --dir /usr/local/share/man/man1")]
pub struct ManArgs {
    /// Write one page per command (`cfa.1`, `cfa-policy-check.1`, …) into this
    /// directory instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> miette::Result<ExitCode> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let mut buf: Vec<u8> = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cfa", &mut buf);
    crate::out::write_str(&String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}

/// Prints the roff man page of `cfa` to stdout, or writes every command's page into
/// `--dir`.
pub fn man(args: &ManArgs, cmd: clap::Command) -> miette::Result<ExitCode> {
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir).map_err(|e| {
            miette::miette!("cannot write the man pages into {}: {e}", dir.display())
        })?;
        outln!("man pages written to {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut buf: Vec<u8> = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| miette::miette!("cannot render the man page: {e}"))?;
    crate::out::write_str(&String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}
