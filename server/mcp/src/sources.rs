//! Tools of other MCP servers (Codex, another Baton…) for Baton's agents: each is registered
//! in the registry as a tool of its own, so calling it passes the gate like any other call.

use std::sync::Arc;

use baton_kit::{BoundCall, DynTool, ToolDescriptor, ToolError, ToolOutput};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RunningService};
use rmcp::{RoleClient, ServiceExt};

use crate::McpSource;

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
        Ok(BoundCall::new(move |ctx| async move {
            let mut params = CallToolRequestParams::new(self.remote.clone());
            params.arguments = arguments;
            let result = tokio::select! {
                result = self.peer.call_tool(params) => result,
                () = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
            }
            .map_err(|e| ToolError::failed(format!("{}: {e}", self.descriptor.name)))?;
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

/// Connect to `source` and wrap the tools it offers (filtered) for the registry.
pub async fn connect(
    source: &McpSource,
) -> Result<(Connection, Vec<Arc<dyn DynTool>>), SourceError> {
    let fail = |message: String| SourceError {
        source_name: source.name.clone(),
        message,
    };
    let connection = match (&source.command, &source.url) {
        (Some(argv), None) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| fail("`command` is empty".into()))?;
            let mut command = tokio::process::Command::new(program);
            command.args(args);
            let (transport, _stderr) = rmcp::transport::TokioChildProcess::builder(command)
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
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
            let descriptor = ToolDescriptor {
                name,
                pack: source.name.clone(),
                title: tool.title.clone(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                effect: source.effect,
                input_schema: tool.input_schema.clone(),
                output_schema: tool.output_schema.clone(),
                path_args: source.path_args.clone(),
                root_arg: None,
                file_args: Vec::new(),
                output_args: Vec::new(),
                heavy: false,
                long: false,
            };
            Arc::new(McpTool {
                descriptor,
                remote: tool.name.to_string(),
                peer: peer.clone(),
            }) as Arc<dyn DynTool>
        })
        .collect();
    Ok((connection, tools))
}
