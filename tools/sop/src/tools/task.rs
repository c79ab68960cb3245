use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{TaskSummary, agent_of, blocking};
use crate::advance::AdvanceOutput;
use crate::claim::ClaimOutput;
use crate::edit::{Changes, UpdateOutput};
use crate::gates::check_spec;
use crate::model::{Priority, Status, Task};
use crate::spec::SpecMeta;
use crate::{Repo, SopError};

const REPO_PATH: &[&str] = &["/repo"];
const DEFAULT_LEASE_MINUTES: u32 = 30;
const MAX_LEASE_MINUTES: u32 = 24 * 60;

/// Arguments of `sop_task_get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Task id, alias (`T-4K2M`) or an id prefix of 6 or more characters.
    pub task: String,
}

/// A task in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetOutput {
    /// The task as the index holds it.
    pub task: Task,
    /// Its mini-spec's front matter, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecMeta>,
    /// Its runs with the size of the diff each recorded.
    pub runs: Vec<RunDiff>,
}

/// A run and its recorded diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunDiff {
    /// Run id.
    pub run_id: String,
    /// Bytes of `diff.patch` (0: none recorded).
    pub diff_bytes: u64,
}

/// `sop_task_get`.
#[derive(Debug)]
pub struct TaskGet;

impl Tool for TaskGet {
    type Args = GetArgs;
    type Output = GetOutput;

    const NAME: &'static str = "sop_task_get";
    const TITLE: Option<&'static str> = Some("Read one task");
    const DESCRIPTION: &'static str = "One task in full: description, status, dependencies, \
        claim, spec front matter, runs and the size of each run's recorded diff.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: GetArgs, ctx: ToolContext) -> baton_kit::Result<GetOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let task = index.tasks[index.find(&args.task)?].clone();
        let spec = match &task.spec_ref {
            Some(spec) if repo.state(spec).exists() => {
                Some(crate::spec::read_meta(&repo.state(spec))?)
            }
            Some(_) | None => None,
        };
        let runs = task
            .runs
            .iter()
            .map(|run| RunDiff {
                run_id: run.clone(),
                diff_bytes: repo.diff_bytes(run),
            })
            .collect();
        Ok(GetOutput { task, spec, runs })
    }
}

/// Arguments of `sop_task_next`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NextArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Only this feature.
    #[serde(default)]
    pub feature: Option<String>,
    /// The agent asking (must be the caller, if given); its own claims count as available.
    #[serde(default)]
    pub agent: Option<String>,
}

/// The task to work on next, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NextOutput {
    /// The task, if one is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSummary>,
    /// Why this one, or why none.
    pub reason: String,
    /// Pending tasks waiting for dependencies.
    pub waiting: usize,
    /// Pending tasks claimed by someone else under a live lease.
    pub claimed: usize,
}

/// `sop_task_next`.
#[derive(Debug)]
pub struct TaskNext;

impl Tool for TaskNext {
    type Args = NextArgs;
    type Output = NextOutput;

    const NAME: &'static str = "sop_task_next";
    const TITLE: Option<&'static str> = Some("Pick the next task");
    const DESCRIPTION: &'static str = "The next task to work on: pending, every dependency done, \
        not claimed by another agent under a live lease; highest priority first, then oldest. \
        Claim it with sop_task_claim before working on it.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: NextArgs, ctx: ToolContext) -> baton_kit::Result<NextOutput> {
        let agent = agent_of(args.agent, &ctx)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let now = jiff::Timestamp::now();
        let pending: Vec<&Task> = index
            .tasks
            .iter()
            .filter(|t| t.status == Status::Pending)
            .filter(|t| args.feature.as_ref().is_none_or(|f| t.feature == *f))
            .collect();
        let ready_deps = |t: &Task| {
            t.dependencies.iter().all(|d| {
                index
                    .tasks
                    .iter()
                    .any(|o| o.id == *d && o.status == Status::Done)
            })
        };
        let free = |t: &Task| {
            t.claimed_by
                .as_ref()
                .is_none_or(|c| c.agent == agent || !c.is_live(now))
        };
        let waiting = pending.iter().filter(|t| !ready_deps(t)).count();
        let claimed = pending.iter().filter(|t| !free(t)).count();
        // Stable: among equal priorities the index order (creation order) wins.
        let mut candidates: Vec<&&Task> = pending
            .iter()
            .filter(|t| ready_deps(t) && free(t))
            .collect();
        candidates.sort_by_key(|t| t.priority);
        let task = candidates.first().map(|t| TaskSummary::of(&index, t));
        let reason = match &task {
            Some(t) => format!(
                "{} is pending, unblocked and unclaimed, priority {}",
                t.alias,
                t.priority.as_str()
            ),
            None if pending.is_empty() => "no pending tasks".into(),
            None => format!(
                "{} pending task(s): {waiting} wait for dependencies, {claimed} are claimed by others",
                pending.len()
            ),
        };
        Ok(NextOutput {
            task,
            reason,
            waiting,
            claimed,
        })
    }
}

/// Arguments of `sop_task_claim`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Task id or alias.
    pub task: String,
    /// The agent claiming (must be the caller, if given).
    #[serde(default)]
    pub agent: Option<String>,
    /// Lease length in minutes, 1–1440 (default 30). Claim again to renew.
    #[serde(default)]
    pub lease_minutes: Option<u32>,
}

/// `sop_task_claim`.
#[derive(Debug)]
pub struct TaskClaim;

impl Tool for TaskClaim {
    type Args = ClaimArgs;
    type Output = ClaimOutput;

    const NAME: &'static str = "sop_task_claim";
    const TITLE: Option<&'static str> = Some("Claim a task");
    const DESCRIPTION: &'static str = "Claims a task for an agent under a lease (default 30 \
        min; claim again to renew) and starts a run (.runs/<run_id>/). Refused while another \
        agent's lease lives, before the feature has a plan, or while dependencies are open. \
        Exactly one of many concurrent claimers wins.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: ClaimArgs, ctx: ToolContext) -> baton_kit::Result<ClaimOutput> {
        let agent = agent_of(args.agent, &ctx)?;
        let minutes = args.lease_minutes.unwrap_or(DEFAULT_LEASE_MINUTES);
        if !(1..=MAX_LEASE_MINUTES).contains(&minutes) {
            return Err(SopError::invalid(
                "lease_minutes",
                format!("{minutes} is not in 1–{MAX_LEASE_MINUTES}"),
            )
            .into());
        }
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        Ok(crate::claim::claim(repo, args.task, agent, minutes).await?)
    }
}

/// Arguments of `sop_task_update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Task id or alias.
    pub task: String,
    /// The agent acting (must be the caller, if given); status changes check its claim.
    #[serde(default)]
    pub agent: Option<String>,
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New priority.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// New dependencies (ids or aliases), replacing the old ones.
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    /// Metadata to merge in; a key set to null is removed.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// New status: passes the same gates as sop_advance.
    #[serde(default)]
    pub status: Option<Status>,
    /// The result of running the task's tests, recorded in its latest run; a failing one
    /// blocks `done` (gate `tests_failing`).
    #[serde(default)]
    pub test_report: Option<crate::TestReport>,
}

/// `sop_task_update`.
#[derive(Debug)]
pub struct TaskUpdate;

impl Tool for TaskUpdate {
    type Args = UpdateArgs;
    type Output = UpdateOutput;

    const NAME: &'static str = "sop_task_update";
    const TITLE: Option<&'static str> = Some("Update a task");
    const DESCRIPTION: &'static str = "Changes a task's title, description, priority, \
        dependencies or metadata (merged), records a test report, or changes its status — a \
        status change passes the same gates as sop_advance. Concurrent updates from many \
        agents are serialized: none is lost.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: UpdateArgs, ctx: ToolContext) -> baton_kit::Result<UpdateOutput> {
        let agent = agent_of(args.agent.clone(), &ctx)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let spec = match args.status {
            Some(_) => {
                let index = repo.read_index()?;
                check_spec(&repo, &index.tasks[index.find(&args.task)?]).await?
            }
            None => Default::default(),
        };
        let key = args.task;
        let changes = Changes {
            title: args.title,
            description: args.description,
            priority: args.priority,
            dependencies: args.dependencies,
            metadata: args.metadata,
            status: args.status,
            test_report: args.test_report,
        };
        let out = blocking(move || {
            repo.update(|index| crate::edit::update(&repo, index, &key, &agent, &changes, &spec))
        })
        .await?;
        Ok(out)
    }
}

/// Arguments of `sop_advance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Move this feature to phase `to` (give `feature` or `task`, not both).
    #[serde(default)]
    pub feature: Option<String>,
    /// Move this task (id or alias) to status `to`.
    #[serde(default)]
    pub task: Option<String>,
    /// The phase (`scaffold`, `prd`, `tasks`, `spec`, `plan`, `impl`, `done`) or status
    /// (`pending`, `in_progress`, `review`, `done`, `blocked`, `cancelled`) to move to.
    pub to: String,
    /// The agent acting (must be the caller, if given).
    #[serde(default)]
    pub agent: Option<String>,
    /// Why (kept in the mirror).
    #[serde(default)]
    pub note: Option<String>,
}

/// `sop_advance`.
#[derive(Debug)]
pub struct Advance;

impl Tool for Advance {
    type Args = AdvanceArgs;
    type Output = AdvanceOutput;

    const NAME: &'static str = "sop_advance";
    const TITLE: Option<&'static str> = Some("Advance a feature's phase or a task's status");
    const DESCRIPTION: &'static str = "Moves a feature to a phase or a task to a status through \
        the SOP's gates, refusing with the failing gate named: missing_prd, no_tasks, \
        spec_missing, spec_stale, missing_plan, unclaimed, dependencies_open, no_diff (done \
        needs a recorded diff: no phantom completions), tests_failing, tests_missing, \
        tasks_open, invalid_transition. Each verdict is recorded in the task's run.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: AdvanceArgs, ctx: ToolContext) -> baton_kit::Result<AdvanceOutput> {
        let agent = agent_of(args.agent, &ctx)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let out = match (args.feature, args.task) {
            (Some(slug), None) => {
                let to = parse_state(&args.to, "phase")?;
                crate::advance::feature(repo, &index, slug, to, agent, args.note).await?
            }
            (None, Some(key)) => {
                let to = parse_state(&args.to, "status")?;
                crate::advance::task(repo, &index, key, to, agent, args.note).await?
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(SopError::invalid(
                    "feature",
                    "give exactly one of `feature` (to move a phase) or `task` (to move a status)",
                )
                .into());
            }
        };
        Ok(out)
    }
}

fn parse_state<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, SopError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| SopError::invalid("to", format!("`{value}` is not a {what}")))
}
