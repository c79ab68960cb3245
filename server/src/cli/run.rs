use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_agents::{
    AgentSet, ApprovalState, Approvals, OpenAiProvider, Provider, ReplayProvider, RunEvent,
    RunOutcome, Runner,
};
use baton_runs::{RunState, now_millis};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Failure, pretty, print};
use crate::agents::{StoreApprovals, StoreJournal};
use crate::app::App;
use crate::config::Config;
use crate::store::Ownership;

/// `baton run`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunArgs {
    #[command(subcommand)]
    pub command: Option<RunCommand>,
    /// The goal, in words (e.g. "add rate limiting to the gateway").
    pub goal: Option<String>,
    #[command(flatten)]
    pub options: RunOptions,
}

/// `baton run …` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Continue a run that waited for approval, failed or was killed: recorded steps are
    /// replayed, never repeated.
    Resume(ResumeArgs),
}

/// `baton run resume`
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's id (or a unique prefix).
    pub run_id: String,
    /// Do not wait for approvals: exit with code 3 while one is pending.
    #[arg(long)]
    pub no_wait: bool,
}

/// How a run is set up.
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// The repository to work on (default: the working directory).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The agent that takes the goal.
    #[arg(long, default_value = "manager")]
    pub agent: String,
    /// Where answers come from: an OpenAI-compatible endpoint (`OPENAI_BASE_URL` or `[model]`)
    /// or a recorded cassette. Default: `replay` with `--cassette`, else `openai`.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// The cassette for `--provider replay`.
    #[arg(long)]
    pub cassette: Option<PathBuf>,
    /// A folder of agent definitions (`*.toml`) to use instead of the built-in roles.
    #[arg(long)]
    pub agents: Option<PathBuf>,
    /// Do not wait for approvals: exit with code 3 while one is pending (resume later).
    #[arg(long)]
    pub no_wait: bool,
}

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
struct Setup {
    repo: PathBuf,
    provider: ProviderKind,
    cassette: Option<PathBuf>,
    agents: Option<PathBuf>,
    input: String,
}

const POLL: Duration = Duration::from_millis(250);

pub(super) async fn run(config: Config, args: RunArgs) -> Result<(), Failure> {
    match (args.command, args.goal) {
        (Some(RunCommand::Resume(resume)), _) => {
            // A run lasts: it serves the store, so reviewers' commands reach it meanwhile.
            let app = App::builder(config.clone())
                .ownership(Ownership::Serve)
                .build()?;
            let run = app
                .store()
                .run(&resume.run_id)
                .await
                .map_err(|e| Failure::usage(format!("run `{}`: {e}", resume.run_id)))?;
            let setup: Setup = serde_json::from_value(run.meta.clone()).map_err(|e| {
                Failure::runtime(format!(
                    "run {} cannot be resumed: its setup is unreadable ({e})",
                    run.id
                ))
            })?;
            drive(&config, &app, &run.id, &run.agent, &setup, resume.no_wait).await
        }
        (None, Some(goal)) => {
            let options = args.options;
            let repo = match &options.repo {
                Some(repo) => repo.clone(),
                None => std::env::current_dir().map_err(|e| Failure::runtime(e.to_string()))?,
            };
            let repo = repo
                .canonicalize()
                .map_err(|e| Failure::usage(format!("--repo {}: {e}", repo.display())))?;
            let provider = match (options.provider, &options.cassette) {
                (Some(kind), _) => kind,
                (None, Some(_)) => ProviderKind::Replay,
                (None, None) => ProviderKind::Openai,
            };
            let setup = Setup {
                input: format!(
                    "Goal: {goal}\n\nRepository: {} (pass it as `repo` to every tool).",
                    repo.display()
                ),
                repo,
                provider,
                cassette: options.cassette.map(|c| c.canonicalize().unwrap_or(c)),
                agents: options.agents,
            };
            // A run lasts: it serves the store, so reviewers' commands reach it meanwhile.
            let app = App::builder(config.clone())
                .ownership(Ownership::Serve)
                .build()?;
            let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
            let run = app
                .store()
                .create_run(&goal, &options.agent, meta, now_millis())
                .await
                .map_err(|e| Failure::runtime(format!("cannot start the run: {e}")))?;
            say(&format!("run {} started: {goal}\n", run.id));
            drive(
                &config,
                &app,
                &run.id,
                &options.agent,
                &setup,
                options.no_wait,
            )
            .await
        }
        (None, None) => Err(Failure::usage(
            "give a goal (baton run \"…\") or `baton run resume RUN_ID`",
        )),
    }
}

fn provider(config: &Config, setup: &Setup) -> Result<(Arc<dyn Provider>, String), Failure> {
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
            let base = std::env::var("OPENAI_BASE_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| section.base_url.clone())
                .ok_or_else(|| {
                    Failure::usage(
                        "no model endpoint: set OPENAI_BASE_URL (or `[model] base_url` in baton.toml), or use --cassette FILE to replay",
                    )
                })?;
            let key_env = section
                .api_key_env
                .clone()
                .unwrap_or_else(|| "OPENAI_API_KEY".into());
            let key = std::env::var(&key_env).unwrap_or_default();
            let model = std::env::var("OPENAI_MODEL")
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| section.model.clone())
                .unwrap_or_else(|| "gpt-4.1".into());
            Ok((Arc::new(OpenAiProvider::new(&base, &key)), model))
        }
    }
}

#[allow(
    clippy::print_stderr,
    reason = "live progress is for the person at the terminal"
)]
fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn describe(event: &RunEvent) -> Option<String> {
    match event {
        RunEvent::AgentStarted { path } => Some(format!("[{path}] started")),
        RunEvent::ModelCall { .. } => None,
        RunEvent::ToolCall { path, tool } => Some(format!("[{path}] → {tool}")),
        RunEvent::ToolResult {
            path,
            tool,
            ok,
            replayed,
        } => Some(format!(
            "[{path}] ← {tool} {}{}",
            if *ok { "ok" } else { "error" },
            if *replayed { " (replayed)" } else { "" }
        )),
        RunEvent::ApprovalWaiting {
            path,
            tool,
            approval_id,
            reason,
        } => Some(format!(
            "[{path}] {tool} waits for approval {approval_id}: {reason}\n    approve: baton approvals approve {approval_id}    reject: baton approvals reject {approval_id} --reason TEXT"
        )),
        RunEvent::AgentFinished { path } => Some(format!("[{path}] finished")),
    }
}

async fn drive(
    config: &Config,
    app: &App,
    run_id: &str,
    agent: &str,
    setup: &Setup,
    no_wait: bool,
) -> Result<(), Failure> {
    let (provider, model) = provider(config, setup)?;
    let agents = match &setup.agents {
        Some(dir) => AgentSet::load_dir(dir),
        None => AgentSet::builtin(),
    }
    .map_err(|e| Failure::usage(e.to_string()))?;
    let store = app.store().clone();
    let approvals = Arc::new(StoreApprovals(store.clone()));
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(event) = received.recv().await {
            if let Some(line) = describe(&event) {
                say(&format!("{line}\n"));
            }
        }
    });
    let runner = Runner::new(
        provider,
        Arc::new(app.gate.clone()),
        Arc::new(agents),
        Arc::new(StoreJournal::new(store.clone())),
        &model,
    )
    .with_approvals(approvals.clone())
    .with_events(events);
    let state = |state: RunState| {
        let store = store.clone();
        async move {
            if let Err(error) = store.set_run_state(run_id, state, now_millis()).await {
                tracing::warn!(%error, run_id, "run state not recorded");
            }
        }
    };
    let result = loop {
        state(RunState::Running).await;
        match runner.run(run_id, agent, &setup.input).await {
            Ok(RunOutcome::Completed(output)) => {
                state(RunState::Done).await;
                break Ok(output);
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
                loop {
                    match approvals.state(&paused.approval_id).await {
                        Ok(ApprovalState::Pending) => tokio::time::sleep(POLL).await,
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "approval state unavailable; retrying");
                            tokio::time::sleep(POLL).await;
                        }
                    }
                }
                say(&format!(
                    "approval {} decided; resuming\n",
                    paused.approval_id
                ));
            }
            Err(error) => {
                state(RunState::Failed).await;
                break Err(Failure::runtime(format!("run {run_id} failed: {error}")));
            }
        }
    };
    drop(runner);
    let _ = printer.await;
    let output = result?;
    print(&pretty(&json!({"run_id": run_id, "output": output}))?)
}
