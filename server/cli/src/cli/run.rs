use baton_runs::StoreApi as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_runs::now_millis;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;
use crate::goals::{ModelSetup, ProviderKind, Setup, execute, provider, recorded_provider, say};
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
    /// A new token budget for the run (one stopped `over_budget` goes on with it).
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<u64>,
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
    /// Also write the model's answers to a new cassette FILE as they come, for `--cassette`
    /// to replay later (in the format of `[model] api`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cassette", "goals"])]
    pub record: Option<PathBuf>,
    /// A folder of agent definitions (`*.toml`) to use instead of the built-in roles.
    #[arg(long)]
    pub agents: Option<PathBuf>,
    /// Do not wait for approvals: exit with code 3 while one is pending (resume later).
    #[arg(long)]
    pub no_wait: bool,
    /// Most tokens each run's model turns may use (default: `[model] max_tokens_per_run`);
    /// a run that reaches it stops `over_budget`, and `baton run resume ID --budget N` goes on.
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<u64>,
    /// A TOML file of goals (`[[goals]] goal = "…"`): each runs in its own git worktree and
    /// branch of the repository.
    #[arg(long, conflicts_with = "goal")]
    pub goals: Option<PathBuf>,
    /// How many goals of `--goals` run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Queue the goals of `--goals` for workers (`baton worker`) instead of running them
    /// here: each runs on a worker, in a clone of the repository's remote, on its own branch
    /// pushed back; this command follows them to their end.
    #[arg(long, requires = "goals")]
    pub on_workers: bool,
    /// The repository's remote as workers reach it (a URL, or a path on a shared disk)
    /// [default: the `origin` of --repo]. Goals start from its `HEAD`.
    #[arg(long, requires = "on_workers")]
    pub remote: Option<String>,
}

/// `--goals` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GoalsFile {
    pub(super) goals: Vec<GoalEntry>,
}

/// One goal of a `--goals` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GoalEntry {
    /// The goal, in words.
    pub(super) goal: String,
    /// The agent that takes it (default: `--agent`).
    #[serde(default)]
    pub(super) agent: Option<String>,
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
            let mut setup: Setup = serde_json::from_value(run.meta.clone()).map_err(|e| {
                Failure::runtime(format!(
                    "run {} cannot be resumed: its setup is unreadable ({e})",
                    run.id
                ))
            })?;
            setup.budget = resume.budget.or(setup.budget);
            let model = provider(&config, &setup)?;
            drive(&app, model, &run.id, &run.agent, resume.no_wait, &setup).await
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
            let kind = match (options.provider, &options.cassette) {
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
                provider: kind,
                cassette: options.cassette.map(|c| c.canonicalize().unwrap_or(c)),
                agents: options.agents,
                builder: config.file.agents.builder.clone(),
                requested_by: None,
                budget: options.budget,
            };
            // A budget or price that cannot hold, or a recording that cannot be written, is
            // refused before the run is made.
            let model = recorded_provider(&config, &setup, options.record.as_deref())?;
            let (app, _sources) = build_app(&config).await?;
            let meta = serde_json::to_value(&setup).map_err(|e| Failure::runtime(e.to_string()))?;
            let run = app
                .store()
                .create_run(goal.clone(), options.agent.clone(), meta, now_millis())
                .await
                .map_err(|e| Failure::runtime(format!("cannot start the run: {e}")))?;
            say(&format!("run {} started: {goal}\n", run.id));
            drive(
                &app,
                model,
                &run.id,
                &options.agent,
                options.no_wait,
                &setup,
            )
            .await
        }
        (None, None) => match args.options.goals.clone() {
            Some(file) if args.options.on_workers => {
                super::queue::on_workers(config, args.options, &read_goals(&file)?).await
            }
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
        builder: config.file.agents.builder.clone(),
        requested_by: None,
        budget: options.budget,
    };
    let shared = provider(&config, &template)?;
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
    let cancel = CancellationToken::new();
    super::serve::watch_signals(cancel.clone())?;
    let gate = Arc::new(tokio::sync::Semaphore::new(usize::from(options.parallel)));
    let results = futures::future::join_all(planned.iter().map(|(n, run_id, agent, setup, goal)| {
        let gate = gate.clone();
        let shared = shared.clone();
        let cancel = cancel.clone();
        let app = &app;
        async move {
            let _slot = gate.acquire().await;
            let result = execute(&app.served, shared, run_id, agent, setup, options.no_wait, Some(format!("[goal {n}]")), cancel.child_token(), None).await;
            match result {
                Ok(done) => json!({"run_id": run_id, "goal": goal, "worktree": setup.repo, "state": done["state"], "output": done["output"], "denied": done["denied"], "timing": done["timing"], "usage": done["usage"]}),
                Err(failure) => json!({"run_id": run_id, "goal": goal, "worktree": setup.repo, "state": "failed", "error": failure.message}),
            }
        }
    }))
    .await;
    let failed = results.iter().filter(|r| r["state"] != "done").count();
    // The batch's tokens: its runs' own, summed (a failed run's are in `baton runs show`).
    let tokens = |key: &str| {
        results
            .iter()
            .filter_map(|r| r["usage"][key].as_u64())
            .fold(0u64, u64::saturating_add)
    };
    let usage = json!({
        "model_input": tokens("model_input"),
        "model_output": tokens("model_output"),
        "tools_input": tokens("tools_input"),
        "tools_output": tokens("tools_output"),
        "total": tokens("total"),
    });
    print(&pretty(&json!({"runs": results, "usage": usage}))?)?;
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
    let (builder, connections) = with_sources(App::builder(config.clone()), config).await?;
    let app = builder.ownership(Ownership::Serve).build()?;
    Ok((app, connections))
}

/// `builder` with the tools of the `[[agents.mcp]]` servers registered (behind its gate, so
/// every call of them is decided and audited); the connections, which live as long as the
/// returned handles. `baton run` and `baton serve` both connect them.
pub(super) async fn with_sources(
    builder: crate::app::AppBuilder,
    config: &Config,
) -> Result<(crate::app::AppBuilder, Vec<Connection>), Failure> {
    let mut connections = Vec::new();
    let mut foreign = Vec::new();
    if std::env::var_os(baton_mcp::sources::SOURCE_ENV).is_some()
        && !config.file.agents.mcp.is_empty()
    {
        tracing::warn!(
            "started as another Baton's MCP source: its own `[[agents.mcp]]` servers are not started"
        );
        return Ok((builder, connections));
    }
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
    if foreign.is_empty() {
        return Ok((builder, connections));
    }
    let builder = builder.tools(move |registry| {
        for tool in foreign {
            registry.register_dyn(tool)?;
        }
        Ok(())
    });
    Ok((builder, connections))
}

async fn drive(
    app: &App,
    model: ModelSetup,
    run_id: &str,
    agent: &str,
    no_wait: bool,
    setup: &Setup,
) -> Result<(), Failure> {
    // Ctrl-C or SIGTERM cancels the run: its calls end audited as cancelled, and an approval
    // one of them waits for (Codex asking) is withdrawn rather than left for a reviewer.
    let cancel = CancellationToken::new();
    super::serve::watch_signals(cancel.clone())?;
    let mut done = execute(
        &app.served,
        model,
        run_id,
        agent,
        setup,
        no_wait,
        None,
        cancel,
        None,
    )
    .await?;
    done["run_id"] = json!(run_id);
    print(&pretty(&done)?)?;
    if done["state"] == "over_budget" {
        return Err(Failure {
            code: 4,
            message: format!(
                "run {run_id} stopped over budget ({}); go on with `baton run resume {run_id} --budget TOKENS`",
                done["budget"]["reason"]
                    .as_str()
                    .unwrap_or("its budget was reached")
            ),
        });
    }
    match done["denied"].as_array().map_or(0, Vec::len) {
        0 => Ok(()),
        denied => Err(Failure::runtime(format!(
            "run {run_id} finished, but the gate refused {denied} of its calls (listed under `denied`): it did not do everything it was asked"
        ))),
    }
}
