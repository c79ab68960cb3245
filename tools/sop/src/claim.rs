//! Claims: a task taken (or its lease renewed) by one agent under a lease, with a run
//! started to record the work. Exactly one of many concurrent claimers wins, because the
//! whole decision is made inside one locked index update.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mirror::{Mirror, append_section};
use crate::model::{Claim, Index, Phase, Status};
use crate::runlog::RunMeta;
use crate::time::now_rfc3339;
use crate::tools::{TaskSummary, blocking};
use crate::{Repo, Result, SopError};

/// A claim held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimOutput {
    /// The task.
    pub task: TaskSummary,
    /// The agent holding it.
    pub agent: String,
    /// When the lease ends (UTC).
    pub lease_expires: String,
    /// The run recording this work (`.runs/<run_id>/`).
    pub run_id: String,
    /// Whether this renewed the caller's own lease.
    pub renewed: bool,
}

/// Claim the task `key` for `agent` for `minutes`, starting a run unless this renews the
/// agent's own lease on a task that has one.
pub(crate) async fn claim(
    repo: Repo,
    key: String,
    agent: String,
    minutes: u32,
) -> Result<ClaimOutput> {
    let base_ref = crate::git::head(&repo.root).await;
    let run = RunMeta {
        run_id: ulid::Ulid::new().to_string(),
        task: String::new(),
        agent: agent.clone(),
        base_ref,
        head_ref: None,
        worktree: None,
        branch: None,
        created: now_rfc3339(),
        tool_versions: Default::default(),
    };
    let (out, new_run) = {
        let repo = repo.clone();
        let run_id = run.run_id.clone();
        blocking(move || repo.update(|index| take(&repo, index, &key, &agent, minutes, run_id)))
            .await?
    };
    if let Some(task_id) = new_run {
        repo.create_run(&RunMeta {
            task: task_id,
            ..run
        })
        .await?;
    }
    Ok(out)
}

/// Inside the index lock: check the task may be claimed, set the claim, and note it in the
/// task list and the action plan. With the id of the task when a new run was started.
fn take(
    repo: &Repo,
    index: &mut Index,
    key: &str,
    agent: &str,
    minutes: u32,
    run_id: String,
) -> Result<(ClaimOutput, Option<String>)> {
    let now = jiff::Timestamp::now();
    let at = index.find(key)?;
    let renewed = claimable(index, at, agent, now)?;
    let until = now
        .checked_add(jiff::SignedDuration::from_mins(i64::from(minutes)))
        .map_err(|e| SopError::invalid("lease_minutes", e.to_string()))?
        .round(jiff::Unit::Second)
        .map_err(|e| SopError::invalid("lease_minutes", e.to_string()))?
        .to_string();
    let task = &mut index.tasks[at];
    let previous = task.claimed_by.take().filter(|_| renewed);
    task.claimed_by = Some(Claim {
        agent: agent.to_owned(),
        worktree: previous.as_ref().and_then(|c| c.worktree.clone()),
        branch: previous.as_ref().and_then(|c| c.branch.clone()),
        lease_expires: until.clone(),
    });
    let new_run = !renewed || task.runs.is_empty();
    if new_run {
        task.runs.push(run_id);
    }
    task.updated = now_rfc3339();
    let run_id = task.runs.last().cloned().unwrap_or_default();
    let task_id = task.id.clone();
    let alias = task.alias.clone();
    let feature_slug = task.feature.clone();
    if let Some(feature) = index.features.get_mut(&feature_slug)
        && feature.phase == Phase::Plan
    {
        feature.phase = Phase::Impl;
    }
    repo.write_task_list(index, &feature_slug)?;
    append_section(
        repo,
        Mirror::ActionPlan,
        &feature_slug,
        &format!("{alias} claimed"),
        &format!(
            "`{agent}` {} the lease until {until}; run `{run_id}`.",
            if renewed { "renewed" } else { "took" }
        ),
        crate::state::INDEX,
    )?;
    Ok((
        ClaimOutput {
            task: TaskSummary::of(index, &index.tasks[at]),
            agent: agent.to_owned(),
            lease_expires: until,
            run_id,
            renewed,
        },
        new_run.then_some(task_id),
    ))
}

/// Whether `agent` may claim the task at `at` now (its feature planned, the task open, its
/// dependencies done, no other agent's lease alive); `true` when it renews its own lease.
fn claimable(index: &Index, at: usize, agent: &str, now: jiff::Timestamp) -> Result<bool> {
    let task = &index.tasks[at];
    let feature = index.feature(&task.feature)?;
    if feature.phase < Phase::Plan {
        return Err(SopError::Gate {
            gate: "missing_plan",
            reason: format!(
                "feature `{}` is at `{}`; work starts after its plan (sop_plan_create)",
                task.feature,
                feature.phase.as_str()
            ),
        });
    }
    if task.status.is_closed() {
        return Err(SopError::Gate {
            gate: "invalid_transition",
            reason: format!("task {} is {}", task.alias, task.status.as_str()),
        });
    }
    if let Some(open) = task.dependencies.iter().find_map(|d| {
        index
            .tasks
            .iter()
            .find(|t| t.id == *d && t.status != Status::Done)
    }) {
        return Err(SopError::Gate {
            gate: "dependencies_open",
            reason: format!("task {} waits for {}", task.alias, open.alias),
        });
    }
    match &task.claimed_by {
        Some(claim) if claim.is_live(now) && claim.agent != agent => Err(SopError::Claimed {
            task: task.alias.clone(),
            agent: claim.agent.clone(),
            until: claim.lease_expires.clone(),
        }),
        Some(claim) => Ok(claim.agent == agent && claim.is_live(now)),
        None => Ok(false),
    }
}
