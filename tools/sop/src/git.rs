//! The `git` command line, the one git every user already trusts with their repository.
//!
//! Baton's own git plumbing never runs a program the repository controls: hooks
//! (`core.hooksPath=/dev/null`), the fsmonitor hook (`core.fsmonitor=false`), external diff
//! and textconv drivers (`--no-ext-diff --no-textconv` on every `diff`), and clean/smudge
//! filters (each filter the configuration defines is emptied for commands that read or check
//! out files). It gets the scrubbed environment every command gets, so an inherited `GIT_DIR`
//! or `GIT_EXTERNAL_DIFF` cannot redirect it and no secret of the server's reaches it. System
//! and global configuration stay: the user's own, as trusted as the git binary.

use std::path::Path;

use crate::{Result, SopError};

/// Options before every git subcommand: no hooks, no fsmonitor, no transport.
const HARDENING: &[&str] = &[
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "protocol.allow=never",
];

/// Run `git args…` in `dir`; its standard output, trimmed of the final newline.
pub async fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let mut text = git_accepting(dir, args, &[]).await?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// The commit `HEAD` names in `dir`, or `None` outside a repository or before the first commit.
pub async fn head(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .await
        .ok()
}

/// Like [`git`], but exit codes in `ok` also count as success (`git diff --no-index` exits 1
/// when the files differ).
pub async fn git_accepting(dir: &Path, args: &[&str], ok: &[i32]) -> Result<String> {
    let mut full: Vec<String> = HARDENING.iter().map(|a| (*a).to_owned()).collect();
    if matches!(
        args.first(),
        Some(&"diff" | &"worktree" | &"checkout" | &"status")
    ) {
        full.extend(no_filters(dir).await?);
    }
    if let Some((&"diff", rest)) = args.split_first() {
        full.extend(["diff", "--no-ext-diff", "--no-textconv"].map(String::from));
        full.extend(rest.iter().map(|a| (*a).to_owned()));
    } else {
        full.extend(args.iter().map(|a| (*a).to_owned()));
    }
    checked(args, raw(dir, &full).await, ok)
}

/// The standard output of git run with `args`, or the error it made (its standard error);
/// exit codes in `ok` also count as success.
fn checked(
    args: &[&str],
    output: std::io::Result<std::process::Output>,
    ok: &[i32],
) -> Result<String> {
    let output = output.map_err(|source| SopError::Git {
        args: args.join(" "),
        message: format!("cannot run git: {source}"),
    })?;
    let code = output.status.code().unwrap_or(-1);
    if code != 0 && !ok.contains(&code) {
        return Err(SopError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// git talking to a remote on Baton's own behalf (a worker cloning, fetching and pushing):
/// hooks and fsmonitor stay off, but transports are allowed and the process's environment is
/// kept, because that is where an operator gives a worker its git credentials
/// (`GIT_SSH_COMMAND`, `SSH_AUTH_SOCK`, a credential helper's variables). Never for a tool
/// call's git, which gets [`git`]. Exit codes in `ok` also count as success; the output.
pub async fn remote_git(dir: &Path, args: &[&str], ok: &[i32]) -> Result<String> {
    let output = tokio::process::Command::new("git")
        .args(&HARDENING[..4])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    Ok(checked(args, output, ok)?.trim_end().to_owned())
}

/// git with exactly `args`, the scrubbed environment and no input.
async fn raw(dir: &Path, args: &[String]) -> std::io::Result<std::process::Output> {
    tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(crate::confinement::scrubbed_env(&[]))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .await
}

/// `-c` options emptying every clean/smudge/process filter the configuration defines: the
/// filter *names* can come from the work tree's `.gitattributes`, their commands from
/// `.git/config`, and neither is Baton's to run. (Reading the configuration runs nothing.)
async fn no_filters(dir: &Path) -> Result<Vec<String>> {
    let args = [
        "config",
        "-z",
        "--name-only",
        "--get-regexp",
        r"^filter\..+\.(clean|smudge|process)$",
    ]
    .map(String::from);
    let output = raw(dir, &args).await.map_err(|source| SopError::Git {
        args: args.join(" "),
        message: format!("cannot run git: {source}"),
    })?;
    let names = String::from_utf8_lossy(&output.stdout);
    let mut drivers: Vec<&str> = names
        .split('\0')
        .filter_map(|key| key.strip_prefix("filter."))
        .filter_map(|key| key.rsplit_once('.').map(|(driver, _)| driver))
        .collect();
    drivers.sort_unstable();
    drivers.dedup();
    Ok(drivers
        .into_iter()
        .flat_map(|driver| {
            ["clean", "smudge", "process"]
                .map(|key| format!("filter.{driver}.{key}="))
                .into_iter()
                .chain([format!("filter.{driver}.required=false")])
                .flat_map(|option| ["-c".to_owned(), option])
        })
        .collect())
}
