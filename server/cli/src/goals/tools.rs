//! The goal tools: `agents_run`, `runs_list`, `runs_get`, `runs_resume`, `runs_cancel`. They
//! change only Baton's own run records (effect `read` for the policy); everything a run does
//! passes the gate as its own call. A caller sees and steers the runs it started; reviewers
//! and admins, every run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use baton_kit::{Effect, Principal, Registry, RegistryError, Tool, ToolContext, ToolError};
use baton_runs::{ApprovalState, Run, RunState, Step, StoreApi as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::service::Goals;

/// Register the goal tools, run by `goals`.
pub fn register(registry: &mut Registry, goals: &Arc<Goals>) -> Result<(), RegistryError> {
    registry.register("agents", AgentsRun(goals.clone()))?;
    registry.register("agents", RunsList(goals.clone()))?;
    registry.register("agents", RunsGet(goals.clone()))?;
    registry.register("agents", RunsResume(goals.clone()))?;
    registry.register("agents", RunsCancel(goals.clone()))
}

fn caller(ctx: &ToolContext) -> Result<Principal, ToolError> {
    ctx.principal()
        .cloned()
        .ok_or_else(|| ToolError::failed("called without a principal"))
}

/// Arguments of `agents_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The goal, in words (e.g. "add rate limiting to the gateway").
    pub goal: String,
    /// The agent that takes it (default `manager`).
    #[serde(default)]
    pub agent: Option<String>,
    /// The repository the run works in: an existing folder on the server. Every tool the run
    /// calls acts in it.
    pub repo: String,
    /// A recorded cassette to replay instead of asking the configured model (a file on the
    /// server).
    #[serde(default)]
    pub cassette: Option<String>,
    /// Hand the run to the store's workers (`baton worker`) instead of running it in this
    /// server: it runs in a worker's clone of the repository's `origin` (which the server's
    /// `[workers] remotes` must allow), from its `HEAD`, on the branch `goal/<run id>` pushed
    /// back.
    #[serde(default)]
    pub on_workers: bool,
}

/// A run, as the goal tools report it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunStarted {
    /// The run's id: give it to `runs_get`, `runs_resume`, `runs_cancel`.
    pub run_id: String,
    /// `running`, `waiting_approval`, `done`, `done_with_denials`, `failed`, `cancelled` or
    /// `over_budget`.
    pub state: String,
    /// Where a person follows it in the reviewers' console, when the server knows its address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

fn started(goals: &Goals, run: &Run) -> RunStarted {
    let settings = goals.served().map(|s| &s.settings);
    let console_url = settings.ok().and_then(|settings| {
        settings
            .http
            .public_url
            .as_deref()
            .filter(|_| settings.console.enabled)
            .map(|url| format!("{}/console/runs/{}", url.trim_end_matches('/'), run.id))
    });
    RunStarted {
        run_id: run.id.clone(),
        state: run.state.as_str().to_owned(),
        console_url,
    }
}

/// `agents_run`.
#[derive(Debug)]
pub struct AgentsRun(Arc<Goals>);

impl Tool for AgentsRun {
    type Args = RunArgs;
    type Output = RunStarted;
    const NAME: &'static str = "agents_run";
    const TITLE: Option<&'static str> = Some("Hand Baton's agents a goal");
    const DESCRIPTION: &'static str = "Start an agent run on a goal in a repository, in the \
        server: it goes on after this call returns (and after the client goes away). Follow it \
        with `runs_get`; calls that need approval wait for a reviewer.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: RunArgs, ctx: ToolContext) -> baton_kit::Result<RunStarted> {
        let caller = caller(&ctx)?;
        if args.goal.trim().is_empty() {
            return Err(ToolError::invalid_args("goal", "is empty"));
        }
        let repo = PathBuf::from(&args.repo)
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                ToolError::invalid_args(
                    "repo",
                    format!("`{}` is not a folder on the server", args.repo),
                )
            })?;
        let cassette = match &args.cassette {
            Some(path) => Some(
                PathBuf::from(path)
                    .canonicalize()
                    .ok()
                    .filter(|p| p.is_file())
                    .ok_or_else(|| {
                        ToolError::invalid_args(
                            "cassette",
                            format!("`{path}` is not a file on the server"),
                        )
                    })?,
            ),
            None => None,
        };
        let agent = args.agent.as_deref().unwrap_or("manager");
        let run = self
            .0
            .start(&caller, &args.goal, agent, repo, cassette, args.on_workers)
            .await?;
        Ok(started(&self.0, &run))
    }
}

/// Arguments of `runs_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// At most this many, newest first (default 20, at most 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Runs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunList {
    /// The runs shown.
    pub runs: Vec<RunLine>,
}

/// One run in a list.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunLine {
    /// Its id.
    pub run_id: String,
    /// Its goal.
    pub goal: String,
    /// The agent that took it.
    pub agent: String,
    /// Where it stands.
    pub state: String,
    /// When it started (RFC 3339).
    pub created: String,
}

/// `runs_list`.
#[derive(Debug)]
pub struct RunsList(Arc<Goals>);

impl Tool for RunsList {
    type Args = ListArgs;
    type Output = RunList;
    const NAME: &'static str = "runs_list";
    const TITLE: Option<&'static str> = Some("List agent runs");
    const DESCRIPTION: &'static str = "List agent runs, newest first: the ones you started (all \
        of them for reviewers and admins).";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: ListArgs, ctx: ToolContext) -> baton_kit::Result<RunList> {
        let caller = caller(&ctx)?;
        let limit = args.limit.unwrap_or(20);
        if !(1..=200).contains(&limit) {
            return Err(ToolError::invalid_args(
                "limit",
                format!("must be between 1 and 200, got {limit}"),
            ));
        }
        let runs = self
            .0
            .served()?
            .gate
            .store()
            .runs()
            .await
            .map_err(|e| ToolError::failed(e.to_string()))?;
        Ok(RunList {
            runs: runs
                .iter()
                .filter(|run| Goals::may_steer(&caller, run))
                .take(limit as usize)
                .map(|run| RunLine {
                    run_id: run.id.clone(),
                    goal: run.goal.clone(),
                    agent: run.agent.clone(),
                    state: run.state.as_str().to_owned(),
                    created: baton_runs::rfc3339(run.created_ms),
                })
                .collect(),
        })
    }
}

/// Arguments of `runs_get`, `runs_resume`, `runs_cancel`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdArgs {
    /// The run's id (or a unique prefix).
    pub run_id: String,
}

/// A run as a model reads it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunReport {
    /// Its id.
    pub run_id: String,
    /// Its goal.
    pub goal: String,
    /// `running`, `waiting_approval`, `done`, `done_with_denials`, `failed`, `cancelled` or
    /// `over_budget`.
    pub state: String,
    /// What happened, one line a step: `[agent] → tool`, `[agent] ← tool ok|error|denied: why`,
    /// `[agent] waits for approval ID`.
    pub steps: Vec<String>,
    /// Approvals it waits for now.
    pub pending_approvals: Vec<PendingLine>,
    /// The final answer, once it is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Calls the gate refused (for `done_with_denials`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "baton_kit::any_objects")]
    pub denied: Vec<Value>,
    /// Why it failed or stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tokens used so far: its agents' model turns (in all and per agent) and what its tools
    /// reported.
    #[schemars(schema_with = "baton_kit::any_object")]
    pub usage: Value,
    /// Why it stopped over budget (`over_budget`): the agent and the limit reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "baton_kit::any_object_or_null")]
    pub budget: Option<Value>,
}

/// An approval a run waits for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PendingLine {
    /// The approval's id.
    pub approval_id: String,
    /// The tool waiting.
    pub tool: String,
    /// Why approval is needed.
    pub reason: String,
}

/// `runs_get`.
#[derive(Debug)]
pub struct RunsGet(Arc<Goals>);

impl Tool for RunsGet {
    type Args = RunIdArgs;
    type Output = RunReport;
    const NAME: &'static str = "runs_get";
    const TITLE: Option<&'static str> = Some("Follow an agent run");
    const DESCRIPTION: &'static str = "Where an agent run stands: its state, its steps in a line \
        each, the approvals it waits for, and its final answer once it is done.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: RunIdArgs, ctx: ToolContext) -> baton_kit::Result<RunReport> {
        let caller = caller(&ctx)?;
        let run = self.0.run_for(&caller, &args.run_id).await?;
        let store = self.0.served()?.gate.store();
        let steps = store
            .steps(run.id.clone())
            .await
            .map_err(|e| ToolError::failed(e.to_string()))?;
        let approvals: HashMap<String, baton_runs::Approval> = store
            .approvals()
            .await
            .map_err(|e| ToolError::failed(e.to_string()))?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        Ok(report(&run, &steps, &approvals))
    }
}

fn agent_of(key: &str) -> &str {
    key.split("/turn-").next().unwrap_or(key)
}

fn report(
    run: &Run,
    steps: &[Step],
    approvals: &HashMap<String, baton_runs::Approval>,
) -> RunReport {
    let now = baton_runs::now_millis();
    let mut lines = Vec::new();
    let mut pending = Vec::new();
    let mut tools: HashMap<String, String> = HashMap::new();
    let mut outcome = Value::Null;
    for step in steps {
        let key = step.data["key"].as_str().unwrap_or_default();
        let value = &step.data["value"];
        let agent = agent_of(key);
        match step.kind.as_str() {
            "tool_call" => {
                let tool = value["tool"].as_str().unwrap_or("?").to_owned();
                lines.push(format!("[{agent}] → {tool}"));
                tools.insert(key.trim_end_matches("/intent").to_owned(), tool);
            }
            "tool_result" => {
                let tool = tools.get(key).map_or("?", String::as_str);
                let content = value["content"].as_str().unwrap_or_default();
                let line = if value["ok"].as_bool() == Some(true) {
                    format!("[{agent}] ← {tool} ok")
                } else {
                    format!(
                        "[{agent}] ← {tool} {}",
                        content.lines().next().unwrap_or_default()
                    )
                };
                lines.push(line);
            }
            "approval_wait" => {
                let id = value.as_str().unwrap_or_default();
                lines.push(format!("[{agent}] waits for approval {id}"));
                if let Some(approval) = approvals
                    .get(id)
                    .filter(|a| a.state_at(now) == ApprovalState::Pending)
                {
                    pending.push(PendingLine {
                        approval_id: approval.id.clone(),
                        tool: approval.tool.clone(),
                        reason: format!("{}: {}", approval.rule, approval.reason),
                    });
                }
            }
            "outcome" => outcome = step.data.clone(),
            _ => {}
        }
    }
    pending.dedup_by(|a, b| a.approval_id == b.approval_id);
    RunReport {
        run_id: run.id.clone(),
        goal: run.goal.clone(),
        state: run.state.as_str().to_owned(),
        steps: lines,
        pending_approvals: pending,
        output: outcome["output"].as_str().map(str::to_owned),
        denied: outcome["denied"].as_array().cloned().unwrap_or_default(),
        error: outcome["error"].as_str().map(str::to_owned),
        usage: serde_json::to_value(baton_runs::TokenUsage::of(steps)).unwrap_or(Value::Null),
        budget: Some(outcome["budget"].clone()).filter(Value::is_object),
    }
}

/// `runs_resume`.
#[derive(Debug)]
pub struct RunsResume(Arc<Goals>);

impl Tool for RunsResume {
    type Args = RunIdArgs;
    type Output = RunStarted;
    const NAME: &'static str = "runs_resume";
    const TITLE: Option<&'static str> = Some("Resume an agent run");
    const DESCRIPTION: &'static str = "Go on with a run that failed, was cancelled or stopped \
        with its server: recorded steps are replayed, never repeated.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: RunIdArgs, ctx: ToolContext) -> baton_kit::Result<RunStarted> {
        let caller = caller(&ctx)?;
        let run = self.0.run_for(&caller, &args.run_id).await?;
        if self.0.is_running(&run.id) || self.0.on_workers(&run.id).await {
            return Err(ToolError::invalid_args(
                "run_id",
                format!("run {} is running (here or on a worker)", run.id),
            ));
        }
        if matches!(run.state, RunState::Done | RunState::DoneWithDenials) {
            return Err(ToolError::invalid_args(
                "run_id",
                format!("run {} is {}", run.id, run.state.as_str()),
            ));
        }
        self.0.resume(&run)?;
        Ok(started(&self.0, &run))
    }
}

/// `runs_cancel`.
#[derive(Debug)]
pub struct RunsCancel(Arc<Goals>);

impl Tool for RunsCancel {
    type Args = RunIdArgs;
    type Output = RunStarted;
    const NAME: &'static str = "runs_cancel";
    const TITLE: Option<&'static str> = Some("Stop an agent run");
    const DESCRIPTION: &'static str = "Stop a run executing in this server or on a worker: \
        its calls in flight are cancelled (and audited so); it can be resumed later.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: RunIdArgs, ctx: ToolContext) -> baton_kit::Result<RunStarted> {
        let caller = caller(&ctx)?;
        let run = self.0.run_for(&caller, &args.run_id).await?;
        if !self.0.cancel(&run.id) && !self.0.cancel_on_workers(&caller, &run.id).await {
            return Err(ToolError::invalid_args(
                "run_id",
                format!(
                    "run {} is not running in this server (it is {})",
                    run.id,
                    run.state.as_str()
                ),
            ));
        }
        let mut stopped = started(&self.0, &run);
        stopped.state = "cancelling".into();
        Ok(stopped)
    }
}
