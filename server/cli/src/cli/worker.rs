//! `baton worker` (take work from the shared store's queue) and `baton workers` (list them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_runs::{StoreApi as _, WorkKind, now_millis, rfc3339};
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;
use crate::workers::{Worker, WorkerSettings, hostname};

/// Kinds of work, as `--kinds` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Agent goals (`baton run --goals … --on-workers`).
    Goal,
    /// Single tool calls (the items of a batch).
    Call,
}

/// `baton worker`
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The shared store (a `postgres://` URL; default `BATON_STORE_URL` or `[store] url`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// This worker's name among the store's workers [default: <host>-<pid>].
    #[arg(long)]
    pub name: Option<String>,
    /// Most items it runs at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub capacity: u32,
    /// The kinds of work it takes.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [KindArg::Goal, KindArg::Call])]
    pub kinds: Vec<KindArg>,
    /// Where its clones of goal repositories live [default: <data dir>/worker-<name>].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds a lease lasts without a heartbeat (it beats every third of that): how soon
    /// another worker takes over from one that died.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_secs: u64,
}

/// `baton workers`
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// How to print the list (`json`: the full records).
    #[command(flatten)]
    pub format: super::ListFormat,
}

pub(super) async fn worker(mut config: Config, args: WorkerArgs) -> Result<(), Failure> {
    if args.store.is_some() {
        config.store_flag = args.store;
    }
    let name = args
        .name
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::usage(format!(
            "--name `{name}`: a worker's name has no spaces or control characters"
        )));
    }
    let dir = args
        .dir
        .unwrap_or_else(|| config.data_dir().join(format!("worker-{name}")));
    // Paths in the run's journal are this folder's: one that moves with the working
    // directory would not be found again.
    let dir = std::path::absolute(&dir)
        .map_err(|e| Failure::usage(format!("--dir {}: {e}", dir.display())))?;
    let (builder, _sources) =
        super::run::with_sources(App::builder(config.clone()), &config).await?;
    let app = builder.ownership(baton_runs::Ownership::Serve).build()?;
    let kinds = args
        .kinds
        .iter()
        .map(|k| match k {
            KindArg::Goal => WorkKind::Goal,
            KindArg::Call => WorkKind::Call,
        })
        .collect();
    let settings = WorkerSettings {
        name,
        capacity: args.capacity,
        kinds,
        dir,
        lease: Duration::from_secs(args.lease_secs),
    };
    let stop = CancellationToken::new();
    super::serve::watch_signals(stop.clone())?;
    let worker = Worker::new(app.served.clone(), config, settings);
    Arc::clone(&worker).serve(stop).await
}

pub(super) async fn workers(config: Config, args: WorkersArgs) -> Result<(), Failure> {
    let app = App::build(config)?;
    let workers = app
        .store()
        .workers()
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if args.format.is_json() {
        let value = serde_json::to_value(&workers).map_err(|e| Failure::runtime(e.to_string()))?;
        return print(&pretty(&value)?);
    }
    if workers.is_empty() {
        return print("no workers have reported to this store\n");
    }
    let now = now_millis();
    let mut out = String::new();
    for w in workers {
        let age = now.saturating_sub(w.heartbeat_ms) / 1000;
        let state = if w.stopped { "stopped" } else { "up" };
        out.push_str(&format!(
            "{}  {state}  {}:{}  capacity {}  running {}  last heartbeat {} ({age} s ago)\n",
            w.name,
            w.host,
            w.pid,
            w.capacity,
            if w.running.is_empty() {
                "nothing".to_owned()
            } else {
                w.running.join(", ")
            },
            rfc3339(w.heartbeat_ms),
        ));
    }
    print(&out)
}
