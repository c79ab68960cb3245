//! Goals handed to workers: each a run in the store and a pending task on the repository's
//! coordination branch, queued as its own group (the run's id), so it is followed and
//! cancelled by the run's id whoever queued it — `baton run --on-workers` or `agents_run`.

use std::path::Path;

use baton_runs::{StoreApi as _, StoreHandle, WorkDraft, WorkKind, now_millis};
use baton_sop::{Coordination, remote_git};

use super::{GoalWork, remote_of};
use crate::cli::Failure;

/// A goal whose run exists, to hand to workers.
#[derive(Debug, Clone)]
pub struct QueuedGoal {
    /// Its run.
    pub run_id: String,
    /// The goal, in words (the task's title).
    pub goal: String,
    /// The branch it works on, pushed back to the remote.
    pub branch: String,
}

/// The remote workers clone: `remote`, else the `origin` of `repo`. One that git would read
/// as an option is refused.
pub async fn goal_remote(remote: Option<&str>, repo: &Path) -> Result<String, Failure> {
    if let Some(option) = remote.filter(|r| r.starts_with('-')) {
        return Err(Failure::usage(format!(
            "--remote `{option}`: a remote does not start with `-`"
        )));
    }
    match remote {
        Some(remote) => Ok(remote_of(
            remote,
            &std::env::current_dir().unwrap_or_default(),
        )),
        None => {
            let url = remote_git(repo, &["remote", "get-url", "origin"], &[])
                .await
                .map_err(|e| {
                    Failure::usage(format!(
                        "--on-workers needs the repository's remote: give --remote, or add an `origin` to {} ({e})",
                        repo.display()
                    ))
                })?;
            let url = url.trim();
            if url.starts_with('-') {
                return Err(Failure::usage(format!(
                    "the `origin` of {} is `{url}`, which git would read as an option",
                    repo.display()
                )));
            }
            Ok(remote_of(url, repo))
        }
    }
}

/// The commit `remote`'s `HEAD` names, which goals start from.
pub async fn remote_head(remote: &str, repo: &Path) -> Result<String, Failure> {
    let head = remote_git(repo, &["ls-remote", remote, "HEAD"], &[])
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    head.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Failure::usage(format!("remote {remote} has no HEAD: push to it first")))
}

/// Add `goals` to the shared index on `remote`'s coordination branch (working in a scratch
/// repository under `data_dir`), then queue them for workers, for `requester`, starting from
/// `base`.
pub async fn queue_goals(
    store: &StoreHandle,
    data_dir: &Path,
    (remote, base): (&str, &str),
    requester: &str,
    goals: &[QueuedGoal],
) -> Result<(), Failure> {
    let scratch = data_dir
        .join("coordination")
        .join(baton_runs::new_id().to_ascii_lowercase());
    let shared = Coordination::open(remote, &scratch)
        .await
        .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")))?;
    let added = shared
        .update(
            &format!("{requester}: {} goal(s) queued", goals.len()),
            |index| {
                for goal in goals {
                    index.add_goal(&goal.run_id, &goal.goal);
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")));
    let _ = std::fs::remove_dir_all(&scratch);
    added?;
    let drafts = goals
        .iter()
        .map(|goal| {
            let work = GoalWork {
                run_id: goal.run_id.clone(),
                remote: remote.to_owned(),
                base: base.to_owned(),
                branch: goal.branch.clone(),
            };
            Ok(WorkDraft {
                kind: WorkKind::Goal,
                requester: requester.to_owned(),
                group: Some(goal.run_id.clone()),
                payload: serde_json::to_value(&work)
                    .map_err(|e| Failure::runtime(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    store
        .enqueue_work(drafts, now_millis())
        .await
        .map_err(|e| Failure::runtime(format!("cannot queue the goals: {e}")))?;
    Ok(())
}
