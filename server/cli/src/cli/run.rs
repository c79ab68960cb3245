use baton_runs::StoreApi as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_agents::{
    AgentSet, OpenAiProvider, Provider, ReplayProvider, RunEvent, RunOutcome, Runner,
};
use baton_runs::{RunState, now_millis};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Failure, pretty, print};
use crate::agents::{RepoBound, StoreApprovals, StoreJournal};
use crate::app::App;
use crate::config::Config;
use baton_mcp::sources::{Connection, connect};
use baton_runs::Ownership;

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
    /// A TOML file of goals (`[[goals]] goal = "…"`): each runs in its own git worktree and
    /// branch of the repository.
    #[arg(long, conflicts_with = "goal")]
    pub goals: Option<PathBuf>,
    /// How many goals of `--goals` run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

/// `--goals` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalsFile {
    goals: Vec<GoalEntry>,
}

/// One goal of a `--goals` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalEntry {
    /// The goal, in words.
    goal: String,
    /// The agent that takes it (default: `--agent`).
    #[serde(default)]
    agent: Option<String>,
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

pub(super) async fn run(config: Config, args: RunArgs) -> Result<(), Failure> {
    match (args.command, args.goal) {
        (Some(RunCommand::Resume(resume)), _) => {
            let (app, _sources) = build_app(&config).await?;
            let run = app
                .store()
                .run(resume.run_id.clone())
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
            let (app, _sources) = build_app(&config).await?;
            let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
            let run = app
                .store()
                .create_run(goal.clone(), options.agent.clone(), meta, now_millis())
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
        (None, None) => match args.options.goals.clone() {
            Some(file) => parallel(config, args.options, &file).await,
            None => Err(Failure::usage(
                "give a goal (baton run \"…\"), --goals FILE, or `baton run resume RUN_ID`",
            )),
        },
    }
}

/// The goals of `--goals FILE`; at least one.
fn read_goals(file: &std::path::Path) -> Result<GoalsFile, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("--goals {}: {e}", file.display())))?;
    let goals: GoalsFile = toml::from_str(&text)
        .map_err(|e| Failure::usage(format!("--goals {}: {}", file.display(), e.message())))?;
    if goals.goals.is_empty() {
        return Err(Failure::usage(format!(
            "--goals {}: no [[goals]]",
            file.display()
        )));
    }
    Ok(goals)
}

/// A new worktree `<repo>/.worktrees/<name>` on a new branch `goal/<name>` from `HEAD`, for
/// goal number `n`.
async fn add_worktree(repo: &Path, name: &str, n: usize) -> Result<PathBuf, Failure> {
    let worktree = repo.join(".worktrees").join(name);
    let ignore = repo.join(".worktrees/.gitignore");
    if !ignore.exists() {
        std::fs::create_dir_all(repo.join(".worktrees"))
            .and_then(|()| std::fs::write(&ignore, "# Worktrees made by Baton.\n*\n"))
            .map_err(|e| Failure::runtime(format!("{}: {e}", ignore.display())))?;
    }
    let added = tokio::process::Command::new("git")
        .args(["worktree", "add", "-q", "-b", &format!("goal/{name}")])
        .arg(&worktree)
        .arg("HEAD")
        .current_dir(repo)
        .output()
        .await
        .map_err(|e| Failure::runtime(format!("git: {e}")))?;
    if !added.status.success() {
        return Err(Failure::runtime(format!(
            "cannot make a worktree for goal {n}: {}",
            String::from_utf8_lossy(&added.stderr).trim()
        )));
    }
    Ok(worktree)
}

/// `--goals FILE --parallel N`: each goal in its own worktree and branch, N at a time, one
/// shared model provider (a cassette's recordings are shared out among the goals).
async fn parallel(
    config: Config,
    options: RunOptions,
    file: &std::path::Path,
) -> Result<(), Failure> {
    let goals = read_goals(file)?;
    let repo = match &options.repo {
        Some(repo) => repo.clone(),
        None => std::env::current_dir().map_err(|e| Failure::runtime(e.to_string()))?,
    }
    .canonicalize()
    .map_err(|e| Failure::usage(format!("--repo: {e}")))?;
    let kind = match (options.provider, &options.cassette) {
        (Some(kind), _) => kind,
        (None, Some(_)) => ProviderKind::Replay,
        (None, None) => ProviderKind::Openai,
    };
    let template = Setup {
        repo: repo.clone(),
        provider: kind,
        cassette: options
            .cassette
            .clone()
            .map(|c| c.canonicalize().unwrap_or(c)),
        agents: options.agents.clone(),
        input: String::new(),
    };
    let (shared, model) = provider(&config, &template)?;
    let (app, _sources) = build_app(&config).await?;
    let stamp = now_millis();
    let mut planned = Vec::new();
    for (n, entry) in goals.goals.iter().enumerate() {
        let worktree = add_worktree(&repo, &format!("goal-{stamp}-{}", n + 1), n + 1).await?;
        let setup = Setup {
            input: format!(
                "Goal: {}\n\nRepository: {} (pass it as `repo` to every tool).",
                entry.goal,
                worktree.display()
            ),
            repo: worktree,
            ..template.clone()
        };
        let agent = entry.agent.clone().unwrap_or_else(|| options.agent.clone());
        let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
        let run = app
            .store()
            .create_run(entry.goal.clone(), agent.clone(), meta, now_millis())
            .await
            .map_err(|e| Failure::runtime(format!("cannot start a run: {e}")))?;
        say(&format!(
            "run {} started (goal {}): {}\n",
            run.id,
            n + 1,
            entry.goal
        ));
        planned.push((n + 1, run.id, agent, setup, entry.goal.clone()));
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(usize::from(options.parallel)));
    let results = futures::future::join_all(planned.iter().map(|(n, run_id, agent, setup, goal)| {
        let gate = gate.clone();
        let shared = shared.clone();
        let (app, model) = (&app, &model);
        async move {
            let _slot = gate.acquire().await;
            let result = execute(app, shared, model, run_id, agent, setup, options.no_wait, Some(format!("[goal {n}]"))).await;
            match result {
                Ok(done) => json!({"run_id": run_id, "goal": goal, "worktree": setup.repo, "state": done["state"], "output": done["output"], "denied": done["denied"], "timing": done["timing"]}),
                Err(failure) => json!({"run_id": run_id, "goal": goal, "worktree": setup.repo, "state": "failed", "error": failure.message}),
            }
        }
    }))
    .await;
    let failed = results.iter().filter(|r| r["state"] != "done").count();
    print(&pretty(&json!({"runs": results}))?)?;
    if failed > 0 {
        return Err(Failure::runtime(format!(
            "{failed} of {} goals did not finish",
            results.len()
        )));
    }
    Ok(())
}

/// The app a run uses: it serves the store (a run lasts; reviewers' commands reach it
/// meanwhile), and the tools of `[[agents.mcp]]` servers are registered behind its gate. The
/// connections live as long as the returned handles.
async fn build_app(config: &Config) -> Result<(App, Vec<Connection>), Failure> {
    let mut connections = Vec::new();
    let mut foreign = Vec::new();
    for source in &config.file.agents.mcp {
        let (connection, tools) = connect(source)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        say(&format!(
            "MCP server `{}`: {} tool(s) for agents\n",
            source.name,
            tools.len()
        ));
        connections.push(connection);
        foreign.extend(tools);
    }
    let app = App::builder(config.clone())
        .ownership(Ownership::Serve)
        .tools(move |registry| {
            for tool in foreign {
                registry.register_dyn(tool)?;
            }
            Ok(())
        })
        .build()?;
    Ok((app, connections))
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
            detail,
            denied,
        } => Some(format!(
            "[{path}] ← {tool} {}{}{}",
            match (ok, denied) {
                (true, _) => "ok",
                (false, true) => "denied",
                (false, false) => "error",
            },
            detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
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
    let mut done = execute(app, provider, &model, run_id, agent, setup, no_wait, None).await?;
    done["run_id"] = json!(run_id);
    print(&pretty(&done)?)?;
    match done["denied"].as_array().map_or(0, Vec::len) {
        0 => Ok(()),
        denied => Err(Failure::runtime(format!(
            "run {run_id} finished, but the gate refused {denied} of its calls (listed under `denied`): it did not do everything it was asked"
        ))),
    }
}

/// Print `received` events as progress lines (prefixed by `prefix`) until the runner goes;
/// the calls the gate denied, for the run's end state.
fn print_events(
    mut received: tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
    prefix: String,
) -> tokio::task::JoinHandle<Vec<serde_json::Value>> {
    tokio::spawn(async move {
        let mut denied = Vec::new();
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
            if let Some(line) = describe(&event) {
                say(&format!("{prefix}{line}\n"));
            }
        }
        denied
    })
}

/// Run (or resume) one run to its end, waiting for approvals unless `no_wait`. `label`
/// prefixes its progress lines when several runs share the terminal. The run acts in
/// `setup.repo` (see [`RepoBound`]); it ends `done`, `done_with_denials` (the gate refused
/// some of its calls: listed, with why) or `failed`.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site each; a struct would only rename them"
)]
async fn execute(
    app: &App,
    provider: Arc<dyn Provider>,
    model: &str,
    run_id: &str,
    agent: &str,
    setup: &Setup,
    no_wait: bool,
    label: Option<String>,
) -> Result<serde_json::Value, Failure> {
    let agents = match &setup.agents {
        Some(dir) => AgentSet::load_dir(dir),
        None => AgentSet::builtin(),
    }
    .map_err(|e| Failure::usage(e.to_string()))?;
    let store = app.store().clone();
    let approvals = Arc::new(StoreApprovals(store.clone()));
    // Approvals this run waits on expire on time, with their audit records, even when no
    // server is running (webhooks are a server's to send).
    let stop_watch = tokio_util::sync::CancellationToken::new();
    let _watch_guard = stop_watch.clone().drop_guard();
    baton_console::watch(app.gate().clone(), Vec::new(), None, stop_watch)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let started = std::time::Instant::now();
    let printer = print_events(received, label.map(|l| format!("{l} ")).unwrap_or_default());
    let runner = Runner::new(
        provider,
        Arc::new(RepoBound::new(app.gate().clone(), setup.repo.clone()).await),
        Arc::new(agents),
        Arc::new(StoreJournal::new(store.clone())),
        model,
    )
    .with_approvals(approvals.clone())
    .with_events(events);
    let state = |state: RunState| {
        let store = store.clone();
        async move {
            if let Err(error) = store
                .set_run_state(run_id.to_owned(), state, now_millis())
                .await
            {
                tracing::warn!(%error, run_id, "run state not recorded");
            }
        }
    };
    let mut waiting = std::time::Duration::ZERO;
    let result = loop {
        state(RunState::Running).await;
        match runner.run(run_id, agent, &setup.input).await {
            Ok(RunOutcome::Completed(output)) => break Ok(output),
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
                approvals.wait(&paused.approval_id).await;
                waiting += waited.elapsed();
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
    let timing = runner.timing();
    drop(runner);
    let denied = printer.await.unwrap_or_default();
    let output = result?;
    let end = if denied.is_empty() {
        RunState::Done
    } else {
        RunState::DoneWithDenials
    };
    state(end).await;
    let wall_us = started.elapsed().as_micros() as u64;
    let waiting_us = waiting.as_micros() as u64;
    let overhead_us = wall_us.saturating_sub(timing.model_us + timing.tool_us + waiting_us);
    Ok(json!({
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
    }))
}
