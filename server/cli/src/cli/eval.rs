use std::path::PathBuf;

use baton_evals::{default_cases_dir, load_rx_cases, run_rx};
use baton_rx::today;
use clap::{Args, ValueEnum};

use super::{Failure, pretty, print};
use crate::config::Config;

/// `baton eval`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The pack to evaluate (all packs with eval sets when left out).
    #[arg(value_enum)]
    pub pack: Option<EvalPack>,
    /// Folder of labelled cases [default: the committed `evals/<pack>/cases`].
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Packs with eval sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalPack {
    /// Prescription rules.
    Rx,
}

pub(super) async fn run(config: Config, args: EvalArgs) -> Result<(), Failure> {
    match args.pack.unwrap_or(EvalPack::Rx) {
        EvalPack::Rx => {
            let book = super::rx::book(&config)?;
            let dir = args.cases.unwrap_or_else(|| default_cases_dir("rx"));
            let cases = load_rx_cases(&dir).map_err(|e| Failure::usage(e.to_string()))?;
            if cases.is_empty() {
                return Err(Failure::usage(format!("no cases in `{}`", dir.display())));
            }
            let scores = run_rx(&book, &cases, today());
            if args.json {
                let value =
                    serde_json::to_value(&scores).map_err(|e| Failure::runtime(e.to_string()))?;
                print(&pretty(&value)?)?;
            } else {
                print(&scores.render())?;
            }
            if !scores.targets_met() {
                return Err(Failure::runtime(format!(
                    "rx eval: {} of {} cases not as labelled",
                    scores.mismatches.len(),
                    scores.cases
                )));
            }
            Ok(())
        }
    }
}
