//! `baton completions <shell>`: the shell's completion script for every command and option,
//! written to stdout from the same command-line definition the binary parses.

use clap::{Args, CommandFactory as _, ValueEnum};

use super::{Cli, Failure};

/// Shells Baton writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// `source <(baton completions bash)` in `~/.bashrc`.
    Bash,
    /// Into a folder of `$fpath` as `_baton`.
    Zsh,
    /// Into `~/.config/fish/completions/baton.fish`.
    Fish,
}

/// `baton completions`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

pub(super) fn run(args: &CompletionsArgs) -> Result<(), Failure> {
    let shell = match args.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "baton", &mut script);
    super::print(&String::from_utf8_lossy(&script))
}
