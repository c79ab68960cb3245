use baton_runs::StoreApi as _;
use clap::{Args, Subcommand};

use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;

/// `baton artifacts …`
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Delete artifacts (uploads, tool outputs) last kept longer ago than the retention
    /// (`[limits] artifact_keep_days`), freeing their uploaders' quota.
    Gc(GcArgs),
}

/// `baton artifacts gc`
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep artifacts stored within this many days instead of `[limits] artifact_keep_days`.
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: Config, command: ArtifactsCommand) -> Result<(), Failure> {
    match command {
        ArtifactsCommand::Gc(args) => {
            let days = args
                .keep_days
                .unwrap_or(config.file.limits.artifact_keep_days);
            let app = App::build(config)?;
            let now = app.gate().clock().now_ms();
            let before = now.saturating_sub(days.saturating_mul(24 * 3600 * 1000));
            let gc = app
                .store()
                .gc_artifacts(before)
                .await
                .map_err(|e| Failure::runtime(e.to_string()))?;
            if args.json {
                let value =
                    serde_json::to_value(&gc).map_err(|e| Failure::runtime(e.to_string()))?;
                return print(&pretty(&value)?);
            }
            print(&format!(
                "removed {} artifacts ({} bytes) kept before {}; {} kept\n",
                gc.removed,
                gc.bytes,
                baton_runs::rfc3339(before),
                gc.kept
            ))
        }
    }
}
