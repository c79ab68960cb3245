use std::net::SocketAddr;
use std::sync::Arc;

use baton_kit::Principal;
use clap::Args;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::Failure;
use crate::app::App;
use crate::config::Config;
use crate::conformance::Conformance;
use crate::mcp::BatonMcp;
use crate::transport::{http, stdio::StdioTransport};

/// `baton serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8765; port 0 picks one) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Also serve the MCP conformance suite's fixture tools, prompts and resources. For
    /// testing only; needs --http.
    #[arg(long, requires = "http")]
    pub conformance: bool,
}

pub(super) async fn run(config: Config, args: ServeArgs) -> Result<(), Failure> {
    let app = Arc::new(App::build(config)?);
    let conformance = if args.conformance {
        Some(Conformance::new().map_err(|e| Failure::runtime(e.to_string()))?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    match args.http {
        Some(addr) => {
            let handler = BatonMcp::new(app, None, conformance);
            http::serve(handler, addr, shutdown, |bound| {
                tracing::info!("listening on http://{bound}/mcp");
            })
            .await?;
            tracing::info!("stopped");
            Ok(())
        }
        None => {
            let stdio = &app.config.file.stdio;
            let principal = Arc::new(Principal::new(
                stdio.principal.clone(),
                stdio.roles.iter().copied(),
            ));
            let max = app.config.file.server.max_message_bytes;
            let handler = BatonMcp::new(app, Some(principal), conformance);
            let transport = StdioTransport::new(tokio::io::stdin(), tokio::io::stdout(), max);
            let running = handler
                .serve_with_ct(transport, shutdown.clone())
                .await
                .map_err(|e| Failure::runtime(format!("MCP session did not start: {e}")))?;
            running
                .waiting()
                .await
                .map_err(|e| Failure::runtime(format!("MCP session ended abnormally: {e}")))?;
            Ok(())
        }
    }
}

async fn watch_signals(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "SIGTERM not watched");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
