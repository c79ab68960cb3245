use std::net::SocketAddr;
use std::sync::Arc;

use baton_kit::Principal;
use clap::Args;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::Failure;
use crate::app::App;
use crate::config::Config;
use baton_console::Console;
use baton_mcp::BatonMcp;
use baton_mcp::transport::{http, stdio::StdioTransport};
use baton_runs::Ownership;

use crate::ServerError;

/// `baton serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8765; port 0 picks one) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Let the policy file grant `danger-full-access` (it must also record a reason).
    #[arg(long)]
    pub allow_full_access: bool,
}

pub(super) async fn run(config: Config, args: ServeArgs) -> Result<(), Failure> {
    // Agents started over MCP (`agents_run`) use the `[[agents.mcp]]` servers too (Codex as
    // the builder); they stay connected while the server runs.
    let (builder, _sources) =
        super::run::with_sources(App::builder(config.clone()), &config).await?;
    serve(builder, args).await
}

/// Serve `app` as `args` say. `baton-bench` calls it with the gate turned off; `baton` never
/// can.
pub async fn serve(app: crate::app::AppBuilder, args: ServeArgs) -> Result<(), Failure> {
    let app = app
        .ownership(Ownership::Serve)
        .goals(true)
        .allow_full_access(args.allow_full_access)
        .build()?;
    // Take (or find) the store now: a problem with it should stop the start, not a call.
    app.store()
        .connect()
        .await
        .map_err(crate::ServerError::from)?;
    // Tasks a previous server died in the middle of are closed, and audited, before anything
    // new runs.
    match baton_mcp::tasks::recover(app.store(), app.gate().clock().now_ms()).await {
        Ok(0) => {}
        Ok(closed) => tracing::warn!(
            closed,
            "tasks left running by a stopped server closed as failed"
        ),
        Err(error) => {
            return Err(Failure::runtime(format!(
                "cannot recover the store's tasks: {error}"
            )));
        }
    }
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone())?;
    // Stopping cancels the calls in flight, on any transport: each ends audited as cancelled.
    let (gate, stopped) = (app.gate().clone(), shutdown.clone());
    tokio::spawn(async move {
        stopped.cancelled().await;
        gate.stop_calls();
    });
    let settings = &app.served.settings;
    let console_url = settings
        .http
        .public_url
        .clone()
        .filter(|_| settings.console.enabled && args.http.is_some());
    let _watch = baton_console::watch(
        app.gate().clone(),
        settings.approvals.webhooks.clone(),
        console_url,
        shutdown.clone(),
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    match args.http {
        Some(addr) => serve_http(&app, addr, shutdown).await,
        None => {
            let stdio = &app.config.file.stdio;
            let principal = Arc::new(Principal::new(
                stdio.principal.clone(),
                stdio.roles.iter().copied(),
            ));
            let max = app.config.file.server.max_message_bytes;
            let pending = app.config.file.stdio.max_pending;
            let handler =
                BatonMcp::new(app.served.clone(), Some(principal)).map_err(ServerError::from)?;
            let transport =
                StdioTransport::with_limit(tokio::io::stdin(), tokio::io::stdout(), max, pending);
            let running = handler
                .serve_with_ct(transport, shutdown.clone())
                .await
                .map_err(|e| Failure::runtime(format!("MCP session did not start: {e}")))?;
            // A signal ends the session even while the client holds stdin open: the calls in
            // flight are cancelled and get a moment to leave their audit records.
            let waiting = running.waiting();
            tokio::pin!(waiting);
            tokio::select! {
                ended = &mut waiting => {
                    ended.map_err(|e| Failure::runtime(format!("MCP session ended abnormally: {e}")))?;
                }
                () = shutdown.cancelled() => {}
            }
            if shutdown.is_cancelled() {
                if !app.gate().quiesce(SIGNAL_GRACE).await {
                    tracing::warn!("calls were still running when the server stopped");
                }
                tracing::info!("stopped");
            }
            Ok(())
        }
    }
}

/// MCP at `/mcp`, the console at `/console` and the plain-HTTP face at `/v1`, on `addr`.
async fn serve_http(
    app: &App,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let handler = BatonMcp::new(app.served.clone(), None).map_err(ServerError::from)?;
    let console = Console::new(app.served.clone()).map_err(|e| Failure::usage(e.to_string()))?;
    let has_console = console.is_some();
    let rest =
        baton_rest::Rest::new(app.served.clone()).map_err(|e| Failure::usage(e.to_string()))?;
    http::serve(
        handler,
        &app.served.settings,
        addr,
        shutdown,
        |bound| {
            let routes = rest.router(bound);
            Some(match console {
                Some(console) => routes.merge(console.router(bound)),
                None => routes,
            })
        },
        |bound| {
            tracing::info!("listening on http://{bound}/mcp");
            if has_console {
                tracing::info!("reviewers' console on http://{bound}/console");
            }
        },
    )
    .await
    .map_err(ServerError::from)?;
    tracing::info!("stopped");
    Ok(())
}

/// How long calls in flight get to end (and be audited) after a signal, over stdio.
const SIGNAL_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Register SIGINT and SIGTERM handlers now — before anything is served, so a signal that
/// arrives early still shuts down gracefully — and cancel `shutdown` on the first.
pub(super) fn watch_signals(shutdown: CancellationToken) -> Result<(), Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let register = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Failure::runtime(format!("cannot watch {name}: {e}")))
    };
    let mut interrupt = register(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = register(SignalKind::terminate(), "SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        shutdown.cancel();
    });
    Ok(())
}
