//! The `git` command line, the one git every user already trusts with their repository.

use std::path::Path;

use crate::{Result, SopError};

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
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| SopError::Git {
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
