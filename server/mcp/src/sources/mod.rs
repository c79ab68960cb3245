//! Tools of other MCP servers (Codex, another Baton…) for Baton's agents: each is registered
//! in the registry as a tool of its own, so calling it passes the gate like any other call.
//! What a stdio server asks back while a call runs (Codex asking to run a command) is decided
//! by the gate for that call's caller, and what it reports becomes the call's journal steps.

mod codex;
mod wire;

use std::sync::Arc;

use baton_kit::{BoundCall, DynTool, ToolDescriptor, ToolError, ToolOutput};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RunningService};
use rmcp::{RoleClient, ServiceExt};

use crate::McpSource;

/// Set in the environment of every stdio source Baton starts: a Baton started as another
/// Baton's source does not start sources of its own, so a config naming Baton as its own
/// source cannot spawn servers without end.
pub const SOURCE_ENV: &str = "BATON_AS_SOURCE";

/// A connected MCP server; dropping it closes the connection (and stops a stdio child).
pub type Connection = RunningService<RoleClient, ()>;

/// Why a source could not be used.
#[derive(Debug, thiserror::Error)]
#[error("MCP server `{source_name}`: {message}")]
pub struct SourceError {
    /// The source's name.
    pub source_name: String,
    /// What went wrong.
    pub message: String,
}

struct McpTool {
    descriptor: ToolDescriptor,
    remote: String,
    peer: Peer<RoleClient>,
    /// Where requests and events of a stdio server are routed to the call they belong to.
    router: Option<Arc<wire::Router>>,
    /// For `codex mcp-server` (whose sandbox Baton sets): the threads it started, by caller.
    codex: Option<Arc<codex::Threads>>,
}

impl McpTool {
    /// Call the remote tool with `arguments`, routing what the server asks and reports
    /// meanwhile to this call; its steps are journaled before the result is returned.
    async fn call(
        &self,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        ctx: &baton_kit::ToolContext,
    ) -> baton_kit::Result<rmcp::model::CallToolResult> {
        let mut params = CallToolRequestParams::new(self.remote.clone());
        params.arguments = arguments;
        let (steps, mut received) = tokio::sync::mpsc::unbounded_channel();
        let token = self
            .router
            .as_ref()
            .map(|router| router.open(wire::CallScope::new(ctx.clone(), steps)));
        if let Some(token) = token {
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.insert(wire::CALL_META.into(), serde_json::json!(token));
            params.meta = Some(meta);
        }
        let journal = async {
            while let Some(step) = received.recv().await {
                ctx.step(step).await;
            }
        };
        let call = async {
            let result = tokio::select! {
                result = self.peer.call_tool(params) => result,
                () = ctx.cancellation().cancelled() => {
                    if let (Some(router), Some(token)) = (&self.router, token) {
                        router.cancel(token).await;
                    }
                    Err(rmcp::ServiceError::Cancelled { reason: None })
                }
            };
            // Nothing more is routed to this call; the steps sent so far are still journaled.
            if let (Some(router), Some(token)) = (&self.router, token) {
                router.close(token);
            }
            result
        };
        let (result, ()) = tokio::join!(call, journal);
        match result {
            Ok(result) => Ok(result),
            Err(rmcp::ServiceError::Cancelled { .. }) if ctx.is_cancelled() => {
                Err(ToolError::Cancelled)
            }
            Err(error) => Err(ToolError::failed(format!(
                "{}: {error}",
                self.descriptor.name
            ))),
        }
    }
}

impl DynTool for McpTool {
    fn descriptor(&self) -> &ToolDescriptor {
        &self.descriptor
    }

    fn bind(self: Arc<Self>, args: &serde_json::Value) -> baton_kit::Result<BoundCall> {
        let arguments = match args {
            serde_json::Value::Object(map) => Some(map.clone()),
            serde_json::Value::Null => None,
            _ => {
                return Err(ToolError::invalid_args(
                    ".",
                    "arguments must be a JSON object",
                ));
            }
        };
        if self.codex.is_some() {
            codex::check_args(
                &self.remote,
                arguments.as_ref().unwrap_or(&Default::default()),
            )?;
        }
        Ok(BoundCall::new(move |ctx| async move {
            let principal = ctx.principal().map(|p| p.id.clone()).unwrap_or_default();
            let effect = self.descriptor.effect;
            let cwd = arguments
                .as_ref()
                .and_then(|a| a.get("cwd"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            let arguments = match (&self.codex, arguments) {
                (Some(threads), args) => Some(threads.arguments(
                    &self.remote,
                    args.unwrap_or_default(),
                    &principal,
                    effect,
                    ctx.sandbox(),
                )?),
                (None, args) => args,
            };
            // Where Codex was sent: `cwd` with its links resolved.
            let real = (arguments.as_ref())
                .and_then(|a| a.get("cwd"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            let result = self.call(arguments, &ctx).await?;
            if let (Some(threads), Some(structured), Some(cwd), Some(real)) =
                (&self.codex, &result.structured_content, &cwd, &real)
                && self.remote == "codex"
                && result.is_error != Some(true)
            {
                let folder = (cwd.as_str(), real.as_str());
                threads.started(structured, &principal, folder, effect, ctx.sandbox());
            }
            let text: Vec<String> = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect();
            if result.is_error == Some(true) {
                return Err(ToolError::failed(text.join("\n")));
            }
            let structured = result
                .structured_content
                .unwrap_or_else(|| serde_json::json!({ "text": text.join("\n") }));
            Ok(ToolOutput {
                structured,
                attachments: Vec::new(),
            })
        }))
    }
}

/// How the gate sees `tool` of `source` (registered as `name`): the source's effect and path
/// arguments; for Codex, only the arguments an agent may set.
fn descriptor(
    source: &McpSource,
    tool: &rmcp::model::Tool,
    name: String,
    codex: bool,
) -> ToolDescriptor {
    ToolDescriptor {
        name,
        pack: source.name.clone(),
        title: tool.title.clone(),
        description: tool.description.as_deref().unwrap_or_default().to_owned(),
        effect: source.effect,
        input_schema: if codex {
            Arc::new(codex::agent_schema(&tool.name, &tool.input_schema))
        } else {
            tool.input_schema.clone()
        },
        output_schema: tool.output_schema.clone(),
        path_args: source.path_args.clone(),
        root_arg: None,
        file_args: Vec::new(),
        output_args: Vec::new(),
        heavy: false,
        long: false,
    }
}

/// Connect to `source` and wrap the tools it offers (filtered) for the registry.
pub async fn connect(
    source: &McpSource,
) -> Result<(Connection, Vec<Arc<dyn DynTool>>), SourceError> {
    let fail = |message: String| SourceError {
        source_name: source.name.clone(),
        message,
    };
    let mut router = None;
    let connection = match (&source.command, &source.url) {
        (Some(argv), None) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| fail("`command` is empty".into()))?;
            // Its own process group, so closing the link stops what it started too (the npm
            // launcher starts Codex's binary as a child of its own).
            let child = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .process_group(0)
                .env(SOURCE_ENV, "1")
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
            let routes = Arc::new(wire::Router::new(&source.name));
            let transport = wire::Wire::new(child, routes.clone())
                .map_err(|e| fail(format!("cannot talk to `{program}`: {e}")))?;
            router = Some(routes);
            ().serve(transport).await.map_err(|e| fail(e.to_string()))?
        }
        (None, Some(url)) => {
            let mut config =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.as_str());
            if let Some(env) = &source.bearer_token_env {
                let token = std::env::var(env).map_err(|_| fail(format!("`{env}` is not set")))?;
                config = config.auth_header(token);
            }
            let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
            ().serve(transport).await.map_err(|e| fail(e.to_string()))?
        }
        _ => return Err(fail("give exactly one of `command` or `url`".into())),
    };
    let listed = connection
        .list_all_tools()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if let Some(wanted) = &source.tools
        && let Some(missing) = wanted
            .iter()
            .find(|w| !listed.iter().any(|t| t.name == w.as_str()))
    {
        return Err(fail(format!("offers no tool `{missing}`")));
    }
    let peer = connection.peer().clone();
    let name = connection
        .peer_info()
        .and_then(|info| info.server_info.as_ref().map(|s| s.name.clone()));
    let codex =
        codex::is_codex(name.as_deref(), &listed).then(|| Arc::new(codex::Threads::default()));
    let tools = listed
        .into_iter()
        .filter(|t| {
            source
                .tools
                .as_ref()
                .is_none_or(|w| w.iter().any(|w| t.name == w.as_str()))
        })
        .map(|tool| {
            let name: String = format!("{}_{}", source.name, tool.name)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let descriptor = descriptor(source, &tool, name, codex.is_some());
            Arc::new(McpTool {
                descriptor,
                remote: tool.name.to_string(),
                peer: peer.clone(),
                router: router.clone(),
                codex: codex.clone(),
            }) as Arc<dyn DynTool>
        })
        .collect();
    Ok((connection, tools))
}
