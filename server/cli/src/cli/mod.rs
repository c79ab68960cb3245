//! The `baton` command line.
//!
//! Exit codes: 0 success; 1 the tool or server failed; 2 bad usage or bad input (arguments
//! that do not fit, an unknown tool, a config that does not parse).

mod approvals;
mod artifacts;
mod audit;
mod completions;
mod doctor;
mod eval;
mod progress;
mod queue;
mod run;
mod runs;
mod rx;
pub mod serve;
mod sop;
mod store;
mod timeline;
mod tools;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// Baton: an MCP server for audio DSP, product-image QA, prescription rules and repository
/// orchestration, behind one policy gate with approvals and an audit log.
#[derive(Debug, Parser)]
#[command(name = "baton", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./baton.toml when present]
    #[arg(long, global = true, env = "BATON_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (default) or Streamable HTTP.
    Serve(serve::ServeArgs),
    /// List or call tools through the same gate MCP clients use.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Review elevated calls waiting for approval.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Show agent runs and their journals.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Verify or export the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage stored artifacts (uploads and tool outputs).
    #[command(subcommand)]
    Artifacts(artifacts::ArtifactsCommand),
    /// Move a store to PostgreSQL.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Give a goal to the agents (the manager by default), or resume a run.
    Run(run::RunArgs),
    /// Validate medicinal-cannabis prescriptions against the rule tables.
    #[command(subcommand)]
    Rx(rx::RxCommand),
    /// Score a pack against its labelled eval cases.
    Eval(eval::EvalArgs),
    /// Repo-orchestration helpers for hooks and CI.
    #[command(subcommand)]
    Sop(sop::SopCommand),
    /// Take goals and batch items from the shared store's queue and run them here.
    Worker(worker::WorkerArgs),
    /// List the workers of the shared store: capacity, what each runs, last heartbeat.
    Workers(worker::WorkersArgs),
    /// Print the completion script for a shell (bash, zsh, fish).
    Completions(completions::CompletionsArgs),
    /// Check what this installation can do: config, policy, store, ONNX Runtime, command
    /// confinement, model endpoint; with the fix for anything short of ok.
    Doctor(doctor::DoctorArgs),
}

/// How a list is printed: `--format table` (the default, for people) or `--format json` (for
/// scripts; `--json` says the same).
#[derive(Debug, Args)]
pub struct ListFormat {
    /// How to print the list: `table` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl ListFormat {
    /// Whether the list is printed as JSON.
    pub fn is_json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

/// A list's printed form: `table`, aligned columns under a header, or `json`, the records as
/// JSON. (Its variants carry no doc comment: clap would print each in every list's help.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A failure the CLI reports: the message and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What to print on stderr.
    pub message: String,
}

impl Failure {
    /// Bad usage or input: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A runtime failure: exit 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<crate::ServerError> for Failure {
    fn from(error: crate::ServerError) -> Self {
        let code = match &error {
            crate::ServerError::Config(_) | crate::ServerError::Policy(_) => 2,
            _ => 1,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

/// Parse the command line, run it, and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Serve(_) | Command::Worker(_));
    // The command reports a config that does not load; here it only says where traces go.
    let configured = Config::load(cli.config.as_deref())
        .ok()
        .and_then(|config| config.file.telemetry.otlp_endpoint);
    // rmcp logs several lines per request at `info`; they are for debugging rmcp, not for
    // someone running Baton.
    let _telemetry = crate::telemetry::init(
        if quiet { "warn" } else { "info,rmcp=warn" },
        crate::telemetry::otlp_traces_endpoint(configured.as_deref()),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(Failure::runtime(format!(
                "cannot start the async runtime: {error}"
            )));
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = run(cli).await;
        // Requests other `baton` processes handed this one's store are answered first: one
        // applied and unanswered would be retried against the next owner.
        if !baton_runs::answer_taken(std::time::Duration::from_secs(5)).await {
            tracing::warn!("exiting before answering every request to the store");
        }
        outcome
    });
    // A blocking read of stdin (the stdio transport's) never returns while the client holds
    // stdin open: do not wait for it, or a signalled server would live until the client goes.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let load = || {
        Config::load(cli.config.as_deref()).map_err(|e| Failure::from(crate::ServerError::from(e)))
    };
    match cli.command {
        Command::Serve(args) => serve::run(load()?, args).await,
        Command::Tools(command) => tools::run(load()?, command).await,
        Command::Approvals(command) => approvals::run(load()?, command).await,
        Command::Runs(command) => runs::run(load()?, command).await,
        Command::Audit(command) => audit::run(load()?, command).await,
        Command::Artifacts(command) => artifacts::run(load()?, command).await,
        Command::Store(command) => store::run(load()?, command).await,
        Command::Sop(command) => sop::run(command).await,
        Command::Rx(command) => rx::run(load()?, command).await,
        Command::Eval(args) => eval::run(load()?, args).await,
        Command::Run(args) => run::run(load()?, args).await,
        Command::Worker(args) => worker::worker(load()?, args).await,
        Command::Workers(args) => worker::workers(load()?, args).await,
        Command::Completions(args) => completions::run(&args),
        Command::Doctor(args) => doctor::run(load(), &args).await,
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the CLI's error message is for the person at the terminal"
)]
/// Print `failure` for the person at the terminal and give its exit code.
pub fn report(failure: Failure) -> ExitCode {
    eprintln!("error: {}", failure.message);
    ExitCode::from(failure.code)
}

/// `value` as indented JSON with a final newline.
pub(crate) fn pretty(value: &serde_json::Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| Failure::runtime(format!("cannot render the result: {e}")))
}

/// Write `text` to stdout.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::runtime(format!("cannot write to stdout: {e}")))
}

/// Log to stderr (stdout is the MCP stream) at `default`, or as `BATON_LOG` says, exporting
/// no traces: for the test and bench binaries.
pub fn init_tracing(default: &str) {
    std::mem::forget(crate::telemetry::init(default, None));
}
