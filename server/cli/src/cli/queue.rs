//! `baton run --goals FILE --on-workers`: the goals queued for workers, each a run in the
//! shared store and a pending task on the repository's coordination branch; then followed
//! to their end.

use std::collections::HashMap;
use std::path::Path;

use baton_runs::{StoreApi as _, WorkDraft, WorkItem, WorkKind, WorkState, new_id, now_millis};
use baton_sop::{Coordination, remote_git};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::run::{GoalsFile, RunOptions};
use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;
use crate::goals::{ProviderKind, Setup, say};
use crate::workers::{GoalWork, remote_of};

/// The remote workers clone (`--remote`, else `origin` of `repo`) and the commit its `HEAD`
/// names, which the goals start from.
async fn remote_and_base(options: &RunOptions, repo: &Path) -> Result<(String, String), Failure> {
    let git_failed = |e: baton_sop::SopError| Failure::usage(e.to_string());
    let remote = match &options.remote {
        Some(remote) => remote_of(remote, &std::env::current_dir().unwrap_or_default()),
        None => {
            let url = remote_git(repo, &["remote", "get-url", "origin"], &[])
                .await
                .map_err(|e| {
                    Failure::usage(format!(
                        "--on-workers needs the repository's remote: give --remote, or add an `origin` to {} ({e})",
                        repo.display()
                    ))
                })?;
            remote_of(url.trim(), repo)
        }
    };
    let head = remote_git(repo, &["ls-remote", &remote, "HEAD"], &[])
        .await
        .map_err(git_failed)?;
    let base = head
        .split_whitespace()
        .next()
        .ok_or_else(|| Failure::usage(format!("remote {remote} has no HEAD: push to it first")))?
        .to_owned();
    Ok((remote, base))
}

/// Queue `goals` for workers and follow them; the summary printed is `--parallel`'s.
pub(super) async fn on_workers(
    config: Config,
    options: RunOptions,
    goals: &GoalsFile,
) -> Result<(), Failure> {
    let repo = match &options.repo {
        Some(repo) => repo.clone(),
        None => std::env::current_dir().map_err(|e| Failure::runtime(e.to_string()))?,
    };
    let (remote, base) = remote_and_base(&options, &repo).await?;
    let requester = config.file.cli.principal().id;
    let app = App::builder(config.clone())
        .ownership(baton_runs::Ownership::Serve)
        .build()?;
    let store = app.store().clone();
    let group = format!("goals-{}", new_id());
    let provider = match (options.provider, &options.cassette) {
        (Some(kind), _) => kind,
        (None, Some(_)) => ProviderKind::Replay,
        (None, None) => ProviderKind::Openai,
    };
    let mut drafts = Vec::new();
    let mut planned = Vec::new();
    for (n, entry) in goals.goals.iter().enumerate() {
        let setup = Setup {
            repo: repo.clone(),
            provider,
            cassette: options
                .cassette
                .clone()
                .map(|c| c.canonicalize().unwrap_or(c)),
            agents: options.agents.clone(),
            input: format!(
                "Goal: {}\n\nRepository: the goal's own clone (tools are given it: leave `repo` out).",
                entry.goal
            ),
            builder: config.file.agents.builder.clone(),
            requested_by: Some(requester.clone()),
        };
        let agent = entry.agent.clone().unwrap_or_else(|| options.agent.clone());
        let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
        let run = store
            .create_run(entry.goal.clone(), agent, meta, now_millis())
            .await
            .map_err(|e| Failure::runtime(format!("cannot start a run: {e}")))?;
        let branch = format!("goal/{}-{}", group.to_ascii_lowercase(), n + 1);
        let work = GoalWork {
            run_id: run.id.clone(),
            remote: remote.clone(),
            base: base.clone(),
            branch,
        };
        drafts.push(WorkDraft {
            kind: WorkKind::Goal,
            requester: requester.clone(),
            group: Some(group.clone()),
            payload: serde_json::to_value(&work).map_err(|e| Failure::runtime(e.to_string()))?,
        });
        planned.push((run.id, entry.goal.clone()));
    }
    let scratch = config.data_dir().join("coordination").join(&group);
    let shared = Coordination::open(&remote, &scratch)
        .await
        .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")))?;
    shared
        .update(
            &format!("{requester}: {} goals queued", planned.len()),
            |index| {
                for (id, goal) in &planned {
                    index.add_goal(id, goal);
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")))?;
    let _ = std::fs::remove_dir_all(&scratch);
    store
        .enqueue_work(drafts, now_millis())
        .await
        .map_err(|e| Failure::runtime(format!("cannot queue the goals: {e}")))?;
    say(&format!(
        "{} goals queued for workers as {group} (cancel: Ctrl-C); starting from {base} of {remote}\n",
        planned.len()
    ));
    let items = follow(&app, &group).await?;
    report(&planned, &items)
}

/// Print each item's moves until every item of `group` is over (or Ctrl-C cancels them);
/// the items then.
async fn follow(app: &App, group: &str) -> Result<Vec<WorkItem>, Failure> {
    let store = app.store();
    let interrupt = CancellationToken::new();
    super::serve::watch_signals(interrupt.clone())?;
    let mut told: HashMap<String, (WorkState, usize)> = HashMap::new();
    let mut seen = 0;
    loop {
        let items = store
            .work_items(Some(group.to_owned()))
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        for item in &items {
            let now = (item.state, item.leases.len());
            if told.get(&item.id) != Some(&now) {
                let on = item.worker.as_deref().unwrap_or("-");
                say(&format!(
                    "goal {} {} ({on})\n",
                    item.id,
                    item.state.as_str()
                ));
                told.insert(item.id.clone(), now);
            }
        }
        if items.iter().all(|item| item.state.is_final()) {
            return Ok(items);
        }
        tokio::select! {
            changed = store.changes(seen, 2_000) => seen = changed.unwrap_or(seen),
            () = interrupt.cancelled() => {
                store
                    .cancel_work(group.to_owned(), app.config.file.cli.principal().id, now_millis())
                    .await
                    .map_err(|e| Failure::runtime(e.to_string()))?;
                return Err(Failure::runtime(format!("cancelled: the goals of {group} stop at their workers")));
            }
        }
    }
}

fn report(planned: &[(String, String)], items: &[WorkItem]) -> Result<(), Failure> {
    let runs: Vec<Value> = planned
        .iter()
        .filter_map(|(run_id, goal)| {
            let item = items
                .iter()
                .find(|item| item.payload["run_id"] == run_id.as_str())?;
            Some((run_id, goal, item))
        })
        .map(|(run_id, goal, item)| {
            let result = item.result.clone().unwrap_or(Value::Null);
            json!({
                "run_id": run_id,
                "goal": goal,
                "state": if item.state == WorkState::Done { result["state"].clone() } else { json!(item.state.as_str()) },
                "branch": item.payload["branch"],
                "commit": result["commit"],
                "workers": item.leases.iter().map(|l| l.worker.clone()).collect::<Vec<_>>(),
                "output": result["output"],
                "error": result["error"],
            })
        })
        .collect();
    let failed = runs.iter().filter(|r| r["state"] != "done").count();
    print(&pretty(&json!({"runs": runs}))?)?;
    if failed > 0 {
        return Err(Failure::runtime(format!(
            "{failed} of {} goals did not finish",
            runs.len()
        )));
    }
    Ok(())
}
