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

/// The protocol era a session spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25: `initialize`, sessions.
    Legacy,
    /// 2026-07-28: stateless, `server/discover`.
    Stateless,
}

/// Check what a client saw in [`exercise`]: what differs between the protocol eras directly,
/// each pack's tools (names, annotations, schemas) against its own snapshot, and the rest
/// against one snapshot every transport and era must produce.
pub fn assert_session(era: Era, mut value: Value) {
    let session = value.as_object_mut().unwrap();
    // 2026-07-28 marks every complete result, lets resources say how long they may be cached,
    // and answers an unknown resource with invalid params; 2025-11-25 does none of that.
    for key in ["baton_info", "knowledge_search", "read", "knowledge_brief"] {
        let result = session[key].as_object_mut().unwrap();
        let marked = result.remove("resultType");
        match era {
            Era::Stateless => assert_eq!(marked, Some(json!("complete")), "{key}"),
            Era::Legacy => assert_eq!(marked, None, "{key}"),
        }
    }
    let read = session["read"].as_object_mut().unwrap();
    let caching = (read.remove("cacheScope"), read.remove("ttlMs"));
    let missing_code = session["missing_resource"]["code"].take();
    match era {
        Era::Stateless => {
            assert_eq!(caching, (Some(json!("private")), Some(json!(0))));
            assert_eq!(missing_code, json!(-32602));
        }
        Era::Legacy => {
            assert_eq!(caching, (None, None));
            assert_eq!(missing_code, json!(-32002));
        }
    }
    // How this host confines commands (is bubblewrap installed, which version) differs from
    // machine to machine: checked here, kept out of the snapshot.
    let info = &mut session["baton_info"];
    let confinement = info["structuredContent"]
        .as_object_mut()
        .unwrap()
        .remove("confinement")
        .unwrap();
    assert!(
        confinement["backend"].is_string() || confinement["unavailable"].is_string(),
        "{confinement}"
    );
    for block in info["content"].as_array_mut().unwrap() {
        if let Some(text) = block["text"].as_str() {
            let mut shown: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                shown.as_object_mut().unwrap().remove("confinement"),
                Some(confinement.clone())
            );
            block["text"] = json!(shown.to_string());
        }
    }
    let tools = session.remove("tools").unwrap();
    let mut packs: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for tool in tools.as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let prefix = name.split('_').next().unwrap_or(name).to_owned();
        packs.entry(prefix).or_default().push(tool.clone());
    }
    insta::with_settings!({ prepend_module_to_snapshot => false, sort_maps => true }, {
        for (prefix, tools) in &packs {
            insta::assert_json_snapshot!(format!("tools_{prefix}"), tools);
        }
        insta::assert_json_snapshot!("session", value);
    });
}
