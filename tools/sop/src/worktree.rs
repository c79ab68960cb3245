//! Per-task git worktrees: created on the task's own branch for the agent holding its claim,
//! or removed, with the claim, the run record and the action plan kept in step.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsx::write_atomic;
use crate::git::git;
use crate::mirror::{Mirror, append_section};
use crate::model::Task;
use crate::tools::blocking;
use crate::{Repo, Result, SopError};

/// What `repo_worktree` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorktreeAction {
    /// Create the task's worktree and branch.
    Create,
    /// Remove the task's worktree (the branch stays).
    Remove,
}

/// A worktree created or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorktreeOutput {
    /// Absolute path: pass it as `repo` to the other tools to work inside the worktree.
    pub path: String,
    /// Relative to the repository root.
    pub worktree: String,
    /// The task's branch.
    pub branch: String,
    /// The commit it branched from.
    pub base_ref: Option<String>,
}

/// Create (from `base`, default HEAD) or remove (even when dirty, with `force`) the worktree
/// of the task `key`, whose live claim `agent` must hold.
pub(crate) async fn change(
    repo: Repo,
    key: &str,
    agent: &str,
    action: WorktreeAction,
    base: Option<String>,
    force: bool,
) -> Result<WorktreeOutput> {
    let index = repo.read_index()?;
    let task = index.tasks[index.find(key)?].clone();
    let now = jiff::Timestamp::now();
    match &task.claimed_by {
        Some(claim) if claim.agent == agent && claim.is_live(now) => {}
        _ => {
            return Err(SopError::Gate {
                gate: "unclaimed",
                reason: format!(
                    "task {} has no live claim by `{agent}`; claim it with sop_task_claim first",
                    task.alias
                ),
            });
        }
    }
    let relative = format!(".worktrees/{}", task.alias);
    let branch = format!("task/{}", task.alias.to_ascii_lowercase());
    let path = repo.home.join(&relative);
    // git takes its own locks (branch refs, `.git/worktrees`) and fails rather than waits
    // when another `git worktree` holds them: agents on parallel goals take turns here.
    let lock_path = repo.state(".worktrees/.lock");
    let locker = repo.clone();
    let _turn = blocking(move || crate::fsx::lock(locker.files()?, &lock_path)).await?;
    let base_ref = match action {
        WorktreeAction::Create => {
            if path.exists() {
                return Err(SopError::invalid(
                    "task",
                    format!("{relative} exists already"),
                ));
            }
            Some(create(&repo, &relative, &branch, base).await?)
        }
        WorktreeAction::Remove => {
            let mut command = vec!["worktree", "remove"];
            if force {
                command.push("--force");
            }
            command.push(&relative);
            git(&repo.home, &command).await?;
            None
        }
    };
    let out = WorktreeOutput {
        path: path.display().to_string(),
        worktree: relative,
        branch,
        base_ref,
    };
    let recorded = out.clone();
    blocking(move || record(&repo, &task, action, &recorded)).await?;
    Ok(out)
}

/// Add the worktree at `relative` on `branch` (made from `base` when new); the base commit.
async fn create(repo: &Repo, relative: &str, branch: &str, base: Option<String>) -> Result<String> {
    let base = base.unwrap_or_else(|| "HEAD".into());
    let base_ref = crate::diff::commit(&repo.home, &base).await?;
    let ignore = repo.state(".worktrees/.gitignore");
    if !ignore.exists() {
        write_atomic(
            repo.files()?,
            &ignore,
            b"# Task worktrees made by Baton; not part of the repository.\n*\n",
        )?;
    }
    let exists = git(
        &repo.home,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .await
    .is_ok();
    if exists {
        git(&repo.home, &["worktree", "add", relative, branch]).await?;
    } else {
        git(
            &repo.home,
            &["worktree", "add", "-b", branch, relative, &base_ref],
        )
        .await?;
    }
    Ok(base_ref)
}

/// Keep the claim, the latest run and the action plan in step with the worktree.
fn record(repo: &Repo, task: &Task, action: WorktreeAction, out: &WorktreeOutput) -> Result<()> {
    let relative = &out.worktree;
    let branch = &out.branch;
    let created = action == WorktreeAction::Create;
    repo.update(|index| {
        let at = index.find(&task.id)?;
        if let Some(claim) = index.tasks[at].claimed_by.as_mut() {
            match action {
                WorktreeAction::Create => {
                    claim.worktree = Some(relative.clone());
                    claim.branch = Some(branch.clone());
                }
                WorktreeAction::Remove => claim.worktree = None,
            }
        }
        if let Some(run) = index.tasks[at].runs.last() {
            let mut meta = repo.run_meta(run)?;
            if created {
                meta.worktree = Some(relative.clone());
                meta.branch = Some(branch.clone());
                meta.base_ref.clone_from(&out.base_ref);
            }
            repo.write_run_meta(&meta)?;
            repo.log_run(
                run,
                if created {
                    "worktree_created"
                } else {
                    "worktree_removed"
                },
                serde_json::json!({"worktree": relative}),
            )?;
        }
        append_section(
            repo,
            Mirror::ActionPlan,
            &task.feature,
            &format!(
                "worktree for {} {}",
                task.alias,
                if created { "created" } else { "removed" }
            ),
            &format!("`{relative}` on branch `{branch}`."),
            crate::state::INDEX,
        )
    })
}
