//! The comparison point: a bare rmcp server serving the benchmark's tool the idiomatic rmcp
//! way (`#[tool_router]`, `Json` output), with the same transport settings Baton uses
//! (`TCP_NODELAY`, JSON responses) but no gate, no adapter, no authentication.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt;
use clap::Args;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ProtocolVersion, ServerCapabilities, ServerConfig};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{Json, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

use baton_cli::builtin::{Info, PackSummary, PolicyInfo};

/// `baton-bench bare`
#[derive(Debug, Args)]
pub struct BareArgs {
    /// Serve Streamable HTTP on ADDR instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct Bare {
    info: Arc<Info>,
    tool_router: ToolRouter<Bare>,
}

#[tool_router]
impl Bare {
    fn new() -> Bare {
        // The same shape and size of answer as Baton's `baton_info`.
        let info = Info {
            name: "baton".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol_versions: ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .map(ToString::to_string)
                .collect(),
            packs: vec![
                PackSummary {
                    name: "baton".into(),
                    tools: 1,
                },
                PackSummary {
                    name: "knowledge".into(),
                    tools: 1,
                },
            ],
            data_dir: "/tmp/baton-bench/.baton".into(),
            store: "/tmp/baton-bench/.baton/store".into(),
            knowledge_root: "/tmp/baton-bench/knowledge".into(),
            knowledge_documents: 3,
            knowledge_error: None,
            policy: PolicyInfo {
                sandbox: "read-only".into(),
                approval: "untrusted".into(),
                writable_roots: Vec::new(),
                rules: 0,
                approval_ttl: "1h".into(),
                full_access_reason: None,
                file: Some("/tmp/baton-bench/policy.toml".into()),
                source: "built-in defaults".into(),
                loaded_at: "2026-11-22T00:00:00Z".into(),
                error: None,
            },
            confinement: baton_sop::host_confinement().clone(),
        };
        Bare {
            info: Arc::new(info),
            tool_router: Self::tool_router(),
        }
    }

    /// Describe this server.
    #[tool(name = "baton_info", annotations(read_only_hint = true))]
    async fn baton_info(&self) -> Json<Info> {
        Json(Info::clone(&self.info))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("bare-rmcp", env!("CARGO_PKG_VERSION")))
    }
}

/// Serve the bare server until stdin closes (stdio) or the process is killed (HTTP).
pub async fn serve_bare(args: BareArgs) -> anyhow::Result<()> {
    let server = Bare::new();
    match args.http {
        None => {
            let running = server
                .serve(rmcp::transport::stdio())
                .await
                .context("bare stdio session did not start")?;
            running.waiting().await.context("bare stdio session")?;
        }
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind {addr}"))?;
            tracing::info!("listening on http://{}/mcp", listener.local_addr()?);
            let config = StreamableHttpServerConfig::default().with_json_response(true);
            let service = StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::new(LocalSessionManager::default()),
                config,
            );
            let router = axum::Router::new().nest_service("/mcp", service);
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .await
                .context("bare HTTP server")?;
        }
    }
    Ok(())
}
