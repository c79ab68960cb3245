//! One run of the agents, from a goal to its end state: the model provider it uses, the gate
//! bound to its repository, approvals waited for on the store's change feed, progress as it
//! goes, and the end state it reports. `baton run` and the `agents_run` tool both run goals
//! through here.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use baton_agents::{
    AgentSet, Budget, ByApi, OpenAiProvider, OverBudget, Provider, RecordingProvider,
    ReplayProvider, ResponsesProvider, RunEvent, RunOutcome, Runner,
};
use baton_mcp::Served;
use baton_runs::{RunState, StoreApi as _, StoreHandle, now_millis};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::agents::{RepoBound, StoreApprovals, StoreJournal};
use crate::cli::Failure;
use crate::config::Config;

/// Model providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Any OpenAI-compatible Chat Completions endpoint.
    Openai,
    /// Recorded responses from a cassette.
    Replay,
}

/// What a run needs to be resumed, kept in its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// The repository the run works in (absolute).
    pub repo: PathBuf,
    /// Where the model's answers come from.
    pub provider: ProviderKind,
    /// The cassette, for `replay`.
    pub cassette: Option<PathBuf>,
    /// A folder of agent definitions instead of the built-in roles.
    pub agents: Option<PathBuf>,
    /// The first message: the goal, and the repository.
    pub input: String,
    /// The role taking the manager's builder tasks (`[agents] builder`), when not `builder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// Who asked for the run (an MCP caller's principal); `None` for `baton run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The run's own token budget (`--budget`), in place of `[model] max_tokens_per_run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
}

/// Where a run's answers come from: the provider, the model asked, the budget held to.
#[derive(Clone)]
pub struct ModelSetup {
    /// The provider.
    pub provider: Arc<dyn Provider>,
    /// The model's name.
    pub model: String,
    /// What a run may spend.
    pub budget: Budget,
}

impl std::fmt::Debug for ModelSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSetup")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("budget", &self.budget)
            .finish()
    }
}

/// The model provider `setup` asks for, the model's name, and the budget its runs are held to.
pub fn provider(config: &Config, setup: &Setup) -> Result<ModelSetup, Failure> {
    let budget = config
        .file
        .model
        .budget(setup.budget)
        .map_err(Failure::usage)?;
    let (provider, model) = chosen(config, setup)?;
    if budget.max_cost.is_some() && !budget.prices.contains_key(&model) {
        return Err(Failure::usage(format!(
            "[model] max_cost_per_run is set, but model `{model}` has no price: add [model.prices.\"{model}\"]"
        )));
    }
    Ok(ModelSetup {
        provider,
        model,
        budget,
    })
}

/// [`provider`], with each answer also written to a new cassette at `record` when given
/// (`--record`, in the format of `[model] api`, for `--cassette` to replay).
pub fn recorded_provider(
    config: &Config,
    setup: &Setup,
    record: Option<&std::path::Path>,
) -> Result<ModelSetup, Failure> {
    let model = provider(config, setup)?;
    let Some(path) = record else {
        return Ok(model);
    };
    if setup.provider == ProviderKind::Replay {
        return Err(Failure::usage(
            "--record writes a model endpoint's answers: it cannot record a replay",
        ));
    }
    let recording = RecordingProvider::create(path, config.file.model.api, model.provider)
        .map_err(|e| Failure::usage(format!("--record {}: {e}", path.display())))?;
    Ok(ModelSetup {
        provider: Arc::new(recording),
        ..model
    })
}

fn chosen(config: &Config, setup: &Setup) -> Result<(Arc<dyn Provider>, String), Failure> {
    match setup.provider {
        ProviderKind::Replay => {
            let cassette = setup
                .cassette
                .as_ref()
                .ok_or_else(|| Failure::usage("--provider replay needs --cassette FILE"))?;
            let replay =
                ReplayProvider::load(cassette).map_err(|e| Failure::usage(e.to_string()))?;
            Ok((Arc::new(replay), "replay".into()))
        }
        ProviderKind::Openai => {
            let section = &config.file.model;
            let base = config.model_base_url().ok_or_else(|| {
                    Failure::usage(
                        "no model endpoint: set OPENAI_BASE_URL (or `[model] base_url` in baton.toml), or use --cassette FILE to replay",
                    )
                })?;
            let key = std::env::var(config.model_key_env()).unwrap_or_default();
            let model = std::env::var("OPENAI_MODEL")
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| section.model.clone())
                .unwrap_or_else(|| "gpt-4.1".into());
            let chat = OpenAiProvider::new(&base, &key).streaming(section.stream.unwrap_or(true));
            let provider: Arc<dyn Provider> = Arc::new(ByApi::new(
                section.api,
                Arc::new(chat),
                Arc::new(ResponsesProvider::new(&base, &key)),
            ));
            Ok((provider, model))
        }
    }
}

#[allow(
    clippy::print_stderr,
    reason = "live progress is for the person at the terminal"
)]
/// Write `text` to stderr: progress for the person at the terminal (never stdout, which is
/// the result or the MCP stream).
pub fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Print `received` events as progress (prefixed by `prefix`) until the runner goes; the
/// calls the gate denied, for the run's end state.
fn print_events(
    mut received: tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
    prefix: String,
) -> tokio::task::JoinHandle<Vec<serde_json::Value>> {
    tokio::spawn(async move {
        let mut denied = Vec::new();
        let mut live = super::live::Live::new(prefix);
        while let Some(event) = received.recv().await {
            if let RunEvent::ToolResult {
                path,
                tool,
                denied: true,
                detail,
                ..
            } = &event
            {
                denied.push(json!({"agent": path, "tool": tool, "why": detail}));
            }
            say(&live.show(&event));
        }
        say(&live.close());
        denied
    })
}

/// Whether this process may still act on a run (a worker: while it holds the run's lease).
pub trait Fence: Send + Sync {
    /// Whether it may.
    fn held(&self) -> futures::future::BoxFuture<'_, bool>;
}

/// Where a run's calls and journal go when not to the defaults (the gate [`RepoBound`] to its
/// repository, the store's journal): a worker's, fenced by its lease.
pub struct Bindings {
    /// What the run's tool calls go through.
    pub invoker: Arc<dyn baton_kit::Invoker>,
    /// Where its steps are journaled.
    pub journal: Arc<dyn baton_agents::Journal>,
    /// What must hold for the run's state to be written: a worker that lost the run leaves
    /// its state to the worker that has it.
    pub fence: Option<Arc<dyn Fence>>,
}

impl Bindings {
    /// The defaults: the gate bound to the run's repository, the store's journal, no fence.
    async fn local(gate: &baton_gate::Gate, setup: &Setup) -> Bindings {
        Bindings {
            invoker: Arc::new(RepoBound::new(gate.clone(), setup.repo.clone()).await),
            journal: Arc::new(StoreJournal::new(gate.store().clone())),
            fence: None,
        }
    }
}

impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bindings").finish_non_exhaustive()
    }
}

/// Run (or resume) one run to its end, waiting for approvals unless `no_wait`. `label`
/// prefixes its progress lines when several runs share the terminal. The run acts in
/// `setup.repo` through `bindings` (by default the gate [`RepoBound`] to it); it ends `done`,
/// `done_with_denials` (the gate refused some of its calls: listed, with why) or `failed`.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site each; a struct would only rename them"
)]
pub async fn execute(
    served: &Served,
    model: ModelSetup,
    run_id: &str,
    agent: &str,
    setup: &Setup,
    no_wait: bool,
    label: Option<String>,
    cancel: CancellationToken,
    bindings: Option<Bindings>,
) -> Result<serde_json::Value, Failure> {
    let gate = &served.gate;
    let (agents, _watch) = prepare(setup, gate)?;
    let store = gate.store().clone();
    let approvals = Arc::new(StoreApprovals(store.clone()));
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let started = std::time::Instant::now();
    let printer = print_events(received, label.map(|l| format!("{l} ")).unwrap_or_default());
    let Bindings {
        invoker,
        journal,
        fence,
    } = match bindings {
        Some(bound) => bound,
        None => Bindings::local(gate, setup).await,
    };
    let runner = Runner::new(
        model.provider,
        invoker,
        Arc::new(agents),
        journal,
        &model.model,
    )
    .with_budget(model.budget)
    .with_approvals(approvals.clone())
    .with_events(events)
    .with_cancel(cancel.clone());
    let state = |state: RunState| set_state(&store, fence.as_deref(), run_id, state);
    let mut waiting = std::time::Duration::ZERO;
    let result = loop {
        state(RunState::Running).await;
        match runner.run(run_id, agent, &setup.input).await {
            Ok(RunOutcome::Completed(output)) => break Ok(Ended::Answered(output)),
            Ok(RunOutcome::OverBudget(stop)) => {
                state(RunState::OverBudget).await;
                over_budget(&store, run_id, &stop).await;
                break Ok(Ended::OverBudget(stop));
            }
            Ok(RunOutcome::Interrupted(paused)) => {
                state(RunState::WaitingApproval).await;
                if no_wait {
                    break Err(Failure {
                        code: 3,
                        message: format!(
                            "run {run_id} waits for approval {} ({} by {}); decide it, then `baton run resume {run_id}`",
                            paused.approval_id, paused.tool, paused.path
                        ),
                    });
                }
                let waited = std::time::Instant::now();
                tokio::select! {
                    () = approvals.wait(&paused.approval_id) => {}
                    () = cancel.cancelled() => {
                        break Err(Failure::runtime(format!("run {run_id} was cancelled while it waited for approval {}", paused.approval_id)));
                    }
                }
                waiting += waited.elapsed();
                say(&format!(
                    "approval {} decided; resuming\n",
                    paused.approval_id
                ));
            }
            Err(error) => {
                let cancelled = cancel.is_cancelled();
                state(if cancelled {
                    RunState::Cancelled
                } else {
                    RunState::Failed
                })
                .await;
                break Err(Failure::runtime(if cancelled {
                    format!("run {run_id} was cancelled")
                } else {
                    format!("run {run_id} failed: {error}")
                }));
            }
        }
    };
    let timing = runner.timing();
    let cost = runner.usage(run_id).run.cost;
    drop(runner);
    let denied = printer.await.unwrap_or_default();
    if cancel.is_cancelled() && result.is_err() {
        state(RunState::Cancelled).await;
    }
    let (end, output, stop) = match result? {
        Ended::Answered(output) if denied.is_empty() => (RunState::Done, output, None),
        Ended::Answered(output) => (RunState::DoneWithDenials, output, None),
        Ended::OverBudget(stop) => (RunState::OverBudget, serde_json::Value::Null, Some(stop)),
    };
    if stop.is_none() {
        state(end).await;
    }
    let wall = started.elapsed();
    let mut done = summary(end, output, denied, &timing, wall, waiting, stop.as_ref());
    done["usage"] = usage(&store, run_id, cost).await;
    Ok(done)
}

/// The tokens run `run_id` used, from its journal, and their cost when every model was priced.
async fn usage(store: &StoreHandle, run_id: &str, cost: Option<f64>) -> serde_json::Value {
    match store.steps(run_id.to_owned()).await {
        Ok(steps) => {
            let mut usage = json!(baton_runs::TokenUsage::of(&steps));
            if let Some(cost) = cost {
                usage["cost"] = json!(cost);
            }
            usage
        }
        Err(error) => {
            tracing::warn!(%error, run_id, "token usage not summed");
            serde_json::Value::Null
        }
    }
}

/// How a run's loop ended when it did not fail.
enum Ended {
    /// The agent answered.
    Answered(serde_json::Value),
    /// It reached its budget.
    OverBudget(OverBudget),
}

/// A run stopped at its budget: said at the terminal, and audited as the model call not made,
/// refused, by the agent that would have made it.
async fn over_budget(store: &StoreHandle, run_id: &str, stop: &OverBudget) {
    say(&format!(
        "run {run_id} stopped over budget ({}); resume with `baton run resume {run_id} --budget TOKENS`\n",
        stop.reason
    ));
    let agent = baton_runs::agent_of_key(&stop.path);
    let message = format!("run {run_id} stopped over budget: {}", stop.reason);
    let draft = baton_runs::AuditDraft {
        time_ms: now_millis(),
        principal: format!("agent:{agent}"),
        tool: "model".into(),
        args_digest: baton_runs::args_digest(&json!({"run_id": run_id, "agent": stop.path})),
        decision: baton_runs::DecisionRecord {
            kind: baton_runs::DecisionKind::Forbid,
            reason: Some(message.clone()),
            rule: "budget".into(),
        },
        approval_id: None,
        decided_by: None,
        outcome: baton_runs::OutcomeRecord {
            error_kind: Some("over_budget".into()),
            message: Some(message),
            status: baton_runs::OutcomeStatus::Denied,
        },
        duration_us: 0,
        sandbox: None,
    };
    if let Err(error) = store.append_audit(draft).await {
        tracing::warn!(%error, run_id, "the budget stop was not audited");
    }
}

/// Record run `run_id`'s `state`, unless `fence` says this process no longer holds the run.
async fn set_state(store: &StoreHandle, fence: Option<&dyn Fence>, run_id: &str, state: RunState) {
    if let Some(fence) = fence
        && !fence.held().await
    {
        return;
    }
    if let Err(error) = store
        .set_run_state(run_id.to_owned(), state, now_millis())
        .await
    {
        tracing::warn!(%error, run_id, "run state not recorded");
    }
}

/// The agents `setup` names, and the watch that expires the approvals the run waits on with
/// their audit records even when no server runs (webhooks are a server's to send); it stops
/// when the guard is dropped.
fn prepare(
    setup: &Setup,
    gate: &baton_gate::Gate,
) -> Result<(AgentSet, tokio_util::sync::DropGuard), Failure> {
    let mut agents = match &setup.agents {
        Some(dir) => AgentSet::load_dir(dir),
        None => AgentSet::builtin(),
    }
    .map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(role) = &setup.builder {
        agents
            .serve_as("builder", role)
            .map_err(|e| Failure::usage(format!("[agents] builder: {e}")))?;
    }
    let stop_watch = CancellationToken::new();
    baton_console::watch(gate.clone(), Vec::new(), None, stop_watch.clone())
        .map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((agents, stop_watch.drop_guard()))
}

/// A finished run as `baton run` prints it and `runs_get` reads it.
fn summary(
    end: RunState,
    output: serde_json::Value,
    denied: Vec<serde_json::Value>,
    timing: &baton_agents::Timing,
    wall: std::time::Duration,
    waiting: std::time::Duration,
    stop: Option<&OverBudget>,
) -> serde_json::Value {
    let wall_us = wall.as_micros() as u64;
    let waiting_us = waiting.as_micros() as u64;
    let overhead_us = wall_us.saturating_sub(timing.model_us + timing.tool_us + waiting_us);
    let mut done = json!({
        "state": end,
        "output": output,
        "denied": denied,
        "timing": {
            "wall_ms": wall_us as f64 / 1000.0,
            "model_ms": timing.model_us as f64 / 1000.0,
            "tool_ms": timing.tool_us as f64 / 1000.0,
            "waiting_ms": waiting_us as f64 / 1000.0,
            "runtime_ms": overhead_us as f64 / 1000.0,
            "model_calls": timing.model_calls,
            "tool_calls": timing.tool_calls,
        }
    });
    if let Some(stop) = stop {
        done["budget"] = json!({"agent": stop.path, "reason": stop.reason, "spent": stop.usage});
    }
    done
}
