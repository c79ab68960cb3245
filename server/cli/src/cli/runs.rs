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
    List(super::ListFormat),
    /// Show one run and its journal.
    Show(ShowArgs),
}

/// `baton runs show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (a unique prefix is enough).
    pub id: String,
    /// Print the raw journal as JSON instead of the timeline.
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
        RunsCommand::List(format) => {
            let runs = store.runs().await.map_err(failed)?;
            if format.is_json() {
                let value =
                    serde_json::to_value(&runs).map_err(|e| Failure::runtime(e.to_string()))?;
                return print(&pretty(&value)?);
            }
            if runs.is_empty() {
                return print("no runs\n");
            }
            let mut out = format!(
                "{:26}  {:17}  {:12}  {:24}  GOAL\n",
                "ID", "STATE", "AGENT", "UPDATED"
            );
            for run in runs {
                out.push_str(&format!(
                    "{:26}  {:17}  {:12}  {:24}  {}\n",
                    run.id,
                    run.state.as_str(),
                    run.agent,
                    rfc3339(run.updated_ms),
                    super::timeline::printable(&run.goal)
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
            print(&super::timeline::render(&run, &steps, &usage))
        }
    }
}
