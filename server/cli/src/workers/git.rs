//! A goal's repository on a worker: a clone of the remote in a folder of the worker's,
//! checked out on the goal's branch (from where the last worker pushed it, or from the base
//! commit), and checkpoints pushed back after every change, so a worker that dies hands over
//! what it did.
//!
//! The goal's branch carries the task worktrees the SOP made along with it: each checkpoint
//! commit names them in `Baton-Worktree: <folder> <branch>` trailers, and their branches are
//! pushed in the same `git push`. Pushes are plain (fast-forward only): a worker that lost
//! its lease and pushes late is refused by the remote instead of overwriting the work of the
//! worker that took over.

use std::path::{Path, PathBuf};

use baton_sop::remote_git;

use crate::cli::Failure;

const TRAILER: &str = "Baton-Worktree:";

fn failed(error: baton_sop::SopError) -> Failure {
    Failure::runtime(error.to_string())
}

/// A clone of `remote` at `dir` on `branch`: the remote's `branch` with the task worktrees
/// its last checkpoint names, or a new branch from `base`. Whatever `dir` held is replaced:
/// only what was pushed counts.
pub async fn prepare(remote: &str, base: &str, branch: &str, dir: &Path) -> Result<(), Failure> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| Failure::runtime(format!("{}: {e}", dir.display())))?;
    }
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)
        .map_err(|e| Failure::runtime(format!("{}: {e}", parent.display())))?;
    let target = dir.display().to_string();
    remote_git(
        parent,
        &["clone", "--quiet", "--no-checkout", remote, &target],
        &[],
    )
    .await
    .map_err(failed)?;
    let pushed = remote_git(
        dir,
        &[
            "ls-remote",
            "--heads",
            "origin",
            &format!("refs/heads/{branch}"),
        ],
        &[],
    )
    .await
    .map_err(failed)?;
    if pushed.trim().is_empty() {
        remote_git(dir, &["checkout", "--quiet", "-b", branch, base], &[])
            .await
            .map_err(failed)?;
        return Ok(());
    }
    let tracking = format!("origin/{branch}");
    remote_git(dir, &["checkout", "--quiet", "-B", branch, &tracking], &[])
        .await
        .map_err(failed)?;
    for (folder, task_branch) in worktrees_named(dir).await? {
        let from = format!("origin/{task_branch}");
        remote_git(
            dir,
            &[
                "worktree",
                "add",
                "--quiet",
                "-B",
                &task_branch,
                &folder,
                &from,
            ],
            &[],
        )
        .await
        .map_err(failed)?;
    }
    Ok(())
}

/// The task worktrees the checkpoint at `HEAD` names.
async fn worktrees_named(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    let message = remote_git(dir, &["log", "-1", "--format=%B"], &[])
        .await
        .map_err(failed)?;
    message
        .lines()
        .filter_map(|line| line.strip_prefix(TRAILER))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(folder), Some(branch)) if task_worktree(folder, branch) => {
                    Ok((folder.to_owned(), branch.to_owned()))
                }
                _ => Err(Failure::runtime(format!(
                    "the goal's branch names a worktree Baton did not make (`{TRAILER}{rest}`): only `.worktrees/<task>` on `task/<task>` is taken"
                ))),
            }
        })
        .collect()
}

/// Whether `folder` and `branch` are a task worktree as the SOP makes them: `.worktrees/<name>`
/// on `task/<name>`, names of letters, digits and `-` — whoever can push to the remote must not
/// be able to make a worker check files out elsewhere.
fn task_worktree(folder: &str, branch: &str) -> bool {
    let plain = |name: &str| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    matches!(
        (folder.strip_prefix(".worktrees/"), branch.strip_prefix("task/")),
        (Some(name), Some(task)) if plain(name) && plain(task)
    )
}

/// The task worktrees of the clone at `dir` now: folder (relative) and branch.
async fn worktrees(dir: &Path) -> Result<Vec<(PathBuf, String)>, Failure> {
    let listed = remote_git(dir, &["worktree", "list", "--porcelain"], &[])
        .await
        .map_err(failed)?;
    let mut found = Vec::new();
    let mut path = None;
    for line in listed.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            path = Some(PathBuf::from(p));
        } else if let (Some(b), Some(p)) = (line.strip_prefix("branch refs/heads/"), &path)
            && let Ok(relative) = p.strip_prefix(dir)
            && !relative.as_os_str().is_empty()
        {
            found.push((relative.to_owned(), b.to_owned()));
        }
    }
    Ok(found)
}

/// Commit what changed in `dir` (everything in the folder, and each task worktree in its
/// own) with `message`, and push the goal's `branch` and the worktrees' branches; the goal
/// branch's commit.
pub async fn checkpoint(
    dir: &Path,
    branch: &str,
    worker: &str,
    message: &str,
) -> Result<String, Failure> {
    let identity = ["-c", "user.name=baton-worker"];
    let email = format!("user.email={worker}@baton.invalid");
    let commit_in = |at: PathBuf, text: String| {
        let email = email.clone();
        async move {
            remote_git(&at, &["add", "--all"], &[])
                .await
                .map_err(failed)?;
            let mut args = vec![identity[0], identity[1], "-c", &email, "commit", "--quiet"];
            args.extend(["--allow-empty", "-m", &text]);
            remote_git(&at, &args, &[]).await.map_err(failed)
        }
    };
    let trees = worktrees(dir).await?;
    for (folder, _) in &trees {
        let at = dir.join(folder);
        let status = remote_git(&at, &["status", "--porcelain"], &[])
            .await
            .map_err(failed)?;
        if !status.trim().is_empty() {
            commit_in(at, message.to_owned()).await?;
        }
    }
    let mut text = format!("{message}\n");
    if !trees.is_empty() {
        text.push('\n');
    }
    for (folder, task_branch) in &trees {
        text.push_str(&format!("{TRAILER} {} {task_branch}\n", folder.display()));
    }
    commit_in(dir.to_owned(), text).await?;
    let mut refspecs = vec![format!("refs/heads/{branch}:refs/heads/{branch}")];
    refspecs.extend(
        trees
            .iter()
            .map(|(_, b)| format!("refs/heads/{b}:refs/heads/{b}")),
    );
    let mut args = vec!["push", "--quiet", "--porcelain", "origin"];
    args.extend(refspecs.iter().map(String::as_str));
    remote_git(dir, &args, &[]).await.map_err(|error| {
        Failure::runtime(format!(
            "the goal's branch `{branch}` was not pushed (another worker took the goal over?): {error}"
        ))
    })?;
    remote_git(dir, &["rev-parse", "HEAD"], &[])
        .await
        .map_err(failed)
}
