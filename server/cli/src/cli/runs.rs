use baton_runs::StoreApi as _;
use baton_runs::rfc3339;
use clap::{Args, Subcommand};

use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;

/// `baton runs …`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(JsonArg),
    /// Show one run and its journal.
    Show(ShowArgs),
}

/// `--json`
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `baton runs show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (a unique prefix is enough).
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: Config, command: RunsCommand) -> Result<(), Failure> {
    let app = App::build(config)?;
    let store = app.store();
    let failed = |e: baton_runs::StoreError| match e {
        baton_runs::StoreError::NotFound { message }
        | baton_runs::StoreError::Ambiguous { message } => Failure::usage(message),
        other => Failure::runtime(other.to_string()),
    };
    match command {
        RunsCommand::List(args) => {
            let runs = store.runs().await.map_err(failed)?;
            if args.json {
                let value =
                    serde_json::to_value(&runs).map_err(|e| Failure::runtime(e.to_string()))?;
                return print(&pretty(&value)?);
            }
            if runs.is_empty() {
                return print("no runs\n");
            }
            let mut out = String::new();
            for run in runs {
                out.push_str(&format!(
                    "{}  {:?}  {}  {}  {}\n",
                    run.id,
                    run.state,
                    run.agent,
                    rfc3339(run.updated_ms),
                    run.goal
                ));
            }
            print(&out)
        }
        RunsCommand::Show(args) => {
            let run = store.run(args.id.clone()).await.map_err(failed)?;
            let steps = store.steps(run.id.clone()).await.map_err(failed)?;
            let usage = baton_runs::TokenUsage::of(&steps);
            if args.json {
                let value = serde_json::json!({ "run": run, "usage": usage, "steps": steps });
                return print(&pretty(&value)?);
            }
            let mut out = format!(
                "run {}\n  goal    {}\n  agent   {}\n  state   {:?}\n  created {}\n  updated {}\n  steps   {}\n  tokens  {} (agents {} in, {} out; tools {} in, {} out)\n",
                run.id,
                run.goal,
                run.agent,
                run.state,
                rfc3339(run.created_ms),
                rfc3339(run.updated_ms),
                steps.len(),
                usage.total,
                usage.model_input,
                usage.model_output,
                usage.tools_input,
                usage.tools_output,
            );
            for step in steps {
                // A tool's own steps (Codex's commands and patches) read as one line each.
                let shown = match step.data["value"]["summary"].as_str() {
                    Some(summary) if step.kind == "tool_event" => format!(
                        "{} {summary}",
                        step.data["key"].as_str().unwrap_or_default()
                    ),
                    _ => step.data.to_string(),
                };
                out.push_str(&format!(
                    "  {:>4}  {}  {}  {shown}\n",
                    step.seq,
                    rfc3339(step.time_ms),
                    step.kind,
                ));
            }
            print(&out)
        }
    }
}
