//! One walk through Baton's MCP surface, the same for every transport and protocol era.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::service::{Peer, ServiceError};
use serde_json::{Value, json};

fn error_json(error: ServiceError) -> Value {
    match error {
        ServiceError::McpError(error) => json!({
            "code": error.code.0,
            "message": error.message,
            "data": error.data,
        }),
        other => json!({ "transport_error": other.to_string() }),
    }
}

fn call(name: &str, args: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = args.as_object().cloned();
    params
}

/// Everything a client sees, as one JSON value to snapshot.
pub async fn exercise(peer: &Peer<RoleClient>) -> Value {
    let tools = peer.list_all_tools().await.unwrap();
    let info = peer.call_tool(call("baton_info", json!({}))).await.unwrap();
    let search = peer
        .call_tool(call(
            "knowledge_search",
            json!({ "query": "approval reviewer", "limit": 2 }),
        ))
        .await
        .unwrap();
    let bad_args = peer
        .call_tool(call(
            "knowledge_search",
            json!({ "query": "x", "limit": "many" }),
        ))
        .await
        .map(|r| json!(r))
        .unwrap_or_else(error_json);
    let semantic_bad_args = peer
        .call_tool(call(
            "knowledge_search",
            json!({ "query": "x", "limit": 99 }),
        ))
        .await
        .map(|r| json!(r))
        .unwrap_or_else(error_json);
    let unknown_tool = peer
        .call_tool(call("dsp_nonexistent", json!({})))
        .await
        .map(|r| json!(r))
        .unwrap_or_else(error_json);
    let resources = peer.list_all_resources().await.unwrap();
    let read = peer
        .read_resource(ReadResourceRequestParams::new("knowledge://docs/packs.md"))
        .await
        .unwrap();
    let missing = peer
        .read_resource(ReadResourceRequestParams::new("knowledge://docs/nope.md"))
        .await
        .map(|r| json!(r))
        .unwrap_or_else(error_json);
    let prompts = peer.list_all_prompts().await.unwrap();
    let mut brief = GetPromptRequestParams::new("knowledge_brief");
    brief.arguments = json!({ "topic": "audit record" }).as_object().cloned();
    let brief = peer.get_prompt(brief).await.unwrap();
    json!({
        "tools": tools,
        "baton_info": info,
        "knowledge_search": search,
        "bad_args": bad_args,
        "semantic_bad_args": semantic_bad_args,
        "unknown_tool": unknown_tool,
        "resources": resources,
        "read": read,
        "missing_resource": missing,
        "prompts": prompts,
        "knowledge_brief": brief,
    })
}
