use std::path::PathBuf;

use baton_runs::{Ownership, PgStore, StoreApi as _, StoreHandle, StoreOptions};
use clap::{Args, Subcommand};

use super::{Failure, pretty, print};
use crate::config::Config;

/// `baton store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a whole store — audit chain, approvals, runs and journals, tasks, artifacts — into
    /// an empty PostgreSQL database; the chain is copied as it is and verifies on both.
    Copy(CopyArgs),
}

/// `baton store copy`
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to copy: `sled:DIR` (a data folder) or `postgres://…`. Default: this
    /// configuration's data folder.
    #[arg(long, value_name = "STORE")]
    pub from: Option<String>,
    /// The empty PostgreSQL database to copy into (`postgres://user@host:port/db`). Default:
    /// this configuration's `[store] url`.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub(super) async fn run(config: Config, command: StoreCommand) -> Result<(), Failure> {
    let StoreCommand::Copy(args) = command;
    let mut options = config
        .store_options()
        .map_err(|e| Failure::from(crate::ServerError::from(e)))?;
    let source = match args.from.as_deref() {
        None => StoreHandle::new(config.data_dir(), Ownership::Borrow),
        Some(from) => match from.strip_prefix("sled:") {
            Some(dir) if !dir.is_empty() => StoreHandle::new(PathBuf::from(dir), Ownership::Borrow),
            _ if is_postgres(from) => StoreHandle::new(config.data_dir(), Ownership::Borrow)
                .with_options(StoreOptions {
                    url: Some(from.to_owned()),
                    ..options.clone()
                }),
            _ => {
                return Err(Failure::usage(format!(
                    "--from `{from}`: give `sled:DIR` (a data folder) or a `postgres://` URL"
                )));
            }
        },
    };
    let to = match args.to.or_else(|| options.url.clone()) {
        Some(to) if is_postgres(&to) => to,
        Some(to) => {
            return Err(Failure::usage(format!(
                "--to `{}`: only a PostgreSQL database (`postgres://…`) can be copied into",
                baton_runs::PgStore::redacted(&to)
            )));
        }
        None => {
            return Err(Failure::usage(
                "--to is missing, and the configuration has no `[store] url`",
            ));
        }
    };
    options.url = Some(to.clone());
    let failed = |e: baton_runs::StoreError| Failure::runtime(format!("store copy: {e}"));
    let destination = PgStore::connect(&to, &options)
        .await
        .map_err(|e| failed(e.into()))?;
    let copied = destination.copy_from(&source).await.map_err(failed)?;
    let (before, after) = (
        source.verify_audit().await.map_err(failed)?,
        destination.verify_audit().await.map_err(failed)?,
    );
    if before.head_hash != after.head_hash || after.problem.is_some() {
        return Err(Failure::runtime(format!(
            "store copy: the copy's audit chain does not verify as the source's does (source head {}, copy {:?})",
            before.head_hash, after
        )));
    }
    if args.json {
        let value = serde_json::json!({
            "copied": copied,
            "to": destination.target(),
            "verified": after.verified,
            "head": after.head_hash,
        });
        return print(&pretty(&value)?);
    }
    print(&format!(
        "copied {} audit records, {} approvals, {} runs ({} steps), {} tasks and {} artifacts from {} to {}\naudit log verified on both: {} records, head {}\n",
        copied.audit_records,
        copied.approvals,
        copied.runs,
        copied.steps,
        copied.tasks,
        copied.artifacts,
        source.location(),
        destination.target(),
        after.verified,
        after.head_hash
    ))
}
