//! `baton-bench`: `tools/call` round trips on a trivial read tool (`baton_info`), over stdio
//! and Streamable HTTP, against Baton and a bare rmcp server serving the same tool, in the
//! same run. Servers run as separate processes; the load generators are closed-loop (a new
//! call as soon as the previous one is answered) and run in this process.
//!
//! Its own binary, never part of `baton`: the comparison points it starts — a bare rmcp
//! server and Baton with the gate off — must not exist in the binary users run.

mod abuse;
mod bare;
mod console;
mod http_load;
mod otlp_sink;
mod stats;
mod stdio_load;
mod workers;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use bare::{BareArgs, serve_bare};
pub use stats::Measured;

/// What the load speaks over HTTP: an MCP protocol era, or Baton's REST face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: no session; each request carries its protocol version in `_meta`.
    Stateless,
    /// 2025-11-25: `initialize`, then requests on an `Mcp-Session-Id` session.
    Session,
    /// `POST /v1/tools/<name>` with the arguments as the body.
    Rest,
}

/// `baton-bench`: measure, or serve one of the comparison points.
#[derive(Debug, clap::Parser)]
#[command(name = "baton-bench", version)]
pub struct BenchCli {
    /// What to do.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// `baton-bench` commands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Measure tools/call round trips against a comparison point, in the same run.
    Run(BenchArgs),
    /// Serve a bare rmcp server with the benchmark's tool.
    Bare(BareArgs),
    /// Serve Baton with its gate off (no policy, approvals or audit): the comparison point.
    ServeGateOff(baton_cli::cli::serve::ServeArgs),
    /// The reviewers' console over a large store: page times, and how soon a decision wakes
    /// a waiting run.
    Console(console::ConsoleArgs),
    /// Wait for approvals read from stdin (started by `console`).
    #[command(hide = true)]
    Waiter(console::WaiterArgs),
    /// Well-behaved callers alone, then under a session flood, slow connections and
    /// maximum-size calls at once, with the server's memory sampled.
    Abuse(abuse::AbuseArgs),
    /// One `vision_batch` run by 1, 2, 3… workers on a PostgreSQL store, against the same
    /// batch in the calling process.
    Workers(workers::WorkersArgs),
}

/// The `baton-bench` binary.
pub fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    let cli = BenchCli::parse();
    baton_cli::cli::init_tracing("info,rmcp=warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return baton_cli::cli::report(baton_cli::cli::Failure::runtime(format!(
                "cannot start the async runtime: {error}"
            )));
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            BenchCommand::Run(args) => run(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::Bare(args) => serve_bare(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::Console(args) => console::run(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::Waiter(args) => console::waiter(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::Abuse(args) => abuse::run(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::Workers(args) => workers::run(args)
                .await
                .map_err(|e| baton_cli::cli::Failure::runtime(format!("{e:#}"))),
            BenchCommand::ServeGateOff(args) => {
                let config = baton_cli::config::Config::load(None)
                    .map_err(|e| baton_cli::cli::Failure::from(baton_cli::ServerError::from(e)))?;
                baton_cli::cli::serve::serve(
                    baton_cli::app::App::builder(config)
                        .map_gate(baton_gate::Gate::without_enforcement),
                    args,
                )
                .await
            }
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => baton_cli::cli::report(failure),
    }
}

/// `baton-bench run`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds measured per run (after a one-second warm-up).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Runs per server and scenario; the median run by calls/s is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// Only these transports (`http-2026`, `http-2025`, `stdio`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http-2026,http-2025,stdio"
    )]
    pub transports: Vec<String>,
    /// Write the results into this Markdown file, in the section of the comparison.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Only generate load against an already running server at this URL (HTTP transports
    /// only; no comparison), e.g. to profile it.
    #[arg(long, value_name = "URL", conflicts_with = "write")]
    pub url: Option<String>,
    /// Bearer token to send with `--url`.
    #[arg(
        long,
        env = "BATON_BENCH_TOKEN",
        requires = "url",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// What is compared: `bare` — Baton with the gate off against a bare rmcp server (the
    /// adapter's cost); `gate` — Baton against itself with the gate off (the cost of policy,
    /// approvals and durable audit); `checkpoints` — Baton against itself signing audit
    /// checkpoints (their cost on the call path); `build` — Baton against another build of
    /// itself given by `--reference` (what a change cost); `store` — Baton on sled against
    /// Baton on the PostgreSQL database `--store-url` names; `telemetry` — Baton against
    /// itself exporting traces over OTLP and counting metrics (their cost on the call path).
    #[arg(long, value_enum, default_value = "bare")]
    pub compare: Compare,
    /// The other `baton` binary for `--compare build`, e.g. the previous commit's.
    #[arg(long, value_name = "PATH", required_if_eq("compare", "build"))]
    pub reference: Option<PathBuf>,
    /// The PostgreSQL database for `--compare store` (`postgres://…`, an empty database).
    #[arg(long, value_name = "URL", required_if_eq("compare", "store"))]
    pub store_url: Option<String>,
}

/// The checkpoint signing key's file in the bench's home (outside its data folder).
const CHECKPOINT_KEY: &str = "audit.key";

/// The comparison point of a benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    /// A bare rmcp server serving the same tool.
    Bare,
    /// Baton itself with the gate off (`baton-bench serve-gate-off`) (no policy, approvals or audit).
    Gate,
    /// Baton against itself signing audit checkpoints (ed25519, every 1,000 records).
    Checkpoints,
    /// Baton against another build of itself (`--reference PATH`).
    Build,
    /// Baton's REST face (`POST /v1/tools/baton_info`) against its MCP face on the same kind
    /// of server (HTTP transports only; the MCP side speaks the transport's era).
    Rest,
    /// Baton on sled against Baton on PostgreSQL (`--store-url`).
    Store,
    /// Baton against itself exporting every span over OTLP (to a receiver in this process)
    /// and counting every call for `/metrics`.
    Telemetry,
}

impl Compare {
    /// The name `--compare` takes.
    fn name(self) -> &'static str {
        match self {
            Compare::Bare => "bare",
            Compare::Gate => "gate",
            Compare::Checkpoints => "checkpoints",
            Compare::Build => "build",
            Compare::Rest => "rest",
            Compare::Store => "store",
            Compare::Telemetry => "telemetry",
        }
    }

    /// The section of `docs/benchmarks.md` its results go in.
    fn section(self) -> &'static str {
        match self {
            Compare::Bare => "spine",
            Compare::Gate
            | Compare::Checkpoints
            | Compare::Build
            | Compare::Rest
            | Compare::Store
            | Compare::Telemetry => self.name(),
        }
    }

    /// The reference and the subject: `bare`, the adapter alone (Baton with the gate off
    /// against bare rmcp); `gate`, the gate alone (Baton against itself with the gate off);
    /// `rest`, one Baton's two faces.
    fn servers(self) -> (Server, Server) {
        match self {
            Compare::Bare => (Server::Bare, Server::GateOff),
            Compare::Gate => (Server::GateOff, Server::Baton),
            Compare::Checkpoints => (Server::Baton, Server::Checkpointed),
            Compare::Build => (Server::Reference, Server::Baton),
            Compare::Rest => (Server::Baton, Server::Baton),
            Compare::Store => (Server::Baton, Server::Postgres),
            Compare::Telemetry => (Server::Baton, Server::Telemetry),
        }
    }

    /// What the load speaks to the subject or the reference over a transport of `era`
    /// (`None`: stdio).
    fn era(self, is_subject: bool, era: Option<Era>) -> anyhow::Result<Option<Era>> {
        match (self, is_subject, era) {
            (Compare::Rest, _, None) => bail!("--compare rest measures HTTP transports only"),
            (Compare::Rest, true, Some(_)) => Ok(Some(Era::Rest)),
            _ => Ok(era),
        }
    }
}

/// The binaries a benchmark starts: this one (the bare server, the gate-off variant), the
/// `baton` beside it, and the reference build for `--compare build`.
#[derive(Debug, Clone)]
struct Binaries {
    bench: PathBuf,
    reference: Option<PathBuf>,
    /// The database `Server::Postgres` keeps its store in.
    store_url: Option<String>,
    /// The config `Server::Telemetry` runs with (metrics on, traces to the bench's receiver).
    telemetry: Option<PathBuf>,
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// `HTTP 2026-07-28`, `HTTP 2025-11-25` or `stdio`.
    pub transport: &'static str,
    /// Calls in flight.
    pub concurrency: usize,
    /// The bare rmcp server (median run).
    pub bare: Measured,
    /// Baton (median run).
    pub baton: Measured,
    /// Lowest and highest calls/s over the bare server's runs.
    pub bare_range: (f64, f64),
    /// Lowest and highest calls/s over Baton's runs.
    pub baton_range: (f64, f64),
    /// The bare server's CPU per call, µs (median over its runs; HTTP only).
    pub bare_cpu: Option<f64>,
    /// Baton's CPU per call, µs (median over its runs; HTTP only).
    pub baton_cpu: Option<f64>,
}

impl Row {
    /// Baton's throughput cost against the bare server, in percent (negative: Baton faster).
    pub fn cost_percent(&self) -> f64 {
        (1.0 - self.baton.calls_per_s / self.bare.calls_per_s) * 100.0
    }
}

/// Run the benchmark and print (and optionally write) the table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        return load_only(&args, url).await;
    }
    let home = tempfile_dir()?;
    let sink = match args.compare {
        Compare::Telemetry => Some(otlp_sink::Sink::start().await?),
        _ => None,
    };
    let telemetry = sink.as_ref().map(|sink| sink.config(&home)).transpose()?;
    let exe = Binaries {
        bench: std::env::current_exe().context("locate the baton-bench binary")?,
        reference: args.reference.clone(),
        store_url: args.store_url.clone(),
        telemetry,
    };
    let key = baton_runs::CheckpointKey::generate().context("generate a checkpoint key")?;
    std::fs::write(home.join(CHECKPOINT_KEY), key.seed_hex())
        .context("write the checkpoint key")?;
    let warmup = Duration::from_secs(1);
    let window = Duration::from_secs(args.seconds.max(1));
    let mut rows = Vec::new();
    for transport in &args.transports {
        let (label, era) = match transport.as_str() {
            "http-2026" => ("HTTP 2026-07-28", Some(Era::Stateless)),
            "http-2025" => ("HTTP 2025-11-25", Some(Era::Session)),
            "stdio" => ("stdio 2025-11-25", None),
            other => bail!("unknown transport `{other}` (http-2026, http-2025, stdio)"),
        };
        for &concurrency in &args.concurrency {
            let mut bare_runs = Vec::new();
            let mut baton_runs = Vec::new();
            let (reference, subject) = args.compare.servers();
            for _ in 0..args.rounds.max(1) {
                // Alternate servers within a round so drift on a noisy machine hits both.
                for (is_subject, server) in [(false, reference), (true, subject)] {
                    let era = args.compare.era(is_subject, era)?;
                    let (samples, cpu) = match era {
                        Some(era) => {
                            let (mut child, addr) = spawn_http(&exe, server, &home).await?;
                            let (result, cpu) = tokio::join!(
                                http_load::run(addr, era, concurrency, warmup, window, None),
                                server_cpu(child.id(), warmup, window)
                            );
                            let _ = child.kill().await;
                            (result?, cpu)
                        }
                        None => {
                            let samples = stdio_load::run(
                                server.command(&exe, &home, None),
                                concurrency,
                                warmup,
                                window,
                            )
                            .await?;
                            (samples, None)
                        }
                    };
                    let measured = Measured::from_samples(samples, window).with_server_cpu(cpu);
                    tracing::info!(
                        label,
                        concurrency,
                        ?server,
                        calls_per_s = measured.calls_per_s,
                        "run"
                    );
                    if !is_subject {
                        bare_runs.push(measured);
                    } else {
                        baton_runs.push(measured);
                    }
                }
            }
            let cpu = |runs: &[Measured]| {
                let values = runs.iter().filter_map(|r| r.cpu_us_per_call).collect();
                stats::median_by(values, |us| *us)
            };
            rows.push(Row {
                transport: label,
                concurrency,
                bare_cpu: cpu(&bare_runs),
                baton_cpu: cpu(&baton_runs),
                bare_range: range(&bare_runs),
                baton_range: range(&baton_runs),
                bare: stats::median_by(bare_runs, |r| r.calls_per_s).context("no runs")?,
                baton: stats::median_by(baton_runs, |r| r.calls_per_s).context("no runs")?,
            });
        }
    }
    let mut table = render(&rows, &args);
    if let Some(sink) = &sink {
        table.push_str(&sink.summary());
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes())?;
    if let Some(path) = &args.write {
        write_section(path, args.compare.section(), &table)?;
    }
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Bare,
    Baton,
    GateOff,
    /// Baton signing an audit checkpoint every 1,000 records (its default).
    Checkpointed,
    /// Another build of `baton` (`--reference`).
    Reference,
    /// Baton with its store on PostgreSQL (`--store-url`).
    Postgres,
    /// Baton exporting traces and counting metrics (`--compare telemetry`).
    Telemetry,
}

impl Server {
    /// Baton itself is the `baton` beside this benchmark's binary.
    fn command(self, binaries: &Binaries, home: &PathBuf, http: Option<&str>) -> Command {
        let exe = &binaries.bench;
        let mut command = match self {
            Server::Bare => {
                let mut command = Command::new(exe);
                command.arg("bare");
                command
            }
            Server::Baton => {
                let mut command = Command::new(exe.with_file_name("baton"));
                command.arg("serve");
                command
            }
            Server::Checkpointed => {
                let mut command = Command::new(exe.with_file_name("baton"));
                command
                    .arg("serve")
                    .env("BATON_AUDIT_KEY", home.join(CHECKPOINT_KEY));
                command
            }
            Server::GateOff => {
                let mut command = Command::new(exe);
                command.arg("serve-gate-off");
                command
            }
            Server::Postgres => {
                let mut command = Command::new(exe.with_file_name("baton"));
                command.arg("serve").env(
                    "BATON_STORE_URL",
                    binaries.store_url.as_deref().unwrap_or_default(),
                );
                command
            }
            Server::Telemetry => {
                let mut command = Command::new(exe.with_file_name("baton"));
                command.arg("serve");
                if let Some(config) = &binaries.telemetry {
                    command.arg("--config").arg(config);
                }
                command
            }
            Server::Reference => {
                let reference = binaries.reference.as_ref().unwrap_or(exe);
                let mut command = Command::new(reference);
                command.arg("serve");
                command
            }
        };
        if let Some(addr) = http {
            command.args(["--http", addr]);
        }
        command
            // The default layout (`./.baton` beside the config): the store's writes then
            // stay out of the directory the policy watcher watches.
            .env("BATON_HOME", home.join(".baton"))
            // `listening on …` is how the bench learns the address; builds from before the
            // server was split into crates log it as `baton_server`.
            .env("BATON_LOG", "warn,baton_cli=info,baton_server=info")
            .env_remove("BATON_CONFIG")
            .current_dir(home);
        command
    }
}

async fn spawn_http(
    exe: &Binaries,
    server: Server,
    home: &PathBuf,
) -> anyhow::Result<(Child, SocketAddr)> {
    let mut command = server.command(exe, home, Some("127.0.0.1:0"));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("spawn server")?;
    let stderr = child.stderr.take().context("server stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.trim_end_matches("/mcp").trim();
                return addr.parse::<SocketAddr>().context("parse listen address");
            }
        }
        bail!("server exited before listening")
    })
    .await
    .context("server did not start within 30 s")??;
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

async fn load_only(args: &BenchArgs, url: &str) -> anyhow::Result<()> {
    let authority = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .context("--url must look like http://HOST:PORT/mcp")?;
    let addr: SocketAddr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .with_context(|| format!("cannot resolve {authority}"))?;
    let mut out = String::from(
        "| transport | concurrency | calls/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
    );
    for transport in &args.transports {
        let (label, era) = match transport.as_str() {
            "http-2026" => ("HTTP 2026-07-28", Era::Stateless),
            "http-2025" => ("HTTP 2025-11-25", Era::Session),
            "rest" => ("REST /v1/tools", Era::Rest),
            other => bail!("--url measures HTTP only, not `{other}`"),
        };
        for &concurrency in &args.concurrency {
            let window = Duration::from_secs(args.seconds.max(1));
            let samples = http_load::run(
                addr,
                era,
                concurrency,
                Duration::from_secs(1),
                window,
                args.token.clone(),
            )
            .await?;
            let m = Measured::from_samples(samples, window);
            let _ = writeln!(
                out,
                "| {label} | {concurrency} | {:.0} | {} | {} |",
                m.calls_per_s,
                stats::ms(m.p50),
                stats::ms(m.p99)
            );
        }
    }
    use std::io::Write as _;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

fn range(runs: &[Measured]) -> (f64, f64) {
    runs.iter()
        .fold((f64::INFINITY, 0.0_f64), |(low, high), run| {
            (low.min(run.calls_per_s), high.max(run.calls_per_s))
        })
}

/// The CPU process `pid` spends over the `window` that follows `warmup` from now.
async fn server_cpu(pid: Option<u32>, warmup: Duration, window: Duration) -> Option<f64> {
    let pid = pid?;
    tokio::time::sleep(warmup).await;
    let before = stats::cpu_seconds(pid)?;
    tokio::time::sleep(window).await;
    Some(stats::cpu_seconds(pid)? - before)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("baton-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

fn render(rows: &[Row], args: &BenchArgs) -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `baton-bench run --compare {} --seconds {} --rounds {}` on {cores} cores (load generator and server \
         share them); median of {} runs per cell. CPU per call: the server process's user and system CPU over \
         the measured window divided by the calls answered in it (median over the runs; HTTP only).\n",
        args.compare.name(),
        args.seconds,
        args.rounds,
        args.rounds
    );
    let (reference, subject) = match args.compare {
        Compare::Bare => ("bare rmcp", "Baton (gate off)"),
        Compare::Gate => ("gate off", "gate on"),
        Compare::Checkpoints => ("no checkpoints", "signed checkpoints"),
        Compare::Build => ("reference build", "this build"),
        Compare::Rest => ("MCP tools/call", "REST /v1/tools"),
        Compare::Store => ("sled", "PostgreSQL"),
        Compare::Telemetry => ("telemetry off", "traces + metrics on"),
    };
    let _ = writeln!(
        out,
        "| transport | concurrency | {reference} calls/s | {subject} calls/s | cost | {reference} CPU µs/call | {subject} CPU µs/call | CPU cost | {reference} p50 ms | {subject} p50 ms | {reference} p99 ms | {subject} p99 ms | {reference} runs | {subject} runs |"
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let cpu = |us: Option<f64>| us.map_or_else(|| "—".to_owned(), |us| format!("{us:.0}"));
    for row in rows {
        let cpu_cost = match (row.bare_cpu, row.baton_cpu) {
            (Some(bare), Some(baton)) if bare > 0.0 => {
                format!("{:+.1} %", (baton / bare - 1.0) * 100.0)
            }
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:+.1} % | {} | {} | {cpu_cost} | {} | {} | {} | {} | {:.0}–{:.0} | {:.0}–{:.0} |",
            row.transport,
            row.concurrency,
            row.bare.calls_per_s,
            row.baton.calls_per_s,
            row.cost_percent(),
            cpu(row.bare_cpu),
            cpu(row.baton_cpu),
            stats::ms(row.bare.p50),
            stats::ms(row.baton.p50),
            stats::ms(row.bare.p99),
            stats::ms(row.baton.p99),
            row.bare_range.0,
            row.bare_range.1,
            row.baton_range.0,
            row.baton_range.1,
        );
    }
    out
}

fn write_section(path: &PathBuf, name: &str, table: &str) -> anyhow::Result<()> {
    let start_marker = format!("<!-- bench:{name}:start -->");
    let end_marker = format!("<!-- bench:{name}:end -->");
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let section = format!("{start_marker}\n{table}{end_marker}");
    let updated = match (existing.find(&start_marker), existing.find(&end_marker)) {
        (Some(start), Some(end)) if end > start => {
            format!(
                "{}{section}{}",
                &existing[..start],
                &existing[end + end_marker.len()..]
            )
        }
        _ => format!("{existing}\n{section}\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("write {}", path.display()))
}
