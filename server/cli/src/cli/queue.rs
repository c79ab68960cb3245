//! `baton run --goals FILE --on-workers`: the goals queued for workers (see
//! [`crate::workers::queue_goals`]), then followed to their end.

use std::collections::HashMap;

use baton_runs::{StoreApi as _, WorkItem, WorkState, new_id, now_millis};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::run::{GoalsFile, RunOptions};
use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;
use crate::goals::{ProviderKind, Setup, say};
use crate::workers::{QueuedGoal, goal_remote, queue_goals, remote_head};

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
    let remote = goal_remote(options.remote.as_deref(), &repo).await?;
    let base = remote_head(&remote, &repo).await?;
    let requester = config.file.cli.principal().id;
    let app = App::builder(config.clone())
        .ownership(baton_runs::Ownership::Serve)
        .build()?;
    let store = app.store().clone();
    let batch = new_id().to_ascii_lowercase();
    let provider = match (options.provider, &options.cassette) {
        (Some(kind), _) => kind,
        (None, Some(_)) => ProviderKind::Replay,
        (None, None) => ProviderKind::Openai,
    };
    let mut queued = Vec::new();
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
            budget: options.budget,
        };
        let agent = entry.agent.clone().unwrap_or_else(|| options.agent.clone());
        let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
        let run = store
            .create_run(entry.goal.clone(), agent, meta, now_millis())
            .await
            .map_err(|e| Failure::runtime(format!("cannot start a run: {e}")))?;
        queued.push(QueuedGoal {
            run_id: run.id,
            goal: entry.goal.clone(),
            branch: format!("goal/{batch}-{}", n + 1),
        });
    }
    queue_goals(
        &store,
        &config.data_dir(),
        (&remote, &base),
        &requester,
        &queued,
    )
    .await?;
    say(&format!(
        "{} goals queued for workers (cancel: Ctrl-C); starting from {base} of {remote}\n",
        queued.len()
    ));
    let items = follow(&app, &queued).await?;
    report(&queued, &items)
}

/// Print each goal's moves until every one is over (or Ctrl-C cancels them); their items
/// then, in order.
async fn follow(app: &App, goals: &[QueuedGoal]) -> Result<Vec<WorkItem>, Failure> {
    let store = app.store();
    let interrupt = CancellationToken::new();
    super::serve::watch_signals(interrupt.clone())?;
    let mut told: HashMap<String, (WorkState, usize)> = HashMap::new();
    let mut seen = 0;
    loop {
        let mut items = Vec::new();
        for goal in goals {
            let found = store
                .work_items(Some(goal.run_id.clone()))
                .await
                .map_err(|e| Failure::runtime(e.to_string()))?;
            items.extend(found);
        }
        for item in &items {
            let now = (item.state, item.leases.len());
            if told.get(&item.id) != Some(&now) {
                let on = item.worker.as_deref().unwrap_or("-");
                let run = item.group.as_deref().unwrap_or("?");
                say(&format!("run {run} {} ({on})\n", item.state.as_str()));
                told.insert(item.id.clone(), now);
            }
        }
        if items.iter().all(|item| item.state.is_final()) {
            return Ok(items);
        }
        tokio::select! {
            changed = store.changes(seen, 2_000) => seen = changed.unwrap_or(seen),
            () = interrupt.cancelled() => {
                let by = app.config.file.cli.principal().id;
                for goal in goals {
                    let changed = store
                        .cancel_work(goal.run_id.clone(), by.clone(), now_millis())
                        .await
                        .map_err(|e| Failure::runtime(e.to_string()))?;
                    // A goal no worker took yet ends here; a running one at its worker.
                    if changed.iter().any(|item| item.state == WorkState::Cancelled) {
                        store
                            .set_run_state(goal.run_id.clone(), baton_runs::RunState::Cancelled, now_millis())
                            .await
                            .map_err(|e| Failure::runtime(e.to_string()))?;
                    }
                }
                return Err(Failure::runtime("cancelled: the goals stop at their workers"));
            }
        }
    }
}

fn report(goals: &[QueuedGoal], items: &[WorkItem]) -> Result<(), Failure> {
    let runs: Vec<Value> = goals
        .iter()
        .filter_map(|goal| {
            let item = items
                .iter()
                .find(|item| item.group.as_deref() == Some(goal.run_id.as_str()))?;
            let result = item.result.clone().unwrap_or(Value::Null);
            let state = match item.state {
                WorkState::Done => result["state"].clone(),
                other => json!(other.as_str()),
            };
            Some(json!({
                "run_id": goal.run_id,
                "goal": goal.goal,
                "state": state,
                "branch": goal.branch,
                "commit": result["commit"],
                "workers": item.leases.iter().map(|l| l.worker.clone()).collect::<Vec<_>>(),
                "output": result["output"],
                "error": result["error"],
            }))
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
