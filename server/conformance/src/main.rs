//! `baton-conformance --http ADDR [--config FILE]`: Baton with the conformance fixtures in
//! front, over Streamable HTTP, for the MCP conformance suites. Never shipped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton_cli::{App, Config};
use baton_conformance::{Conformance, ConformanceMcp};
use baton_mcp::BatonMcp;
use baton_runs::Ownership;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Serve Baton and the conformance fixtures.
#[derive(Debug, Parser)]
#[command(name = "baton-conformance")]
struct Args {
    /// Serve Streamable HTTP on ADDR (port 0 picks one; the address is logged).
    #[arg(long, value_name = "ADDR")]
    http: SocketAddr,
    /// The Baton configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    baton_cli::cli::init_tracing("info,rmcp=warn");
    let served = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(serve(args)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let app = App::builder(config).ownership(Ownership::Serve).build()?;
    app.store().connect().await?;
    let handler = ConformanceMcp::new(
        BatonMcp::new(app.served.clone(), None)?,
        Conformance::new()?,
    );
    baton_mcp::transport::http::serve(
        handler,
        &app.served.settings,
        args.http,
        CancellationToken::new(),
        |_| None,
        |bound| tracing::info!("listening on http://{bound}/mcp"),
    )
    .await?;
    Ok(())
}
