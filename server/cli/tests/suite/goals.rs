//! Goals handed over MCP: a caller steers only the runs it started (reviewers and admins,
//! all), and bad arguments are refused naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pretty_assertions::assert_eq;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};

const TOKENS: &str = r#"
[[http.tokens]]
principal = "bot"
roles = ["agent"]
token_env = "BOT_TOKEN"

[[http.tokens]]
principal = "eve"
roles = ["agent"]
token_env = "EVE_TOKEN"

[[http.tokens]]
principal = "rev"
roles = ["reviewer"]
token_env = "REV_TOKEN"
"#;

async fn call(server: &HttpServer, token: &str, tool: &str, args: Value) -> (bool, Value, String) {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).auth_header(token),
    );
    let client = ().serve(transport).await.unwrap();
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = args.as_object().cloned();
    let outcome = client.call_tool(params).await;
    client.cancel().await.unwrap();
    match outcome {
        Ok(result) => {
            let text = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join("\n");
            (
                result.is_error != Some(true),
                result.structured_content.unwrap_or(Value::Null),
                text,
            )
        }
        Err(error) => (false, Value::Null, error.to_string()),
    }
}

#[tokio::test]
async fn a_caller_steers_only_the_runs_it_started() {
    let home = Home::new(TOKENS);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let cassette = home.path().join("read.json");
    std::fs::write(
        &cassette,
        json!({"interactions": [
            {"request": {"messages": [{"role": "user", "content": "Goal: look*"}]},
             "response": {"message": {"role": "assistant", "content": "Looked."}, "finish_reason": "stop"}}
        ]})
        .to_string(),
    )
    .unwrap();
    let env = [
        ("BOT_TOKEN", "bot-t"),
        ("EVE_TOKEN", "eve-t"),
        ("REV_TOKEN", "rev-t"),
    ];
    let server = HttpServer::start_with_env(&home, &[], &env).await;

    let (ok, started, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "agent": "builder", "repo": repo, "cassette": cassette
        }),
    )
    .await;
    assert!(ok, "{text}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();

    // Another agent can neither see nor stop it; it is "not found" to them.
    let (ok, _, text) = call(&server, "eve-t", "runs_get", json!({"run_id": run_id})).await;
    assert!(!ok && text.contains("not found"), "{text}");
    let (ok, _, text) = call(&server, "eve-t", "runs_cancel", json!({"run_id": run_id})).await;
    assert!(!ok && text.contains("not found"), "{text}");
    let (_, listed, _) = call(&server, "eve-t", "runs_list", json!({})).await;
    assert_eq!(listed["runs"], json!([]));

    // Its starter and a reviewer can.
    for token in ["bot-t", "rev-t"] {
        let mut report = Value::Null;
        for _ in 0..100 {
            let (ok, got, text) = call(&server, token, "runs_get", json!({"run_id": run_id})).await;
            assert!(ok, "{text}");
            report = got;
            if report["state"] == "done" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            (&report["state"], &report["output"]),
            (&json!("done"), &json!("Looked."))
        );
    }

    // Bad arguments name the field.
    let (ok, _, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "repo": home.path().join("nowhere")
        }),
    )
    .await;
    assert!(!ok && text.contains("repo"), "{text}");
    let (ok, _, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "repo": repo, "cassette": home.path().join("baton.toml")
        }),
    )
    .await;
    assert!(!ok && text.contains("cassette"), "{text}");
}
